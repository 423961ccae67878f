//! The extractor as a Lambda function: `provided.al2023`, a zip whose `bootstrap` is the flixops
//! binary itself (or `--artifact`). A code change is detected by CodeSha256 of a byte-stable zip.
//! One extraction runs at a time: reserved concurrency 1 and no asynchronous retries, unless the
//! account's concurrency quota leaves nothing to reserve (then a note says so and how to fix it).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

pub use super::artifact::{Artifact, ArtifactError};
use super::{Tags, failure};
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// The extractor function.
pub struct Function {
    /// The Lambda client.
    pub lambda: aws_sdk_lambda::Client,
    /// Function name.
    pub name: String,
    /// Account and region, for the ARN.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// The package (its code may be unknown: then the deployed code is kept, and a note says why).
    pub artifact: Artifact,
    /// `x86_64` or `arm64` (lambda_architecture); a known package is built for it.
    pub architecture: String,
    /// Memory in MB.
    pub memory_mb: i32,
    /// Timeout in seconds.
    pub timeout_secs: i32,
    /// Environment variables; values may name an input as `{address}#{output}`.
    pub environment: Vec<(String, EnvValue)>,
    /// The execution role.
    pub role_from: Address,
    /// How long creating the function waits for a new execution role to become assumable.
    pub propagation: super::Propagation,
    /// Tags.
    pub tags: Tags,
    /// How long an asynchronous invocation may wait to start before Lambda drops it (60–21600).
    pub max_event_age_secs: i32,
    /// What `read` learnt of the account's concurrency quota; build with `Default::default()`.
    pub quota: std::sync::Mutex<QuotaSeen>,
}

/// An environment variable's value: literal, or an output of another resource.
#[derive(Debug, Clone)]
pub enum EnvValue {
    /// As given.
    Literal(String),
    /// `inputs[address][key]`.
    Output(Address, &'static str),
}

/// What the plan shows for code flixops does not have.
pub const UNKNOWN_CODE: &str = "(unknown: no Linux artifact, see the note)";

/// The note of a plan made without the function's code.
fn unknown_code(why: &str) -> String {
    format!(
        "the function's code is unknown, so it is not compared and deploy keeps the deployed code (and cannot \
         create the function or change its architecture): {why}"
    )
}

/// What a change needs of the code that an unknown package cannot give: None when nothing.
pub fn needs_code(change: &Change) -> Option<&'static str> {
    match change.action {
        crate::plan::Action::Create | crate::plan::Action::Replace => Some("create the function"),
        _ if change.touches("architecture") => Some("change the function's architecture (it re-uploads the code)"),
        _ => None,
    }
}

/// Executions reserved for the function: one, so two extraction runs never overlap.
pub const RESERVED: i32 = 1;
/// Lambda's asynchronous retries when no invoke config says otherwise (API_PutFunctionEventInvokeConfig).
const DEFAULT_ASYNC_RETRIES: i32 = 2;
/// How long Lambda keeps an asynchronous event by default: six hours.
const DEFAULT_ASYNC_EVENT_AGE: i32 = 21600;

/// The account's Lambda concurrency in the region, as GetAccountSettings reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountConcurrency {
    /// The quota ("Concurrent executions", 1000 by default, 10 or 50 on new accounts).
    pub limit: i32,
    /// The quota minus every function's reservation.
    pub unreserved: i32,
}

impl AccountConcurrency {
    /// Lambda keeps 100 executions unreserved, or the whole quota when it is smaller (its refusal
    /// then says "minimum value of [10]" or "[50]").
    pub fn minimum_unreserved(&self) -> i32 {
        self.limit.min(100)
    }

    /// True when a function holding `held` may reserve `want` instead.
    pub fn allows(&self, want: i32, held: i32) -> bool {
        self.unreserved + held - want >= self.minimum_unreserved()
    }

    /// Why nothing can be reserved, for notes and doctor.
    pub fn why_none(&self) -> String {
        format!(
            "the account's Lambda concurrency quota is {} and Lambda keeps {} of it unreserved, which leaves none \
             to reserve",
            self.limit,
            self.minimum_unreserved()
        )
    }
}

/// The note of a function left without its reservation: what that means, `why`, and the fix.
fn no_reservation(why: &str, region: &str) -> String {
    format!("runs without reserved concurrency, so two extraction runs can overlap: {why}; fix: {}", quota_fix(region))
}

/// The fix for a quota too small to reserve one execution.
pub fn quota_fix(region: &str) -> String {
    format!(
        "request a quota increase for Lambda \"Concurrent executions\" in Service Quotas (`aws service-quotas \
         request-service-quota-increase --service-code lambda --quota-code L-B99A9384 --desired-value 1000 --region \
         {region}`), then run `flixops deploy`"
    )
}

