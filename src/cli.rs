//! The argument model only: what was typed. `main` resolves it into config and calls the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stands up, runs and checks a tweet ELT pipeline:
/// X API v2 recent search → parquet in object storage → raw table → SQL models.
#[derive(Debug, Parser)]
#[command(name = "flixops", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, shown under `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (the message says what was done and how to resume)
  2  usage: bad arguments, missing or invalid flixops.toml, unknown --env, wrong target, a missing
     input (the X token's variable, a --replay file) or one that is not what it should be
  3  cannot connect: a service was unreachable or refused the credentials (X API credits used up too)
  4  the X API usage cap is reached: nothing succeeds until it resets
With --output json a failure prints {\"error\": {\"kind\", \"message\", \"fix\", \"exit_code\"}} on stdout.";

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Project file [default: ./flixops.toml]
    #[arg(long, global = true, env = "FLIXOPS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Environment (`[env.NAME]`) [default: project.default_env, else `dev`, else the only one]
    #[arg(long, short = 'e', global = true, env = "FLIXOPS_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// Human lines (results such as a plan on stdout, reports on stderr), or one JSON document on
    /// stdout, failures included
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputArg::Human)]
    pub output: OutputArg,
    /// More log detail on stderr: -v each resource read and written and each model's SQL, -vv
    /// trace; RUST_LOG overrides. Colour follows NO_COLOR and CLICOLOR_FORCE
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only results (stdout) and errors: no report, progress or warning on stderr
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write flixops.toml, models/ and .gitignore for a new project
    Init(InitArgs),
    /// Show what `deploy` would change, without changing anything
    Plan(PlanArgs),
    /// Create or update every resource of the environment (idempotent, safe in CI)
    Deploy(DeployArgs),
    /// Check the pipeline end to end; every failure comes with its fix
    ///
    /// Read-only; the checks run concurrently, each with a 30 s timeout (FLIXOPS_CHECK_TIMEOUT_SECS).
    /// local: the lake, the checkpoint, the warehouse, raw freshness, pending loads, models against
    /// the ledger. aws-snowflake: AWS identity and Snowflake sign-in; every resource as `plan` reads
    /// it (missing or drifted → `flixops deploy`); LIST of the stage; the pipe's status and its copy
    /// history (24 h: each failed file with its error, line and column); raw and models freshness
    /// ([env.NAME.freshness]; raw tells "ran, nothing new" from "did not run"); the checkpoint
    /// against the 7-day search window; the function's error lines (24 h); the X token.
    ///
    /// With --canary it also writes one marked parquet file under the tweets prefix and waits
    /// (--canary-timeout) until its row is in the raw table, reporting the latency; the staging
    /// model leaves canary rows out.
    ///
    /// Exit 0 when nothing failed (warnings included, unless --strict), 1 on a failure.
    Doctor(DoctorArgs),
    /// The extract function's logs (CloudWatch, as `sam logs` prints them); locally, the run history
    Logs(LogsArgs),
    /// Run one extraction: X API recent search (or a recording) → one parquet file per page
    Extract(ExtractArgs),
    /// Fetch history with X full-archive search, quoted before it buys anything, resumable
    ///
    /// First the quote: posts per day from the counts endpoint, their price at
    /// extract.price_per_post_usd and what the monthly cap leaves. Then the range, newest first,
    /// into the same lake layout as `extract`. Killed or capped, the same command resumes; another
    /// range is refused while one is open, unless --abandon.
    Backfill(BackfillArgs),
    /// Local target: extract → load → transform, once
    Run(RunArgs),
    /// Rebuild the models (local target: loads pending lake files first, as Snowpipe would)
    Transform,
    /// Print each model's SQL as it runs on this environment's warehouse (helpers and refs
    /// rendered), in build order, without connecting to anything
    Compile(CompileArgs),
    /// Write one self-contained HTML page of the marts (charts as inline SVG; no script, opens offline)
    ///
    /// It reads the environment's models, never the raw table: DuckDB on `local` (opened read-only),
    /// Snowflake on `aws-snowflake` (over the environment's connection). Tweets per day with the
    /// retweet share, top hashtags, most active authors, busiest weekday and hour, tweets with three
    /// or more hashtags, and what the data covers (query, newest tweet, newest load). `--output json`
    /// prints the same numbers. `flixops run --demo` writes one beside the warehouse.
    Report(ReportArgs),
    /// Tear the environment down in reverse order (keeps the data unless --purge-data)
    Destroy(DestroyArgs),
    /// Manage the secrets `deploy` creates (the X bearer token)
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print a deployment artifact for teams that run their own tooling
    Export(ExportArgs),
    /// Print a shell completion script to stdout
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// Every answer of the wizard, as a flag or a `FLIXOPS_INIT_*` variable; a given answer skips its
/// prompt, and `--no-interactive` takes the defaults for the rest.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Ask nothing: take the flags, FLIXOPS_INIT_* variables and defaults (required when stdin is not a terminal)
    #[arg(long)]
    pub no_interactive: bool,
    /// Update an existing flixops.toml in place (its comments and other settings are kept), and replace a
    /// changed CI workflow
    #[arg(long)]
    pub force: bool,
    /// Skip the live checks (AWS credentials with STS, the bucket's name, the Snowflake connection)
    #[arg(long)]
    pub no_validate: bool,
    /// Project directory: flixops.toml, models/, .gitignore and .github/ go here [default: the current directory]
    #[arg(long, value_name = "DIR", env = "FLIXOPS_INIT_DIR")]
    pub dir: Option<PathBuf>,
    /// Project name (a-z, 0-9, -) [default: from the directory's name]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_PROJECT")]
    pub project: Option<String>,
    /// Where the pipeline runs [default: local] (the environment's name is --env, default dev or prod)
    #[arg(long, value_enum, env = "FLIXOPS_INIT_TARGET")]
    pub target: Option<InitTarget>,
    /// aws-snowflake: AWS profile from ~/.aws/config or ~/.aws/credentials [default: $AWS_PROFILE, else the
    /// first listed, `default` first]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_AWS_PROFILE")]
    pub aws_profile: Option<String>,
    /// aws-snowflake: AWS region [default: the profile's region, else AWS_REGION]
    #[arg(long, value_name = "REGION", env = "FLIXOPS_INIT_REGION")]
    pub region: Option<String>,
    /// aws-snowflake: the data bucket [default: {project}-{env}-tweets]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_BUCKET")]
    pub bucket: Option<String>,
    /// aws-snowflake: Snowflake connection from connections.toml (with --snowflake-account: the name of the
    /// one to create) [default: the default connection]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_SNOWFLAKE_CONNECTION")]
    pub snowflake_connection: Option<String>,
    /// aws-snowflake: create a key-pair connection in connections.toml with this account (orgname-accountname);
    /// also give --snowflake-user and --snowflake-private-key-file
    #[arg(long, value_name = "ACCOUNT", env = "FLIXOPS_INIT_SNOWFLAKE_ACCOUNT")]
    pub snowflake_account: Option<String>,
    /// The user of the connection to create
    #[arg(long, value_name = "USER", env = "FLIXOPS_INIT_SNOWFLAKE_USER")]
    pub snowflake_user: Option<String>,
    /// The private key file (PKCS#8 PEM) of the connection to create; only its path is written
    #[arg(long, value_name = "PATH", env = "FLIXOPS_INIT_SNOWFLAKE_PRIVATE_KEY_FILE")]
    pub snowflake_private_key_file: Option<PathBuf>,
    /// aws-snowflake: Snowflake database [default: the project name in upper case]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_DATABASE")]
    pub database: Option<String>,
    /// aws-snowflake: Snowflake warehouse for the models [default: the connection's, else COMPUTE_WH]
    #[arg(long, value_name = "NAME", env = "FLIXOPS_INIT_SNOWFLAKE_WAREHOUSE")]
    pub snowflake_warehouse: Option<String>,
    /// aws-snowflake: TARGET_LAG of the dynamic tables [default: 1 hour]
    #[arg(long, value_name = "LAG", env = "FLIXOPS_INIT_TARGET_LAG")]
    pub target_lag: Option<String>,
    /// Read the X bearer token from this environment variable [default: X_BEARER_TOKEN]
    #[arg(long, value_name = "VAR", env = "FLIXOPS_INIT_TOKEN_ENV", conflicts_with = "token_secret_arn")]
    pub token_env: Option<String>,
    /// Read the X bearer token from this Secrets Manager secret
    #[arg(long, value_name = "ARN", env = "FLIXOPS_INIT_TOKEN_SECRET_ARN")]
    pub token_secret_arn: Option<String>,
    /// The X recent-search query [default: flixbus]
    #[arg(long, value_name = "QUERY", env = "FLIXOPS_INIT_QUERY", allow_hyphen_values = true)]
    pub query: Option<String>,
    /// Extraction schedule, EventBridge syntax [default: rate(1 hour)]
    #[arg(long, value_name = "EXPR", env = "FLIXOPS_INIT_SCHEDULE")]
    pub schedule: Option<String>,
    /// aws-snowflake: CI workflow to write into .github/workflows/flixops.yml [default: none]
    #[arg(long, value_enum, env = "FLIXOPS_INIT_CI")]
    pub ci: Option<InitCi>,
}

