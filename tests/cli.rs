//! The command line as users of terraform, dbt and the Snowflake CLI expect it, through the binary:
//! the documented exit codes walked one by one, one JSON document on failure with `--output json`,
//! `-q`, `-v` and the colour variables, `compile`, and strict inputs (schedules, regions, replay
//! lines, models) with the file, line and field named.

use std::path::Path;
use std::process::Command;

use crate::common::{fixture, flixops, output, parquet_files};
use serde_json::Value;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH: &str = "/2/tweets/search/recent";

fn write(dir: &Path, relative: &str, text: &str) {
    let file = dir.join(relative);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// A local project whose X API is `base` and whose token is `FLIXOPS_TEST_TOKEN`.
fn local_project(dir: &Path, base: &str) {
    let text = format!(
        "[project]\nname = \"t\"\n[extract]\napi_base_url = \"{base}\"\nbearer_token = {{ env = \"FLIXOPS_TEST_TOKEN\" }}\n\
         [extract.retry]\nmax_attempts = 2\nbase_delay_ms = 10\n[env.dev]\ntarget = \"local\"\n\
         [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\n"
    );
    write(dir, "flixops.toml", &text);
}

/// The rows of the README's exit-code table: (code, meaning).
fn documented_exit_codes() -> Vec<(i32, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("### Exit codes").nth(1).expect("the README has an exit-code table");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let code = cells.get(1)?.trim_matches('`').parse().ok()?;
            Some((code, cells.get(2)?.to_string()))
        })
        .collect()
}

