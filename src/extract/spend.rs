//! What the extractor costs at X's pay-per-use prices: the monthly estimate `plan` prints (runs a
//! month from the schedule × the posts a run reads), and this month's usage `doctor` checks.

use serde::Serialize;

use super::checkpoint::Checkpoint;
use crate::config::ExtractConfig;

/// The monthly X spend as `plan` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Runs a month the schedule makes (None: an expression this cannot count, like `at(…)`).
    pub runs_per_month: Option<f64>,
    /// Posts a run read on average this month (None: no run yet).
    pub posts_per_run: Option<f64>,
    /// Posts and users a run's expansions returned on average (`includes`), when counted as billed.
    pub included_per_run: Option<(f64, f64)>,
    /// `extract.price_per_post_usd`.
    pub price_per_post_usd: f64,
    /// `extract.price_per_user_usd`.
    pub price_per_user_usd: f64,
    /// runs × posts × price, capped by `max_posts_per_month` (None: unknown).
    pub monthly_usd: Option<f64>,
    /// `extract.max_posts_per_month`.
    pub max_posts_per_month: Option<u64>,
}

impl Estimate {
    /// The estimate from the settings and the stored state (None: no run recorded yet).
    pub fn new(extract: &ExtractConfig, state: Option<&Checkpoint>) -> Self {
        let runs_per_month = runs_per_month(&extract.schedule);
        let usage = state.map(|s| &s.month).filter(|m| m.runs > 0);
        let posts_per_run = usage.map(|m| m.posts as f64 / m.runs as f64);
        let included_per_run = usage
            .filter(|_| extract.includes_billed)
            .map(|m| (m.included.posts as f64 / m.runs as f64, m.included.users as f64 / m.runs as f64));
        let (post, user) = (extract.price_per_post_usd, extract.price_per_user_usd);
        let per_run = posts_per_run.map(|posts| {
            let (inc_posts, users) = included_per_run.unwrap_or_default();
            (posts, (posts + inc_posts) * post + users * user)
        });
        let cap = extract.max_posts_per_month.map(|c| c as f64).unwrap_or(f64::INFINITY);
        let monthly_usd = match (runs_per_month, per_run) {
            // A capped month reads fewer posts, and their includes shrink with them.
            (Some(runs), Some((posts, usd))) => Some(runs * usd * (cap / (runs * posts)).min(1.0)),
            _ => None,
        };
        Self {
            runs_per_month,
            posts_per_run,
            included_per_run,
            price_per_post_usd: post,
            price_per_user_usd: user,
            monthly_usd,
            max_posts_per_month: extract.max_posts_per_month,
        }
    }

    /// One line: `≈ $12.00/month (720 runs × 3.3 posts at $0.005 per post)` or why it is unknown.
    pub fn line(&self) -> String {
        let price = self.price_per_post_usd;
        let cap = self.max_posts_per_month.map(|c| format!("; capped at {c} posts a month")).unwrap_or_default();
        let included = match self.included_per_run.filter(|(p, u)| *p > 0.0 || *u > 0.0) {
            Some((p, u)) => format!(
                ", + {p:.1} included posts at ${price} and {u:.1} included users at ${} a run, counted as billed",
                self.price_per_user_usd
            ),
            None => String::new(),
        };
        match (self.monthly_usd, self.runs_per_month, self.posts_per_run) {
            (Some(usd), Some(runs), Some(posts)) => {
                format!("≈ ${usd:.2}/month ({runs:.0} runs × {posts:.1} posts at ${price} per post{included}{cap})")
            }
            (_, None, _) => format!("unknown: the schedule's runs per month cannot be counted{cap}"),
            _ => {
                format!("unknown until the first run (then: runs per month × posts per run at ${price} per post{cap})")
            }
        }
    }
}

/// Runs a 30-day month of an EventBridge `rate(…)` or `cron(…)` expression (None: not a recurring
/// schedule, or a cron day field with `L`, `W` or `#`, which this does not count).
pub fn runs_per_month(expression: &str) -> Option<f64> {
    crate::config::schedule::Schedule::parse(expression).ok()?.runs_per_month()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_count_their_runs_in_a_thirty_day_month() {
        assert_eq!(runs_per_month("rate(1 hour)"), Some(720.0));
        assert_eq!(runs_per_month("rate(15 minutes)"), Some(2880.0));
        assert_eq!(runs_per_month("rate(2 days)"), Some(15.0));
        assert_eq!(runs_per_month("cron(0 6 * * ? *)"), Some(30.0));
        assert_eq!(runs_per_month("cron(0,30 8-17 ? * MON-FRI *)"), Some(20.0 * 30.0 * 5.0 / 7.0));
        assert_eq!(runs_per_month("cron(*/10 * * * ? *)"), Some(6.0 * 24.0 * 30.0));
        assert_eq!(runs_per_month("cron(0 6 L * ? *)"), None);
        assert_eq!(runs_per_month("at(2026-12-01T00:00:00)"), None);
    }
}
