//! flixops: stands up, runs and checks a tweet ELT pipeline (X API v2 → parquet → raw → models).
//! The binary parses arguments; everything it does is here, as calls that return reports.

pub mod aws;
pub mod config;
pub mod deploy;
pub mod doctor;
pub mod export;
pub mod extract;
pub mod init;
pub mod local;
pub mod logs;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod snowflake;
pub mod templates;
pub mod timeouts;

/// Every failure a command can end with; `main` maps each to a documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// flixops.toml is missing or invalid, or `--env` is unknown.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The extraction failed.
    #[error(transparent)]
    Extract(#[from] extract::ExtractError),
    /// A backfill could not start, or stopped.
    #[error(transparent)]
    Backfill(#[from] extract::backfill::BackfillError),
    /// The local warehouse or lake failed.
    #[error(transparent)]
    Local(#[from] local::LocalError),
    /// A model cannot be read or rendered.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A model failed to build.
    #[error(transparent)]
    Transform(#[from] models::local::TransformError),
    /// Reading, planning or applying resources failed.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// AWS credentials or region are missing or refused.
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
    /// The Lambda package cannot be built from `--artifact`.
    #[error(transparent)]
    Artifact(#[from] aws::lambda::ArtifactError),
    /// `secrets set` failed.
    #[error(transparent)]
    SetSecret(#[from] aws::secret::SetSecretError),
    /// An export could not be written.
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// `init` wrote nothing, or stopped part way.
    #[error(transparent)]
    Init(#[from] init::InitError),
    /// Arguments that parse but make no sense together.
    #[error("{0}")]
    Usage(String),
    /// The user did not approve the plan.
    #[error("{0}")]
    NotApproved(String),
    /// The command does not apply to this environment's target.
    #[error("environment `{env}` uses target {target}: {hint}")]
    WrongTarget { env: String, target: &'static str, hint: &'static str },
    /// No usable Snowflake connection is configured.
    #[error(transparent)]
    SnowflakeConnection(#[from] snowflake::connection::ConnectionError),
    /// Snowflake refused the sign-in or a statement.
    #[error(transparent)]
    Snowflake(#[from] snowflake::SnowflakeError),
    /// A timeout variable holds no number of seconds.
    #[error(transparent)]
    Timeout(#[from] timeouts::TimeoutError),
    /// The function's log group cannot be read.
    #[error(transparent)]
    Logs(#[from] aws::logs::LogsError),
    /// The command exists but this build cannot do it for this target yet.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// True when the user fixes it in flixops.toml or the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config(_) | Error::WrongTarget { .. } | Error::Artifact(_) | Error::Usage(_) | Error::Timeout(_)
        ) || matches!(self, Error::Aws(aws::AwsError::Timeout(_)))
            || matches!(self, Error::Export(export::ExportError::Schedule { .. }))
            || matches!(self, Error::Init(e) if e.is_usage())
            || matches!(self, Error::Backfill(e) if e.is_usage())
    }

    /// True when X's usage cap refuses every request until it resets (exit code 4).
    pub fn is_capped(&self) -> bool {
        matches!(self, Error::Extract(e) if e.is_capped()) || matches!(self, Error::Backfill(e) if e.is_capped())
    }

    /// True when a service could not be reached or refused the credentials (exit code 3).
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Extract(e) => e.is_connect(),
            Error::Backfill(e) => e.is_connect(),
            Error::Plan(e) => e.is_connect(),
            Error::Aws(e) => !matches!(e, aws::AwsError::Timeout(_)),
            Error::Snowflake(e) => e.is_connect(),
            Error::Logs(e) => e.is_connect(),
            // Like missing AWS credentials: nothing to sign in with.
            Error::SnowflakeConnection(_) => true,
            Error::Init(e) => e.is_connect(),
            Error::SetSecret(aws::secret::SetSecretError::Service(e)) => e.kind == plan::ErrorKind::Connect,
            _ => false,
        }
    }
}
