//! The data bucket (public access blocked, SSE-S3 default encryption, owner-enforced object
//! ownership, versioning with old `_state/` versions expiring, TLS-only policy, tags)
//! and its notification to Snowpipe's queue, merged into whatever notifications already exist; a
//! rule of someone else's that overlaps ours stops the deploy before S3 would refuse the write.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ExpirationStatus, FilterRule, FilterRuleName, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    NotificationConfiguration, NotificationConfigurationFilter, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, QueueConfiguration, S3KeyFilter, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;
use serde_json::json;

use super::{Tags, failure, policy, tags_field};
use crate::plan::{
    Action, Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map,
};

/// Sid of the bucket policy statement flixops owns; other statements are left alone.
const TLS_SID: &str = "DenyInsecureTransport";
const ALL_BLOCKED: &str = "all four settings on";
/// The default encryption flixops sets: SSE-S3, which Snowflake's role reads without a KMS grant.
const SSE_ALGORITHM: &str = "AES256";
/// Object ownership: ACLs disabled, the bucket owner owns every object
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html>).
const OWNERSHIP: &str = "BucketOwnerEnforced";
/// Days a replaced version of a `_state/` object (checkpoint, lease: rewritten every run) is kept.
pub const STATE_NONCURRENT_DAYS: i32 = 7;

/// The data bucket.
pub struct Bucket {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Bucket name.
    pub name: String,
    /// Region to create it in.
    pub region: String,
    /// Tags.
    pub tags: Tags,
    /// `destroy --purge-data`: delete every object version before the bucket.
    pub purge_data: bool,
    /// `{prefix}/_state/`: where the lifecycle rule expires replaced versions.
    pub state_prefix: String,
    /// Id of that lifecycle rule (one per environment: environments may share a bucket).
    pub lifecycle_id: String,
}

impl Bucket {
    /// `aws_s3_bucket.lake`.
    pub fn address() -> Address {
        Address::new("aws_s3_bucket", "lake")
    }

    fn err<E>(
        &self,
        op: &str,
        e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failure(&Self::address(), op, e)
    }

    fn tls_statement(&self) -> serde_json::Value {
        let doc: serde_json::Value =
            serde_json::from_str(&policy::render("bucket-tls-only", &json!({ "bucket": self.name })))
                .unwrap_or_default();
        doc["Statement"][0].clone()
    }

