//! The aws-snowflake checks: both sign-ins, every resource as `plan` reads it (bucket settings,
//! role trust against the integration's IAM user and external ID, notification against the pipe's
//! queue, function code, schedule, models against the ledger), then what only a running pipeline
//! shows: the stage lists through the integration, the pipe runs and loads without errors, raw
//! data is fresh, every model refreshed lately and without error, the role holds the grants it
//! needs, the checkpoint is within the search window, the function logged no error, the X token
//! works.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::canary::Outcome;
use super::{Check, Options, Status, age_status, timed};
use crate::aws::Session;
use crate::aws::lambda::Artifact;
use crate::aws::logs;
use crate::aws::stack::{Names, Upstream};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig, Freshness, Secret};
use crate::extract::sink::Sink;
use crate::plan::Action;
use crate::snowflake::names::SnowNames;
use crate::snowflake::pipe::{self, PipeStatus};
use crate::snowflake::{Client, grants, integration};

/// Files waiting in the pipe beyond this many is a warning (Snowpipe is falling behind).
const PENDING_WARN: u64 = 100;

/// Every cloud check, in a stable order; with `--canary`, the canary's outcome too.
pub async fn checks(
    config: &Config,
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    options: &Options,
) -> (Vec<Check>, Option<Outcome>) {
    let limit = options.limit;
    let aws = Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]);
    let snow = crate::deploy::connect_snowflake(cloud);
    let (aws, snow) = tokio::join!(tokio::time::timeout(limit, aws), tokio::time::timeout(limit, snow));
    let mut checks = Vec::new();
    let profile = cloud.aws_profile.as_deref().map(|p| format!(" --profile {p}")).unwrap_or_default();
    let aws_fix = format!("aws sts get-caller-identity{profile} (then aws sso login{profile} or fix the credentials)");
    let connection = cloud.snowflake_connection.as_deref().map(|c| format!(" -c {c}")).unwrap_or_default();
    let snow_fix = format!("snow connection test{connection}");
    let silent = |what: &str| format!("{what} did not answer in {} s", limit.as_secs());
    let session = match aws {
        Ok(Ok(s)) => {
            let detail = format!("account {} in {}", s.account_id, s.region);
            checks.push(Check::new("aws identity", Status::Ok, detail, None));
            Some(s)
        }
        Ok(Err(e)) => fail(&mut checks, "aws identity", e.to_string(), Some(aws_fix.as_str())),
        Err(_) => fail(&mut checks, "aws identity", silent("STS"), Some(aws_fix.as_str())),
    };
    let client = match snow {
        Ok(Ok(c)) => {
            checks.push(Check::new("snowflake sign-in", Status::Ok, "signed in", None));
            Some(c)
        }
        Ok(Err(e)) => fail(&mut checks, "snowflake sign-in", e.to_string(), Some(snow_fix.as_str())),
        Err(_) => fail(&mut checks, "snowflake sign-in", silent("Snowflake"), Some(snow_fix.as_str())),
    };
    let Some(session) = session else { return (checks, None) };
    let names = SnowNames::new(&config.project, &env.name, cloud).ok().map(Arc::new);
    // The canary first: the checks then read the state its file left (a pipe it stalled, its
    // failed load), so what they report and what the canary names agree.
    let canary = match (options.canary, &client, &names) {
        (Some(timeout), Some(client), Some(names)) => {
            let sink = Sink::S3 { client: session.clients.s3.clone(), bucket: cloud.bucket.clone() };
            Some(super::canary::cloud(&sink, client, names, &env.prefix, timeout).await)
        }
        _ => None,
    };
    let (resources, runtime) = tokio::join!(
        resource_checks(config, env, cloud, &session, client.as_ref(), options),
        runtime_checks(config, env, cloud, &session, client.as_ref(), names.clone(), options),
    );
    checks.extend(resources);
    checks.extend(runtime);
    match &canary {
        Some(outcome) => checks.push(outcome.check(Some("repair the link named, then run doctor --canary again"))),
        None if options.canary.is_some() => {
            checks.push(Check::new("canary", Status::Fail, "it needs the Snowflake sign-in (see above)", None))
        }
        None => {}
    }
    (checks, canary)
}

fn fail<T>(checks: &mut Vec<Check>, name: &str, detail: String, fix: Option<&str>) -> Option<T> {
    checks.push(Check::new(name, Status::Fail, detail, fix));
    None
}

