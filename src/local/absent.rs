//! The local target in a build without the `local` feature (no DuckDB, as the Lambda artifact and
//! the cloud-only release): the entry points the rest of flixops calls, each saying how to get it.

/// Why a local command cannot run here, and the way out (exit code 2).
const WHY: &str = "this flixops was built without the local target (no DuckDB: `--no-default-features`, as the \
                   Lambda artifact is); install the full build (the release's `flixops`, or `cargo install --locked \
                   flixops`, default features) to run the pipeline locally";

/// The local target's failures: none can happen in this build.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {}

/// The local models.
pub mod models {
    /// A model build failure: none can happen in this build.
    #[derive(Debug, thiserror::Error)]
    pub enum TransformError {}
}

/// `run` and `transform`.
pub mod pipeline {
    use serde::Serialize;

    use crate::Error;
    use crate::config::{Config, EnvConfig};
    use crate::pipeline::Input;

    /// No load or transform happens in this build, so there is never a report.
    #[derive(Debug, Clone, Serialize)]
    pub enum TransformReport {}

    /// No run happens in this build, so there is never a report.
    #[derive(Debug, Clone, Serialize)]
    pub enum RunReport {}

    impl crate::output::Render for TransformReport {
        fn write_human(&self, _: &mut dyn std::io::Write) -> std::io::Result<()> {
            match *self {}
        }
    }

    impl crate::output::Render for RunReport {
        fn write_human(&self, _: &mut dyn std::io::Write) -> std::io::Result<()> {
            match *self {}
        }
    }

    /// Refuses: the load and the models need DuckDB.
    pub fn transform(_: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
        crate::pipeline::local_target(env)?;
        Err(Error::NoLocal(super::WHY))
    }

    /// Refuses before extracting anything: the run could not load what it stored.
    pub async fn run(_: &Config, env: &EnvConfig, _: &Input) -> Result<RunReport, Error> {
        crate::pipeline::local_target(env)?;
        Err(Error::NoLocal(super::WHY))
    }
}

/// The report's marts.
pub mod report {
    /// Refuses: the local marts are in DuckDB.
    pub fn marts(_: &std::path::Path) -> Result<Box<dyn crate::report::Marts>, crate::Error> {
        Err(crate::Error::NoLocal(super::WHY))
    }
}

/// `doctor --canary` on a local environment.
pub mod canary {
    use std::time::Duration;

    use crate::config::LocalTarget;
    use crate::doctor::canary::Outcome;

    /// What to do about it: the full build.
    pub const FIX: &str = super::WHY;

    /// Writes nothing: this build could not load the file.
    pub async fn follow(_: &LocalTarget, _: &str, timeout: Duration) -> Outcome {
        Outcome::new("", None, timeout, Some("this build has no DuckDB to load it".into()))
    }
}

/// `doctor` on a local environment.
pub mod doctor {
    use crate::config::{Config, EnvConfig, LocalTarget};
    use crate::doctor::{Check, Status};
    use crate::extract::checkpoint::LastRun;

    /// The extraction checks (they need no DuckDB), then the warehouse check that cannot run here.
    pub fn checks(
        _: &Config,
        _: &EnvConfig,
        _: &LocalTarget,
        extraction: Vec<Check>,
        _: Option<&LastRun>,
    ) -> Vec<Check> {
        let mut checks = extraction;
        checks.push(Check::new("warehouse", Status::Fail, "not checked: this build has no DuckDB", Some(super::WHY)));
        checks
    }
}
