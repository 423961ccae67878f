//! Secrets by reference only, resolved at run time and never printed.

use std::fmt;

/// Where a secret lives; the config holds this, never the value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable's name.
    Env(String),
    /// A Secrets Manager secret ARN (the secret string is the value).
    SecretsManager(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
            SecretRef::SecretsManager(arn) => write!(f, "Secrets Manager secret {arn}"),
        }
    }
}

/// A resolved secret value whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from its source.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that must send it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret could not be resolved; names the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is unset or empty.
    #[error("the X bearer token is not set: export {0}=… (or point extract.bearer_token at a Secrets Manager ARN)")]
    EnvMissing(String),
    /// Secrets Manager answered with an error.
    #[error(
        "cannot read Secrets Manager secret {arn}: {message}; check the ARN and that this identity may call secretsmanager:GetSecretValue on it"
    )]
    SecretsManager { arn: String, message: String },
    /// Secrets Manager could not be reached.
    #[error("cannot reach Secrets Manager for {arn}: {message}; check network, region and credentials")]
    Connect { arn: String, message: String },
}

impl SecretRef {
    /// Reads the value from its source.
    pub async fn resolve(&self, aws: Option<&aws_config::SdkConfig>) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
                _ => Err(SecretError::EnvMissing(name.clone())),
            },
            SecretRef::SecretsManager(arn) => {
                let owned;
                let sdk = match aws {
                    Some(sdk) => sdk,
                    None => {
                        owned = aws_config::load_from_env().await;
                        &owned
                    }
                };
                fetch_secret(sdk, arn).await
            }
        }
    }
}

async fn fetch_secret(sdk: &aws_config::SdkConfig, arn: &str) -> Result<Secret, SecretError> {
    use aws_sdk_secretsmanager::error::SdkError;
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    match client.get_secret_value().secret_id(arn).send().await {
        Ok(out) => match out.secret_string {
            Some(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim().to_string())),
            _ => Err(SecretError::SecretsManager {
                arn: arn.to_string(),
                message: "the secret has no string value".into(),
            }),
        },
        Err(SdkError::DispatchFailure(e)) => {
            Err(SecretError::Connect { arn: arn.to_string(), message: format!("{e:?}") })
        }
        Err(SdkError::TimeoutError(_)) => {
            Err(SecretError::Connect { arn: arn.to_string(), message: "timed out".into() })
        }
        Err(e) => {
            let message = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
            Err(SecretError::SecretsManager { arn: arn.to_string(), message })
        }
    }
}