/// What `plan` would change, one check per resource: anything it would touch is not as deployed.
async fn resource_checks(
    config: &Config,
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    session: &Session,
    client: Option<&Client>,
    options: &Options,
) -> Vec<Check> {
    let artifact = match Artifact::load(options.artifact.as_deref()) {
        Ok(artifact) => artifact,
        Err(e) => return vec![Check::new("lambda package", Status::Fail, e.to_string(), Some("pass --artifact PATH"))],
    };
    let upstream = match client {
        Some(client) => {
            let built = crate::deploy::snowflake_models(config, cloud).and_then(|models| {
                crate::deploy::snowflake_upstream(client, config, env, &session.account_id, &models)
            });
            match built {
                Ok(upstream) => upstream,
                Err(e) => return vec![Check::new("models", Status::Fail, e.to_string(), None)],
            }
        }
        None => Upstream::default(),
    };
    let prepare = crate::deploy::prepare_in(session.clone(), config, env, artifact, upstream);
    let prepared = match tokio::time::timeout(options.limit, prepare).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(e)) => return vec![Check::new("resources", Status::Fail, e.to_string(), None)],
        Err(_) => {
            let detail = format!("reading them took over {} s", options.limit.as_secs());
            return vec![Check::new("resources", Status::Fail, detail, None)];
        }
    };
    let deploy = Some("flixops deploy");
    prepared
        .plan
        .resources
        .into_iter()
        .map(|item| {
            let address = item.address.to_string();
            let fields: Vec<&str> = item.change.fields.iter().map(|f| f.field.as_str()).collect();
            match item.change.action {
                Action::NoOp => Check::new(&address, Status::Ok, "as deployed", None),
                Action::Create => Check::new(&address, Status::Fail, "missing", deploy),
                _ => Check::new(&address, Status::Fail, format!("drifted: {}", fields.join(", ")), deploy),
            }
        })
        .collect()
}

/// The checks of a running pipeline, concurrently, each under its own timeout: one that hangs
/// reports that, and the others still report.
async fn runtime_checks(
    config: &Config,
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    session: &Session,
    client: Option<&Client>,
    names: Option<Arc<SnowNames>>,
    options: &Options,
) -> Vec<Check> {
    let limit = options.limit;
    let aws = Names::new(&config.project, &env.name, &cloud.bucket);
    let sink = Sink::S3 { client: session.clients.s3.clone(), bucket: cloud.bucket.clone() };
    // The deployed token, read once for the probe and for X's usage count; `--skip token` reads
    // no secret (CI's deploy role may not).
    let token = match options.skip.token {
        true => None,
        false => Some(match tokio::time::timeout(limit, deployed_token(session, &aws.secret)).await {
            Ok(token) => token,
            Err(_) => {
                let detail = format!("Secrets Manager did not answer in {} s", limit.as_secs());
                Err(Check::new("x token", Status::Fail, detail, None))
            }
        }),
    };
    let mut futures: Vec<futures::future::BoxFuture<'_, Check>> = vec![
        Box::pin(timed(limit, "function errors", function_errors(session, aws.log_group.clone()))),
        Box::pin(timed(limit, ONE_RUN, one_run_at_a_time(session, aws.function.clone()))),
    ];
    if let Some(token) = token.clone() {
        futures.insert(0, Box::pin(timed(limit, "x token", x_token(config, token))));
    }
    if let (Some(client), Some(sf)) = (client, names) {
        futures.push(Box::pin(timed(limit, "stage", stage(client.clone(), sf.clone()))));
        futures.push(Box::pin(timed(limit, "pipe", pipe(client.clone(), sf.clone(), env.freshness))));
        futures.push(Box::pin(timed(limit, "copy history", copy_history(client.clone(), sf.clone()))));
        let last_run = super::extraction::last_run(sink.clone(), env.prefix.clone());
        let raw = freshness(client.clone(), sf.clone(), last_run, env.freshness);
        futures.push(Box::pin(timed(limit, "raw freshness", raw)));
        let models = models_freshness(client.clone(), sf.clone(), env.freshness);
        futures.push(Box::pin(timed(limit, "models freshness", models)));
        futures.push(Box::pin(timed(limit, "privileges", privileges(client.clone(), sf.clone()))));
    }
    let run = "wait for the schedule, or invoke the function once";
    let hints = super::extraction::Hints { run, stale: Status::Fail, replayed: false };
    let token = token.and_then(Result::ok);
    let extraction = super::extraction::checks(&config.extract, &sink, &env.prefix, &hints, token, limit);
    let (others, extraction) = tokio::join!(join_all(futures), extraction);
    extraction.into_iter().chain(others).collect()
}

