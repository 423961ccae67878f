//! The AWS resources of one environment, named from the project and environment, wired together
//! by outputs: role ARNs into the function and schedule, the secret's ARN into the function's
//! environment, Snowflake's IAM user into the role trust, the pipe's queue into the notification.

use serde_json::json;

use super::iam::{Boundary, Role};
use super::lambda::{Artifact, EnvValue, Function};
use super::log_group::LogGroup;
use super::s3::{Bucket, Notification};
use super::schedule::Schedule;
use super::secret::Secret;
use super::{Propagation, Session, Tags, policy};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig};
use crate::plan::{Address, Inputs, Resource};

/// The names of everything flixops creates for one environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Names {
    /// The data bucket.
    pub bucket: String,
    /// Role Snowflake's storage integration assumes.
    pub snowflake_role: String,
    /// The extractor's execution role.
    pub extract_role: String,
    /// The role the schedule invokes the extractor with.
    pub scheduler_role: String,
    /// The bearer token's secret.
    pub secret: String,
    /// The extractor function.
    pub function: String,
    /// The schedule.
    pub schedule: String,
    /// The bucket notification rule's id.
    pub notification_id: String,
    /// The permissions boundary of the three roles.
    pub boundary: String,
    /// The function's CloudWatch log group.
    pub log_group: String,
}

impl Names {
    /// Derives every name from `{project}-{env}`.
    pub fn new(project: &str, env: &str, bucket: &str) -> Self {
        let base = format!("{project}-{env}");
        Self {
            bucket: bucket.to_string(),
            snowflake_role: format!("{base}-snowflake"),
            extract_role: format!("{base}-extract"),
            scheduler_role: format!("{base}-scheduler"),
            secret: format!("flixops/{project}/{env}/x-bearer-token"),
            function: format!("{base}-extract"),
            schedule: format!("{base}-extract"),
            notification_id: format!("flixops-{env}-snowpipe"),
            boundary: format!("{base}-flixops-boundary"),
            log_group: format!("/aws/lambda/{base}-extract"),
        }
    }

    /// Every derived name AWS caps, with its cap, plus the CI roles `flixops export terraform`
    /// names: what config validation checks before anything is created.
    pub fn limited(&self) -> Vec<Limited> {
        // IAM: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-names
        // Lambda: https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#lambda-CreateFunction-request-FunctionName
        // Scheduler: https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html#API_CreateSchedule_RequestSyntax
        let ci = self.boundary.trim_end_matches("-boundary");
        let role = |name: &str| Limited { name: name.to_string(), kind: "IAM role", max: 64 };
        let ci_role = |name: String| Limited { name, kind: "IAM role (CI, `flixops export terraform`)", max: 64 };
        vec![
            role(&self.snowflake_role),
            role(&self.extract_role),
            role(&self.scheduler_role),
            ci_role(format!("{ci}-deploy")),
            ci_role(format!("{ci}-plan")),
            Limited { name: self.boundary.clone(), kind: "IAM policy", max: 128 },
            Limited { name: self.function.clone(), kind: "Lambda function", max: 64 },
            Limited { name: self.schedule.clone(), kind: "EventBridge schedule", max: 64 },
            Limited { name: self.secret.clone(), kind: "Secrets Manager secret", max: 512 },
            Limited { name: self.log_group.clone(), kind: "CloudWatch log group", max: 512 },
        ]
    }
}

/// A derived resource name and the longest name AWS accepts for its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The name flixops gives the resource.
    pub name: String,
    /// What AWS calls the resource.
    pub kind: &'static str,
    /// The most characters AWS accepts.
    pub max: usize,
}

/// What documents rendered without a storage integration at hand say for its external ID: the
/// real one is random, chosen on the first deploy and read from `DESC INTEGRATION`.
pub const EXTERNAL_ID_PLACEHOLDER: &str = "<STORAGE_AWS_EXTERNAL_ID from DESC INTEGRATION>";

/// Where the environment lives: what every policy document is scoped to.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `[project] name`.
    pub project: String,
    /// Environment name.
    pub env: String,
    /// The data bucket.
    pub bucket: String,
    /// Key prefix in the bucket.
    pub prefix: String,
    /// AWS account id.
    pub account: String,
    /// AWS region.
    pub region: String,
}

