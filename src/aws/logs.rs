//! The extract function's CloudWatch Logs, read for `flixops logs` and for doctor's `function
//! errors`: the events of its log group, optionally only the lines of a failed run, printed the way
//! `sam logs` prints them.

use aws_sdk_cloudwatchlogs::Client;
use serde::Serialize;

/// What a failed run leaves in a Lambda log: our own `ERROR` lines, and what the Lambda service
/// writes when the function times out or the process dies.
pub const ERROR_TERMS: [&str; 3] = ["ERROR", "Task timed out", "Runtime exited"];

/// The CloudWatch filter pattern for any of [`ERROR_TERMS`]: `?ERROR ?"Task timed out" …`.
pub fn error_pattern() -> String {
    let term = |t: &str| if t.contains(' ') { format!("?\"{t}\"") } else { format!("?{t}") };
    ERROR_TERMS.iter().map(|t| term(t)).collect::<Vec<_>>().join(" ")
}

/// True for a log line the error pattern selects.
pub fn is_error_line(message: &str) -> bool {
    ERROR_TERMS.iter().any(|term| message.contains(term))
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Milliseconds since the epoch, as CloudWatch stamps it.
    pub timestamp: i64,
    /// The log stream (one per execution environment of the function).
    pub log_stream: String,
    /// The line, as the function wrote it.
    pub message: String,
    /// CloudWatch's id of the event (unique in the group).
    #[serde(skip)]
    pub id: String,
}

impl LogEvent {
    /// `{stream} {time} {message}`: the line `sam logs` prints (time in UTC, ISO 8601, microseconds
    /// unless zero, as Python's `isoformat()` writes it).
    pub fn sam_line(&self) -> String {
        let time = chrono::DateTime::from_timestamp_millis(self.timestamp).unwrap_or_default().naive_utc();
        let time = match self.timestamp.rem_euclid(1000) {
            0 => time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            _ => time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        };
        format!("{} {time} {}", self.log_stream, self.message.trim_end_matches('\n'))
    }
}

/// Reading a log group failed.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The group does not exist (`deploy` creates it, before the function).
    #[error("no log group {0} (flixops deploy creates it, with its retention)")]
    NoGroup(String),
    /// CloudWatch Logs refused or could not be reached.
    #[error("CloudWatch Logs, log group {group}: {message}")]
    Service { group: String, message: String, connect: bool },
}

impl LogsError {
    /// True when CloudWatch Logs could not be reached or refused the credentials.
    pub fn is_connect(&self) -> bool {
        matches!(self, LogsError::Service { connect: true, .. })
    }
}

/// What a read found.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// The events, oldest first.
    pub events: Vec<LogEvent>,
    /// True when `max_pages` stopped the read before the end.
    pub truncated: bool,
}

/// The group's events from `start_ms` on (all streams, interleaved by time), those matching
/// `pattern` when given; at most `max_pages` pages of FilterLogEvents (each up to 10,000 events or
/// 1 MB).
pub async fn events(
    client: &Client,
    group: &str,
    start_ms: i64,
    pattern: Option<&str>,
    max_pages: usize,
) -> Result<Events, LogsError> {
    let mut pages = client
        .filter_log_events()
        .log_group_name(group)
        .start_time(start_ms)
        .set_filter_pattern(pattern.map(str::to_string))
        .into_paginator()
        .send();
    let mut found = Events::default();
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| match e.as_service_error() {
            Some(s) if s.is_resource_not_found_exception() => LogsError::NoGroup(group.to_string()),
            _ => LogsError::Service {
                group: group.to_string(),
                message: super::error_message(&e),
                connect: super::is_connect_error(&e),
            },
        })?;
        found.events.extend(page.events.unwrap_or_default().into_iter().map(|e| LogEvent {
            timestamp: e.timestamp.unwrap_or_default(),
            log_stream: e.log_stream_name.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            id: e.event_id.unwrap_or_default(),
        }));
        read += 1;
        if read == max_pages {
            found.truncated = true;
            break;
        }
    }
    found.events.sort_by_key(|e| e.timestamp);
    Ok(found)
}

/// Pages one read of `flixops logs` takes at most; `--follow` reads the rest on its next poll.
const TAIL_PAGES: usize = 10;

/// Reads a group from where the last read stopped, for `flixops logs [--follow]`: each event once.
#[derive(Debug)]
pub struct Tail {
    client: Client,
    group: String,
    pattern: Option<String>,
    next_ms: i64,
    seen: std::collections::HashSet<String>,
}

impl Tail {
    /// The events of `group` from `since_ms` on; with `errors`, only the lines of failed runs.
    pub fn new(client: Client, group: String, since_ms: i64, errors: bool) -> Self {
        let pattern = errors.then(error_pattern);
        Self { client, group, pattern, next_ms: since_ms, seen: Default::default() }
    }

    /// The log group read.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The events written since the last call.
    pub async fn next(&mut self) -> Result<Vec<LogEvent>, LogsError> {
        let found = events(&self.client, &self.group, self.next_ms, self.pattern.as_deref(), TAIL_PAGES).await?;
        let fresh: Vec<LogEvent> = found.events.into_iter().filter(|e| !self.seen.contains(&e.id)).collect();
        if let Some(last) = fresh.last().map(|e| e.timestamp) {
            if last > self.next_ms {
                self.seen.clear();
                self.next_ms = last;
            }
            self.seen.extend(fresh.iter().filter(|e| e.timestamp == last).map(|e| e.id.clone()));
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_ours_and_the_lambda_services() {
        assert_eq!(error_pattern(), r#"?ERROR ?"Task timed out" ?"Runtime exited""#);
        assert!(is_error_line("ERROR extraction failed: X API 401 Unauthorized"));
        assert!(is_error_line("2024-03-01T12:00:00Z abc Task timed out after 300.00 seconds"));
        assert!(is_error_line("RequestId: abc Error: Runtime exited with error: exit status 1"));
        assert!(!is_error_line(" INFO extraction finished run_id=1 pages=3 tweets=250"));
        assert!(!is_error_line("REPORT RequestId: abc Duration: 812.04 ms"));
    }

    #[test]
    fn a_line_reads_as_sam_logs_prints_it() {
        let event = |timestamp, message: &str| LogEvent {
            timestamp,
            log_stream: "2024/03/01/[$LATEST]abc".into(),
            message: message.into(),
            id: String::new(),
        };
        assert_eq!(
            event(1_709_294_400_123, "START RequestId: 1\n").sam_line(),
            "2024/03/01/[$LATEST]abc 2024-03-01T12:00:00.123000 START RequestId: 1"
        );
        assert_eq!(event(1_709_294_400_000, "x").sam_line(), "2024/03/01/[$LATEST]abc 2024-03-01T12:00:00 x");
    }
}