    /// The bucket's region when it exists and this identity may see it (S3 answers it in
    /// `x-amz-bucket-region`), else None.
    async fn region(&self) -> Result<Option<String>, ResourceError> {
        match self.s3.head_bucket().bucket(&self.name).send().await {
            Ok(out) => Ok(Some(out.bucket_region.unwrap_or_else(|| self.region.clone()))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            // Not ours to read: planned as a create, which `check` then refuses with the reason.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(None),
            Err(e) => Err(self.err("read", &e)),
        }
    }

    async fn read_fields(&self) -> Result<Fields, ResourceError> {
        let s3 = &self.s3;
        let b = &self.name;
        let (pab, enc, ver, pol, tags, own, life) = tokio::join!(
            s3.get_public_access_block().bucket(b).send(),
            s3.get_bucket_encryption().bucket(b).send(),
            s3.get_bucket_versioning().bucket(b).send(),
            s3.get_bucket_policy().bucket(b).send(),
            s3.get_bucket_tagging().bucket(b).send(),
            s3.get_bucket_ownership_controls().bucket(b).send(),
            self.lifecycle_rules(),
        );
        let mut f = Fields::new();
        let pab = match pab {
            Ok(out) => out.public_access_block_configuration.map(|c| describe_block(&c)).unwrap_or("none".into()),
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => "none".into(),
            Err(e) => return Err(self.err("read public access block", &e)),
        };
        f.insert("public_access_block".into(), pab);
        let enc = match enc {
            Ok(out) => out
                .server_side_encryption_configuration
                .and_then(|c| c.rules.into_iter().next())
                .and_then(|r| r.apply_server_side_encryption_by_default)
                .map(|d| d.sse_algorithm.as_str().to_string())
                .unwrap_or("disabled".into()),
            Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => "disabled".into(),
            Err(e) => return Err(self.err("read encryption", &e)),
        };
        f.insert("default_encryption".into(), enc);
        let own = match own {
            Ok(out) => out
                .ownership_controls
                .and_then(|c| c.rules.into_iter().next())
                .map(|r| r.object_ownership.as_str().to_string())
                .unwrap_or("none".into()),
            Err(e) if e.code() == Some("OwnershipControlsNotFoundError") => "none".into(),
            Err(e) => return Err(self.err("read ownership controls", &e)),
        };
        f.insert("object_ownership".into(), own);
        let ours = life?.into_iter().find(|r| r.id() == Some(self.lifecycle_id.as_str()));
        f.insert("state_versions".into(), ours.map_or("none".into(), |r| describe_lifecycle(&r)));
        let ver = ver.map_err(|e| self.err("read versioning", &e))?;
        f.insert("versioning".into(), ver.status.map(|s| s.as_str().to_string()).unwrap_or("Disabled".into()));
        let pol = match pol {
            Ok(out) => our_statement(out.policy.as_deref().unwrap_or("{}")),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => "none".into(),
            Err(e) => return Err(self.err("read policy", &e)),
        };
        f.insert("tls_only_policy".into(), pol);
        let tags = match tags {
            Ok(out) => out.tag_set.into_iter().map(|t| (t.key, t.value)).collect(),
            Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
            Err(e) => return Err(self.err("read tags", &e)),
        };
        f.insert("tags".into(), tags_field(tags.into_iter(), &self.tags.pairs()));
        Ok(f)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let mut create = self.s3.create_bucket().bucket(&self.name);
        if self.region != "us-east-1" {
            let constraint = BucketLocationConstraint::from(self.region.as_str());
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(constraint).build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyExists") => Err(ResourceError {
                address: Self::address(),
                op: "create".into(),
                message: format!("bucket name `{}` is taken (names are global): set another `bucket`", self.name),
                kind: ErrorKind::Other,
            }),
            Err(e) => Err(self.err("create", &e)),
        }
    }

    async fn put_field(&self, field: &str) -> Result<(), ResourceError> {
        let s3 = &self.s3;
        let b = &self.name;
        match field {
            "public_access_block" => {
                let all = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                s3.put_public_access_block()
                    .bucket(b)
                    .public_access_block_configuration(all)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| self.err("put public access block", &e))
            }
            "default_encryption" => {
                let default = ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(|e| self.invalid(e))?;
                let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
                let config =
                    ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| self.invalid(e))?;
                s3.put_bucket_encryption()
                    .bucket(b)
                    .server_side_encryption_configuration(config)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| self.err("put encryption", &e))
            }
            "versioning" => {
                let on = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
                s3.put_bucket_versioning()
                    .bucket(b)
                    .versioning_configuration(on)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| self.err("put versioning", &e))
            }
            "object_ownership" => {
                let rule = OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::from(OWNERSHIP))
                    .build()
                    .map_err(|e| self.invalid(e))?;
                let controls = OwnershipControls::builder().rules(rule).build().map_err(|e| self.invalid(e))?;
                s3.put_bucket_ownership_controls()
                    .bucket(b)
                    .ownership_controls(controls)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| self.err("put ownership controls", &e))
            }
            "state_versions" => self.put_lifecycle().await,
            "tags" => self.put_tags().await,
            "tls_only_policy" => self.put_policy().await,
            _ => Ok(()),
        }
    }

    /// The bucket's lifecycle rules (none when it has no configuration).
    async fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>, ResourceError> {
        match self.s3.get_bucket_lifecycle_configuration().bucket(&self.name).send().await {
            Ok(out) => Ok(out.rules.unwrap_or_default()),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
            Err(e) => Err(self.err("read lifecycle", &e)),
        }
    }

    /// Our rule: replaced versions of `_state/` objects expire after [`STATE_NONCURRENT_DAYS`].
    fn lifecycle_rule(&self) -> Result<LifecycleRule, ResourceError> {
        let expire = NoncurrentVersionExpiration::builder().noncurrent_days(STATE_NONCURRENT_DAYS).build();
        LifecycleRule::builder()
            .id(&self.lifecycle_id)
            .filter(LifecycleRuleFilter::builder().prefix(&self.state_prefix).build())
            .status(ExpirationStatus::Enabled)
            .noncurrent_version_expiration(expire)
            .build()
            .map_err(|e| self.invalid(e))
    }

    /// Writes our lifecycle rule, keeping every other rule of the bucket (S3 replaces the whole
    /// configuration on each write).
    async fn put_lifecycle(&self) -> Result<(), ResourceError> {
        let mut rules: Vec<LifecycleRule> = self.lifecycle_rules().await?;
        rules.retain(|r| r.id() != Some(self.lifecycle_id.as_str()));
        rules.push(self.lifecycle_rule()?);
        let config =
            BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(|e| self.invalid(e))?;
        let put = self.s3.put_bucket_lifecycle_configuration().bucket(&self.name).lifecycle_configuration(config);
        put.send().await.map(drop).map_err(|e| self.err("put lifecycle", &e))
    }

    /// The plan's form of our lifecycle rule.
    fn lifecycle_field(&self) -> String {
        self.lifecycle_rule().map(|r| describe_lifecycle(&r)).unwrap_or_default()
    }

    /// Sets our tags, keeping everyone else's.
    async fn put_tags(&self) -> Result<(), ResourceError> {
        let existing = match self.s3.get_bucket_tagging().bucket(&self.name).send().await {
            Ok(out) => out.tag_set,
            Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
            Err(e) => return Err(self.err("read tags", &e)),
        };
        let ours = self.tags.pairs();
        let mut set: Vec<Tag> = existing.into_iter().filter(|t| !ours.iter().any(|(k, _)| *k == t.key)).collect();
        for (k, v) in ours {
            set.push(Tag::builder().key(k).value(v).build().map_err(|e| self.invalid(e))?);
        }
        let tagging = Tagging::builder().set_tag_set(Some(set)).build().map_err(|e| self.invalid(e))?;
        self.s3
            .put_bucket_tagging()
            .bucket(&self.name)
            .tagging(tagging)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err("put tags", &e))
    }

    /// Puts the TLS-only statement into the bucket policy, keeping the other statements.
    async fn put_policy(&self) -> Result<(), ResourceError> {
        let existing = match self.s3.get_bucket_policy().bucket(&self.name).send().await {
            Ok(out) => out.policy.unwrap_or_default(),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => String::new(),
            Err(e) => return Err(self.err("read policy", &e)),
        };
        let mut doc: serde_json::Value =
            serde_json::from_str(&existing).unwrap_or_else(|_| json!({ "Version": "2012-10-17", "Statement": [] }));
        let mut statements: Vec<serde_json::Value> = match doc.get("Statement") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(single) => vec![single.clone()],
            None => Vec::new(),
        };
        statements.retain(|s| s.get("Sid").and_then(|v| v.as_str()) != Some(TLS_SID));
        statements.push(self.tls_statement());
        doc["Statement"] = serde_json::Value::Array(statements);
        self.s3.put_bucket_policy().bucket(&self.name).policy(doc.to_string()).send().await.map(drop).map_err(|e| {
            let mut err = self.err("put policy", &e);
            if matches!(e.code(), Some("AccessDenied" | "AccessDeniedException")) {
                err.message = format!(
                    "AccessDenied: the CI deployer role may not change bucket policies (that would let it grant \
                     itself the data); run `flixops deploy` once as an administrator to set the TLS-only policy"
                );
            }
            err
        })
    }

    /// Deletes every object version and delete marker, after flixops' own bucket policy (the bucket
    /// is going away, and a deny-by-condition must not stand in the way of emptying it).
    async fn empty(&self) -> Result<(), ResourceError> {
        match self.s3.delete_bucket_policy().bucket(&self.name).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => {}
            Err(e) => return Err(self.err("delete policy", &e)),
        }
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .s3
                .list_object_versions()
                .bucket(&self.name)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| self.purge_failed(self.err("list object versions", &e)))?;
            let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
            let markers = page.delete_markers().iter().map(|m| (m.key(), m.version_id()));
            let objects = versions
                .chain(markers)
                .filter_map(|(key, version)| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(key?)
                        .set_version_id(version.map(str::to_string))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            if !objects.is_empty() {
                let delete = aws_sdk_s3::types::Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| self.invalid(e))?;
                let out = self
                    .s3
                    .delete_objects()
                    .bucket(&self.name)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| self.purge_failed(self.err("delete objects", &e)))?;
                if let Some(first) = out.errors().first() {
                    return Err(self.purge_failed(ResourceError {
                        address: Self::address(),
                        op: "delete objects".into(),
                        message: format!(
                            "{} object(s) not deleted, e.g. {}: {}",
                            out.errors().len(),
                            first.key().unwrap_or("?"),
                            first.message().unwrap_or("?")
                        ),
                        kind: ErrorKind::Other,
                    }));
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(());
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
    }

    /// Says what emptying already did: the TLS-only policy is gone until the purge finishes.
    fn purge_failed(&self, mut err: ResourceError) -> ResourceError {
        err.message.push_str(
            "; the TLS-only bucket policy was already removed: run `flixops destroy --purge-data` again to finish, \
             or `flixops deploy` to restore the policy",
        );
        err
    }

    fn invalid(&self, e: aws_smithy_types::error::operation::BuildError) -> ResourceError {
        ResourceError {
            address: Self::address(),
            op: "build request".into(),
            message: e.to_string(),
            kind: ErrorKind::Other,
        }
    }
}

