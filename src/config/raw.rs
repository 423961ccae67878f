//! The file as typed (serde with spans), and its validation into [`Config`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::rules::{self, is_bucket_name};
use super::{
    AwsSnowflakeTarget, Config, ConfigError, EnvConfig, ExtractConfig, Freshness, LocalTarget, Problem, RetryPolicy,
    SecretRef, Target,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    project: Option<Spanned<RawProject>>,
    #[serde(default)]
    extract: RawExtract,
    #[serde(default)]
    env: BTreeMap<String, Spanned<RawEnv>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    default_env: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    query: Option<Spanned<String>>,
    tweet_fields: Option<Vec<String>>,
    user_fields: Option<Vec<String>>,
    expansions: Option<Vec<String>>,
    vocabulary: Option<Spanned<String>>,
    max_results: Option<Spanned<u32>>,
    max_pages: Option<Spanned<u32>>,
    time_budget_secs: Option<Spanned<u64>>,
    max_posts_per_run: Option<Spanned<u64>>,
    max_posts_per_month: Option<Spanned<u64>>,
    price_per_post_usd: Option<Spanned<f64>>,
    price_per_user_usd: Option<Spanned<f64>>,
    includes_billed: Option<bool>,
    schedule: Option<Spanned<String>>,
    bearer_token: Option<Spanned<toml::Value>>,
    api_base_url: Option<Spanned<String>>,
    request_timeout_secs: Option<Spanned<u64>>,
    retry: Option<RawRetry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<Spanned<u32>>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    target: Spanned<String>,
    prefix: Option<Spanned<String>>,
    lake_dir: Option<Spanned<String>>,
    warehouse: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    aws_profile: Option<Spanned<String>>,
    bucket: Option<Spanned<String>>,
    snowflake_connection: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    snowflake_warehouse: Option<Spanned<String>>,
    target_lag: Option<Spanned<String>>,
    iam_propagation_secs: Option<Spanned<u64>>,
    log_retention_days: Option<Spanned<i32>>,
    lambda_architecture: Option<Spanned<String>>,
    freshness: Option<RawFreshness>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreshness {
    warn_after: Option<Spanned<String>>,
    error_after: Option<Spanned<String>>,
}

/// Default `tweet.fields`: what the data contract needs (`note_tweet`: the full text of long posts).
pub const TWEET_FIELDS: &[&str] =
    &["created_at", "author_id", "entities", "referenced_tweets", "lang", "public_metrics", "note_tweet"];
/// Default `user.fields`.
pub const USER_FIELDS: &[&str] = &["location", "public_metrics", "username"];
/// Default `expansions`: the authors, and the tweets referred to (a retweet's full text is its original's).
pub const EXPANSIONS: &[&str] = &["author_id", "referenced_tweets.id"];

/// Collects located problems while validating.
struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line_of(&self, span: Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn report(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.problems.push(Problem { line, column, field: field.to_string(), message: message.into() });
    }

    /// Applies one of [`rules`], reporting its message at the value's line and column.
    fn check(&mut self, value: &Spanned<String>, field: &str, rule: fn(&str) -> Result<(), String>) {
        if let Err(why) = rule(value.get_ref()) {
            let message = format!("`{}` is not valid: {why}", value.get_ref());
            self.report(value.span(), field, message);
        }
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = line_column(text, span.start);
        let problem = Problem { line, column, field: field_at(text, span.start), message: e.message().to_string() };
        ConfigError::Invalid { path: path.to_path_buf(), problems: vec![problem] }
    })?;
    let mut checker = Checker { text, problems: Vec::new() };
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let config = validate(raw, &mut checker, path, &root);
    match checker.problems.is_empty() {
        true => Ok(config),
        false => Err(ConfigError::Invalid { path: path.to_path_buf(), problems: checker.problems }),
    }
}

