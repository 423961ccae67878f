//! The extraction run: pages from the X API (or a recording) → one parquet file per page in a sink,
//! then the checkpoint. At-least-once: nothing is acknowledged before it is stored.

pub mod api;
pub mod backfill;
pub mod checkpoint;
pub mod lambda;
pub mod lease;
pub mod parquet;
pub mod replay;
pub mod sink;
pub mod spend;
pub mod tweet;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use self::api::{ApiError, PageRequest, XClient};
use self::checkpoint::{Checkpoint, LastRun, Window};
use self::replay::Replay;
use self::sink::{Sink, SinkError, Stored};
use self::tweet::{Page, Rejected};
use crate::config::ExtractConfig;
use crate::config::secret::SecretError;

/// A run's lease outlives its time budget by this much, so a run that overruns a little (storing
/// its last page) still holds it; a crashed run's lease frees itself after budget + margin.
const LEASE_MARGIN: Duration = Duration::from_secs(120);

/// Where pages come from.
pub enum Source {
    /// Live recent search: finishes the checkpoint's open window, then asks for newer tweets.
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
    /// Stop (resumably) after this many pages.
    pub max_pages: Option<u32>,
    /// Wall-clock budget, rate-limit waits included; checked before every page request.
    pub time_budget: Duration,
    /// Tweets per page asked for (`extract.max_results`).
    pub page_size: u32,
    /// Stop (resumably) before this run reads more posts than this.
    pub max_posts_per_run: Option<u64>,
    /// Stop (resumably) before this UTC month's posts pass this.
    pub max_posts_per_month: Option<u64>,
}

impl Job {
    /// The job `extract` settings describe, under `prefix`.
    pub fn new(extract: &ExtractConfig, prefix: &str) -> Self {
        Self {
            query: extract.query.clone(),
            prefix: prefix.to_string(),
            max_pages: extract.max_pages,
            time_budget: Duration::from_secs(extract.time_budget_secs),
            page_size: extract.max_results,
            max_posts_per_run: extract.max_posts_per_run,
            max_posts_per_month: extract.max_posts_per_month,
        }
    }
}

/// Whether a run got to the newest tweets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every window the run started is finished.
    Complete,
    /// The run stopped early (a cap, the time budget, a rate limit); the next run resumes.
    Partial,
}

/// What a run stored.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Prefix of this run's file names.
    pub run_id: String,
    /// Where the files went (`s3://bucket` or a directory).
    pub location: String,
    /// `complete`, or `partial` when the next run has to finish what this one started.
    pub status: Status,
    /// Why the run stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Pages stored as files.
    pub pages: u32,
    /// Tweets in those files.
    pub tweets: u64,
    /// Tweets the contract cannot hold, written to `_rejects/` with the reason.
    pub rejects: u64,
    /// Posts read from the API (what X bills), rejects included.
    pub posts: u64,
    /// What the expansions returned beside them (`includes`), which X may bill too.
    pub included: checkpoint::Included,
    /// Posts read this UTC month, this run included (API runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month_posts: Option<u64>,
    /// Keys written, in order (rejects files included).
    pub files: Vec<String>,
    /// The checkpoint's since_id when the run started.
    pub since_id_before: Option<String>,
    /// The checkpoint's since_id after the run (None in replay mode).
    pub since_id_after: Option<String>,
    /// The window left open for the next run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_window: Option<Window>,
    /// Partial errors the API reported beside data, and similar non-fatal notes.
    pub warnings: Vec<String>,
}

impl Report {
    fn new(run_id: &str, location: String) -> Self {
        Self {
            run_id: run_id.to_string(),
            location,
            status: Status::Complete,
            partial: None,
            pages: 0,
            tweets: 0,
            rejects: 0,
            posts: 0,
            included: checkpoint::Included::default(),
            month_posts: None,
            files: Vec::new(),
            since_id_before: None,
            since_id_after: None,
            open_window: None,
            warnings: Vec::new(),
        }
    }

    /// Logs a non-fatal note and keeps it in the report.
    fn warn(&mut self, note: String) {
        tracing::warn!("{note}");
        self.warnings.push(note);
    }
}

