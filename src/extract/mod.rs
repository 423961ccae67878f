//! The extraction run: pages from the X API (or a recording) → one parquet file per page in a sink,
//! then the checkpoint. At-least-once: nothing is acknowledged before it is stored.

pub mod api;
pub mod checkpoint;
pub mod lambda;
pub mod parquet;
pub mod replay;
pub mod sink;
pub mod tweet;

use std::time::{Duration, Instant};

use serde::Serialize;

use self::api::{ApiError, XClient};
use self::checkpoint::{Checkpoint, LastRun};
use self::replay::Replay;
use self::sink::{Sink, SinkError, Stored};
use self::tweet::{Page, RowError};
use crate::config::secret::SecretError;

/// Where pages come from.
pub enum Source {
    /// Live recent search, paginated by `next_token`, starting after the checkpoint.
    Api(XClient),
    /// Recorded pages, in order; the checkpoint is neither read nor written.
    Replay(Replay),
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Job {
    /// Stored in every row's `query` column; also keys the checkpoint.
    pub query: String,
    /// Key prefix: files go to `{prefix}/tweets/…`, state to `{prefix}/_state/…`.
    pub prefix: String,
    /// Stop after this many pages.
    pub max_pages: Option<u32>,
    /// Wall-clock budget, rate-limit waits included.
    pub time_budget: Duration,
}

/// What a run stored.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Prefix of this run's file names.
    pub run_id: String,
    /// Where the files went (`s3://bucket` or a directory).
    pub location: String,
    /// Pages stored as files.
    pub pages: u32,
    /// Tweets in those files.
    pub tweets: u64,
    /// Keys written, in order.
    pub files: Vec<String>,
    /// The checkpoint's since_id when the run started.
    pub since_id_before: Option<String>,
    /// The checkpoint's since_id after the run (None in replay mode).
    pub since_id_after: Option<String>,
    /// Partial errors the API reported beside data, and similar non-fatal notes.
    pub warnings: Vec<String>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The X API failed or refused.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Storing a file or the checkpoint failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The bearer token could not be resolved.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A body that is not a search page.
    #[error("{origin}: not an X API search page: {message}")]
    BadPage { origin: String, message: String },
    /// A tweet lacks what the contract needs.
    #[error("{origin}: {source}")]
    Row {
        origin: String,
        #[source]
        source: RowError,
    },
    /// A recording cannot be read.
    #[error("--replay {path}: {source}")]
    Replay {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The stored checkpoint is unreadable.
    #[error("checkpoint {location} is not valid: {message}; fix it, or delete it to fetch the whole 7-day window")]
    BadCheckpoint { location: String, message: String },
    /// A failure after some pages were stored: says what is safe and how to resume.
    #[error("{cause}\nrun {run_id} stored {pages} page(s) in {location} before that; the checkpoint was not advanced, so re-running fetches them again (the staging model drops duplicates)")]
    Interrupted { run_id: String, pages: u32, location: String, cause: Box<ExtractError> },
}

impl ExtractError {
    /// True when the cause is connectivity or credentials (exit code 3).
    pub fn is_connect(&self) -> bool {
        match self {
            ExtractError::Api(e) => e.is_connect(),
            ExtractError::Sink(e) => e.is_connect(),
            ExtractError::Secret(SecretError::Connect { .. }) => true,
            ExtractError::Interrupted { cause, .. } => cause.is_connect(),
            _ => false,
        }
    }
}

/// Runs one extraction: fetch, store each page, then advance the checkpoint (API source only).
pub async fn run(job: &Job, source: &mut Source, sink: &Sink) -> Result<Report, ExtractError> {
    let started = chrono::Utc::now();
    let run_id = format!("{}-{:06x}", started.format("%Y%m%dT%H%M%SZ"), fastrand::u32(..0x100_0000));
    let mut report = Report {
        run_id: run_id.clone(),
        location: sink.location(),
        pages: 0,
        tweets: 0,
        files: Vec::new(),
        since_id_before: None,
        since_id_after: None,
        warnings: Vec::new(),
    };
    let state_key = checkpoint::key(&job.prefix);
    let seen = match source {
        Source::Api(_) => checkpoint::read(sink, &state_key).await?,
        Source::Replay(_) => None,
    };
    report.since_id_before = seen.as_ref().filter(|(c, _)| c.query == job.query).and_then(|(c, _)| c.since_id.clone());
    if let Some((c, _)) = seen.as_ref().filter(|(c, _)| c.query != job.query) {
        report.warnings.push(format!("the query changed (was `{}`): starting afresh from the 7-day window", c.query));
    }
    let mut pages = Pages { job, started, deadline: Instant::now() + job.time_budget, newest: None };
    if let Err(cause) = pages.fetch_all(source, sink, &mut report).await {
        return Err(match report.pages {
            0 => cause,
            pages => ExtractError::Interrupted { run_id, pages, location: report.location, cause: Box::new(cause) },
        });
    }
    if let (Source::Api(_), Some(newest)) = (source, pages.newest) {
        let newest = newest.max(report.since_id_before.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0));
        let next = Checkpoint {
            since_id: Some(newest.to_string()),
            query: job.query.clone(),
            last_run: LastRun { run_id, finished_at: chrono::Utc::now().to_rfc3339(), pages: report.pages, tweets: report.tweets },
        };
        let stored = checkpoint::advance(sink, &state_key, next, seen.map(|(_, v)| v)).await?;
        report.since_id_after = stored.since_id;
    } else {
        report.since_id_after = report.since_id_before.clone();
    }
    Ok(report)
}

