//! The schema-level objects: database, schemas, the parquet file format and plain tables (the raw
//! table, the model ledger). Created with `IF NOT EXISTS`, read with `SHOW`, never replaced: a table
//! only ever gains the columns it lacks, so no deploy drops data.

use futures::future::BoxFuture;

use super::client::{Client, Row};
use super::ident::{Ident, Qualified, like};
use super::{res_err, run, show_one, text};
use crate::plan::{Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// The database that holds every schema of the environment.
pub struct Database {
    /// Session.
    pub client: Client,
    /// Its name.
    pub name: Ident,
}

impl Database {
    /// The graph address.
    pub fn address() -> Address {
        Address::new("snowflake_database", "main")
    }
}

impl Resource for Database {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let sql = format!("SHOW DATABASES LIKE {}", like(&self.name));
            let row = show_one(&self.client, &sql, &self.name).await.map_err(res_err(Self::address(), "read"))?;
            Ok(row.map(|r| Observed { fields: field_map([("name", text(&r, "name"))]), outputs: Outputs::new() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("name", self.name.name().to_string())])
    }

    fn apply<'a>(
        &'a self,
        _: &'a Change,
        _: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let sql = format!("CREATE DATABASE IF NOT EXISTS {}", self.name);
            run(&self.client, &sql, Self::address(), "create").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
            run(&self.client, &sql, Self::address(), "delete").await
        })
    }
}

/// One schema of the database (raw, ops, and one per model folder).
pub struct Schema {
    /// Session.
    pub client: Client,
    /// Database.
    pub database: Ident,
    /// Schema.
    pub name: Ident,
}

impl Schema {
    /// The graph address of schema `name` (lower case, as the model folders are named).
    pub fn address_of(name: &Ident) -> Address {
        Address::new("snowflake_schema", &name.name().to_ascii_lowercase())
    }
}

impl Resource for Schema {
    fn address(&self) -> Address {
        Self::address_of(&self.name)
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Database::address()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let sql = format!("SHOW SCHEMAS LIKE {} IN DATABASE {}", like(&self.name), self.database);
            let row = show_one(&self.client, &sql, &self.name).await.map_err(res_err(self.address(), "read"))?;
            Ok(row.map(|r| Observed { fields: field_map([("name", text(&r, "name"))]), outputs: Outputs::new() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("name", self.name.name().to_string())])
    }

    fn apply<'a>(
        &'a self,
        _: &'a Change,
        _: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {}.{}", self.database, self.name);
            run(&self.client, &sql, self.address(), "create").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP SCHEMA IF EXISTS {}.{}", self.database, self.name);
            run(&self.client, &sql, self.address(), "delete").await
        })
    }
}

/// The parquet file format the stage and the pipe read with. `USE_LOGICAL_TYPE = TRUE` makes a
/// UTC-adjusted parquet timestamp load as the instant it is (TIMESTAMP_LTZ), not as a wall-clock
/// time a later cast reads in the session's zone
/// (https://docs.snowflake.com/en/sql-reference/sql/create-file-format, type options for PARQUET).
pub struct FileFormat {
    /// Session.
    pub client: Client,
    /// Its qualified name.
    pub name: Qualified,
}

impl FileFormat {
    /// The graph address.
    pub fn address() -> Address {
        Address::new("snowflake_file_format", "parquet")
    }

    /// Every type option flixops sets, as `CREATE` and `ALTER … SET` take them.
    fn options(&self) -> &'static str {
        "USE_LOGICAL_TYPE = TRUE"
    }
}

/// `USE_LOGICAL_TYPE` of a `SHOW FILE FORMATS` row (its `format_options` JSON); absent is false.
fn use_logical_type(row: &Row) -> String {
    let options: serde_json::Value = serde_json::from_str(&text(row, "format_options")).unwrap_or_default();
    let value = match &options["USE_LOGICAL_TYPE"] {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    value.to_string()
}

impl Resource for FileFormat {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Schema::address_of(&self.name.schema)]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let sql = format!("SHOW FILE FORMATS LIKE {} IN SCHEMA {}", like(&self.name.name), self.name.schema_path());
            let row = show_one(&self.client, &sql, &self.name.name).await.map_err(res_err(Self::address(), "read"))?;
            Ok(row.map(|r| Observed {
                fields: field_map([("type", text(&r, "type")), ("use_logical_type", use_logical_type(&r))]),
                outputs: Outputs::new(),
            }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("type", "PARQUET".to_string()), ("use_logical_type", "true".to_string())])
    }

    /// The type of a file format cannot be altered; its options can.
    fn replace_on(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn replaces_in_place(&self) -> bool {
        true
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        _: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            // The stage and the pipe refer to it by name; the pipe is recreated after a replace.
            let sql = match change.action {
                crate::plan::Action::Create => {
                    format!("CREATE FILE FORMAT IF NOT EXISTS {} TYPE = PARQUET {}", self.name, self.options())
                }
                crate::plan::Action::Replace => {
                    format!("CREATE OR REPLACE FILE FORMAT {} TYPE = PARQUET {}", self.name, self.options())
                }
                // https://docs.snowflake.com/en/sql-reference/sql/alter-file-format
                _ => format!("ALTER FILE FORMAT {} SET {}", self.name, self.options()),
            };
            run(&self.client, &sql, Self::address(), "apply").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP FILE FORMAT IF EXISTS {}", self.name);
            run(&self.client, &sql, Self::address(), "delete").await
        })
    }
}

