//! `flixops backfill`: history through full-archive search (`/2/tweets/search/all`), quoted from
//! the counts endpoint before anything is bought. A backfill is one window over `[start, end)`,
//! paged newest first into the same lake layout as `extract`, under its own run ids and its own
//! checkpoint (`{prefix}/_state/backfill-{start}-{end}.json`), holding the same run lease. Its
//! checkpoint records how far down it got (`until_id`), so a killed run resumes below the last
//! stored page; the recent-search checkpoint is never touched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::api::{ApiError, ArchiveRequest, DayCount, XClient};
use super::checkpoint::{self, LastRun, MonthUsage};
use super::sink::Sink;
use super::{ExtractError, LEASE_MARGIN, Report, RunContext, Status, Stop, account, encode_page, lease, write};
use crate::config::ExtractConfig;

/// Full-archive search returns up to 500 posts a page.
pub const MAX_PAGE: u32 = 500;
/// Full-archive search allows one request a second per app (docs.x.com, full-archive search rate limits).
const PACE: Duration = Duration::from_secs(1);
/// X refuses an `end_time` less than 10 s before the request; the default end keeps a margin.
const END_MARGIN_SECS: i64 = 30;
/// The oldest `start_time` full-archive search accepts.
const ARCHIVE_START: &str = "2006-03-21T00:00:00Z";

/// What the user asked for, as typed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--since`: a date (`2026-10-01`), a time (RFC 3339) or a duration back from now (`30d`, `12h`, `2w`).
    pub since: String,
    /// `--until`: a date or a time [default: now].
    pub until: Option<String>,
    /// `--max-posts`: stop (resumably) before this run reads more posts than this.
    pub max_posts: Option<u64>,
    /// `--abandon`: close an open backfill of another range and start this one.
    pub abandon: bool,
}

/// Why a backfill cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// `--since` or `--until` cannot be read or makes no range.
    #[error("{flag} `{value}`: {reason}")]
    BadRange { flag: &'static str, value: String, reason: String },
    /// Another range is open; it must be finished or abandoned first.
    #[error(
        "a backfill of another range is open: {start} .. {end} for `{query}` ({posts} posts read so far, checkpoint {location}); finish it with `flixops backfill {args}`, or start this one with --abandon (the tweets it stored stay)"
    )]
    OtherRangeOpen { start: String, end: String, query: String, posts: u64, location: String, args: String },
    /// A backfill checkpoint cannot be read.
    #[error("backfill checkpoint {location} is not valid: {message}; fix it, or delete it to start that range afresh")]
    BadState { location: String, message: String },
    /// Fetching, storing or the lease failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

impl BackfillError {
    /// True for arguments the user fixes on the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, BackfillError::BadRange { .. }) || matches!(self, BackfillError::Extract(e) if e.is_usage())
    }

    /// True when the cause is connectivity or credentials (exit code 3).
    pub fn is_connect(&self) -> bool {
        matches!(self, BackfillError::Extract(e) if e.is_connect())
    }

    /// True when X's usage cap refuses every request (exit code 4).
    pub fn is_capped(&self) -> bool {
        matches!(self, BackfillError::Extract(e) if e.is_capped())
    }
}

impl From<ApiError> for BackfillError {
    fn from(e: ApiError) -> Self {
        BackfillError::Extract(e.into())
    }
}

impl From<super::sink::SinkError> for BackfillError {
    fn from(e: super::sink::SinkError) -> Self {
        BackfillError::Extract(e.into())
    }
}

/// `[start, end)` in UTC, at second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Oldest time, inclusive.
    pub start: DateTime<Utc>,
    /// Newest time, exclusive.
    pub end: DateTime<Utc>,
}

