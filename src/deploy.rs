//! `plan`, `deploy` and `secrets set` for the cloud target: connect, build the graph, read, diff,
//! apply. `plan` and the read phase of `deploy` make no write call (the call log proves it).

use std::io::Write;
use std::path::Path;

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use serde::Serialize;

use crate::Error;
use crate::aws::lambda::{Artifact, ArtifactError};
use crate::aws::stack::{self, Names, Upstream};
use crate::aws::{Session, secret};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig, Target};
use crate::models::{self, Dialect, Rendered};
use crate::plan::saved::{Origin, PlanFileError, SavedPlan};
use crate::plan::{ApplyReport, Graph, ObservedAll, Plan, Shown, render_notes};
use crate::snowflake::{self, Client as SnowflakeClient, connection};

/// A read and diffed environment, ready to show and to apply.
pub struct Prepared {
    /// Clients and the call log.
    pub session: Session,
    /// The resources, ordered.
    pub graph: Graph,
    /// What was read.
    pub observed: ObservedAll,
    /// The diff.
    pub plan: Plan,
    /// What `destroy` leaves in place (the data bucket, unless purging).
    pub keep: Vec<crate::plan::Address>,
    /// The Snowflake session, when the graph has Snowflake resources.
    pub snowflake: Option<SnowflakeClient>,
    /// Why the function's code is unknown (no Linux artifact), when it is.
    pub unknown_code: Option<String>,
}

/// What `deploy` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// The plan that was applied.
    pub plan: Plan,
    /// Resources that changed.
    pub applied: ApplyReport,
    /// Every AWS call that could change something, in order (empty on a converged re-run).
    pub write_calls: Vec<String>,
    /// Every Snowflake statement that could change something, in order (empty on a converged re-run).
    pub snowflake_writes: Vec<String>,
    /// Changes AWS completes after the call returned, and what that means for the pipeline.
    pub notes: Vec<String>,
    /// Made by `destroy`, so the summary says destroyed rather than added.
    #[serde(skip)]
    pub destroyed: bool,
}

/// What AWS finishes after `deploy` returns: S3 applies a changed notification configuration within
/// about five minutes
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/how-to-enable-disable-notification-intro.html>).
fn notes(applied: &ApplyReport) -> Vec<String> {
    let notification = crate::aws::s3::Notification::address();
    if !applied.applied.contains(&notification) {
        return Vec::new();
    }
    vec![format!(
        "{notification} changed: S3 takes about five minutes to apply it, so Snowpipe may not hear of files \
         written meanwhile; if some are missing afterwards, `ALTER PIPE … REFRESH` loads them"
    )]
}

/// The cloud part of an environment, or a usage error for the local target.
pub fn cloud_target(env: &EnvConfig) -> Result<&AwsSnowflakeTarget, Error> {
    match &env.target {
        Target::AwsSnowflake(cloud) => Ok(cloud),
        other => Err(Error::WrongTarget {
            env: env.name.clone(),
            target: other.kind(),
            hint: "the local target has nothing to deploy: `flixops run` creates the lake and warehouse it needs",
        }),
    }
}

/// Connects to AWS and Snowflake, builds the graph and reads every resource concurrently. `extra`
/// interceptors are added to every AWS client (tests use them to inject faults).
pub async fn prepare(
    config: &Config,
    env: &EnvConfig,
    artifact: Option<&Path>,
    extra: &[SharedInterceptor],
) -> Result<Prepared, Error> {
    prepare_keeping(config, env, artifact, extra, None).await
}

/// [`prepare`] for `deploy FILE`: a storage integration the saved plan creates gets the external
/// ID that plan shows (a new one is chosen at random when planning), so what is applied is what
/// was saved.
pub async fn prepare_saved(
    config: &Config,
    env: &EnvConfig,
    artifact: Option<&Path>,
    saved: &SavedPlan,
) -> Result<Prepared, Error> {
    let address = snowflake::integration::StorageIntegration::address();
    let external_id = saved.planned_value(&address.0, "storage_aws_external_id");
    prepare_keeping(config, env, artifact, &[], external_id.as_deref()).await
}

