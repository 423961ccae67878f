//! AWS clients, built once from the standard credential chain (env, profiles, SSO, web identity), and
//! the AWS resources of the cloud target. Each resource module owns its read, diff and apply.

pub mod artifact;
pub mod checkpoint;
pub mod iam;
pub mod lambda;
pub mod log_group;
pub mod logs;
pub mod policy;
pub mod profiles;
pub mod s3;
pub mod schedule;
pub mod secret;
pub mod stack;

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use crate::plan::{Address, ErrorKind, ResourceError};

/// Loads SDK config for an optional profile and region; `AWS_ENDPOINT_URL*` overrides apply.
/// Calls get the default [`Timeouts`](crate::timeouts::Timeouts).
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(crate::timeouts::Timeouts::default().aws());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// An S3 client; path-style addressing when a custom endpoint is set (MinIO, moto, proxies).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    s3_client_with(sdk, &[])
}

fn s3_client_with(sdk: &aws_config::SdkConfig, interceptors: &[SharedInterceptor]) -> aws_sdk_s3::Client {
    let custom_endpoint = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let mut config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(custom_endpoint);
    for i in interceptors {
        config.push_interceptor(i.clone());
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// Every client `deploy` needs, each with the same interceptors (the call log first).
#[derive(Clone, Debug)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// EventBridge Scheduler.
    pub scheduler: aws_sdk_scheduler::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// STS (who am I).
    pub sts: aws_sdk_sts::Client,
    /// CloudWatch Logs (the function's errors, read by `doctor`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

macro_rules! client_with {
    ($krate:ident, $sdk:expr, $interceptors:expr) => {{
        let mut config = $krate::config::Builder::from($sdk);
        for i in $interceptors {
            config.push_interceptor(i.clone());
        }
        $krate::Client::from_conf(config.build())
    }};
}

impl Clients {
    /// Builds every client from one SDK config.
    pub fn new(sdk: &aws_config::SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        Self {
            s3: s3_client_with(sdk, interceptors),
            iam: client_with!(aws_sdk_iam, sdk, interceptors),
            lambda: client_with!(aws_sdk_lambda, sdk, interceptors),
            scheduler: client_with!(aws_sdk_scheduler, sdk, interceptors),
            secrets: client_with!(aws_sdk_secretsmanager, sdk, interceptors),
            sts: client_with!(aws_sdk_sts, sdk, interceptors),
            logs: client_with!(aws_sdk_cloudwatchlogs, sdk, interceptors),
        }
    }
}

/// Records every AWS operation a command calls, so `deploy` can prove a converged run writes nothing.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    /// Every call so far, as `service:Operation`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("call log lock").clone()
    }

    /// The calls that change something: all but Get*, List*, Head*, Describe*.
    pub fn writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| is_write(c)).collect()
    }
}

/// True for an operation that can change state (`service:Operation`).
pub fn is_write(call: &str) -> bool {
    let operation = call.rsplit(':').next().unwrap_or(call);
    !["Get", "List", "Head", "Describe", "Filter"].iter().any(|read| operation.starts_with(read))
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "flixops::CallLog"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let call = format!("{}:{}", meta.service(), meta.name());
            match is_write(&call) {
                true => tracing::debug!("AWS call {call}"),
                false => tracing::trace!("AWS call {call}"),
            }
            self.calls.lock().expect("call log lock").push(call);
        }
        Ok(())
    }
}

/// Clients plus who and where we are; built once per command.
#[derive(Clone, Debug)]
pub struct Session {
    /// The clients.
    pub clients: Clients,
    /// The account the credentials belong to (from STS).
    pub account_id: String,
    /// The region every resource lives in.
    pub region: String,
    /// Every call made through `clients`.
    pub calls: CallLog,
}

