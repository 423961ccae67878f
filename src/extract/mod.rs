//! The extraction run: pages from the X API (or a recording) → one parquet file per page in a sink,
//! then the checkpoint. At-least-once: nothing is acknowledged before it is stored.

pub mod api;
pub mod checkpoint;
pub mod lambda;
pub mod parquet;
pub mod replay;
pub mod sink;
pub mod tweet;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use self::api::{ApiError, XClient};
use self::checkpoint::{Checkpoint, LastRun};
use self::replay::Replay;
use self::sink::{Sink, SinkError, Stored};
use self::tweet::Page;
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
    /// A tweet lacks what the contract needs (the reason names the tweet and the field).
    #[error("{origin}: {reason}")]
    Row { origin: String, reason: String },
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
    #[error(
        "{cause}\nrun {run_id} stored {pages} page(s) in {location} before that; the checkpoint was not advanced, so re-running fetches them again (the staging model drops duplicates)"
    )]
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
    let cx = RunContext {
        query: job.query.clone(),
        prefix: job.prefix.clone(),
        run_id: run_id.clone(),
        date: started.format("%Y-%m-%d").to_string(),
        extracted_at: started.timestamp_micros(),
    };
    let mut pages = Pages { job, cx: Arc::new(cx), deadline: Instant::now() + job.time_budget, newest: None };
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
            last_run: LastRun {
                run_id,
                finished_at: chrono::Utc::now().to_rfc3339(),
                pages: report.pages,
                tweets: report.tweets,
            },
        };
        let stored = checkpoint::advance(sink, &state_key, next, seen.map(|(_, v)| v)).await?;
        report.since_id_after = stored.since_id;
    } else {
        report.since_id_after = report.since_id_before.clone();
    }
    Ok(report)
}

/// What is the same for every page of a run.
struct RunContext {
    query: String,
    prefix: String,
    run_id: String,
    date: String,
    extracted_at: i64,
}

/// A page turned into a parquet file (or into nothing, when it held no tweets).
struct Encoded {
    origin: String,
    key: Option<String>,
    bytes: Vec<u8>,
    rows: usize,
    newest: Option<u64>,
    next_token: Option<String>,
    warnings: Vec<String>,
}

/// Parses and encodes one page: pure CPU work, safe to run on any thread.
fn encode_page(cx: &RunContext, body: &[u8], origin: String, number: u32) -> Result<Encoded, ExtractError> {
    // sonic-rs: the same serde model, parsed (and unknown fields skipped) with SIMD.
    let page: Page = sonic_rs::from_slice(body)
        .map_err(|e| ExtractError::BadPage { origin: origin.clone(), message: e.to_string() })?;
    let warnings = page
        .errors
        .iter()
        .map(|error| format!("{origin}: partial error from the API (rows kept): {}", compact(error)))
        .collect();
    let next_token = page.meta.next_token.as_deref().map(str::to_string);
    let mut encoded =
        Encoded { origin, key: None, bytes: Vec::new(), rows: 0, newest: page.newest_id(), next_token, warnings };
    if page.data.is_empty() {
        return Ok(encoded);
    }
    let (batch, rejected) = page.to_batch(&cx.query, cx.extracted_at);
    if let Some(first) = rejected.into_iter().next() {
        return Err(ExtractError::Row { origin: encoded.origin, reason: first.reason });
    }
    encoded.bytes = parquet::encode(&batch)
        .map_err(|e| ExtractError::BadPage { origin: encoded.origin.clone(), message: e.to_string() })?;
    encoded.rows = batch.num_rows();
    encoded.key = Some(format!("{}/tweets/dt={}/{}-{number:04}.parquet", cx.prefix, cx.date, cx.run_id));
    Ok(encoded)
}

/// The page loop's state.
struct Pages<'a> {
    job: &'a Job,
    cx: Arc<RunContext>,
    deadline: Instant,
    newest: Option<u64>,
}