fn validate(raw: RawConfig, c: &mut Checker, path: &Path, root: &Path) -> Config {
    let (project, default_env) = match raw.project {
        Some(p) => {
            let p = p.into_inner();
            c.check(&p.name, "project.name", rules::project_name);
            (p.name.into_inner(), p.default_env)
        }
        None => {
            c.report(0..0, "project", "missing [project] table; add `[project]` with `name = \"my-pipeline\"`");
            (String::new(), None)
        }
    };
    if raw.env.is_empty() {
        c.report(0..0, "env", "no environment defined; add `[env.dev]` with `target = \"local\"`");
    }
    if let Some(name) = &default_env {
        if !raw.env.contains_key(name.get_ref()) {
            let known = raw.env.keys().cloned().collect::<Vec<_>>().join(", ");
            c.report(
                name.span(),
                "project.default_env",
                format!("no [env.{}] table; defined: [{known}]", name.get_ref()),
            );
        }
    }
    let extract = validate_extract(raw.extract, c);
    let envs = raw
        .env
        .into_iter()
        .map(|(name, env)| {
            let env = validate_env(&name, env, c, root, &project);
            (name, env)
        })
        .collect();
    Config {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        project,
        default_env: default_env.map(Spanned::into_inner),
        extract,
        envs,
    }
}

fn validate_extract(raw: RawExtract, c: &mut Checker) -> ExtractConfig {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if let Some(q) = &raw.query {
        // docs.x.com (search/recent, `query`): at most 512 characters, not bytes.
        if q.get_ref().trim().is_empty() || q.get_ref().chars().count() > 512 {
            c.report(q.span(), "extract.query", "the query must be 1-512 characters");
        }
    }
    let max_results = raw.max_results.map(|m| {
        if !(10..=100).contains(m.get_ref()) {
            c.report(m.span(), "extract.max_results", "recent search accepts 10 to 100 per page");
        }
        m.into_inner()
    });
    if let Some(url) = &raw.api_base_url {
        if let Some(problem) = api_base_url_problem(url.get_ref()) {
            c.report(url.span(), "extract.api_base_url", problem);
        }
    }
    if let Some(schedule) = &raw.schedule {
        c.check(schedule, "extract.schedule", rules::schedule);
    }
    if let Some(m) = raw.max_pages.as_ref().filter(|m| *m.get_ref() == 0) {
        c.report(m.span(), "extract.max_pages", "must be at least 1; leave it out to follow every page");
    }
    for (field, cap) in
        [("max_posts_per_run", &raw.max_posts_per_run), ("max_posts_per_month", &raw.max_posts_per_month)]
    {
        if let Some(cap) = cap.as_ref().filter(|c| *c.get_ref() < 10) {
            let message = "must be at least 10 (the smallest page recent search returns); leave it out for no cap";
            c.report(cap.span(), &format!("extract.{field}"), message);
        }
    }
    for (field, price) in
        [("price_per_post_usd", &raw.price_per_post_usd), ("price_per_user_usd", &raw.price_per_user_usd)]
    {
        if let Some(price) = price.as_ref().filter(|p| !(p.get_ref().is_finite() && *p.get_ref() >= 0.0)) {
            c.report(
                price.span(),
                &format!("extract.{field}"),
                "must be a price in US dollars, 0 or more (e.g. 0.005)",
            );
        }
    }
    let vocabulary = match raw.vocabulary.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None | Some(("tweet", _)) => super::Vocabulary::Tweet,
        Some(("post", _)) => super::Vocabulary::Post,
        Some((_, span)) => {
            let message = "use \"tweet\" (tweet.fields, today's API) or \"post\" (post.fields, X's newer spec)";
            c.report(span, "extract.vocabulary", message);
            super::Vocabulary::Tweet
        }
    };
    let bearer_token = match raw.bearer_token {
        Some(value) => secret_ref(value, c),
        None => SecretRef::Env("X_BEARER_TOKEN".to_string()),
    };
    let retry = raw.retry.map(|r| retry_policy(r, c)).unwrap_or_default();
    ExtractConfig {
        query: raw.query.map(Spanned::into_inner).unwrap_or_else(|| "flixbus".to_string()),
        tweet_fields: raw.tweet_fields.unwrap_or_else(|| owned(TWEET_FIELDS)),
        user_fields: raw.user_fields.unwrap_or_else(|| owned(USER_FIELDS)),
        expansions: raw.expansions.unwrap_or_else(|| owned(EXPANSIONS)),
        vocabulary,
        max_results: max_results.unwrap_or(100),
        max_pages: raw.max_pages.map(Spanned::into_inner),
        time_budget_secs: raw.time_budget_secs.map(Spanned::into_inner).unwrap_or(600),
        max_posts_per_run: raw.max_posts_per_run.map(Spanned::into_inner),
        max_posts_per_month: raw.max_posts_per_month.map(Spanned::into_inner),
        price_per_post_usd: raw.price_per_post_usd.map_or(super::DEFAULT_PRICE_PER_POST_USD, Spanned::into_inner),
        price_per_user_usd: raw.price_per_user_usd.map_or(super::DEFAULT_PRICE_PER_USER_USD, Spanned::into_inner),
        includes_billed: raw.includes_billed.unwrap_or(true),
        schedule_line: raw.schedule.as_ref().map(|s| c.line_of(s.span())),
        schedule: raw.schedule.map(Spanned::into_inner).unwrap_or_else(|| "rate(1 hour)".to_string()),
        bearer_token,
        api_base_url: raw.api_base_url.map(Spanned::into_inner).unwrap_or_else(|| "https://api.x.com".to_string()),
        request_timeout_secs: raw.request_timeout_secs.map(Spanned::into_inner).unwrap_or(30),
        retry,
    }
}

