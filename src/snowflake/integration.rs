//! The storage integration (Snowflake's identity in the bucket) and the external stage on the
//! tweets prefix. The integration is created once and altered after — never `CREATE OR REPLACE`,
//! which would mint a new external ID and break the IAM trust. Its external ID is random, chosen by
//! flixops on the first deploy (so one deploy gets the role's trust right and nobody else in the
//! account can guess it), then read back from `DESC INTEGRATION` and never changed.

use futures::future::BoxFuture;

use super::client::Row;
use super::ident::{Ident, Qualified, like, literal};
use super::objects::{FileFormat, Schema};
use super::{Client, res_err, run, show_one, text};
use crate::plan::{
    Action, Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, diff_fields, field_map,
};

/// `CREATE STORAGE INTEGRATION` for the lake.
pub struct StorageIntegration {
    /// Session.
    pub client: Client,
    /// Account-level name.
    pub name: Ident,
    /// The IAM role Snowflake assumes (its ARN is computed, so no dependency on the role).
    pub role_arn: String,
    /// `s3://bucket/prefix/tweets/`.
    pub location: String,
    /// The `sts:ExternalId` a new integration gets ([`fresh_external_id`]); an existing one keeps its own.
    pub new_external_id: String,
}

/// A new external ID: `flixops-` and 128 random bits in hex, from the OS's random source (std's
/// `RandomState` keys come from it too, the fallback where /dev/urandom cannot be read).
pub fn fresh_external_id() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let hash = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), i);
            chunk.copy_from_slice(&hash.to_le_bytes());
        }
    }
    format!("flixops-{}", hex::encode(bytes))
}

/// The external ID an existing integration has (empty: none read).
fn kept_external_id(observed: Option<&Observed>) -> Option<&str> {
    observed.and_then(|o| o.fields.get("storage_aws_external_id")).map(String::as_str).filter(|id| !id.is_empty())
}

impl StorageIntegration {
    /// The graph address (the IAM role reads `iam_user_arn` from it).
    pub fn address() -> Address {
        Address::new("snowflake_storage_integration", "lake")
    }

    /// The AWS part of the grammar (`cloudProviderParams`): the role ARN, then the external ID
    /// with it. ALTER takes them only together, the ID as an option of the ARN
    /// (https://docs.snowflake.com/en/sql-reference/sql/alter-storage-integration).
    fn aws_params(&self, external_id: &str) -> String {
        format!("STORAGE_AWS_ROLE_ARN = {} STORAGE_AWS_EXTERNAL_ID = {}", literal(&self.role_arn), literal(external_id))
    }

    fn enabled(&self) -> &'static str {
        "ENABLED = TRUE"
    }

    fn locations(&self) -> String {
        format!("STORAGE_ALLOWED_LOCATIONS = ({})", literal(&self.location))
    }

    /// `CREATE … IF NOT EXISTS` in the documented order
    /// (https://docs.snowflake.com/en/sql-reference/sql/create-storage-integration).
    fn create_statement(&self) -> String {
        format!(
            "CREATE STORAGE INTEGRATION IF NOT EXISTS {} TYPE = EXTERNAL_STAGE STORAGE_PROVIDER = 'S3' {} {} {}",
            self.name,
            self.aws_params(&self.new_external_id),
            self.enabled(),
            self.locations()
        )
    }

    /// `ALTER … SET` of what drifted; a changed role ARN sends the external ID the integration has.
    fn alter_statement(&self, change: &Change, external_id: &str) -> String {
        let mut set = Vec::new();
        if change.touches("storage_aws_role_arn") || change.touches("storage_aws_external_id") {
            set.push(self.aws_params(external_id));
        }
        if change.touches("enabled") {
            set.push(self.enabled().to_string());
        }
        if change.touches("storage_allowed_locations") {
            set.push(self.locations());
        }
        format!("ALTER STORAGE INTEGRATION {} SET {}", self.name, set.join(" "))
    }

    async fn describe(&self) -> Result<Option<Observed>, ResourceError> {
        let sql = format!("DESC STORAGE INTEGRATION {}", self.name);
        let rows = match self.client.query(&sql).await {
            Ok(rows) => rows,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(res_err(Self::address(), "read")(e)),
        };
        let property = |key: &str| property(&rows, key);
        let fields = field_map([
            ("enabled", property("ENABLED").to_ascii_uppercase()),
            ("storage_aws_role_arn", property("STORAGE_AWS_ROLE_ARN")),
            ("storage_allowed_locations", property("STORAGE_ALLOWED_LOCATIONS")),
            ("storage_aws_external_id", property("STORAGE_AWS_EXTERNAL_ID")),
        ]);
        let outputs = [
            ("iam_user_arn".to_string(), property("STORAGE_AWS_IAM_USER_ARN")),
            ("external_id".to_string(), property("STORAGE_AWS_EXTERNAL_ID")),
        ];
        Ok(Some(Observed { fields, outputs: outputs.into() }))
    }
}

