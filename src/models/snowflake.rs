//! Models on Snowflake: each one a dynamic table (Snowflake refreshes it within TARGET_LAG), applied
//! only when its rendered DDL changed. `plan` first compiles every changed model with EXPLAIN, so a
//! broken model fails the plan, not the deploy half-way. The ledger row is written before the DDL
//! ("applying") and after it ("applied"), as sqlx does on MySQL, so an interrupted deploy is seen
//! and finished by the next one.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::Rendered;
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};
use crate::snowflake::ident::{BadIdent, Ident, Qualified, like, literal};
use crate::snowflake::names::SnowNames;
use crate::snowflake::objects::{RAW_COLUMNS, Schema, Table};
use crate::snowflake::{Client, SnowflakeError, res_err, run, show_one, text};

/// One model as a dynamic table.
pub struct DynamicTable {
    client: Client,
    id: String,
    table: Qualified,
    ledger: Qualified,
    refs: Vec<String>,
    reads_raw: bool,
    ddl: String,
    checksum: String,
    /// The model's file, for messages.
    origin: String,
    /// The SELECT that `plan` compiles: the models it reads inlined, the raw table as an empty
    /// relation of its columns, so it compiles before any of them exists or changes.
    compile: String,
}

/// The model resources, one per rendered model.
pub fn resources(
    client: &Client,
    names: &SnowNames,
    target_lag: &str,
    models: &[Rendered],
) -> Result<Vec<Box<dyn Resource>>, BadIdent> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    for model in models {
        let table = Qualified::new(&names.database, &Ident::new(&model.schema)?, &Ident::new(&model.name)?);
        let ddl = ddl(&table, target_lag, &names.warehouse, &model.sql);
        out.push(Box::new(DynamicTable {
            client: client.clone(),
            id: model.id.clone(),
            checksum: hex::encode(Sha256::digest(ddl.as_bytes())),
            reads_raw: model.sql.contains(&names.table.to_string()),
            refs: model.refs.clone(),
            ledger: names.ledger.clone(),
            origin: model.origin.clone(),
            compile: compile_sql(model, models, names)?,
            table,
            ddl,
        }));
    }
    Ok(out)
}

/// The statement that (re)creates a model.
pub fn ddl(table: &Qualified, target_lag: &str, warehouse: &Ident, select: &str) -> String {
    format!(
        "CREATE OR REPLACE DYNAMIC TABLE {table}\n  TARGET_LAG = {}\n  WAREHOUSE = {warehouse}\nAS\n{select}",
        lag(target_lag)
    )
}

/// `DOWNSTREAM` stays a keyword; a duration is a string literal in the grammar's plural units,
/// `'<num> { seconds | minutes | hours | days }'`
/// (https://docs.snowflake.com/en/sql-reference/sql/create-dynamic-table); config validation
/// also accepts the singular.
fn lag(target_lag: &str) -> String {
    if target_lag.eq_ignore_ascii_case("downstream") {
        return "DOWNSTREAM".to_string();
    }
    let (count, unit) = target_lag.split_once(' ').unwrap_or((target_lag, ""));
    let unit = unit.trim().to_ascii_lowercase();
    let plural = if unit.ends_with('s') { unit } else { format!("{unit}s") };
    literal(&format!("{count} {plural}"))
}

/// `model`'s SELECT with each model it reads inlined as a subquery (recursively), and the raw
/// table as an empty relation of its declared columns.
fn compile_sql(model: &Rendered, models: &[Rendered], names: &SnowNames) -> Result<String, BadIdent> {
    let mut sql = model.sql.clone();
    for id in &model.refs {
        let Some(source) = models.iter().find(|m| &m.id == id) else { continue };
        let qualified = Qualified::new(&names.database, &Ident::new(&source.schema)?, &Ident::new(&source.name)?);
        sql = sql.replace(&qualified.to_string(), &format!("(\n{}\n)", compile_sql(source, models, names)?));
    }
    let columns: Vec<String> =
        RAW_COLUMNS.iter().map(|(name, declared, _)| format!("CAST(NULL AS {declared}) AS \"{name}\"")).collect();
    let raw = format!("(SELECT {} WHERE FALSE)", columns.join(", "));
    Ok(sql.replace(&names.table.to_string(), &raw))
}