/// A Lambda call's failure.
type CallError<E> = SdkError<E, HttpResponse>;

/// The account's concurrency quota and what is left unreserved.
pub async fn account_concurrency(
    lambda: &aws_sdk_lambda::Client,
) -> Result<AccountConcurrency, CallError<aws_sdk_lambda::operation::get_account_settings::GetAccountSettingsError>> {
    let out = lambda.get_account_settings().send().await?;
    let limit = out.account_limit();
    let quota = limit.map(|l| l.concurrent_executions()).unwrap_or_default();
    let unreserved = limit.and_then(|l| l.unreserved_concurrent_executions()).unwrap_or(quota);
    Ok(AccountConcurrency { limit: quota, unreserved })
}

/// The function's reserved concurrency (None: it has none).
pub async fn reserved_concurrency(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> Result<Option<i32>, CallError<aws_sdk_lambda::operation::get_function_concurrency::GetFunctionConcurrencyError>> {
    let out = lambda.get_function_concurrency().function_name(name).send().await?;
    Ok(out.reserved_concurrent_executions())
}

/// What `read` learnt about reserving concurrency, and a refusal `apply` met.
#[derive(Debug, Default)]
pub struct QuotaSeen {
    account: Option<AccountConcurrency>,
    held: i32,
    refused: Option<String>,
}

impl QuotaSeen {
    /// True unless the account is known to leave nothing to reserve.
    fn reservable(&self) -> bool {
        self.account.is_none_or(|a| a.allows(RESERVED, self.held))
    }
}

impl Function {
    /// `aws_lambda_function.extract`.
    pub fn address() -> Address {
        Address::new("aws_lambda_function", "extract")
    }

    fn code_sha256(&self) -> String {
        if self.artifact.unknown.is_some() { UNKNOWN_CODE.to_string() } else { self.artifact.sha256.clone() }
    }

    fn arn(&self) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}", self.region, self.account_id, self.name)
    }

    fn env_vars(&self, inputs: &Inputs) -> HashMap<String, String> {
        self.environment
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    EnvValue::Literal(s) => s.clone(),
                    EnvValue::Output(address, key) => inputs.value(address, key),
                };
                (k.clone(), value)
            })
            .collect()
    }

    /// A variable as the plan shows it: values of variables flixops does not set are never shown,
    /// since someone may have put a secret there by hand.
    fn shown(&self, key: &str, value: &str) -> String {
        if self.environment.iter().any(|(k, _)| k == key) {
            format!("{key}={value}")
        } else {
            format!("{key}=(set outside flixops, value not shown)")
        }
    }

    fn err<E>(
        &self,
        op: &str,
        e: &aws_sdk_lambda::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ResourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failure(&Self::address(), op, e)
    }

    async fn create(&self, inputs: &Inputs) -> Result<(), ResourceError> {
        let code = FunctionCode::builder().zip_file(Blob::new(self.artifact.zip.clone())).build();
        let create = || {
            self.lambda
                .create_function()
                .function_name(&self.name)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(inputs.value(&self.role_from, "arn"))
                .code(code.clone())
                .architectures(Architecture::from(self.architecture.as_str()))
                .memory_size(self.memory_mb)
                .timeout(self.timeout_secs)
                .environment(Environment::builder().set_variables(Some(self.env_vars(inputs))).build())
                .set_tags(Some(self.tags.pairs().into_iter().collect()))
                .send()
        };
        let propagating = |e: &aws_sdk_lambda::error::SdkError<_, _>| role_not_yet_assumable(e.code(), e.message());
        self.propagation.retry(create, propagating).await.map(drop).map_err(|e| self.err("create", &e))
    }

    /// Waits until the function accepts another update (Lambda refuses one while one is in progress).
    async fn wait_ready(&self) -> Result<(), ResourceError> {
        for _ in 0..120 {
            let out = self
                .lambda
                .get_function_configuration()
                .function_name(&self.name)
                .send()
                .await
                .map_err(|e| self.err("wait for update", &e))?;
            let busy =
                out.state() == Some(&State::Pending) || out.last_update_status() == Some(&LastUpdateStatus::InProgress);
            if !busy {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(ResourceError {
            address: Self::address(),
            op: "wait for update".into(),
            message: "the function stayed busy for a minute; run `flixops deploy` again".into(),
            kind: ErrorKind::Other,
        })
    }

    async fn update_configuration(&self, inputs: &Inputs) -> Result<(), ResourceError> {
        self.lambda
            .update_function_configuration()
            .function_name(&self.name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(inputs.value(&self.role_from, "arn"))
            .memory_size(self.memory_mb)
            .timeout(self.timeout_secs)
            .environment(Environment::builder().set_variables(Some(self.env_vars(inputs))).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err("update configuration", &e))
    }

    /// Updates the configuration and the code, each only when a field of it changes.
    async fn update(&self, change: &Change, inputs: &Inputs) -> Result<(), ResourceError> {
        if CONFIG_FIELDS.iter().any(|f| change.touches(f)) {
            self.wait_ready().await?;
            self.update_configuration(inputs).await?;
        }
        if change.touches("code_sha256") || change.touches("architecture") {
            self.wait_ready().await?;
            self.update_code().await?;
        }
        Ok(())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, QuotaSeen> {
        self.quota.lock().expect("quota lock")
    }

    /// Reserves one execution; the account's refusal (its quota leaves none) becomes a note.
    async fn reserve(&self) -> Result<(), ResourceError> {
        let put =
            self.lambda.put_function_concurrency().function_name(&self.name).reserved_concurrent_executions(RESERVED);
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_quota_refusal(&e) => {
                let why = e.message().unwrap_or("the account's concurrency quota leaves none to reserve");
                let why = format!("Lambda refused to reserve one execution ({why})");
                self.seen().refused = Some(no_reservation(&why, &self.region));
                Ok(())
            }
            Err(e) => Err(self.err("put concurrency", &e)),
        }
    }

    /// No asynchronous retries, and events dropped after `max_event_age_secs` (overwrites the config).
    async fn put_invoke_config(&self) -> Result<(), ResourceError> {
        self.lambda
            .put_function_event_invoke_config()
            .function_name(&self.name)
            .maximum_retry_attempts(0)
            .maximum_event_age_in_seconds(self.max_event_age_secs)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err("put event invoke config", &e))
    }

    /// Async retries and event age as configured, Lambda's defaults when nothing is.
    async fn read_invoke_config(&self) -> Result<(i32, i32), ResourceError> {
        match self.lambda.get_function_event_invoke_config().function_name(&self.name).send().await {
            Ok(c) => Ok((
                c.maximum_retry_attempts().unwrap_or(DEFAULT_ASYNC_RETRIES),
                c.maximum_event_age_in_seconds().unwrap_or(DEFAULT_ASYNC_EVENT_AGE),
            )),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                Ok((DEFAULT_ASYNC_RETRIES, DEFAULT_ASYNC_EVENT_AGE))
            }
            Err(e) => Err(self.err("read event invoke config", &e)),
        }
    }

    async fn update_code(&self) -> Result<(), ResourceError> {
        self.lambda
            .update_function_code()
            .function_name(&self.name)
            .zip_file(Blob::new(self.artifact.zip.clone()))
            .architectures(Architecture::from(self.architecture.as_str()))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err("update code", &e))
    }
}

