//! The Snowpipe that loads every new parquet file of the stage into the raw table. A pipe's COPY
//! cannot be altered, so a changed COPY recreates it, and so does a change that stops it (a new
//! stage URL, a recreated stage or file format); the recreation follows Snowflake's "recreate a
//! pipe safely": pause, wait until the files queued before the pause have loaded, replace, refresh
//! with the files that arrived meanwhile, resume
//! (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-manage#label-snowpipe-manage-recreate-steps).
//! The refresh starts at the last successful load (COPY_HISTORY), so a paused or lagging pipe loses
//! nothing, and the new pipe carries a "refresh pending" comment until the refresh is done, so a
//! rerun after a crash redoes it.
//! Its execution state (SYSTEM$PIPE_STATUS) maps to the repair Snowflake documents for it. Its
//! notification channel (an SQS queue of Snowflake's) is the output the bucket notification needs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::client::{Row, SnowflakeError};
use super::ident::{Qualified, like, literal};
use super::integration::Stage;
use super::objects::{FileFormat, Table};
use super::{Client, res_err, run, show_one, text};
use crate::plan::{
    Action, Address, Change, FieldChange, Fields, Inputs, Observed, Outputs, Resource, ResourceError, diff_fields,
    field_map,
};

/// A paused auto-ingest pipe keeps its queued notifications this long; paused longer it is stale
/// and only `SYSTEM$PIPE_FORCE_RESUME(…, 'staleness_check_override')` resumes it
/// (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_force_resume).
pub const STALE_AFTER_DAYS: i64 = 14;

/// How long a replace waits for the files queued before the pause, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Give up (and leave the pipe running unchanged) after this long.
    pub timeout: Duration,
    /// Time between two SYSTEM$PIPE_STATUS reads.
    pub interval: Duration,
}

impl Default for Drain {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(300), interval: Duration::from_secs(5) }
    }
}

/// `CREATE PIPE … AUTO_INGEST = TRUE AS COPY INTO raw FROM @stage`.
pub struct Pipe {
    /// Session.
    pub client: Client,
    /// Its qualified name.
    pub name: Qualified,
    /// The raw table.
    pub table: Qualified,
    /// The stage.
    pub stage: Qualified,
    /// The file format.
    pub format: Qualified,
    /// The IAM role Snowflake reads the bucket through: its trust is set before the pipe is touched.
    pub trust_from: Address,
    /// How long a refresh waits for IAM to propagate a trust this deploy just changed.
    pub propagation: crate::aws::Propagation,
    /// The bounded wait of a replace.
    pub drain: Drain,
}

/// The parts of SYSTEM$PIPE_STATUS flixops acts on
/// (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipeStatus {
    /// `executionState` (`UNKNOWN` when absent).
    pub state: String,
    /// `pendingFileCount`: files queued for loading.
    pub pending: u64,
    /// `oldestFileTimestamp`: when the oldest queued file was queued.
    pub oldest_file: Option<DateTime<Utc>>,
    /// `lastIngestedTimestamp`: the last file loaded.
    pub last_ingested: Option<DateTime<Utc>>,
    /// `lastForwardedMessageTimestamp`: the last notification for this pipe's path.
    pub last_forwarded: Option<DateTime<Utc>>,
    /// `error`: why the pipe last failed to compile or run.
    pub error: Option<String>,
}

impl PipeStatus {
    /// Reads the JSON the function returns; missing fields stay empty.
    pub fn parse(json: &serde_json::Value) -> Self {
        let time = |key: &str| timestamp(&json[key]);
        Self {
            state: json["executionState"].as_str().unwrap_or("UNKNOWN").to_string(),
            pending: json["pendingFileCount"].as_u64().unwrap_or(0),
            oldest_file: time("oldestFileTimestamp"),
            last_ingested: time("lastIngestedTimestamp"),
            last_forwarded: time("lastForwardedMessageTimestamp"),
            error: json["error"].as_str().filter(|e| !e.is_empty()).map(str::to_string),
        }
    }
}

