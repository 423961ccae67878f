//! The report's marts on Snowflake: the dynamic tables `deploy` created, read with SELECTs on the
//! environment's connection (its session runs in UTC, see `client.rs`).

use futures::future::BoxFuture;

use super::Client;
use super::ident::{Ident, Qualified};
use crate::report::{Marts, QueryError, ReportError, Row};

/// The environment's database on a signed-in session.
pub struct SnowflakeMarts {
    client: Client,
    database: Ident,
}

impl SnowflakeMarts {
    /// The marts of `database` (config validation already checked the name).
    pub fn new(client: Client, database: &str) -> Result<Self, ReportError> {
        let database = Ident::new(database).map_err(|e| ReportError::Query {
            model: "(the database)".into(),
            source_of: "Snowflake".into(),
            message: e.to_string(),
            connect: false,
        })?;
        Ok(Self { client, database })
    }
}

impl Marts for SnowflakeMarts {
    fn source(&self) -> String {
        format!("Snowflake database {}", self.database.name())
    }

    fn build_command(&self) -> &'static str {
        "flixops deploy"
    }

    fn table(&self, model: &str) -> Result<String, ReportError> {
        let (schema, name) = model.split_once('.').unwrap_or(("PUBLIC", model));
        let ident = |part: &str| {
            Ident::new(part).map_err(|e| ReportError::Query {
                model: model.to_string(),
                source_of: self.source(),
                message: e.to_string(),
                connect: false,
            })
        };
        Ok(Qualified::new(&self.database, &ident(schema)?, &ident(name)?).to_string())
    }

    /// On TIMESTAMP_NTZ (the models' timestamps, in UTC) the wall clock is read as UTC; on
    /// TIMESTAMP_LTZ (`loaded_at`) the instant itself
    /// (https://docs.snowflake.com/en/sql-reference/functions/date_part, `EPOCH_SECOND`).
    fn epoch_seconds(&self, expr: &str) -> String {
        format!("DATE_PART(EPOCH_SECOND, {expr})")
    }

    fn rows<'a>(&'a self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>, QueryError>> {
        Box::pin(async move {
            let rows = self.client.query(sql).await.map_err(|e| QueryError {
                message: e.message(),
                missing: e.is_missing(),
                connect: e.is_connect(),
            })?;
            // Snowflake labels unquoted aliases in upper case.
            Ok(rows.into_iter().map(|r| r.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()).collect())
        })
    }
}