/// `https://` anywhere, `http://` only to this machine (a local mock): plain HTTP elsewhere would
/// send the bearer token in clear.
fn api_base_url_problem(url: &str) -> Option<&'static str> {
    let host = || url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    if url.starts_with("https://") {
        None
    } else if url.starts_with("http://") {
        (!super::is_loopback_host(&host())).then_some(
            "http:// sends the bearer token in clear, so it is allowed only for localhost/127.0.0.1 (a local \
             mock); use https://",
        )
    } else {
        Some("must start with https:// (or http://localhost for a local mock)")
    }
}

fn retry_policy(raw: RawRetry, c: &mut Checker) -> RetryPolicy {
    let default = RetryPolicy::default();
    let max_attempts = raw.max_attempts.map(|m| {
        if !(1..=20).contains(m.get_ref()) {
            c.report(m.span(), "extract.retry.max_attempts", "use 1 to 20 attempts");
        }
        m.into_inner()
    });
    RetryPolicy {
        max_attempts: max_attempts.unwrap_or(default.max_attempts),
        base_delay_ms: raw.base_delay_ms.unwrap_or(default.base_delay_ms),
        max_delay_ms: raw.max_delay_ms.unwrap_or(default.max_delay_ms),
    }
}

/// A secret is a reference (`{ env = "NAME" }` or `{ secret_arn = "arn:…" }`), never a literal.
fn secret_ref(value: Spanned<toml::Value>, c: &mut Checker) -> SecretRef {
    const FIELD: &str = "extract.bearer_token";
    const HOW: &str = "write `{ env = \"X_BEARER_TOKEN\" }` or `{ secret_arn = \"arn:aws:secretsmanager:…\" }`";
    let span = value.span();
    let table = match value.into_inner() {
        toml::Value::Table(t) => t,
        toml::Value::String(_) => {
            c.report(span, FIELD, format!("secrets are never written into flixops.toml; {HOW}"));
            return SecretRef::Env(String::new());
        }
        _ => {
            c.report(span, FIELD, format!("expected a table; {HOW}"));
            return SecretRef::Env(String::new());
        }
    };
    let entries: Vec<_> = table.into_iter().collect();
    match entries.as_slice() {
        [(k, toml::Value::String(v))] if k == "env" && rules::is_env_var_name(v) => SecretRef::Env(v.clone()),
        [(k, toml::Value::String(v))] if k == "secret_arn" && v.starts_with("arn:aws:secretsmanager:") => {
            SecretRef::SecretsManager(v.clone())
        }
        _ => {
            c.report(span, FIELD, format!("expected exactly one of `env` (a variable name) or `secret_arn`; {HOW}"));
            SecretRef::Env(String::new())
        }
    }
}