impl Range {
    /// Resolves `--since` and `--until` against `now`.
    pub fn resolve(since: &str, until: Option<&str>, now: DateTime<Utc>) -> Result<Self, BackfillError> {
        let latest = now - chrono::Duration::seconds(END_MARGIN_SECS);
        let end = match until {
            Some(text) => time(text)
                .ok_or_else(|| bad("--until", text, "expected a date (2026-10-31) or a time (2026-10-31T12:00:00Z)"))?,
            None => latest,
        };
        let start = match duration(since) {
            Some(back) => now - back,
            None => time(since).ok_or_else(|| {
                bad(
                    "--since",
                    since,
                    "expected a date (2026-10-01), a time (RFC 3339) or a duration back from now (30d, 12h, 2w)",
                )
            })?,
        };
        let (start, end) = (seconds(start), seconds(end.min(latest)));
        let floor = DateTime::parse_from_rfc3339(ARCHIVE_START).expect("constant parses").with_timezone(&Utc);
        if start < floor {
            return Err(bad("--since", since, "full-archive search starts on 2006-03-21"));
        }
        if start >= end {
            let reason =
                format!("the range must start before it ends ({}); X's newest searchable time is 10 s ago", rfc(end));
            return Err(bad("--since", since, &reason));
        }
        Ok(Self { start, end })
    }

    /// The range's checkpoint key under `prefix`.
    pub fn key(&self, prefix: &str) -> String {
        let compact = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        format!("{prefix}/_state/backfill-{}-{}.json", compact(self.start), compact(self.end))
    }
}

fn bad(flag: &'static str, value: &str, reason: &str) -> BackfillError {
    BackfillError::BadRange { flag, value: value.to_string(), reason: reason.to_string() }
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

fn duration(text: &str) -> Option<chrono::Duration> {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        "w" => Some(chrono::Duration::weeks(n)),
        _ => None,
    }
}

fn seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whether a backfill still has posts to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    /// Started, not finished: `flixops backfill` with the same range resumes it.
    Open,
    /// Every page of the range is stored.
    Complete,
    /// Closed by `--abandon` before it finished.
    Abandoned,
}

/// A backfill's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The query its rows carry.
    pub query: String,
    /// `--since` as typed: the same words resume the same range on a later day.
    pub since: String,
    /// `--until` as typed.
    #[serde(default)]
    pub until: Option<String>,
    /// The range, RFC 3339 UTC.
    pub start_time: String,
    /// The range's end (exclusive), RFC 3339 UTC.
    pub end_time: String,
    /// Open, complete or abandoned.
    pub progress: Progress,
    /// Posts the counts endpoint quoted for the range.
    pub quoted_posts: u64,
    /// The oldest tweet stored so far: the rest of the range lies below it.
    #[serde(default)]
    pub until_id: Option<String>,
    /// Posts read (billed) over every run of this backfill.
    pub posts: u64,
    /// Tweets stored.
    pub tweets: u64,
    /// Pages stored.
    pub pages: u32,
    /// Posts this backfill read in the current UTC month, for `extract.max_posts_per_month`.
    #[serde(default)]
    pub month: MonthUsage,
    /// The run that wrote this state last.
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

impl State {
    /// A new backfill of `range`, as `request` typed it.
    fn fresh(query: &str, request: &Request, range: &Range) -> Self {
        Self {
            query: query.to_string(),
            since: request.since.clone(),
            until: request.until.clone(),
            start_time: rfc(range.start),
            end_time: rfc(range.end),
            progress: Progress::Open,
            quoted_posts: 0,
            until_id: None,
            posts: 0,
            tweets: 0,
            pages: 0,
            month: MonthUsage::default(),
            last_run: None,
        }
    }

    /// True when `request` asks for this backfill again: the same words, or the same range.
    fn resumed_by(&self, request: &Request, range: &Range) -> bool {
        (self.since == request.since && self.until == request.until) || self.covers(range)
    }

    /// True when this backfill is of exactly `range`.
    fn covers(&self, range: &Range) -> bool {
        (rfc(range.start), rfc(range.end)) == (self.start_time.clone(), self.end_time.clone())
    }

    /// `--since … [--until …]` as typed: the arguments that resume this backfill.
    pub fn range_args(&self) -> String {
        let until = self.until.as_ref().map(|u| format!(" --until {u}")).unwrap_or_default();
        format!("--since {}{until}", self.since)
    }
}

/// An open backfill as `doctor` shows it.
#[derive(Debug, Clone)]
pub struct Open {
    /// Where its checkpoint is.
    pub location: String,
    /// Its checkpoint.
    pub state: State,
}

