//! `flixops doctor`: health checks, each with a verdict and the command that fixes it. Strictly
//! read-only: the cloud checks are the resource engine's reads and diffs, the local ones open the
//! warehouse read-only. Checks run concurrently, each under a timeout.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EnvConfig, Target};

mod cloud;
mod extraction;
mod render;

pub use cloud::{is_error_line, pipe_verdict};

/// How long one check may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(30);
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

/// Checks left out on request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skip {
    /// The X token probe, which reads the secret's value: CI's deploy role may not.
    pub token: bool,
}

/// Runs the checks of the environment's target, but those `skip` leaves out.
pub async fn run(config: &Config, env: &EnvConfig, artifact: Option<&Path>, skip: Skip) -> Report {
    let mut checks = vec![Check::new("config", Status::Ok, format!("{} is valid", config.path.display()), None)];
    match &env.target {
        Target::Local(local) => {
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
            let extraction = extraction::checks(&config.extract, &sink, &env.prefix, &hints, token).await;
            checks.extend(crate::local::doctor::checks(config, env, local, extraction));
        }
        Target::AwsSnowflake(cloud) => checks.extend(cloud::checks(config, env, cloud, artifact, skip).await),
    }
    Report { env: env.name.clone(), totals: Totals::of(&checks), checks }
}

/// Data `minutes` old against the environment's thresholds (`[env.NAME.freshness]`).
pub(crate) fn age_status(freshness: &crate::config::Freshness, minutes: i64) -> Status {
    match minutes {
        m if m >= freshness.error_after_minutes => Status::Fail,
        m if m >= freshness.warn_after_minutes => Status::Warn,
        _ => Status::Ok,
    }
}
