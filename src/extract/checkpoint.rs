//! `{prefix}/_state/extract.json`: where the next run starts. Advanced only after every page of a
//! run is stored, by compare-and-swap, and never moved backwards by a slower concurrent run.

use serde::{Deserialize, Serialize};

use super::ExtractError;
use super::sink::{Sink, SinkError};

/// The stored state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The newest tweet id stored so far; the next run asks only for newer ones.
    pub since_id: Option<String>,
    /// The query `since_id` belongs to: a changed query starts afresh.
    pub query: String,
    /// The run that wrote this state.
    pub last_run: LastRun,
}

/// Facts about the run that advanced the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run's id, also the prefix of its file names.
    pub run_id: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Pages stored by the run.
    pub pages: u32,
    /// Tweets stored by the run.
    pub tweets: u64,
}

/// The checkpoint's key under a prefix.
pub fn key(prefix: &str) -> String {
    format!("{prefix}/_state/extract.json")
}

/// Reads the checkpoint and its version tag.
pub async fn read(sink: &Sink, key: &str) -> Result<Option<(Checkpoint, String)>, ExtractError> {
    let Some(stored) = sink.get(key).await? else { return Ok(None) };
    let checkpoint = serde_json::from_slice(&stored.body).map_err(|e| ExtractError::BadCheckpoint {
        location: format!("{}/{key}", sink.location()),
        message: e.to_string(),
    })?;
    Ok(Some((checkpoint, stored.version)))
}

/// Writes `next` over the version this run read; on a lost race, keeps whichever state is further.
/// Returns the state that is stored afterwards.
pub async fn advance(
    sink: &Sink,
    key: &str,
    next: Checkpoint,
    mut seen: Option<String>,
) -> Result<Checkpoint, ExtractError> {
    let body = serde_json::to_vec_pretty(&next).expect("checkpoint serializes");
    for _ in 0..10 {
        match sink.put_if(key, body.clone(), seen.as_deref()).await {
            Ok(()) => return Ok(next),
            Err(SinkError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let Some((current, version)) = read(sink, key).await? else {
            seen = None;
            continue;
        };
        if current.query == next.query && id_of(&current) >= id_of(&next) {
            return Ok(current);
        }
        seen = Some(version);
    }
    Err(SinkError::Conflict(format!("{}/{key}", sink.location())).into())
}

fn id_of(c: &Checkpoint) -> Option<u64> {
    c.since_id.as_deref().and_then(|id| id.parse().ok())
}
