//! Where a command's output goes. Its result goes to stdout: one JSON document with `--output
//! json`, or the human form of results that other tools read (a plan, as `terraform plan` prints
//! it; compiled SQL). Reports about what was done, progress and logs go to stderr. `--quiet` keeps
//! stdout and errors only.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// A command's result as readable lines; `--output json` serializes the same value instead. Each
/// report renders itself beside its type, so `main` stays a dispatch table.
pub trait Render {
    /// Writes the human form (to the stream [`Render::is_result`] picks).
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()>;

    /// True when the human form is the command's result, printed on stdout (a plan, SQL) so
    /// `flixops plan > plan.txt` keeps it; else it is a report on stderr.
    fn is_result(&self) -> bool {
        false
    }
}

/// The `--output` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Readable lines (results on stdout, reports on stderr).
    Human,
    /// One JSON document on stdout.
    Json,
}

/// Where and how a command reports.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The chosen format.
    pub format: Format,
    /// `--quiet`: no report on stderr (results on stdout and errors still print).
    pub quiet: bool,
}

impl Output {
    /// Reports `value`: as JSON on stdout, or via `human` on stdout (`is_result`) or stderr.
    pub fn emit<T: Serialize>(
        &self,
        value: &T,
        is_result: bool,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, value)?;
                writeln!(out)
            }
            Format::Human if is_result => {
                let mut out = std::io::stdout().lock();
                human(&mut out)?;
                out.flush()
            }
            Format::Human if self.quiet => Ok(()),
            Format::Human => human(&mut std::io::stderr().lock()),
        }
    }

    /// Reports a value that renders itself.
    pub fn emit_report<T: Serialize + Render>(&self, value: &T) -> std::io::Result<()> {
        self.emit(value, value.is_result(), |w| value.write_human(w))
    }
}

/// Whether to colour what goes to a stream, as <https://no-color.org> and
/// <https://bixense.com/clicolors/> say: `NO_COLOR` (not empty) turns colour off, then
/// `CLICOLOR_FORCE` (not empty, not `0`) turns it on even off a terminal, then `CLICOLOR=0` turns
/// it off; otherwise colour only on a terminal. `var` reads the environment.
pub fn use_color(var: &dyn Fn(&str) -> Option<String>, is_terminal: bool) -> bool {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if set("CLICOLOR").is_some_and(|v| v == "0") {
        return false;
    }
    is_terminal
}

/// [`use_color`] for stderr, from the process environment.
pub fn stderr_color() -> bool {
    use_color(&|k| std::env::var(k).ok(), std::io::stderr().is_terminal())
}

/// [`use_color`] for stdout, from the process environment.
pub fn stdout_color() -> bool {
    use_color(&|k| std::env::var(k).ok(), std::io::stdout().is_terminal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_then_force_then_the_terminal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(use_color(&env(&[]), true) && !use_color(&env(&[]), false));
        assert!(!use_color(&env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]), true), "NO_COLOR wins");
        assert!(use_color(&env(&[("NO_COLOR", "")]), true), "an empty NO_COLOR is unset");
        assert!(use_color(&env(&[("CLICOLOR_FORCE", "1")]), false), "forced off a terminal");
        assert!(!use_color(&env(&[("CLICOLOR_FORCE", "0")]), false));
        assert!(!use_color(&env(&[("CLICOLOR", "0")]), true));
    }
}