async fn prepare_keeping(
    config: &Config,
    env: &EnvConfig,
    artifact: Option<&Path>,
    extra: &[SharedInterceptor],
    external_id: Option<&str>,
) -> Result<Prepared, Error> {
    let cloud = cloud_target(env)?;
    let artifact = Artifact::load(artifact)?;
    let models = snowflake_models(config, cloud)?;
    let (session, client) = tokio::try_join!(
        async {
            Ok::<_, Error>(
                Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), extra).await?,
            )
        },
        connect_snowflake(cloud),
    )?;
    let upstream = upstream_keeping(&client, config, env, &session.account_id, &models, external_id)?;
    let mut prepared = prepare_in(session, config, env, artifact, upstream).await?;
    prepared.snowflake = Some(client);
    Ok(prepared)
}

/// Signs in to the environment's Snowflake connection (named in flixops.toml, else the default).
pub async fn connect_snowflake(target: &AwsSnowflakeTarget) -> Result<SnowflakeClient, Error> {
    connect_snowflake_with(target, &|k| std::env::var(k).ok()).await
}

/// [`connect_snowflake`] with the environment (the connection, `FLIXOPS_*_TIMEOUT_SECS`) read
/// through `var`. A connection that names no
/// warehouse gets `snowflake_warehouse`: reading and writing tables (the ledger, doctor's SELECTs)
/// needs a current warehouse on Snowflake
/// (https://docs.snowflake.com/en/sql-reference/sql/use-warehouse).
pub async fn connect_snowflake_with(
    target: &AwsSnowflakeTarget,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<SnowflakeClient, Error> {
    let mut connection = connection::resolve(target.snowflake_connection.as_deref(), var)?;
    connection.warehouse.get_or_insert_with(|| target.warehouse.clone());
    let timeouts = crate::timeouts::Timeouts::from_env(var)?;
    Ok(SnowflakeClient::connect_within(&connection, &timeouts).await?)
}

/// The project's models rendered for Snowflake (the built-in ones when `models/` is absent).
pub fn snowflake_models(config: &Config, target: &AwsSnowflakeTarget) -> Result<Vec<Rendered>, Error> {
    let models = models::discover(&config.root.join("models"))?;
    Ok(models::render_all(&models, &Dialect::Snowflake { database: target.database.to_ascii_uppercase() })?)
}

/// The Snowflake resources of the environment, wired to the AWS side.
pub fn snowflake_upstream(
    client: &SnowflakeClient,
    config: &Config,
    env: &EnvConfig,
    account_id: &str,
    models: &[Rendered],
) -> Result<Upstream, Error> {
    upstream_keeping(client, config, env, account_id, models, None)
}

fn upstream_keeping(
    client: &SnowflakeClient,
    config: &Config,
    env: &EnvConfig,
    account_id: &str,
    models: &[Rendered],
    external_id: Option<&str>,
) -> Result<Upstream, Error> {
    let cloud = cloud_target(env)?;
    snowflake::stack::upstream(client, config, env, cloud, account_id, models, external_id)
        .map_err(|e| Error::Usage(format!("{}: {e}", config.path.display())))
}

/// [`prepare`] with a session already connected (tests point it at their own endpoint); a planned
/// change that cannot be applied (a model that does not compile) fails here, before any write.
pub async fn prepare_in(
    session: Session,
    config: &Config,
    env: &EnvConfig,
    artifact: Artifact,
    upstream: Upstream,
) -> Result<Prepared, Error> {
    let cloud = cloud_target(env)?;
    let artifact = artifact.for_architecture(&cloud.lambda_architecture)?;
    let unknown_code = artifact.unknown.clone();
    let graph = Graph::new(stack::resources(config, env, cloud, &session, artifact, upstream, false))?;
    let (observed, state) = tokio::join!(graph.read_all(), extraction_state(&session, cloud, &env.prefix));
    let observed = observed?;
    let mut plan = graph.plan(&observed);
    plan.x_spend = Some(crate::extract::spend::Estimate::new(&config.extract, state.as_ref()));
    graph.check(&plan).await?;
    Ok(Prepared { session, graph, observed, plan, keep: Vec::new(), snowflake: None, unknown_code })
}

/// The extractor's stored state, for the spend estimate; None when there is none yet or it cannot
/// be read (a new bucket, say): the estimate then says it is unknown.
async fn extraction_state(
    session: &Session,
    cloud: &AwsSnowflakeTarget,
    prefix: &str,
) -> Option<crate::extract::checkpoint::Checkpoint> {
    let sink = crate::extract::sink::Sink::S3 { client: session.clients.s3.clone(), bucket: cloud.bucket.clone() };
    let found = crate::extract::checkpoint::read(&sink, &crate::extract::checkpoint::key(prefix)).await;
    found.ok().flatten().map(|(state, _)| state)
}

/// Reads the environment for `destroy`: the plan deletes every existing resource, dependants first,
/// except the data bucket unless `purge_data`.
pub async fn prepare_destroy(
    session: Option<Session>,
    config: &Config,
    env: &EnvConfig,
    upstream: Upstream,
    purge_data: bool,
) -> Result<Prepared, Error> {
    let cloud = cloud_target(env)?;
    let session = match session {
        Some(session) => session,
        None => Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]).await?,
    };
    let resources = stack::resources(config, env, cloud, &session, Artifact::none(), upstream, purge_data);
    let graph = Graph::new(resources)?;
    let observed = graph.read_all().await?;
    let keep = if purge_data { Vec::new() } else { data_resources() };
    let plan = graph.destroy_plan(&observed, &keep);
    Ok(Prepared { session, graph, observed, plan, keep, snowflake: None, unknown_code: None })
}