/// `[env.NAME.freshness]`: `warn_after` and `error_after` as `30m`, `4h` or `2d`, warn before error.
fn freshness(raw: Option<&RawFreshness>, c: &mut Checker, env: &str) -> Freshness {
    let defaults = Freshness::default();
    let Some(raw) = raw else { return defaults };
    let mut read = |value: &Option<Spanned<String>>, key: &str, default: i64| match value {
        None => Some(default),
        Some(v) => match rules::age_minutes(v.get_ref()) {
            Ok(minutes) => Some(minutes),
            Err(why) => {
                c.report(
                    v.span(),
                    &format!("env.{env}.freshness.{key}"),
                    format!("`{}` is not valid: {why}", v.get_ref()),
                );
                None
            }
        },
    };
    let warn = read(&raw.warn_after, "warn_after", defaults.warn_after_minutes);
    let error = read(&raw.error_after, "error_after", defaults.error_after_minutes);
    let (Some(warn), Some(error)) = (warn, error) else { return defaults };
    if warn >= error {
        let span = raw.error_after.as_ref().or(raw.warn_after.as_ref()).map(|v| v.span()).unwrap_or(0..0);
        c.report(span, &format!("env.{env}.freshness"), "warn_after must be shorter than error_after");
    }
    Freshness { warn_after_minutes: warn, error_after_minutes: error }
}

fn validate_env(name: &str, raw: Spanned<RawEnv>, c: &mut Checker, root: &Path, project: &str) -> EnvConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let field = |key: &str| format!("env.{name}.{key}");
    if let Err(why) = rules::env_name(name) {
        c.report(span.clone(), &format!("env.{name}"), format!("environment names: {why}"));
    }
    if let Some(prefix) = &raw.prefix {
        c.check(prefix, &field("prefix"), |p| {
            is_prefix(p)
                .then_some(())
                .ok_or_else(|| "use letters, digits, - _ . and inner /, without a leading or trailing /".to_string())
        });
    }
    let prefix = raw.prefix.as_ref().map(|p| p.get_ref().clone()).unwrap_or_else(|| "flixops".to_string());
    let target = match raw.target.get_ref().as_str() {
        "local" => Target::Local(local_target(&raw, c, root, name)),
        "aws-snowflake" => {
            let cloud = cloud_target(&raw, c, name, project);
            check_derived_names(&raw, &cloud, c, span.clone(), name, project);
            Target::AwsSnowflake(cloud)
        }
        other => {
            let message = format!("unknown target `{other}`; use \"local\" or \"aws-snowflake\"");
            c.report(raw.target.span(), &field("target"), message);
            Target::Local(LocalTarget::under(root))
        }
    };
    let freshness = freshness(raw.freshness.as_ref(), c, name);
    EnvConfig { name: name.to_string(), prefix, target, freshness }
}

fn local_target(raw: &RawEnv, c: &mut Checker, root: &Path, env: &str) -> LocalTarget {
    let cloud_only = [
        ("region", &raw.region),
        ("aws_profile", &raw.aws_profile),
        ("bucket", &raw.bucket),
        ("snowflake_connection", &raw.snowflake_connection),
        ("database", &raw.database),
        ("snowflake_warehouse", &raw.snowflake_warehouse),
        ("target_lag", &raw.target_lag),
        ("lambda_architecture", &raw.lambda_architecture),
    ];
    let numbers = [
        ("iam_propagation_secs", raw.iam_propagation_secs.as_ref().map(Spanned::span)),
        ("log_retention_days", raw.log_retention_days.as_ref().map(Spanned::span)),
    ];
    let spans = cloud_only.iter().map(|(key, value)| (*key, value.as_ref().map(Spanned::span)));
    for (key, span) in spans.chain(numbers) {
        if let Some(span) = span {
            c.report(
                span,
                &format!("env.{env}.{key}"),
                "applies to target \"aws-snowflake\" only; remove it or change the target",
            );
        }
    }
    let default = LocalTarget::under(root);
    let resolve =
        |p: &Option<Spanned<String>>, fallback: PathBuf| p.as_ref().map(|p| root.join(p.get_ref())).unwrap_or(fallback);
    LocalTarget {
        lake_dir: resolve(&raw.lake_dir, default.lake_dir),
        warehouse: resolve(&raw.warehouse, default.warehouse),
    }
}

