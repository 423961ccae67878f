//! `flixops doctor`: health checks, each with a verdict and the command that fixes it. Read-only:
//! the cloud checks are the resource engine's reads and diffs, the local ones open the warehouse
//! read-only; only `--canary` writes (one marked file, which the staging model leaves out). Checks
//! run concurrently, each under its own timeout (`FLIXOPS_CHECK_TIMEOUT_SECS`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EnvConfig, LocalTarget, Target};
use crate::extract::checkpoint::LastRun;

pub mod canary;
mod cloud;
mod extraction;
mod freshness;

pub use crate::aws::logs::is_error_line;
pub use cloud::pipe_verdict;

/// Raw data older than this is a warning, and older than [`FRESH_FAIL_HOURS`] a failure.
const FRESH_WARN_HOURS: i64 = 4;
const FRESH_FAIL_HOURS: i64 = 24;
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
    fn new(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Self {
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
    /// With `--canary`: the file followed and its measured latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<canary::Outcome>,
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
                canary = Some(canary::local(local, &env.prefix, timeout).await);
            }
            let sink = crate::extract::sink::Sink::Dir(local.lake_dir.clone());
            let hints = extraction::Hints { run: "flixops run", stale: Status::Warn };
            // The token from this shell, if set: only for X's usage count (not billed).
            let token = match &config.extract.bearer_token {
                crate::config::SecretRef::Env(_) => config.extract.bearer_token.resolve(None).await.ok(),
                crate::config::SecretRef::SecretsManager(_) => None,
            };
            let extraction = extraction::checks(&config.extract, &sink, &env.prefix, &hints, token, options.limit);
            let (extraction, last_run) =
                tokio::join!(extraction, extraction::last_run(sink.clone(), env.prefix.clone()));
            checks.extend(local_checks(config, env, local, extraction, last_run.as_ref()));
            if let Some(outcome) = &canary {
                let fix =
                    "close other DuckDB sessions on the warehouse (the loader writes it), then doctor --canary again";
                checks.push(outcome.check(Some(fix)));
            }
        }
        Target::AwsSnowflake(cloud) => {
            let (found, outcome) = cloud::checks(config, env, cloud, options).await;
            checks.extend(found);
            canary = outcome;
        }
    }
    Report { env: env.name.clone(), checks, canary }
}

fn local_checks(
    config: &Config,
    env: &EnvConfig,
    local: &LocalTarget,
    extraction: Vec<Check>,
    last_run: Option<&LastRun>,
) -> Vec<Check> {
    let run = Some("flixops run");
    let mut checks = Vec::new();
    let tweets = local.lake_dir.join(&env.prefix).join("tweets");
    let files = count_parquet(&tweets);
    checks.push(match files {
        Ok(0) | Err(_) => Check::new("lake", Status::Warn, format!("no files under {}", tweets.display()), run),
        Ok(n) => Check::new("lake", Status::Ok, format!("{n} file(s) under {}", tweets.display()), None),
    });
    checks.extend(extraction);
    if !local.warehouse.exists() {
        checks.push(Check::new(
            "warehouse",
            Status::Warn,
            format!("{} does not exist yet", local.warehouse.display()),
            run,
        ));
        return checks;
    }
    let read_only = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly);
    let conn = match read_only.and_then(|c| duckdb::Connection::open_with_flags(&local.warehouse, c)) {
        Ok(conn) => conn,
        Err(e) => {
            let detail = format!("{}: {e}", local.warehouse.display());
            checks.push(Check::new("warehouse", Status::Fail, detail, Some("close other DuckDB sessions on it")));
            return checks;
        }
    };
    checks.push(Check::new("warehouse", Status::Ok, local.warehouse.display().to_string(), None));
    checks.push(freshness_check(&conn, last_run));
    checks.push(pending_check(&conn, files.unwrap_or(0)));
    checks.push(ledger_check(config, &conn));
    checks
}

/// The models as the repository defines them against `ops.model_ledger`: a model added or edited
/// since the last transform is not what the marts hold.
fn ledger_check(config: &Config, conn: &duckdb::Connection) -> Check {
    let rendered = crate::models::discover(&config.root.join("models"))
        .and_then(|found| crate::models::render_all(&found, &crate::models::Dialect::DuckDb));
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(e) => return Check::new("models", Status::Fail, e.to_string(), None),
    };
    let applied = |id: &str| -> Option<String> {
        conn.query_row("SELECT checksum FROM ops.model_ledger WHERE model = ?", [id], |r| r.get(0)).ok()
    };
    let stale: Vec<&str> = rendered
        .iter()
        .filter(|m| applied(&m.id).as_deref() != Some(m.checksum.as_str()))
        .map(|m| m.id.as_str())
        .collect();
    if stale.is_empty() {
        return Check::new("models", Status::Ok, format!("{} model(s) as built", rendered.len()), None);
    }
    let detail = format!("changed or new since the last transform: {}", stale.join(", "));
    Check::new("models", Status::Warn, detail, Some("flixops transform"))
}

fn count_parquet(dir: &Path) -> std::io::Result<usize> {
    let mut count = 0;
    for day in std::fs::read_dir(dir)? {
        for file in std::fs::read_dir(day?.path())? {
            count += usize::from(file?.path().extension().is_some_and(|e| e == "parquet"));
        }
    }
    Ok(count)
}

/// Data this many hours old: a warning from 4 h, a failure from 24 h.
fn age_status(hours: i64) -> Status {
    match hours {
        h if h >= FRESH_FAIL_HOURS => Status::Fail,
        h if h >= FRESH_WARN_HOURS => Status::Warn,
        _ => Status::Ok,
    }
}

fn freshness_check(conn: &duckdb::Connection, last_run: Option<&LastRun>) -> Check {
    // TIMESTAMPTZ → TIMESTAMP is UTC without ICU (not bundled), then epoch seconds.
    let sql = "SELECT CAST(epoch(CAST(max(loaded_at) AS TIMESTAMP)) AS BIGINT) FROM raw.tweets_raw";
    let newest = match conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)) {
        Ok(newest) => newest,
        Err(e) => return Check::new("raw freshness", Status::Fail, e.to_string(), None),
    };
    let now = chrono::Utc::now();
    let age = newest.map(|at| (now.timestamp() - at) / 60);
    let hints = freshness::Hints { run: "flixops run (or schedule it)", loading: "flixops transform" };
    freshness::verdict(age, last_run, now, &hints)
}

fn pending_check(conn: &duckdb::Connection, files: usize) -> Check {
    let loaded: Result<i64, _> = conn.query_row("SELECT count(*) FROM ops.load_history", [], |r| r.get(0));
    match loaded {
        Ok(n) if n as usize >= files => {
            Check::new("load", Status::Ok, format!("{n} file(s) loaded, none pending"), None)
        }
        Ok(n) => {
            let detail = format!("{} lake file(s) not loaded yet", files - n as usize);
            Check::new("load", Status::Warn, detail, Some("flixops transform"))
        }
        Err(e) => Check::new("load", Status::Fail, e.to_string(), Some("flixops run")),
    }
}