/// Lambda's answer while IAM has not propagated a new execution role yet: "The role defined for the
/// function cannot be assumed by Lambda." (an InvalidParameterValueException, see
/// <https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#API_CreateFunction_Errors>).
pub(crate) fn role_not_yet_assumable(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidParameterValueException") && message.is_some_and(|m| m.contains("cannot be assumed"))
}

const CONFIG_FIELDS: &[&str] = &["runtime", "handler", "role", "memory_mb", "timeout_secs", "environment"];
const INVOKE_FIELDS: &[&str] = &["async_max_retry_attempts", "async_max_event_age_secs"];

/// Lambda's answer when a reservation would leave less unreserved than the account's minimum.
fn is_quota_refusal<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("InvalidParameterValueException")
        && e.message().is_some_and(|m| m.contains("UnreservedConcurrentExecution"))
}

impl Resource for Function {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        let mut deps = vec![self.role_from.clone()];
        for (_, v) in &self.environment {
            if let EnvValue::Output(address, _) = v {
                deps.push(address.clone());
            }
        }
        deps.sort();
        deps.dedup();
        deps
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let (function, account) = tokio::join!(
                self.lambda.get_function().function_name(&self.name).send(),
                account_concurrency(&self.lambda)
            );
            self.seen().account = Some(account.map_err(|e| self.err("read account settings", &e))?);
            let out = match function {
                Ok(out) => out,
                Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
                Err(e) => return Err(self.err("read", &e)),
            };
            let Some(c) = out.configuration else { return Ok(None) };
            let (reserved, invoke) =
                tokio::join!(reserved_concurrency(&self.lambda, &self.name), self.read_invoke_config());
            let reserved = reserved.map_err(|e| self.err("read concurrency", &e))?;
            let (retries, event_age) = invoke?;
            self.seen().held = reserved.unwrap_or(0);
            let mut env: Vec<String> = c
                .environment()
                .and_then(|e| e.variables())
                .map(|vars| vars.iter().map(|(k, v)| self.shown(k, v)).collect())
                .unwrap_or_default();
            env.sort();
            let arch = c.architectures().first().map(|a| a.as_str().to_string()).unwrap_or("x86_64".into());
            let fields: Fields = field_map([
                ("runtime", c.runtime().map(|r| r.as_str().to_string()).unwrap_or_default()),
                ("handler", c.handler().unwrap_or_default().to_string()),
                ("role", c.role().unwrap_or_default().to_string()),
                ("architecture", arch),
                ("memory_mb", c.memory_size().unwrap_or_default().to_string()),
                ("timeout_secs", c.timeout().unwrap_or_default().to_string()),
                ("environment", env.join(" ")),
                ("code_sha256", c.code_sha256().unwrap_or_default().to_string()),
                ("reserved_concurrency", reserved.map_or("none".to_string(), |n| n.to_string())),
                ("async_max_retry_attempts", retries.to_string()),
                ("async_max_event_age_secs", event_age.to_string()),
            ]);
            Ok(Some(Observed { fields, outputs: [("arn".to_string(), self.arn())].into() }))
        })
    }

    fn desired(&self, inputs: &Inputs) -> Fields {
        let mut env: Vec<String> = self.env_vars(inputs).iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.sort();
        let mut fields = field_map([
            ("runtime", "provided.al2023".to_string()),
            ("handler", "bootstrap".to_string()),
            ("role", inputs.value(&self.role_from, "arn")),
            ("architecture", self.architecture.clone()),
            ("memory_mb", self.memory_mb.to_string()),
            ("timeout_secs", self.timeout_secs.to_string()),
            ("environment", env.join(" ")),
            ("code_sha256", self.code_sha256()),
            ("async_max_retry_attempts", "0".to_string()),
            ("async_max_event_age_secs", self.max_event_age_secs.to_string()),
        ]);
        // Where the quota leaves nothing to reserve, the field is not managed and a note says why.
        if self.seen().reservable() {
            fields.insert("reserved_concurrency".into(), RESERVED.to_string());
        }
        fields
    }

    /// With the code unknown, the deployed code is kept: it is compared with itself.
    fn diff(&self, observed: Option<&Observed>, inputs: &Inputs) -> Change {
        let mut desired = self.desired(inputs);
        if let (Some(_), Some(deployed)) = (&self.artifact.unknown, observed) {
            desired.insert("code_sha256".into(), deployed.fields.get("code_sha256").cloned().unwrap_or_default());
        }
        crate::plan::diff_fields(&desired, observed, self.replace_on())
    }

    fn planned_outputs(&self) -> Outputs {
        [("arn".to_string(), self.arn())].into()
    }

    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            match observed {
                None => self.create(inputs).await?,
                Some(_) => self.update(change, inputs).await?,
            }
            // Neither is a configuration update, so neither waits for one to finish.
            if change.touches("reserved_concurrency") {
                self.reserve().await?;
            }
            if INVOKE_FIELDS.iter().any(|f| change.touches(f)) {
                self.put_invoke_config().await?;
            }
            Ok(self.planned_outputs())
        })
    }

    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.artifact.unknown.iter().map(|why| unknown_code(why)).collect();
        let seen = self.seen();
        if let Some(refused) = &seen.refused {
            notes.push(refused.clone());
        } else if let Some(account) = seen.account.filter(|_| !seen.reservable()) {
            notes.push(no_reservation(&account.why_none(), &self.region));
        }
        notes
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            self.lambda
                .delete_function()
                .function_name(&self.name)
                .send()
                .await
                .map(drop)
                .map_err(|e| self.err("delete", &e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_keeps_100_unreserved_or_the_whole_of_a_smaller_quota() {
        let account = |limit, unreserved| AccountConcurrency { limit, unreserved };
        assert!(account(1000, 1000).allows(1, 0), "the default quota has room");
        assert!(!account(10, 10).allows(1, 0), "new accounts keep all 10");
        assert!(!account(50, 50).allows(1, 0), "and all 50");
        assert!(account(101, 101).allows(1, 0) && !account(101, 100).allows(1, 0), "others' reservations count");
        assert!(account(101, 100).allows(1, 1), "what the function holds already is its own");
        assert_eq!(account(10, 10).minimum_unreserved(), 10);
        assert!(account(10, 10).why_none().contains("quota is 10 and Lambda keeps 10 of it unreserved"));
    }
}