/// Why flixops could not start talking to AWS; always exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No region in flixops.toml, the profile or the environment.
    #[error("no AWS region: set `region` under [env.{env}] in flixops.toml, or AWS_REGION, or `region` in the profile")]
    NoRegion { env: String },
    /// STS refused the credentials or could not be reached.
    #[error("{what}{profile}: {message}\n  fix: {hint}")]
    Identity { what: &'static str, profile: String, message: String, hint: String },
    /// A timeout variable holds no number of seconds.
    #[error(transparent)]
    Timeout(#[from] crate::timeouts::TimeoutError),
}

impl Session {
    /// Loads config for the profile and region, with the timeouts of the environment variables
    /// (`FLIXOPS_*_TIMEOUT_SECS`), then [`Session::from_sdk`].
    pub async fn connect(
        env: &str,
        profile: Option<&str>,
        region: Option<&str>,
        extra: &[SharedInterceptor],
    ) -> Result<Self, AwsError> {
        let timeouts = crate::timeouts::Timeouts::from_process_env()?;
        let sdk = sdk_config(profile, region).await.to_builder().timeout_config(timeouts.aws()).build();
        Self::from_sdk(env, &sdk, profile, extra).await
    }

    /// Checks the credentials with STS GetCallerIdentity and builds the clients; `extra`
    /// interceptors go on every client after the call log.
    pub async fn from_sdk(
        env: &str,
        sdk: &aws_config::SdkConfig,
        profile: Option<&str>,
        extra: &[SharedInterceptor],
    ) -> Result<Self, AwsError> {
        let region = sdk.region().map(|r| r.to_string()).ok_or(AwsError::NoRegion { env: env.to_string() })?;
        let calls = CallLog::default();
        let mut interceptors = vec![SharedInterceptor::new(calls.clone())];
        interceptors.extend(extra.iter().cloned());
        let clients = Clients::new(sdk, &interceptors);
        let who = clients.sts.get_caller_identity().send().await.map_err(|e| {
            let flag = profile.map(|p| format!(" --profile {p}")).unwrap_or_default();
            let message = error_message(&e);
            let what = if credentials_not_loaded(&e) {
                "no AWS credentials found"
            } else if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
                "cannot reach AWS STS"
            } else {
                "AWS did not accept the credentials"
            };
            AwsError::Identity {
                what,
                profile: profile.map(|p| format!(" (profile `{p}`)")).unwrap_or_default(),
                message,
                hint: format!(
                    "check that `aws sts get-caller-identity{flag}` works (for SSO: `aws sso login{flag}`), \
                     and that region `{region}` is right"
                ),
            }
        })?;
        let account_id = who.account().unwrap_or_default().to_string();
        Ok(Self { clients, account_id, region, calls })
    }
}

/// How long a call that hands a service a role (or uses a trust) changed seconds ago retries while
/// IAM propagates the change. IAM is eventually consistent
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency>);
/// Terraform's AWS provider waits up to 2 minutes for it, and so does flixops by default
/// (`iam_propagation_secs` in flixops.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    /// No retry starts after this long.
    pub bound: std::time::Duration,
}

impl Default for Propagation {
    fn default() -> Self {
        Self::from_secs(DEFAULT_PROPAGATION_SECS)
    }
}

/// The default bound of [`Propagation`], as Terraform's AWS provider waits for IAM.
pub const DEFAULT_PROPAGATION_SECS: u64 = 120;

/// The first wait between two tries; it doubles up to [`MAX_PROPAGATION_WAIT`].
const FIRST_PROPAGATION_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_PROPAGATION_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

impl Propagation {
    /// A bound of `secs` seconds.
    pub fn from_secs(secs: u64) -> Self {
        Self { bound: std::time::Duration::from_secs(secs) }
    }

    /// Calls until `call` succeeds, fails for another reason than `propagating`, or the bound has
    /// passed (then its last error is returned); waits 1 s, doubling to 15 s, never past the bound.
    pub async fn retry<T, E, Fut>(
        &self,
        mut call: impl FnMut() -> Fut,
        propagating: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let deadline = tokio::time::Instant::now() + self.bound;
        let mut wait = FIRST_PROPAGATION_WAIT;
        loop {
            match call().await {
                Err(e) if propagating(&e) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(e);
                    }
                    tokio::time::sleep(wait.min(left)).await;
                    wait = (wait * 2).min(MAX_PROPAGATION_WAIT);
                }
                other => return other,
            }
        }
    }
}

/// True when the credential chain found nothing to sign with (no keys, profile, SSO or role).
fn credentials_not_loaded(err: &(dyn std::error::Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(CredentialsError::CredentialsNotLoaded(_)) = cause.downcast_ref::<CredentialsError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Error codes meaning the credentials themselves were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

/// Turns an SDK error into the resource error the engine reports, classified for the exit code.
pub(crate) fn failure<E>(address: &Address, op: &str, err: &SdkError<E, HttpResponse>) -> ResourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = if is_connect_error(err) { ErrorKind::Connect } else { ErrorKind::Other };
    let mut message = error_message(err);
    if err.code() == Some("AccessDenied") || err.code() == Some("AccessDeniedException") {
        message.push_str("; the deploying identity lacks this permission: grant it, or deploy with a role that has it");
    }
    if matches!(err, SdkError::TimeoutError(_)) {
        message.push_str(&format!(
            " (no answer within the timeout; if the service is only slow, raise {} or {})",
            crate::timeouts::OPERATION_VAR,
            crate::timeouts::CONNECT_VAR
        ));
    }
    ResourceError { address: address.clone(), op: op.to_string(), message, kind }
}

/// True when the service was unreachable or refused the credentials (exit code 3).
pub(crate) fn is_connect_error<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => true,
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| CREDENTIAL_CODES.contains(&c)),
        _ => false,
    }
}

