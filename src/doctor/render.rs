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
            // An error's own message may already end with the way out: say it once.
            if let Some(fix) = check.fix.as_ref().filter(|fix| !check.detail.contains(fix.as_str())) {
                writeln!(w, "    fix: {fix}")?;
            }
        }
        let t = &self.totals;
        writeln!(w, "\n{} ok, {} warning(s), {} failure(s)", t.ok, t.warn, t.fail)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Check, Report, Status, Totals};
    use crate::output::Render;

    #[test]
    fn a_fix_the_detail_already_says_is_printed_once() {
        let checks = vec![
            Check::new("pipe", Status::Fail, "pipe is gone; run flixops deploy", Some("flixops deploy")),
            Check::new("load", Status::Warn, "2 files pending", Some("flixops transform")),
        ];
        let report = Report { env: "dev".into(), totals: Totals::of(&checks), checks, canary: None };
        let mut text = Vec::new();
        report.write_human(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.matches("flixops deploy").count(), 1, "{text}");
        assert!(text.contains("    fix: flixops transform"), "{text}");
        assert!(text.ends_with("0 ok, 1 warning(s), 1 failure(s)\n"), "{text}");
    }
}