/// Every backfill checkpoint under `prefix` that is still open.
pub async fn open_backfills(sink: &Sink, prefix: &str) -> Result<Vec<Open>, BackfillError> {
    Ok(states(sink, prefix)
        .await?
        .into_iter()
        .filter(|(_, s, _)| s.progress == Progress::Open)
        .map(|(key, state, _)| Open { location: format!("{}/{key}", sink.location()), state })
        .collect())
}

/// Every backfill checkpoint under `prefix`: key, state, version.
async fn states(sink: &Sink, prefix: &str) -> Result<Vec<(String, State, String)>, BackfillError> {
    let mut found = Vec::new();
    for (key, _) in sink.list(&format!("{prefix}/_state/backfill-")).await? {
        if !key.ends_with(".json") {
            continue;
        }
        let Some(stored) = sink.get(&key).await? else { continue };
        let state = serde_json::from_slice(&stored.body).map_err(|e| BackfillError::BadState {
            location: format!("{}/{key}", sink.location()),
            message: e.to_string(),
        })?;
        found.push((key, state, stored.version));
    }
    Ok(found)
}

/// What the range costs, before anything is bought.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// The query.
    pub query: String,
    /// The range's start, RFC 3339 UTC.
    pub start_time: String,
    /// The range's end (exclusive), RFC 3339 UTC.
    pub end_time: String,
    /// Posts per day from the counts endpoint.
    pub days: Vec<DayCount>,
    /// Their sum: the posts the range holds.
    pub total_posts: u64,
    /// `extract.price_per_post_usd`.
    pub price_per_post_usd: f64,
    /// total × price.
    pub total_usd: f64,
    /// Posts an open backfill of this range already read (a resume buys the rest).
    pub already_read: u64,
    /// Posts still to buy, and their price.
    pub remaining_posts: u64,
    /// remaining × price.
    pub remaining_usd: f64,
    /// Posts read this UTC month (recent search and backfills).
    pub month_posts: u64,
    /// `extract.max_posts_per_month`.
    pub max_posts_per_month: Option<u64>,
    /// What the monthly cap leaves this month (None: no cap).
    pub month_left: Option<u64>,
    /// `--max-posts`.
    pub max_posts: Option<u64>,
    /// The checkpoint this backfill keeps.
    pub checkpoint: String,
}

/// The settings a backfill run uses.
#[derive(Debug, Clone)]
pub struct Job {
    /// Stored in every row's `query` column.
    pub query: String,
    /// Key prefix, as for `extract`.
    pub prefix: String,
    /// Wall-clock budget (`extract.time_budget_secs`).
    pub time_budget: Duration,
    /// `--max-posts`.
    pub max_posts: Option<u64>,
    /// `extract.max_posts_per_month`, shared with recent search.
    pub max_posts_per_month: Option<u64>,
    /// `extract.price_per_post_usd`.
    pub price_per_post_usd: f64,
}

impl Job {
    /// The job for `extract` settings under `prefix`.
    pub fn new(extract: &ExtractConfig, prefix: &str, max_posts: Option<u64>) -> Self {
        Self {
            query: extract.query.clone(),
            prefix: prefix.to_string(),
            time_budget: Duration::from_secs(extract.time_budget_secs),
            max_posts,
            max_posts_per_month: extract.max_posts_per_month,
            price_per_post_usd: extract.price_per_post_usd,
        }
    }
}

/// A quoted backfill, ready to run.
pub struct Prepared {
    /// What it costs.
    pub quote: Quote,
    job: Job,
    client: XClient,
    sink: Sink,
    key: String,
    state: State,
    version: Option<String>,
    /// Other months' and other sources' posts this month (recent search, other backfills).
    month_others: u64,
    abandon: Vec<(String, State, String)>,
}

/// What `backfill` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillReport {
    /// The quote it ran on.
    pub quote: Quote,
    /// This run, in `extract`'s terms (None: the range was complete already, nothing was bought).
    pub run: Option<Report>,
    /// `open` (resume with the same command) or `complete`.
    pub progress: Progress,
    /// Posts read over every run of this backfill.
    pub posts_total: u64,
    /// Ranges closed by `--abandon`.
    pub abandoned: Vec<String>,
}