/// `init --target` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InitTarget {
    /// A directory lake and DuckDB on this machine
    Local,
    /// S3, Lambda and Snowflake
    AwsSnowflake,
}

/// `init --ci` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InitCi {
    /// No workflow
    None,
    /// GitHub Actions: plan on pull requests, deploy then doctor on main
    GithubActions,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 0 when nothing would change, 2 when something would, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE, for `flixops deploy FILE` (it holds no secret: values read
    /// are kept as checksums)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A plan saved by `flixops plan --out FILE`: apply exactly it, without asking, or refuse
    /// (exit 1) when the configuration or the live state moved since it was made
    #[arg(value_name = "PLAN_FILE")]
    pub plan: Option<PathBuf>,
    /// Apply without asking (needed when stdin is not a terminal, e.g. in CI)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// What `plan` and `deploy` package and compare.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// The Lambda's `bootstrap`: a Linux x86_64/arm64 executable or a zip holding one
    /// [default: this flixops binary]
    #[arg(long, value_name = "PATH", env = "FLIXOPS_ARTIFACT")]
    pub artifact: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store the X API bearer token, read from stdin, in the environment's Secrets Manager secret
    /// (created by `deploy`); it is never echoed, logged or written to disk
    Set,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Exit 1 on warnings too
    #[arg(long)]
    pub strict: bool,
    /// Leave a check out: `token` (the X token probe reads the secret; CI's deploy role cannot)
    #[arg(long, value_enum, value_name = "CHECK")]
    pub skip: Vec<SkipArg>,
    /// Follow one marked file from the bucket (or lake) to the raw table and report the latency
    #[arg(long)]
    pub canary: bool,
    /// How long --canary waits for its row: 90s, 3m, 1h
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = duration, requires = "canary")]
    pub canary_timeout: std::time::Duration,
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// How far back to start: 30m, 1h, 2d
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    pub since: std::time::Duration,
    /// Keep printing new lines as they arrive (Ctrl-C stops)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the lines of failed runs (ERROR, Task timed out, Runtime exited; locally failed runs)
    #[arg(long)]
    pub errors: bool,
}

