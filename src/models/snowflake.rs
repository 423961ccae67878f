//! Models on Snowflake: each one a dynamic table (Snowflake refreshes it within TARGET_LAG), applied
//! only when its rendered DDL changed. The ledger row is written before the DDL ("applying") and
//! after it ("applied"), as sqlx does on MySQL, so an interrupted deploy is seen and finished by the
//! next one.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::Rendered;
use crate::plan::{Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};
use crate::snowflake::ident::{BadIdent, Ident, Qualified, like, literal};
use crate::snowflake::objects::{Schema, Table};
use crate::snowflake::stack::SnowNames;
use crate::snowflake::{Client, res_err, run, show_one, text};

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

/// `DOWNSTREAM` stays a keyword; a duration is a string literal.
fn lag(target_lag: &str) -> String {
    if target_lag.eq_ignore_ascii_case("downstream") { "DOWNSTREAM".to_string() } else { literal(target_lag) }
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
        let sql = format!("SELECT \"CHECKSUM\", \"STATUS\" FROM {} WHERE \"MODEL\" = ?", self.ledger);
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