/// Why a run stopped before the newest tweets; each leaves an open window, never a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    MaxPages(u32),
    RunCap { cap: u64, read: u64 },
    MonthCap { cap: u64, read: u64 },
    TimeBudget,
    RateLimited(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::MaxPages(max) => write!(f, "max_pages = {max} reached"),
            Stop::RunCap { cap, read } => write!(f, "max_posts_per_run = {cap} reached: {read} posts read"),
            Stop::MonthCap { cap, read } => {
                write!(f, "max_posts_per_month = {cap} reached: {read} posts read this month")
            }
            Stop::TimeBudget => write!(f, "time budget used up"),
            Stop::RateLimited(reset) => write!(f, "rate limited by the X API until {reset}"),
        }
    }
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
    /// No tweet on the page has a field the contract needs: the request lacks it.
    #[error("{origin}: {reason}")]
    FieldNotRequested { origin: String, reason: String },
    /// A recorded line or file that is not a search page (a tweet, an error body, other JSON).
    #[error("{origin}: not an X API search page: {reason}")]
    NotAPage { origin: String, reason: String },
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
    /// Someone else wrote the checkpoint while this run held the lease.
    #[error(
        "checkpoint {location} was changed by someone else during this run; its progress up to the last page is kept there, rerun to continue"
    )]
    CheckpointMoved { location: String },
    /// Another run holds the environment's lease.
    #[error(
        "another extraction is running on this environment: {holder} (run {run_id}) holds {location} until {expires_at}; wait for it to finish, or, if it crashed, until the lease expires"
    )]
    LeaseHeld { location: String, holder: String, run_id: String, expires_at: String },
    /// The API handed back a cursor this run already followed.
    #[error(
        "{origin}: the X API repeated the pagination cursor `{token}`; stopped to avoid paying for the same pages in a loop"
    )]
    CursorRepeated { origin: String, token: String },
    /// A page that is not older than the one before it, so pagination would not end.
    #[error(
        "{origin}: the page's newest tweet {newest} is not older than the last stored one {until_id}; stopped, pagination is not moving"
    )]
    NotOlder { origin: String, newest: u64, until_id: String },
    /// A failure after some pages were stored: says what is safe and how to resume.
    #[error("{cause}\nrun {run_id} stored {pages} page(s) in {location} before that; {resume}")]
    Interrupted { run_id: String, pages: u32, location: String, resume: &'static str, cause: Box<ExtractError> },
}

impl ExtractError {
    /// True when an input is missing or is not what it should be: the token's variable, a
    /// `--replay` file, a recorded line (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            ExtractError::Secret(SecretError::EnvMissing(_)) => true,
            ExtractError::Replay { .. } | ExtractError::NotAPage { .. } => true,
            ExtractError::Interrupted { cause, .. } => cause.is_usage(),
            _ => false,
        }
    }

    /// The next thing to do, where this error knows it.
    pub fn fix(&self) -> Option<String> {
        match self {
            ExtractError::Secret(SecretError::EnvMissing(name)) => Some(format!(
                "export {name}=<your X bearer token>, or point extract.bearer_token at a Secrets Manager ARN"
            )),
            ExtractError::Replay { .. } => Some("pass --replay an existing file or directory of recorded pages".into()),
            ExtractError::NotAPage { .. } => Some(
                "replay only X API search responses: one page per line (JSONL) or per .json file, as the API \
                 returned them"
                    .into(),
            ),
            ExtractError::LeaseHeld { .. } => Some("wait for the other run to finish, then run it again".into()),
            ExtractError::Interrupted { cause, resume, .. } => cause.fix().map(|fix| format!("{fix}; {resume}")),
            _ => None,
        }
    }

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

    /// True when X's usage cap refuses every request until it resets (exit code 4).
    pub fn is_capped(&self) -> bool {
        match self {
            ExtractError::Api(e) => e.is_capped(),
            ExtractError::Interrupted { cause, .. } => cause.is_capped(),
            _ => false,
        }
    }
}

/// What an API run's error message says about resuming.
const RESUME_API: &str = "the checkpoint records them, so the next run resumes after them";
/// What a replay's error message says about resuming.
const RESUME_REPLAY: &str = "the replay does not use the checkpoint: running it again stores every page again under a new run id (the staging model drops duplicates)";

