//! The report's marts on the local target: the DuckDB file opened read-only, so a report never
//! changes the warehouse and can run beside a reader.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use duckdb::types::ValueRef;
use duckdb::{AccessMode, Config, Connection};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::report::{Marts, QueryError, ReportError, Row};

/// The local warehouse's marts, for [`crate::report::generate`].
pub fn marts(path: &Path) -> Result<Box<dyn Marts>, crate::Error> {
    Ok(Box::new(DuckDbMarts::open(path)?))
}

/// The warehouse file, open read-only.
pub struct DuckDbMarts {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl DuckDbMarts {
    /// Opens `path` read-only; a missing file means nothing was loaded yet.
    pub fn open(path: &Path) -> Result<Self, ReportError> {
        if !path.exists() {
            return Err(ReportError::NoWarehouse { path: path.to_path_buf() });
        }
        let failed = |e: duckdb::Error| ReportError::Query {
            model: "(the warehouse)".into(),
            source_of: format!("DuckDB {}", path.display()),
            message: format!("{e}; if another process writes it, let that finish first"),
            connect: false,
        };
        let config = Config::default().access_mode(AccessMode::ReadOnly).map_err(failed)?;
        let conn = Connection::open_with_flags(path, config).map_err(failed)?;
        conn.execute_batch("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;")
            .map_err(failed)?;
        Ok(Self { conn: Mutex::new(conn), path: path.to_path_buf() })
    }

    fn select(&self, sql: &str) -> Result<Vec<Row>, duckdb::Error> {
        let conn = self.conn.lock().expect("the connection lock is never poisoned: queries do not panic");
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let names: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut map = Row::new();
            for (i, name) in names.iter().enumerate() {
                map.insert(name.to_ascii_lowercase(), json(row.get_ref(i)?));
            }
            out.push(map);
        }
        Ok(out)
    }
}

/// A DuckDB value as the report reads it: numbers as numbers, dates as YYYY-MM-DD, text as text.
fn json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(i) => i.into(),
        ValueRef::SmallInt(i) => i.into(),
        ValueRef::Int(i) => i.into(),
        ValueRef::BigInt(i) => i.into(),
        ValueRef::HugeInt(i) => i64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from),
        ValueRef::UTinyInt(i) => i.into(),
        ValueRef::USmallInt(i) => i.into(),
        ValueRef::UInt(i) => i.into(),
        ValueRef::UBigInt(i) => i.into(),
        ValueRef::Float(f) => f64::from(f).into(),
        ValueRef::Double(f) => f.into(),
        ValueRef::Decimal(d) => Value::String(d.to_string()),
        ValueRef::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or(Value::Null, |d| Value::String(d.format("%Y-%m-%d").to_string())),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        other => owned(other.to_owned()),
    }
}

/// A list (the models' `VARCHAR[]`) as a JSON array; any other type as its debug text.
fn owned(value: duckdb::types::Value) -> Value {
    match value {
        duckdb::types::Value::List(items) => Value::Array(items.into_iter().map(owned).collect()),
        duckdb::types::Value::Text(s) => Value::String(s),
        duckdb::types::Value::Null => Value::Null,
        other => Value::String(format!("{other:?}")),
    }
}

impl Marts for DuckDbMarts {
    fn source(&self) -> String {
        format!("DuckDB {}", self.path.display())
    }

    fn build_command(&self) -> &'static str {
        "flixops transform"
    }

    fn table(&self, model: &str) -> Result<String, ReportError> {
        let (schema, name) = model.split_once('.').unwrap_or(("main", model));
        Ok(format!("\"{schema}\".\"{name}\""))
    }

    /// TIMESTAMPTZ → TIMESTAMP is UTC here (the embedded DuckDB has no ICU, so no session zone).
    fn epoch_seconds(&self, expr: &str) -> String {
        format!("CAST(epoch(CAST({expr} AS TIMESTAMP)) AS BIGINT)")
    }

    fn rows<'a>(&'a self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>, QueryError>> {
        Box::pin(async move {
            self.select(sql).map_err(|e| {
                let message = e.to_string();
                let missing = message.contains("does not exist");
                QueryError { message, missing, connect: false }
            })
        })
    }
}