/// The page loop's state.
struct Pages<'a> {
    job: &'a Job,
    started: chrono::DateTime<chrono::Utc>,
    deadline: Instant,
    newest: Option<u64>,
}

impl Pages<'_> {
    async fn fetch_all(&mut self, source: &mut Source, sink: &Sink, report: &mut Report) -> Result<(), ExtractError> {
        let mut since_id = report.since_id_before.clone();
        let mut next_token: Option<String> = None;
        let mut number = 0u32;
        loop {
            let (body, origin) = match source {
                Source::Api(client) => {
                    number += 1;
                    let body = match client.page(since_id.as_deref(), next_token.as_deref(), self.deadline).await {
                        Err(ApiError::Rejected { status: 400, detail, .. }) if since_id.is_some() && detail.contains("since_id") => {
                            let note = "the checkpoint is older than the 7-day search window; tweets in the gap are no longer searchable";
                            tracing::warn!("{note}; fetching the whole window");
                            report.warnings.push(note.to_string());
                            since_id = None;
                            number -= 1;
                            continue;
                        }
                        other => other?,
                    };
                    (body.to_vec(), format!("page {number}"))
                }
                Source::Replay(replay) => match replay.next_page() {
                    Ok(Some(p)) => {
                        number += 1;
                        (p.body, p.origin)
                    }
                    Ok(None) => return Ok(()),
                    Err(source) => return Err(ExtractError::Replay { path: replay.root().display().to_string(), source }),
                },
            };
            next_token = self.store_page(&body, &origin, number, sink, report).await?;
            let at_limit = self.job.max_pages.is_some_and(|max| number >= max);
            let api_done = matches!(source, Source::Api(_)) && next_token.is_none();
            if at_limit || api_done {
                return Ok(());
            }
        }
    }

    /// Parses, encodes and stores one page; returns its `next_token`.
    async fn store_page(&mut self, body: &[u8], origin: &str, number: u32, sink: &Sink, report: &mut Report) -> Result<Option<String>, ExtractError> {
        let page: Page = serde_json::from_slice(body)
            .map_err(|e| ExtractError::BadPage { origin: origin.to_string(), message: e.to_string() })?;
        for error in &page.errors {
            let note = format!("{origin}: partial error from the API (rows kept): {}", compact(error));
            tracing::warn!("{note}");
            report.warnings.push(note);
        }
        let next_token = page.meta.next_token.as_deref().map(str::to_string);
        if page.data.is_empty() {
            return Ok(next_token);
        }
        let batch = page
            .to_batch(&self.job.query, self.started.timestamp_micros())
            .map_err(|source| ExtractError::Row { origin: origin.to_string(), source })?;
        let bytes = parquet::encode(&batch).map_err(|e| ExtractError::BadPage { origin: origin.to_string(), message: e.to_string() })?;
        let key = format!("{}/tweets/dt={}/{}-{number:04}.parquet", self.job.prefix, self.started.format("%Y-%m-%d"), report.run_id);
        if sink.put_new(&key, bytes).await? == Stored::AlreadyThere {
            report.warnings.push(format!("{key} already existed and was kept as it was"));
        }
        tracing::info!("stored {} tweets from {origin} as {key}", batch.num_rows());
        self.newest = self.newest.max(page.newest_id());
        report.pages += 1;
        report.tweets += batch.num_rows() as u64;
        report.files.push(key);
        Ok(next_token)
    }
}

fn compact(value: &serde_json::Value) -> String {
    let text = value.get("detail").or_else(|| value.get("message")).and_then(|v| v.as_str());
    text.map(str::to_string).unwrap_or_else(|| value.to_string())
}