fn cloud_target(raw: &RawEnv, c: &mut Checker, env: &str, project: &str) -> AwsSnowflakeTarget {
    for (key, value) in [("lake_dir", &raw.lake_dir), ("warehouse", &raw.warehouse)] {
        if let Some(v) = value {
            c.report(
                v.span(),
                &format!("env.{env}.{key}"),
                "applies to target \"local\" only; remove it or change the target",
            );
        }
    }
    let field = |key: &str| format!("env.{env}.{key}");
    if let Some(b) = &raw.bucket {
        c.check(b, &field("bucket"), rules::bucket_name);
    }
    if let Some(region) = &raw.region {
        c.check(region, &field("region"), rules::region);
    }
    for (key, value) in [("database", &raw.database), ("snowflake_warehouse", &raw.snowflake_warehouse)] {
        if let Some(v) = value {
            c.check(v, &field(key), rules::identifier);
        }
    }
    if let Some(v) = &raw.target_lag {
        c.check(v, &field("target_lag"), rules::target_lag);
    }
    if let Some(v) = &raw.lambda_architecture {
        c.check(v, &field("lambda_architecture"), |a| {
            rules::rule(
                LAMBDA_ARCHITECTURES.contains(&a),
                "use \"x86_64\" or \"arm64\" (Lambda's names; arm64 is Graviton, cheaper per GB-second)",
            )
        });
    }
    if let Some(secs) = raw.iam_propagation_secs.as_ref().filter(|s| *s.get_ref() > MAX_PROPAGATION_SECS) {
        let message = format!(
            "at most {MAX_PROPAGATION_SECS} seconds; the default, {}, is what Terraform's AWS provider waits for IAM",
            crate::aws::DEFAULT_PROPAGATION_SECS
        );
        c.report(secs.span(), &field("iam_propagation_secs"), message);
    }
    if let Some(days) = raw.log_retention_days.as_ref().filter(|d| !RETENTION_DAYS.contains(d.get_ref())) {
        let allowed = RETENTION_DAYS.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
        let message = format!("CloudWatch Logs keeps events for one of {allowed} days");
        c.report(days.span(), &field("log_retention_days"), message);
    }
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
    AwsSnowflakeTarget {
        region: text(&raw.region),
        aws_profile: text(&raw.aws_profile),
        bucket: text(&raw.bucket).unwrap_or_else(|| format!("{project}-{env}-tweets")),
        snowflake_connection: text(&raw.snowflake_connection),
        database: text(&raw.database).unwrap_or_else(|| project.replace('-', "_").to_uppercase()),
        warehouse: text(&raw.snowflake_warehouse).unwrap_or_else(|| "COMPUTE_WH".to_string()),
        target_lag: text(&raw.target_lag).unwrap_or_else(|| "1 hour".to_string()),
        iam_propagation_secs: raw
            .iam_propagation_secs
            .as_ref()
            .map_or(crate::aws::DEFAULT_PROPAGATION_SECS, |s| *s.get_ref()),
        log_retention_days: raw.log_retention_days.as_ref().map_or(DEFAULT_RETENTION_DAYS, |d| *d.get_ref()),
        lambda_architecture: text(&raw.lambda_architecture).unwrap_or_else(|| LAMBDA_ARCHITECTURES[0].to_string()),
    }
}

/// The architectures Lambda runs `provided.al2023` on, by its own names; the first is the default.
const LAMBDA_ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

/// The longest IAM propagation wait flixops.toml accepts (a deploy should not hang for long).
const MAX_PROPAGATION_SECS: u64 = 900;

/// The retention of the function's log group unless `log_retention_days` says otherwise.
const DEFAULT_RETENTION_DAYS: i32 = 30;