/// A plain table with a fixed column list.
pub struct Table {
    /// Session.
    pub client: Client,
    /// The address suffix (`tweets_raw`, `model_ledger`).
    pub key: &'static str,
    /// Its qualified name.
    pub name: Qualified,
    /// `(column, declared type, the type SHOW COLUMNS reports)`.
    pub columns: &'static [(&'static str, &'static str, &'static str)],
}

/// The raw table Snowpipe loads: one VARIANT per parquet row plus where and when it came from.
pub const RAW_COLUMNS: &[(&str, &str, &str)] = &[
    ("RECORD", "VARIANT", "VARIANT"),
    ("FILE_NAME", "STRING", "TEXT"),
    ("FILE_ROW_NUMBER", "NUMBER", "FIXED"),
    ("FILE_LAST_MODIFIED", "TIMESTAMP_NTZ", "TIMESTAMP_NTZ"),
    ("LOADED_AT", "TIMESTAMP_TZ", "TIMESTAMP_TZ"),
];

/// The model ledger: which rendered SQL each model was last built from.
pub const LEDGER_COLUMNS: &[(&str, &str, &str)] = &[
    ("MODEL", "STRING", "TEXT"),
    ("CHECKSUM", "STRING", "TEXT"),
    ("APPLIED_AT", "TIMESTAMP_TZ", "TIMESTAMP_TZ"),
    ("STATUS", "STRING", "TEXT"),
];

impl Table {
    /// The graph address of table `key`.
    pub fn address_of(key: &str) -> Address {
        Address::new("snowflake_table", key)
    }

    fn wanted(&self) -> String {
        self.columns.iter().map(|(name, _, shown)| format!("{name} {shown}")).collect::<Vec<_>>().join(", ")
    }

    async fn add_missing(&self, observed: &Observed) -> Result<(), ResourceError> {
        let have = observed.fields.get("columns").cloned().unwrap_or_default();
        let have: Vec<(&str, &str)> = have.split(", ").filter_map(|c| c.split_once(' ')).collect();
        for (name, declared, shown) in self.columns {
            match have.iter().find(|(n, _)| n == name) {
                None => {
                    let sql = format!("ALTER TABLE {} ADD COLUMN \"{name}\" {declared}", self.name);
                    run(&self.client, &sql, self.address(), "add column").await?;
                }
                Some((_, t)) if t != shown => {
                    return Err(ResourceError {
                        address: self.address(),
                        op: "update".into(),
                        message: format!(
                            "column {name} of {} is {t}, flixops expects {shown}; flixops never rewrites a table (no data is \
                             dropped): change the column by hand or rename the table and deploy again",
                            self.name
                        ),
                        kind: crate::plan::ErrorKind::Other,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Resource for Table {
    fn address(&self) -> Address {
        Self::address_of(self.key)
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Schema::address_of(&self.name.schema)]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let sql = format!("SHOW COLUMNS IN TABLE {}", self.name);
            let rows = match self.client.query(&sql).await {
                Ok(rows) => rows,
                Err(e) if e.is_missing() => return Ok(None),
                Err(e) => return Err(res_err(self.address(), "read")(e)),
            };
            if rows.is_empty() {
                return Ok(None);
            }
            let columns: Vec<String> = rows.iter().map(column_of).collect();
            Ok(Some(Observed { fields: field_map([("columns", columns.join(", "))]), outputs: Outputs::new() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("columns", self.wanted())])
    }

    fn apply<'a>(
        &'a self,
        _: &'a Change,
        observed: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            if let Some(observed) = observed {
                self.add_missing(observed).await?;
                return Ok(Outputs::new());
            }
            let columns: Vec<String> = self.columns.iter().map(|(n, t, _)| format!("\"{n}\" {t}")).collect();
            let sql = format!("CREATE TABLE IF NOT EXISTS {} ({})", self.name, columns.join(", "));
            run(&self.client, &sql, self.address(), "create").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP TABLE IF EXISTS {}", self.name);
            run(&self.client, &sql, self.address(), "delete").await
        })
    }
}

/// `NAME TYPE` of one `SHOW COLUMNS` row (`data_type` is JSON such as `{"type":"FIXED",…}`).
fn column_of(row: &Row) -> String {
    let data_type = text(row, "data_type");
    let kind = serde_json::from_str::<serde_json::Value>(&data_type)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or(data_type);
    format!("{} {kind}", text(row, "column_name"))
}