/// Quotes `request`: reads the backfill checkpoints (refusing another open range unless
/// `--abandon`), this month's posts, and the counts per day. Buys nothing and writes nothing.
pub async fn prepare(job: Job, request: &Request, client: XClient, sink: Sink) -> Result<Prepared, BackfillError> {
    let now = Utc::now();
    let range = Range::resolve(&request.since, request.until.as_deref(), now)?;
    let all = states(&sink, &job.prefix).await?;
    let (open, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, s, _)| s.progress == Progress::Open);
    let (mine, foreign): (Vec<_>, Vec<_>) =
        open.into_iter().partition(|(_, s, _)| s.query == job.query && s.resumed_by(request, &range));
    if let Some((key, other, _)) = foreign.first().filter(|_| !request.abandon) {
        let location = format!("{}/{key}", sink.location());
        return Err(BackfillError::OtherRangeOpen {
            start: other.start_time.clone(),
            end: other.end_time.clone(),
            query: other.query.clone(),
            posts: other.posts,
            location,
            args: other.range_args(),
        });
    }
    let month = now.format("%Y-%m").to_string();
    let (key, mut state, version) = pick(&job, request, &range, mine, &others);
    let backfills: u64 =
        others.iter().chain(&foreign).filter(|(k, _, _)| *k != key).map(|(_, s, _)| s.month.of(&month).posts).sum();
    let month_others = recent_month_posts(&sink, &job.prefix, &month).await? + backfills;
    let deadline = Instant::now() + job.time_budget;
    let days = client.counts(&state.start_time, &state.end_time, deadline).await?;
    let quote = quote(&job, &state, days, month_others + state.month.of(&month).posts, &sink, &key);
    state.quoted_posts = quote.total_posts;
    let abandon = if request.abandon { foreign } else { Vec::new() };
    Ok(Prepared { quote, job, client, sink, key, state, version, month_others, abandon })
}

/// A stored backfill checkpoint: key, state, version.
type Found = (String, State, String);

/// The backfill this request runs: the open one it resumes, else a complete one of the same
/// range (which buys nothing), else a fresh one (over an older checkpoint of that key, keeping
/// its month's posts).
fn pick(
    job: &Job,
    request: &Request,
    range: &Range,
    mine: Vec<Found>,
    others: &[Found],
) -> (String, State, Option<String>) {
    if let Some((key, state, version)) = mine.into_iter().next() {
        return (key, state, Some(version));
    }
    let complete = |s: &State| s.progress == Progress::Complete && s.query == job.query && s.covers(range);
    if let Some((key, state, version)) = others.iter().find(|(_, s, _)| complete(s)) {
        return (key.clone(), state.clone(), Some(version.clone()));
    }
    let key = range.key(&job.prefix);
    let mut state = State::fresh(&job.query, request, range);
    let old = others.iter().find(|(k, _, _)| *k == key);
    if let Some((_, old, _)) = old {
        state.month = old.month.clone();
    }
    (key, state, old.map(|(_, _, version)| version.clone()))
}

/// Posts recent search read in `month` (its checkpoint's count).
async fn recent_month_posts(sink: &Sink, prefix: &str, month: &str) -> Result<u64, BackfillError> {
    let state = checkpoint::read(sink, &checkpoint::key(prefix)).await?;
    Ok(state.map_or(0, |(state, _)| state.month.of(month).posts))
}

fn quote(job: &Job, state: &State, days: Vec<DayCount>, month_posts: u64, sink: &Sink, key: &str) -> Quote {
    let total_posts: u64 = days.iter().map(|d| d.tweet_count).sum();
    let price = job.price_per_post_usd;
    let remaining_posts = total_posts.saturating_sub(state.posts);
    Quote {
        query: job.query.clone(),
        start_time: state.start_time.clone(),
        end_time: state.end_time.clone(),
        days,
        total_posts,
        price_per_post_usd: price,
        total_usd: total_posts as f64 * price,
        already_read: state.posts,
        remaining_posts,
        remaining_usd: remaining_posts as f64 * price,
        month_posts,
        max_posts_per_month: job.max_posts_per_month,
        month_left: job.max_posts_per_month.map(|cap| cap.saturating_sub(month_posts)),
        max_posts: job.max_posts,
        checkpoint: format!("{}/{key}", sink.location()),
    }
}

