//! `flixops doctor`: health checks, each with a verdict and the command that fixes it. Read-only:
//! the cloud checks are the resource engine's reads and diffs, the local ones open the warehouse
//! read-only; only `--canary` writes (one marked file, which the staging model leaves out). Checks
//! run concurrently, each under its own timeout (`FLIXOPS_CHECK_TIMEOUT_SECS`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EnvConfig, Target};

pub mod canary;
mod cloud;
mod extraction;
pub(crate) mod freshness;
mod render;

pub use crate::aws::logs::is_error_line;
pub use cloud::pipe_verdict;

/// X recent search looks back this far: a checkpoint older than that has lost tweets.
const SEARCH_WINDOW_DAYS: i64 = 7;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command or step that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn new(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Self {
        Self { name: name.to_string(), status, detail: detail.into(), fix: fix.map(str::to_string) }
    }
}

/// Every check, in a stable order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The environment checked.
    pub env: String,
    /// The checks.
    pub checks: Vec<Check>,
    /// How many checks ended in each verdict, as the human summary line counts them.
    pub totals: Totals,
    /// With `--canary`: the file followed and its measured latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<canary::Outcome>,
}

/// Checks per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Healthy.
    pub ok: usize,
    /// Needing attention.
    pub warn: usize,
    /// Broken.
    pub fail: usize,
}

impl Totals {
    pub(crate) fn of(checks: &[Check]) -> Self {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        Self { ok: count(Status::Ok), warn: count(Status::Warn), fail: count(Status::Fail) }
    }
}

impl Report {
    /// True when a check failed (or, with `strict`, warned).
    pub fn failed(&self, strict: bool) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail || (strict && c.status == Status::Warn))
    }
}

/// `check`, or its own failure when it does not answer within `limit`: a check that hangs says so,
/// and the others still report.
async fn timed(limit: Duration, name: &str, check: impl Future<Output = Check>) -> Check {
    match tokio::time::timeout(limit, check).await {
        Ok(check) => check,
        Err(_) => Check::new(name, Status::Fail, format!("no answer within {} s", limit.as_secs()), None),
    }
}

/// Checks left out on request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skip {
    /// The X token probe, which reads the secret's value: CI's deploy role may not.
    pub token: bool,
}

/// How `doctor` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Lambda package to compare the function's code with (`--artifact`).
    pub artifact: Option<PathBuf>,
    /// Checks left out.
    pub skip: Skip,
    /// `--canary`: follow one file to the raw table, waiting at most this long.
    pub canary: Option<Duration>,
    /// How long one check may take (`FLIXOPS_CHECK_TIMEOUT_SECS`).
    pub limit: Duration,
}

impl Options {
    /// The options of a plain `doctor`.
    pub fn new(artifact: Option<&Path>, skip: Skip) -> Self {
        Self {
            artifact: artifact.map(Path::to_path_buf),
            skip,
            canary: None,
            limit: crate::timeouts::Timeouts::default().check,
        }
    }
}

/// Runs the checks of the environment's target, but those the options leave out.
pub async fn run(config: &Config, env: &EnvConfig, options: &Options) -> Report {
    let mut checks = vec![Check::new("config", Status::Ok, format!("{} is valid", config.path.display()), None)];
    let mut canary = None;
    match &env.target {
        Target::Local(local) => {
            if let Some(timeout) = options.canary {
                canary = Some(crate::local::canary::follow(local, &env.prefix, timeout).await);
            }
            let sink = crate::extract::sink::Sink::Dir(local.lake_dir.clone());
            let tweets = local.lake_dir.join(&env.prefix).join("tweets");
            let replayed = std::fs::read_dir(&tweets).is_ok_and(|mut days| days.next().is_some());
            let run = "flixops run --demo (a recorded page, no token), or flixops run with the X token set";
            let hints = extraction::Hints { run, stale: Status::Warn, replayed };
            // The token from this shell, if set: only for X's usage count (not billed).
            let token = match &config.extract.bearer_token {
                crate::config::SecretRef::Env(_) => config.extract.bearer_token.resolve(None).await.ok(),
                crate::config::SecretRef::SecretsManager(_) => None,
            };
            let extraction = extraction::checks(&config.extract, &sink, &env.prefix, &hints, token, options.limit);
            let (extraction, last_run) =
                tokio::join!(extraction, extraction::last_run(sink.clone(), env.prefix.clone()));
            checks.extend(crate::local::doctor::checks(config, env, local, extraction, last_run.as_ref()));
            if let Some(outcome) = &canary {
                checks.push(outcome.check(Some(crate::local::canary::FIX)));
            }
        }
        Target::AwsSnowflake(cloud) => {
            let (found, outcome) = cloud::checks(config, env, cloud, options).await;
            checks.extend(found);
            canary = outcome;
        }
    }
    Report { env: env.name.clone(), totals: Totals::of(&checks), checks, canary }
}

/// Data `minutes` old against the environment's thresholds (`[env.NAME.freshness]`).
pub(crate) fn age_status(freshness: &crate::config::Freshness, minutes: i64) -> Status {
    match minutes {
        m if m >= freshness.error_after_minutes => Status::Fail,
        m if m >= freshness.warn_after_minutes => Status::Warn,
        _ => Status::Ok,
    }
}
