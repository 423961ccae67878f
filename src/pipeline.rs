//! Extraction as library calls that return reports, on either target: extract and backfill. The
//! local target's load, transform and run are in [`crate::local::pipeline`].

use std::path::PathBuf;

use crate::Error;
use crate::config::{Config, EnvConfig, LocalTarget, Target};
use crate::extract::api::XClient;
use crate::extract::replay::Replay;
use crate::extract::sink::Sink;
use crate::extract::{self, Job, Source, backfill};

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

/// One extraction into the environment's store (or `to`, a directory playing the bucket); into the
/// lake, it goes into the local run history (`flixops logs`).
pub async fn extract(
    config: &Config,
    env: &EnvConfig,
    input: &Input,
    to: Option<PathBuf>,
) -> Result<extract::Report, Error> {
    let into_store = to.is_none();
    let result = extract_unrecorded(config, env, input, to).await;
    if into_store {
        crate::logs::history::remember(env, "extract", &result, |e| {
            (status_of(e), summary_of(e), Some(e.run_id.clone()))
        });
    }
    result
}

/// `ok`, or `partial` for an extraction that stopped early and resumes next run.
pub(crate) fn status_of(report: &extract::Report) -> &'static str {
    if report.partial.is_some() { "partial" } else { "ok" }
}

/// An extraction in one line of the run history.
pub(crate) fn summary_of(report: &extract::Report) -> String {
    let partial = report.partial.as_deref().map(|why| format!(" (partial: {why})")).unwrap_or_default();
    format!("extracted {} tweets in {} page(s){partial}", report.tweets, report.pages)
}

/// [`extract`] without its history line (`run` writes one for the whole run).
pub(crate) async fn extract_unrecorded(
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

/// The environment's local target, or the usage error that says what runs it on the cloud.
pub fn local_target(env: &EnvConfig) -> Result<&LocalTarget, Error> {
    match &env.target {
        Target::Local(local) => Ok(local),
        other => Err(Error::WrongTarget {
            env: env.name.clone(),
            target: other.kind(),
            hint: "on aws-snowflake the Lambda extracts, Snowpipe loads and dynamic tables transform: use `flixops deploy`",
        }),
    }
}
