//! The commands' work, as library calls that return reports: extract, load, transform, run.

use std::path::PathBuf;

use serde::Serialize;

use crate::Error;
use crate::config::{Config, EnvConfig, LocalTarget, Target};
use crate::extract::api::XClient;
use crate::extract::replay::Replay;
use crate::extract::sink::Sink;
use crate::extract::{self, Job, Source, backfill};
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

/// One extraction into the environment's store (or `to`, a directory playing the bucket).
pub async fn extract(
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

/// Loads pending lake files, then rebuilds every model (local target).
pub fn transform_local(config: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
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
    /// The report page `run --demo` writes beside the warehouse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
}

/// extract → load → transform, once (local target).
pub async fn run_local(config: &Config, env: &EnvConfig, input: &Input) -> Result<RunReport, Error> {
    local_target(env)?;
    let extract = extract(config, env, input, None).await?;
    let transform = transform_local(config, env)?;
    let report = match input {
        Input::Demo => demo_report(env).await,
        _ => None,
    };
    Ok(RunReport { extract, transform, report })
}

/// `run --demo` ends with the report of what it loaded: `report.html` beside the warehouse. The run
/// itself succeeded, so a page that cannot be written is a warning.
async fn demo_report(env: &EnvConfig) -> Option<PathBuf> {
    let dir = local_target(env).ok()?.warehouse.parent()?.to_path_buf();
    let options = crate::report::Options { days: DEMO_REPORT_DAYS, out: dir.join("report.html") };
    match crate::report::generate(env, &options).await {
        Ok(written) => Some(written.path),
        Err(e) => {
            tracing::warn!("the run is complete, but its report was not written: {e}");
            None
        }
    }
}

/// The demo's report period (its recording spans minutes).
const DEMO_REPORT_DAYS: u32 = 30;

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