/// DYNAMIC_TABLES()'s largest RESULT_LIMIT.
const DYNAMIC_TABLES_LIMIT: u32 = 10_000;

/// A model's last refresh, as Snowflake reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// `SCHEMA.NAME`.
    pub model: String,
    /// LAST_COMPLETED_REFRESH_STATE: `SUCCEEDED`, `FAILED`, `UPSTREAM_FAILED`, …
    pub state: String,
    /// Snowflake's message for a failed refresh.
    pub message: String,
    /// Minutes since the data's timestamp (None before the first refresh).
    pub age_minutes: Option<i64>,
}

impl RefreshState {
    /// A refresh that failed (its own, or one upstream).
    pub fn failed(&self) -> bool {
        self.state.ends_with("FAILED")
    }
}

/// The last refresh of every dynamic table of `database`. Without arguments DYNAMIC_TABLES()
/// answers 100 rows from the whole account, failed ones first: the limit covers every table so the
/// filter sees this database's (<https://docs.snowflake.com/en/sql-reference/functions/dynamic_tables>).
pub async fn refresh_states(client: &Client, database: &Ident) -> Result<Vec<RefreshState>, SnowflakeError> {
    let sql = format!(
        "SELECT SCHEMA_NAME, NAME, LAST_COMPLETED_REFRESH_STATE AS STATE, LAST_COMPLETED_REFRESH_STATE_MESSAGE AS \
         MESSAGE, DATEDIFF(MINUTE, LATEST_DATA_TIMESTAMP, CURRENT_TIMESTAMP()) AS AGE_MINUTES \
         FROM TABLE({database}.INFORMATION_SCHEMA.DYNAMIC_TABLES(RESULT_LIMIT => {DYNAMIC_TABLES_LIMIT})) \
         WHERE DATABASE_NAME = {}",
        literal(database.name())
    );
    let rows = client.query(&sql).await?;
    Ok(rows
        .iter()
        .map(|r| RefreshState {
            model: format!("{}.{}", text(r, "SCHEMA_NAME"), text(r, "NAME")),
            state: text(r, "STATE"),
            message: text(r, "MESSAGE"),
            age_minutes: text(r, "AGE_MINUTES").parse::<f64>().ok().map(|m| m as i64),
        })
        .collect())
}

impl DynamicTable {
    /// The graph address of model `schema.name`.
    pub fn address_of(id: &str) -> Address {
        Address::new("snowflake_dynamic_table", id)
    }

    fn short(checksum: &str) -> String {
        checksum.chars().take(12).collect()
    }

    async fn mark(&self, status: &str) -> Result<(), ResourceError> {
        let sql = format!(
            "UPDATE {} SET \"STATUS\" = ?, \"APPLIED_AT\" = CURRENT_TIMESTAMP() WHERE \"MODEL\" = ?",
            self.ledger
        );
        let result = self.client.query_with(&sql, &[status, self.id.as_str()]).await;
        result.map(drop).map_err(res_err(self.address(), "write the ledger"))
    }

    /// Removes the model's ledger row (before recording a new apply, and on delete).
    async fn forget(&self) -> Result<(), ResourceError> {
        let sql = format!("DELETE FROM {} WHERE \"MODEL\" = ?", self.ledger);
        let result = self.client.query_with(&sql, &[self.id.as_str()]).await;
        result.map(drop).map_err(res_err(self.address(), "write the ledger"))
    }

    async fn observed(&self) -> Result<Option<Observed>, ResourceError> {
        let sql = super::ledger::read_sql(&self.ledger.to_string());
        let rows = match self.client.query_with(&sql, &[self.id.as_str()]).await {
            Ok(rows) => rows,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(res_err(self.address(), "read the ledger")(e)),
        };
        let Some(row) = rows.first() else { return Ok(None) };
        let show = format!("SHOW TABLES LIKE {} IN SCHEMA {}", like(&self.table.name), self.table.schema_path());
        let exists = show_one(&self.client, &show, &self.table.name).await.map_err(res_err(self.address(), "read"))?;
        let fields = field_map([
            ("sql_checksum", Self::short(&text(row, "CHECKSUM"))),
            ("status", text(row, "STATUS")),
            ("table", if exists.is_some() { "exists" } else { "missing" }.to_string()),
        ]);
        Ok(Some(Observed { fields, outputs: Outputs::new() }))
    }
}