/// The canonical form of flixops' TLS-only statement inside a bucket policy, or `none`.
fn our_statement(policy_text: &str) -> String {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy_text) else { return "none".into() };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Null => Vec::new(),
        single => vec![single.clone()],
    };
    statements
        .into_iter()
        .find(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(TLS_SID))
        .and_then(|s| policy::canonical(&s.to_string()).ok())
        .unwrap_or_else(|| "none".into())
}

/// `prefix=… noncurrent_days=N status=Enabled`: what a lifecycle rule does, comparable.
fn describe_lifecycle(rule: &LifecycleRule) -> String {
    let prefix = rule.filter().and_then(|f| f.prefix()).unwrap_or("");
    let days = rule.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()).unwrap_or(0);
    format!("prefix={prefix} noncurrent_days={days} status={}", rule.status().as_str())
}

fn describe_block(c: &PublicAccessBlockConfiguration) -> String {
    let settings = [
        ("block_public_acls", c.block_public_acls),
        ("ignore_public_acls", c.ignore_public_acls),
        ("block_public_policy", c.block_public_policy),
        ("restrict_public_buckets", c.restrict_public_buckets),
    ];
    if settings.iter().all(|(_, on)| *on == Some(true)) {
        return ALL_BLOCKED.into();
    }
    settings.iter().map(|(k, on)| format!("{k}={}", on.unwrap_or(false))).collect::<Vec<_>>().join(",")
}

