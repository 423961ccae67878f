//! The EventBridge Scheduler schedule that invokes the extractor (`extract.schedule`), without
//! retries: a failed or refused invocation waits for the next scheduled one instead of overlapping it.

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;

use super::failure;
use crate::plan::{Address, Change, ErrorKind, Fields, Inputs, Observed, Outputs, Resource, ResourceError, field_map};

/// The schedule, in the default group.
pub struct Schedule {
    /// The Scheduler client.
    pub scheduler: aws_sdk_scheduler::Client,
    /// Schedule name.
    pub name: String,
    /// `rate(…)`, `cron(…)` or `at(…)`.
    pub expression: String,
    /// The function it invokes (`arn` output).
    pub function_from: Address,
    /// The role it invokes with (`arn` output).
    pub role_from: Address,
    /// How long an invocation may wait to be delivered, see [`event_age_bound`].
    pub max_event_age_secs: i32,
    /// How long creating it waits for a new scheduler role to become assumable.
    pub propagation: super::Propagation,
}

/// Scheduler's retry policy when none is given: 185 retries over 24 hours (API_RetryPolicy).
const DEFAULT_RETRIES: i32 = 185;
const DEFAULT_EVENT_AGE: i32 = 86400;

/// How long an invocation of the extractor may wait to start, in seconds: one schedule interval.
/// With one reserved execution, an invocation that arrives while the previous run still holds it
/// waits in Lambda's queue; once the next scheduled invocation is due, the waiting one is stale
/// (that run picks up from the checkpoint), so it is dropped instead of queueing runs back to back.
/// cron() and at() have no fixed interval: one hour, flixops' default `rate(1 hour)`. Clamped to
/// what Lambda's async invoke config accepts (60 s to 6 h), which Scheduler's (60 s to 24 h) covers.
pub fn event_age_bound(expression: &str) -> i32 {
    let interval = crate::config::schedule::Schedule::parse(expression).ok().and_then(|s| s.interval_secs());
    interval.unwrap_or(3600).clamp(60, 21600) as i32
}

impl Schedule {
    /// `aws_scheduler_schedule.extract`.
    pub fn address() -> Address {
        Address::new("aws_scheduler_schedule", "extract")
    }

    fn parts(&self, inputs: &Inputs) -> Result<(Target, FlexibleTimeWindow), ResourceError> {
        let invalid = |e: aws_smithy_types::error::operation::BuildError| ResourceError {
            address: Self::address(),
            op: "build request".into(),
            message: e.to_string(),
            kind: ErrorKind::Other,
        };
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(0)
            .maximum_event_age_in_seconds(self.max_event_age_secs)
            .build();
        let target = Target::builder()
            .arn(inputs.value(&self.function_from, "arn"))
            .role_arn(inputs.value(&self.role_from, "arn"))
            .retry_policy(retry)
            .build()
            .map_err(invalid)?;
        let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(invalid)?;
        Ok((target, window))
    }
}

const DESCRIPTION: &str = "Runs the flixops extractor";

/// Scheduler's answer while IAM has not propagated a new role yet: a ValidationException "The
/// execution role you provide must allow AWS EventBridge Scheduler to assume the role."
/// (<https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role>).
pub(crate) fn role_not_yet_assumable(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ValidationException") && message.is_some_and(|m| m.contains("assume"))
}

impl Resource for Schedule {
    fn address(&self) -> Address {
        Self::address()
    }

    fn depends_on(&self) -> Vec<Address> {
        vec![self.role_from.clone(), self.function_from.clone()]
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move {
            let out = match self.scheduler.get_schedule().name(&self.name).send().await {
                Ok(out) => out,
                Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
                Err(e) => return Err(failure(&Self::address(), "read", &e)),
            };
            let target = out.target();
            let retry = target.and_then(|t| t.retry_policy());
            let fields: Fields = field_map([
                ("expression", out.schedule_expression().unwrap_or_default().to_string()),
                ("state", out.state().map(|s| s.as_str().to_string()).unwrap_or_default()),
                ("target", target.map(|t| t.arn().to_string()).unwrap_or_default()),
                ("target_role", target.map(|t| t.role_arn().to_string()).unwrap_or_default()),
                (
                    "max_retry_attempts",
                    retry.and_then(|r| r.maximum_retry_attempts()).unwrap_or(DEFAULT_RETRIES).to_string(),
                ),
                (
                    "max_event_age_secs",
                    retry.and_then(|r| r.maximum_event_age_in_seconds()).unwrap_or(DEFAULT_EVENT_AGE).to_string(),
                ),
            ]);
            Ok(Some(Observed { fields, outputs: [("arn".to_string(), out.arn.unwrap_or_default())].into() }))
        })
    }

    fn desired(&self, inputs: &Inputs) -> Fields {
        field_map([
            ("expression", self.expression.clone()),
            ("state", "ENABLED".to_string()),
            ("target", inputs.value(&self.function_from, "arn")),
            ("target_role", inputs.value(&self.role_from, "arn")),
            ("max_retry_attempts", "0".to_string()),
            ("max_event_age_secs", self.max_event_age_secs.to_string()),
        ])
    }

    fn apply<'a>(
        &'a self,
        _change: &'a Change,
        observed: Option<&'a Observed>,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move {
            let (target, window) = self.parts(inputs)?;
            // UpdateSchedule replaces the whole definition, so both paths send all of it. A
            // scheduler role created seconds ago may not be assumable yet: retried.
            macro_rules! send {
                ($call:expr, $op:literal) => {
                    self.propagation
                        .retry(
                            || {
                                $call
                                    .name(&self.name)
                                    .description(DESCRIPTION)
                                    .schedule_expression(&self.expression)
                                    .state(ScheduleState::Enabled)
                                    .target(target.clone())
                                    .flexible_time_window(window.clone())
                                    .send()
                            },
                            |e: &aws_sdk_scheduler::error::SdkError<_, _>| {
                                role_not_yet_assumable(e.code(), e.message())
                            },
                        )
                        .await
                        .map_err(|e| failure(&Self::address(), $op, &e))?
                        .schedule_arn
                };
            }
            let arn = if observed.is_none() {
                send!(self.scheduler.create_schedule(), "create")
            } else {
                send!(self.scheduler.update_schedule(), "update")
            };
            Ok([("arn".to_string(), arn)].into())
        })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async move {
            match self.scheduler.delete_schedule().name(&self.name).send().await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
                Err(e) => Err(failure(&Self::address(), "delete", &e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::event_age_bound;

    #[test]
    fn invocations_wait_at_most_one_interval_within_lambdas_range() {
        assert_eq!(event_age_bound("rate(2 hours)"), 7200);
        assert_eq!(event_age_bound("rate(1 hour)"), 3600);
        assert_eq!(event_age_bound("rate(15 minutes)"), 900);
        assert_eq!(event_age_bound("rate(1 minute)"), 60);
        assert_eq!(event_age_bound("rate(1 day)"), 21600, "Lambda keeps an event 6 h at most");
        assert_eq!(event_age_bound("cron(0 6 ? * MON-FRI *)"), 3600, "no fixed interval: one hour");
        assert_eq!(event_age_bound("rate(99999999 days)"), 21600, "no overflow");
    }
}
