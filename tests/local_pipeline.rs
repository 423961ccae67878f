//! The local target end to end through the binary: `run --demo` on the recorded #brexit page, the
//! loader's exactly-once history, model changes, and the errors a user meets on bad input.

use crate::common;
use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{fixture, flixops, output, parquet_files};
use serde_json::Value;

/// Per author, computed straight from the recording: (tweets, summed text length, location, followers).
/// The length is that of the text the contract stores (a retweet's original's, unescaped).
fn expected_authors() -> BTreeMap<String, (i64, usize, Option<String>, Option<i64>)> {
    let page: Value = serde_json::from_str(&common::page("brexit.jsonl")).unwrap();
    let users: BTreeMap<&str, &Value> =
        page["includes"]["users"].as_array().unwrap().iter().map(|u| (u["id"].as_str().unwrap(), u)).collect();
    let mut authors = BTreeMap::new();
    for tweet in page["data"].as_array().unwrap() {
        let id = tweet["author_id"].as_str().unwrap();
        let user = users.get(id);
        let entry = authors.entry(id.to_string()).or_insert((0, 0, None, None));
        entry.0 += 1;
        entry.1 += common::contract_text(&page, tweet).0.chars().count();
        entry.2 = user.and_then(|u| u["location"].as_str()).map(str::to_string);
        entry.3 = user.and_then(|u| u["public_metrics"]["followers_count"].as_i64());
    }
    authors
}

fn warehouse(dir: &Path) -> duckdb::Connection {
    duckdb::Connection::open(dir.join(".flixops/warehouse.duckdb")).unwrap()
}

fn count(conn: &duckdb::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn demo_run_builds_users_stats_matching_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["run", "--demo", "--output", "json"]));
    assert_eq!(code, 0, "stderr: {stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("--output json prints one JSON document");
    assert_eq!(report["extract"]["tweets"], 100);
    assert_eq!(report["transform"]["load"]["files_loaded"], 1);

    let expected = expected_authors();
    let conn = warehouse(dir.path());
    let mut stmt = conn
        .prepare("SELECT user_id, tweet_count, avg_tweet_length, user_location, user_followers_count FROM marts.users_stats ORDER BY user_id")
        .unwrap();
    let rows: Vec<(String, i64, f64, Option<String>, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), expected.len(), "one row per distinct author");
    for (user_id, tweets, avg_len, location, followers) in rows {
        let (n, total_len, loc, fol) = &expected[&user_id];
        assert_eq!(tweets, *n, "tweet count of {user_id}");
        assert!((avg_len - *total_len as f64 / *n as f64).abs() < 1e-9, "average length of {user_id}: {avg_len}");
        assert_eq!(&location, loc, "location of {user_id}");
        assert_eq!(&followers, fol, "followers of {user_id}");
    }
    assert_eq!(count(&conn, "SELECT sum(tweet_count) FROM marts.users_stats"), 100);
    assert_eq!(
        count(&conn, "SELECT sum(retweet_count) FROM marts.tweets_daily"),
        67,
        "the recording holds 67 retweets"
    );
    // Every hashtag use counts once, a retweet's taken from its original (its own text is cut off).
    let page: Value = serde_json::from_str(&common::page("brexit.jsonl")).unwrap();
    let uses: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| common::contract_text(&page, t).1)
        .map(|tag| tag.to_lowercase())
        .collect();
    assert_eq!(count(&conn, "SELECT sum(tweet_count) FROM marts.hashtags_daily") as usize, uses.len());
    let brexit = uses.iter().filter(|tag| *tag == "brexit").count() as i64;
    assert_eq!(count(&conn, "SELECT sum(tweet_count) FROM marts.hashtags_daily WHERE hashtag = 'brexit'"), brexit);

    // Timestamps stay UTC through parquet, JSON and the typed staging model.
    let first = &page["data"][0];
    let created: String = conn
        .query_row(
            "SELECT strftime(tweet_created_at, '%Y-%m-%dT%H:%M:%S.000Z') FROM staging.stg_tweets WHERE tweet_id = ?",
            [first["id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(created, first["created_at"].as_str().unwrap());
    let days: std::collections::BTreeSet<String> =
        page["data"].as_array().unwrap().iter().map(|t| t["created_at"].as_str().unwrap()[..10].to_string()).collect();
    let mut stmt = conn.prepare("SELECT strftime(tweet_date, '%Y-%m-%d') FROM marts.tweets_daily ORDER BY 1").unwrap();
    let marts_days: std::collections::BTreeSet<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(marts_days, days, "days are UTC days");
}

#[test]
fn rerun_loads_each_file_once_and_never_doubles_a_count() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
        assert_eq!(code, 0, "{stderr}");
    }
    // Two runs stored the same page twice under two run ids: both files load, staging de-duplicates.
    let (code, stdout, stderr) =
        output(flixops(dir.path()).args(["transform", "-o", "json", "--config"]).arg(write_local_config(dir.path())));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["load"]["files_loaded"], 0, "nothing new to load");
    assert_eq!(report["load"]["files_skipped"], 2);
    let conn = warehouse(dir.path());
    assert_eq!(count(&conn, "SELECT count(*) FROM raw.tweets_raw"), 200);
    assert_eq!(count(&conn, "SELECT count(*) FROM ops.load_history"), 2);
    assert_eq!(count(&conn, "SELECT count(*) FROM staging.stg_tweets"), 100);
    assert_eq!(count(&conn, "SELECT sum(tweet_count) FROM marts.users_stats"), 100);
}

