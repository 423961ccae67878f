//! The commands' work, as library calls that return reports: extract, load, transform, run.

use std::path::PathBuf;

use serde::Serialize;

use crate::Error;
use crate::config::{Config, EnvConfig, LocalTarget, Target};
use crate::extract::api::XClient;
use crate::extract::replay::Replay;
use crate::extract::sink::Sink;
use crate::extract::{self, Job, Source, backfill};
use crate::local::logs::RunRecord;
use crate::local::{LoadReport, Warehouse};
use crate::models::local::ModelOutcome;
use crate::models::{self, Dialect};

/// The recorded page `--demo` replays: a real `#brexit` recent-search page (see tests/fixtures/x-api).
pub const DEMO_PAGES: &[u8] = include_bytes!("../tests/fixtures/x-api/brexit.jsonl");
/// The query the demo rows carry.
pub const DEMO_QUERY: &str = "#brexit";

/// Where an extraction's pages come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// The live X API, after the checkpoint.
    Api,
    /// Recorded pages at this path.
    Replay(PathBuf),
    /// The recording compiled into the binary.
    Demo,
}

/// One extraction into the environment's store (or `to`, a directory playing the bucket); on the
/// local target it goes into the run history.
pub async fn extract(
    config: &Config,
    env: &EnvConfig,
    input: &Input,
    to: Option<PathBuf>,
) -> Result<extract::Report, Error> {
    let into_lake = to.is_none();
    let result = extract_once(config, env, input, to).await;
    if into_lake {
        remember(env, "extract", &result, |e| (status_of(e), extract_summary(e), Some(e.run_id.clone())));
    }
    result
}

async fn extract_once(
    config: &Config,
    env: &EnvConfig,
    input: &Input,
    to: Option<PathBuf>,
) -> Result<extract::Report, Error> {
    let sink = match to {
        Some(dir) => Sink::Dir(dir),
        None => store(env).await,
    };
    let mut job = Job::new(&config.extract, &env.prefix);
    let mut source = match input {
        Input::Api => Source::Api(x_client(config, env).await?),
        Input::Replay(path) => Source::Replay(
            Replay::open(path)
                .map_err(|source| extract::ExtractError::Replay { path: path.display().to_string(), source })?,
        ),
        Input::Demo => {
            job.query = DEMO_QUERY.to_string();
            Source::Replay(Replay::embedded("(demo) brexit.jsonl", DEMO_PAGES))
        }
    };
    Ok(extract::run(&job, &mut source, &sink).await?)
}

/// The environment's object store: the lake directory, or the bucket with the profile's credentials.
async fn store(env: &EnvConfig) -> Sink {
    match &env.target {
        Target::Local(local) => Sink::Dir(local.lake_dir.clone()),
        Target::AwsSnowflake(cloud) => {
            let sdk = crate::aws::sdk_config(cloud.aws_profile.as_deref(), cloud.region.as_deref()).await;
            Sink::S3 { client: crate::aws::s3_client(&sdk), bucket: cloud.bucket.clone() }
        }
    }
}

/// An X API client with the bearer token resolved (from Secrets Manager on the cloud target).
async fn x_client(config: &Config, env: &EnvConfig) -> Result<XClient, extract::ExtractError> {
    let sdk = match &env.target {
        Target::AwsSnowflake(c) => Some(crate::aws::sdk_config(c.aws_profile.as_deref(), c.region.as_deref()).await),
        Target::Local(_) => None,
    };
    let token = config.extract.bearer_token.resolve(sdk.as_ref()).await?;
    Ok(XClient::new(&config.extract, token)?)
}

/// Quotes a backfill on the environment's store (the bucket on the cloud target, written with the
/// credentials `extract` uses); [`backfill::Prepared::run`] then buys it.
pub async fn backfill(
    config: &Config,
    env: &EnvConfig,
    request: &backfill::Request,
) -> Result<backfill::Prepared, Error> {
    let job = backfill::Job::new(&config.extract, &env.prefix, request.max_posts);
    let client = x_client(config, env).await?;
    Ok(backfill::prepare(job, request, client, store(env).await).await?)
}

/// What `transform` did on the local target.
#[derive(Debug, Clone, Serialize)]
pub struct TransformReport {
    /// Files loaded first (Snowpipe's job in the cloud).
    pub load: LoadReport,
    /// Each model, in the order it was built.
    pub models: Vec<ModelOutcome>,
}

/// Loads pending lake files, then rebuilds every model (local target); it goes into the run history.
pub fn transform_local(config: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
    let result = transform_once(config, env);
    remember(env, "transform", &result, |t| ("ok", transform_summary(t), None));
    result
}

fn transform_once(config: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
    let local = local_target(env)?;
    let mut warehouse = Warehouse::open(local)?;
    let load = warehouse.load_new_files(&env.prefix)?;
    let found = models::discover(&config.root.join("models"))?;
    let rendered = models::render_all(&found, &Dialect::DuckDb)?;
    let models = models::local::apply(warehouse.connection(), &rendered)?;
    Ok(TransformReport { load, models })
}

/// What `run` did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The extraction.
    pub extract: extract::Report,
    /// The load and the models.
    pub transform: TransformReport,
}

/// extract → load → transform, once (local target); it goes into the run history.
pub async fn run_local(config: &Config, env: &EnvConfig, input: &Input) -> Result<RunReport, Error> {
    local_target(env)?;
    let result = match extract_once(config, env, input, None).await {
        Ok(extract) => transform_once(config, env).map(|transform| RunReport { extract, transform }),
        Err(e) => Err(e),
    };
    remember(env, "run", &result, |r| {
        let summary = format!("{}; {}", extract_summary(&r.extract), transform_summary(&r.transform));
        (status_of(&r.extract), summary, Some(r.extract.run_id.clone()))
    });
    result
}

/// Adds a local command's outcome to the run history (`flixops logs`); the cloud has CloudWatch.
fn remember<T>(
    env: &EnvConfig,
    command: &str,
    result: &Result<T, Error>,
    describe: impl Fn(&T) -> (&'static str, String, Option<String>),
) {
    let Target::Local(local) = &env.target else { return };
    let record = match result {
        Ok(done) => {
            let (status, summary, run_id) = describe(done);
            RunRecord::now(command, status, summary, run_id)
        }
        Err(e) => RunRecord::now(command, "error", e.to_string(), None),
    };
    crate::local::logs::record(local, &record);
}

fn status_of(report: &extract::Report) -> &'static str {
    if report.partial.is_some() { "partial" } else { "ok" }
}

fn extract_summary(report: &extract::Report) -> String {
    let partial = report.partial.as_deref().map(|why| format!(" (partial: {why})")).unwrap_or_default();
    format!("extracted {} tweets in {} page(s){partial}", report.tweets, report.pages)
}

fn transform_summary(report: &TransformReport) -> String {
    format!(
        "loaded {} file(s), {} rows; built {} model(s)",
        report.load.files_loaded,
        report.load.rows_loaded,
        report.models.len()
    )
}

fn local_target(env: &EnvConfig) -> Result<&LocalTarget, Error> {
    match &env.target {
        Target::Local(local) => Ok(local),
        other => Err(Error::WrongTarget {
            env: env.name.clone(),
            target: other.kind(),
            hint: "on aws-snowflake the Lambda extracts, Snowpipe loads and dynamic tables transform: use `flixops deploy`",
        }),
    }
}