impl Resource for Bucket {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let Some(region) = self.region().await? else { return Ok(None) };
            let mut fields = self.read_fields().await?;
            fields.insert("name".into(), self.name.clone());
            let mut outputs = self.planned_outputs();
            outputs.insert("region".into(), region);
            Ok(Some(Observed { fields, outputs }))
        })
    }

    /// A bucket name is global: before a create, a 403 on HeadBucket means another account holds
    /// the name (or this identity lacks s3:ListBucket), so `plan` says so instead of `deploy`
    /// stopping at CreateBucket.
    fn check<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
        Box::pin(async move {
            if change.action != Action::Create {
                return Ok(());
            }
            match self.s3.head_bucket().bucket(&self.name).send().await {
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Err(ResourceError {
                    address: Self::address(),
                    op: "check".into(),
                    message: format!(
                        "cannot create bucket `{}`: HeadBucket answers 403, so another account holds that name \
                         (bucket names are global: choose another `bucket` in flixops.toml) or this identity \
                         lacks s3:ListBucket on it",
                        self.name
                    ),
                    kind: ErrorKind::Other,
                }),
                _ => Ok(()),
            }
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        let tls = policy::canonical(&self.tls_statement().to_string()).unwrap_or_default();
        field_map([
            ("name", self.name.clone()),
            ("public_access_block", ALL_BLOCKED.to_string()),
            ("default_encryption", SSE_ALGORITHM.to_string()),
            ("object_ownership", OWNERSHIP.to_string()),
            ("versioning", "Enabled".to_string()),
            ("state_versions", self.lifecycle_field()),
            ("tls_only_policy", tls),
            ("tags", self.tags.field()),
        ])
    }

    fn planned_outputs(&self) -> Outputs {
        [
            ("name".to_string(), self.name.clone()),
            ("arn".to_string(), format!("arn:aws:s3:::{}", self.name)),
            ("region".to_string(), self.region.clone()),
        ]
        .into()
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        _inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            if observed.is_none() {
                self.create().await?;
            }
            // The TLS-only policy goes last: it is the one setting that can lock a caller out.
            let fields = [
                "public_access_block",
                "object_ownership",
                "default_encryption",
                "versioning",
                "state_versions",
                "tags",
                "tls_only_policy",
            ];
            for field in fields {
                if change.touches(field) {
                    self.put_field(field).await?;
                }
            }
            let mut outputs = self.planned_outputs();
            outputs.extend(observed.map(|o| o.outputs.clone()).unwrap_or_default());
            Ok(outputs)
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            if self.purge_data {
                self.empty().await?;
            }
            self.s3.delete_bucket().bucket(&self.name).send().await.map(drop).map_err(|e| match e.code() {
                Some("BucketNotEmpty") => ResourceError {
                    address: Self::address(),
                    op: "delete".into(),
                    message: format!(
                        "bucket `{}` still holds data; pass --purge-data to delete it with everything in it",
                        self.name
                    ),
                    kind: ErrorKind::Other,
                },
                _ => self.err("delete", &e),
            })
        })
    }
}

