//! `doctor --canary`: one marked parquet file, written under the tweets prefix as the extractor
//! writes its pages, followed until its row is in the raw table. The measured latency is the
//! pipeline's own (on aws-snowflake: S3 → notification → queue → Snowpipe → table). On timeout the
//! first broken link is named from the pipe's status and its load history. The canary row carries
//! [`CANARY_QUERY`] in its `query` column, which the staging model filters out, so no mart counts it.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Check, Status};
use crate::extract::sink::Sink;
use crate::snowflake::Client;
use crate::snowflake::names::SnowNames;
use crate::snowflake::pipe::{self, LoadFailure, PipeStatus};

/// The `query` of the canary row; `staging.stg_tweets` leaves such rows out.
pub const CANARY_QUERY: &str = "flixops:canary";

/// What the canary found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The file written (its key under the bucket or lake).
    pub file: String,
    /// Milliseconds from writing the file to its row being in the raw table (None: not loaded).
    pub latency_ms: Option<u64>,
    /// How long it waited at most.
    pub timeout_ms: u64,
    /// The first broken link, when the row did not arrive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_link: Option<String>,
}

impl Outcome {
    /// The outcome for the file `file`: loaded after `latency`, or not (`broken`: why).
    pub fn new(file: &str, latency: Option<Duration>, timeout: Duration, broken: Option<String>) -> Self {
        Self {
            file: file.to_string(),
            latency_ms: latency.map(|d| d.as_millis() as u64),
            timeout_ms: timeout.as_millis() as u64,
            broken_link: broken,
        }
    }