/// A status timestamp: RFC 3339 text, or milliseconds since the epoch.
fn timestamp(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        serde_json::Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// Reads SYSTEM$PIPE_STATUS of `pipe`.
pub async fn status(client: &Client, pipe: &Qualified) -> Result<PipeStatus, SnowflakeError> {
    let sql = format!("SELECT SYSTEM$PIPE_STATUS({}) AS STATUS", literal(&pipe.plain()));
    let rows = client.query(&sql).await?;
    let text = rows.first().and_then(|r| r.values().next()).and_then(|v| v.as_str()).unwrap_or("{}");
    Ok(PipeStatus::parse(&serde_json::from_str(text).unwrap_or_default()))
}

/// COPY_HISTORY's statuses of a file that did not load (completely); `Load in progress` and the
/// loaded ones are not failures (<https://docs.snowflake.com/en/sql-reference/functions/copy_history>).
const FAILED_LOADS: &str = "('LOAD FAILED', 'PARTIALLY LOADED')";

/// `START_TIME => …` of a table function: `hours` back from now.
fn hours_back(hours: i64) -> String {
    format!("DATEADD(HOURS, -{hours}, CURRENT_TIMESTAMP())")
}

/// A file the pipe could not load (completely), with where in it the first error was.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadFailure {
    /// The file, as COPY_HISTORY names it (its path in the bucket).
    pub file: String,
    /// `Load failed` or `Partially loaded`.
    pub status: String,
    /// The first error.
    pub error: String,
    /// The line (a parquet file: the row) of the first error, when Snowflake knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
    /// The character position of the first error in that line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub character: Option<i64>,
    /// The column of the first error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl LoadFailure {
    /// `file (Load failed at line 3, character 7, column X): error`.
    pub fn describe(&self) -> String {
        let mut place = Vec::new();
        if let Some(line) = self.line {
            place.push(format!("line {line}"));
        }
        if let Some(character) = self.character {
            place.push(format!("character {character}"));
        }
        if let Some(column) = &self.column {
            place.push(format!("column {column}"));
        }
        let place = if place.is_empty() { String::new() } else { format!(" at {}", place.join(", ")) };
        format!("{} ({}{place}): {}", self.file, self.status, self.error)
    }
}

fn number(row: &Row, column: &str) -> Option<i64> {
    text(row, column).parse::<f64>().ok().map(|n| n as i64)
}

fn some_text(row: &Row, column: &str) -> Option<String> {
    Some(text(row, column)).filter(|t| !t.is_empty())
}

/// The files the raw table failed to load in the last `hours`, newest first, from COPY_HISTORY
/// (<https://docs.snowflake.com/en/sql-reference/functions/copy_history>), each with the first
/// error's line, character and column. VALIDATE_PIPE_LOAD adds its detail where it has some; it
/// answers a user error for a pipe whose COPY transforms the data, as flixops's does
/// (<https://docs.snowflake.com/en/sql-reference/functions/validate_pipe_load>), and then the
/// COPY_HISTORY columns are the detail.
pub async fn failed_loads(
    client: &Client,
    table: &Qualified,
    pipe: &Qualified,
    hours: i64,
) -> Result<Vec<LoadFailure>, SnowflakeError> {
    let sql = format!(
        "SELECT FILE_NAME, STATUS, FIRST_ERROR_MESSAGE, FIRST_ERROR_LINE_NUMBER, FIRST_ERROR_CHARACTER_POS, \
         FIRST_ERROR_COLUMN_NAME FROM TABLE({}.INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => {}, START_TIME => {})) \
         WHERE UPPER(STATUS) IN {FAILED_LOADS} ORDER BY LAST_LOAD_TIME DESC",
        table.database,
        literal(&table.plain()),
        hours_back(hours)
    );
    let mut failures: Vec<LoadFailure> = client
        .query(&sql)
        .await?
        .iter()
        .map(|row| LoadFailure {
            file: text(row, "FILE_NAME"),
            status: text(row, "STATUS"),
            error: text(row, "FIRST_ERROR_MESSAGE"),
            line: number(row, "FIRST_ERROR_LINE_NUMBER"),
            character: number(row, "FIRST_ERROR_CHARACTER_POS"),
            column: some_text(row, "FIRST_ERROR_COLUMN_NAME"),
        })
        .collect();
    if failures.is_empty() {
        return Ok(failures);
    }
    for detail in validated(client, pipe, hours).await {
        let same = |f: &&mut LoadFailure| f.file.ends_with(&detail.file) || detail.file.ends_with(&f.file);
        if let Some(failure) = failures.iter_mut().find(same) {
            failure.error = detail.error;
            failure.line = detail.line.or(failure.line);
            failure.character = detail.character.or(failure.character);
            failure.column = detail.column.or(failure.column.take());
        }
    }
    Ok(failures)
}