/// The bucket's event notification to Snowpipe's SQS queue (`notification_channel` of the pipe).
pub struct Notification {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Bucket name.
    pub bucket: String,
    /// Rule id, unique per environment so two environments can share a bucket.
    pub id: String,
    /// Key prefix of the tweet files (`{prefix}/tweets/`).
    pub key_prefix: String,
    /// The resource whose `notification_channel` output is the queue ARN.
    pub channel_from: Address,
}

impl Notification {
    /// `aws_s3_bucket_notification.snowpipe`.
    pub fn address() -> Address {
        Address::new("aws_s3_bucket_notification", "snowpipe")
    }

    fn rule(&self, queue: &str) -> String {
        format!("queue={queue} events=s3:ObjectCreated:* prefix={}", self.key_prefix)
    }

    async fn current(&self) -> Result<Option<NotificationConfiguration>, ResourceError> {
        match self.s3.get_bucket_notification_configuration().bucket(&self.bucket).send().await {
            Ok(out) => Ok(Some(
                NotificationConfiguration::builder()
                    .set_topic_configurations(out.topic_configurations)
                    .set_queue_configurations(out.queue_configurations)
                    .set_lambda_function_configurations(out.lambda_function_configurations)
                    .set_event_bridge_configuration(out.event_bridge_configuration)
                    .build(),
            )),
            Err(e) if e.code() == Some("NoSuchBucket") => Ok(None),
            Err(e) => Err(failure(&Self::address(), "read", &e)),
        }
    }