/// A duration: a whole number and a unit, s, m, h or d (`90s`, `3m`, `1h`, `2d`).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: use a number and a unit, s, m, h or d (90s, 3m, 1h)")),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n * seconds)),
        _ => Err(format!("`{text}`: use a number above 0 and a unit, s, m, h or d (90s, 3m, 1h)")),
    }
}

/// `doctor --skip` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SkipArg {
    /// The X token probe (reads the secret's value)
    Token,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Destroy without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also delete the data bucket and everything in it
    #[arg(long)]
    pub purge_data: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export
    #[arg(value_enum)]
    pub what: ExportKind,
    /// terraform: the directory to write the module into
    #[arg(long, value_name = "DIR", default_value = "flixops-ci-terraform")]
    pub dir: PathBuf,
    /// terraform: replace files that exist with other content
    #[arg(long)]
    pub force: bool,
    /// iam-policy: only the read permissions `flixops plan` needs
    #[arg(long)]
    pub read_only: bool,
    /// iam-policy, policies: the AWS account id to scope ARNs to [default: asked from STS]
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// github-actions: the branch whose pushes deploy
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// github-actions: compile flixops in the workflow (on Amazon Linux 2023, cached) instead of
    /// installing this version's release
    #[arg(long)]
    pub from_source: bool,
    /// github-actions --from-source: what the build job passes to `cargo install --locked
    /// --no-default-features`, e.g. "--git https://github.com/you/flixops --tag v0.1.0 flixops"
    /// [default: this version from crates.io]
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true, requires = "from_source")]
    pub install: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportKind {
    /// The CI bootstrap module (GitHub OIDC + plan/deploy roles) into --dir; needs no flixops.toml
    Terraform,
    /// An Airflow DAG (extract → transform → doctor) on stdout
    Airflow,
    /// A GitHub Actions workflow (plan on PRs, deploy + doctor on --branch) on stdout
    GithubActions,
    /// The IAM policy `flixops deploy` needs for this environment, on stdout
    IamPolicy,
    /// Every IAM and bucket policy flixops renders for this environment, as one JSON object
    Policies,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Read recorded pages instead of calling the API: a JSON file per page, JSONL with one page
    /// per line, or a directory of those. The checkpoint is neither read nor advanced.
    #[arg(long, value_name = "PATH")]
    pub replay: Option<PathBuf>,
    /// Write parquet under DIR (DIR plays the bucket: DIR/<prefix>/tweets/dt=…/…); needs no flixops.toml
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Override extract.query (also stored in each row's `query` column)
    #[arg(long)]
    pub query: Option<String>,
    /// Stop after N pages (at least 1)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pages: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Only these models (`schema.name`, e.g. marts.users_stats) [default: every model]
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Use the real recorded #brexit page compiled into flixops instead of the API; needs no
    /// account and no flixops.toml (writes .flixops/ in the current directory)
    #[arg(long, conflicts_with = "replay")]
    pub demo: bool,
    /// Read recorded pages instead of calling the API (see `extract --replay`)
    #[arg(long, value_name = "PATH")]
    pub replay: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the page
    #[arg(long, value_name = "PATH", default_value = "report.html")]
    pub out: PathBuf,
    /// The period: this many UTC days, ending on the newest tweet's day
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// Open the page in the default browser afterwards
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Oldest time: a date (2026-10-01, UTC), an RFC 3339 time, or a duration back from now (30d, 12h, 2w)
    #[arg(long, value_name = "DATE|DURATION")]
    pub since: String,
    /// Newest time, exclusive: a date or an RFC 3339 time [default: now]
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Buy without asking (needed when stdin is not a terminal, e.g. in CI)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the quote and stop: no search call is made, nothing is written
    #[arg(long)]
    pub dry_run: bool,
    /// Stop (resumably) before this run reads more than N posts
    #[arg(long, value_name = "N")]
    pub max_posts: Option<u64>,
    /// Close an open backfill of another range (its tweets stay) and start this one
    #[arg(long)]
    pub abandon: bool,
}