impl Pages<'_> {
    async fn fetch_all(&mut self, source: &mut Source, sink: &Sink, report: &mut Report) -> Result<(), ExtractError> {
        match source {
            Source::Api(client) => self.fetch_api(client, sink, report).await,
            Source::Replay(replay) => self.fetch_replay(replay, sink, report).await,
        }
    }

    /// Follows `next_token` page by page; a page is stored before the next is requested.
    async fn fetch_api(&mut self, client: &XClient, sink: &Sink, report: &mut Report) -> Result<(), ExtractError> {
        let mut since_id = report.since_id_before.clone();
        let mut next_token: Option<String> = None;
        let mut number = 0u32;
        loop {
            let body = match client.page(since_id.as_deref(), next_token.as_deref(), self.deadline).await {
                Err(ApiError::Rejected { status: 400, detail, .. })
                    if since_id.is_some() && detail.contains("since_id") =>
                {
                    let note = "the checkpoint is older than the 7-day search window; tweets in the gap are no longer searchable";
                    tracing::warn!("{note}; fetching the whole window");
                    report.warnings.push(note.to_string());
                    since_id = None;
                    continue;
                }
                other => other?,
            };
            number += 1;
            let encoded = encode_page(&self.cx, &body, format!("page {number}"), number)?;
            next_token = encoded.next_token.clone();
            self.store(encoded, sink, report).await?;
            if next_token.is_none() || self.job.max_pages.is_some_and(|max| number >= max) {
                return Ok(());
            }
        }
    }

    /// Recorded pages on one worker per core: each takes the next page, encodes and stores it.
    /// Results come back in any order and are accounted in page order; the first failing page
    /// (by number) stops the run, and the pages before it are reported as stored.
    async fn fetch_replay(
        &mut self,
        replay: &mut Replay,
        sink: &Sink,
        report: &mut Report,
    ) -> Result<(), ExtractError> {
        let queue = Arc::new(PageQueue {
            next: Mutex::new((std::mem::replace(replay, Replay::empty()), 0)),
            max_pages: self.job.max_pages,
            stop: AtomicBool::new(false),
        });
        let (workers, mut done) = start_replay_workers(&queue, &self.cx, sink);
        let mut finished = std::collections::BTreeMap::new();
        let mut failed: Option<(u32, ExtractError)> = None;
        let mut next = 1;
        while let Some((number, result)) = done.recv().await {
            match result {
                Ok(written) => drop(finished.insert(number, written)),
                Err(e) if failed.as_ref().is_none_or(|(first, _)| number < *first) => failed = Some((number, e)),
                Err(_) => {}
            }
            while let Some(written) = finished.remove(&next) {
                self.account(written, report);
                next += 1;
            }
        }
        for worker in workers {
            if let Err(e) = worker.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        *replay = std::mem::replace(&mut queue.next.lock().unwrap_or_else(|e| e.into_inner()).0, Replay::empty());
        failed.map_or(Ok(()), |(_, e)| Err(e))
    }

    /// Stores an encoded page and accounts for it.
    async fn store(&mut self, encoded: Encoded, sink: &Sink, report: &mut Report) -> Result<(), ExtractError> {
        let written = write(encoded, sink).await?;
        self.account(written, report);
        Ok(())
    }

    /// Adds a stored page to the report and the newest id seen.
    fn account(&mut self, (encoded, stored): (Encoded, Option<Stored>), report: &mut Report) {
        for note in encoded.warnings {
            tracing::warn!("{note}");
            report.warnings.push(note);
        }
        let Some(key) = encoded.key else { return };
        if stored == Some(Stored::AlreadyThere) {
            report.warnings.push(format!("{key} already existed and was kept as it was"));
        }
        tracing::info!("stored {} tweets from {} as {key}", encoded.rows, encoded.origin);
        self.newest = self.newest.max(encoded.newest);
        report.pages += 1;
        report.tweets += encoded.rows as u64;
        report.files.push(key);
    }
}