    /// Writes the configuration with our rule replaced by `ours` (None: removed); others untouched.
    /// Our rule is written only when no other overlaps it, and read back after.
    async fn write(&self, ours: Option<QueueConfiguration>) -> Result<(), ResourceError> {
        let current = self.current().await?.unwrap_or_else(|| NotificationConfiguration::builder().build());
        if ours.is_some() {
            self.refuse_overlap(&current)?;
        }
        let wanted = ours.as_ref().map(|q| q.queue_arn().to_string());
        let mut queues: Vec<QueueConfiguration> = current
            .queue_configurations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|q| q.id() != Some(self.id.as_str()))
            .collect();
        queues.extend(ours);
        let merged = NotificationConfiguration::builder()
            .set_topic_configurations(current.topic_configurations)
            .set_queue_configurations(Some(queues))
            .set_lambda_function_configurations(current.lambda_function_configurations)
            .set_event_bridge_configuration(current.event_bridge_configuration)
            .build();
        let put = self.s3.put_bucket_notification_configuration().bucket(&self.bucket);
        put.notification_configuration(merged.clone()).send().await.map(drop).map_err(|e| {
            let mut err = failure(&Self::address(), "put notification", &e);
            let body = e.raw_response().and_then(|r| r.body().bytes()).map(String::from_utf8_lossy);
            if let Some(message) = body.and_then(|b| self.unvalidated(&b, &merged)) {
                err.message = message;
            }
            err
        })?;
        match wanted {
            Some(queue) => self.verify_written(&queue).await,
            None => Ok(()),
        }
    }

    /// Stops, naming the rule and the fix, when another rule of the bucket overlaps ours: S3
    /// refuses two rules whose prefixes and suffixes overlap for the same event type
    /// ("Configuration is ambiguously defined",
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html>).
    fn refuse_overlap(&self, current: &NotificationConfiguration) -> Result<(), ResourceError> {
        let Some((id, arn, prefix)) = created_rules(current).find(|r| r.0 != self.id && overlaps(r, &self.key_prefix))
        else {
            return Ok(());
        };
        let prefix = if prefix.is_empty() { "every key".to_string() } else { format!("prefix `{prefix}`") };
        Err(ResourceError {
            address: Self::address(),
            op: "check other rules".into(),
            message: format!(
                "bucket `{}` already has rule `{id}` → {arn} for object-created events on {prefix}, which overlaps \
                 flixops' rule on `{}`; S3 refuses overlapping rules (\"Configuration is ambiguously defined\"). Fix: \
                 send both through one SNS topic that Snowflake subscribes to (Snowflake's SNS fan-out, \
                 https://docs.snowflake.com/en/user-guide/data-load-snowpipe-auto-s3#option-2-configuring-amazon-sns-to-automate-snowpipe-using-sqs-notifications), \
                 or give this environment a prefix no other rule covers (`prefix` in flixops.toml)",
                self.bucket, self.key_prefix
            ),
            kind: ErrorKind::Other,
        })
    }

    /// Reads the configuration back: another writer may have replaced it between our read and write.
    async fn verify_written(&self, queue: &str) -> Result<(), ResourceError> {
        let now = self.current().await?.unwrap_or_else(|| NotificationConfiguration::builder().build());
        let ours =
            now.queue_configurations().iter().any(|q| q.id() == Some(self.id.as_str()) && q.queue_arn() == queue);
        if ours {
            return Ok(());
        }
        Err(ResourceError {
            address: Self::address(),
            op: "verify notification".into(),
            message: format!(
                "rule `{}` → {queue} was written but is not in bucket `{}`'s notification configuration when read \
                 back: another writer replaced the configuration at the same time (S3 keeps the last one). Run \
                 `flixops deploy` again, and have the other tool merge rules instead of replacing them",
                self.id, self.bucket
            ),
            kind: ErrorKind::Other,
        })
    }

    /// S3 re-validates every destination of the configuration on each write
    /// (<https://repost.aws/knowledge-center/unable-validate-destination-s3>): when it refuses, the
    /// destinations it names (`ArgumentName1`, its reason `ArgumentValue1`, …) with their rules.
    fn unvalidated(&self, body: &str, config: &NotificationConfiguration) -> Option<String> {
        let refused = refused_destinations(body);
        if refused.is_empty() {
            return None;
        }
        let rules: Vec<String> = refused
            .iter()
            .map(|(arn, reason)| match destination_rule(config, arn) {
                Some(id) if id == self.id => format!("flixops' own rule `{id}` → {arn}: {reason}"),
                Some(id) => format!("rule `{id}` → {arn}: {reason}"),
                None => format!("{arn}: {reason}"),
            })
            .collect();
        Some(format!(
            "S3 could not validate {}; every write of the bucket's notification configuration re-checks all of \
             its destinations, so a stale one (a deleted queue, topic or function, or one whose policy no longer \
             lets S3 send) blocks flixops' rule too: fix or remove it (`aws s3api \
             get-bucket-notification-configuration --bucket {}` lists them), then run `flixops deploy` again",
            rules.join("; "),
            self.bucket
        ))
    }

    /// Refuses, before writing, a queue in another region than the bucket: S3 only notifies
    /// destinations in the bucket's own region
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/setup-event-notification-destination.html>).
    fn check_region(&self, queue: &str, inputs: &Inputs) -> Result<(), ResourceError> {
        let bucket_region = inputs.get(&Bucket::address(), "region");
        let queue_region = queue.split(':').nth(3);
        match (bucket_region, queue_region) {
            (Some(bucket), Some(queue_region)) if bucket != queue_region => Err(ResourceError {
                address: Self::address(),
                op: "check destination".into(),
                message: format!(
                    "Snowpipe's queue {queue} is in {queue_region} but bucket `{}` is in {bucket}, and S3 only \
                     notifies a queue in the bucket's own region: deploy this environment to {queue_region} \
                     (`region` in flixops.toml, with a bucket there) or use a Snowflake account in {bucket}",
                    self.bucket
                ),
                kind: ErrorKind::Other,
            }),
            _ => Ok(()),
        }
    }
}