impl Prepared {
    /// Buys the range: takes the run lease, closes what `--abandon` closes, then pages through
    /// the rest of the range, storing each page and saving progress after it.
    pub async fn run(mut self) -> Result<BackfillReport, BackfillError> {
        if self.state.progress == Progress::Complete {
            let (posts_total, abandoned) = (self.state.posts, Vec::new());
            return Ok(BackfillReport {
                quote: self.quote,
                run: None,
                progress: Progress::Complete,
                posts_total,
                abandoned,
            });
        }
        let started = Utc::now();
        let run_id = format!("{}-bf{:06x}", started.format("%Y%m%dT%H%M%SZ"), fastrand::u32(..0x100_0000));
        let mut report = Report::new(&run_id, self.sink.location());
        let held = lease::acquire(&self.sink, &self.job.prefix, &run_id, self.job.time_budget + LEASE_MARGIN).await?;
        let outcome = self.run_held(&run_id, started, &mut report).await;
        lease::release(&self.sink, held).await;
        let abandoned = outcome?;
        Ok(BackfillReport {
            quote: self.quote,
            run: Some(report),
            progress: self.state.progress,
            posts_total: self.state.posts,
            abandoned,
        })
    }

    async fn run_held(
        &mut self,
        run_id: &str,
        started: DateTime<Utc>,
        report: &mut Report,
    ) -> Result<Vec<String>, BackfillError> {
        let mut abandoned = Vec::new();
        for (key, mut state, version) in std::mem::take(&mut self.abandon) {
            abandoned.push(format!("{}/{key}", self.sink.location()));
            if key == self.key {
                // The same range under another query: this backfill's state replaces it.
                self.version = Some(version);
                continue;
            }
            state.progress = Progress::Abandoned;
            let body = serde_json::to_vec_pretty(&state).expect("state serializes");
            self.sink.put_if(&key, body, Some(&version)).await.map_err(ExtractError::from)?;
        }
        let cx = Arc::new(RunContext {
            query: self.job.query.clone(),
            prefix: self.job.prefix.clone(),
            run_id: run_id.to_string(),
            date: started.format("%Y-%m-%d").to_string(),
            month: started.format("%Y-%m").to_string(),
            extracted_at: started.timestamp_micros(),
        });
        self.state.month = self.state.month.of(&cx.month);
        let outcome = self.pages(&cx, report).await;
        if let Err(e) = &outcome {
            report.partial = Some(format!("stopped by an error: {e}"));
        }
        report.status = if report.partial.is_some() { Status::Partial } else { Status::Complete };
        report.month_posts = Some(self.month_posts());
        self.state.last_run = Some(LastRun {
            run_id: run_id.to_string(),
            finished_at: Utc::now().to_rfc3339(),
            pages: report.pages,
            tweets: report.tweets,
            posts: report.posts,
            partial: report.partial.clone(),
        });
        let saved = self.save().await;
        match (outcome, saved) {
            (Err(e), _) => Err(super::interrupted(e, report, RESUME).into()),
            (Ok(()), Err(e)) => Err(e.into()),
            (Ok(()), Ok(())) => Ok(abandoned),
        }
    }

