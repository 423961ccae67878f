//! The arguments resolved once after parsing (ripgrep's `HiArgs`): the output format and where the
//! project file and environment come from. Every verb loads flixops.toml through [`Resolved`].

use std::path::{Path, PathBuf};

use flixops::Error;
use flixops::config::{Config, ConfigError, EnvConfig};
use flixops::output::{Format, Output, Render};

use crate::cli::{Global, InitArgs, InitCi, InitTarget, OutputArg};

/// What every verb needs besides its own flags.
pub struct Resolved {
    /// `--output`.
    pub output: Output,
    /// `--config`, absolute, or `./flixops.toml`.
    config_file: PathBuf,
    /// True when `--config` (or FLIXOPS_CONFIG) named the file.
    config_given: bool,
    /// `--env`.
    env: Option<String>,
}

/// What a verb may do when flixops.toml is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Stop with the usage error naming the file.
    Fail,
    /// Use the local defaults (extract --to, run --demo) unless --config named a file.
    LocalDefaults,
}

impl Resolved {
    /// Resolves the global flags.
    pub fn new(global: &Global) -> Self {
        let format = if global.output == OutputArg::Json { Format::Json } else { Format::Human };
        let config_file = global.config.clone().unwrap_or_else(|| PathBuf::from(flixops::config::FILE_NAME));
        Self {
            output: Output { format, quiet: global.quiet },
            config_file: absolute(&config_file),
            config_given: global.config.is_some(),
            env: global.env.clone(),
        }
    }

    /// Loads flixops.toml (or the local defaults, as `missing` allows) and picks the environment.
    pub fn project(&self, missing: Missing) -> Result<(Config, EnvConfig), Error> {
        self.project_in(missing, self.env.as_deref())
    }

    /// `--env`, when given.
    pub fn env_flag(&self) -> Option<&str> {
        self.env.as_deref()
    }

    /// [`Resolved::project`] for the environment `env` (None: the file's default).
    pub fn project_in(&self, missing: Missing, env: Option<&str>) -> Result<(Config, EnvConfig), Error> {
        let config = match Config::load(&self.config_file) {
            Err(ConfigError::NotFound { .. }) if missing == Missing::LocalDefaults && !self.config_given => {
                Config::local_default(&cwd())
            }
            loaded => loaded?,
        };
        let env = config.env(env)?.clone();
        Ok((config, env))
    }

    /// Prints a report: JSON on stdout, or its human form (on stdout for a result such as a plan,
    /// else on stderr unless `--quiet`).
    pub fn print<T: serde::Serialize + Render>(&self, report: &T) -> Result<std::process::ExitCode, Error> {
        self.print_with(report, report.is_result(), |w| report.write_human(w))
    }

    /// Prints a value with its human form given here.
    pub fn print_with<T: serde::Serialize>(
        &self,
        value: &T,
        is_result: bool,
        human: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<std::process::ExitCode, Error> {
        match self.output.emit(value, is_result, human) {
            // A closed pipe (`flixops … | head`) is not a failure.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: writing output: {e}");
                Ok(std::process::ExitCode::FAILURE)
            }
            _ => Ok(std::process::ExitCode::SUCCESS),
        }
    }

    /// `init`'s options: the project directory and file (`--dir`, else `--config`'s directory, else
    /// the working directory) and the preset answers. Destructured field by field, so a flag added
    /// to [`InitArgs`] and not passed on here does not compile.
    pub fn init_options(&self, args: InitArgs) -> Result<flixops::init::Options, Error> {
        use flixops::init::{Ci, Options, Preset, TargetKind, TokenSource};
        let InitArgs {
            no_interactive,
            force,
            no_validate,
            dir,
            project,
            target,
            aws_profile,
            region,
            bucket,
            snowflake_connection,
            snowflake_account,
            snowflake_user,
            snowflake_private_key_file,
            database,
            snowflake_warehouse,
            target_lag,
            token_env,
            token_secret_arn,
            query,
            schedule,
            ci,
        } = args;
        let (dir, config_file) = self.init_paths(dir)?;
        let token = match (token_env, token_secret_arn) {
            (Some(name), _) => Some(TokenSource::Env(name)),
            (None, Some(arn)) => Some(TokenSource::SecretArn(arn)),
            (None, None) => None,
        };
        let target = target.map(|t| match t {
            InitTarget::Local => TargetKind::Local,
            InitTarget::AwsSnowflake => TargetKind::AwsSnowflake,
        });
        let ci = ci.map(|c| match c {
            InitCi::None => Ci::None,
            InitCi::GithubActions => Ci::GithubActions,
        });
        let preset = Preset {
            project,
            env: self.env.clone(),
            target,
            aws_profile,
            region,
            bucket,
            snowflake_connection,
            snowflake_account,
            snowflake_user,
            snowflake_private_key_file,
            database,
            snowflake_warehouse,
            target_lag,
            token,
            query,
            schedule,
            ci,
        };
        let (interactive, validate) = (!no_interactive, !no_validate);
        Ok(Options { dir, config_file, interactive, force, validate, preset })
    }

    /// The project directory and file `init` writes.
    fn init_paths(&self, dir: Option<PathBuf>) -> Result<(PathBuf, PathBuf), Error> {
        let config = self.config_given.then(|| self.config_file.clone());
        let dir = match (dir.as_deref().map(absolute), &config) {
            (Some(dir), Some(file)) if file.parent() != Some(dir.as_path()) => {
                return Err(Error::Usage(
                    "--config names a file outside --dir, but models/ must sit beside the project file; pass one of them"
                        .into(),
                ));
            }
            (Some(dir), _) => dir,
            (None, Some(file)) => file.parent().map(Path::to_path_buf).unwrap_or_else(cwd),
            (None, None) => cwd(),
        };
        let file = config.unwrap_or_else(|| dir.join(flixops::config::FILE_NAME));
        Ok((dir, file))
    }
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// `path` against the working directory, with `.` and `..` folded as written.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { cwd().join(path) };
    joined.components().collect()
}