/// Recorded pages shared by the replay workers, numbered as they are taken.
struct PageQueue {
    next: Mutex<(Replay, u32)>,
    max_pages: Option<u32>,
    stop: AtomicBool,
}

/// A page's number and what became of it.
type PageResult = (u32, Result<(Encoded, Option<Stored>), ExtractError>);

/// One worker per core (at most 8), on blocking threads; results arrive on the receiver.
fn start_replay_workers(
    queue: &Arc<PageQueue>,
    cx: &Arc<RunContext>,
    sink: &Sink,
) -> (Vec<tokio::task::JoinHandle<()>>, tokio::sync::mpsc::UnboundedReceiver<PageResult>) {
    let (results, done) = tokio::sync::mpsc::unbounded_channel();
    let count = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let workers = (0..count)
        .map(|_| {
            let (queue, results, cx, sink) = (queue.clone(), results.clone(), cx.clone(), sink.clone());
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || replay_worker(&queue, &cx, &sink, &runtime, &results))
        })
        .collect();
    (workers, done)
}

/// One replay worker (a blocking thread): takes pages until none are left or one fails; a
/// failure stops every worker before its next page.
fn replay_worker(
    queue: &PageQueue,
    cx: &RunContext,
    sink: &Sink,
    runtime: &tokio::runtime::Handle,
    results: &tokio::sync::mpsc::UnboundedSender<PageResult>,
) {
    while !queue.stop.load(Ordering::Relaxed) {
        let (page, number) = {
            let mut next = queue.next.lock().unwrap_or_else(|e| e.into_inner());
            let (replay, taken) = &mut *next;
            if queue.max_pages.is_some_and(|max| *taken >= max) {
                return;
            }
            let page = match replay.next_page() {
                Ok(Some(page)) => page,
                Ok(None) => return,
                Err(source) => {
                    *taken += 1;
                    queue.stop.store(true, Ordering::Relaxed);
                    let path = replay.root().display().to_string();
                    let _ = results.send((*taken, Err(ExtractError::Replay { path, source })));
                    return;
                }
            };
            *taken += 1;
            (page, *taken)
        };
        let written = encode_page(cx, &page.body, page.origin, number)
            .and_then(|encoded| store_here(encoded, sink))
            .and_then(|stored| match stored {
                (encoded, None) => runtime.block_on(write(encoded, sink)),
                stored => Ok(stored),
            });
        if written.is_err() {
            queue.stop.store(true, Ordering::Relaxed);
        }
        if results.send((number, written)).is_err() {
            return;
        }
    }
}

/// Writes an encoded page to a directory on this (blocking) thread; an S3 page, or a page without
/// rows, comes back as it was, with `None`.
fn store_here(mut encoded: Encoded, sink: &Sink) -> Result<(Encoded, Option<Stored>), ExtractError> {
    let Some(key) = &encoded.key else { return Ok((encoded, None)) };
    match sink.put_new_here(key, &encoded.bytes) {
        Some(stored) => {
            encoded.bytes = Vec::new();
            Ok((encoded, Some(stored?)))
        }
        None => Ok((encoded, None)),
    }
}

/// Writes an encoded page (create-if-absent); the page comes back without its bytes.
async fn write(mut encoded: Encoded, sink: &Sink) -> Result<(Encoded, Option<Stored>), ExtractError> {
    let Some(key) = &encoded.key else { return Ok((encoded, None)) };
    let stored = sink.put_new(key, std::mem::take(&mut encoded.bytes)).await?;
    Ok((encoded, Some(stored)))
}

fn compact(value: &serde_json::Value) -> String {
    let text = value.get("detail").or_else(|| value.get("message")).and_then(|v| v.as_str());
    text.map(str::to_string).unwrap_or_else(|| value.to_string())
}
