//! The aws-snowflake checks: both sign-ins, every resource as `plan` reads it (bucket settings,
//! role trust against the integration's IAM user and external ID, notification against the pipe's
//! queue, function code, schedule, models against the ledger), then what only a running pipeline
//! shows: the stage lists through the integration, the pipe runs and loads without errors, raw
//! data is fresh, every model refreshed lately and without error, the role holds the grants it
//! needs, the checkpoint is within the search window, the function logged no error, the X token
//! works.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;

use super::{Check, Status, TIMEOUT, age_status};
use crate::config::Freshness;
use crate::aws::Session;
use crate::aws::lambda::Artifact;
use crate::aws::stack::{Names, Upstream};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig, Secret};
use crate::plan::Action;
use crate::snowflake::Client;
use crate::snowflake::grants;
use crate::snowflake::ident::literal;
use crate::snowflake::pipe::{self, PipeStatus};
use crate::snowflake::names::SnowNames;

/// Files waiting in the pipe beyond this many is a warning (Snowpipe is falling behind).
const PENDING_WARN: u64 = 100;

/// DYNAMIC_TABLES()'s largest RESULT_LIMIT.
const DYNAMIC_TABLES_LIMIT: u32 = 10_000;

/// Every cloud check, in a stable order.
pub async fn checks(
    config: &Config,
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    artifact: Option<&Path>,
    skip: super::Skip,
) -> Vec<Check> {
    let aws = Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]);
    let snow = crate::deploy::connect_snowflake(cloud);
    let (aws, snow) = tokio::join!(tokio::time::timeout(TIMEOUT, aws), tokio::time::timeout(TIMEOUT, snow));
    let mut checks = Vec::new();
    let profile = cloud.aws_profile.as_deref().map(|p| format!(" --profile {p}")).unwrap_or_default();
    let aws_fix = format!("aws sts get-caller-identity{profile} (then aws sso login{profile} or fix the credentials)");
    let connection = cloud.snowflake_connection.as_deref().map(|c| format!(" -c {c}")).unwrap_or_default();
    let snow_fix = format!("snow connection test{connection}");
    let session = match aws {
        Ok(Ok(s)) => {
            checks.push(Check::new(
                "aws identity",
                Status::Ok,
                format!("account {} in {}", s.account_id, s.region),
                None,
            ));
            Some(s)
        }
        Ok(Err(e)) => fail(&mut checks, "aws identity", e.to_string(), Some(aws_fix.as_str())),
        Err(_) => fail(&mut checks, "aws identity", "STS did not answer in 30 s".into(), Some(aws_fix.as_str())),
    };
    let client = match snow {
        Ok(Ok(c)) => {
            checks.push(Check::new("snowflake sign-in", Status::Ok, "signed in", None));
            Some(c)
        }
        Ok(Err(e)) => fail(&mut checks, "snowflake sign-in", e.to_string(), Some(snow_fix.as_str())),
        Err(_) => {
            fail(&mut checks, "snowflake sign-in", "Snowflake did not answer in 30 s".into(), Some(snow_fix.as_str()))
        }
    };
    let Some(session) = session else { return checks };
    checks.extend(resource_checks(config, env, cloud, &session, client.as_ref(), artifact).await);
    checks.extend(runtime_checks(config, env, cloud, &session, client.as_ref(), skip).await);
    checks
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
    artifact: Option<&Path>,
) -> Vec<Check> {
    let artifact = match Artifact::load(artifact) {
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
    let prepared = match tokio::time::timeout(TIMEOUT, prepare).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(e)) => return vec![Check::new("resources", Status::Fail, e.to_string(), None)],
        Err(_) => return vec![Check::new("resources", Status::Fail, "reading them took over 30 s", None)],
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

/// The checks of a running pipeline, concurrently, each under the timeout.
async fn runtime_checks(
    config: &Config,
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    session: &Session,
    client: Option<&Client>,
    skip: super::Skip,
) -> Vec<Check> {
    let names = Names::new(&config.project, &env.name, &cloud.bucket);
    // The deployed token, read once for the probe and for X's usage count; `--skip token` reads
    // no secret (CI's deploy role may not).
    let token = match skip.token {
        true => None,
        false => Some(match tokio::time::timeout(TIMEOUT, deployed_token(session, &names.secret)).await {
            Ok(token) => token,
            Err(_) => Err(Check::new("x token", Status::Fail, "Secrets Manager did not answer in 30 s", None)),
        }),
    };
    let mut futures: Vec<futures::future::BoxFuture<'_, Check>> = vec![
        Box::pin(timed("function errors", function_errors(session, names.function.clone()))),
        Box::pin(timed(ONE_RUN, one_run_at_a_time(session, names.function.clone()))),
    ];
    if let Some(token) = token.clone() {
        futures.insert(0, Box::pin(timed("x token", x_token(config, token))));
    }
    if let (Some(client), Ok(sf)) = (client, SnowNames::new(&config.project, &env.name, cloud)) {
        let sf = std::sync::Arc::new(sf);
        futures.push(Box::pin(timed("stage", stage(client.clone(), sf.clone()))));
        futures.push(Box::pin(timed("pipe", pipe(client.clone(), sf.clone(), env.freshness))));
        futures.push(Box::pin(timed("copy history", copy_history(client.clone(), sf.clone()))));
        futures
            .push(Box::pin(timed("raw freshness", freshness(client.clone(), sf.table.to_string(), "raw freshness", env.freshness))));
        futures.push(Box::pin(timed("models freshness", models_freshness(client.clone(), sf.clone(), env.freshness))));
        futures.push(Box::pin(timed("privileges", privileges(client.clone(), sf.clone()))));
    }
    let state =
        tokio::time::timeout(TIMEOUT, extraction(config, session, cloud, &env.prefix, token.and_then(Result::ok)));
    let (others, state) = tokio::join!(join_all(futures), state);
    let timed_out =
        || vec![Check::new("checkpoint", Status::Fail, format!("no answer within {} s", TIMEOUT.as_secs()), None)];
    state.unwrap_or_else(|_| timed_out()).into_iter().chain(others).collect()
}

