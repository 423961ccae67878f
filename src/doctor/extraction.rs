//! The extractor's own state, the same on both targets (read through the sink that holds it): when
//! it last ran and whether a window is open, this month's posts and spend against the cap, and
//! tweets rejected in the last 24 hours.

use std::time::Duration;

use super::{Check, SEARCH_WINDOW_DAYS, Status};
use crate::config::{ExtractConfig, Secret};
use crate::extract::api::{Usage, XClient};
use crate::extract::backfill;
use crate::extract::checkpoint::{self, Checkpoint, LastRun};
use crate::extract::sink::Sink;

/// Month-to-date posts past this share of `max_posts_per_month` are a warning.
const CAP_WARN_SHARE: f64 = 0.8;

/// What to tell the user per target.
pub struct Hints {
    /// How to start a run (`flixops run`, or the schedule).
    pub run: &'static str,
    /// The verdict for a checkpoint older than the search window.
    pub stale: Status,
    /// True when the lake already holds pages (a demo run or a replay): with no API run yet, that
    /// is a working pipeline fed from recordings, not a missing extraction.
    pub replayed: bool,
}

/// The checkpoint, spend, rejects and backfill checks, each under `limit`; `token` (when there is
/// one) lets the spend check set X's own count beside ours (X not answering leaves it out).
pub async fn checks(
    extract: &ExtractConfig,
    sink: &Sink,
    prefix: &str,
    hints: &Hints,
    token: Option<Secret>,
    limit: Duration,
) -> Vec<Check> {
    let key = checkpoint::key(prefix);
    let state = match tokio::time::timeout(limit, checkpoint::read(sink, &key)).await {
        Ok(Ok(found)) => found.map(|(state, _)| state),
        Ok(Err(e)) => return vec![Check::new("checkpoint", Status::Fail, e.to_string(), None)],
        Err(_) => return vec![Check::new("checkpoint", Status::Fail, no_answer(limit), None)],
    };
    let usage = async {
        match token {
            Some(token) => Some(match tokio::time::timeout(limit, x_usage(extract, token)).await {
                Ok(usage) => usage,
                Err(_) => Err(no_answer(limit)),
            }),
            None => None,
        }
    };
    let (usage, rejects, backfill) = tokio::join!(
        usage,
        super::timed(limit, "rejects", rejects(sink, prefix)),
        super::timed(limit, "backfill", backfill(sink, prefix))
    );
    vec![last_run_check(state.as_ref(), hints), spend(extract, state.as_ref(), usage), rejects, backfill]
}

fn no_answer(limit: Duration) -> String {
    format!("no answer within {} s", limit.as_secs())
}

/// The checkpoint's last run, for the freshness check (None when there is none or it cannot be read:
/// the checkpoint check reports why).
pub async fn last_run(sink: Sink, prefix: String) -> Option<LastRun> {
    let state = checkpoint::read(&sink, &checkpoint::key(&prefix)).await.ok().flatten();
    state.and_then(|(state, _)| state.last_run)
}

/// An open backfill and its progress: posts read against the quote, and the command that resumes it.
async fn backfill(sink: &Sink, prefix: &str) -> Check {
    let open = match backfill::open_backfills(sink, prefix).await {
        Ok(open) => open,
        Err(e) => return Check::new("backfill", Status::Fail, e.to_string(), None),
    };
    let Some(first) = open.first() else {
        return Check::new("backfill", Status::Ok, "no backfill open", None);
    };
    let s = &first.state;
    let share = match s.quoted_posts {
        0 => String::new(),
        quoted => format!(" ({:.0}%)", (s.posts as f64 / quoted as f64 * 100.0).min(100.0)),
    };
    let mut detail = format!(
        "open backfill {} .. {}: {} of about {} posts read{share}, {} tweets stored",
        s.start_time, s.end_time, s.posts, s.quoted_posts, s.tweets
    );
    let run = s.last_run.as_ref();
    if let Some(reason) = run.and_then(|r| r.partial.as_ref()) {
        detail.push_str(&format!("; last run stopped: {reason}"));
    }
    let failed = run.and_then(|r| r.partial.as_ref()).is_some_and(|r| r.starts_with("stopped by an error"));
    let status = if failed { Status::Warn } else { Status::Ok };
    let fix = format!("resume with `flixops backfill {}`", s.range_args());
    Check::new("backfill", status, detail, Some(&fix))
}