/// The service's code and message, or the whole error chain when there is no service answer.
pub(crate) fn error_message<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => match err.raw_response() {
            // An error the SDK could not classify: the HTTP answer says more than "unhandled error".
            Some(raw) if matches!(err, SdkError::ServiceError(_)) => {
                let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
                let body: String = body.chars().take(400).collect();
                format!("HTTP {}: {}", raw.status().as_u16(), body.trim())
            }
            _ => chain(err),
        },
    }
}

/// The error and its sources, each once, joined by `: ` (no Debug dump).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The tags every flixops resource carries, so a console user can tell who owns it.
#[derive(Debug, Clone, Serialize)]
pub struct Tags {
    /// `flixops:project`.
    pub project: String,
    /// `flixops:env`.
    pub env: String,
}

impl Tags {
    /// As key/value pairs, sorted.
    pub fn pairs(&self) -> Vec<(String, String)> {
        vec![("flixops:env".into(), self.env.clone()), ("flixops:project".into(), self.project.clone())]
    }

    /// The comparable field value: `k=v,k=v` of our keys only (others' tags are left alone).
    pub fn field(&self) -> String {
        tags_field(self.pairs().into_iter(), &self.pairs())
    }
}

/// Renders observed tags as a field, keeping only the keys flixops manages.
pub(crate) fn tags_field(observed: impl Iterator<Item = (String, String)>, ours: &[(String, String)]) -> String {
    let mut kept: Vec<(String, String)> = observed.filter(|(k, _)| ours.iter().any(|(o, _)| o == k)).collect();
    kept.sort();
    kept.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::Propagation;

    /// A call that fails `failures` times with `error`, then succeeds; counts its tries.
    async fn tries(
        bound: Duration,
        failures: usize,
        error: &'static str,
    ) -> (Result<(), &'static str>, usize, Duration) {
        let count = AtomicUsize::new(0);
        let started = Instant::now();
        let call = || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move { if n < failures { Err(error) } else { Ok(()) } }
        };
        let result = Propagation { bound }.retry(call, |e: &&str| *e == "propagating").await;
        (result, count.load(Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test]
    async fn only_propagation_errors_are_retried_and_never_past_the_bound() {
        let bound = Duration::from_millis(300);
        assert_eq!(tries(bound, 1, "propagating").await.0, Ok(()), "retried, then it worked");
        let (result, calls, _) = tries(bound, 1, "AccessDenied").await;
        assert_eq!((result, calls), (Err("AccessDenied"), 1), "any other error is returned at once");

        // Still propagating at the bound: the last error, after one wait cut to the bound.
        let (result, calls, took) = tries(bound, usize::MAX, "propagating").await;
        assert_eq!((result, calls), (Err("propagating"), 2));
        assert!(took >= bound && took < Duration::from_secs(1), "{took:?}");
        let (result, calls, _) = tries(Duration::ZERO, usize::MAX, "propagating").await;
        assert_eq!((result, calls), (Err("propagating"), 1), "a zero bound never retries");
        assert_eq!(Propagation::default().bound, Duration::from_secs(120), "Terraform's AWS provider waits 2 minutes");
    }

    #[test]
    fn each_service_names_its_propagation_error() {
        // The answers while a role created or changed seconds ago is not visible yet.
        let lambda = Some("The role defined for the function cannot be assumed by Lambda.");
        assert!(super::lambda::role_not_yet_assumable(Some("InvalidParameterValueException"), lambda));
        let bad_memory = Some("Memory size must be a multiple of 1 MB");
        assert!(!super::lambda::role_not_yet_assumable(Some("InvalidParameterValueException"), bad_memory));
        let scheduler = Some("The execution role you provide must allow AWS EventBridge Scheduler to assume the role.");
        assert!(super::schedule::role_not_yet_assumable(Some("ValidationException"), scheduler));
        assert!(!super::schedule::role_not_yet_assumable(
            Some("ValidationException"),
            Some("Invalid Schedule Expression")
        ));
        let snowflake = "SQL execution error: Error assuming AWS_ROLE. Please verify the role and externalId are \
                         configured correctly in your AWS policy.";
        assert!(crate::snowflake::pipe::role_not_yet_assumable(snowflake));
        assert!(!crate::snowflake::pipe::role_not_yet_assumable("Pipe 'P' does not exist or not authorized."));
    }

    #[test]
    fn reads_are_not_writes() {
        for read in ["s3:HeadBucket", "iam:GetRole", "lambda:ListTags", "secretsmanager:DescribeSecret"] {
            assert!(!super::is_write(read), "{read}");
        }
        for write in ["s3:PutBucketPolicy", "iam:CreateRole", "lambda:UpdateFunctionCode", "sts:AssumeRole"] {
            assert!(super::is_write(write), "{write}");
        }
    }
}
