//! flixops: stands up, runs and checks a tweet ELT pipeline (X API v2 → parquet → raw → models).
//! The binary parses arguments; everything it does is here, as calls that return reports.

pub mod aws;
pub mod config;
pub mod deploy;
pub mod doctor;
pub mod export;
pub mod extract;
pub mod init;
#[cfg(feature = "local")]
pub mod local;
/// Without the `local` feature, the same entry points say the build has no DuckDB.
#[cfg(not(feature = "local"))]
#[path = "local/absent.rs"]
pub mod local;
pub mod logs;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod report;
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
    Transform(#[from] local::models::TransformError),
    /// This build has no local target (built without DuckDB).
    #[error("{0}")]
    NoLocal(&'static str),
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
    /// The report could not be read or written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// A timeout variable holds no number of seconds.
    #[error(transparent)]
    Timeout(#[from] timeouts::TimeoutError),
    /// The function's log group cannot be read.
    #[error(transparent)]
    Logs(#[from] aws::logs::LogsError),
    /// The local run history cannot be read.
    #[error(transparent)]
    History(#[from] logs::history::HistoryError),
    /// The command exists but this build cannot do it for this target yet.
    #[error("{0}")]
    Unsupported(String),
    /// A saved plan cannot be read, or no longer matches what it was made from.
    #[error(transparent)]
    PlanFile(#[from] plan::saved::PlanFileError),
    /// `run` stored pages, then a later step failed: says what is kept and what resumes it.
    #[error("{cause}\n{kept}")]
    Kept {
        /// What was stored, and the command that carries on from it.
        kept: String,
        /// The step that failed.
        cause: Box<Error>,
    },
}

impl Error {
    /// True when the user fixes it in flixops.toml or the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        if let Error::Kept { cause, .. } = self {
            return cause.is_usage();
        }
        matches!(
            self,
            Error::Config(_)
                | Error::WrongTarget { .. }
                | Error::Artifact(_)
                | Error::Usage(_)
                | Error::Timeout(_)
                | Error::NoLocal(_)
        ) || matches!(self, Error::Aws(aws::AwsError::Timeout(_)))
            || matches!(
                self,
                Error::Export(export::ExportError::Schedule { .. } | export::ExportError::ConnectionName { .. })
            )
            || matches!(self, Error::Init(e) if e.is_usage())
            || matches!(self, Error::Backfill(e) if e.is_usage())
            || matches!(self, Error::Extract(e) if e.is_usage())
            || matches!(self, Error::Model(e) if e.is_usage())
            || matches!(self, Error::PlanFile(e) if e.is_usage())
            || matches!(self, Error::Report(e) if e.is_usage())
    }

    /// True when X's usage cap refuses every request until it resets (exit code 4).
    pub fn is_capped(&self) -> bool {
        if let Error::Kept { cause, .. } = self {
            return cause.is_capped();
        }
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
            Error::Report(e) => e.is_connect(),
            Error::SetSecret(aws::secret::SetSecretError::Service(e)) => e.kind == plan::ErrorKind::Connect,
            Error::Kept { cause, .. } => cause.is_connect(),
            _ => false,
        }
    }

    /// A stable name for the failure, for `--output json` (`{"error": {"kind": …}}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Extract(e) if e.is_usage() => "input",
            Error::Extract(_) => "extract",
            Error::Backfill(_) => "backfill",
            Error::Local(_) => "warehouse",
            Error::Model(_) => "model",
            Error::Transform(_) => "transform",
            Error::Plan(_) => "plan",
            Error::Aws(_) => "aws",
            Error::Artifact(_) => "artifact",
            Error::SetSecret(_) => "secret",
            Error::Export(_) => "export",
            Error::Init(_) => "init",
            Error::Usage(_) => "usage",
            Error::NoLocal(_) => "no_local_target",
            Error::NotApproved(_) => "not_approved",
            Error::WrongTarget { .. } => "wrong_target",
            Error::SnowflakeConnection(_) => "snowflake_connection",
            Error::Snowflake(_) => "snowflake",
            Error::Report(_) => "report",
            Error::Timeout(_) => "timeout",
            Error::Logs(_) => "logs",
            Error::History(_) => "history",
            Error::Unsupported(_) => "unsupported",
            Error::PlanFile(e) => e.kind(),
            Error::Kept { cause, .. } => cause.kind(),
        }
    }

    /// The next thing to do, for `--output json`, where this failure knows it (the human message
    /// already says it in its words); `main` falls back on the fix of the exit code's class.
    pub fn fix(&self) -> Option<String> {
        use config::ConfigError;
        match self {
            Error::Config(ConfigError::NotFound { .. }) => {
                Some("run `flixops init` to create flixops.toml, or pass --config PATH".into())
            }
            Error::Config(ConfigError::Invalid { path, .. }) => {
                Some(format!("correct the listed lines of {}, then run the command again", path.display()))
            }
            Error::Config(ConfigError::UnknownEnv { known, .. }) => {
                Some(format!("pass --env NAME with a defined environment: {known}"))
            }
            Error::WrongTarget { hint, .. } => Some(hint.to_string()),
            Error::NotApproved(_) => Some("run it again and answer `yes`, or pass --yes".into()),
            Error::Extract(e) => e.fix(),
            Error::Model(models::ModelError::NoSuchModel { .. }) => Some("name models as listed: schema.name".into()),
            Error::Model(_) => Some("correct the model file named in the message; nothing was run".into()),
            Error::Plan(plan::PlanError::Apply { verb, .. }) => {
                Some(format!("fix the cause and run `flixops {verb}` again: it reads what exists and continues"))
            }
            Error::PlanFile(e) => Some(e.fix()),
            Error::Kept { cause, .. } => Some(match cause.fix() {
                Some(fix) => format!("{fix}; then run `flixops transform` to load what was stored"),
                None => "fix the cause, then run `flixops transform` to load what was stored".into(),
            }),
            _ => None,
        }
    }
}