/// Runs `cmd` as is and with `--output json`; checks the exit code both times, the stderr message,
/// and that the JSON run printed exactly one `{"error": …}` document with the same exit code.
fn expect_exit(code: i32, case: &str, cmd: impl Fn() -> Command, stderr_says: &str) {
    let (got, _, stderr) = output(&mut cmd());
    assert_eq!(got, code, "{case}: {stderr}");
    assert!(stderr.contains(stderr_says), "{case}: expected `{stderr_says}` in:\n{stderr}");
    let (got, stdout, stderr) = output(cmd().args(["--output", "json"]));
    assert_eq!(got, code, "{case} (json): {stderr}");
    if code == 0 {
        return;
    }
    let doc: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{case}: one JSON document ({e}):\n{stdout}"));
    let error = &doc["error"];
    assert_eq!(error["exit_code"], code, "{case}: {doc}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains(stderr_says)), "{case}: {doc}");
    for key in ["kind", "fix"] {
        assert!(error[key].as_str().is_some_and(|v| !v.is_empty()), "{case}: `{key}` is empty: {doc}");
    }
    assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{case}: nothing but the error: {doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_exit_codes_hold_for_every_cause_they_name() {
    let documented = documented_exit_codes();
    let codes: Vec<i32> = documented.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [0, 1, 2, 3, 4], "README: {documented:?}");
    let (_, help, _) = output(flixops(Path::new(".")).arg("--help"));
    for code in &codes {
        assert!(help.contains(&format!("\n  {code}  ")), "--help lists exit code {code}:\n{help}");
    }

    let x = MockServer::start().await;
    let unauthorized: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("search_all_401.json")).unwrap()).unwrap();
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(401).set_body_json(&unauthorized["body"]))
        .mount(&x)
        .await;
    let capped = MockServer::start().await;
    let cap = serde_json::json!({
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
    });
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(429).set_body_json(cap)).mount(&capped).await;

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    local_project(p, &x.uri());
    let in_project = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        move || {
            let mut cmd = flixops(p);
            cmd.args(&args).env("FLIXOPS_TEST_TOKEN", "t");
            cmd
        }
    };
    let brexit = fixture("brexit.jsonl").display().to_string();
    let out = p.join("out").display().to_string();

    // 0: success.
    expect_exit(0, "a replay into a directory", in_project(&["extract", "--replay", &brexit, "--to", &out]), "stored");

    // 1: a failure that is no one's input: the lake is a file.
    let broken = tempfile::tempdir().unwrap();
    write(broken.path(), "lake", "not a directory");
    write(
        broken.path(),
        "flixops.toml",
        "[project]\nname = \"d\"\n[env.dev]\ntarget = \"local\"\nlake_dir = \"lake\"\n",
    );
    // (The cloud-only build has no lake to read: it says so with exit 2, tests/cloud_only.rs.)
    #[cfg(feature = "local")]
    expect_exit(
        1,
        "an unreadable lake",
        || {
            let mut cmd = flixops(broken.path());
            cmd.arg("transform");
            cmd
        },
        "cannot read the lake at",
    );

    // 2: usage and missing inputs.
    expect_exit(2, "an unknown flag", in_project(&["run", "--bogus"]), "unexpected argument '--bogus'");
    expect_exit(2, "--max-pages 0", in_project(&["extract", "--max-pages", "0"]), "--max-pages");
    expect_exit(2, "an unknown --env", in_project(&["transform", "--env", "staging"]), "unknown environment `staging`");
    expect_exit(2, "the other target", in_project(&["run", "--demo", "--env", "prod"]), "uses target aws-snowflake");
    let empty = tempfile::tempdir().unwrap();
    expect_exit(
        2,
        "no flixops.toml",
        || {
            let mut cmd = flixops(empty.path());
            cmd.arg("transform");
            cmd
        },
        "no such file; run `flixops init`",
    );
    expect_exit(
        2,
        "the X token's variable unset",
        || {
            let mut cmd = flixops(p);
            cmd.arg("extract").env_remove("FLIXOPS_TEST_TOKEN");
            cmd
        },
        "the X bearer token is not set: export FLIXOPS_TEST_TOKEN=",
    );
    expect_exit(
        2,
        "a --replay file that is missing",
        in_project(&["extract", "--replay", "/nonexistent/pages.jsonl"]),
        "No such file",
    );
    write(p, "tweet.jsonl", r#"{"id":"1","text":"one post per line"}"#);
    expect_exit(
        2,
        "a --replay line that is not a page",
        in_project(&["extract", "--replay", "tweet.jsonl"]),
        "tweet.jsonl:1: not an X API search page",
    );
    let bad_plan = p.join("bad.plan").display().to_string();
    write(p, "bad.plan", "{\"resources\": []}");
    expect_exit(2, "a plan file that is not one", in_project(&["deploy", &bad_plan]), "not a flixops plan file");

    // 3: cannot connect, or credentials refused.
    expect_exit(3, "X answers 401", in_project(&["extract"]), "401 Unauthorized");
    local_project(p, "http://127.0.0.1:9");
    expect_exit(3, "X unreachable", in_project(&["extract"]), "cannot reach the X API");
    expect_exit(
        3,
        "AWS unreachable",
        || {
            let mut cmd = flixops(p);
            cmd.args(["export", "iam-policy", "--env", "prod"]).envs(crate::common::moto_env());
            cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").env("FLIXOPS_OPERATION_TIMEOUT_SECS", "5");
            cmd
        },
        "cannot reach AWS STS",
    );

    // 4: X's usage cap.
    local_project(p, &capped.uri());
    expect_exit(4, "X's usage cap", in_project(&["extract"]), "usage cap is reached");
}

