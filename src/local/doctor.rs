//! `doctor` on the local target: the lake, the warehouse (opened read-only), freshness, pending
//! files and the models against the ledger.

use std::path::Path;

use crate::config::{Config, EnvConfig, LocalTarget};
use crate::doctor::freshness::{self, Hints};
use crate::doctor::{Check, Status};
use crate::extract::checkpoint::LastRun;
use crate::models::ledger;

/// The local checks, with the extraction checks (shared with the cloud target) after the lake's;
/// `last_run` is the checkpoint's, which tells raw freshness "ran, nothing new" from "did not run".
pub fn checks(
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
    checks.push(freshness_check(&conn, &env.freshness, last_run));
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
    let applied = |m: &crate::models::Rendered| {
        let row = super::models::ledger_row(conn, &m.id).ok().flatten();
        ledger::state(m, row.as_ref()) == ledger::State::Applied
    };
    let stale: Vec<&str> = rendered.iter().filter(|m| !applied(m)).map(|m| m.id.as_str()).collect();
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

fn freshness_check(conn: &duckdb::Connection, limits: &crate::config::Freshness, last_run: Option<&LastRun>) -> Check {
    // TIMESTAMPTZ → TIMESTAMP is UTC without ICU (not bundled), then epoch seconds.
    let sql = "SELECT CAST(epoch(CAST(max(loaded_at) AS TIMESTAMP)) AS BIGINT) FROM raw.tweets_raw";
    let newest = match conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)) {
        Ok(newest) => newest,
        Err(e) => return Check::new("raw freshness", Status::Fail, e.to_string(), None),
    };
    let now = chrono::Utc::now();
    let age = newest.map(|at| (now.timestamp() - at) / 60);
    let hints = Hints { run: "flixops run (or schedule it)", loading: "flixops transform" };
    freshness::verdict(age, last_run, now, limits, &hints)
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