fn write_local_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("flixops.toml");
    std::fs::write(&path, "[project]\nname = \"demo\"\n\n[env.dev]\ntarget = \"local\"\n").unwrap();
    path
}

#[test]
fn a_new_file_is_loaded_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    write_local_config(dir.path());
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = output(flixops(dir.path()).args(["extract", "--replay"]).arg(fixture("two_tweets.jsonl")));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["transform", "--output", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["load"]["files_loaded"].as_i64(), report["load"]["rows_loaded"].as_i64()), (Some(1), Some(1)));
    assert_eq!(count(&warehouse(dir.path()), "SELECT count(*) FROM staging.stg_tweets"), 101);
}

#[test]
fn raw_rows_carry_file_name_and_row_number() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let lake_file = parquet_files(&dir.path().join(".flixops/lake")).pop().unwrap();
    let key = lake_file.strip_prefix(dir.path().join(".flixops/lake")).unwrap().to_string_lossy().into_owned();
    assert!(key.starts_with("flixops/tweets/dt="), "{key}");
    let conn = warehouse(dir.path());
    let (name, min_row, max_row): (String, i64, i64) = conn
        .query_row(
            "SELECT any_value(file_name), min(file_row_number), max(file_row_number) FROM raw.tweets_raw",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((name, min_row, max_row), (key, 0, 99));
    let first_id: String = conn
        .query_row("SELECT record->>'tweet_id' FROM raw.tweets_raw WHERE file_row_number = 0", [], |r| r.get(0))
        .unwrap();
    let page: Value = serde_json::from_str(&common::page("brexit.jsonl")).unwrap();
    assert_eq!(first_id, page["data"][0]["id"].as_str().unwrap(), "row 0 is the page's first tweet");
}