/// Runs one extraction: an API run takes the environment's lease, finishes the open window,
/// then fetches newer tweets, saving progress after every page; a replay stores recorded pages.
pub async fn run(job: &Job, source: &mut Source, sink: &Sink) -> Result<Report, ExtractError> {
    let started = chrono::Utc::now();
    let run_id = format!("{}-{:06x}", started.format("%Y%m%dT%H%M%SZ"), fastrand::u32(..0x100_0000));
    let mut report = Report::new(&run_id, sink.location());
    let cx = Arc::new(RunContext {
        query: job.query.clone(),
        prefix: job.prefix.clone(),
        run_id: run_id.clone(),
        date: started.format("%Y-%m-%d").to_string(),
        month: started.format("%Y-%m").to_string(),
        extracted_at: started.timestamp_micros(),
    });
    let deadline = Instant::now() + job.time_budget;
    match source {
        Source::Replay(replay) => {
            let result = fetch_replay(job, &cx, replay, sink, &mut report).await;
            result.map_err(|cause| interrupted(cause, &report, RESUME_REPLAY))?;
        }
        Source::Api(client) => {
            let held = lease::acquire(sink, &job.prefix, &run_id, job.time_budget + LEASE_MARGIN).await?;
            let mut api = ApiRun::new(job, client, sink, cx, deadline);
            let result = api.run(&mut report).await;
            lease::release(sink, held).await;
            result.map_err(|cause| interrupted(cause, &report, RESUME_API))?;
        }
    }
    Ok(report)
}

fn interrupted(cause: ExtractError, report: &Report, resume: &'static str) -> ExtractError {
    match report.pages {
        0 => cause,
        pages => ExtractError::Interrupted {
            run_id: report.run_id.clone(),
            pages,
            location: report.location.clone(),
            resume,
            cause: Box::new(cause),
        },
    }
}

/// What is the same for every page of a run.
struct RunContext {
    query: String,
    prefix: String,
    run_id: String,
    date: String,
    month: String,
    extracted_at: i64,
}

/// One live-API run: the checkpoint it holds and how far it got.
struct ApiRun<'a> {
    job: &'a Job,
    client: &'a XClient,
    sink: &'a Sink,
    cx: Arc<RunContext>,
    deadline: Instant,
    key: String,
    state: Checkpoint,
    version: Option<String>,
    page_size: u32,
    number: u32,
    slowest: Duration,
    cursors: HashSet<String>,
}

/// How a window ended.
enum WindowEnd {
    /// Its last page is stored: `since_id` moved to its newest tweet.
    Finished,
    /// The run stopped inside it; it stays open for the next run.
    Stopped(Stop),
}

impl<'a> ApiRun<'a> {
    fn new(job: &'a Job, client: &'a XClient, sink: &'a Sink, cx: Arc<RunContext>, deadline: Instant) -> Self {
        let key = checkpoint::key(&job.prefix);
        let page_size = job.page_size;
        let (state, version, number, slowest) = (Checkpoint::default(), None, 0, Duration::ZERO);
        Self {
            job,
            client,
            sink,
            cx,
            deadline,
            key,
            state,
            version,
            page_size,
            number,
            slowest,
            cursors: HashSet::new(),
        }
    }