/// [`prepare_destroy`] for the whole environment, Snowflake included.
pub async fn prepare_destroy_all(config: &Config, env: &EnvConfig, purge_data: bool) -> Result<Prepared, Error> {
    let cloud = cloud_target(env)?;
    let models = snowflake_models(config, cloud)?;
    let (session, client) = tokio::try_join!(
        async {
            Ok::<_, Error>(
                Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]).await?,
            )
        },
        connect_snowflake(cloud),
    )?;
    let upstream = snowflake_upstream(&client, config, env, &session.account_id, &models)?;
    let mut prepared = prepare_destroy(Some(session), config, env, upstream, purge_data).await?;
    prepared.snowflake = Some(client);
    Ok(prepared)
}

/// What holds data and stays after `destroy` unless `--purge-data`: the bucket and the extractor's
/// checkpoint (so a redeploy resumes where the last run stopped), and the database
/// with its raw schema and table (the models are rebuilt from them by the next deploy).
pub fn data_resources() -> Vec<crate::plan::Address> {
    use crate::snowflake::objects::{Database, Table};
    let raw_schema = crate::plan::Address::new("snowflake_schema", "raw");
    let checkpoint = crate::aws::checkpoint::InitialCheckpoint::address();
    vec![
        crate::aws::s3::Bucket::address(),
        checkpoint,
        Database::address(),
        raw_schema,
        Table::address_of("tweets_raw"),
    ]
}

impl Prepared {
    /// Applies the plan; the report lists the write calls made.
    pub async fn apply(self) -> Result<DeployReport, Error> {
        self.refuse_without_code()?;
        let applied = self.graph.apply(&self.observed).await?;
        let snowflake_writes = self.snowflake.as_ref().map(SnowflakeClient::writes).unwrap_or_default();
        let notes = notes(&applied);
        let write_calls = self.session.calls.writes();
        Ok(DeployReport { plan: self.plan, applied, write_calls, snowflake_writes, notes, destroyed: false })
    }