fn property(rows: &[Row], key: &str) -> String {
    rows.iter().find(|r| text(r, "property") == key).map(|r| text(r, "property_value")).unwrap_or_default()
}

impl Resource for StorageIntegration {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(self.describe())
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([
            ("enabled", "TRUE".to_string()),
            ("storage_aws_role_arn", self.role_arn.clone()),
            ("storage_allowed_locations", self.location.clone()),
            ("storage_aws_external_id", self.new_external_id.clone()),
        ])
    }

    /// As any resource, except that an existing external ID is the wanted one: changing it would
    /// break every trust that names it.
    fn diff(&self, observed: Option<&Observed>, inputs: &Inputs) -> Change {
        let mut desired = self.desired(inputs);
        if let Some(kept) = kept_external_id(observed) {
            desired.insert("storage_aws_external_id".into(), kept.to_string());
        }
        diff_fields(&desired, observed, self.replace_on())
    }

    fn planned_outputs(&self) -> Outputs {
        [("external_id".to_string(), self.new_external_id.clone())].into()
    }

    /// Only ACCOUNTADMIN may create integrations unless granted CREATE INTEGRATION
    /// (https://docs.snowflake.com/en/sql-reference/sql/create-storage-integration#access-control-requirements):
    /// `plan` says so before `deploy` has created the bucket and role half-way. When the grants
    /// cannot be read, the create itself is left to answer.
    fn check<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
        Box::pin(async move {
            if change.action != Action::Create {
                return Ok(());
            }
            match super::grants::cannot_create_integration(&self.client, &self.name).await {
                Ok(Some(why)) => Err(ResourceError {
                    address: Self::address(),
                    op: "check".into(),
                    message: why,
                    kind: crate::plan::ErrorKind::Other,
                }),
                Ok(None) | Err(_) => Ok(()),
            }
        })
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let sql = match observed {
                None => self.create_statement(),
                Some(_) => self.alter_statement(change, kept_external_id(observed).unwrap_or(&self.new_external_id)),
            };
            run(&self.client, &sql, Self::address(), "apply").await?;
            let now = self.describe().await?.unwrap_or_default();
            Ok(now.outputs)
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP STORAGE INTEGRATION IF EXISTS {}", self.name);
            run(&self.client, &sql, Self::address(), "delete").await
        })
    }
}

/// The external stage on the tweets prefix, through the integration.
pub struct Stage {
    /// Session.
    pub client: Client,
    /// Its qualified name.
    pub name: Qualified,
    /// `s3://bucket/prefix/tweets/`.
    pub url: String,
    /// The integration it reads through.
    pub integration: Ident,
    /// The file format it defaults to.
    pub format: Qualified,
}

/// The files of one path of a stage, listed through its integration (LIST reads the bucket with the
/// integration's role, <https://docs.snowflake.com/en/sql-reference/sql/list>): a partition of a
/// day, so it never lists every file ever loaded.
pub async fn list(client: &Client, stage: &Qualified, path: &str) -> Result<usize, super::SnowflakeError> {
    let sql = format!("LIST '@{stage}/{}'", path.replace('\'', "''"));
    Ok(client.query(&sql).await?.len())
}

impl Stage {
    /// The graph address.
    pub fn address() -> Address {
        Address::new("snowflake_stage", "tweets")
    }
}

impl Resource for Stage {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Schema::address_of(&self.name.schema), StorageIntegration::address(), FileFormat::address()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let sql = format!("SHOW STAGES LIKE {} IN SCHEMA {}", like(&self.name.name), self.name.schema_path());
            let row = show_one(&self.client, &sql, &self.name.name).await.map_err(res_err(Self::address(), "read"))?;
            Ok(row.map(|r| Observed {
                fields: field_map([("url", text(&r, "url")), ("storage_integration", text(&r, "storage_integration"))]),
                outputs: Outputs::new(),
            }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([("url", self.url.clone()), ("storage_integration", self.integration.name().to_string())])
    }

    fn apply<'a>(
        &'a self,
        _: &'a Change,
        observed: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            // For S3 the grammar's externalStageParams start with URL, so ALTER always sends it; the
            // same URL again leaves the stage's pipes running
            // (https://docs.snowflake.com/en/sql-reference/sql/alter-stage).
            let settings = format!("URL = {} STORAGE_INTEGRATION = {}", literal(&self.url), self.integration);
            let sql = match observed {
                None => format!(
                    "CREATE STAGE IF NOT EXISTS {} {settings} FILE_FORMAT = (FORMAT_NAME = {})",
                    self.name,
                    literal(&self.format.plain())
                ),
                Some(_) => format!("ALTER STAGE {} SET {settings}", self.name),
            };
            run(&self.client, &sql, Self::address(), "apply").await?;
            Ok(Outputs::new())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let sql = format!("DROP STAGE IF EXISTS {}", self.name);
            run(&self.client, &sql, Self::address(), "delete").await
        })
    }
}
