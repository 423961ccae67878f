//! The `flixops.toml` model: parsed with spans so every error names file, line, column and field.

mod raw;
pub mod rules;
pub mod schedule;
pub mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use secret::{Secret, SecretRef};

/// The rules `flixops.toml` validation applies, shared with `init` so a prompt rejects what the file would.
pub(crate) use rules::is_project_name;

/// True when `host` is this machine (localhost, 127.0.0.0/8, ::1): the only place plain `http`
/// may go, since it carries the bearer token or the Snowflake session in clear.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The file name `flixops` looks for in the working directory.
pub const FILE_NAME: &str = "flixops.toml";

/// A whole project: shared extraction settings plus named environments.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from (for messages).
    pub path: PathBuf,
    /// The directory relative paths are resolved against: the file's directory.
    pub root: PathBuf,
    /// `[project] name`, used in default resource names.
    pub project: String,
    /// `[project] default_env`, used when `--env` is not given.
    pub default_env: Option<String>,
    /// `[extract]`.
    pub extract: ExtractConfig,
    /// `[env.NAME]` tables, by name.
    pub envs: BTreeMap<String, EnvConfig>,
}

/// How the extractor queries the X API; shared by every environment.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// The recent-search query.
    pub query: String,
    /// `tweet.fields` sent with every request.
    pub tweet_fields: Vec<String>,
    /// `user.fields` sent with every request.
    pub user_fields: Vec<String>,
    /// `expansions` sent with every request.
    pub expansions: Vec<String>,
    /// The names requests use: today's `tweet.fields`, or the `post.fields` of X's newer spec.
    pub vocabulary: Vocabulary,
    /// Tweets per page (10..=100).
    pub max_results: u32,
    /// Stop after this many pages in one run (None: follow `next_token` to the end).
    pub max_pages: Option<u32>,
    /// Wall-clock budget for one run, including waits for a rate-limit reset.
    pub time_budget_secs: u64,
    /// Stop a run (resumably) before it reads more posts than this.
    pub max_posts_per_run: Option<u64>,
    /// Stop runs (resumably) once this UTC month's posts would pass this.
    pub max_posts_per_month: Option<u64>,
    /// What X bills per post read, for spend estimates.
    pub price_per_post_usd: f64,
    /// What X bills per user read ("User: Read"), for the users expansions return.
    pub price_per_user_usd: f64,
    /// Count what expansions return (`includes`) as billed: X's docs do not say; true errs high.
    pub includes_billed: bool,
    /// Schedule expression for the cloud target (EventBridge Scheduler syntax), checked by
    /// [`rules::schedule`] when the file is read.
    pub schedule: String,
    /// The line `schedule` is written on (None: the default), for what finds fault with it later
    /// (an export with no equivalent).
    pub schedule_line: Option<usize>,
    /// Where the bearer token comes from.
    pub bearer_token: SecretRef,
    /// X API base URL; overridable for proxies and tests.
    pub api_base_url: String,
    /// Per-request timeout.
    pub request_timeout_secs: u64,
    /// Retry policy for 5xx answers, timeouts and truncated bodies.
    pub retry: RetryPolicy,
}

/// Which names the X API's requests take. Responses are read in either vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vocabulary {
    /// `tweet.fields`, `referenced_tweets.id`, `note_tweet`: the prose docs and today's API.
    #[default]
    Tweet,
    /// `post.fields`, `referenced_posts.id`, `note_post`: the production OpenAPI spec since v2.167.
    Post,
}

impl Vocabulary {
    /// The query parameter that lists the fields of the primary objects.
    pub fn fields_param(self) -> &'static str {
        match self {
            Vocabulary::Tweet => "tweet.fields",
            Vocabulary::Post => "post.fields",
        }
    }

    /// A field or expansion name in this vocabulary (names written either way are accepted).
    pub fn word(self, name: &str) -> String {
        let pairs = [("referenced_tweets", "referenced_posts"), ("note_tweet", "note_post")];
        pairs.iter().fold(name.to_string(), |name, (tweet, post)| match self {
            Vocabulary::Tweet => name.replace(post, tweet),
            Vocabulary::Post => name.replace(tweet, post),
        })
    }
}

/// X's price per post read (pay-per-use, "Posts: Read"), from docs.x.com/x-api/getting-started/pricing
/// as read on 2026-11-29; `extract.price_per_post_usd` overrides it.
pub const DEFAULT_PRICE_PER_POST_USD: f64 = 0.005;
/// X's price per user read ("User: Read", same page and date).
pub const DEFAULT_PRICE_PER_USER_USD: f64 = 0.010;

/// Bounded, jittered exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub base_delay_ms: u64,
    /// Upper bound on one delay.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay_ms: 500, max_delay_ms: 30_000 }
    }
}

/// One named environment.
#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// The `NAME` of `[env.NAME]`.
    pub name: String,
    /// Key prefix inside the lake or bucket.
    pub prefix: String,
    /// Where the pipeline runs.
    pub target: Target,
    /// How old the newest data may be before doctor warns or fails (`[env.NAME.freshness]`).
    pub freshness: Freshness,
}