/// Lists today's partition of the stage: proves the integration can read the bucket without
/// listing every file ever loaded.
async fn stage(client: Client, n: Arc<SnowNames>) -> Check {
    let today = chrono::Utc::now().format("%Y-%m-%d");
    match integration::list(&client, &n.stage, &format!("dt={today}/")).await {
        Ok(files) => Check::new(
            "stage",
            Status::Ok,
            format!("Snowflake lists the bucket through the integration ({files} file(s) today)"),
            None,
        ),
        Err(e) => Check::new(
            "stage",
            Status::Fail,
            format!("Snowflake cannot list the bucket through the integration: {e}"),
            Some("flixops deploy (role trust and integration), then allow a minute for IAM to propagate"),
        ),
    }
}

async fn pipe(client: Client, n: Arc<SnowNames>, limits: Freshness) -> Check {
    match pipe::status(&client, &n.pipe).await {
        Ok(status) => pipe_verdict(&status, chrono::Utc::now(), &limits),
        Err(e) => Check::new("pipe", Status::Fail, e.to_string(), Some("flixops deploy")),
    }
}

/// Judges SYSTEM$PIPE_STATUS at `now`: loading, no error, its queue moving, files reaching it. The
/// pipe's own timestamps decide: `lastReceivedMessageTimestamp` belongs to the queue Snowflake
/// shares between pipes, so it says nothing of this one
/// (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status).
pub fn pipe_verdict(status: &PipeStatus, now: chrono::DateTime<chrono::Utc>, limits: &Freshness) -> Check {
    let state = status.state.as_str();
    let hours = |t: chrono::DateTime<chrono::Utc>| (now - t).num_hours();
    if let Some(error) = &status.error {
        return Check::new("pipe", Status::Fail, format!("{state}: {error}"), Some(pipe::advice(state)));
    }
    if !matches!(state, "RUNNING" | "FAILING_OVER") {
        return Check::new("pipe", Status::Fail, format!("execution state {state}"), Some(pipe::advice(state)));
    }
    let copy_history = Some("see `copy history`: a file whose load failed stays in the pipe's history");
    if status.pending > 0 && status.last_ingested.is_none_or(|t| hours(t) >= 1) {
        let last = status.last_ingested.map_or("never".to_string(), |t| format!("{} h ago", hours(t)));
        let detail = format!("{} file(s) queued, but the last file loaded {last}", status.pending);
        return Check::new("pipe", Status::Warn, detail, copy_history);
    }
    if let (Some(forwarded), ingested) = (status.last_forwarded, status.last_ingested)
        && ingested.is_none_or(|i| forwarded - i > chrono::Duration::hours(1))
    {
        let last = ingested.map_or("none loaded".to_string(), |i| format!("the last one loaded at {i}"));
        let detail = format!("files reached the pipe until {forwarded}, {last}");
        return Check::new("pipe", Status::Warn, detail, copy_history);
    }
    if let Some(forwarded) = status.last_forwarded.filter(|t| hours(*t) * 60 >= limits.warn_after_minutes) {
        let detail = format!("no new file reached the pipe for {} h (since {forwarded})", hours(forwarded));
        let fix = "check the extract schedule and aws_s3_bucket_notification.snowpipe (flixops deploy repairs it)";
        return Check::new("pipe", Status::Warn, detail, Some(fix));
    }
    if status.pending > PENDING_WARN {
        return Check::new("pipe", Status::Warn, format!("running, {} files pending", status.pending), None);
    }
    let last = status.last_ingested.map(|t| format!(", last file loaded {} min ago", (now - t).num_minutes()));
    Check::new(
        "pipe",
        Status::Ok,
        format!("running, {} file(s) pending{}", status.pending, last.unwrap_or_default()),
        None,
    )
}