/// VALIDATE_PIPE_LOAD's errors of the last `hours`; none when it refuses (a transforming COPY).
async fn validated(client: &Client, pipe: &Qualified, hours: i64) -> Vec<LoadFailure> {
    let sql = format!(
        "SELECT ERROR, FILE, LINE, CHARACTER, COLUMN_NAME FROM TABLE({}.INFORMATION_SCHEMA.VALIDATE_PIPE_LOAD(\
         PIPE_NAME => {}, START_TIME => {}))",
        pipe.database,
        literal(&pipe.plain()),
        hours_back(hours)
    );
    let Ok(rows) = client.query(&sql).await else { return Vec::new() };
    rows.iter()
        .map(|row| LoadFailure {
            file: text(row, "FILE"),
            status: String::new(),
            error: text(row, "ERROR"),
            line: number(row, "LINE"),
            character: number(row, "CHARACTER"),
            column: some_text(row, "COLUMN_NAME"),
        })
        .collect()
}

/// When the raw table last loaded a file, per COPY_HISTORY over the last `days`.
pub async fn last_load(client: &Client, table: &Qualified, days: i64) -> Result<Option<DateTime<Utc>>, SnowflakeError> {
    let sql = format!(
        "SELECT DATE_PART(EPOCH_SECOND, MAX(LAST_LOAD_TIME)) AS LAST_LOAD FROM TABLE({}.INFORMATION_SCHEMA.\
         COPY_HISTORY(TABLE_NAME => {}, START_TIME => DATEADD(DAYS, -{days}, CURRENT_TIMESTAMP()))) \
         WHERE STATUS = 'Loaded'",
        table.database,
        literal(&table.plain())
    );
    let rows = client.query(&sql).await?;
    let seconds = rows.first().map(|r| text(r, "LAST_LOAD")).and_then(|t| t.parse::<f64>().ok());
    Ok(seconds.and_then(|s| DateTime::from_timestamp(s as i64, 0)))
}

/// Minutes since the raw table's newest row loaded (`LOADED_AT`, the load's start-scan time); None
/// when it is empty.
pub async fn newest_load_age(client: &Client, table: &Qualified) -> Result<Option<i64>, SnowflakeError> {
    let sql = format!("SELECT DATEDIFF(MINUTE, MAX(LOADED_AT), CURRENT_TIMESTAMP()) AS AGE FROM {table}");
    let rows = client.query(&sql).await?;
    Ok(rows.first().and_then(|r| number(r, "AGE")))
}

/// Rows the raw table holds from `file` (its path in the bucket, as METADATA$FILENAME gives it),
/// loaded in the last `minutes`: the load time lets Snowflake prune all but the newest
/// micro-partitions, so following a file does not scan the table.
pub async fn rows_from(client: &Client, table: &Qualified, file: &str, minutes: i64) -> Result<u64, SnowflakeError> {
    let sql = format!(
        "SELECT COUNT(*) AS N FROM {table} WHERE LOADED_AT >= DATEADD(MINUTE, -{minutes}, CURRENT_TIMESTAMP()) \
         AND FILE_NAME = ?"
    );
    let rows = client.query_with(&sql, &[file]).await?;
    Ok(rows.first().and_then(|r| number(r, "N")).unwrap_or(0) as u64)
}

/// What `deploy` does about a pipe's execution state, after Snowflake's table of pipe execution
/// states (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-ts#label-snowpipe-ts-execution-states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Loading (RUNNING, or FAILING_OVER, which loads): nothing to do.
    None,
    /// PAUSED and loading until lately: `ALTER PIPE … SET PIPE_EXECUTION_PAUSED = FALSE`.
    Resume,
    /// PAUSED and nothing loaded for over 14 days (or ever), so possibly stale, which a plain resume
    /// does not resume: `SYSTEM$PIPE_FORCE_RESUME(…, 'staleness_check_override')`.
    ForceResume {
        /// Days since the last load, if it ever loaded.
        idle_days: Option<i64>,
    },
    /// Stopped by a change to what it uses (stage URL, stage, file format, notification
    /// integration, table, a clone): recreated the safe way.
    Replace,
    /// Not deploy's to change: an error to fix first, Snowflake Support, a read-only replica.
    Leave,
}

