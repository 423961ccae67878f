//! The Snowflake side of the cloud target: the client (snowflake-connector-rs), identifier
//! quoting, the resources — database, schemas, file format, storage integration, stage, raw
//! table, pipe — that the plan engine reads, diffs and applies like the AWS ones, and the grants
//! the deploying role needs.

pub mod client;
pub mod connection;
pub mod grants;
pub mod ident;
pub mod integration;
pub mod names;
pub mod objects;
pub mod pipe;
pub mod stack;

pub use client::{Client, SnowflakeError};

use client::Row;
use ident::Ident;

use crate::plan::{Address, ErrorKind, ResourceError};

/// Turns a Snowflake failure into the resource error the plan engine reports.
pub fn res_err(address: Address, op: &'static str) -> impl FnOnce(SnowflakeError) -> ResourceError {
    move |e| ResourceError {
        address,
        op: op.to_string(),
        kind: if e.is_connect() { ErrorKind::Connect } else { ErrorKind::Other },
        message: e.to_string(),
    }
}

/// Runs one statement of resource `address`; a failure becomes the engine's error for `op`.
pub async fn run(client: &Client, sql: &str, address: Address, op: &'static str) -> Result<(), ResourceError> {
    client.execute(sql).await.map_err(res_err(address, op))
}

/// The `SHOW … LIKE` row whose `name` is exactly `name`; None when absent (or its container is).
pub async fn show_one(client: &Client, sql: &str, name: &Ident) -> Result<Option<Row>, SnowflakeError> {
    match client.query(sql).await {
        Ok(rows) => Ok(rows.into_iter().find(|r| text(r, "name") == name.name())),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A column of a row as text ("" for NULL); numbers and booleans in their JSON form.
pub fn text(row: &Row, column: &str) -> String {
    let value = row.get(column).or_else(|| {
        let upper = column.to_ascii_uppercase();
        row.iter().find(|(k, _)| k.to_ascii_uppercase() == upper).map(|(_, v)| v)
    });
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