#[test]
fn an_edited_model_is_reported_changed_and_a_broken_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_local_config(dir.path());
    let models = dir.path().join("models");
    for (path, text) in flixops::models::DEFAULT_MODELS {
        std::fs::create_dir_all(models.join(path).parent().unwrap()).unwrap();
        std::fs::write(models.join(path), text).unwrap();
    }
    assert_eq!(output(flixops(dir.path()).args(["run", "--demo"])).0, 0);
    let daily = models.join("marts/tweets_daily.sql");
    let text = std::fs::read_to_string(&daily).unwrap();
    std::fs::write(&daily, text.replace("COUNT(*) AS tweet_count", "COUNT(*) AS tweet_count, 1 AS edited")).unwrap();
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["transform", "-o", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let changes: BTreeMap<String, String> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap().to_string(), m["change"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(changes["marts.tweets_daily"], "changed");
    assert_eq!(changes["marts.users_stats"], "refreshed");

    std::fs::write(models.join("marts/users_stats.sql"), "SELECT no_such_column FROM {{ref \"staging.stg_tweets\"}}")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["transform"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("model marts.users_stats failed") && stderr.contains("no model was changed"), "{stderr}");
    let conn = warehouse(dir.path());
    assert_eq!(
        count(&conn, "SELECT count(*) FROM marts.users_stats"),
        expected_authors().len() as i64,
        "the old table survives"
    );
    assert!(
        count(&conn, "SELECT count(*) FROM marts.tweets_daily WHERE edited = 1") > 0,
        "the edited model stays as last applied"
    );
}

#[test]
fn invalid_config_names_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n\n[env.dev]\ntarget = \"locl\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["transform"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("flixops.toml: invalid configuration"), "{stderr}");
    assert!(stderr.contains("line 5, column 10: env.dev.target: unknown target `locl`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_config_and_unknown_env_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["transform"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("flixops.toml: no such file; run `flixops init`"), "{stderr}");
    write_local_config(dir.path());
    let (code, _, stderr) = output(flixops(dir.path()).args(["transform", "--env", "prod"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown environment `prod`; defined: [dev]"), "{stderr}");
}

#[test]
fn unreadable_lake_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-dir"), "x").unwrap();
    std::fs::write(
        dir.path().join("flixops.toml"),
        "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\nlake_dir = \"not-a-dir\"\n",
    )
    .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["transform"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot read the lake at") && stderr.contains("not-a-dir"), "{stderr}");
}

#[test]
fn run_refuses_a_cloud_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flixops.toml"),
        "[project]\nname = \"demo\"\n[env.prod]\ntarget = \"aws-snowflake\"\n",
    )
    .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("uses target aws-snowflake") && stderr.contains("flixops deploy"), "{stderr}");
}

#[test]
fn help_documents_exit_codes_and_completions_print() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = output(flixops(dir.path()).arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("3  cannot connect"), "{stdout}");
    let (code, stdout, _) = output(flixops(dir.path()).args(["completions", "bash"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("_flixops()"), "{stdout}");
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--bogus"]));
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn doctor_on_the_local_target_warns_before_the_first_run_and_is_green_after() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = common::output(common::flixops(dir.path()).arg("doctor"));
    assert_eq!(code, 0, "warnings alone exit 0: {stderr}");
    assert!(stderr.contains("[!] warehouse") && stderr.contains("fix: flixops run"), "{stderr}");
    let (code, _, _) = common::output(common::flixops(dir.path()).args(["doctor", "--strict"]));
    assert_eq!(code, 1, "--strict fails on warnings");

    let (code, _, stderr) = common::output(common::flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = common::output(common::flixops(dir.path()).args(["doctor", "--output", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let status =
        |name: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["status"].clone();
    assert_eq!(status("raw freshness"), "ok", "{report:#}");
    assert_eq!(status("load"), "ok", "{report:#}");
    assert_eq!(status("lake"), "ok", "{report:#}");
    assert_eq!(status("models"), "ok", "{report:#}");
    // A demo project is healthy: no API run yet is not a missing extraction, so --strict passes,
    // and the JSON counts the verdicts as the human summary does.
    assert_eq!(status("checkpoint"), "ok", "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(report["totals"]["ok"].as_u64(), Some(checks.len() as u64), "{report:#}");
    assert_eq!((report["totals"]["warn"].as_u64(), report["totals"]["fail"].as_u64()), (Some(0), Some(0)));
    let (code, _, stderr) = common::output(common::flixops(dir.path()).args(["doctor", "--strict"]));
    assert_eq!(code, 0, "--strict passes on a demo project: {stderr}");
    assert!(stderr.contains(&format!("{} ok, 0 warning(s), 0 failure(s)", checks.len())), "{stderr}");

    // The default models copied into the project, one of them edited and not rebuilt.
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snowflake/models");
    for schema in ["staging", "marts"] {
        std::fs::create_dir_all(dir.path().join("models").join(schema)).unwrap();
        for file in std::fs::read_dir(source.join(schema)).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, dir.path().join("models").join(schema).join(file.file_name().unwrap())).unwrap();
        }
    }
    let (code, _, stderr) = common::output(common::flixops(dir.path()).arg("doctor"));
    assert!(code == 0 && stderr.contains("[✓] models"), "the same models as built: {stderr}");
    let edited = dir.path().join("models/marts/users_stats.sql");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, format!("{text}\n-- edited\n")).unwrap();
    let (code, _, stderr) = common::output(common::flixops(dir.path()).arg("doctor"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("[!] models")
            && stderr.contains("marts.users_stats")
            && stderr.contains("fix: flixops transform"),
        "{stderr}"
    );
}

/// Since 2026-05-04 keyword searches return no retweets (docs.x.com changelog): the retweet
/// figures must read as zero, not as missing, on such data.
#[test]
fn retweet_figures_read_zero_when_the_search_returns_no_retweets() {
    let dir = tempfile::tempdir().unwrap();
    let mut page: Value = serde_json::from_str(&common::page("brexit.jsonl")).unwrap();
    let originals: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["referenced_tweets"].as_array().is_some_and(|r| r.iter().any(|r| r["type"] == "retweeted")))
        .cloned()
        .collect();
    let kept = originals.len() as i64;
    assert!(kept > 0 && kept < 100, "the recording mixes both: {kept}");
    page["data"] = Value::Array(originals);
    let recording = dir.path().join("no-retweets.jsonl");
    std::fs::write(&recording, serde_json::to_string(&page).unwrap() + "\n").unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"nort\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).arg("run").arg("--replay").arg(&recording));
    assert_eq!(code, 0, "{stderr}");
    let conn = warehouse(dir.path());
    assert_eq!(count(&conn, "SELECT sum(tweet_count) FROM marts.tweets_daily"), kept);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM marts.tweets_daily WHERE retweet_count IS NULL OR retweet_share IS NULL"),
        0
    );
    assert_eq!(count(&conn, "SELECT sum(retweet_count) FROM marts.tweets_daily"), 0);
    let share: f64 = conn.query_row("SELECT max(retweet_share) FROM marts.tweets_daily", [], |r| r.get(0)).unwrap();
    assert_eq!(share, 0.0);
}

/// `doctor --canary` locally: one marked file into the lake, loaded as `run` loads, its latency
/// reported; the staging model leaves its row out, so no mart counts it.
#[test]
fn the_local_canary_reaches_the_raw_table_and_no_model_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["doctor", "--canary", "--output", "json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let canary = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "canary").unwrap();
    assert_eq!(canary["status"], "ok", "{canary}");
    assert!(report["canary"]["latency_ms"].is_u64(), "{report:#}");
    let file = report["canary"]["file"].as_str().unwrap();
    assert!(dir.path().join(".flixops/lake").join(file).exists(), "{file}");
    let conn = warehouse(dir.path());
    assert_eq!(count(&conn, &format!("SELECT count(*) FROM raw.tweets_raw WHERE file_name = '{file}'")), 1);
    drop(conn);

    let (code, _, stderr) = output(flixops(dir.path()).arg("transform"));
    assert_eq!(code, 0, "{stderr}");
    let conn = warehouse(dir.path());
    assert_eq!(count(&conn, "SELECT count(*) FROM staging.stg_tweets"), 100, "the demo's tweets, not the canary");
    assert_eq!(count(&conn, "SELECT count(*) FROM marts.users_stats WHERE user_id = 'flixops-canary'"), 0);
}

/// `flixops logs` locally: the run history, what CloudWatch is to the function.
#[test]
fn logs_on_the_local_target_list_the_runs_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) =
        output(flixops(dir.path()).args(["run", "--replay", fixture("brexit.jsonl").to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, _) = output(flixops(dir.path()).args(["extract", "--replay", "/nonexistent/pages.jsonl"]));
    assert_ne!(code, 0);

    let (code, stdout, stderr) = output(flixops(dir.path()).arg("logs"));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let models = flixops::models::DEFAULT_MODELS.len();
    let run = format!(
        " run       ok      extracted 100 tweets in 1 page(s); loaded 1 file(s), 100 rows; built {models} model(s)"
    );
    assert!(lines[0].contains(&run), "{stdout}");
    assert!(lines[1].contains(" extract   error   ") && lines[1].contains("/nonexistent/pages.jsonl"), "{stdout}");
    let (_, stdout, _) = output(flixops(dir.path()).args(["logs", "--errors"]));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (_, stdout, _) = output(flixops(dir.path()).args(["logs", "--output", "json"]));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["events"][0]["command"], "run");
    assert_eq!(json["events"][1]["status"], "error");
}

/// X's usage endpoint never answers: the spend check says so after the check timeout, and every
/// other check still reports.
#[test]
fn a_hanging_x_api_costs_one_checks_detail_and_no_other_check() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let _held = std::thread::spawn(move || silent.incoming().flatten().collect::<Vec<_>>());
    std::fs::write(
        dir.path().join("flixops.toml"),
        format!("[project]\nname = \"demo\"\n[extract]\napi_base_url = \"{url}\"\n[env.dev]\ntarget = \"local\"\n"),
    )
    .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(
        flixops(dir.path())
            .args(["doctor", "--output", "json"])
            .env("X_BEARER_TOKEN", "token")
            .env("FLIXOPS_CHECK_TIMEOUT_SECS", "2"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let check = |name: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert!(check("x spend")["detail"].as_str().unwrap().contains("X's own count unavailable (no answer within 2 s)"));
    for name in ["lake", "checkpoint", "rejects", "backfill", "warehouse", "raw freshness", "load", "models"] {
        assert_ne!(check(name)["detail"], "", "{name} reported: {report:#}");
    }
    assert_eq!(check("raw freshness")["status"], "ok");
}

/// `[env.NAME.freshness]` sets when old data warns and fails, as dbt's `freshness` block does; a
/// bad age names its line and field.
#[test]
fn freshness_thresholds_are_settings_per_environment() {
    let dir = tempfile::tempdir().unwrap();
    let write = |freshness: &str| {
        let toml = format!("[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n{freshness}");
        std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
    };
    write("");
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    warehouse(dir.path())
        .execute_batch("UPDATE raw.tweets_raw SET loaded_at = CAST(now() AS TIMESTAMP) - INTERVAL 3 HOUR")
        .unwrap();
    let freshness = |dir: &Path| {
        let (_, stdout, stderr) = output(flixops(dir).args(["doctor", "-o", "json"]));
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "raw freshness").cloned();
        check.unwrap()["status"].as_str().unwrap().to_string()
    };
    assert_eq!(freshness(dir.path()), "ok", "3 h is fresh under the default 4 h / 24 h");
    write("[env.dev.freshness]\nwarn_after = \"2 hours\"\nerror_after = \"1 day\"\n");
    assert_eq!(freshness(dir.path()), "warn");
    write("[env.dev.freshness]\nwarn_after = \"30 minutes\"\nerror_after = \"2 hours\"\n");
    assert_eq!(freshness(dir.path()), "fail");

    write("[env.dev.freshness]\nwarn_after = \"4 fortnights\"\n");
    let (code, _, stderr) = output(flixops(dir.path()).arg("doctor"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 6") && stderr.contains("env.dev.freshness.warn_after"), "{stderr}");
    write("[env.dev.freshness]\nwarn_after = \"2 days\"\nerror_after = \"1 day\"\n");
    let (code, _, stderr) = output(flixops(dir.path()).arg("doctor"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("warn_after must be shorter than error_after"), "{stderr}");
}