fn last_run_check(state: Option<&Checkpoint>, hints: &Hints) -> Check {
    let run = state.and_then(|s| s.last_run.as_ref());
    let Some(run) = run else {
        if hints.replayed {
            let detail = "no X API run yet: the lake holds recorded pages (run --demo or --replay); the checkpoint starts with the first API run";
            return Check::new("checkpoint", Status::Ok, detail, None);
        }
        return Check::new("checkpoint", Status::Warn, "no extraction has finished yet", Some(hints.run));
    };
    let Some(finished) = chrono::DateTime::parse_from_rfc3339(&run.finished_at).ok() else {
        let detail = format!("last_run.finished_at `{}` is not a time", run.finished_at);
        return Check::new("checkpoint", Status::Fail, detail, None);
    };
    let age = chrono::Utc::now().signed_duration_since(finished);
    if age.num_days() >= SEARCH_WINDOW_DAYS {
        let detail =
            format!("last run {} days ago: tweets older than the 7-day search window are lost", age.num_days());
        return Check::new(
            "checkpoint",
            hints.stale,
            detail,
            Some("run extractions at least weekly (check the schedule)"),
        );
    }
    let mut detail = format!("last run {} h ago: {} tweets", age.num_hours(), run.tweets);
    let status = match &run.partial {
        Some(reason) if reason.starts_with("stopped by an error") => Status::Warn,
        _ => Status::Ok,
    };
    if let (Some(reason), Some(window)) = (&run.partial, state.and_then(|s| s.window.as_ref())) {
        detail.push_str(&format!("; partial ({reason}), the next run resumes below tweet {}", window.until_id));
    }
    let fix = (status == Status::Warn).then_some(hints.run);
    Check::new("checkpoint", status, detail, fix)
}

/// X's count for the project, from its usage endpoint.
async fn x_usage(extract: &ExtractConfig, token: Secret) -> Result<Usage, String> {
    let client = XClient::new(extract, token).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    client.usage(deadline).await.map_err(|e| e.to_string())
}

fn spend(extract: &ExtractConfig, state: Option<&Checkpoint>, x_count: Option<Result<Usage, String>>) -> Check {
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = state.map(|s| s.month.of(&month)).unwrap_or_default();
    let posts = usage.posts;
    let (post, user) = (extract.price_per_post_usd, extract.price_per_user_usd);
    let included = usage.included;
    let billed =
        if extract.includes_billed { included.posts as f64 * post + included.users as f64 * user } else { 0.0 };
    let usd = posts as f64 * post + billed;
    let mut detail = format!("{posts} posts read in {month}, ≈ ${usd:.2} at ${post} per post");
    if included.posts + included.users > 0 {
        let counted =
            if extract.includes_billed { "counted as billed" } else { "not counted (extract.includes_billed = false)" };
        detail.push_str(&format!(
            " (+ {} included posts and {} included users, {counted})",
            included.posts, included.users
        ));
    }
    match &x_count {
        Some(Ok(x)) => {
            detail.push_str(&format!("; X counts {} for the whole project this billing cycle", x.project_usage))
        }
        Some(Err(e)) => detail.push_str(&format!("; X's own count unavailable ({e})")),
        None => detail.push_str("; X's own count not checked (no token here)"),
    }
    if let Some(Ok(Usage { project_usage, project_cap: Some(cap), .. })) = &x_count {
        if *project_usage as f64 >= CAP_WARN_SHARE * *cap as f64 {
            detail.push_str(&format!(": {project_usage} of X's cap of {cap} posts"));
            let fix = "X refuses every request at its cap (exit 4): narrow extract.query, or ask X for a higher cap";
            return Check::new("x spend", Status::Warn, detail, Some(fix));
        }
    }
    let Some(cap) = extract.max_posts_per_month else {
        return Check::new("x spend", Status::Ok, detail + " (no monthly cap)", None);
    };
    let share = posts as f64 / cap as f64;
    detail.push_str(&format!("; {:.0}% of max_posts_per_month = {cap}", share * 100.0));
    if share < CAP_WARN_SHARE {
        return Check::new("x spend", Status::Ok, detail, None);
    }
    if posts >= cap {
        detail.push_str(": runs stop at the cap until next month (nothing is lost: the window stays open)");
    }
    let fix = "raise extract.max_posts_per_month in flixops.toml (and deploy), or narrow extract.query";
    Check::new("x spend", Status::Warn, detail, Some(fix))
}

/// Rejects files written in the last 24 hours (today's and yesterday's partitions).
async fn rejects(sink: &Sink, prefix: &str) -> Check {
    let now = chrono::Utc::now();
    let since = (now - chrono::Duration::hours(24)).timestamp();
    let mut recent = Vec::new();
    for day in [now - chrono::Duration::days(1), now] {
        let partition = format!("{prefix}/_rejects/dt={}/", day.format("%Y-%m-%d"));
        match sink.list(&partition).await {
            Ok(keys) => recent.extend(keys.into_iter().filter(|(_, modified)| *modified >= since)),
            Err(e) => return Check::new("rejects", Status::Fail, e.to_string(), None),
        }
    }
    let Some((newest, _)) = recent.iter().max_by_key(|(_, modified)| *modified) else {
        return Check::new("rejects", Status::Ok, "no tweet rejected in the last 24 h", None);
    };
    let detail = format!(
        "{} page(s) had tweets the data contract cannot hold in the last 24 h, e.g. {}/{newest}",
        recent.len(),
        sink.location()
    );
    let fix = "each line of those .jsonl files gives the reason and the tweet; a missing field usually means extract.tweet_fields lacks it";
    Check::new("rejects", Status::Warn, detail, Some(fix))
}
