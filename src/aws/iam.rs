//! IAM roles with one inline policy each: the role Snowflake assumes to read the tweets, the
//! extractor's Lambda execution role, and the role EventBridge Scheduler uses to invoke it.

use aws_sdk_iam::types::Tag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

use super::{Tags, failure, policy, tags_field};
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// Renders a policy document from the outputs of the role's dependencies.
pub type Document = Box<dyn Fn(&Inputs) -> String + Send + Sync>;

/// One role and its inline policy.
pub struct Role {
    /// The IAM client.
    pub iam: aws_sdk_iam::Client,
    /// The `name` part of the address (`aws_iam_role.NAME`).
    pub key: &'static str,
    /// Role name.
    pub name: String,
    /// Account id, for the ARN.
    pub account_id: String,
    /// Shown in the console.
    pub description: String,
    /// Who may assume the role.
    pub trust: Document,
    /// False while the trusted principal is not known yet: the trust is set on create and left
    /// alone afterwards (so a trust someone set by hand is not reverted).
    pub manage_trust: bool,
    /// Name of the inline policy.
    pub policy_name: String,
    /// What the role may do.
    pub policy: Document,
    /// Resources the documents read outputs from.
    pub depends_on: Vec<Address>,
    /// The permissions boundary the role is created with (`arn` output of this resource).
    pub boundary_from: Address,
    /// Tags.
    pub tags: Tags,
}

impl Role {
    fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, self.name)
    }

    fn err<E>(
        &self,
        op: &str,
        e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failure(&self.address(), op, e)
    }

    fn tag_list(&self) -> Result<Vec<Tag>, ResourceError> {
        iam_tags(&self.tags, &self.address())
    }

    async fn read_policy(&self) -> Result<String, ResourceError> {
        match self.iam.get_role_policy().role_name(&self.name).policy_name(&self.policy_name).send().await {
            Ok(out) => Ok(policy::canonical(&out.policy_document).unwrap_or_else(|_| out.policy_document.clone())),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok("none".into()),
            Err(e) => Err(self.err("read policy", &e)),
        }
    }

    /// Managed policies attached to the role, and inline policies other than ours: a flixops role
    /// has exactly one policy, so anything else is drift (someone widened it by hand).
    async fn read_extra_policies(&self) -> Result<(String, String), ResourceError> {
        let attached = self.iam.list_attached_role_policies().role_name(&self.name).send().await;
        let attached = attached.map_err(|e| self.err("list attached policies", &e))?;
        let mut arns: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
        arns.sort();
        let inline = self.iam.list_role_policies().role_name(&self.name).send().await;
        let inline = inline.map_err(|e| self.err("list inline policies", &e))?;
        let mut others: Vec<&str> =
            inline.policy_names().iter().map(String::as_str).filter(|n| *n != self.policy_name).collect();
        others.sort();
        let list = |items: Vec<&str>| if items.is_empty() { "none".to_string() } else { items.join(",") };
        Ok((list(arns), list(others)))
    }

    async fn remove_extra_policies(&self) -> Result<(), ResourceError> {
        let attached = self.iam.list_attached_role_policies().role_name(&self.name).send().await;
        for policy in attached.map_err(|e| self.err("list attached policies", &e))?.attached_policies() {
            let detach = self.iam.detach_role_policy().role_name(&self.name).set_policy_arn(policy.policy_arn.clone());
            detach.send().await.map_err(|e| self.err("detach policy", &e))?;
        }
        let inline = self.iam.list_role_policies().role_name(&self.name).send().await;
        for name in inline.map_err(|e| self.err("list inline policies", &e))?.policy_names() {
            if *name != self.policy_name {
                let delete = self.iam.delete_role_policy().role_name(&self.name).policy_name(name);
                delete.send().await.map_err(|e| self.err("delete inline policy", &e))?;
            }
        }
        Ok(())
    }

    async fn put_policy(&self, inputs: &Inputs) -> Result<(), ResourceError> {
        self.iam
            .put_role_policy()
            .role_name(&self.name)
            .policy_name(&self.policy_name)
            .policy_document((self.policy)(inputs))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err("put policy", &e))
    }
}

impl Resource for Role {
    fn address(&self) -> Address {
        Address::new("aws_iam_role", self.key)
    }

