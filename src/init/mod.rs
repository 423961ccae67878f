//! `flixops init`: the onboarding wizard. It asks (or, with `--no-interactive`, takes from flags,
//! `FLIXOPS_INIT_*` variables and defaults) the target, AWS profile and region, bucket, Snowflake
//! connection, X token source, query and schedule; checks what it can live; then writes
//! `flixops.toml` (validated by [`Config::parse`] first, and edited in place with toml_edit on a
//! `--force` re-run so comments survive), `models/`, `.gitignore` and optionally a CI workflow.
//! It never reads the X token's value, so no secret can reach a file it writes.

mod ask;
mod files;
mod wizard;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::aws::AwsError;
use crate::config::{Config, ConfigError};
use crate::snowflake::connection::ConnectionError;

pub use wizard::validate_snowflake_connection;

/// The environment `init` runs in, read through one function so tests can substitute it.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where the pipeline runs: the `target` of the environment init writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A directory lake and an embedded DuckDB warehouse.
    Local,
    /// S3, Lambda and Snowflake.
    AwsSnowflake,
}

impl TargetKind {
    /// The name used in flixops.toml.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::AwsSnowflake => "aws-snowflake",
        }
    }
}

/// Where the extractor reads the X bearer token; the config holds this reference, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable's name.
    Env(String),
    /// A Secrets Manager secret ARN.
    SecretArn(String),
}

/// Which CI workflow to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    /// None.
    None,
    /// `.github/workflows/flixops.yml` from `flixops export github-actions`.
    GithubActions,
}

/// Answers given up front (flags or `FLIXOPS_INIT_*` variables); each one skips its prompt.
#[derive(Debug, Clone, Default)]
pub struct Preset {
    /// `[project] name`.
    pub project: Option<String>,
    /// The environment to write (`[env.NAME]`).
    pub env: Option<String>,
    /// Its target.
    pub target: Option<TargetKind>,
    /// AWS profile from ~/.aws.
    pub aws_profile: Option<String>,
    /// AWS region.
    pub region: Option<String>,
    /// Data bucket.
    pub bucket: Option<String>,
    /// Snowflake connection name (an existing one, or the name of the one to create).
    pub snowflake_connection: Option<String>,
    /// Account of a connection to create (asks init to create one).
    pub snowflake_account: Option<String>,
    /// User of a connection to create.
    pub snowflake_user: Option<String>,
    /// Private key file of a connection to create.
    pub snowflake_private_key_file: Option<PathBuf>,
    /// Snowflake database.
    pub database: Option<String>,
    /// Snowflake warehouse for the dynamic tables.
    pub snowflake_warehouse: Option<String>,
    /// TARGET_LAG of the dynamic tables.
    pub target_lag: Option<String>,
    /// Where the X token is read from.
    pub token: Option<TokenSource>,
    /// The recent-search query.
    pub query: Option<String>,
    /// The schedule expression.
    pub schedule: Option<String>,
    /// The CI workflow.
    pub ci: Option<Ci>,
}

/// Everything `init` needs besides the answers: where to write and how to behave.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project directory (models/, .gitignore, .github/ go here).
    pub dir: PathBuf,
    /// The project file to write (normally `<dir>/flixops.toml`).
    pub config_file: PathBuf,
    /// Ask on the terminal; false answers every prompt with its preset or default.
    pub interactive: bool,
    /// Update an existing project file (and replace a generated CI workflow).
    pub force: bool,
    /// Check the AWS profile (STS) and the Snowflake connection before writing.
    pub validate: bool,
    /// Answers given up front.
    pub preset: Preset,
}

/// What init did, for `--output json` and the closing lines.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The project file.
    pub config: String,
    /// The environment written.
    pub env: String,
    /// Its target.
    pub target: &'static str,
    /// Files created or updated (relative to the project directory where inside it).
    pub written: Vec<String>,
    /// Files left as they were.
    pub kept: Vec<String>,
    /// Things to fix before the pipeline can run.
    pub warnings: Vec<String>,
    /// The commands to run next.
    pub next_steps: Vec<String>,
}