impl Resource for DynamicTable {
    fn address(&self) -> Address {
        Self::address_of(&self.id)
    }

    fn depends_on(&self) -> Vec<Address> {
        let mut on = vec![Schema::address_of(&self.table.schema), Table::address_of("model_ledger")];
        if self.reads_raw {
            on.push(Table::address_of("tweets_raw"));
        }
        on.extend(self.refs.iter().map(|r| Self::address_of(r)));
        on
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(self.observed())
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([
            ("sql_checksum", Self::short(&self.checksum)),
            ("status", "applied".to_string()),
            ("table", "exists".to_string()),
        ])
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &["sql_checksum", "table"]
    }

    fn replaces_in_place(&self) -> bool {
        true
    }

    /// EXPLAIN compiles the SELECT without running it, and needs no warehouse
    /// (https://docs.snowflake.com/en/sql-reference/sql/explain).
    fn check<'a>(&'a self, _: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
        Box::pin(async move {
            let explained = self.client.query(&format!("EXPLAIN {}", self.compile)).await;
            explained.map(drop).map_err(|e| ResourceError {
                address: self.address(),
                op: "compile".into(),
                kind: if e.is_connect() { ErrorKind::Connect } else { ErrorKind::Other },
                message: format!(
                    "{} does not compile on Snowflake (EXPLAIN): {}; fix the model, then run `flixops plan` again",
                    self.origin,
                    e.message()
                ),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        _: &'a Change,
        _: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            // Delete and insert rather than MERGE: plain statements every Snowflake tool (and
            // fakesnow) runs the same way; a crash between them leaves no row, which reads as "never
            // applied" and is re-applied, the same outcome as "applying".
            let record = format!(
                "INSERT INTO {} (\"MODEL\", \"CHECKSUM\", \"STATUS\", \"APPLIED_AT\") SELECT ?, ?, 'applying', \
                 CURRENT_TIMESTAMP()",
                self.ledger
            );
            self.forget().await?;
            let written = self.client.query_with(&record, &[self.id.as_str(), self.checksum.as_str()]).await;
            written.map_err(res_err(self.address(), "write the ledger"))?;
            if let Err(e) = self.client.execute(&self.ddl).await {
                let _ = self.mark("failed").await;
                return Err(res_err(self.address(), "create")(e));
            }
            self.mark("applied").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let statement = format!("DROP DYNAMIC TABLE IF EXISTS {}", self.table);
            run(&self.client, &statement, self.address(), "delete").await?;
            self.forget().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsSnowflakeTarget;

    #[test]
    fn target_lag_is_written_in_the_grammars_plural_units() {
        assert_eq!(lag("1 hour"), "'1 hours'");
        assert_eq!(lag("15 Minutes"), "'15 minutes'");
        assert_eq!(lag("2 days"), "'2 days'");
        assert_eq!(lag("downstream"), "DOWNSTREAM");
    }

    #[test]
    fn a_model_compiles_with_what_it_reads_inlined_and_the_raw_table_empty() {
        let target = AwsSnowflakeTarget::for_tests();
        let names = SnowNames::new("acme", "prod", &target).unwrap();
        let models = crate::models::discover(std::path::Path::new("/nonexistent/models")).unwrap();
        let dialect = crate::models::Dialect::Snowflake { database: "ACME".into() };
        let rendered = crate::models::render_all(&models, &dialect).unwrap();
        let daily = rendered.iter().find(|m| m.id == "marts.tweets_daily").unwrap();
        let sql = compile_sql(daily, &rendered, &names).unwrap();
        assert!(!sql.contains("\"STAGING\".\"STG_TWEETS\"") && !sql.contains("\"RAW\".\"TWEETS_RAW\""), "{sql}");
        assert!(sql.contains("QUALIFY ROW_NUMBER()"), "the staging SELECT is inlined: {sql}");
        assert!(sql.contains("(SELECT CAST(NULL AS VARIANT) AS \"RECORD\", "), "{sql}");
        assert!(sql.contains("CAST(NULL AS TIMESTAMP_TZ) AS \"LOADED_AT\" WHERE FALSE)"), "{sql}");
    }
}