/// The values PutRetentionPolicy accepts
/// (<https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>).
const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Names derived from the project and environment must fit AWS's rules; an explicit `bucket` is
/// checked where it is written, the default one here (environment names may hold `_`).
fn check_derived_names(
    raw: &RawEnv,
    cloud: &AwsSnowflakeTarget,
    c: &mut Checker,
    span: Range<usize>,
    env: &str,
    project: &str,
) {
    if raw.bucket.is_none() && !is_bucket_name(&cloud.bucket) {
        let message = format!(
            "the default bucket name `{}` ({{project}}-{{env}}-tweets) is not valid: S3 bucket names are 3-63 \
             characters of a-z, 0-9, . and -, starting and ending with a letter or digit; set `bucket` in [env.{env}]",
            cloud.bucket
        );
        c.report(span.clone(), &format!("env.{env}.bucket"), message);
    }
    let names = crate::aws::stack::Names::new(project, env, &cloud.bucket);
    for limited in names.limited().into_iter().filter(|l| l.name.chars().count() > l.max) {
        let over = limited.name.chars().count() - limited.max;
        let message = format!(
            "the derived {} name `{}` is {} characters; AWS allows at most {}: shorten the environment name \
             (or the project name) by {over} characters",
            limited.kind,
            limited.name,
            limited.name.chars().count(),
            limited.max
        );
        c.report(span.clone(), &format!("env.{env}"), message);
    }
}

