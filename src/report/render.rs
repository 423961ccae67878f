//! The report's human summary on stderr: where the page is and its headline numbers.

use std::io::Write;

use super::{Written, count, percent};
use crate::output::Render;

/// A few lines: the page's path, the period and its headline numbers (or that the marts are empty).
impl Render for Written {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let r = &self.report;
        writeln!(w, "report     wrote {}", self.path.display())?;
        let Some(period) = &r.period else {
            return writeln!(w, "  the marts of {} hold no tweet yet: the page says so", r.source);
        };
        let t = &r.totals;
        writeln!(
            w,
            "  {} to {} ({} days): {} tweets ({} retweets), {} authors, {} hashtag uses",
            period.first_day,
            period.last_day,
            r.days,
            count(t.tweets),
            percent(t.retweet_share),
            count(t.users),
            count(t.hashtag_uses)
        )?;
        if let (Some(day), Some(hour)) = (&r.busiest_weekday, &r.busiest_hour) {
            writeln!(w, "  busiest: {} and {} UTC", day.label, hour.label)?;
        }
        let tags: Vec<String> =
            r.top_hashtags.iter().take(5).map(|h| format!("#{} {}", h.hashtag, count(h.tweets))).collect();
        if !tags.is_empty() {
            writeln!(w, "  top hashtags: {}", tags.join(", "))?;
        }
        Ok(())
    }
}