/// Every rule of the configuration (queues, topics, functions) that fires on object creation, as
/// (id, destination, key prefix).
fn created_rules(config: &NotificationConfiguration) -> impl Iterator<Item = (String, String, String)> + '_ {
    let created =
        |events: &[aws_sdk_s3::types::Event]| events.iter().any(|e| e.as_str().starts_with("s3:ObjectCreated:"));
    let prefix = |filter: Option<&NotificationConfigurationFilter>| {
        let rules = filter.and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default();
        rules.iter().find(|r| r.name().is_some_and(is_prefix_rule)).and_then(|r| r.value()).unwrap_or("").to_string()
    };
    let id = |id: Option<&str>| id.unwrap_or("(no id)").to_string();
    let queues = config.queue_configurations().iter().filter(move |q| created(q.events()));
    let topics = config.topic_configurations().iter().filter(move |t| created(t.events()));
    let functions = config.lambda_function_configurations().iter().filter(move |f| created(f.events()));
    queues
        .map(move |q| (id(q.id()), q.queue_arn().to_string(), prefix(q.filter())))
        .chain(topics.map(move |t| (id(t.id()), t.topic_arn().to_string(), prefix(t.filter()))))
        .chain(functions.map(move |f| (id(f.id()), f.lambda_function_arn().to_string(), prefix(f.filter()))))
}