    /// Loads the state, runs windows until done or stopped, and records the run whatever happened.
    async fn run(&mut self, report: &mut Report) -> Result<(), ExtractError> {
        self.load(report).await?;
        let outcome = self.windows(report).await;
        if let Err(e) = &outcome {
            report.partial = Some(format!("stopped by an error: {e}"));
        }
        report.status = if report.partial.is_some() { Status::Partial } else { Status::Complete };
        self.state.last_run = Some(LastRun {
            run_id: self.cx.run_id.clone(),
            finished_at: chrono::Utc::now().to_rfc3339(),
            pages: report.pages,
            tweets: report.tweets,
            posts: report.posts,
            partial: report.partial.clone(),
        });
        let saved = self.save().await;
        report.since_id_after = self.state.since_id.clone();
        report.open_window = self.state.window.clone();
        report.month_posts = Some(self.state.month.posts);
        match (outcome, saved) {
            (Err(e), Err(lost)) => {
                tracing::warn!("could not record the failed run in the checkpoint: {lost}");
                Err(e)
            }
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    async fn load(&mut self, report: &mut Report) -> Result<(), ExtractError> {
        let (stored, version) = match checkpoint::read(self.sink, &self.key).await? {
            Some((state, version)) => (state, Some(version)),
            None => (Checkpoint::empty(&self.job.query), None),
        };
        let started = stored.since_id.is_some() || stored.window.is_some();
        if started && stored.query != self.job.query {
            let note = format!("the query changed (was `{}`): starting afresh from the 7-day window", stored.query);
            report.warnings.push(note);
        }
        self.state = stored.for_query(&self.job.query);
        self.state.month = self.state.month.of(&self.cx.month);
        self.version = version;
        report.since_id_before = self.state.since_id.clone();
        // One page size for the whole run: a cursor belongs to the request it came from.
        let left = self.posts_left(report);
        self.page_size = left.map_or(self.job.page_size, |left| self.job.page_size.min(left.min(100) as u32).max(10));
        Ok(())
    }

    /// Finishes the open window (if any), then fetches what is newer, until done or stopped.
    async fn windows(&mut self, report: &mut Report) -> Result<(), ExtractError> {
        loop {
            let resumed = self.state.window.is_some();
            match self.window(report).await? {
                WindowEnd::Stopped(stop) => {
                    report.partial = Some(stop.to_string());
                    return Ok(());
                }
                WindowEnd::Finished if resumed => continue,
                WindowEnd::Finished => return Ok(()),
            }
        }
    }

    /// Pages through one window, newest first, storing each page and saving progress after it.
    async fn window(&mut self, report: &mut Report) -> Result<WindowEnd, ExtractError> {
        let (mut floor, mut until, mut newest) = match self.state.window.clone() {
            Some(w) => (w.floor, Some(w.until_id), w.newest_id.parse::<u64>().ok()),
            None => (self.state.since_id.clone(), None, None),
        };
        let mut request =
            PageRequest { since_id: floor.clone(), until_id: until.clone(), next_token: None, max_results: None };
        loop {
            if let Some(stop) = self.stop_before_page(report) {
                return Ok(WindowEnd::Stopped(stop));
            }
            request.max_results = Some(self.page_size);
            let began = Instant::now();
            let body = match self.client.page(&request, self.deadline).await {
                Ok(body) => body,
                Err(ApiError::RateLimited { reset }) => return Ok(WindowEnd::Stopped(Stop::RateLimited(reset))),
                Err(ApiError::OutOfTime) => return Ok(WindowEnd::Stopped(Stop::TimeBudget)),
                Err(ApiError::OutsideWindow { param: "since_id", message })
                    if request.since_id.is_some() && request.next_token.is_none() =>
                {
                    let note = format!(
                        "the checkpoint is older than the 7-day search window ({message}); tweets in the gap are no longer searchable, fetching the whole window"
                    );
                    report.warn(note);
                    (floor, request.since_id) = (None, None);
                    continue;
                }
                Err(ApiError::OutsideWindow { param: "until_id", message })
                    if request.until_id.is_some() && request.next_token.is_none() =>
                {
                    let note = format!(
                        "the rest of the open window fell out of the 7-day search window ({message}); closing it"
                    );
                    report.warn(note);
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            self.number += 1;
            let encoded = encode_page(&self.cx, &body, format!("page {}", self.number), self.number)?;
            if let (Some(top), Some(until)) = (encoded.newest_in_data, until.as_deref()) {
                if until.parse::<u64>().is_ok_and(|until| top >= until) {
                    let origin = encoded.origin;
                    return Err(ExtractError::NotOlder { origin, newest: top, until_id: until.to_string() });
                }
            }
            let (origin, next_token) = (encoded.origin.clone(), encoded.next_token.clone());
            let (oldest, page_newest, posts, included) =
                (encoded.oldest, encoded.newest, encoded.posts, encoded.included);
            let written = write(encoded, self.sink).await?;
            account(written, report);
            report.posts += posts;
            if posts > 0 && report.posts == posts {
                self.state.month.runs += 1;
            }
            self.state.month.posts += posts;
            self.state.month.included += included;
            report.included += included;
            newest = newest.max(page_newest);
            if let Some(oldest) = oldest {
                until = Some(oldest.to_string());
            }
            if let (Some(until), Some(newest)) = (&until, newest) {
                let newest_id = newest.to_string();
                self.state.window = Some(Window { floor: floor.clone(), until_id: until.clone(), newest_id });
            }
            let Some(token) = next_token else { break };
            self.save().await?;
            self.slowest = self.slowest.max(began.elapsed());
            if !self.cursors.insert(token.clone()) {
                return Err(ExtractError::CursorRepeated { origin, token });
            }
            request.next_token = Some(token);
        }
        let floor_id = floor.as_deref().and_then(|f| f.parse::<u64>().ok());
        self.state.since_id = newest.max(floor_id).map(|id| id.to_string()).or(floor);
        self.state.window = None;
        self.save().await?;
        Ok(WindowEnd::Finished)
    }

    /// A reason not to request another page: the page cap, a spend cap, or too little time left
    /// for a page as slow as the slowest so far.
    fn stop_before_page(&self, report: &Report) -> Option<Stop> {
        if let Some(max) = self.job.max_pages.filter(|max| self.number >= *max) {
            return Some(Stop::MaxPages(max));
        }
        let page = u64::from(self.page_size);
        if let Some(cap) = self.job.max_posts_per_run.filter(|cap| report.posts + page > *cap) {
            return Some(Stop::RunCap { cap, read: report.posts });
        }
        if let Some(cap) = self.job.max_posts_per_month.filter(|cap| self.state.month.posts + page > *cap) {
            return Some(Stop::MonthCap { cap, read: self.state.month.posts });
        }
        (Instant::now() + self.slowest >= self.deadline).then_some(Stop::TimeBudget)
    }

    /// Posts this run may still read under both caps (None: no cap).
    fn posts_left(&self, report: &Report) -> Option<u64> {
        let run = self.job.max_posts_per_run.map(|cap| cap.saturating_sub(report.posts));
        let month = self.job.max_posts_per_month.map(|cap| cap.saturating_sub(self.state.month.posts));
        run.into_iter().chain(month).min()
    }

    async fn save(&mut self) -> Result<(), ExtractError> {
        let version = checkpoint::write(self.sink, &self.key, &self.state, self.version.as_deref()).await?;
        self.version = Some(version);
        Ok(())
    }
}

/// A page turned into a parquet file (or into nothing, when it held no tweets), plus the rejects
/// file for the tweets the contract cannot hold.
struct Encoded {
    origin: String,
    key: Option<String>,
    bytes: Vec<u8>,
    rows: usize,
    rejects: Option<(String, Vec<u8>)>,
    rejected: usize,
    posts: u64,
    included: checkpoint::Included,
    newest: Option<u64>,
    newest_in_data: Option<u64>,
    oldest: Option<u64>,
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
    let ids = || page.data.iter().filter_map(|t| t.id.parse::<u64>().ok());
    let mut encoded = Encoded {
        origin,
        key: None,
        bytes: Vec::new(),
        rows: 0,
        rejects: None,
        rejected: 0,
        posts: page.data.len() as u64,
        included: checkpoint::Included {
            users: page.includes.users.len() as u64,
            posts: page.includes.tweets.len() as u64,
        },
        newest: page.newest_id(),
        newest_in_data: ids().max(),
        oldest: ids().min(),
        next_token: page.meta.next_token.as_deref().map(str::to_string),
        warnings,
    };
    if page.data.is_empty() {
        return Ok(encoded);
    }
    let (batch, rejected) = page.to_batch(&cx.query, cx.extracted_at);
    if let Some(reason) = not_requested(&rejected, page.data.len()) {
        return Err(ExtractError::FieldNotRequested { origin: encoded.origin, reason });
    }
    if !rejected.is_empty() {
        let key = format!("{}/_rejects/dt={}/{}-{number:04}.jsonl", cx.prefix, cx.date, cx.run_id);
        encoded.rejected = rejected.len();
        encoded.rejects = Some((key, rejects_jsonl(cx, body, &rejected)));
    }
    if batch.num_rows() > 0 {
        encoded.bytes = parquet::encode(&batch)
            .map_err(|e| ExtractError::BadPage { origin: encoded.origin.clone(), message: e.to_string() })?;
        encoded.rows = batch.num_rows();
        encoded.key = Some(format!("{}/tweets/dt={}/{}-{number:04}.parquet", cx.prefix, cx.date, cx.run_id));
    }
    Ok(encoded)
}

/// Every tweet of the page lacks the same field: the request did not ask for it, and rejecting
/// the whole page would hide that. The first tweet's reason names the field and the fix.
fn not_requested(rejected: &[Rejected], tweets: usize) -> Option<String> {
    let field = rejected.first()?.missing?;
    let all = rejected.len() == tweets && rejected.iter().all(|r| r.missing == Some(field));
    all.then(|| rejected[0].reason.clone())
}

/// One JSON line per rejected tweet: why, where it came from, and the tweet as the API sent it.
fn rejects_jsonl(cx: &RunContext, body: &[u8], rejected: &[Rejected]) -> Vec<u8> {
    let page: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for r in rejected {
        let line = serde_json::json!({
            "reason": r.reason,
            "tweet_id": r.tweet_id,
            "run_id": cx.run_id,
            "query": cx.query,
            "tweet": page["data"][r.index],
        });
        serde_json::to_writer(&mut out, &line).expect("JSON serializes");
        out.push(b'\n');
    }
    out
}

/// Adds a stored page (and its rejects) to the report.
fn account((encoded, stored): (Encoded, Option<Stored>), report: &mut Report) {
    for note in encoded.warnings {
        report.warn(note);
    }
    if let Some((key, _)) = &encoded.rejects {
        let note =
            format!("{}: {} tweet(s) rejected, written to {key} with the reason", encoded.origin, encoded.rejected);
        report.warn(note);
        report.rejects += encoded.rejected as u64;
        report.files.push(key.clone());
    }
    let Some(key) = encoded.key else { return };
    if stored == Some(Stored::AlreadyThere) {
        report.warnings.push(format!("{key} already existed and was kept as it was"));
    }
    tracing::info!("stored {} tweets from {} as {key}", encoded.rows, encoded.origin);
    report.pages += 1;
    report.tweets += encoded.rows as u64;
    report.files.push(key);
}

/// Recorded pages on one worker per core: each takes the next page, encodes and stores it.
/// Results come back in any order and are accounted in page order; the first failing page
/// (by number) stops the run, and the pages before it are reported as stored.
async fn fetch_replay(
    job: &Job,
    cx: &Arc<RunContext>,
    replay: &mut Replay,
    sink: &Sink,
    report: &mut Report,
) -> Result<(), ExtractError> {
    let queue = Arc::new(PageQueue {
        next: Mutex::new((std::mem::replace(replay, Replay::empty()), 0)),
        max_pages: job.max_pages,
        stop: AtomicBool::new(false),
    });
    let (workers, mut done) = start_replay_workers(&queue, cx, sink);
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
            report.posts += written.0.posts;
            report.included += written.0.included;
            account(written, report);
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
        let written = replay::check(&page)
            .and_then(|()| encode_page(cx, &page.body, page.origin, number))
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

/// Writes an encoded page (and its rejects) to a directory on this (blocking) thread; an S3 page
/// comes back as it was, with `None`.
fn store_here(mut encoded: Encoded, sink: &Sink) -> Result<(Encoded, Option<Stored>), ExtractError> {
    if let Some((key, bytes)) = &mut encoded.rejects {
        match sink.put_new_here(key, bytes) {
            Some(stored) => drop(stored?),
            None => return Ok((encoded, None)),
        }
        *bytes = Vec::new();
    }
    let Some(key) = &encoded.key else { return Ok((encoded, Some(Stored::Created))) };
    match sink.put_new_here(key, &encoded.bytes) {
        Some(stored) => {
            encoded.bytes = Vec::new();
            Ok((encoded, Some(stored?)))
        }
        None => Ok((encoded, None)),
    }
}

/// Writes an encoded page and its rejects (create-if-absent); they come back without their bytes.
async fn write(mut encoded: Encoded, sink: &Sink) -> Result<(Encoded, Option<Stored>), ExtractError> {
    if let Some((key, bytes)) = &mut encoded.rejects {
        sink.put_new(key, std::mem::take(bytes)).await?;
    }
    let Some(key) = &encoded.key else { return Ok((encoded, None)) };
    let stored = sink.put_new(key, std::mem::take(&mut encoded.bytes)).await?;
    Ok((encoded, Some(stored)))
}

fn compact(value: &serde_json::Value) -> String {
    let text = value.get("detail").or_else(|| value.get("message")).and_then(|v| v.as_str());
    text.map(str::to_string).unwrap_or_else(|| value.to_string())
}

impl crate::output::Render for Report {
    fn write_human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let (tweets, pages, location, run) = (self.tweets, self.pages, &self.location, &self.run_id);
        writeln!(w, "extracted {tweets} tweets in {pages} page(s) to {location} (run {run})")?;
        if self.rejects > 0 {
            writeln!(
                w,
                "  rejected {} tweet(s) the data contract cannot hold: see {location}/…/_rejects/",
                self.rejects
            )?;
        }
        if let Some(reason) = &self.partial {
            writeln!(w, "  partial: resumes next run ({reason})")?;
        }
        self.warnings.iter().try_for_each(|note| writeln!(w, "  warning: {note}"))
    }
}