    /// Refuses, before any write, a plan whose function change needs code flixops does not have.
    fn refuse_without_code(&self) -> Result<(), Error> {
        let Some(why) = &self.unknown_code else { return Ok(()) };
        let function = crate::aws::lambda::Function::address();
        let change = self.plan.resources.iter().find(|r| r.address == function).map(|r| &r.change);
        match change.and_then(crate::aws::lambda::needs_code) {
            Some(action) => Err(ArtifactError::CodeUnknown { action, why: why.clone() }.into()),
            None => Ok(()),
        }
    }

    /// Deletes what the destroy plan lists, dependants first.
    pub async fn destroy(self) -> Result<DeployReport, Error> {
        let applied = self.graph.destroy(&self.observed, &self.keep).await?;
        let snowflake_writes = self.snowflake.as_ref().map(SnowflakeClient::writes).unwrap_or_default();
        let write_calls = self.session.calls.writes();
        Ok(DeployReport { plan: self.plan, applied, write_calls, snowflake_writes, notes: Vec::new(), destroyed: true })
    }

    /// The plan as `plan`, `deploy` or `destroy` shows it; destroy adds what it keeps.
    pub fn shown<'a>(&'a self, verb: &'a str) -> Shown<'a> {
        let kept = if verb == "destroy" { self.kept() } else { Vec::new() };
        Shown { plan: &self.plan, verb, saved_to: None, kept }
    }

    /// The plan with what it was made from, for `plan --out FILE`.
    pub fn save(&self, config: &Config, env: &EnvConfig) -> Result<SavedPlan, Error> {
        Ok(SavedPlan::new(&origin(config, env)?, &self.plan, &self.graph.settled(&self.observed)))
    }

    /// Refuses a saved plan when flixops, the configuration, the live state or the planned changes
    /// moved since it was made (`path` is named in the error); nothing has been written yet.
    pub fn check_saved(&self, saved: &SavedPlan, path: &Path, config: &Config, env: &EnvConfig) -> Result<(), Error> {
        let moved = saved.moved(&origin(config, env)?, &self.plan, &self.graph.settled(&self.observed));
        if moved.is_empty() {
            return Ok(());
        }
        Err(PlanFileError::Moved { path: path.to_path_buf(), moved }.into())
    }

    /// The kept resources that exist (reported so nobody is surprised the bucket is still there).
    pub fn kept(&self) -> Vec<crate::plan::Address> {
        self.keep.iter().filter(|a| self.observed.get(*a).is_some_and(Option::is_some)).cloned().collect()
    }
}

impl crate::output::Render for DeployReport {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        if self.destroyed {
            return writeln!(w, "Destroy complete! Resources: {} destroyed.", self.applied.applied.len());
        }
        let (p, calls) = (&self.plan, self.write_calls.len());
        writeln!(
            w,
            "Apply complete! Resources: {} added, {} changed, {} destroyed ({calls} write calls).",
            p.add, p.change, p.destroy
        )?;
        render_notes(w, &self.applied.notes, "Warning")?;
        self.notes.iter().try_for_each(|note| writeln!(w, "note: {note}"))
    }

    /// "Apply complete!" follows the plan on stdout, as terraform prints it.
    fn is_result(&self) -> bool {
        true
    }
}

/// What a saved plan is made from besides the live state: the project, the environment and a
/// checksum of flixops.toml and models/.
fn origin(config: &Config, env: &EnvConfig) -> Result<Origin, Error> {
    let checksum = crate::plan::saved::config_checksum(&config.path, &config.root.join("models"))
        .map_err(|source| PlanFileError::Io { path: config.path.clone(), source })?;
    Ok(Origin { project: config.project.clone(), env: env.name.clone(), config_sha256: checksum })
}

/// `flixops secrets set`: stores the X bearer token in the environment's secret.
pub async fn set_token(config: &Config, env: &EnvConfig, token: &crate::config::Secret) -> Result<String, Error> {
    let cloud = cloud_target(env)?;
    let session = Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]).await?;
    let names = Names::new(&config.project, &env.name, &cloud.bucket);
    Ok(secret::set_value(&session.clients.secrets, &names.secret, token).await?)
}