/// The repair for `state`; `last_ingested` and `now` tell a stale pause from a recent one.
pub fn repair(state: &str, last_ingested: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Repair {
    match state {
        "RUNNING" | "FAILING_OVER" => Repair::None,
        "PAUSED" => {
            let idle_days = last_ingested.map(|t| (now - t).num_days());
            if idle_days.is_some_and(|d| d < STALE_AFTER_DAYS) {
                Repair::Resume
            } else {
                Repair::ForceResume { idle_days }
            }
        }
        "STOPPED_STAGE_ALTERED"
        | "STOPPED_STAGE_DROPPED"
        | "STOPPED_FILE_FORMAT_DROPPED"
        | "STOPPED_NOTIFICATION_INTEGRATION_DROPPED"
        | "STOPPED_MISSING_TABLE"
        | "STOPPED_CLONED" => Repair::Replace,
        _ => Repair::Leave,
    }
}

impl Repair {
    /// Why, for the plan: which state, and which statement repairs it.
    pub fn reason(&self, state: &str) -> Option<String> {
        match self {
            Repair::None | Repair::Leave => None,
            Repair::Resume => Some(format!("{state}: resumed with ALTER PIPE … SET PIPE_EXECUTION_PAUSED = FALSE")),
            Repair::ForceResume { idle_days } => {
                let idle =
                    idle_days.map_or("no file loaded yet".to_string(), |d| format!("last file loaded {d} days ago"));
                Some(format!(
                    "{state}, {idle}: paused pipes go stale after {STALE_AFTER_DAYS} days, so it is resumed with \
                     SYSTEM$PIPE_FORCE_RESUME(…, 'staleness_check_override')"
                ))
            }
            Repair::Replace => Some(format!("{state}: Snowflake stopped the pipe; it must be recreated")),
        }
    }
}

/// What to do about `state` when `deploy` does not repair it (doctor's fix line).
pub fn advice(state: &str) -> &'static str {
    match (repair(state, None, Utc::now()), state) {
        (Repair::Resume | Repair::ForceResume { .. }, _) => "flixops deploy (resumes a paused pipe)",
        (Repair::Replace, _) => "flixops deploy (recreates the stopped pipe and refreshes it)",
        (_, "STALLED_STAGE_PERMISSION_ERROR") => {
            "flixops deploy (role trust and integration), then LIST the stage; the state clears once Snowflake reads it"
        }
        (_, s) if s.starts_with("STALLED_") && s != "STALLED_INTERNAL_ERROR" => {
            "fix the error above (objects of the COPY, privileges of the pipe's owner); the state clears by itself"
        }
        (_, "READ_ONLY") => "the pipe is in a secondary database: it loads once that database is promoted",
        _ => "contact Snowflake Support (Snowflake stopped the pipe)",
    }
}

/// A state in which the pipe can still load its queue, so a replace pauses and drains it first;
/// a stopped pipe skips both (the docs' "if the pipe already stopped, skip steps 1 and 2").
fn can_load(state: &str) -> bool {
    matches!(state, "RUNNING" | "PAUSED" | "FAILING_OVER")
}

/// True when no file queued before `paused_at` is still waiting.
fn drained(status: &PipeStatus, paused_at: DateTime<Utc>) -> bool {
    status.pending == 0 || status.oldest_file.is_some_and(|t| t > paused_at)
}

/// `ALTER PIPE … REFRESH MODIFIED_AFTER` reaches back at most 7 days
/// (https://docs.snowflake.com/en/sql-reference/sql/alter-pipe).
pub const REFRESH_MAX_DAYS: i64 = 7;

/// The comment a replaced pipe carries until its refresh is done, followed by the refresh's start.
const PENDING_REFRESH: &str = "flixops: replaced, refresh pending MODIFIED_AFTER ";

/// Where the refresh after a replace starts: the earliest of the pause, the last successful load,
/// the oldest queued file and an earlier unfinished refresh, five minutes early for clock skew
/// (a file loaded twice is de-duplicated downstream, a skipped one is lost); at most 7 days back.
fn refresh_since(paused_at: DateTime<Utc>, earlier: &[Option<DateTime<Utc>>], now: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = earlier.iter().flatten().copied().fold(paused_at, DateTime::min);
    (earliest - chrono::Duration::minutes(5)).max(now - chrono::Duration::days(REFRESH_MAX_DAYS))
}