/// Files Snowpipe could not load in the last 24 h, each with its error and where in the file it
/// was, and what to do: a new upload of a corrected file loads once; a refresh loads files
/// changed in place.
async fn copy_history(client: Client, n: Arc<SnowNames>) -> Check {
    let name = "copy history";
    let failed = match pipe::failed_loads(&client, &n.table, &n.pipe, 24).await {
        Ok(failed) => failed,
        Err(e) => return Check::new(name, Status::Warn, e.to_string(), None),
    };
    if failed.is_empty() {
        return Check::new(name, Status::Ok, "no failed load in the last 24 h", None);
    }
    let listed: Vec<String> = failed.iter().take(MAX_LISTED).map(|f| f.describe()).collect();
    let more = failed.len().saturating_sub(MAX_LISTED);
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    let detail = format!("{} file(s) not loaded in the last 24 h: {}{more}", failed.len(), listed.join("; "));
    let fix = format!(
        "fix each file at its source and upload it again under a new name (Snowpipe loads a new file once), or \
         remove it; a file corrected in place loads with ALTER PIPE {} REFRESH",
        n.pipe
    );
    Check::new(name, Status::Fail, detail, Some(&fix))
}

/// Failed files named one by one, up to this many.
const MAX_LISTED: usize = 5;

/// The raw table's newest load beside the extractor's last run: "ran, nothing new" is not "did
/// not run", and neither is "ran, but its files did not load".
async fn freshness(
    client: Client,
    n: Arc<SnowNames>,
    last_run: impl Future<Output = Option<crate::extract::checkpoint::LastRun>>,
    limits: Freshness,
) -> Check {
    let (age, last_run) = tokio::join!(pipe::newest_load_age(&client, &n.table), last_run);
    let age = match age {
        Ok(age) => age,
        Err(e) => return Check::new("raw freshness", Status::Fail, e.to_string(), Some("flixops deploy")),
    };
    let hints = super::freshness::Hints {
        run: "check the schedule and `function errors` (flixops logs --errors)",
        loading: "see `pipe` and `copy history` (flixops doctor --canary follows one file through)",
    };
    super::freshness::verdict(age, last_run.as_ref(), chrono::Utc::now(), &limits, &hints)
}

/// Every dynamic table's last refresh: a failed one names its error; the oldest data timestamp is
/// held to the freshness thresholds (Snowflake refreshes them itself, on their target lag).
async fn models_freshness(client: Client, n: Arc<SnowNames>, limits: Freshness) -> Check {
    let name = "models freshness";
    let states = match crate::models::snowflake::refresh_states(&client, &n.database).await {
        Ok(states) => states,
        Err(e) => return Check::new(name, Status::Warn, e.to_string(), None),
    };
    let failed: Vec<_> = states.iter().filter(|s| s.failed()).collect();
    if let Some(first) = failed.first() {
        let detail = format!("{} model(s) failed to refresh, e.g. {}: {}", failed.len(), first.model, first.message);
        return Check::new(name, Status::Fail, detail, Some("fix the model's SQL in models/, then flixops deploy"));
    }
    let oldest = states.iter().filter_map(|s| s.age_minutes.map(|age| (age, s))).max_by_key(|(age, _)| *age);
    let Some((minutes, oldest)) = oldest else {
        let fix = "flixops deploy creates them; if they exist, grant the role MONITOR on them";
        return Check::new(name, Status::Warn, "no model has refreshed yet", Some(fix));
    };
    let (hours, status) = (minutes / 60, age_status(&limits, minutes));
    let fix = (status != Status::Ok).then_some("check the warehouse and the models' refresh history in Snowsight");
    Check::new(name, status, format!("{} models, oldest data {hours} h old ({})", states.len(), oldest.model), fix)
}

/// The grants flixops's role needs, as SHOW GRANTS shows them (its own and inherited); a missing
/// one is named with the GRANT that fixes it.
async fn privileges(client: Client, n: std::sync::Arc<SnowNames>) -> Check {
    let name = "privileges";
    let role = match grants::current_role(&client).await {
        Ok(role) => role,
        Err(e) => return Check::new(name, Status::Warn, e.to_string(), None),
    };
    if role.eq_ignore_ascii_case("ACCOUNTADMIN") {
        let detail = "role ACCOUNTADMIN holds every privilege (a dedicated role is safer after the first deploy)";
        return Check::new(name, Status::Ok, detail, None);
    }
    let held = match grants::grants_of(&client, &role).await {
        Ok(held) => held,
        Err(e) => return Check::new(name, Status::Warn, format!("cannot read the grants of role {role}: {e}"), None),
    };
    let needs = grants::needs(&n, &role);
    let missing = grants::missing(&needs, &held);
    if missing.is_empty() {
        return Check::new(name, Status::Ok, format!("role {role} holds what flixops needs"), None);
    }
    let lacks: Vec<&str> = missing.iter().map(|m| m.what.as_str()).collect();
    let fix: Vec<String> = missing.iter().map(|m| format!("{};", m.grant)).collect();
    Check::new(name, Status::Fail, format!("role {role} lacks {}", lacks.join("; ")), Some(&fix.join(" ")))
}