fn is_prefix(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && !s.split('/').any(|part| part == ".." || part == ".")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key at a byte offset: the table header above it plus the key on its line.
fn field_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header_of =
        |l: &str| l.trim().strip_prefix('[').map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    if let Some(header) = header_of(line) {
        return header;
    }
    let table = before[..line_start].lines().rev().find_map(header_of);
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string());
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (Some(t), None) => t,
        (None, Some(k)) => k,
        (None, None) => "(top level)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, Path::new("/p/flixops.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    const MINIMAL: &str = "[project]\nname = \"demo\"\n\n[env.dev]\ntarget = \"local\"\n";

    #[test]
    fn plain_http_is_allowed_only_to_this_machine() {
        let with = |url: &str| {
            format!("[project]\nname = \"demo\"\n[extract]\napi_base_url = \"{url}\"\n[env.dev]\ntarget = \"local\"\n")
        };
        for ok in ["https://api.x.com", "http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80"] {
            assert!(parse(&with(ok), Path::new("/p/flixops.toml")).is_ok(), "{ok}");
        }
        let found = problems(&with("http://api.x.com"));
        assert_eq!((found.len(), found[0].field.as_str(), found[0].line), (1, "extract.api_base_url", 4), "{found:?}");
        assert!(found[0].message.contains("only for localhost"), "{found:?}");
        let found = problems(&with("ftp://127.0.0.1"));
        assert!(found[0].message.contains("must start with https://"), "{found:?}");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(MINIMAL, Path::new("/p/flixops.toml")).unwrap();
        assert_eq!(config.extract.query, "flixbus");
        assert_eq!(config.extract.max_results, 100);
        let env = config.env(None).unwrap();
        assert_eq!(env.prefix, "flixops");
        match &env.target {
            Target::Local(l) => assert_eq!(l.lake_dir, Path::new("/p/.flixops/lake")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_query_is_limited_in_characters_not_bytes_and_caps_need_a_page() {
        let with = |extract: &str| {
            format!("[project]\nname = \"demo\"\n[extract]\n{extract}\n[env.dev]\ntarget = \"local\"\n")
        };
        let accented = "é".repeat(512); // 1024 bytes, 512 characters: X accepts it
        assert!(parse(&with(&format!("query = \"{accented}\"")), Path::new("f")).is_ok());
        let p = problems(&with(&format!("query = \"{accented}é\"")));
        assert_eq!(
            (p[0].field.as_str(), p[0].message.as_str()),
            ("extract.query", "the query must be 1-512 characters")
        );
        let p = problems(&with("max_posts_per_run = 5\nprice_per_post_usd = -1.0"));
        let fields: Vec<_> = p.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(fields, [(4, "extract.max_posts_per_run"), (5, "extract.price_per_post_usd")]);
        let config = parse(&with("max_posts_per_month = 100000"), Path::new("f")).unwrap();
        assert_eq!((config.extract.max_posts_per_month, config.extract.price_per_post_usd), (Some(100_000), 0.005));
    }

    #[test]
    fn unknown_target_names_line_column_and_field() {
        let p = problems("[project]\nname = \"demo\"\n\n[env.dev]\ntarget = \"lokal\"\n");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].line, p[0].column, p[0].field.as_str()), (5, 10, "env.dev.target"));
        assert!(p[0].message.contains("\"local\" or \"aws-snowflake\""), "{}", p[0].message);
    }

    #[test]
    fn type_error_names_the_field() {
        let p =
            problems("[project]\nname = \"demo\"\n[extract]\nmax_results = \"many\"\n[env.dev]\ntarget = \"local\"\n");
        assert_eq!((p[0].line, p[0].field.as_str()), (4, "extract.max_results"));
    }

    #[test]
    fn unknown_key_is_rejected_with_its_place() {
        let p = problems("[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\nbukket = \"x\"\n");
        assert_eq!((p[0].line, p[0].field.as_str()), (5, "env.dev.bukket"));
        assert!(p[0].message.contains("unknown field"), "{}", p[0].message);
    }

    #[test]
    fn inline_secret_is_refused_without_echoing_it() {
        let text = "[project]\nname = \"demo\"\n[extract]\nbearer_token = \"AAAAsecretvalue\"\n[env.dev]\ntarget = \"local\"\n";
        let err = parse(text, Path::new("flixops.toml")).unwrap_err().to_string();
        assert!(err.contains("line 4, column 16: extract.bearer_token"), "{err}");
        assert!(err.contains("never written into flixops.toml"), "{err}");
        assert!(!err.contains("AAAAsecretvalue"), "the secret leaked into: {err}");
    }

    #[test]
    fn secret_references_are_accepted() {
        let text = "[project]\nname = \"demo\"\n[extract]\nbearer_token = { secret_arn = \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x\" }\n[env.dev]\ntarget = \"local\"\n";
        let config = parse(text, Path::new("flixops.toml")).unwrap();
        assert!(matches!(config.extract.bearer_token, SecretRef::SecretsManager(ref a) if a.ends_with(":x")));
    }

    #[test]
    fn all_problems_are_listed_at_once() {
        let text = "[project]\nname = \"Demo\"\n[env.prod]\ntarget = \"aws-snowflake\"\nbucket = \"Bad_Bucket\"\nlake_dir = \"x\"\n";
        let fields: Vec<_> = problems(text).into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["project.name", "env.prod.lake_dir", "env.prod.bucket"]);
    }

    #[test]
    fn cloud_defaults_derive_from_project_and_env() {
        let text = "[project]\nname = \"acme-tweets\"\n[env.prod]\ntarget = \"aws-snowflake\"\n";
        let config = parse(text, Path::new("flixops.toml")).unwrap();
        match &config.env(Some("prod")).unwrap().target {
            Target::AwsSnowflake(t) => {
                assert_eq!(t.bucket, "acme-tweets-prod-tweets");
                assert_eq!(t.database, "ACME_TWEETS");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_derived_name_aws_would_refuse_is_named_with_its_rule_and_limit() {
        let text = "[project]\nname = \"acme-tweets\"\n[env.eu_prod]\ntarget = \"aws-snowflake\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].field.as_str()), (3, "env.eu_prod.bucket"));
        assert!(
            p[0].message.contains("`acme-tweets-eu_prod-tweets`")
                && p[0].message.contains("3-63 characters of a-z, 0-9, . and -")
                && p[0].message.contains("set `bucket` in [env.eu_prod]"),
            "{}",
            p[0].message
        );
        parse(&format!("{text}bucket = \"acme-eu-prod\"\n"), Path::new("flixops.toml")).unwrap();

        let env = "e".repeat(48);
        let text =
            format!("[project]\nname = \"acme-tweets\"\n[env.{env}]\ntarget = \"aws-snowflake\"\nbucket = \"b-1\"\n");
        let p = problems(&text);
        let roles: Vec<&Problem> = p.iter().filter(|p| p.message.contains("IAM role")).collect();
        // acme-tweets-{48 e}-flixops-deploy is 75 characters, -snowflake 70; -extract is 68.
        assert_eq!(roles.len(), 5, "{p:#?}");
        let deploy = roles.iter().find(|p| p.message.contains("-flixops-deploy`")).unwrap();
        assert_eq!((deploy.line, deploy.field.as_str()), (3, format!("env.{env}").as_str()));
        assert!(
            deploy.message.contains(&format!("`acme-tweets-{env}-flixops-deploy` is 75 characters"))
                && deploy.message.contains("AWS allows at most 64")
                && deploy.message.contains("flixops export terraform")
                && deploy.message.contains("by 11 characters"),
            "{}",
            deploy.message
        );
        assert!(p.iter().any(|p| p.message.contains("Lambda function name") && p.message.contains("at most 64")));
        let fits = "e".repeat(37);
        parse(&text.replace(&env, &fits), Path::new("flixops.toml")).unwrap();
    }

    #[test]
    fn log_retention_and_iam_propagation_have_defaults_and_bounds() {
        let text = "[project]\nname = \"demo\"\n[env.prod]\ntarget = \"aws-snowflake\"\n";
        let cloud = |config: &Config| match &config.env(Some("prod")).unwrap().target {
            Target::AwsSnowflake(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        let defaults = cloud(&parse(text, Path::new("flixops.toml")).unwrap());
        assert_eq!((defaults.log_retention_days, defaults.iam_propagation_secs), (30, 120));
        let set = format!("{text}log_retention_days = 14\niam_propagation_secs = 5\n");
        let set = cloud(&parse(&set, Path::new("flixops.toml")).unwrap());
        assert_eq!((set.log_retention_days, set.iam_propagation_secs), (14, 5));

        let p = problems(&format!("{text}log_retention_days = 10\niam_propagation_secs = 3600\n"));
        assert_eq!((p[0].line, p[0].field.as_str()), (6, "env.prod.iam_propagation_secs"));
        assert!(p[0].message.contains("at most 900 seconds"), "{}", p[0].message);
        assert_eq!((p[1].line, p[1].field.as_str()), (5, "env.prod.log_retention_days"));
        assert!(p[1].message.contains("one of 1, 3, 5, 7, 14, 30"), "{}", p[1].message);

        let p = problems("[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\nlog_retention_days = 14\n");
        assert_eq!(p[0].field, "env.dev.log_retention_days");
        assert!(p[0].message.contains("\"aws-snowflake\" only"), "{}", p[0].message);
    }

    #[test]
    fn lambda_architecture_is_x86_64_or_arm64() {
        let text = "[project]\nname = \"demo\"\n[env.prod]\ntarget = \"aws-snowflake\"\n";
        let arch = |text: &str| match &parse(text, Path::new("flixops.toml")).unwrap().env(Some("prod")).unwrap().target
        {
            Target::AwsSnowflake(t) => t.lambda_architecture.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(arch(text), "x86_64", "the default");
        assert_eq!(arch(&format!("{text}lambda_architecture = \"arm64\"\n")), "arm64");
        let p = problems(&format!("{text}lambda_architecture = \"aarch64\"\n"));
        assert_eq!((p[0].line, p[0].field.as_str()), (5, "env.prod.lambda_architecture"));
        assert!(p[0].message.contains("\"x86_64\" or \"arm64\""), "{}", p[0].message);
        let p =
            problems("[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\nlambda_architecture = \"arm64\"\n");
        assert!(p[0].message.contains("\"aws-snowflake\" only"), "{}", p[0].message);
    }

    #[test]
    fn unknown_env_lists_the_defined_ones() {
        let config = parse(MINIMAL, Path::new("flixops.toml")).unwrap();
        let err = config.env(Some("prod")).unwrap_err().to_string();
        assert!(err.contains("unknown environment `prod`; defined: [dev]"), "{err}");
    }

    #[test]
    fn prefix_cannot_escape_the_lake() {
        let p = problems("[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\nprefix = \"../etc\"\n");
        assert_eq!(p[0].field, "env.dev.prefix");
    }
}
