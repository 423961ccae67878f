//! Human output on stderr, data on stdout: `--output json` prints one JSON document on stdout.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// A command's result as readable lines; `--output json` serializes the same value instead. Each
/// report renders itself beside its type, so `main` stays a dispatch table.
pub trait Render {
    /// Writes the human form (to stderr, by [`Output::emit_report`]).
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()>;
}

/// The `--output` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Readable lines on stderr.
    Human,
    /// One JSON document on stdout.
    Json,
}

/// Where and how a command reports.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The chosen format.
    pub format: Format,
}

impl Output {
    /// Reports `value`: as JSON on stdout, or via `human` on stderr.
    pub fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, value)?;
                writeln!(out)
            }
            Format::Human => human(&mut std::io::stderr().lock()),
        }
    }

    /// Reports a value that renders itself.
    pub fn emit_report<T: Serialize + Render>(&self, value: &T) -> std::io::Result<()> {
        self.emit(value, |w| value.write_human(w))
    }

    /// True when stderr is a terminal, the only place progress may be drawn.
    pub fn stderr_is_tty(&self) -> bool {
        self.format == Format::Human && std::io::stderr().is_terminal()
    }
}
