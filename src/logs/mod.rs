//! `flixops logs`: on aws-snowflake the extract function's CloudWatch Logs (as `sam logs` shows
//! them), locally the run history. The command reads [`Logs::next`] once, or keeps reading with
//! `--follow`.

use serde::Serialize;

use crate::Error;
use crate::aws::Session;
use crate::aws::logs::{LogEvent, Tail};
use crate::config::{Config, EnvConfig, Target};

pub mod history;

use history::RunRecord;

/// What to read.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// How far back to start.
    pub since: std::time::Duration,
    /// Only the lines of failed runs.
    pub errors: bool,
}

/// The environment's logs, read from where the last read stopped.
#[derive(Debug)]
pub enum Logs {
    /// The function's log group.
    Cloud(Tail),
    /// The local run history.
    Local(history::Tail),
}

/// One entry, with its human line and its JSON form.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Entry {
    /// A CloudWatch event.
    Event(LogEvent),
    /// A local run.
    Run(RunRecord),
}

impl Entry {
    /// The line printed for it.
    pub fn line(&self) -> String {
        match self {
            Entry::Event(event) => event.sam_line(),
            Entry::Run(run) => run.line(),
        }
    }
}

/// Opens the logs of the environment's target (on aws-snowflake after STS accepts the credentials).
pub async fn open(config: &Config, env: &EnvConfig, request: Request) -> Result<Logs, Error> {
    let since = chrono::Utc::now() - chrono::Duration::from_std(request.since).unwrap_or_default();
    match &env.target {
        Target::Local(local) => Ok(Logs::Local(history::Tail::new(local, since, request.errors))),
        Target::AwsSnowflake(cloud) => {
            let session =
                Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]).await?;
            let names = crate::aws::stack::Names::new(&config.project, &env.name, &cloud.bucket);
            let tail =
                Tail::new(session.clients.logs.clone(), names.log_group, since.timestamp_millis(), request.errors);
            Ok(Logs::Cloud(tail))
        }
    }
}

impl Logs {
    /// Where the entries come from: the log group, or the history file.
    pub fn source(&self) -> String {
        match self {
            Logs::Cloud(tail) => tail.group().to_string(),
            Logs::Local(tail) => tail.location(),
        }
    }

    /// The entries written since the last call, oldest first.
    pub async fn next(&mut self) -> Result<Vec<Entry>, Error> {
        match self {
            Logs::Cloud(tail) => Ok(tail.next().await?.into_iter().map(Entry::Event).collect()),
            Logs::Local(tail) => Ok(tail.next()?.into_iter().map(Entry::Run).collect()),
        }
    }
}
