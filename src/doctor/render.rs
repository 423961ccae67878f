//! The doctor report as people read it: a mark per check, its fix, then the totals.

use std::io::Write;

use super::{Report, Status};

impl crate::output::Render for Report {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        for check in &self.checks {
            let mark = match check.status {
                Status::Ok => "[✓]",
                Status::Warn => "[!]",
                Status::Fail => "[✗]",
            };
            writeln!(w, "{mark} {:<36} {}", check.name, check.detail)?;
            if let Some(fix) = &check.fix {
                writeln!(w, "    fix: {fix}")?;
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        writeln!(w, "\n{} ok, {} warning(s), {} failure(s)", count(Status::Ok), count(Status::Warn), count(Status::Fail))
    }
}