/// Data-age thresholds, as dbt's `freshness` block has them: older than `warn_after_minutes` is a
/// warning, older than `error_after_minutes` a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Age at which doctor warns.
    pub warn_after_minutes: i64,
    /// Age at which doctor fails.
    pub error_after_minutes: i64,
}

impl Default for Freshness {
    /// 4 h and 24 h: a schedule of a few hours misses one run before the warning.
    fn default() -> Self {
        Self { warn_after_minutes: 4 * 60, error_after_minutes: 24 * 60 }
    }
}

/// The engines an environment runs on.
#[derive(Debug, Clone)]
pub enum Target {
    /// A directory lake and an embedded DuckDB warehouse.
    Local(LocalTarget),
    /// S3, Lambda and Snowflake.
    AwsSnowflake(AwsSnowflakeTarget),
}

impl Target {
    /// The name used in `flixops.toml` (`target = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Local(_) => "local",
            Target::AwsSnowflake(_) => "aws-snowflake",
        }
    }
}

/// Paths of the local target, already resolved against the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    /// The directory that plays the bucket.
    pub lake_dir: PathBuf,
    /// The DuckDB file that plays the warehouse.
    pub warehouse: PathBuf,
}

impl LocalTarget {
    /// The default layout under a project root: `.flixops/lake` and `.flixops/warehouse.duckdb`.
    pub fn under(root: &Path) -> Self {
        Self { lake_dir: root.join(".flixops").join("lake"), warehouse: root.join(".flixops").join("warehouse.duckdb") }
    }
}

/// Names and accounts of the cloud target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSnowflakeTarget {
    /// AWS region (None: from the profile or environment).
    pub region: Option<String>,
    /// AWS profile from `~/.aws` (None: the default credential chain).
    pub aws_profile: Option<String>,
    /// The data bucket.
    pub bucket: String,
    /// Named connection in `~/.snowflake/connections.toml` (None: the default one).
    pub snowflake_connection: Option<String>,
    /// Snowflake database holding raw, staging, marts and ops.
    pub database: String,
    /// Snowflake warehouse for dynamic tables.
    pub warehouse: String,
    /// TARGET_LAG of the dynamic tables.
    pub target_lag: String,
    /// How long a call retries while IAM propagates a role or trust deploy just changed.
    pub iam_propagation_secs: u64,
    /// Days the function's CloudWatch log group keeps its events.
    pub log_retention_days: i32,
    /// The function's architecture, `x86_64` or `arm64`; the Lambda artifact must be built for it.
    pub lambda_architecture: String,
}

#[cfg(test)]
impl AwsSnowflakeTarget {
    /// A target with fixed names (database `ACME`, warehouse `WH`), for unit tests.
    pub(crate) fn for_tests() -> Self {
        Self {
            region: None,
            aws_profile: None,
            bucket: "b".into(),
            snowflake_connection: None,
            database: "ACME".into(),
            warehouse: "WH".into(),
            target_lag: "1 hour".into(),
            iam_propagation_secs: 120,
            log_retention_days: 30,
            lambda_architecture: "x86_64".into(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound { path: path.to_path_buf() }
            } else {
                ConfigError::Read { path: path.to_path_buf(), source }
            }
        })?;
        Self::parse(&text, path)
    }

    /// Validates config text; `path` is used for messages and as the root for relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        raw::parse(text, path)
    }

    /// A config for `run --demo` and first runs: one `dev` environment on the local target.
    pub fn local_default(root: &Path) -> Self {
        let text = "[project]\nname = \"flixops-demo\"\n\n[env.dev]\ntarget = \"local\"\n";
        let mut config = raw::parse(text, &root.join(FILE_NAME)).expect("built-in config is valid");
        config.path = PathBuf::from("(built-in demo config)");
        config
    }

    /// Picks the environment: `--env`, else `default_env`, else `dev`, else the only one.
    pub fn env(&self, requested: Option<&str>) -> Result<&EnvConfig, ConfigError> {
        let name = match requested.or(self.default_env.as_deref()) {
            Some(name) => name.to_string(),
            None if self.envs.contains_key("dev") => "dev".to_string(),
            None if self.envs.len() == 1 => self.envs.keys().next().cloned().unwrap_or_default(),
            None => return Err(self.unknown_env("(none given)")),
        };
        self.envs.get(&name).ok_or_else(|| self.unknown_env(&name))
    }

    fn unknown_env(&self, name: &str) -> ConfigError {
        ConfigError::UnknownEnv {
            name: name.to_string(),
            path: self.path.clone(),
            known: self.envs.keys().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

/// What can be wrong with a config, each naming the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file at the path.
    #[error("{path}: no such file; run `flixops init` to create one, or pass --config PATH", path = .path.display())]
    NotFound { path: PathBuf },
    /// The file exists but cannot be read.
    #[error("{path}: cannot read", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax or validation problems, one per line, each with line, column and field.
    #[error("{path}: invalid configuration:\n{list}", path = .path.display(), list = .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
    /// `--env` names an environment the file does not define.
    #[error("{path}: unknown environment `{name}`; defined: [{known}]; pass one with --env NAME", path = .path.display())]
    UnknownEnv { name: String, path: PathBuf, known: String },
}

/// One located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path, e.g. `env.dev.target`.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: {}: {}", self.line, self.column, self.field, self.message)
    }
}
