//! The EventBridge Scheduler schedule that invokes the extractor (`extract.schedule`).

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
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
    /// How long creating it waits for a new scheduler role to become assumable.
    pub propagation: super::Propagation,
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
        let target = Target::builder()
            .arn(inputs.value(&self.function_from, "arn"))
            .role_arn(inputs.value(&self.role_from, "arn"))
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
            let fields: Fields = field_map([
                ("expression", out.schedule_expression().unwrap_or_default().to_string()),
                ("state", out.state().map(|s| s.as_str().to_string()).unwrap_or_default()),
                ("target", target.map(|t| t.arn().to_string()).unwrap_or_default()),
                ("target_role", target.map(|t| t.role_arn().to_string()).unwrap_or_default()),
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