#[cfg_attr(not(feature = "local"), ignore = "runs the local pipeline (DuckDB)")]
#[test]
fn quiet_keeps_errors_verbose_shows_model_sql_and_colour_follows_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flixops.toml", "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n");
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["run", "--demo", "-q"]));
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""), "quiet: nothing but errors");

    let (code, _, stderr) = output(flixops(dir.path()).args(["transform", "-v"]).env("CLICOLOR_FORCE", "1"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("CREATE OR REPLACE TABLE \"marts\".\"users_stats\" AS")
            && stderr.contains("FROM \"staging\".\"stg_tweets\""),
        "-v shows each model's SQL: {stderr}"
    );
    assert!(stderr.contains('\u{1b}'), "CLICOLOR_FORCE colours logs off a terminal: {stderr}");
    let (_, _, stderr) =
        output(flixops(dir.path()).args(["transform", "-v"]).env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1"));
    assert!(stderr.contains("DEBUG") && !stderr.contains('\u{1b}'), "NO_COLOR wins: {stderr}");
    let (_, _, stderr) = output(flixops(dir.path()).args(["transform", "-v"]));
    assert!(!stderr.contains('\u{1b}'), "no colour in a pipe: {stderr}");

    let (code, _, stderr) = output(flixops(dir.path()).args(["transform", "-q", "-v"]));
    assert_eq!(code, 2, "-q and -v contradict each other: {stderr}");
}

#[test]
fn compile_prints_each_models_sql_for_the_environments_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "flixops.toml",
        "[project]\nname = \"acme\"\n[env.dev]\ntarget = \"local\"\n[env.prod]\ntarget = \"aws-snowflake\"\ndatabase = \"ACME_DB\"\n",
    );
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["compile", "marts.users_stats"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("-- marts.users_stats ((built-in) models/marts/users_stats.sql, duckdb)\n"), "{stdout}");
    assert!(stdout.contains("FROM \"staging\".\"stg_tweets\""), "refs rendered for DuckDB: {stdout}");

    let (code, stdout, stderr) = output(flixops(dir.path()).args(["compile", "--env", "prod", "-o", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let compiled: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(compiled["dialect"], "snowflake");
    let models = compiled["models"].as_array().unwrap();
    assert_eq!(models[0]["model"], "staging.stg_tweets", "build order: staging first");
    let users = models.iter().find(|m| m["model"] == "marts.users_stats").unwrap();
    assert!(users["sql"].as_str().unwrap().contains("\"ACME_DB\".\"STAGING\".\"STG_TWEETS\""), "{users}");
    assert_eq!(users["refs"], serde_json::json!(["staging.stg_tweets"]));

    let (code, _, stderr) = output(flixops(dir.path()).args(["compile", "marts.nope"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("no model `marts.nope`; the models are staging.stg_tweets"), "{stderr}");
}

#[cfg(feature = "local")]
#[test]
fn a_model_is_one_select_and_anything_else_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "flixops.toml", "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n");
    let (code, _, stderr) = output(flixops(p).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let raw_rows = |p: &Path| {
        let conn = duckdb::Connection::open(p.join(".flixops/warehouse.duckdb")).unwrap();
        let rows: i64 = conn.query_row("SELECT count(*) FROM raw.tweets_raw", [], |r| r.get(0)).unwrap();
        let loaded: i64 = conn.query_row("SELECT count(*) FROM ops.load_history", [], |r| r.get(0)).unwrap();
        (rows, loaded)
    };
    let before = raw_rows(p);
    for (name, sql) in flixops::models::DEFAULT_MODELS {
        write(p, &format!("models/{name}"), sql);
    }
    let evil = "SELECT 1 AS a;\nDROP TABLE ops.load_history;\n";
    write(p, "models/marts/evil.sql", evil);
    let lake_files = parquet_files(&p.join(".flixops/lake")).len();
    for args in [&["transform"][..], &["run", "--demo"], &["compile"]] {
        let (code, _, stderr) = output(flixops(p).args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("models/marts/evil.sql: holds more than one statement")
                && stderr.contains("a model is exactly one SELECT (or WITH … SELECT)")
                && stderr.contains("nothing was run"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(parquet_files(&p.join(".flixops/lake")).len(), lake_files, "run fetched nothing");
    assert_eq!(raw_rows(p), before, "ops.load_history is intact, so nothing is loaded twice");

    write(p, "models/marts/evil.sql", "WITH a AS (SELECT 1) DELETE FROM raw.tweets_raw");
    let (code, _, stderr) = output(flixops(p).arg("transform"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a `WITH … DELETE` statement, not a WITH … SELECT"), "{stderr}");
    write(p, "models/marts/evil.sql", "WITH a AS (SELECT 1 AS x) SELECT x FROM a;\n");
    let (code, _, stderr) = output(flixops(p).arg("transform"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(raw_rows(p), before);
}

#[test]
fn replay_refuses_what_is_not_a_search_page_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let page = crate::common::page("two_tweets.jsonl");
    let unauthorized: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("search_all_401.json")).unwrap()).unwrap();
    let cases = [
        (
            "tweets.jsonl",
            format!("{page}\n{}\n", r#"{"id":"1","text":"a post on its own line"}"#),
            "tweets.jsonl:2: not an X API search page: it is a single post",
        ),
        (
            "error.json",
            unauthorized["body"].to_string(),
            "error.json: not an X API search page: it is an X API error response (status 401: Unauthorized",
        ),
        (
            "foo.jsonl",
            "{\"foo\":1}\n".to_string(),
            "foo.jsonl:1: not an X API search page: a JSON object without `data` or `meta` (keys: foo)",
        ),
    ];
    for (name, text, says) in cases {
        write(p, name, &text);
        let (code, _, stderr) =
            output(flixops(p).args(["extract", "--replay", name, "--to"]).arg(p.join(format!("out-{name}"))));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    assert_eq!(parquet_files(&p.join("out-error.json")).len(), 0);
    assert_eq!(parquet_files(&p.join("out-tweets.jsonl")).len(), 1, "the page before the bad line is stored");

    write(p, "empty.jsonl", "{\"meta\":{\"result_count\":0}}\n");
    let (code, stdout, stderr) =
        output(flixops(p).args(["extract", "-o", "json", "--replay", "empty.jsonl", "--to"]).arg(p.join("out-empty")));
    assert_eq!(code, 0, "a search that found nothing is a page: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["status"].as_str(), report["tweets"].as_u64()), (Some("complete"), Some(0)), "{report}");
}

#[cfg(feature = "local")]
#[test]
fn run_that_stored_pages_but_could_not_load_them_says_so_and_transform_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "flixops.toml", "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n");
    std::fs::create_dir_all(p.join(".flixops")).unwrap();
    let holder = duckdb::Connection::open(p.join(".flixops/warehouse.duckdb")).unwrap();
    holder.execute_batch("CREATE TABLE held (x INTEGER)").unwrap();
    let (code, _, stderr) = output(flixops(p).args(["run", "--replay"]).arg(fixture("brexit.jsonl")));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot open the warehouse"), "{stderr}");
    assert!(
        stderr.contains("the extraction stored 100 tweets in 1 page(s) under")
            && stderr.contains("they are kept, and once the cause is fixed `flixops transform` loads them"),
        "{stderr}"
    );
    drop(holder);
    let (code, stdout, stderr) = output(flixops(p).args(["transform", "-o", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["load"]["files_loaded"], 1, "the stored page is loaded now: {report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_validator_for_schedules_and_regions_in_the_config_init_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let config = |schedule: &str, region: &str| {
        format!(
            "[project]\nname = \"acme\"\n\n[extract]\nschedule = \"{schedule}\"\n\n[env.prod]\ntarget = \"aws-snowflake\"\nregion = \"{region}\"\n"
        )
    };
    let cases = [
        (
            "cron(61 * * * ? *)",
            "eu-west-1",
            "line 5, column 12: extract.schedule: `cron(61 * * * ? *)` is not valid: minutes `61`: 61 is out of range 0-59",
        ),
        (
            "rate(1 hours)",
            "eu-west-1",
            "line 5, column 12: extract.schedule: `rate(1 hours)` is not valid: a value of 1 takes the singular: rate(1 hour)",
        ),
        (
            "rate(2 hours)",
            "eu-west",
            "line 9, column 10: env.prod.region: `eu-west` is not valid: an AWS region looks like eu-west-1",
        ),
    ];
    for (schedule, region, says) in cases {
        write(p, "flixops.toml", &config(schedule, region));
        for args in
            [&["doctor", "--env", "prod"][..], &["export", "airflow", "--env", "prod"], &["plan", "--env", "prod"]]
        {
            let (code, _, stderr) = output(flixops(p).args(args));
            assert_eq!(code, 2, "{args:?} {schedule} {region}: {stderr}");
            assert!(stderr.contains(says), "{args:?}: {stderr}");
        }
    }

    let project = tempfile::tempdir().unwrap();
    let init = |extra: &[&str]| {
        let mut cmd = flixops(project.path());
        cmd.args(["init", "--no-interactive", "--no-validate", "--target=aws-snowflake", "--env=prod"]);
        cmd.args(["--project=acme", "--aws-profile=prod", "--snowflake-connection=prod"]);
        let region = if extra.contains(&"--region") { &[][..] } else { &["--region=eu-west-1"][..] };
        cmd.args(region).args(extra).env("HOME", project.path()).envs(crate::common::moto_env());
        output(&mut cmd)
    };
    for (flag, value, says) in [
        ("--schedule", "rate(5 hour)", "a value above 1 takes the plural: rate(5 hours)"),
        ("--schedule", "cron(0 6 * * MON *)", "exactly one of day-of-month and day-of-week must be `?`"),
        ("--region", "eu-west", "an AWS region looks like eu-west-1"),
    ] {
        let (code, _, stderr) = init(&[flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(says), "{flag} {value}: {stderr}");
        assert!(!project.path().join("flixops.toml").exists(), "nothing written");
    }
}