/// The refresh start an unfinished replace left in the pipe's comment.
fn pending_refresh(comment: &str) -> Option<DateTime<Utc>> {
    let at = comment.strip_prefix(PENDING_REFRESH)?;
    DateTime::parse_from_rfc3339(at).ok().map(|t| t.with_timezone(&Utc))
}

/// `MODIFIED_AFTER`'s form in the docs: ISO 8601 with an explicit `+00:00` offset.
fn modified_after(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

impl Pipe {
    /// The graph address (the bucket notification reads `notification_channel` from it).
    pub fn address() -> Address {
        Address::new("snowflake_pipe", "tweets")
    }

    /// The COPY the pipe runs: each parquet row as one VARIANT, with its file, row and load time.
    pub fn copy_statement(&self) -> String {
        format!(
            "COPY INTO {table} (RECORD, FILE_NAME, FILE_ROW_NUMBER, FILE_LAST_MODIFIED, LOADED_AT) FROM (SELECT $1, \
             METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, METADATA$FILE_LAST_MODIFIED, METADATA$START_SCAN_TIME FROM \
             @{stage}) FILE_FORMAT = (FORMAT_NAME = {format})",
            table = self.table,
            stage = self.stage,
            format = literal(&self.format.plain()),
        )
    }

    fn create_statement(&self, verb: &str, comment: Option<&str>) -> String {
        let comment = comment.map(|c| format!(" COMMENT = {}", literal(c))).unwrap_or_default();
        format!("{verb} {} AUTO_INGEST = TRUE{comment} AS {}", self.name, self.copy_statement())
    }

    fn paused(&self, paused: bool) -> String {
        format!("ALTER PIPE {} SET PIPE_EXECUTION_PAUSED = {}", self.name, if paused { "TRUE" } else { "FALSE" })
    }

    async fn run(&self, sql: &str, op: &'static str) -> Result<(), ResourceError> {
        run(&self.client, sql, Self::address(), op).await
    }

    async fn status(&self) -> Result<PipeStatus, ResourceError> {
        status(&self.client, &self.name).await.map_err(res_err(Self::address(), "read status"))
    }

    /// Resumes a paused pipe, forcing it when it may be stale.
    async fn resume(&self, repair: &Repair) -> Result<(), ResourceError> {
        match repair {
            Repair::ForceResume { .. } => {
                let sql = format!(
                    "SELECT SYSTEM$PIPE_FORCE_RESUME({}, 'staleness_check_override')",
                    literal(&self.name.plain())
                );
                self.run(&sql, "force resume").await
            }
            _ => self.run(&self.paused(false), "resume").await,
        }
    }

    /// Steps 1 and 2 of the safe recreation: pause, and wait (bounded) until no file queued before
    /// the pause is waiting. A queue that does not drain while paused is drained running, then the
    /// pipe is paused again. Returns the time of the last pause.
    async fn pause_drained(&self, before: &PipeStatus) -> Result<DateTime<Utc>, ResourceError> {
        let deadline = tokio::time::Instant::now() + self.drain.timeout;
        let resume = repair(&before.state, before.last_ingested, Utc::now());
        loop {
            self.run(&self.paused(true), "pause").await?;
            let paused_at = Utc::now();
            if drained(&self.status().await?, paused_at) {
                return Ok(paused_at);
            }
            self.resume(&resume).await?;
            loop {
                tokio::time::sleep(self.drain.interval).await;
                let now = self.status().await?;
                if drained(&now, paused_at) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(self.still_queued(&now));
                }
            }
        }
    }

    fn still_queued(&self, status: &PipeStatus) -> ResourceError {
        ResourceError {
            address: Self::address(),
            op: "wait for queued files".into(),
            message: format!(
                "{} file(s) queued before the pause were still waiting after {} s (SYSTEM$PIPE_STATUS \
                 pendingFileCount); recreating the pipe now would drop them, so {} was left running unchanged: run \
                 `flixops deploy` again once loading has caught up",
                status.pending,
                self.drain.timeout.as_secs(),
                self.name
            ),
            kind: crate::plan::ErrorKind::Other,
        }
    }

    /// Recreates the pipe without losing a file: a loading pipe is paused and drained first, a
    /// stopped one is not; the new pipe, marked "refresh pending", is paused, refreshed with what
    /// arrived since the last successful load, unmarked and resumed. Files loaded before stay loaded
    /// once (the staging model de-duplicates the rest).
    async fn replace(&self, observed: &Observed) -> Result<(), ResourceError> {
        let before = self.status().await?;
        let paused_at = if can_load(&before.state) { self.pause_drained(&before).await? } else { Utc::now() };
        let earlier = [self.last_load().await?, before.oldest_file, Self::pending_of(observed)];
        let since = modified_after(refresh_since(paused_at, &earlier, Utc::now()));
        let comment = format!("{PENDING_REFRESH}{since}");
        self.run(&self.create_statement("CREATE OR REPLACE PIPE", Some(&comment)), "replace").await?;
        self.finish_replace(&since, &Repair::Resume).await
    }

    /// The end of a replace, also what a rerun does after one that stopped before it: pause,
    /// refresh, drop the "refresh pending" mark, resume.
    async fn finish_replace(&self, since: &str, resume: &Repair) -> Result<(), ResourceError> {
        self.run(&self.paused(true), "pause").await?;
        self.refresh(since).await?;
        self.run(&format!("ALTER PIPE {} UNSET COMMENT", self.name), "clear refresh pending").await?;
        self.resume(resume).await
    }

    /// When the raw table last loaded a file, per COPY_HISTORY over the 7 days a refresh reaches
    /// (https://docs.snowflake.com/en/sql-reference/functions/copy_history).
    async fn last_load(&self) -> Result<Option<DateTime<Utc>>, ResourceError> {
        let read = last_load(&self.client, &self.table, REFRESH_MAX_DAYS).await;
        read.map_err(res_err(Self::address(), "read copy history"))
    }

    /// The refresh an unfinished replace left pending, as read.
    fn pending_of(observed: &Observed) -> Option<DateTime<Utc>> {
        observed.fields.get("refresh_pending").and_then(|at| DateTime::parse_from_rfc3339(at).ok()).map(|t| t.to_utc())
    }

    /// `REFRESH` reads the bucket through the role: the first use of a trust this deploy may have
    /// just changed, so it is retried while Snowflake cannot assume the role yet.
    async fn refresh(&self, since: &str) -> Result<(), ResourceError> {
        let sql = format!("ALTER PIPE {} REFRESH MODIFIED_AFTER = {}", self.name, literal(since));
        let refresh = || self.client.execute(&sql);
        let propagating = |e: &super::SnowflakeError| role_not_yet_assumable(&e.to_string());
        self.propagation.retry(refresh, propagating).await.map_err(res_err(Self::address(), "refresh"))
    }

    async fn observed(&self) -> Result<Option<Observed>, ResourceError> {
        let sql = format!("SHOW PIPES LIKE {} IN SCHEMA {}", like(&self.name.name), self.name.schema_path());
        let row = show_one(&self.client, &sql, &self.name.name).await.map_err(res_err(Self::address(), "read"))?;
        let Some(row) = row else { return Ok(None) };
        let status = self.status().await?;
        let pending = pending_refresh(&text(&row, "comment")).map(modified_after).unwrap_or_default();
        let fields = field_map([
            ("copy", normalize(&text(&row, "definition"))),
            ("refresh_pending", pending),
            ("auto_ingest", if text(&row, "notification_channel").is_empty() { "false" } else { "true" }.into()),
            ("execution_state", status.state),
            ("last_ingested", status.last_ingested.map(|t| t.to_rfc3339()).unwrap_or_default()),
        ]);
        let outputs = [("notification_channel".to_string(), text(&row, "notification_channel"))];
        Ok(Some(Observed { fields, outputs: outputs.into() }))
    }

    /// The repair of the observed execution state.
    fn repair_of(observed: &Observed) -> (String, Repair) {
        let state = observed.fields.get("execution_state").cloned().unwrap_or_default();
        let last = observed.fields.get("last_ingested").and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let repair = repair(&state, last.map(|t| t.with_timezone(&Utc)), Utc::now());
        (state, repair)
    }

    /// Why the plan refreshes a pipe whose replace stopped before its refresh.
    fn unfinished(since: DateTime<Utc>, state: &str) -> String {
        format!(
            "an earlier replace stopped before its refresh ({state}): refreshed with MODIFIED_AFTER = {} and resumed",
            modified_after(since)
        )
    }

    /// A change this run makes upstream that stops the pipe, so it must be recreated after it.
    fn stopped_by(inputs: &Inputs) -> Option<String> {
        let stage = inputs.change(&Stage::address());
        let format = inputs.change(&FileFormat::address());
        if stage.is_some_and(|c| matches!(c.action, Action::Create | Action::Replace)) {
            return Some("the stage is recreated, which stops the pipe (STOPPED_STAGE_DROPPED)".into());
        }
        if stage.is_some_and(|c| c.touches("url")) {
            return Some("the stage's URL changes, which stops the pipe (STOPPED_STAGE_ALTERED)".into());
        }
        if format.is_some_and(|c| matches!(c.action, Action::Create | Action::Replace)) {
            return Some("the file format is recreated, which stops the pipe (STOPPED_FILE_FORMAT_DROPPED)".into());
        }
        None
    }
}

