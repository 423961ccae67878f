//! The same binary as an AWS Lambda (`provided.al2023`): each invocation is one extraction run into
//! S3. Settings come from the function's environment, written by `flixops deploy`.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};

use super::api::XClient;
use super::sink::Sink;
use super::{Job, Source};
use crate::config::{Config, ExtractConfig, SecretRef};

/// The variable the Lambda runtime sets; without it the runtime would panic, so check first.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

/// True when this process was started by the Lambda runtime.
pub fn is_lambda() -> bool {
    std::env::var_os(RUNTIME_API_VAR).is_some()
}

/// What the function needs, read once at cold start.
struct Settings {
    extract: ExtractConfig,
    job: Job,
    sdk: aws_config::SdkConfig,
    sink: Sink,
}

/// A missing or malformed function setting.
#[derive(Debug, thiserror::Error)]
#[error("Lambda setting {name}: {message}; redeploy with `flixops deploy`")]
pub struct SettingsError {
    name: &'static str,
    message: String,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, SettingsError> {
    var(name)
        .map(|v| v.parse().map_err(|_| SettingsError { name, message: format!("`{v}` is not a number") }))
        .transpose()
}

impl Settings {
    async fn from_env() -> Result<Self, SettingsError> {
        let bucket =
            var("FLIXOPS_BUCKET").ok_or(SettingsError { name: "FLIXOPS_BUCKET", message: "not set".into() })?;
        let mut extract = Config::local_default(std::path::Path::new(".")).extract;
        extract.query = var("FLIXOPS_QUERY").unwrap_or(extract.query);
        extract.api_base_url = var("FLIXOPS_X_API_BASE_URL").unwrap_or(extract.api_base_url);
        extract.max_results = number("FLIXOPS_MAX_RESULTS")?.unwrap_or(extract.max_results);
        extract.max_pages = number("FLIXOPS_MAX_PAGES")?.or(extract.max_pages);
        extract.max_posts_per_run = number("FLIXOPS_MAX_POSTS_PER_RUN")?.or(extract.max_posts_per_run);
        extract.max_posts_per_month = number("FLIXOPS_MAX_POSTS_PER_MONTH")?.or(extract.max_posts_per_month);
        extract.bearer_token = match (var("FLIXOPS_X_TOKEN_SECRET_ARN"), var("FLIXOPS_X_TOKEN_ENV")) {
            (Some(arn), _) => SecretRef::SecretsManager(arn),
            (None, Some(name)) => SecretRef::Env(name),
            (None, None) => extract.bearer_token,
        };
        let job = Job::new(&extract, &var("FLIXOPS_PREFIX").unwrap_or_else(|| "flixops".into()));
        let sdk = aws_config::load_from_env().await;
        let sink = Sink::S3 { client: crate::aws::s3_client(&sdk), bucket };
        Ok(Self { extract, job, sdk, sink })
    }

    /// One run; a failure is also logged as an `ERROR` line, which `doctor` looks for in the
    /// function's log group (the runtime only reports it to the Lambda service).
    async fn invoke(&self, event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, lambda_runtime::Error> {
        let result = self.run_once(event).await;
        if let Err(e) = &result {
            tracing::error!("extraction failed: {e}");
        }
        result
    }

    async fn run_once(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error> {
        let token = self.extract.bearer_token.resolve(Some(&self.sdk)).await?;
        let mut source = Source::Api(XClient::new(&self.extract, token)?);
        let mut job = self.job.clone();
        // Stop in time to store the checkpoint before the function's own deadline.
        let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        job.time_budget = job.time_budget.min(left.saturating_sub(Duration::from_secs(10)));
        let report = super::run(&job, &mut source, &self.sink).await?;
        tracing::info!(run_id = %report.run_id, pages = report.pages, tweets = report.tweets, "extraction finished");
        Ok(serde_json::to_value(report)?)
    }
}

/// Serves invocations until the runtime stops the process.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    // lambda_runtime panics when these are missing; say which one instead.
    for name in ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION"] {
        if std::env::var_os(name).is_none() {
            return Err(format!(
                "{RUNTIME_API_VAR} is set but {name} is not: this is not a Lambda runtime environment"
            )
            .into());
        }
    }
    let settings = Settings::from_env().await?;
    let settings = &settings;
    lambda_runtime::run(service_fn(move |event| async move { settings.invoke(event).await })).await
}
