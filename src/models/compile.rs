//! `flixops compile`: each model's SQL as the environment's warehouse runs it (dbt's `compile`),
//! rendered offline so a reviewer sees what `transform` or `deploy` will build.

use std::io::Write;

use serde::Serialize;

use super::{Dialect, ModelError, Rendered};
use crate::config::{Config, EnvConfig, Target};

/// The rendered models, in build order.
#[derive(Debug, Clone, Serialize)]
pub struct Compiled {
    /// `duckdb` (local) or `snowflake`.
    pub dialect: &'static str,
    /// Each model.
    pub models: Vec<CompiledModel>,
}

/// One rendered model.
#[derive(Debug, Clone, Serialize)]
pub struct CompiledModel {
    /// `schema.name`.
    pub model: String,
    /// The file it came from.
    pub origin: String,
    /// Models it reads.
    pub refs: Vec<String>,
    /// SHA-256 of `sql`, as the ledger records it.
    pub checksum: String,
    /// The SELECT.
    pub sql: String,
}

/// Renders the project's models for `env`'s warehouse; `only` picks models by `schema.name`
/// (empty: all). An unknown name is an error listing the models.
pub fn compile(config: &Config, env: &EnvConfig, only: &[String]) -> Result<Compiled, ModelError> {
    let (dialect, name) = match &env.target {
        Target::Local(_) => (Dialect::DuckDb, "duckdb"),
        Target::AwsSnowflake(cloud) => {
            (Dialect::Snowflake { database: cloud.database.to_ascii_uppercase() }, "snowflake")
        }
    };
    let rendered = super::render_all(&super::discover(&config.root.join("models"))?, &dialect)?;
    if let Some(unknown) = only.iter().find(|id| !rendered.iter().any(|r| &r.id == *id)) {
        let known = rendered.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ModelError::NoSuchModel { name: unknown.clone(), known });
    }
    let picked = rendered.into_iter().filter(|r| only.is_empty() || only.contains(&r.id));
    Ok(Compiled { dialect: name, models: picked.map(CompiledModel::from).collect() })
}

impl From<Rendered> for CompiledModel {
    fn from(r: Rendered) -> Self {
        Self { model: r.id, origin: r.origin, refs: r.refs, checksum: r.checksum, sql: r.sql }
    }
}

impl crate::output::Render for Compiled {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        for (index, m) in self.models.iter().enumerate() {
            if index > 0 {
                writeln!(w)?;
            }
            writeln!(w, "-- {} ({}, {})", m.model, m.origin, self.dialect)?;
            writeln!(w, "{}", m.sql.trim_end())?;
        }
        Ok(())
    }

    fn is_result(&self) -> bool {
        true
    }
}