/// Snowflake's answer while it cannot assume the role yet (a trust IAM has not propagated): "Error
/// assuming AWS_ROLE. Please verify the role and externalId are configured correctly in your AWS
/// policy." (<https://docs.snowflake.com/en/user-guide/data-load-s3-config-storage-integration>).
pub(crate) fn role_not_yet_assumable(message: &str) -> bool {
    message.contains("Error assuming AWS_ROLE")
}

/// Whitespace-insensitive form of a COPY, as SHOW PIPES returns it verbatim.
fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Resource for Pipe {
    fn address(&self) -> Address {
        Self::address()
    }

    /// Moves with every load; it only decides a resume's kind, which the planned change shows.
    fn volatile_fields(&self) -> &'static [&'static str] {
        &["last_ingested"]
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Stage::address(), FileFormat::address(), Table::address_of("tweets_raw"), self.trust_from.clone()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(self.observed())
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([
            ("copy", normalize(&self.copy_statement())),
            ("auto_ingest", "true".to_string()),
            ("execution_state", "RUNNING".to_string()),
            ("refresh_pending", String::new()),
        ])
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &["copy", "auto_ingest"]
    }

    fn replaces_in_place(&self) -> bool {
        true
    }

    /// The COPY and AUTO_INGEST as any resource; the execution state by its documented repair; and
    /// a recreation when an upstream change of this run stops the pipe; the rest of a replace
    /// that stopped before its refresh.
    fn diff(&self, observed: Option<&Observed>, inputs: &Inputs) -> Change {
        let mut desired = self.desired(inputs);
        let Some(observed) = observed else {
            desired.remove("refresh_pending");
            return diff_fields(&desired, None, self.replace_on());
        };
        desired.remove("execution_state");
        let mut change = diff_fields(&desired, Some(observed), self.replace_on());
        if change.action == Action::Replace {
            return change;
        }
        let (state, repair) = Self::repair_of(observed);
        let state_change =
            FieldChange { field: "execution_state".into(), before: Some(state.clone()), after: Some("RUNNING".into()) };
        if let Some(why) = Self::stopped_by(inputs) {
            change.fields.extend((state != "RUNNING").then_some(state_change));
            return Change { action: Action::Replace, reason: Some(why), ..change };
        }
        if let Some(reason) = Self::pending_of(observed).map(|at| Self::unfinished(at, &state)) {
            change.fields.extend((state != "RUNNING").then_some(state_change));
            return Change { action: Action::Update, reason: Some(reason), ..change };
        }
        match repair {
            Repair::None | Repair::Leave => change,
            Repair::Resume | Repair::ForceResume { .. } => {
                change.fields.push(state_change);
                Change { action: Action::Update, reason: repair.reason(&state), ..change }
            }
            Repair::Replace => {
                change.fields.push(state_change);
                Change { action: Action::Replace, reason: repair.reason(&state), ..change }
            }
        }
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            match (observed, change.action) {
                (None, _) => self.run(&self.create_statement("CREATE PIPE IF NOT EXISTS", None), "create").await?,
                (Some(observed), Action::Replace) => self.replace(observed).await?,
                (Some(observed), _) => match Self::pending_of(observed) {
                    Some(since) => self.finish_replace(&modified_after(since), &Self::repair_of(observed).1).await?,
                    None => self.resume(&Self::repair_of(observed).1).await?,
                },
            }
            Ok(self.observed().await?.map(|o| o.outputs).unwrap_or_default())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move { self.run(&format!("DROP PIPE IF EXISTS {}", self.name), "delete").await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_load_names_its_file_status_place_and_error() {
        let failure = LoadFailure {
            file: "flixops/tweets/dt=2026-11-29/r-0001.parquet".into(),
            status: "Load failed".into(),
            error: "Numeric value 'abc' is not recognized".into(),
            line: Some(3),
            character: Some(7),
            column: Some("\"TWEETS_RAW\"[\"RECORD\":1]".into()),
        };
        assert_eq!(
            failure.describe(),
            "flixops/tweets/dt=2026-11-29/r-0001.parquet (Load failed at line 3, character 7, column \
             \"TWEETS_RAW\"[\"RECORD\":1]): Numeric value 'abc' is not recognized"
        );
        let whole_file = LoadFailure { line: None, character: None, column: None, ..failure };
        assert_eq!(
            whole_file.describe(),
            "flixops/tweets/dt=2026-11-29/r-0001.parquet (Load failed): Numeric value 'abc' is not recognized"
        );
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn each_documented_state_has_its_repair() {
        let now = at("2024-03-30T12:00:00Z");
        assert_eq!(repair("RUNNING", None, now), Repair::None);
        assert_eq!(repair("FAILING_OVER", None, now), Repair::None);
        assert_eq!(repair("PAUSED", Some(at("2024-03-29T12:00:00Z")), now), Repair::Resume);
        assert_eq!(
            repair("PAUSED", Some(at("2024-03-10T12:00:00Z")), now),
            Repair::ForceResume { idle_days: Some(20) }
        );
        assert_eq!(repair("PAUSED", None, now), Repair::ForceResume { idle_days: None });
        for stopped in
            ["STOPPED_STAGE_ALTERED", "STOPPED_STAGE_DROPPED", "STOPPED_FILE_FORMAT_DROPPED", "STOPPED_CLONED"]
        {
            assert_eq!(repair(stopped, None, now), Repair::Replace, "{stopped}");
        }
        for left in
            ["STALLED_COMPILATION_ERROR", "STALLED_STAGE_PERMISSION_ERROR", "STOPPED_BY_SNOWFLAKE_ADMIN", "READ_ONLY"]
        {
            assert_eq!(repair(left, None, now), Repair::Leave, "{left}");
        }
        let reason = repair("PAUSED", None, now).reason("PAUSED").unwrap();
        assert!(reason.contains("SYSTEM$PIPE_FORCE_RESUME(…, 'staleness_check_override')"), "{reason}");
    }

    #[test]
    fn the_status_json_is_read_as_the_docs_write_it() {
        let status = PipeStatus::parse(&serde_json::json!({
            "executionState": "PAUSED", "pendingFileCount": 3,
            "oldestFileTimestamp": "2024-03-01T12:00:00.000Z", "lastIngestedTimestamp": 1709290800000i64,
        }));
        assert_eq!((status.state.as_str(), status.pending), ("PAUSED", 3));
        assert_eq!(status.oldest_file, Some(at("2024-03-01T12:00:00Z")));
        assert_eq!(status.last_ingested, Some(at("2024-03-01T11:00:00Z")));
        assert!(!drained(&status, at("2024-03-01T12:30:00Z")), "a file queued before the pause still waits");
        assert!(drained(&status, at("2024-03-01T11:30:00Z")), "only files queued after the pause wait");
        assert_eq!(modified_after(at("2024-03-01T12:00:00.123Z")), "2024-03-01T12:00:00+00:00");
    }

    #[test]
    fn a_refresh_starts_at_the_earliest_unloaded_moment_at_most_seven_days_back() {
        let now = at("2024-03-30T12:00:00Z");
        let paused = at("2024-03-30T11:59:00Z");
        assert_eq!(refresh_since(paused, &[None, None], now), at("2024-03-30T11:54:00Z"));
        let last_load = Some(at("2024-03-29T08:00:00Z"));
        assert_eq!(refresh_since(paused, &[last_load, None], now), at("2024-03-29T07:55:00Z"));
        let pending = Some(at("2024-03-28T08:00:00Z"));
        assert_eq!(refresh_since(paused, &[last_load, pending], now), at("2024-03-28T07:55:00Z"));
        assert_eq!(refresh_since(paused, &[Some(at("2024-03-01T00:00:00Z"))], now), at("2024-03-23T12:00:00Z"));
        let comment = format!("{PENDING_REFRESH}2024-03-28T07:55:00+00:00");
        assert_eq!(pending_refresh(&comment), Some(at("2024-03-28T07:55:00Z")));
        assert_eq!(pending_refresh("a comment of someone else"), None);
    }
}
