//! The local target's run history, what CloudWatch Logs is to the function: one JSON line per
//! `flixops run`, `extract` and `transform` in `runs.jsonl` beside the warehouse, appended when the
//! command ends, read by `flixops logs`. Plain files, no DuckDB: the cloud-only build reads it too.

use std::io::{BufRead, Seek, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::{EnvConfig, LocalTarget, Target};

/// The history exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the run history {path}: {source}", path = .path.display())]
pub struct HistoryError {
    /// The history file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// One command's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it ended (RFC 3339, UTC).
    pub finished_at: String,
    /// `run`, `extract` or `transform`.
    pub command: String,
    /// `ok`, `partial` (stopped early, resumes next run) or `error`.
    pub status: String,
    /// What it did, or the error.
    pub summary: String,
    /// The extraction's run id, when it extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl RunRecord {
    /// A record of a run ending now.
    pub fn now(command: &str, status: &str, summary: String, run_id: Option<String>) -> Self {
        let finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self { finished_at, command: command.to_string(), status: status.to_string(), summary, run_id }
    }

    /// `{time} {command} {status} {summary}`.
    pub fn line(&self) -> String {
        let run = self.run_id.as_deref().map(|r| format!(" run_id={r}")).unwrap_or_default();
        format!("{} {:<9} {:<7} {}{run}", self.finished_at, self.command, self.status, self.summary)
    }

    /// True for a run that failed.
    pub fn is_error(&self) -> bool {
        self.status == "error"
    }

    fn finished(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.finished_at).ok().map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// Where the history is kept: beside the warehouse.
pub fn path(target: &LocalTarget) -> PathBuf {
    target.warehouse.with_file_name("runs.jsonl")
}

/// Appends a run. The history is a record, not the work: a failure to write it is logged, never
/// the command's failure.
pub fn record(target: &LocalTarget, run: &RunRecord) {
    let file = path(target);
    let written = file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| {
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&file)?;
        writeln!(out, "{}", serde_json::to_string(run).expect("a run record serializes"))
    });
    if let Err(e) = written {
        tracing::warn!("could not add this run to {}: {e}", file.display());
    }
}

/// Adds a local command's outcome to the run history (`flixops logs`); the cloud has CloudWatch.
/// `describe` gives a success's status (`ok` or `partial`), summary and run id.
pub fn remember<T>(
    env: &EnvConfig,
    command: &str,
    result: &Result<T, Error>,
    describe: impl Fn(&T) -> (&'static str, String, Option<String>),
) {
    let Target::Local(local) = &env.target else { return };
    let run = match result {
        Ok(done) => {
            let (status, summary, run_id) = describe(done);
            RunRecord::now(command, status, summary, run_id)
        }
        Err(e) => RunRecord::now(command, "error", e.to_string(), None),
    };
    record(local, &run);
}

/// Reads the history from where the last read stopped: `--follow` sees each run once.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    since: chrono::DateTime<chrono::Utc>,
    errors: bool,
}

impl Tail {
    /// The runs that ended after `since` (only the failed ones with `errors`).
    pub fn new(target: &LocalTarget, since: chrono::DateTime<chrono::Utc>, errors: bool) -> Self {
        Self { path: path(target), offset: 0, since, errors }
    }

    /// Where the history is read from, for messages.
    pub fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// The runs added since the last call (none while the file does not exist yet).
    pub fn next(&mut self) -> Result<Vec<RunRecord>, HistoryError> {
        self.read().map_err(|source| HistoryError { path: self.path.clone(), source })
    }

    fn read(&mut self) -> std::io::Result<Vec<RunRecord>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut reader = std::io::BufReader::new(file);
        let mut runs = Vec::new();
        let mut line = String::new();
        // A line still being written (no newline yet) is read on the next call.
        while reader.read_line(&mut line)? > 0 && line.ends_with('\n') {
            self.offset += line.len() as u64;
            if let Ok(run) = serde_json::from_str::<RunRecord>(line.trim_end()) {
                let recent = run.finished().is_some_and(|t| t >= self.since);
                if recent && (!self.errors || run.is_error()) {
                    runs.push(run);
                }
            }
            line.clear();
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_reads_each_run_once_and_filters_by_time_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let target =
            LocalTarget { lake_dir: dir.path().join("lake"), warehouse: dir.path().join(".flixops/warehouse.duckdb") };
        let old = RunRecord {
            finished_at: "2020-01-01T00:00:00.000Z".into(),
            ..RunRecord::now("run", "ok", "old".into(), None)
        };
        record(&target, &old);
        record(&target, &RunRecord::now("run", "ok", "1 page".into(), Some("r1".into())));
        record(&target, &RunRecord::now("extract", "error", "X API 401".into(), None));
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        let mut all = Tail::new(&target, since, false);
        let first: Vec<String> = all.next().unwrap().iter().map(|r| r.summary.clone()).collect();
        assert_eq!(first, ["1 page", "X API 401"]);
        assert!(all.next().unwrap().is_empty(), "each run once");
        record(&target, &RunRecord::now("transform", "ok", "6 models".into(), None));
        assert_eq!(all.next().unwrap().len(), 1);
        let errors = Tail::new(&target, since, true).next().unwrap();
        assert_eq!(errors.iter().map(|r| r.command.as_str()).collect::<Vec<_>>(), ["extract"]);
        assert!(errors[0].line().contains(" extract   error   X API 401"), "{}", errors[0].line());
    }
}