/// True when a rule on `rule.2` and ours on `ours` can match the same key: one prefix starts the
/// other (ours has no suffix, so any suffix of theirs overlaps it).
fn overlaps(rule: &(String, String, String), ours: &str) -> bool {
    rule.2.starts_with(ours) || ours.starts_with(rule.2.as_str())
}

/// True for a filter rule on the key prefix, however it is capitalised: S3 accepts `prefix` but
/// answers `Prefix`, which the SDK's enum does not recognise (<https://github.com/aws/aws-sdk/issues/389>).
fn is_prefix_rule(name: &FilterRuleName) -> bool {
    name.as_str().eq_ignore_ascii_case("prefix")
}

/// The destinations an S3 `InvalidArgument` error names, with the reason for each.
fn refused_destinations(body: &str) -> Vec<(String, String)> {
    let element = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(unescape_xml(&body[start..end]))
    };
    (1..)
        .map_while(|n| element(&format!("ArgumentName{n}")).map(|arn| (arn, element(&format!("ArgumentValue{n}")))))
        .map(|(arn, reason)| (arn, reason.unwrap_or_else(|| "refused".into())))
        .collect()
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The id of the rule that sends to `arn`, among queues, topics and functions.
fn destination_rule(config: &NotificationConfiguration, arn: &str) -> Option<String> {
    let queues = config.queue_configurations().iter().map(|q| (q.id(), q.queue_arn()));
    let topics = config.topic_configurations().iter().map(|t| (t.id(), t.topic_arn()));
    let functions = config.lambda_function_configurations().iter().map(|f| (f.id(), f.lambda_function_arn()));
    queues.chain(topics).chain(functions).find(|(_, a)| *a == arn).map(|(id, _)| id.unwrap_or("(no id)").to_string())
}

impl Resource for Notification {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![Bucket::address(), self.channel_from.clone()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let Some(config) = self.current().await? else { return Ok(None) };
            let ours = config.queue_configurations().iter().find(|q| q.id() == Some(self.id.as_str()));
            let Some(ours) = ours else { return Ok(None) };
            let prefix = ours
                .filter()
                .and_then(|f| f.key())
                .map(|k| k.filter_rules())
                .unwrap_or_default()
                .iter()
                .find(|r| r.name().is_some_and(is_prefix_rule))
                .and_then(|r| r.value())
                .unwrap_or("");
            let events: Vec<&str> = ours.events().iter().map(|e| e.as_str()).collect();
            let rule = format!("queue={} events={} prefix={prefix}", ours.queue_arn(), events.join(","));
            Ok(Some(Observed { fields: [("rule".to_string(), rule)].into(), outputs: Outputs::new() }))
        })
    }

    fn desired(&self, inputs: &Inputs) -> Fields {
        [("rule".to_string(), self.rule(&inputs.value(&self.channel_from, "notification_channel")))].into()
    }

    fn apply<'a>(
        &'a self,
        _change: &'a Change,
        _observed: Option<&'a Observed>,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let queue = inputs.value(&self.channel_from, "notification_channel");
            self.check_region(&queue, inputs)?;
            let prefix = FilterRule::builder().name(FilterRuleName::Prefix).value(&self.key_prefix).build();
            let filter = NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().filter_rules(prefix).build())
                .build();
            let rule = QueueConfiguration::builder()
                .id(&self.id)
                .queue_arn(queue)
                .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                .filter(filter)
                .build()
                .map_err(|e| ResourceError {
                    address: Self::address(),
                    op: "build request".into(),
                    message: e.to_string(),
                    kind: ErrorKind::Other,
                })?;
            self.write(Some(rule)).await?;
            Ok(Outputs::new())
        })
    }

    /// Plan fails before anything is applied when another rule overlaps ours.
    fn check<'a>(&'a self, _change: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
        Box::pin(async move {
            match self.current().await? {
                Some(current) => self.refuse_overlap(&current),
                None => Ok(()),
            }
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(self.write(None))
    }
}