impl Scope {
    /// The scope of a configured environment in a known account and region.
    pub fn of(config: &Config, env: &EnvConfig, target: &AwsSnowflakeTarget, account: &str, region: &str) -> Self {
        Self {
            project: config.project.clone(),
            env: env.name.clone(),
            bucket: target.bucket.clone(),
            prefix: env.prefix.clone(),
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    /// The names derived from this scope.
    pub fn names(&self) -> Names {
        Names::new(&self.project, &self.env, &self.bucket)
    }

    /// Every value the policy templates use.
    pub fn policy_data(&self) -> serde_json::Value {
        let n = self.names();
        let (account, region) = (&self.account, &self.region);
        json!({
            "bucket": n.bucket, "prefix": self.prefix, "account": account, "region": region,
            "secret_name": n.secret, "function": n.function,
            "function_arn": format!("arn:aws:lambda:{region}:{account}:function:{}", n.function),
            "schedule_arn": format!("arn:aws:scheduler:{region}:{account}:schedule/default/{}", n.schedule),
            "snowflake_role": n.snowflake_role, "extract_role": n.extract_role, "scheduler_role": n.scheduler_role,
            "external_id": EXTERNAL_ID_PLACEHOLDER,
            "boundary_arn": format!("arn:aws:iam::{account}:policy/{}", n.boundary),
            "log_group_arn": format!("arn:aws:logs:{region}:{account}:log-group:{}", n.log_group),
        })
    }

    /// The policy a CI identity needs to run `plan` and `deploy` (and `destroy` without
    /// `--purge-data`), scoped to this environment's resources; `read_only`: just `plan`.
    pub fn deployer_policy(&self, read_only: bool) -> String {
        let full = policy::render("deployer", &self.policy_data());
        if !read_only {
            return full;
        }
        let mut doc: serde_json::Value = serde_json::from_str(&full).unwrap_or_default();
        if let Some(statements) = doc["Statement"].as_array_mut() {
            statements.retain(|s| s["Sid"].as_str().is_some_and(|sid| sid.starts_with("Read")));
        }
        doc.to_string()
    }

    /// The permissions boundary of the roles: every statement of their three policies together.
    pub fn boundary_policy(&self) -> String {
        let data = self.policy_data();
        let statements: Vec<serde_json::Value> = ["snowflake-read", "extract", "scheduler-invoke"]
            .iter()
            .flat_map(|t| {
                let doc: serde_json::Value = serde_json::from_str(&policy::render(t, &data)).unwrap_or_default();
                doc["Statement"].as_array().cloned().unwrap_or_default()
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
    }

    /// Every policy document flixops renders for this scope, by name (trusts assume Snowflake's
    /// IAM user is `snowflake_principal`).
    pub fn policies(&self, snowflake_principal: &str) -> Vec<(String, String)> {
        let mut data = self.policy_data();
        data["principal"] = json!(snowflake_principal);
        let mut out: Vec<(String, String)> = [
            "snowflake-trust",
            "snowflake-read",
            "lambda-trust",
            "extract",
            "scheduler-trust",
            "scheduler-invoke",
            "bucket-tls-only",
        ]
        .iter()
        .map(|t| (t.to_string(), policy::render(t, &data)))
        .collect();
        out.push(("boundary".into(), self.boundary_policy()));
        out.push(("deployer".into(), self.deployer_policy(false)));
        out.push(("deployer-read-only".into(), self.deployer_policy(true)));
        out
    }
}

/// Where the Snowflake side's outputs come from, when Snowflake resources are in the graph.
#[derive(Default)]
pub struct Upstream {
    /// Resource with output `iam_user_arn` (the storage integration).
    pub integration: Option<Address>,
    /// Resource with output `notification_channel` (the pipe).
    pub pipe: Option<Address>,
    /// Those resources themselves.
    pub resources: Vec<Box<dyn Resource>>,
}

/// Memory of the extractor: parsing and parquet encoding stream page by page.
const MEMORY_MB: i32 = 256;

/// Every resource of the environment, Snowflake's included, ready for [`crate::plan::Graph::new`].
pub fn resources(
    config: &Config,
    env: &EnvConfig,
    target: &AwsSnowflakeTarget,
    session: &Session,
    artifact: Artifact,
    upstream: Upstream,
    purge_data: bool,
) -> Vec<Box<dyn Resource>> {
    let scope = Scope::of(config, env, target, &session.account_id, &session.region);
    let names = scope.names();
    let data = scope.policy_data();
    let tags = Tags { project: config.project.clone(), env: env.name.clone() };
    let c = &session.clients;
    let account = session.account_id.clone();
    let region = session.region.clone();
    let prefix = env.prefix.clone();

    let propagation = Propagation::from_secs(target.iam_propagation_secs);

    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    out.push(Box::new(Bucket {
        s3: c.s3.clone(),
        name: names.bucket.clone(),
        region: region.clone(),
        tags: tags.clone(),
        purge_data,
        state_prefix: format!("{prefix}/_state/"),
        lifecycle_id: format!("flixops-{}-state-versions", env.name),
    }));

    out.push(Box::new(super::checkpoint::InitialCheckpoint {
        s3: c.s3.clone(),
        bucket: names.bucket.clone(),
        prefix: prefix.clone(),
        query: config.extract.query.clone(),
    }));

    let integration = upstream.integration.clone();
    out.push(Box::new(Boundary {
        iam: c.iam.clone(),
        name: names.boundary.clone(),
        account_id: account.clone(),
        document: scope.boundary_policy(),
        tags: tags.clone(),
    }));
    let (trust_account, trust_data, read_data) = (account.clone(), data.clone(), data.clone());
    out.push(Box::new(Role {
        iam: c.iam.clone(),
        key: "snowflake",
        name: names.snowflake_role.clone(),
        account_id: account.clone(),
        description: "Snowflake reads the tweet files (flixops)".into(),
        trust: Box::new(move |inputs: &Inputs| {
            // Until the storage integration exists, only this account may assume the role.
            let (principal, external_id) = match &integration {
                Some(address) => (inputs.value(address, "iam_user_arn"), inputs.value(address, "external_id")),
                None => (format!("arn:aws:iam::{trust_account}:root"), EXTERNAL_ID_PLACEHOLDER.to_string()),
            };
            let mut data = trust_data.clone();
            data["principal"] = json!(principal);
            data["external_id"] = json!(external_id);
            policy::render("snowflake-trust", &data)
        }),
        manage_trust: upstream.integration.is_some(),
        policy_name: "read-tweets".into(),
        policy: rendered("snowflake-read", &read_data),
        depends_on: upstream.integration.iter().cloned().collect(),
        boundary_from: Boundary::address(),
        tags: tags.clone(),
    }));
    // The Snowflake side after the role it reads the bucket through: the graph places that role as
    // soon as the integration exists, before the stage and the pipe (whose refresh uses it).
    out.extend(upstream.resources);

    out.push(Box::new(Secret { secrets: c.secrets.clone(), name: names.secret.clone(), tags: tags.clone() }));

    let static_role =
        |key, name: &str, description: &str, trust: &'static str, policy_name: &str, doc: &'static str| {
            Box::new(Role {
                iam: c.iam.clone(),
                key,
                name: name.to_string(),
                account_id: account.clone(),
                description: description.to_string(),
                trust: rendered(trust, &data),
                manage_trust: true,
                policy_name: policy_name.to_string(),
                policy: rendered(doc, &data),
                depends_on: Vec::new(),
                boundary_from: Boundary::address(),
                tags: tags.clone(),
            })
        };
    out.push(static_role(
        "extract",
        &names.extract_role,
        "The flixops extractor Lambda",
        "lambda-trust",
        "extract",
        "extract",
    ));

    let extract = &config.extract;
    let mut environment = vec![
        ("FLIXOPS_MAX_RESULTS".to_string(), EnvValue::Literal(extract.max_results.to_string())),
        ("FLIXOPS_BUCKET".to_string(), EnvValue::Literal(names.bucket.clone())),
        ("FLIXOPS_PREFIX".to_string(), EnvValue::Literal(prefix.clone())),
        ("FLIXOPS_QUERY".to_string(), EnvValue::Literal(extract.query.clone())),
        ("FLIXOPS_X_API_BASE_URL".to_string(), EnvValue::Literal(extract.api_base_url.clone())),
        ("FLIXOPS_X_TOKEN_SECRET_ARN".to_string(), EnvValue::Output(Secret::address(), "arn")),
    ];
    let limits = [
        ("FLIXOPS_MAX_PAGES", extract.max_pages.map(u64::from)),
        ("FLIXOPS_MAX_POSTS_PER_RUN", extract.max_posts_per_run),
        ("FLIXOPS_MAX_POSTS_PER_MONTH", extract.max_posts_per_month),
    ];
    for (name, value) in limits {
        environment.extend(value.map(|v| (name.to_string(), EnvValue::Literal(v.to_string()))));
    }
    let timeout = (extract.time_budget_secs + 30).min(900) as i32;
    let max_event_age_secs = super::schedule::event_age_bound(&extract.schedule);
    out.push(Box::new(LogGroup {
        logs: c.logs.clone(),
        name: names.log_group.clone(),
        account_id: account.clone(),
        region: region.clone(),
        retention_days: target.log_retention_days,
        tags: tags.clone(),
    }));
    out.push(Box::new(Function {
        lambda: c.lambda.clone(),
        name: names.function.clone(),
        account_id: account.clone(),
        region: region.clone(),
        artifact,
        architecture: target.lambda_architecture.clone(),
        memory_mb: MEMORY_MB,
        timeout_secs: timeout,
        environment,
        role_from: Address::new("aws_iam_role", "extract"),
        propagation,
        tags: tags.clone(),
        max_event_age_secs,
        quota: Default::default(),
    }));

    out.push(static_role(
        "scheduler",
        &names.scheduler_role,
        "EventBridge Scheduler runs the flixops extractor",
        "scheduler-trust",
        "invoke-extract",
        "scheduler-invoke",
    ));
    out.push(Box::new(Schedule {
        scheduler: c.scheduler.clone(),
        name: names.schedule.clone(),
        expression: extract.schedule.clone(),
        function_from: Function::address(),
        role_from: Address::new("aws_iam_role", "scheduler"),
        max_event_age_secs,
        propagation,
    }));

    if let Some(pipe) = upstream.pipe {
        out.push(Box::new(Notification {
            s3: c.s3.clone(),
            bucket: names.bucket.clone(),
            id: names.notification_id.clone(),
            key_prefix: format!("{prefix}/tweets/"),
            channel_from: pipe,
        }));
    }
    out
}

/// A document that does not depend on any input: the template rendered with the scope's values.
fn rendered(template: &'static str, data: &serde_json::Value) -> super::iam::Document {
    let data = data.clone();
    Box::new(move |_: &Inputs| policy::render(template, &data))
}
