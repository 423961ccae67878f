//! The names of an environment's Snowflake objects: the resources (snowflake/stack.rs), the
//! models (models/snowflake.rs) and doctor all name them from here, so none imports the other.

use super::ident::{BadIdent, Ident, Qualified};
use crate::config::AwsSnowflakeTarget;

/// The names of the Snowflake objects of one environment.
#[derive(Debug, Clone)]
pub struct SnowNames {
    /// Database.
    pub database: Ident,
    /// Raw schema (stage, format, table, pipe).
    pub raw: Ident,
    /// Ops schema (the model ledger).
    pub ops: Ident,
    /// Account-level integration name: `{PROJECT}_{ENV}_LAKE`.
    pub integration: Ident,
    /// File format.
    pub format: Qualified,
    /// Stage.
    pub stage: Qualified,
    /// Raw table.
    pub table: Qualified,
    /// Pipe.
    pub pipe: Qualified,
    /// The model ledger.
    pub ledger: Qualified,
    /// The warehouse dynamic tables refresh on.
    pub warehouse: Ident,
}

impl SnowNames {
    /// Derives every name; config validation already checked database and warehouse.
    pub fn new(project: &str, env: &str, target: &AwsSnowflakeTarget) -> Result<Self, BadIdent> {
        let database = Ident::new(&target.database)?;
        let raw = Ident::new("raw")?;
        let ops = Ident::new("ops")?;
        let in_raw = |name: &str| Ident::new(name).map(|n| Qualified::new(&database, &raw, &n));
        let integration = format!("{}_{}_lake", project, env).replace('-', "_");
        Ok(Self {
            integration: Ident::new(&integration)?,
            format: in_raw("parquet_format")?,
            stage: in_raw("tweets_stage")?,
            table: in_raw("tweets_raw")?,
            pipe: in_raw("tweets_pipe")?,
            ledger: Qualified::new(&database, &ops, &Ident::new("model_ledger")?),
            warehouse: Ident::new(&target.warehouse)?,
            raw,
            ops,
            database,
        })
    }
}
