//! Connect and per-call timeouts of the AWS and Snowflake clients `plan`, `deploy`, `destroy`,
//! `doctor` and `export` use, so one stalled call fails the command instead of hanging CI. Set by
//! environment variables (a CI job tunes them without editing flixops.toml).

use std::time::Duration;

/// Seconds to open a connection (TCP and TLS), AWS and Snowflake alike.
pub const CONNECT_VAR: &str = "FLIXOPS_CONNECT_TIMEOUT_SECS";
/// Seconds one AWS API call may take, retries included, and a Snowflake sign-in.
pub const OPERATION_VAR: &str = "FLIXOPS_OPERATION_TIMEOUT_SECS";
/// Seconds one Snowflake statement may take (creating a dynamic table builds it).
pub const STATEMENT_VAR: &str = "FLIXOPS_STATEMENT_TIMEOUT_SECS";
/// Seconds one `doctor` check may take before it reports that it had no answer.
pub const CHECK_VAR: &str = "FLIXOPS_CHECK_TIMEOUT_SECS";

/// A timeout variable that is not a whole number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} = `{value}`: use a whole number of seconds, 1 or more (unset: {default} s)")]
pub struct TimeoutError {
    /// The variable.
    pub var: &'static str,
    /// What it held.
    pub value: String,
    /// Its default, in seconds.
    pub default: u64,
}

/// How long a client waits before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// One AWS call (all its attempts), or a Snowflake sign-in.
    pub operation: Duration,
    /// One Snowflake statement.
    pub statement: Duration,
    /// One `doctor` check.
    pub check: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 2 minutes an AWS call (a Lambda code upload included), 15 minutes a
    /// statement, 30 s a doctor check.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            operation: Duration::from_secs(120),
            statement: Duration::from_secs(15 * 60),
            check: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The defaults, overridden by the variables `var` reads.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, TimeoutError> {
        let default = Self::default();
        let read = |name: &'static str, default: Duration| match var(name) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                _ => Err(TimeoutError { var: name, value, default: default.as_secs() }),
            },
        };
        Ok(Self {
            connect: read(CONNECT_VAR, default.connect)?,
            operation: read(OPERATION_VAR, default.operation)?,
            statement: read(STATEMENT_VAR, default.statement)?,
            check: read(CHECK_VAR, default.check)?,
        })
    }

    /// The same, read from the process environment.
    pub fn from_process_env() -> Result<Self, TimeoutError> {
        Self::from_env(&|k| std::env::var(k).ok())
    }

    /// The AWS SDK's form: connect, and the whole operation with its retries.
    pub fn aws(&self) -> aws_smithy_types::timeout::TimeoutConfig {
        aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_timeout(self.operation)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_the_defaults_and_a_bad_one_is_named() {
        let none = Timeouts::from_env(&|_| None).unwrap();
        assert_eq!(none, Timeouts::default());
        let set = Timeouts::from_env(&|k| (k == OPERATION_VAR).then(|| "7".to_string())).unwrap();
        assert_eq!((set.operation, set.connect), (Duration::from_secs(7), Duration::from_secs(10)));
        let err = Timeouts::from_env(&|k| (k == CONNECT_VAR).then(|| "soon".to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "FLIXOPS_CONNECT_TIMEOUT_SECS = `soon`: use a whole number of seconds, 1 or more (unset: 10 s)"
        );
        assert!(
            Timeouts::from_env(&|k| (k == STATEMENT_VAR).then(|| "0".to_string()))
                .is_err_and(|e| e.var == STATEMENT_VAR)
        );
    }
}
