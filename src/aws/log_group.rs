//! The extractor's CloudWatch log group, `/aws/lambda/{function}`, created by `deploy` with a
//! retention, so the function never needs `logs:CreateLogGroup` and its logs do not pile up forever.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

use super::{Tags, failure, tags_field};
use crate::plan::{Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// The log group Lambda writes the function's output to.
pub struct LogGroup {
    /// The CloudWatch Logs client.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// `/aws/lambda/{function}`: the name Lambda logs to.
    pub name: String,
    /// Account id, for the ARN.
    pub account_id: String,
    /// Region, for the ARN.
    pub region: String,
    /// Days CloudWatch keeps the events (`log_retention_days`).
    pub retention_days: i32,
    /// Tags.
    pub tags: Tags,
}

/// The field value of a group without retention (CloudWatch's default).
const NEVER_EXPIRE: &str = "never expire";

impl LogGroup {
    /// `aws_cloudwatch_log_group.extract`.
    pub fn address() -> Address {
        Address::new("aws_cloudwatch_log_group", "extract")
    }

    /// The ARN without the trailing `:*`: the form the tagging calls take (and their IAM actions
    /// are evaluated against); every other logs action is evaluated against `{arn}:*`.
    fn arn(&self) -> String {
        format!("arn:aws:logs:{}:{}:log-group:{}", self.region, self.account_id, self.name)
    }

    fn err<E>(
        &self,
        op: &str,
        e: &aws_sdk_cloudwatchlogs::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failure(&Self::address(), op, e)
    }

    /// The group's retention (`never expire` when unset), or None when there is no such group.
    async fn retention(&self) -> Result<Option<String>, ResourceError> {
        let mut pages =
            self.logs.describe_log_groups().log_group_name_prefix(&self.name).into_paginator().items().send();
        while let Some(group) = pages.next().await {
            let group = group.map_err(|e| self.err("read", &e))?;
            if group.log_group_name() == Some(self.name.as_str()) {
                return Ok(Some(group.retention_in_days().map_or(NEVER_EXPIRE.to_string(), |d| d.to_string())));
            }
        }
        Ok(None)
    }

    async fn read_tags(&self) -> Result<String, ResourceError> {
        let out = self.logs.list_tags_for_resource().resource_arn(self.arn()).send().await;
        let tags = out.map_err(|e| self.err("read tags", &e))?.tags.unwrap_or_default();
        Ok(tags_field(tags.into_iter(), &self.tags.pairs()))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let create = self
            .logs
            .create_log_group()
            .log_group_name(&self.name)
            .set_tags(Some(self.tags.pairs().into_iter().collect()));
        match create.send().await {
            Ok(_) => Ok(()),
            // The function ran before the group existed (its role may once have created it).
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => self.put_tags().await,
            Err(e) => Err(self.err("create", &e)),
        }
    }

    async fn put_retention(&self) -> Result<(), ResourceError> {
        let put = self.logs.put_retention_policy().log_group_name(&self.name).retention_in_days(self.retention_days);
        put.send().await.map(drop).map_err(|e| self.err("put retention", &e))
    }

    async fn put_tags(&self) -> Result<(), ResourceError> {
        let tag =
            self.logs.tag_resource().resource_arn(self.arn()).set_tags(Some(self.tags.pairs().into_iter().collect()));
        tag.send().await.map(drop).map_err(|e| self.err("tag", &e))
    }
}

impl Resource for LogGroup {
    fn address(&self) -> Address {
        Self::address()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let Some(retention) = self.retention().await? else { return Ok(None) };
            let fields = field_map([
                ("name", self.name.clone()),
                ("retention_days", retention),
                ("tags", self.read_tags().await?),
            ]);
            Ok(Some(Observed { fields, outputs: self.planned_outputs() }))
        })
    }

    fn desired(&self, _inputs: &Inputs) -> Fields {
        field_map([
            ("name", self.name.clone()),
            ("retention_days", self.retention_days.to_string()),
            ("tags", self.tags.field()),
        ])
    }

    fn planned_outputs(&self) -> Outputs {
        [("name".to_string(), self.name.clone()), ("arn".to_string(), format!("{}:*", self.arn()))].into()
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
            } else if change.touches("tags") {
                self.put_tags().await?;
            }
            if change.touches("retention_days") {
                self.put_retention().await?;
            }
            Ok(self.planned_outputs())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            match self.logs.delete_log_group().log_group_name(&self.name).send().await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
                Err(e) => Err(self.err("delete", &e)),
            }
        })
    }
}
