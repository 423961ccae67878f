//! IAM roles with one inline policy each: the role Snowflake assumes to read the tweets, the
//! extractor's Lambda execution role, and the role EventBridge Scheduler uses to invoke it.

use aws_sdk_iam::types::Tag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

use super::{Tags, failure, policy, tags_field};
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError};

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
    /// Name of the inline policy.
    pub policy_name: String,
    /// What the role may do.
    pub policy: Document,
    /// Resources the documents read outputs from.
    pub depends_on: Vec<Address>,
    /// Tags.
    pub tags: Tags,
}

impl Role {
    fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, self.name)
    }

    fn err<E>(&self, op: &str, e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failure(&self.address(), op, e)
    }

    fn tag_list(&self) -> Result<Vec<Tag>, ResourceError> {
        self.tags
            .pairs()
            .into_iter()
            .map(|(k, v)| {
                Tag::builder().key(k).value(v).build().map_err(|e| ResourceError {
                    address: self.address(),
                    op: "build request".into(),
                    message: e.to_string(),
                    kind: ErrorKind::Other,
                })
            })
            .collect()
    }

    async fn read_policy(&self) -> Result<String, ResourceError> {
        match self.iam.get_role_policy().role_name(&self.name).policy_name(&self.policy_name).send().await {
            Ok(out) => Ok(policy::canonical(&out.policy_document).unwrap_or_else(|_| out.policy_document.clone())),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok("none".into()),
            Err(e) => Err(self.err("read policy", &e)),
        }
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
        self.depends_on.clone()
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
            let tags = role.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value));
            fields.insert("tags".into(), tags_field(tags, &self.tags.pairs()));
            Ok(Some(Observed { fields, outputs: [("arn".to_string(), role.arn)].into() }))
        })
    }

    fn desired(&self, inputs: &Inputs) -> Fields {
        [
            ("name", self.name.clone()),
            ("trust_policy", canonical_or_raw((self.trust)(inputs))),
            ("policy", canonical_or_raw((self.policy)(inputs))),
            ("tags", self.tags.field()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
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
            match self.iam.delete_role_policy().role_name(&self.name).policy_name(&self.policy_name).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("NoSuchEntity") => {}
                Err(e) => return Err(self.err("delete policy", &e)),
            }
            self.iam.delete_role().role_name(&self.name).send().await.map(drop).map_err(|e| self.err("delete", &e))
        })
    }
}

fn canonical_or_raw(document: String) -> String {
    policy::canonical(&document).unwrap_or(document)
}