    fn depends_on(&self) -> Vec<Address> {
        let mut deps = self.depends_on.clone();
        deps.push(self.boundary_from.clone());
        deps
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let role = match self.iam.get_role().role_name(&self.name).send().await {
                Ok(out) => out.role,
                Err(e) if e.code() == Some("NoSuchEntity") => return Ok(None),
                Err(e) => return Err(self.err("read", &e)),
            };
            let Some(role) = role else { return Ok(None) };
            let trust = role.assume_role_policy_document.as_deref().unwrap_or("{}");
            let mut fields = Fields::new();
            fields.insert("name".into(), role.role_name.clone());
            fields.insert("trust_policy".into(), policy::canonical(trust).unwrap_or_else(|_| trust.to_string()));
            fields.insert("policy".into(), self.read_policy().await?);
            let (attached, inline) = self.read_extra_policies().await?;
            fields.insert("attached_policies".into(), attached);
            fields.insert("other_inline_policies".into(), inline);
            let boundary = role.permissions_boundary.and_then(|b| b.permissions_boundary_arn).unwrap_or("none".into());
            fields.insert("permissions_boundary".into(), boundary);
            let tags = role.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value));
            fields.insert("tags".into(), tags_field(tags, &self.tags.pairs()));
            Ok(Some(Observed { fields, outputs: [("arn".to_string(), role.arn)].into() }))
        })
    }

    fn desired(&self, inputs: &Inputs) -> Fields {
        let mut fields: Fields = field_map([
            ("name", self.name.clone()),
            ("policy", canonical_or_raw((self.policy)(inputs))),
            ("permissions_boundary", inputs.value(&self.boundary_from, "arn")),
            ("attached_policies", "none".to_string()),
            ("other_inline_policies", "none".to_string()),
            ("tags", self.tags.field()),
        ]);
        if self.manage_trust {
            fields.insert("trust_policy".into(), canonical_or_raw((self.trust)(inputs)));
        }
        fields
    }

    fn planned_outputs(&self) -> Outputs {
        [("arn".to_string(), self.arn())].into()
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            if observed.is_none() {
                let created = self
                    .iam
                    .create_role()
                    .role_name(&self.name)
                    .description(&self.description)
                    .assume_role_policy_document((self.trust)(inputs))
                    .permissions_boundary(inputs.value(&self.boundary_from, "arn"))
                    .set_tags(Some(self.tag_list()?))
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // A deploy that died after CreateRole finds it on the next run's read; this only
                    // covers a race with a second deploy.
                    Err(e) if e.code() == Some("EntityAlreadyExists") => {}
                    Err(e) => return Err(self.err("create", &e)),
                }
                self.put_policy(inputs).await?;
                return Ok(self.planned_outputs());
            }
            // The boundary first: a policy change must never land on an unbounded role.
            if change.touches("permissions_boundary") {
                self.iam
                    .put_role_permissions_boundary()
                    .role_name(&self.name)
                    .permissions_boundary(inputs.value(&self.boundary_from, "arn"))
                    .send()
                    .await
                    .map_err(|e| self.err("put permissions boundary", &e))?;
            }
            if change.touches("trust_policy") {
                self.iam
                    .update_assume_role_policy()
                    .role_name(&self.name)
                    .policy_document((self.trust)(inputs))
                    .send()
                    .await
                    .map_err(|e| self.err("update trust policy", &e))?;
            }
            if change.touches("policy") {
                self.put_policy(inputs).await?;
            }
            if change.touches("attached_policies") || change.touches("other_inline_policies") {
                self.remove_extra_policies().await?;
            }
            if change.touches("tags") {
                self.iam
                    .tag_role()
                    .role_name(&self.name)
                    .set_tags(Some(self.tag_list()?))
                    .send()
                    .await
                    .map_err(|e| self.err("tag", &e))?;
            }
            Ok(self.planned_outputs())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            self.remove_extra_policies().await?;
            match self.iam.delete_role_policy().role_name(&self.name).policy_name(&self.policy_name).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("NoSuchEntity") => {}
                Err(e) => return Err(self.err("delete policy", &e)),
            }
            self.iam.delete_role().role_name(&self.name).send().await.map(drop).map_err(|e| self.err("delete", &e))
        })
    }
}

/// Our tags as IAM wants them.
fn iam_tags(tags: &Tags, address: &Address) -> Result<Vec<Tag>, ResourceError> {
    let build = |(k, v): (String, String)| {
        Tag::builder().key(k).value(v).build().map_err(|e| ResourceError {
            address: address.clone(),
            op: "build request".into(),
            message: e.to_string(),
            kind: ErrorKind::Other,
        })
    };
    tags.pairs().into_iter().map(build).collect()
}

