//! The Snowpipe that loads every new parquet file of the stage into the raw table. A pipe's COPY
//! cannot be altered, so a changed COPY recreates it — paused first, then refreshed with the files
//! that arrived meanwhile, then resumed — and nothing else ever does. Its notification channel (an
//! SQS queue of Snowflake's) is the output the bucket notification needs.

use futures::future::BoxFuture;

use super::ident::{Qualified, like, literal};
use super::integration::Stage;
use super::objects::Table;
use super::{Client, res_err, run, show_one, text};
use crate::plan::{Action, Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

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
            format = literal(&self.format.to_string()),
        )
    }

    fn create_statement(&self, verb: &str) -> String {
        format!("{verb} {} AUTO_INGEST = TRUE AS {}", self.name, self.copy_statement())
    }

    async fn execution_state(&self) -> Result<String, ResourceError> {
        let sql = format!("SELECT SYSTEM$PIPE_STATUS({}) AS STATUS", literal(&self.name.to_string()));
        let rows = self.client.query(&sql).await.map_err(res_err(Self::address(), "read status"))?;
        let status = rows.first().and_then(|r| r.values().next()).and_then(|v| v.as_str()).unwrap_or("{}");
        let status: serde_json::Value = serde_json::from_str(status).unwrap_or_default();
        Ok(status.get("executionState").and_then(|s| s.as_str()).unwrap_or("UNKNOWN").to_string())
    }

    async fn run(&self, sql: &str, op: &'static str) -> Result<(), ResourceError> {
        run(&self.client, sql, Self::address(), op).await
    }

    /// Pause, replace, load what arrived while paused, resume: no file is skipped, and the files
    /// loaded before stay loaded once (the raw table's staging model de-duplicates the rest).
    async fn replace(&self) -> Result<(), ResourceError> {
        // Five minutes early, for clock skew between this machine and Snowflake: a file loaded twice
        // is de-duplicated downstream, a file skipped would be lost.
        let since = chrono::Utc::now() - chrono::Duration::minutes(5);
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.run(&format!("ALTER PIPE {} SET PIPE_EXECUTION_PAUSED = TRUE", self.name), "pause").await?;
        self.run(&self.create_statement("CREATE OR REPLACE PIPE"), "replace").await?;
        self.run(&format!("ALTER PIPE {} SET PIPE_EXECUTION_PAUSED = TRUE", self.name), "pause").await?;
        self.refresh(&since).await?;
        self.run(&format!("ALTER PIPE {} SET PIPE_EXECUTION_PAUSED = FALSE", self.name), "resume").await
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
        let fields = field_map([
            ("copy", normalize(&text(&row, "definition"))),
            ("auto_ingest", if text(&row, "notification_channel").is_empty() { "false" } else { "true" }.into()),
            ("execution_state", self.execution_state().await?),
        ]);
        let outputs = [("notification_channel".to_string(), text(&row, "notification_channel"))];
        Ok(Some(Observed { fields, outputs: outputs.into() }))
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

    fn depends_on(&self) -> Vec<Address> {
        vec![Stage::address(), Table::address_of("tweets_raw"), self.trust_from.clone()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(self.observed())
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([
            ("copy", normalize(&self.copy_statement())),
            ("auto_ingest", "true".to_string()),
            ("execution_state", "RUNNING".to_string()),
        ])
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &["copy", "auto_ingest"]
    }

    fn replaces_in_place(&self) -> bool {
        true
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            match (observed, change.action) {
                (None, _) => self.run(&self.create_statement("CREATE PIPE IF NOT EXISTS"), "create").await?,
                (Some(_), Action::Replace) => self.replace().await?,
                // Only the execution state differs: a pipe left paused (e.g. by an interrupted replace).
                (Some(_), _) => {
                    self.run(&format!("ALTER PIPE {} SET PIPE_EXECUTION_PAUSED = FALSE", self.name), "resume").await?
                }
            }
            Ok(self.observed().await?.map(|o| o.outputs).unwrap_or_default())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move { self.run(&format!("DROP PIPE IF EXISTS {}", self.name), "delete").await })
    }
}