/// Log pages read at most (each up to 10,000 events or 1 MB); beyond, the count says "or more".
const MAX_LOG_PAGES: usize = 10;

/// The function's failed runs of the last 24 h, from its CloudWatch log group.
async fn function_errors(session: &Session, group: String) -> Check {
    let name = "function errors";
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let pattern = logs::error_pattern();
    let found = logs::events(&session.clients.logs, &group, since.timestamp_millis(), Some(&pattern), MAX_LOG_PAGES);
    let found = match found.await {
        Ok(found) => found,
        Err(e @ logs::LogsError::NoGroup(_)) => {
            return Check::new(name, Status::Warn, e.to_string(), Some("flixops deploy"));
        }
        Err(e) => return Check::new(name, Status::Warn, e.to_string(), None),
    };
    let Some(newest) = found.events.last() else {
        return Check::new(name, Status::Ok, "no failed run in the last 24 h", None);
    };
    let message: String = newest.message.trim().chars().take(300).collect();
    let more = if found.truncated { " (or more)" } else { "" };
    let detail = format!("{}{more} error line(s) in the last 24 h, newest: {message}", found.events.len());
    Check::new(name, Status::Fail, detail, Some("flixops logs --errors --since 24h"))
}

const ONE_RUN: &str = "one run at a time";

/// Reserved concurrency 1 keeps extraction runs from overlapping. Without it, a warning: with the
/// quota fix when the account leaves nothing to reserve, else `flixops deploy`.
async fn one_run_at_a_time(session: &Session, function: String) -> Check {
    use crate::aws::lambda::{RESERVED, account_concurrency, quota_fix, reserved_concurrency};
    let lambda = &session.clients.lambda;
    let (reserved, account) = tokio::join!(reserved_concurrency(lambda, &function), account_concurrency(lambda));
    let deploy = Some("flixops deploy");
    let reserved = match reserved {
        Ok(reserved) => reserved,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            return Check::new(ONE_RUN, Status::Warn, format!("no function {function} yet"), deploy);
        }
        Err(e) => return Check::new(ONE_RUN, Status::Warn, crate::aws::error_message(&e), None),
    };
    if reserved == Some(RESERVED) {
        return Check::new(ONE_RUN, Status::Ok, format!("{function} has reserved concurrency {RESERVED}"), None);
    }
    let held = reserved.map_or("no reserved concurrency".to_string(), |n| format!("reserved concurrency {n}"));
    let detail = format!("{function} has {held}, so two extraction runs can overlap");
    match account {
        Ok(account) if !account.allows(RESERVED, reserved.unwrap_or(0)) => {
            let fix = quota_fix(&session.region);
            Check::new(ONE_RUN, Status::Warn, format!("{detail}: {}", account.why_none()), Some(&fix))
        }
        Ok(_) => Check::new(ONE_RUN, Status::Warn, detail, deploy),
        Err(e) => Check::new(ONE_RUN, Status::Warn, format!("{detail} ({})", crate::aws::error_message(&e)), deploy),
    }
}

/// The deployed X token, read once for the token probe and for X's usage count; the failure is
/// the `x token` check's verdict.
async fn deployed_token(session: &Session, secret: &str) -> Result<Secret, Check> {
    use crate::aws::secret::Deployed;
    let set = "flixops secrets set (reads the token from stdin)";
    let (detail, fix) = match crate::aws::secret::deployed_token(&session.clients.secrets, secret).await {
        Deployed::Token(token) => return Ok(token),
        Deployed::Blank => (format!("secret {secret} has no value"), Some(set)),
        Deployed::NoValue => (format!("the secret {secret} exists but has no token yet"), Some(set)),
        Deployed::Deleted => {
            (format!("secret {secret} is scheduled for deletion"), Some("flixops deploy (restores it)"))
        }
        Deployed::Missing => {
            (format!("secret {secret} not found"), Some("flixops deploy (creates it), then flixops secrets set"))
        }
        Deployed::Failed(message) => (format!("secret {secret}: {message}"), Some(set)),
    };
    Err(Check::new("x token", Status::Fail, detail, fix))
}

