//! The Secrets Manager secret that holds the X bearer token. `deploy` creates it empty; the value
//! is set by `flixops secrets set` from stdin, so it never passes through flixops.toml or a plan.

use aws_sdk_secretsmanager::types::Tag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

use super::{Tags, failure, tags_field};
use crate::plan::{Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// The token's secret.
pub struct Secret {
    /// The Secrets Manager client.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Secret name (`flixops/{project}/{env}/x-bearer-token`).
    pub name: String,
    /// Tags.
    pub tags: Tags,
}

const DESCRIPTION: &str = "X API bearer token for the flixops extractor; set with `flixops secrets set`";

impl Secret {
    /// `aws_secretsmanager_secret.x_token`.
    pub fn address() -> Address {
        Address::new("aws_secretsmanager_secret", "x_token")
    }

    fn tag_list(&self) -> Vec<Tag> {
        self.tags.pairs().into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
    }
}

impl Secret {
    /// Brings a secret back from its recovery window (or adopts one a concurrent run just created),
    /// with our description and tags.
    async fn restore(&self) -> Result<String, ResourceError> {
        let address = Self::address();
        let found = self
            .secrets
            .describe_secret()
            .secret_id(&self.name)
            .send()
            .await
            .map_err(|e| failure(&address, "read", &e))?;
        if found.deleted_date.is_some() {
            self.secrets
                .restore_secret()
                .secret_id(&self.name)
                .send()
                .await
                .map_err(|e| failure(&address, "restore", &e))?;
        }
        self.update(true, true).await?;
        Ok(found.arn.unwrap_or_default())
    }
}

impl Secret {
    /// Sets our description and/or tags.
    async fn update(&self, description: bool, tags: bool) -> Result<(), ResourceError> {
        let address = Self::address();
        if description {
            let update = self.secrets.update_secret().secret_id(&self.name).description(DESCRIPTION);
            update.send().await.map_err(|e| failure(&address, "update description", &e))?;
        }
        if tags {
            let tag = self.secrets.tag_resource().secret_id(&self.name).set_tags(Some(self.tag_list()));
            tag.send().await.map_err(|e| failure(&address, "tag", &e))?;
        }
        Ok(())
    }
}

impl Resource for Secret {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let out = match self.secrets.describe_secret().secret_id(&self.name).send().await {
                Ok(out) => out,
                Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
                Err(e) => return Err(failure(&Self::address(), "read", &e)),
            };
            // A secret in its recovery window after `destroy` is gone as far as a user can tell;
            // creating it again restores it.
            if out.deleted_date.is_some() {
                return Ok(None);
            }
            let mut fields = Fields::new();
            fields.insert("name".into(), out.name.clone().unwrap_or_default());
            fields.insert("description".into(), out.description.clone().unwrap_or_default());
            let tags = out
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()));
            fields.insert("tags".into(), tags_field(tags, &self.tags.pairs()));
            Ok(Some(Observed { fields, outputs: [("arn".to_string(), out.arn.unwrap_or_default())].into() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("name", self.name.clone()), ("description", DESCRIPTION.to_string()), ("tags", self.tags.field())])
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        _inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let address = Self::address();
            let Some(observed) = observed else {
                let created = self
                    .secrets
                    .create_secret()
                    .name(&self.name)
                    .description(DESCRIPTION)
                    .set_tags(Some(self.tag_list()))
                    .send()
                    .await;
                let arn = match created {
                    Ok(out) => out.arn.unwrap_or_default(),
                    // AWS answers InvalidRequestException for a name in its recovery window (moto:
                    // ResourceExistsException); either way the secret is brought back.
                    Err(e) if matches!(e.code(), Some("InvalidRequestException" | "ResourceExistsException")) => {
                        self.restore().await?
                    }
                    Err(e) => return Err(failure(&address, "create", &e)),
                };
                return Ok([("arn".to_string(), arn)].into());
            };
            self.update(change.touches("description"), change.touches("tags")).await?;
            Ok(observed.outputs.clone())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            // The default recovery window (30 days) applies: a destroyed token can be restored.
            self.secrets
                .delete_secret()
                .secret_id(&self.name)
                .send()
                .await
                .map(drop)
                .map_err(|e| failure(&Self::address(), "delete", &e))
        })
    }
}

/// Why `flixops secrets set` failed.
#[derive(Debug, thiserror::Error)]
pub enum SetSecretError {
    /// Nothing on stdin.
    #[error("no token on stdin: pipe it in, e.g. `flixops secrets set < token.txt` (it is never echoed or logged)")]
    Empty,
    /// The secret does not exist yet.
    #[error("secret `{name}` does not exist yet: run `flixops deploy` first, then `flixops secrets set`")]
    Missing { name: String },
    /// Secrets Manager refused.
    #[error("{0}")]
    Service(ResourceError),
}

/// Stores a new token version; the value is sent once and never logged.
pub async fn set_value(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    token: &crate::config::Secret,
) -> Result<String, SetSecretError> {
    if token.expose().trim().is_empty() {
        return Err(SetSecretError::Empty);
    }
    match secrets.put_secret_value().secret_id(name).secret_string(token.expose().trim()).send().await {
        Ok(out) => Ok(out.version_id.unwrap_or_default()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Err(SetSecretError::Missing { name: name.into() }),
        Err(e) => Err(SetSecretError::Service(failure(&Secret::address(), "put value", &e))),
    }
}

/// What the deployed token's secret holds, as `doctor` reads it.
#[derive(Debug)]
pub enum Deployed {
    /// A token.
    Token(crate::config::Secret),
    /// A value that is blank.
    Blank,
    /// The secret exists but no value was ever stored.
    NoValue,
    /// The secret is scheduled for deletion.
    Deleted,
    /// There is no such secret.
    Missing,
    /// Secrets Manager refused or could not be reached.
    Failed(String),
}

/// Reads the deployed token. GetSecretValue answers ResourceNotFoundException both for a missing
/// secret and for one created without a value
/// (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html>: "If you
/// don't include SecretString or SecretBinary, then Secrets Manager creates a secret with no
/// versions"): DescribeSecret tells which.
pub async fn deployed_token(secrets: &aws_sdk_secretsmanager::Client, name: &str) -> Deployed {
    match secrets.get_secret_value().secret_id(name).send().await.map(|v| v.secret_string) {
        Ok(Some(token)) if !token.trim().is_empty() => Deployed::Token(crate::config::Secret::new(token.trim().into())),
        Ok(_) => Deployed::Blank,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            match secrets.describe_secret().secret_id(name).send().await {
                Ok(found) if found.deleted_date.is_none() => Deployed::NoValue,
                Ok(_) => Deployed::Deleted,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                    Deployed::Missing
                }
                Err(e) => Deployed::Failed(super::error_message(&e)),
            }
        }
        Err(e) => Deployed::Failed(super::error_message(&e)),
    }
}
