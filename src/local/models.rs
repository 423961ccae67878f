//! Models on the local target: each run rebuilds every model table from the current raw data (the
//! refresh a Snowflake dynamic table does by itself), in one transaction, and records each
//! rendered SQL's checksum in `ops.model_ledger` so a changed definition is reported as such.

use duckdb::{Connection, OptionalExt, params};
use serde::Serialize;

use crate::models::Rendered;
use crate::models::ledger::{self, Row, State};

const LEDGER_SQL: &str = "
CREATE TABLE IF NOT EXISTS ops.model_ledger (
    model VARCHAR PRIMARY KEY,
    checksum VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL
);
";

/// What happened to one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelChange {
    /// First build.
    Created,
    /// The rendered SQL differs from the ledger's: rebuilt with the new definition.
    Changed,
    /// Same definition, rebuilt with current data.
    Refreshed,
}

/// One model's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ModelOutcome {
    /// `schema.name`.
    pub model: String,
    /// What happened.
    pub change: ModelChange,
    /// Rows in the table afterwards.
    pub rows: u64,
}

/// A model failed; nothing of this transform was kept.
#[derive(Debug, thiserror::Error)]
#[error(
    "model {model} failed: {source}\nno model was changed (the transform runs in one transaction); fix the model and run `flixops transform` again"
)]
pub struct TransformError {
    model: String,
    #[source]
    source: duckdb::Error,
}

/// Rebuilds every model in order inside one transaction.
pub fn apply(conn: &Connection, models: &[Rendered]) -> Result<Vec<ModelOutcome>, TransformError> {
    let fail = |model: &str| {
        let model = model.to_string();
        move |source| TransformError { model, source }
    };
    conn.execute_batch(LEDGER_SQL).map_err(fail("ops.model_ledger"))?;
    conn.execute_batch("BEGIN TRANSACTION").map_err(fail("(transaction)"))?;
    let mut outcomes = Vec::with_capacity(models.len());
    for model in models {
        match apply_one(conn, model) {
            Ok(outcome) => outcomes.push(outcome),
            Err(source) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(TransformError { model: model.id.clone(), source });
            }
        }
    }
    conn.execute_batch("COMMIT").map_err(fail("(commit)"))?;
    Ok(outcomes)
}

/// The model's row in `ops.model_ledger`, read as deploy and doctor read theirs.
pub fn ledger_row(conn: &Connection, id: &str) -> Result<Option<Row>, duckdb::Error> {
    let row = |r: &duckdb::Row| Ok(Row { checksum: r.get(0)?, status: r.get(1)? });
    conn.query_row(&ledger::read_sql("ops.model_ledger"), [id], row).optional()
}

fn apply_one(conn: &Connection, model: &Rendered) -> Result<ModelOutcome, duckdb::Error> {
    let change = match ledger::state(model, ledger_row(conn, &model.id)?.as_ref()) {
        State::Pending => ModelChange::Created,
        State::Changed | State::Failed => ModelChange::Changed,
        State::Applied => ModelChange::Refreshed,
    };
    let table = format!("\"{}\".\"{}\"", model.schema, model.name);
    tracing::debug!(
        "model {} ({}): CREATE OR REPLACE TABLE {table} AS\n{}",
        model.id,
        model.origin,
        model.sql.trim_end()
    );
    conn.execute_batch(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\";\nCREATE OR REPLACE TABLE {table} AS\n{}",
        model.schema, model.sql
    ))?;
    conn.execute(
        "INSERT OR REPLACE INTO ops.model_ledger VALUES (?, ?, now(), 'applied')",
        params![model.id, model.checksum],
    )?;
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    tracing::debug!("model {}: {rows} rows", model.id);
    Ok(ModelOutcome { model: model.id.clone(), change, rows: rows as u64 })
}
