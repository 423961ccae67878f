//! The warehouse: an embedded DuckDB file. The loader does Snowpipe's job: each new parquet file is
//! loaded into `raw.tweets_raw` exactly once, tracked in `ops.load_history`, in one transaction with
//! its rows.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use duckdb::{Connection, params};
use serde::Serialize;

use crate::config::LocalTarget;

/// DDL of the schemas and tables the loader owns.
const SETUP_SQL: &str = "
SET autoinstall_known_extensions = false;
SET autoload_known_extensions = false;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS raw.tweets_raw (
    record JSON NOT NULL,
    file_name VARCHAR NOT NULL,
    file_row_number BIGINT NOT NULL,
    file_last_modified TIMESTAMP,
    loaded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.load_history (
    file_name VARCHAR PRIMARY KEY,
    row_count BIGINT NOT NULL,
    file_size BIGINT NOT NULL,
    file_last_modified TIMESTAMP,
    loaded_at TIMESTAMPTZ NOT NULL
);
";

/// A local-target failure, naming the path and the way out.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The warehouse file cannot be opened (missing directory, lock held, corrupt file).
    #[error("cannot open the warehouse {path}: {source}; if another flixops or DuckDB process has it open, close that first", path = .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: duckdb::Error,
    },
    /// The warehouse's directory cannot be created.
    #[error("cannot create {path}: {source}", path = .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The lake directory cannot be listed or a file in it cannot be read.
    #[error("cannot read the lake at {path}: {source}; check that it exists and is readable", path = .path.display())]
    Lake {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A load or query failed.
    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: duckdb::Error,
    },
}

fn sql(what: impl Into<String>) -> impl FnOnce(duckdb::Error) -> LocalError {
    let what = what.into();
    move |source| LocalError::Sql { what, source }
}

/// An open warehouse with its lake.
pub struct Warehouse {
    conn: Connection,
    lake: PathBuf,
}

/// What one load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Files loaded by this call.
    pub files_loaded: u64,
    /// Rows those files held.
    pub rows_loaded: u64,
    /// Files already in the load history, left alone.
    pub files_skipped: u64,
}

impl Warehouse {
    /// Opens (creating if needed) the DuckDB file and its schemas.
    pub fn open(target: &LocalTarget) -> Result<Self, LocalError> {
        if let Some(dir) = target.warehouse.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LocalError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(&target.warehouse)
            .map_err(|source| LocalError::Open { path: target.warehouse.clone(), source })?;
        conn.execute_batch(SETUP_SQL).map_err(sql("creating the warehouse schemas"))?;
        Ok(Self { conn, lake: target.lake_dir.clone() })
    }

    /// The connection, for models and checks.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Loads every parquet file under `{lake}/{prefix}/tweets/` not yet in the load history.
    pub fn load_new_files(&mut self, prefix: &str) -> Result<LoadReport, LocalError> {
        let root = self.lake.join(prefix).join("tweets");
        let files = list_parquet(&self.lake, &root)?;
        let loaded: HashSet<String> = {
            let mut stmt =
                self.conn.prepare("SELECT file_name FROM ops.load_history").map_err(sql("reading the load history"))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql("reading the load history"))?;
            rows.collect::<Result<_, _>>().map_err(sql("reading the load history"))?
        };
        let mut report = LoadReport::default();
        for (key, path) in files {
            if loaded.contains(&key) {
                report.files_skipped += 1;
                continue;
            }
            report.rows_loaded += self.load_file(&key, &path)?;
            report.files_loaded += 1;
        }
        Ok(report)
    }

    /// Loads the file at `key` (relative to the lake) unless the load history has it; the rows
    /// loaded (0 when already loaded).
    pub fn load_key(&mut self, key: &str) -> Result<u64, LocalError> {
        let seen: i64 = self
            .conn
            .query_row("SELECT count(*) FROM ops.load_history WHERE file_name = ?", [key], |r| r.get(0))
            .map_err(sql("reading the load history"))?;
        if seen > 0 {
            return Ok(0);
        }
        let path = self.lake.join(key);
        self.load_file(key, &path)
    }

    /// Loads one file and records it, atomically: a crash leaves either both or neither.
    fn load_file(&mut self, key: &str, path: &Path) -> Result<u64, LocalError> {
        let meta = std::fs::metadata(path).map_err(|source| LocalError::Lake { path: path.to_path_buf(), source })?;
        let modified = meta.modified().ok().map(|t| chrono::DateTime::<chrono::Utc>::from(t).naive_utc());
        let literal = path.to_string_lossy().replace('\'', "''");
        let tx = self.conn.transaction().map_err(sql("starting a load"))?;
        let rows = tx
            .execute(
                &format!(
                    "INSERT INTO raw.tweets_raw
                     SELECT to_json(struct_pack(*COLUMNS(* EXCLUDE (file_row_number)))), ?, file_row_number, ?, now()
                     FROM read_parquet('{literal}', file_row_number = true)"
                ),
                params![key, modified],
            )
            .map_err(sql(format!("loading {}", path.display())))?;
        tx.execute(
            "INSERT INTO ops.load_history VALUES (?, ?, ?, ?, now())",
            params![key, rows as i64, meta.len() as i64, modified],
        )
        .map_err(sql(format!("recording {key} in ops.load_history")))?;
        tx.commit().map_err(sql(format!("committing the load of {key}")))?;
        tracing::info!("loaded {rows} rows from {key}");
        Ok(rows as u64)
    }
}

/// `(key relative to the lake, path)` of every `*.parquet` below `dir`, sorted; dot-files
/// (in-flight temp files) are not data.
fn list_parquet(lake: &Path, dir: &Path) -> Result<Vec<(String, PathBuf)>, LocalError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    if !dir.exists() {
        // No lake yet (nothing extracted) is an empty lake; a lake that is not a readable directory is an error.
        return match std::fs::read_dir(lake) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(out),
            Err(source) => Err(LocalError::Lake { path: lake.to_path_buf(), source }),
            Ok(_) => Ok(out),
        };
    }
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| LocalError::Lake { path: d.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| LocalError::Lake { path: d.clone(), source })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                let key = path.strip_prefix(lake).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push((key, path));
            }
        }
    }
    out.sort();
    Ok(out)
}