/// One search call with the token the function uses (the deployed secret): cheap, and it proves
/// the token, the network path and the query.
async fn x_token(config: &Config, token: Result<Secret, Check>) -> Check {
    let fix = Some("flixops secrets set (reads the token from stdin)");
    let token = match token {
        Ok(token) => token,
        Err(verdict) => return verdict,
    };
    let mut extract = config.extract.clone();
    extract.max_results = 10;
    extract.retry.max_attempts = 2;
    let client = match crate::extract::api::XClient::new(&extract, token) {
        Ok(client) => client,
        Err(e) => return Check::new("x token", Status::Fail, e.to_string(), None),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    match client.page(&crate::extract::api::PageRequest::default(), deadline).await {
        Ok(_) => Check::new("x token", Status::Ok, "the X API accepts the token", None),
        Err(e) => Check::new("x token", Status::Fail, e.to_string(), fix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_verdict_reads_state_errors_backlog_and_the_pipes_own_timestamps() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z").unwrap().to_utc();
        let verdict = |json: serde_json::Value| {
            let c = pipe_verdict(&PipeStatus::parse(&json), now, &Freshness::default());
            (c.status, c.detail, c.fix.unwrap_or_default())
        };
        let ok = verdict(serde_json::json!({"executionState": "RUNNING", "pendingFileCount": 0,
            "lastIngestedTimestamp": "2024-03-01T11:50:00Z", "lastForwardedMessageTimestamp": "2024-03-01T11:49:00Z"}));
        assert_eq!((ok.0, ok.1.as_str()), (Status::Ok, "running, 0 file(s) pending, last file loaded 10 min ago"));
        let paused = verdict(serde_json::json!({"executionState": "PAUSED"}));
        assert_eq!((paused.0, paused.1.as_str()), (Status::Fail, "execution state PAUSED"));
        assert_eq!(paused.2, "flixops deploy (resumes a paused pipe)");
        let stopped = verdict(serde_json::json!({"executionState": "STOPPED_STAGE_ALTERED"}));
        assert!(stopped.2.contains("recreates"), "{stopped:?}");
        let (status, detail, fix) = verdict(
            serde_json::json!({"executionState": "STALLED_EXECUTION_ERROR", "error": "Access denied to the queue"}),
        );
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("Access denied") && fix.contains("fix the error"), "{detail} / {fix}");
        assert_eq!(
            verdict(serde_json::json!({"executionState": "RUNNING", "pendingFileCount": 5000,
            "lastIngestedTimestamp": "2024-03-01T11:59:00Z"}))
            .0,
            Status::Warn
        );
        // The shared queue's last message says nothing of this pipe; its own forwarding does.
        let busy_queue = serde_json::json!({"executionState": "RUNNING",
            "lastReceivedMessageTimestamp": "2024-03-01T11:59:00Z",
            "lastForwardedMessageTimestamp": "2024-03-01T11:00:00Z", "lastIngestedTimestamp": "2024-03-01T11:01:00Z"});
        assert_eq!(verdict(busy_queue).0, Status::Ok);
        let quiet = verdict(serde_json::json!({"executionState": "RUNNING",
            "lastForwardedMessageTimestamp": "2024-03-01T02:00:00Z", "lastIngestedTimestamp": "2024-03-01T02:01:00Z"}));
        assert_eq!(
            (quiet.0, quiet.1.starts_with("no new file reached the pipe for 10 h")),
            (Status::Warn, true),
            "{quiet:?}"
        );
        let stuck = verdict(serde_json::json!({"executionState": "RUNNING", "pendingFileCount": 12,
            "lastIngestedTimestamp": "2024-03-01T09:00:00Z"}));
        assert_eq!((stuck.0, stuck.1.as_str()), (Status::Warn, "12 file(s) queued, but the last file loaded 3 h ago"));
        let failing = verdict(serde_json::json!({"executionState": "RUNNING",
            "lastForwardedMessageTimestamp": "2024-03-01T11:30:00Z", "lastIngestedTimestamp": "2024-03-01T08:00:00Z"}));
        assert_eq!(failing.0, Status::Warn, "{failing:?}");
    }
}
