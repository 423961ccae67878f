//! `{prefix}/_state/extract.json`: where the next run starts. Recent search pages go newest first,
//! so a run that stops part way (a page cap, a spend cap, the time budget, a crash) leaves an open
//! window: its floor, how far down it got and the newest id it saw. The next run finishes that
//! window first (`since_id` = floor, `until_id` = how far down), and only a finished window moves
//! `since_id`, so it never moves past a tweet that is not stored. Every write is compare-and-swap
//! on the version this run holds.

use serde::{Deserialize, Serialize};

use super::ExtractError;
use super::sink::{Sink, SinkError};

/// The stored state. Files written before windows existed (no `window`, no `month`) read as a
/// closed window at their `since_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every tweet up to this id is stored; a new window asks only for newer ones.
    pub since_id: Option<String>,
    /// The query `since_id` belongs to: a changed query starts afresh.
    pub query: String,
    /// A window a run started and did not finish; the next run finishes it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Posts read in the current UTC month, for `extract.max_posts_per_month`.
    #[serde(default)]
    pub month: MonthUsage,
    /// The run that wrote this state last (None before any run: a state `deploy` seeded).
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

/// An open window: tweets newer than `floor` and older than `until_id` are still to be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The window's `since_id` (None: the start of the 7-day search window).
    pub floor: Option<String>,
    /// The oldest tweet id stored so far in this window; the rest lies below it.
    pub until_id: String,
    /// The newest id seen in this window: `since_id` once the window is finished.
    pub newest_id: String,
}

/// Posts read in one UTC month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthUsage {
    /// `YYYY-MM`.
    pub month: String,
    /// Posts read (billed) in that month.
    pub posts: u64,
    /// Runs that read them, for the spend estimate (posts per run).
    pub runs: u64,
    /// What the expansions returned beside them (`includes`), which X may bill too.
    #[serde(default)]
    pub included: Included,
}

/// Resources an expansion returned in `includes`: X bills "per resource returned", and its docs
/// do not say whether these count; flixops counts them so the estimate can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Included {
    /// `includes.users` (authors, mentioned and referenced users).
    pub users: u64,
    /// `includes.tweets` (the originals of retweets, quotes and replies).
    pub posts: u64,
}

impl std::ops::AddAssign for Included {
    fn add_assign(&mut self, other: Self) {
        self.users += other.users;
        self.posts += other.posts;
    }
}

impl MonthUsage {
    /// The usage of `month`: this one, or zero when the stored one is another month.
    pub fn of(&self, month: &str) -> MonthUsage {
        match self.month == month {
            true => self.clone(),
            false => MonthUsage { month: month.to_string(), ..MonthUsage::default() },
        }
    }
}

/// Facts about the run that wrote the checkpoint.
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
    /// Posts the run read (billed), rejects included.
    #[serde(default)]
    pub posts: u64,
    /// Why the run stopped before the end of its window (None: it finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

impl Checkpoint {
    /// An empty state for `query`: the first run fetches the whole 7-day window.
    pub fn empty(query: &str) -> Self {
        Self { query: query.to_string(), ..Self::default() }
    }

    /// The state a run with `query` starts from: this one, or a fresh one for a changed query
    /// (keeping the month's usage, which X bills whatever the query).
    pub fn for_query(&self, query: &str) -> Self {
        match self.query == query {
            true => self.clone(),
            false => Self { month: self.month.clone(), ..Self::empty(query) },
        }
    }
}

/// The checkpoint's key under a prefix.
pub fn key(prefix: &str) -> String {
    format!("{prefix}/_state/extract.json")
}

/// Reads the checkpoint and its version tag.
pub async fn read(sink: &Sink, key: &str) -> Result<Option<(Checkpoint, String)>, ExtractError> {
    let Some(stored) = sink.get(key).await? else { return Ok(None) };
    let checkpoint = parse(&stored.body)
        .map_err(|message| ExtractError::BadCheckpoint { location: format!("{}/{key}", sink.location()), message })?;
    Ok(Some((checkpoint, stored.version)))
}

/// Parses a stored checkpoint (also for `doctor` and `plan`, which read it without a sink).
pub fn parse(body: &[u8]) -> Result<Checkpoint, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Writes `next` over the version this run holds and returns the new version. A lost race is an
/// error: the lease keeps runs apart, so another writer means something is wrong.
pub async fn write(sink: &Sink, key: &str, next: &Checkpoint, held: Option<&str>) -> Result<String, ExtractError> {
    let body = serde_json::to_vec_pretty(next).expect("checkpoint serializes");
    sink.put_if(key, body, held).await.map_err(|e| match e {
        SinkError::Conflict(what) => ExtractError::CheckpointMoved { location: what },
        other => other.into(),
    })
}

/// Creates an empty checkpoint unless one exists (`If-None-Match: *`), so no run ever reads a
/// missing key (S3 answers that with 403 to a role that may not list the bucket). True when created.
pub async fn seed(sink: &Sink, prefix: &str, query: &str) -> Result<bool, ExtractError> {
    let body = serde_json::to_vec_pretty(&Checkpoint::empty(query)).expect("checkpoint serializes");
    match sink.put_if(&key(prefix), body, None).await {
        Ok(_) => Ok(true),
        Err(SinkError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_from_before_windows_reads_as_a_closed_window() {
        let old = br#"{"since_id":"1600000000000000000","query":"flixbus",
            "last_run":{"run_id":"r1","finished_at":"2026-11-20T10:00:00+00:00","pages":3,"tweets":250}}"#;
        let c = parse(old).unwrap();
        assert_eq!(c.since_id.as_deref(), Some("1600000000000000000"));
        assert_eq!(c.window, None);
        assert_eq!(c.last_run.unwrap().tweets, 250);
        assert_eq!(c.month, MonthUsage::default());
    }

    #[test]
    fn a_new_month_starts_from_zero_and_a_new_query_keeps_the_months_usage() {
        let c = Checkpoint {
            query: "a".into(),
            since_id: Some("5".into()),
            month: MonthUsage { month: "2026-10".into(), posts: 900, runs: 9, ..MonthUsage::default() },
            ..Checkpoint::default()
        };
        assert_eq!(c.month.of("2026-11"), MonthUsage { month: "2026-11".into(), ..MonthUsage::default() });
        assert_eq!(c.month.of("2026-10").posts, 900);
        let fresh = c.for_query("b");
        assert_eq!((fresh.since_id, fresh.month.posts), (None, 900));
    }
}
