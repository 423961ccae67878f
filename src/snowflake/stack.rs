//! Every Snowflake resource of an environment, named from the config, wired to the AWS side
//! through [`Upstream`]: the integration's IAM user goes into the role trust, the pipe's queue
//! into the bucket notification.

use super::Client;
use super::ident::{BadIdent, Ident, Qualified};
use super::integration::{Stage, StorageIntegration};
use super::objects::{Database, FileFormat, LEDGER_COLUMNS, RAW_COLUMNS, Schema, Table};
use super::pipe::{Drain, Pipe};
use crate::aws::stack::{Names, Upstream};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig};
use crate::models::Rendered;
use crate::plan::Resource;

/// The names of the Snowflake objects of one environment.
#[derive(Debug, Clone)]
pub struct SnowNames {
    /// Database.
    pub database: Ident,
    /// Raw schema (stage, format, table, pipe).
    pub raw: Ident,
    /// Ops schema (the model ledger).
    pub ops: Ident,
    /// Account-level integration name: `{PROJECT}_{ENV}_LAKE`.
    pub integration: Ident,
    /// File format.
    pub format: Qualified,
    /// Stage.
    pub stage: Qualified,
    /// Raw table.
    pub table: Qualified,
    /// Pipe.
    pub pipe: Qualified,
    /// The model ledger.
    pub ledger: Qualified,
    /// The warehouse dynamic tables refresh on.
    pub warehouse: Ident,
}

impl SnowNames {
    /// Derives every name; config validation already checked database and warehouse.
    pub fn new(project: &str, env: &str, target: &AwsSnowflakeTarget) -> Result<Self, BadIdent> {
        let database = Ident::new(&target.database)?;
        let raw = Ident::new("raw")?;
        let ops = Ident::new("ops")?;
        let in_raw = |name: &str| Ident::new(name).map(|n| Qualified::new(&database, &raw, &n));
        let integration = format!("{}_{}_lake", project, env).replace('-', "_");
        Ok(Self {
            integration: Ident::new(&integration)?,
            format: in_raw("parquet_format")?,
            stage: in_raw("tweets_stage")?,
            table: in_raw("tweets_raw")?,
            pipe: in_raw("tweets_pipe")?,
            ledger: Qualified::new(&database, &ops, &Ident::new("model_ledger")?),
            warehouse: Ident::new(&target.warehouse)?,
            raw,
            ops,
            database,
        })
    }
}

/// The Snowflake resources, and where the AWS side finds their outputs.
pub fn upstream(
    client: &Client,
    config: &Config,
    env: &EnvConfig,
    target: &AwsSnowflakeTarget,
    account_id: &str,
    models: &[Rendered],
) -> Result<Upstream, BadIdent> {
    let n = SnowNames::new(&config.project, &env.name, target)?;
    let aws = Names::new(&config.project, &env.name, &target.bucket);
    let c = || client.clone();
    let mut resources: Vec<Box<dyn Resource>> = vec![Box::new(Database { client: c(), name: n.database.clone() })];
    let mut schemas = vec![n.raw.clone(), n.ops.clone()];
    for model in models {
        let schema = Ident::new(&model.schema)?;
        if !schemas.contains(&schema) {
            schemas.push(schema);
        }
    }
    for schema in schemas {
        resources.push(Box::new(Schema { client: c(), database: n.database.clone(), name: schema }));
    }
    let location = format!("s3://{}/{}/tweets/", target.bucket, env.prefix);
    resources.push(Box::new(FileFormat { client: c(), name: n.format.clone() }));
    resources.push(Box::new(StorageIntegration {
        client: c(),
        name: n.integration.clone(),
        role_arn: format!("arn:aws:iam::{account_id}:role/{}", aws.snowflake_role),
        location: location.clone(),
        new_external_id: super::integration::fresh_external_id(),
    }));
    resources.push(Box::new(Stage {
        client: c(),
        name: n.stage.clone(),
        url: location,
        integration: n.integration.clone(),
        format: n.format.clone(),
    }));
    resources.push(Box::new(Table { client: c(), key: "tweets_raw", name: n.table.clone(), columns: RAW_COLUMNS }));
    resources.push(Box::new(Table {
        client: c(),
        key: "model_ledger",
        name: n.ledger.clone(),
        columns: LEDGER_COLUMNS,
    }));
    resources.push(Box::new(Pipe {
        client: c(),
        name: n.pipe.clone(),
        table: n.table.clone(),
        stage: n.stage.clone(),
        format: n.format.clone(),
        trust_from: crate::plan::Address::new("aws_iam_role", "snowflake"),
        propagation: crate::aws::Propagation::from_secs(target.iam_propagation_secs),
        drain: Drain::default(),
    }));
    resources.extend(crate::models::snowflake::resources(client, &n, &target.target_lag, models)?);
    Ok(Upstream { integration: Some(StorageIntegration::address()), pipe: Some(Pipe::address()), resources })
}