/// Why init wrote nothing (or stopped part way); each says the way out.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The project file exists and `--force` was not given.
    #[error(
        "{path} exists; nothing was written. Pass --force to update it (its comments and other settings are kept)",
        path = .path.display()
    )]
    Exists { path: PathBuf },
    /// Prompts were wanted but there is no terminal to ask on.
    #[error(
        "no terminal to ask on (stdin and stderr must both be one): pass --no-interactive and give the answers \
         as flags or FLIXOPS_INIT_* variables (see `flixops init --help`)"
    )]
    NotATerminal,
    /// A flag's (or default's) value breaks a rule.
    #[error("{flag}: {message}")]
    Invalid { flag: &'static str, message: String },
    /// A non-interactive run has no answer for a question without a default.
    #[error("no answer for \"{prompt}\": pass {flag}")]
    Missing { flag: &'static str, prompt: String },
    /// Answers that make no sense together.
    #[error("{0}")]
    Usage(String),
    /// The existing project file is not TOML, so it cannot be edited safely.
    #[error("{path}: cannot update it: not valid TOML ({message}); fix or move the file, then run init again", path = .path.display())]
    Unparsable { path: PathBuf, message: String },
    /// The file init would write does not validate (e.g. another setting in it is invalid).
    #[error("nothing was written: {0}")]
    Rejected(ConfigError),
    /// The AWS profile could not be checked with STS (non-interactive).
    #[error("{0}\n  or pass --no-validate to write the project without this check")]
    Aws(AwsError),
    /// The Snowflake connection does not resolve or is unusable (non-interactive).
    #[error("Snowflake connection: {0}\n  fix it, or pass --no-validate to write the project without this check")]
    Snowflake(String),
    /// Adding the new Snowflake connection failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A file could not be written.
    #[error("{path}: cannot write", path = .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The terminal went away mid-prompt.
    #[error("the prompt failed ({0}); nothing was written")]
    Prompt(String),
    /// The CI workflow could not be rendered.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
}

impl InitError {
    /// True when the user fixes it on the command line or in a file (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            InitError::Connection(e) => !matches!(e, ConnectionError::Write { .. }),
            InitError::Aws(_) | InitError::Write { .. } | InitError::Prompt(_) | InitError::Export(_) => false,
            _ => true,
        }
    }

    /// True when AWS could not be reached or refused the credentials (exit code 3).
    pub fn is_connect(&self) -> bool {
        matches!(self, InitError::Aws(_))
    }
}

/// Runs init: refuses early if the file exists without `force`, gathers the answers, renders and
/// validates every file, then writes them. `var` reads the environment.
pub async fn run(options: &Options, var: Vars<'_>) -> Result<Report, InitError> {
    let existing = read_existing(options)?;
    if options.interactive && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(InitError::NotATerminal);
    }
    let seed = existing.as_ref().and_then(|text| Config::parse(text, &options.config_file).ok());
    let answers = match options.interactive {
        true => wizard::gather(options, seed.as_ref(), var, &mut ask::Terminal::new()).await?,
        false => wizard::gather(options, seed.as_ref(), var, &mut ask::Defaults).await?,
    };
    let planned = files::plan(options, existing.as_deref(), &answers)?;
    let mut report = files::write(options, &answers, planned, var)?;
    report.next_steps = next_steps(options, &answers);
    Ok(report)
}

/// The existing project file's text; an error when it exists and `--force` was not given.
fn read_existing(options: &Options) -> Result<Option<String>, InitError> {
    let path = &options.config_file;
    match std::fs::read_to_string(path) {
        Ok(_) if !options.force => Err(InitError::Exists { path: path.clone() }),
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InitError::Write { path: path.clone(), source }),
    }
}

/// The commands to run next, spelled for this project's directory, file and environment.
fn next_steps(options: &Options, answers: &wizard::Answers) -> Vec<String> {
    let mut steps = Vec::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    if options.dir != cwd {
        steps.push(format!("cd {}", options.dir.display()));
    }
    let custom_file = options.config_file != options.dir.join(crate::config::FILE_NAME);
    let file = custom_file.then(|| format!(" --config {}", options.config_file.display())).unwrap_or_default();
    let env = format!(" --env {}", answers.env);
    let token_hint = match &answers.token {
        TokenSource::Env(name) => format!("export {name}=…   # your X API bearer token (never written to disk)"),
        TokenSource::SecretArn(_) => "the token is read from the Secrets Manager secret in flixops.toml".into(),
    };
    match answers.cloud {
        None => steps.extend([
            format!("flixops run --demo{file}{env}   # the whole pipeline on a recorded page, no account needed"),
            token_hint,
            format!("flixops run{file}{env}          # extract → load → transform with the X API"),
            format!("flixops doctor{file}{env}"),
        ]),
        Some(_) => {
            steps.extend([
                format!("flixops plan{file}{env}      # read-only: what deploy would create"),
                format!("flixops deploy{file}{env}"),
                format!(
                    "flixops secrets set{file}{env} < token.txt   # the X token the Lambda reads, into the secret deploy created"
                ),
                format!("flixops doctor{file}{env}"),
            ]);
            if answers.ci == Ci::GithubActions {
                steps.push(
                    "flixops export terraform --dir ci/terraform   # CI roles; then set the repository variables \
                     FLIXOPS_PLAN_ROLE_ARN and FLIXOPS_DEPLOY_ROLE_ARN"
                        .into(),
                );
            }
        }
    }
    steps
}

/// A path as shown in the report: relative to the project directory when inside it.
fn shown(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

impl crate::output::Render for Report {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        for path in &self.written {
            writeln!(w, "wrote  {path}")?;
        }
        for path in &self.kept {
            writeln!(w, "kept   {path} (exists)")?;
        }
        for warning in &self.warnings {
            writeln!(w, "warning: {warning}")?;
        }
        writeln!(w, "\nnext steps:")?;
        self.next_steps.iter().try_for_each(|step| writeln!(w, "  {step}"))
    }
}
