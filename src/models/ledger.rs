//! The model ledger: which definition of each model is built. Both engines read it with
//! [`read_sql`] and judge a row with [`state`] (sqlx's `list_applied_migrations`), so deploy,
//! transform and doctor agree on applied, pending, changed and failed.

use serde::Serialize;

use super::Rendered;

/// One model's ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// SHA-256 of the rendered definition that was applied.
    pub checksum: String,
    /// `applying`, `applied` or `failed`.
    pub status: String,
}

/// A model's definition against the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Never applied (or its apply was interrupted before it was recorded).
    Pending,
    /// Built from exactly this definition.
    Applied,
    /// Built from another definition.
    Changed,
    /// The last apply of this definition failed or did not finish.
    Failed,
}

/// The statement reading one model's row (the only parameter is the model id). Quoted upper-case
/// names are what Snowflake stores; DuckDB matches identifiers case-insensitively.
pub fn read_sql(ledger: &str) -> String {
    format!("SELECT \"CHECKSUM\", \"STATUS\" FROM {ledger} WHERE \"MODEL\" = ?")
}

/// Judges a model's row.
pub fn state(model: &Rendered, row: Option<&Row>) -> State {
    match row {
        None => State::Pending,
        Some(row) if row.checksum != model.checksum => State::Changed,
        Some(row) if row.status == "applied" => State::Applied,
        Some(_) => State::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(checksum: &str) -> Rendered {
        Rendered {
            id: "marts.m".into(),
            schema: "marts".into(),
            name: "m".into(),
            sql: "SELECT 1".into(),
            refs: Vec::new(),
            checksum: checksum.into(),
            origin: "models/marts/m.sql".into(),
        }
    }

    #[test]
    fn a_row_reads_as_what_deploy_transform_and_doctor_report() {
        let row = |checksum: &str, status: &str| Row { checksum: checksum.into(), status: status.into() };
        assert_eq!(state(&model("a"), None), State::Pending);
        assert_eq!(state(&model("a"), Some(&row("a", "applied"))), State::Applied);
        assert_eq!(state(&model("a"), Some(&row("b", "applied"))), State::Changed);
        assert_eq!(state(&model("a"), Some(&row("a", "failed"))), State::Failed);
        assert_eq!(state(&model("a"), Some(&row("a", "applying"))), State::Failed);
    }
}
