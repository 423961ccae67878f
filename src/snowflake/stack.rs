//! Every Snowflake resource of an environment, named from the config, wired to the AWS side
//! through [`Upstream`]: the integration's IAM user goes into the role trust, the pipe's queue
//! into the bucket notification.

use super::Client;
use super::ident::{BadIdent, Ident};
use super::integration::{Stage, StorageIntegration};
use super::names::SnowNames;
use super::objects::{Database, FileFormat, LEDGER_COLUMNS, RAW_COLUMNS, Schema, Table};
use super::pipe::{Drain, Pipe};
use crate::aws::stack::{Names, Upstream};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig};
use crate::models::Rendered;
use crate::plan::Resource;

/// The Snowflake resources, and where the AWS side finds their outputs. A storage integration that
/// does not exist yet gets `external_id` (a saved plan's), else a fresh random one.
pub fn upstream(
    client: &Client,
    config: &Config,
    env: &EnvConfig,
    target: &AwsSnowflakeTarget,
    account_id: &str,
    models: &[Rendered],
    external_id: Option<&str>,
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
        new_external_id: external_id.map_or_else(super::integration::fresh_external_id, str::to_string),
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