fn canonical_or_raw(document: String) -> String {
    policy::canonical(&document).unwrap_or(document)
}

/// The permissions boundary every flixops role is created with: the union of what the three roles
/// may do. Roles cannot exceed it whatever inline policy they get, so an identity allowed to write
/// role policies (a CI deployer) cannot turn one into an administrator.
pub struct Boundary {
    /// The IAM client.
    pub iam: aws_sdk_iam::Client,
    /// Policy name.
    pub name: String,
    /// Account id, for the ARN.
    pub account_id: String,
    /// The document.
    pub document: String,
    /// Tags.
    pub tags: Tags,
}

impl Boundary {
    /// `aws_iam_policy.boundary`.
    pub fn address() -> Address {
        Address::new("aws_iam_policy", "boundary")
    }

    /// The policy's ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:policy/{}", self.account_id, self.name)
    }

    fn err<E>(
        &self,
        op: &str,
        e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut err = failure(&Self::address(), op, e);
        if matches!(e.code(), Some("AccessDenied" | "AccessDeniedException")) {
            err.message =
                "AccessDenied: the CI deployer role may not change the permissions boundary (that would let it \
                           widen what its roles may do); run `flixops deploy` once as an administrator"
                    .into();
        }
        err
    }

    /// Makes room for a new version (IAM keeps at most five) by deleting the oldest non-default one.
    async fn prune_versions(&self) -> Result<(), ResourceError> {
        let out = self
            .iam
            .list_policy_versions()
            .policy_arn(self.arn())
            .send()
            .await
            .map_err(|e| self.err("list versions", &e))?;
        let mut old: Vec<_> = out.versions().iter().filter(|v| !v.is_default_version()).collect();
        if out.versions().len() < 5 {
            return Ok(());
        }
        old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
        if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
            self.iam
                .delete_policy_version()
                .policy_arn(self.arn())
                .version_id(oldest)
                .send()
                .await
                .map_err(|e| self.err("delete old version", &e))?;
        }
        Ok(())
    }
}

impl Resource for Boundary {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let policy = match self.iam.get_policy().policy_arn(self.arn()).send().await {
                Ok(out) => out.policy,
                Err(e) if e.code() == Some("NoSuchEntity") => return Ok(None),
                Err(e) => return Err(self.err("read", &e)),
            };
            let version = policy.and_then(|p| p.default_version_id).unwrap_or_default();
            let out = self
                .iam
                .get_policy_version()
                .policy_arn(self.arn())
                .version_id(version)
                .send()
                .await
                .map_err(|e| self.err("read document", &e))?;
            let text = out.policy_version.and_then(|v| v.document).unwrap_or_default();
            let fields = [("document".to_string(), canonical_or_raw(text))].into();
            Ok(Some(Observed { fields, outputs: self.planned_outputs() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        [("document".to_string(), canonical_or_raw(self.document.clone()))].into()
    }

    fn planned_outputs(&self) -> Outputs {
        [("arn".to_string(), self.arn())].into()
    }

    fn apply<'a>(
        &'a self,
        _change: &'a Change,
        observed: Option<&'a Observed>,
        _inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            if observed.is_none() {
                self.iam
                    .create_policy()
                    .policy_name(&self.name)
                    .description("Permissions boundary of the roles flixops creates")
                    .policy_document(&self.document)
                    .set_tags(Some(iam_tags(&self.tags, &Self::address())?))
                    .send()
                    .await
                    .map_err(|e| self.err("create", &e))?;
                return Ok(self.planned_outputs());
            }
            self.prune_versions().await?;
            self.iam
                .create_policy_version()
                .policy_arn(self.arn())
                .policy_document(&self.document)
                .set_as_default(true)
                .send()
                .await
                .map_err(|e| self.err("update", &e))?;
            Ok(self.planned_outputs())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            let out = self
                .iam
                .list_policy_versions()
                .policy_arn(self.arn())
                .send()
                .await
                .map_err(|e| self.err("list versions", &e))?;
            for v in out.versions().iter().filter(|v| !v.is_default_version()) {
                let id = v.version_id().unwrap_or_default();
                self.iam
                    .delete_policy_version()
                    .policy_arn(self.arn())
                    .version_id(id)
                    .send()
                    .await
                    .map_err(|e| self.err("delete version", &e))?;
            }
            self.iam.delete_policy().policy_arn(self.arn()).send().await.map(drop).map_err(|e| self.err("delete", &e))
        })
    }
}
