//! Raw freshness, told apart by the extractor's last run: old data after a run that found nothing
//! new is a quiet query, not a broken pipeline; old data when the extractor did not run is the
//! schedule or the function; old data after a run that stored tweets is the loading.

use super::{Check, Status, age_status};
use crate::config::Freshness;
use crate::extract::checkpoint::LastRun;

/// A run's files are given this long to reach the raw table before the loading counts as broken.
const LOAD_GRACE_MINUTES: i64 = 15;

/// What to tell the user per target.
pub struct Hints {
    /// How to start a run (`flixops run`, or the schedule).
    pub run: &'static str,
    /// Where to look when files do not load.
    pub loading: &'static str,
}

/// The `raw freshness` verdict at `now` against the environment's thresholds: `newest` is the raw
/// table's newest load, in minutes ago (None: empty), `last_run` the checkpoint's.
pub fn verdict(
    newest: Option<i64>,
    last_run: Option<&LastRun>,
    now: chrono::DateTime<chrono::Utc>,
    limits: &Freshness,
    hints: &Hints,
) -> Check {
    let name = "raw freshness";
    let run_age = last_run.and_then(|run| minutes_since(&run.finished_at, now));
    let loaded = match newest {
        Some(minutes) => format!("newest row loaded {} h ago", minutes / 60),
        None => "the raw table is empty".to_string(),
    };
    if newest.is_some_and(|m| m < limits.warn_after_minutes) {
        return Check::new(name, Status::Ok, loaded, None);
    }
    let (Some(run), Some(run_age)) = (last_run, run_age) else {
        let status = newest.map_or(Status::Warn, |m| age_status(limits, m));
        let detail = format!("{loaded}; the extractor has not finished a run yet (did not run)");
        return Check::new(name, status, detail, Some(hints.run));
    };
    let ran = format!("the last run finished {} ago", ago(run_age));
    if run_age >= limits.warn_after_minutes {
        let detail = format!("{loaded}; did not run: {ran}");
        let status = worse(age_status(limits, newest.unwrap_or(run_age)), Status::Warn);
        return Check::new(name, status, detail, Some(hints.run));
    }
    if run.tweets == 0 {
        let detail = format!("{loaded}; ran, nothing new: {ran} and found no new tweet for the query");
        return Check::new(name, Status::Ok, detail, None);
    }
    if run_age < LOAD_GRACE_MINUTES {
        return Check::new(name, Status::Ok, format!("{loaded}; {ran} ({} tweets)", run.tweets), None);
    }
    let detail = format!("{loaded}, but {ran} and stored {} tweets: its files did not load", run.tweets);
    Check::new(name, Status::Fail, detail, Some(hints.loading))
}

fn minutes_since(rfc3339: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((now - at.with_timezone(&chrono::Utc)).num_minutes().max(0))
}

fn ago(minutes: i64) -> String {
    match minutes {
        m if m < 120 => format!("{m} min"),
        m => format!("{} h", m / 60),
    }
}

/// The worse of two verdicts.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(finished_minutes_ago: i64, tweets: u64, now: chrono::DateTime<chrono::Utc>) -> LastRun {
        LastRun {
            run_id: "r".into(),
            finished_at: (now - chrono::Duration::minutes(finished_minutes_ago)).to_rfc3339(),
            pages: 1,
            tweets,
            posts: tweets,
            partial: None,
        }
    }

    #[test]
    fn old_data_says_whether_the_extractor_ran_found_nothing_or_did_not_load() {
        let now = chrono::Utc::now();
        let hints = Hints { run: "run it", loading: "see the pipe" };
        let check = |newest: Option<i64>, last: Option<LastRun>| {
            let c = verdict(newest, last.as_ref(), now, &Freshness::default(), &hints);
            (c.status, c.detail, c.fix.unwrap_or_default())
        };
        assert_eq!(check(Some(30), None).0, Status::Ok, "fresh data needs no run to explain it");
        let quiet = check(Some(30 * 60), Some(run(10, 0, now)));
        assert_eq!(quiet.0, Status::Ok, "{quiet:?}");
        assert!(quiet.1.contains("ran, nothing new: the last run finished 10 min ago"), "{quiet:?}");
        let idle = check(Some(30 * 60), Some(run(26 * 60, 40, now)));
        assert_eq!((idle.0, idle.2.as_str()), (Status::Fail, "run it"), "{idle:?}");
        assert!(idle.1.contains("did not run: the last run finished 26 h ago"), "{idle:?}");
        let idle_a_while = check(Some(5 * 60), Some(run(5 * 60, 40, now)));
        assert_eq!(idle_a_while.0, Status::Warn, "{idle_a_while:?}");
        let not_loading = check(Some(30 * 60), Some(run(40, 12, now)));
        assert_eq!((not_loading.0, not_loading.2.as_str()), (Status::Fail, "see the pipe"), "{not_loading:?}");
        assert!(not_loading.1.contains("stored 12 tweets: its files did not load"), "{not_loading:?}");
        assert_eq!(check(Some(30 * 60), Some(run(3, 12, now))).0, Status::Ok, "its files are on their way");
        let never = check(None, None);
        assert_eq!(never.0, Status::Warn);
        assert!(never.1.contains("has not finished a run yet (did not run)"), "{never:?}");
    }
}