async fn timed(name: &str, check: impl Future<Output = Check>) -> Check {
    match tokio::time::timeout(TIMEOUT, check).await {
        Ok(check) => check,
        Err(_) => Check::new(name, Status::Fail, format!("no answer within {} s", TIMEOUT.as_secs()), None),
    }
}

/// Lists today's partition of the stage: proves the integration can read the bucket without
/// listing every file ever loaded.
async fn stage(client: Client, n: std::sync::Arc<SnowNames>) -> Check {
    let today = chrono::Utc::now().format("%Y-%m-%d");
    match client.query(&format!("LIST '@{}/dt={today}/'", n.stage)).await {
        Ok(files) => Check::new(
            "stage",
            Status::Ok,
            format!("Snowflake lists the bucket through the integration ({} file(s) today)", files.len()),
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

async fn pipe(client: Client, n: std::sync::Arc<SnowNames>, limits: Freshness) -> Check {
    match crate::snowflake::pipe::status(&client, &n.pipe).await {
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

/// COPY_HISTORY's statuses of a file that did not load (completely); `Load in progress` and the
/// loaded ones are not failures (https://docs.snowflake.com/en/sql-reference/functions/copy_history).
const FAILED_LOADS: &str = "('LOAD FAILED', 'PARTIALLY LOADED')";

async fn copy_history(client: Client, n: std::sync::Arc<SnowNames>) -> Check {
    let sql = format!(
        "SELECT FILE_NAME, STATUS, FIRST_ERROR_MESSAGE FROM TABLE({}.INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => {}, \
         START_TIME => DATEADD(HOURS, -24, CURRENT_TIMESTAMP()))) WHERE UPPER(STATUS) IN {FAILED_LOADS}",
        n.database,
        literal(&n.table.plain())
    );
    match client.query(&sql).await {
        Ok(rows) if rows.is_empty() => Check::new("copy history", Status::Ok, "no failed load in the last 24 h", None),
        Ok(rows) => {
            let first = &rows[0];
            let detail = format!(
                "{} file(s) not loaded in the last 24 h, e.g. {} ({}): {}",
                rows.len(),
                crate::snowflake::text(first, "FILE_NAME"),
                crate::snowflake::text(first, "STATUS"),
                crate::snowflake::text(first, "FIRST_ERROR_MESSAGE")
            );
            Check::new(
                "copy history",
                Status::Fail,
                detail,
                Some("fix the files or the COPY, then ALTER PIPE … REFRESH"),
            )
        }
        Err(e) => Check::new("copy history", Status::Warn, e.to_string(), None),
    }
}

async fn freshness(client: Client, table: String, name: &'static str, limits: Freshness) -> Check {
    let sql = format!("SELECT DATEDIFF(MINUTE, MAX(LOADED_AT), CURRENT_TIMESTAMP()) AS AGE FROM {table}");
    let age = match client.query(&sql).await {
        Ok(rows) => rows.first().and_then(|r| r.get("AGE")).and_then(|v| v.as_i64()),
        Err(e) => return Check::new(name, Status::Fail, e.to_string(), Some("flixops deploy")),
    };
    let Some(minutes) = age else {
        return Check::new(name, Status::Warn, format!("{table} is empty"), Some("wait for the first extraction"));
    };
    let (hours, status) = (minutes / 60, age_status(&limits, minutes));
    let fix = (status != Status::Ok).then_some("check the schedule, the function and the pipe above");
    Check::new(name, status, format!("newest row loaded {hours} h ago"), fix)
}

/// Every dynamic table's last refresh: a failed one names its error; the oldest data timestamp is
/// held to the freshness thresholds (Snowflake refreshes them itself, on their target lag).
async fn models_freshness(client: Client, n: std::sync::Arc<SnowNames>, limits: Freshness) -> Check {
    let name = "models freshness";
    // Without arguments DYNAMIC_TABLES() answers 100 rows from the whole account, failed ones first:
    // the limit covers every table so the filter sees this database's
    // (https://docs.snowflake.com/en/sql-reference/functions/dynamic_tables).
    let sql = format!(
        "SELECT SCHEMA_NAME, NAME, LAST_COMPLETED_REFRESH_STATE AS STATE, LAST_COMPLETED_REFRESH_STATE_MESSAGE AS \
         MESSAGE, DATEDIFF(MINUTE, LATEST_DATA_TIMESTAMP, CURRENT_TIMESTAMP()) AS AGE_MINUTES \
         FROM TABLE({}.INFORMATION_SCHEMA.DYNAMIC_TABLES(RESULT_LIMIT => {DYNAMIC_TABLES_LIMIT})) WHERE DATABASE_NAME = {}",
        n.database,
        literal(n.database.name())
    );
    let rows = match client.query(&sql).await {
        Ok(rows) => rows,
        Err(e) => return Check::new(name, Status::Warn, e.to_string(), None),
    };
    let text = crate::snowflake::text;
    let model = |row: &crate::snowflake::client::Row| format!("{}.{}", text(row, "SCHEMA_NAME"), text(row, "NAME"));
    let failed: Vec<_> = rows.iter().filter(|r| text(r, "STATE").ends_with("FAILED")).collect();
    if let Some(first) = failed.first() {
        let detail =
            format!("{} model(s) failed to refresh, e.g. {}: {}", failed.len(), model(first), text(first, "MESSAGE"));
        return Check::new(name, Status::Fail, detail, Some("fix the model's SQL in models/, then flixops deploy"));
    }
    let oldest = rows
        .iter()
        .filter_map(|r| text(r, "AGE_MINUTES").parse::<i64>().ok().map(|age| (age, r)))
        .max_by_key(|(age, _)| *age);
    let Some((minutes, row)) = oldest else {
        let fix = "flixops deploy creates them; if they exist, grant the role MONITOR on them";
        return Check::new(name, Status::Warn, "no model has refreshed yet", Some(fix));
    };
    let (hours, status) = (minutes / 60, age_status(&limits, minutes));
    let fix = (status != Status::Ok).then_some("check the warehouse and the models' refresh history in Snowsight");
    Check::new(name, status, format!("{} models, oldest data {hours} h old ({})", rows.len(), model(row)), fix)
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

async fn extraction(
    config: &Config,
    session: &Session,
    cloud: &AwsSnowflakeTarget,
    prefix: &str,
    token: Option<Secret>,
) -> Vec<Check> {
    let sink = crate::extract::sink::Sink::S3 { client: session.clients.s3.clone(), bucket: cloud.bucket.clone() };
    let hints =
        super::extraction::Hints { run: "wait for the schedule, or invoke the function once", stale: Status::Fail, replayed: false };
    super::extraction::checks(&config.extract, &sink, prefix, &hints, token).await
}

/// What a failed run leaves in a Lambda log: our own `ERROR` lines, and what the Lambda service
/// writes when the function times out or the process dies.
const ERROR_TERMS: [&str; 3] = ["ERROR", "Task timed out", "Runtime exited"];

/// Log pages read at most (each up to 10,000 events or 1 MB); beyond, the count says "or more".
const MAX_LOG_PAGES: usize = 10;

/// The CloudWatch filter pattern for any of [`ERROR_TERMS`]: `?ERROR ?"Task timed out" …`.
fn error_pattern() -> String {
    let term = |t: &str| if t.contains(' ') { format!("?\"{t}\"") } else { format!("?{t}") };
    ERROR_TERMS.iter().map(|t| term(t)).collect::<Vec<_>>().join(" ")
}

/// True for a log line the filter pattern selects.
pub fn is_error_line(message: &str) -> bool {
    ERROR_TERMS.iter().any(|term| message.contains(term))
}

/// The function's failed runs of the last 24 h, from its CloudWatch log group.
async fn function_errors(session: &Session, function: String) -> Check {
    let group = format!("/aws/lambda/{function}");
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let mut pages = session
        .clients
        .logs
        .filter_log_events()
        .log_group_name(&group)
        .start_time(since.timestamp_millis())
        .filter_pattern(error_pattern())
        .into_paginator()
        .send();
    let (mut count, mut newest) = (0usize, None::<aws_sdk_cloudwatchlogs::types::FilteredLogEvent>);
    let mut read = 0;
    // Enough pages to count a bad day; a crash loop does not need every line counted.
    while let Some(page) = pages.next().await {
        let events = match page {
            Ok(page) => page.events.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                let detail = format!("no log group {group} (deploy creates it, with its retention)");
                return Check::new("function errors", Status::Warn, detail, Some("flixops deploy"));
            }
            Err(e) => return Check::new("function errors", Status::Warn, crate::aws::error_message(&e), None),
        };
        for event in events {
            count += 1;
            if newest.as_ref().is_none_or(|n| n.timestamp() <= event.timestamp()) {
                newest = Some(event);
            }
        }
        read += 1;
        if read == MAX_LOG_PAGES {
            break;
        }
    }
    let Some(newest) = newest else {
        return Check::new("function errors", Status::Ok, "no failed run in the last 24 h", None);
    };
    let message: String = newest.message().unwrap_or_default().trim().chars().take(300).collect();
    let more = if read == MAX_LOG_PAGES { " (or more)" } else { "" };
    let detail = format!("{count}{more} error line(s) in the last 24 h, newest: {message}");
    let fix = format!("aws logs tail {group} --since 24h");
    Check::new("function errors", Status::Fail, detail, Some(&fix))
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

/// One search call with the token the function uses (the deployed secret): cheap, and it proves
/// the token, the network path and the query.
/// The deployed X token, read once for the token probe and for X's usage count; the failure is
/// the `x token` check's verdict.
async fn deployed_token(session: &Session, secret: &str) -> Result<Secret, Check> {
    let fix = Some("flixops secrets set (reads the token from stdin)");
    let value = session.clients.secrets.get_secret_value().secret_id(secret).send().await;
    match value.map(|v| v.secret_string) {
        Ok(Some(token)) if !token.trim().is_empty() => Ok(Secret::new(token.trim().to_string())),
        Ok(_) => Err(Check::new("x token", Status::Fail, format!("secret {secret} has no value"), fix)),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            Err(no_token(session, secret).await)
        }
        Err(e) => {
            let detail = format!("secret {secret}: {}", crate::aws::error_message(&e));
            Err(Check::new("x token", Status::Fail, detail, fix))
        }
    }
}

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

/// GetSecretValue answers ResourceNotFoundException both for a missing secret and for one created
/// without a value (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html>:
/// "If you don't include SecretString or SecretBinary, then Secrets Manager creates a secret with no
/// versions"): DescribeSecret tells which.
async fn no_token(session: &Session, secret: &str) -> Check {
    let described = session.clients.secrets.describe_secret().secret_id(secret).send().await;
    let (detail, fix) = match described {
        Ok(found) if found.deleted_date.is_none() => (
            format!("the secret {secret} exists but has no token yet"),
            Some("flixops secrets set (reads the token from stdin)"),
        ),
        Ok(_) => (format!("secret {secret} is scheduled for deletion"), Some("flixops deploy (restores it)")),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            (format!("secret {secret} not found"), Some("flixops deploy (creates it), then flixops secrets set"))
        }
        Err(e) => (format!("secret {secret}: {}", crate::aws::error_message(&e)), None),
    };
    Check::new("x token", Status::Fail, detail, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_ours_and_the_lambda_services() {
        assert_eq!(error_pattern(), r#"?ERROR ?"Task timed out" ?"Runtime exited""#);
        assert!(is_error_line("ERROR extraction failed: X API 401 Unauthorized"));
        assert!(is_error_line("2024-03-01T12:00:00Z abc Task timed out after 300.00 seconds"));
        assert!(is_error_line("RequestId: abc Error: Runtime exited with error: exit status 1"));
        assert!(!is_error_line(" INFO extraction finished run_id=1 pages=3 tweets=250"));
        assert!(!is_error_line("REPORT RequestId: abc Duration: 812.04 ms"));
    }

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