    /// Pages from the top of what is left (below `until_id`) down to the range's start.
    async fn pages(&mut self, cx: &RunContext, report: &mut Report) -> Result<(), ExtractError> {
        let deadline = Instant::now() + self.job.time_budget;
        let left = self.posts_left(report);
        // One page size for the whole run: a cursor belongs to the request it came from.
        let size = left.map_or(MAX_PAGE, |left| MAX_PAGE.min(left.min(u64::from(MAX_PAGE)) as u32).max(10));
        let mut request = ArchiveRequest {
            start_time: self.state.start_time.clone(),
            end_time: self.state.end_time.clone(),
            until_id: self.state.until_id.clone(),
            next_token: None,
            max_results: size,
        };
        let mut cursors = std::collections::HashSet::new();
        let (mut last_request, mut slowest, mut number) = (None::<Instant>, Duration::ZERO, 0);
        loop {
            if let Some(stop) = self.stop_before_page(report, size, deadline, slowest) {
                report.partial = Some(stop);
                return Ok(());
            }
            if let Some(wait) = last_request.map(|t: Instant| PACE.saturating_sub(t.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            let began = Instant::now();
            last_request = Some(began);
            let body = match self.client.archive_page(&request, deadline).await {
                Ok(body) => body,
                Err(e) => {
                    report.partial = Some(stopped(e)?);
                    return Ok(());
                }
            };
            number += 1;
            let (origin, next_token) = self.store(cx, &body, number, report).await?;
            slowest = slowest.max(began.elapsed());
            let Some(token) = next_token else {
                self.state.progress = Progress::Complete;
                return Ok(());
            };
            self.save().await?;
            if !cursors.insert(token.clone()) {
                return Err(ExtractError::CursorRepeated { origin, token });
            }
            request.next_token = Some(token);
        }
    }

    /// Stores one page (and its rejects) and records it in the state; returns the page's origin
    /// and its cursor to the next page.
    async fn store(
        &mut self,
        cx: &RunContext,
        body: &[u8],
        number: u32,
        report: &mut Report,
    ) -> Result<(String, Option<String>), ExtractError> {
        let encoded = encode_page(cx, body, format!("backfill page {number}"), number)?;
        if let (Some(top), Some(until)) = (encoded.newest_in_data, self.state.until_id.as_deref()) {
            if until.parse::<u64>().is_ok_and(|until| top >= until) {
                let origin = encoded.origin;
                return Err(ExtractError::NotOlder { origin, newest: top, until_id: until.to_string() });
            }
        }
        let (origin, next_token, oldest, posts) =
            (encoded.origin.clone(), encoded.next_token.clone(), encoded.oldest, encoded.posts);
        let written = write(encoded, &self.sink).await?;
        let (pages_before, tweets_before) = (report.pages, report.tweets);
        account(written, report);
        report.posts += posts;
        self.state.posts += posts;
        self.state.month.posts += posts;
        self.state.pages += report.pages - pages_before;
        self.state.tweets += report.tweets - tweets_before;
        if let Some(oldest) = oldest {
            self.state.until_id = Some(oldest.to_string());
        }
        Ok((origin, next_token))
    }

    fn month_posts(&self) -> u64 {
        self.month_others + self.state.month.posts
    }

    /// Posts this run may still read under `--max-posts` and the monthly cap (None: no cap).
    fn posts_left(&self, report: &Report) -> Option<u64> {
        let run = self.job.max_posts.map(|cap| cap.saturating_sub(report.posts));
        let month = self.job.max_posts_per_month.map(|cap| cap.saturating_sub(self.month_posts()));
        run.into_iter().chain(month).min()
    }

    /// A reason not to request another page: `--max-posts`, the monthly cap, or too little time.
    fn stop_before_page(&self, report: &Report, size: u32, deadline: Instant, slowest: Duration) -> Option<String> {
        let page = u64::from(size);
        if let Some(cap) = self.job.max_posts.filter(|cap| report.posts + page > *cap) {
            return Some(format!("--max-posts {cap} reached: {} posts read", report.posts));
        }
        if let Some(cap) = self.job.max_posts_per_month.filter(|cap| self.month_posts() + page > *cap) {
            return Some(Stop::MonthCap { cap, read: self.month_posts() }.to_string());
        }
        (Instant::now() + slowest + PACE >= deadline).then(|| Stop::TimeBudget.to_string())
    }

    async fn save(&mut self) -> Result<(), ExtractError> {
        let body = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        let version = self.sink.put_if(&self.key, body, self.version.as_deref()).await.map_err(|e| match e {
            super::sink::SinkError::Conflict(what) => ExtractError::CheckpointMoved { location: what },
            other => other.into(),
        })?;
        self.version = Some(version);
        Ok(())
    }
}

/// A rate limit past the budget, or the budget itself, ends a run as a partial (the reason);
/// anything else is an error.
fn stopped(e: ApiError) -> Result<String, ExtractError> {
    match e {
        ApiError::RateLimited { reset } => Ok(Stop::RateLimited(reset).to_string()),
        ApiError::OutOfTime => Ok(Stop::TimeBudget.to_string()),
        e => Err(e.into()),
    }
}

/// What a failed backfill's message says about resuming.
const RESUME: &str =
    "the backfill checkpoint records them, so `flixops backfill` with the same range resumes after them";

impl crate::output::Render for Quote {
    fn write_human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(w, "backfill `{}` from {} to {}", self.query, self.start_time, self.end_time)?;
        let busy: Vec<_> = self.days.iter().filter(|d| d.tweet_count > 0).collect();
        for day in busy.iter().take(31) {
            writeln!(w, "  {}  {:>9} posts", day.start.get(..10).unwrap_or(&day.start), day.tweet_count)?;
        }
        if busy.len() > 31 {
            writeln!(w, "  … {} more day(s) with posts", busy.len() - 31)?;
        }
        let price = self.price_per_post_usd;
        writeln!(w, "total: {} posts ≈ ${:.2} at ${price} per post", self.total_posts, self.total_usd)?;
        if self.already_read > 0 {
            let (read, left, usd) = (self.already_read, self.remaining_posts, self.remaining_usd);
            writeln!(w, "resuming: {read} posts already read; about {left} left ≈ ${usd:.2}")?;
        }
        match (self.max_posts_per_month, self.month_left) {
            (Some(cap), Some(left)) => writeln!(
                w,
                "monthly cap: {} of max_posts_per_month = {cap} read this month, {left} left; the backfill stops (resumably) at the cap",
                self.month_posts
            )?,
            _ => writeln!(w, "monthly cap: none set ({} posts read this month)", self.month_posts)?,
        }
        if let Some(max) = self.max_posts {
            writeln!(w, "--max-posts {max}: this run stops (resumably) before reading more")?;
        }
        writeln!(w, "checkpoint: {}", self.checkpoint)
    }
}

impl crate::output::Render for BackfillReport {
    fn write_human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Some(run) = &self.run else {
            return writeln!(
                w,
                "this range was backfilled completely already ({} posts): nothing bought; to fetch it again, delete {}",
                self.posts_total, self.quote.checkpoint
            );
        };
        run.write_human(w)?;
        for key in &self.abandoned {
            writeln!(w, "  abandoned the open backfill {key}")?;
        }
        match self.progress {
            Progress::Complete => writeln!(w, "backfill complete: {} posts read for the range", self.posts_total),
            _ => writeln!(
                w,
                "backfill open: {} of about {} posts read; run the same command to resume",
                self.posts_total, self.quote.total_posts
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges_read_dates_times_and_durations_and_name_the_flag_when_wrong() {
        let now = at("2026-11-29T12:00:00Z");
        let r = Range::resolve("2026-10-01", Some("2026-11-01"), now).unwrap();
        assert_eq!((rfc(r.start), rfc(r.end)), ("2026-10-01T00:00:00Z".into(), "2026-11-01T00:00:00Z".into()));
        assert_eq!(r.key("p"), "p/_state/backfill-20261001T000000Z-20261101T000000Z.json");
        let r = Range::resolve("30d", None, now).unwrap();
        assert_eq!((rfc(r.start), rfc(r.end)), ("2026-10-30T12:00:00Z".into(), "2026-11-29T11:59:30Z".into()));
        let e = Range::resolve("yesterday", None, now).unwrap_err().to_string();
        assert!(e.starts_with("--since `yesterday`: expected a date"), "{e}");
        let e = Range::resolve("2026-11-01", Some("2026-10-01"), now).unwrap_err().to_string();
        assert!(e.contains("must start before it ends"), "{e}");
        let e = Range::resolve("2001-01-01", None, now).unwrap_err().to_string();
        assert!(e.contains("starts on 2006-03-21"), "{e}");
        assert!(Range::resolve("2026-11-01", Some("soon"), now).unwrap_err().to_string().starts_with("--until `soon`"));
    }
}
