//! The local half of `doctor --canary`: the canary file written into the lake and loaded as
//! `flixops run` loads lake files, then its rows counted in the raw table. The local target has no
//! Snowpipe, so the latency measured is the loader's.

use std::time::{Duration, Instant};

use super::{LocalError, Warehouse};
use crate::config::LocalTarget;
use crate::doctor::canary::{self, Outcome};
use crate::extract::sink::Sink;

/// What to do when the local canary did not arrive.
pub const FIX: &str = "close other DuckDB sessions on the warehouse (the loader writes it), then doctor --canary again";

/// Writes the canary under `prefix` in the lake, loads it and reports how long that took.
pub async fn follow(local: &LocalTarget, prefix: &str, timeout: Duration) -> Outcome {
    let (key, body) = canary::file(prefix, chrono::Utc::now());
    let started = Instant::now();
    let outcome = |latency: Option<Duration>, broken: Option<String>| Outcome::new(&key, latency, timeout, broken);
    let sink = Sink::Dir(local.lake_dir.clone());
    if let Err(e) = sink.put_new(&key, body).await {
        return outcome(None, Some(format!("writing it failed: {e}")));
    }
    let (target, file) = (local.clone(), key.clone());
    let loaded = tokio::task::spawn_blocking(move || load(&target, &file));
    match tokio::time::timeout(timeout, loaded).await {
        Ok(Ok(Ok(rows))) if rows > 0 => outcome(Some(started.elapsed()), None),
        Ok(Ok(Ok(_))) => outcome(None, Some("the loader loaded no row from it".into())),
        Ok(Ok(Err(e))) => outcome(None, Some(format!("the loader failed: {e}"))),
        Ok(Err(e)) => outcome(None, Some(format!("the loader stopped: {e}"))),
        Err(_) => outcome(None, Some("the loader did not finish (is another process writing the warehouse?)".into())),
    }
}

/// Loads the lake file at `key` and returns how many of its rows the raw table holds.
fn load(target: &LocalTarget, key: &str) -> Result<u64, LocalError> {
    let mut warehouse = Warehouse::open(target)?;
    warehouse.load_key(key)?;
    let rows: i64 = warehouse
        .connection()
        .query_row("SELECT count(*) FROM raw.tweets_raw WHERE file_name = ?", [key], |r| r.get(0))
        .map_err(|source| LocalError::Sql { what: format!("counting the rows of {key}"), source })?;
    Ok(rows as u64)
}
