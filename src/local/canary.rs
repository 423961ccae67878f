//! The local half of `doctor --canary`: the canary file loaded as `flixops run` loads lake files,
//! then its rows counted in the raw table.

use super::{LocalError, Warehouse};
use crate::config::LocalTarget;

/// Loads the lake file at `key` and returns how many of its rows the raw table holds.
pub fn load(target: &LocalTarget, key: &str) -> Result<u64, LocalError> {
    let mut warehouse = Warehouse::open(target)?;
    warehouse.load_key(key)?;
    let rows: i64 = warehouse
        .connection()
        .query_row("SELECT count(*) FROM raw.tweets_raw WHERE file_name = ?", [key], |r| r.get(0))
        .map_err(|source| LocalError::Sql { what: format!("counting the rows of {key}"), source })?;
    Ok(rows as u64)
}