    /// The `canary` line of the report.
    pub fn check(&self, fix: Option<&str>) -> Check {
        match (self.latency_ms, &self.broken_link) {
            (Some(ms), _) => {
                let detail = format!("{} reached the raw table in {}", self.file, seconds(ms));
                Check::new("canary", Status::Ok, detail, None)
            }
            (None, Some(why)) if self.file.is_empty() => {
                Check::new("canary", Status::Fail, format!("no canary written: {why}"), fix)
            }
            (None, why) => {
                let waited = seconds(self.timeout_ms);
                let why = why.as_deref().unwrap_or("no link reports a failure");
                let detail = format!("{} did not reach the raw table within {waited}: {why}", self.file);
                Check::new("canary", Status::Fail, detail, fix)
            }
        }
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The canary's key and parquet bytes: one row of the data contract, marked by its query.
pub fn file(prefix: &str, now: chrono::DateTime<chrono::Utc>) -> (String, Vec<u8>) {
    let run = format!("{}-canary{:06x}", now.format("%Y%m%dT%H%M%SZ"), fastrand::u32(..0x100_0000));
    let key = format!("{prefix}/tweets/dt={}/{run}-0000.parquet", now.format("%Y-%m-%d"));
    let page = serde_json::json!({
        "data": [{"id": format!("canary-{}", now.timestamp_millis()), "text": "flixops doctor --canary",
                  "created_at": now.to_rfc3339(), "author_id": "flixops-canary", "lang": "en"}],
        "includes": {"users": [{"id": "flixops-canary", "username": "flixops_canary"}]},
    })
    .to_string();
    let page: crate::extract::tweet::Page = serde_json::from_str(&page).expect("the canary page parses");
    let (batch, _) = page.to_batch(CANARY_QUERY, now.timestamp_micros());
    let body = crate::extract::parquet::encode(&batch).expect("one row of the contract encodes");
    (key, body)
}

/// The cloud canary: the file into the bucket, then the raw table read (ever less often) until it
/// holds the file's row or `timeout` has passed.
pub async fn cloud(sink: &Sink, client: &Client, names: &SnowNames, prefix: &str, timeout: Duration) -> Outcome {
    let (key, body) = file(prefix, chrono::Utc::now());
    // The pipe's last forwarded file before this one: if that has not moved on when the wait ends,
    // no notification reached the pipe (compared with the pipe's own clock, never with ours).
    let before = pipe::status(client, &names.pipe).await.ok().and_then(|s| s.last_forwarded);
    let started = Instant::now();
    let outcome = |latency: Option<Duration>, broken: Option<String>| Outcome::new(&key, latency, timeout, broken);
    if let Err(e) = sink.put_new(&key, body).await {
        return outcome(None, Some(format!("writing it failed: {e}")));
    }
    let arrived = || async {
        let minutes = started.elapsed().as_secs() as i64 / 60 + 5;
        pipe::rows_from(client, &names.table, &key, minutes).await.is_ok_and(|n| n > 0)
    };
    let mut wait = Duration::from_millis(100);
    while started.elapsed() < timeout {
        if arrived().await {
            return outcome(Some(started.elapsed()), None);
        }
        tokio::time::sleep(wait.min(timeout.saturating_sub(started.elapsed()))).await;
        wait = (wait * 3 / 2).min(Duration::from_secs(5));
    }
    if arrived().await {
        return outcome(Some(started.elapsed()), None);
    }
    outcome(None, Some(cloud_broken_link(client, names, &key, before).await))
}

/// Why the canary did not arrive, from the pipe's status and its load history.
async fn cloud_broken_link(
    client: &Client,
    names: &SnowNames,
    key: &str,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let status = match pipe::status(client, &names.pipe).await {
        Ok(status) => status,
        Err(e) => return format!("the pipe's status cannot be read: {e}"),
    };
    let failed = pipe::failed_loads(client, &names.table, &names.pipe, 1).await.unwrap_or_default();
    broken_link(&status, &failed, key, before)
}

/// The first broken link along notification → pipe → load, for a file written when the pipe's
/// last forwarded file was `before`.
pub fn broken_link(
    status: &PipeStatus,
    failed: &[LoadFailure],
    key: &str,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let state = status.state.as_str();
    if let Some(error) = &status.error {
        return format!("the pipe is {state}: {error} (fix: {})", pipe::advice(state));
    }
    if !matches!(state, "RUNNING" | "FAILING_OVER") {
        return format!("the pipe is {state} (fix: {})", pipe::advice(state));
    }
    if let Some(failure) = failed.iter().find(|f| f.file.ends_with(key) || key.ends_with(&f.file)) {
        return format!("Snowpipe could not load it: {}", failure.describe());
    }
    if status.last_forwarded <= before {
        return "no notification of it reached the pipe: the bucket notification does not send this key to the \
                pipe's queue (check aws_s3_bucket_notification.snowpipe; flixops deploy repairs it)"
            .to_string();
    }
    if status.pending > 0 {
        return format!("it is queued in the pipe ({} file(s) pending) but not loaded yet", status.pending);
    }
    "the pipe received it but no load is recorded: see `pipe` and `copy history`".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_is_one_marked_row_under_todays_partition() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:15:00Z").unwrap().to_utc();
        let (key, body) = file("flixops", now);
        assert!(key.starts_with("flixops/tweets/dt=2026-11-29/20261129T101500Z-canary"), "{key}");
        assert!(key.ends_with("-0000.parquet"), "{key}");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let query = batches[0].column_by_name("query").unwrap();
        let query = arrow::array::AsArray::as_string::<i32>(query.as_ref());
        assert_eq!(query.value(0), CANARY_QUERY);
    }

    #[test]
    fn the_first_broken_link_is_named_in_the_order_a_file_travels() {
        let before = Some(chrono::DateTime::parse_from_rfc3339("2026-11-29T09:00:00Z").unwrap().to_utc());
        let json = |v: serde_json::Value| PipeStatus::parse(&v);
        let key = "p/tweets/dt=2026-11-29/x-0000.parquet";
        let paused = json(serde_json::json!({"executionState": "PAUSED"}));
        assert!(broken_link(&paused, &[], key, before).starts_with("the pipe is PAUSED (fix: flixops deploy"));
        let quiet = json(serde_json::json!({"executionState": "RUNNING",
            "lastForwardedMessageTimestamp": "2026-11-29T09:00:00Z"}));
        assert!(broken_link(&quiet, &[], key, before).starts_with("no notification of it reached the pipe"));
        let failure = LoadFailure {
            file: key.into(),
            status: "Load failed".into(),
            error: "bad magic".into(),
            ..LoadFailure::default()
        };
        assert_eq!(
            broken_link(&quiet, &[failure], key, before),
            format!("Snowpipe could not load it: {key} (Load failed): bad magic")
        );
        let queued = json(serde_json::json!({"executionState": "RUNNING", "pendingFileCount": 3,
            "lastForwardedMessageTimestamp": "2026-11-29T10:00:01Z"}));
        assert_eq!(
            broken_link(&queued, &[], key, before),
            "it is queued in the pipe (3 file(s) pending) but not loaded yet"
        );
    }
}
