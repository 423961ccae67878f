//! The extractor as users run it: the binary killed between pages, exit codes, `--to`, and the
//! same binary serving AWS Lambda invocations against a fake runtime API and moto's S3.

use crate::common;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::x_api::Timeline;
use crate::common::{Running, fixture, flixops, output, page, parquet_files, read_batches, strings};
use serde_json::Value;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH: &str = "/2/tweets/search/recent";

fn write_config(dir: &Path, base: &str) {
    let text = format!(
        "[project]\nname = \"t\"\n[extract]\napi_base_url = \"{base}\"\nbearer_token = {{ env = \"FLIXOPS_TEST_TOKEN\" }}\n\
         [extract.retry]\nmax_attempts = 2\nbase_delay_ms = 10\n[env.dev]\ntarget = \"local\"\nprefix = \"p\"\n"
    );
    std::fs::write(dir.join("flixops.toml"), text).unwrap();
}

fn brexit_next_token() -> String {
    let v: Value = serde_json::from_str(&page("brexit.jsonl")).unwrap();
    v["meta"]["next_token"].as_str().unwrap().to_string()
}

async fn mount_pages(server: &MockServer, second_page_delay: Duration) {
    Mock::given(path(SEARCH))
        .and(query_param_is_missing("next_token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("brexit.jsonl")))
        .mount(server)
        .await;
    Mock::given(path(SEARCH))
        .and(query_param("next_token", brexit_next_token()))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")).set_delay(second_page_delay))
        .mount(server)
        .await;
}

fn ids_in(dir: &Path) -> BTreeSet<String> {
    parquet_files(dir)
        .into_iter()
        .flat_map(|f| strings(&read_batches(std::fs::read(f).unwrap()), "tweet_id"))
        .flatten()
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A project whose X API is `base`, ten tweets a page.
fn write_paged_config(dir: &Path, base: &str) {
    write_config(dir, base);
    let text = std::fs::read_to_string(dir.join("flixops.toml")).unwrap();
    std::fs::write(dir.join("flixops.toml"), text.replace("[extract]\n", "[extract]\nmax_results = 10\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_between_pages_loses_nothing_on_the_next_run() {
    let timeline = Timeline::of(1000..1025);
    timeline.slow_after(1, Duration::from_secs(120));
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    write_paged_config(dir.path(), &server.uri());
    let lake = dir.path().join(".flixops/lake");

    let child = flixops(dir.path())
        .arg("extract")
        .env("FLIXOPS_TEST_TOKEN", "test-token")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    wait_for("the first page's file", || parquet_files(&lake).len() == 1);
    wait_for("the first page's progress", || std::fs::read(lake.join("p/_state/extract.json")).is_ok());
    running.0.kill().unwrap(); // SIGKILL while the second page is in flight
    running.0.wait().unwrap();
    let state: Value = serde_json::from_slice(&std::fs::read(lake.join("p/_state/extract.json")).unwrap()).unwrap();
    assert_eq!(state["window"]["until_id"], "1015", "the first page's progress was saved before the kill");
    assert_eq!(state["since_id"], Value::Null, "since_id never moves past tweets that are not stored");

    timeline.fast();
    let (code, _, stderr) = output(flixops(dir.path()).arg("extract").env("FLIXOPS_TEST_TOKEN", "test-token"));
    assert_eq!(code, 0, "the dead run's lease does not block the rerun: {stderr}");
    assert_eq!(ids_in(&lake), (1000..1025).map(|i| i.to_string()).collect(), "every tweet is in the lake");
    let state: Value = serde_json::from_slice(&std::fs::read(lake.join("p/_state/extract.json")).unwrap()).unwrap();
    assert_eq!(state["since_id"], "1024");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_extract_on_the_same_environment_refuses_and_names_the_holder() {
    let timeline = Timeline::of(1000..1025);
    timeline.slow_after(0, Duration::from_secs(2));
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    write_paged_config(dir.path(), &server.uri());
    let lease = dir.path().join(".flixops/lake/p/_state/lease.json");
    let child = flixops(dir.path())
        .arg("extract")
        .env("FLIXOPS_TEST_TOKEN", "test-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut running = Running(child);
    wait_for("the first run's lease", || lease.exists());

    let (code, _, stderr) = output(flixops(dir.path()).arg("extract").env("FLIXOPS_TEST_TOKEN", "test-token"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another extraction is running on this environment"), "{stderr}");
    assert!(
        stderr.contains(&format!("(pid {pid})")) && stderr.contains(" until 20"),
        "names holder and expiry: {stderr}"
    );
    assert!(running.0.wait().unwrap().success(), "the first run goes on undisturbed");
    assert_eq!(timeline.served().len(), 25, "the refused run fetched nothing");
}

#[cfg_attr(not(feature = "local"), ignore = "doctor reads the local warehouse (DuckDB)")]
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_run_says_so_and_doctor_warns_about_rejected_tweets() {
    let timeline = Timeline::of(1000..1025);
    let mut bad = common::x_api::tweet(1020);
    bad.as_object_mut().unwrap().remove("author_id");
    timeline.add([bad]);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    write_paged_config(dir.path(), &server.uri());
    let extract = |args: &[&str]| output(flixops(dir.path()).arg("extract").args(args).env("FLIXOPS_TEST_TOKEN", "t"));

    let (code, _, stderr) = extract(&["--max-pages", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("partial: resumes next run (max_pages = 1 reached)"), "{stderr}");
    assert!(stderr.contains("rejected 1 tweet(s) the data contract cannot hold"), "{stderr}");
    let (code, stdout, stderr) = extract(&["-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["status"].as_str(), report["tweets"].as_u64()), (Some("complete"), Some(15)), "{report}");

    // docs.x.com/x-api/usage/tweets: X's own count, set beside ours.
    let usage = r#"{"data":{"cap_reset_day":10,"project_cap":"2000000","project_id":"1369785403853424","project_usage":"43435"}}"#;
    Mock::given(path("/2/usage/tweets"))
        .and(wiremock::matchers::header("authorization", "Bearer t"))
        .respond_with(ResponseTemplate::new(200).set_body_string(usage))
        .mount(&server)
        .await;
    let (code, stdout, stderr) =
        output(flixops(dir.path()).args(["doctor", "-o", "json"]).env("FLIXOPS_TEST_TOKEN", "t"));
    assert_eq!(code, 0, "warnings alone exit 0: {stderr}");
    let doctor: Value = serde_json::from_str(&stdout).unwrap();
    let check = |name: &str| doctor["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(check("rejects")["status"], "warn", "{doctor}");
    assert!(check("rejects")["detail"].as_str().unwrap().contains("/_rejects/dt="), "{doctor}");
    assert_eq!(check("x spend")["status"], "ok");
    let spend = check("x spend")["detail"].as_str().unwrap().to_string();
    assert!(spend.starts_with("25 posts read in ") && spend.contains(" at $0.005 per post"), "{spend}");
    assert!(spend.contains("X counts 43435 for the whole project this billing cycle"), "{spend}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_follow_the_table_and_the_token_never_shows() {
    let server = MockServer::start().await;
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("search_all_401.json")).unwrap()).unwrap();
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(401).set_body_json(&recorded["body"]))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &server.uri());
    let secret = "AAAAAAAAAAAAAAAAAAAAAsecret-token-value";
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["extract", "-vv"]).env("FLIXOPS_TEST_TOKEN", secret));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("401 Unauthorized"), "{stderr}");
    assert!(!stderr.contains(secret) && !stdout.contains(secret), "the token leaked: {stderr}");

    let (code, _, stderr) = output(flixops(dir.path()).arg("extract").env_remove("FLIXOPS_TEST_TOKEN"));
    assert_eq!(code, 2, "a missing input: {stderr}");
    assert!(stderr.contains("the X bearer token is not set: export FLIXOPS_TEST_TOKEN="), "{stderr}");

    write_config(dir.path(), "http://127.0.0.1:9");
    let (code, _, stderr) = output(flixops(dir.path()).arg("extract").env("FLIXOPS_TEST_TOKEN", "t"));
    assert_eq!(code, 3, "nothing listens on the discard port: {stderr}");
    assert!(stderr.contains("cannot reach the X API"), "{stderr}");
}

#[test]
fn extract_to_a_directory_needs_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = output(
        flixops(dir.path())
            .args(["extract", "-o", "json", "--replay"])
            .arg(fixture("brexit.jsonl"))
            .arg("--to")
            .arg(&out),
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["tweets"], 100);
    assert_eq!(parquet_files(&out).len(), 1);
    let (code, _, stderr) =
        output(flixops(dir.path()).args(["extract", "--replay", "/nonexistent/pages.jsonl", "--to"]).arg(&out));
    assert_eq!(code, 2, "a missing input: {stderr}");
    assert!(stderr.contains("--replay /nonexistent/pages.jsonl: No such file"), "{stderr}");
}

/// The Lambda runtime API with one invocation (`req-1`) to hand out.
async fn runtime_api() -> MockServer {
    let runtime = MockServer::start().await;
    let deadline = (chrono::Utc::now().timestamp_millis() + 120_000).to_string();
    let invocation = ResponseTemplate::new(200)
        .insert_header("lambda-runtime-aws-request-id", "req-1")
        .insert_header("lambda-runtime-deadline-ms", deadline.as_str())
        .insert_header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:flixops")
        .set_body_string("{}");
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(invocation)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&runtime)
        .await;
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(300)))
        .with_priority(2)
        .mount(&runtime)
        .await;
    for outcome in ["response", "error"] {
        Mock::given(method("POST"))
            .and(path(format!("/2018-06-01/runtime/invocation/req-1/{outcome}")))
            .respond_with(ResponseTemplate::new(202))
            .mount(&runtime)
            .await;
    }
    runtime
}

/// The binary as the Lambda service starts it, with the settings `deploy` writes.
fn lambda_process(dir: &Path, runtime: &MockServer, bucket: &str, x_api: &MockServer) -> Command {
    let mut cmd = flixops(dir);
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "flixops")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "s")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "g")
        .env("FLIXOPS_BUCKET", bucket)
        .env("FLIXOPS_PREFIX", "p")
        .env("FLIXOPS_X_API_BASE_URL", x_api.uri())
        .env("FLIXOPS_X_TOKEN_ENV", "FLIXOPS_TEST_TOKEN")
        .env("FLIXOPS_TEST_TOKEN", "test-token")
        .envs(common::moto_env());
    cmd
}

/// Waits for the function's answer to `req-1`: (outcome, body).
async fn invocation_answer(runtime: &MockServer) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no answer posted to the runtime API");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let requests = runtime.received_requests().await.unwrap();
        if let Some(r) = requests.iter().find(|r| r.url.path().starts_with("/2018-06-01/runtime/invocation/req-1/")) {
            let outcome = r.url.path().rsplit('/').next().unwrap().to_string();
            return (outcome, String::from_utf8_lossy(&r.body).into_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_lambda_invocations_into_s3() {
    let x_api = MockServer::start().await;
    mount_pages(&x_api, Duration::ZERO).await;
    let runtime = runtime_api().await;
    let (s3, bucket) = common::moto_bucket("lambda").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lambda_process(dir.path(), &runtime, &bucket, &x_api);
    let _process = Running(cmd.stderr(Stdio::null()).spawn().unwrap());

    let (outcome, body) = invocation_answer(&runtime).await;
    assert_eq!(outcome, "response", "the invocation failed: {body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((report["pages"].as_u64(), report["tweets"].as_u64()), (Some(2), Some(101)));
    let keys = common::s3_keys(&s3, &bucket, "p/").await;
    assert_eq!(keys.len(), 4, "two pages, the checkpoint and the released lease: {keys:?}");
    let lease: Value = serde_json::from_slice(
        &s3.get_object()
            .bucket(&bucket)
            .key("p/_state/lease.json")
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(lease["holder"], "Lambda flixops", "{lease}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_invocation_leaves_an_error_line_doctor_finds_in_the_log() {
    let x_api = MockServer::start().await;
    let unauthorized = std::fs::read_to_string(common::fixture("search_all_401.json")).unwrap();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string(unauthorized))
        .mount(&x_api)
        .await;
    let runtime = runtime_api().await;
    let (_, bucket) = common::moto_bucket("lambda-fails").await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("function.log");
    let mut cmd = lambda_process(dir.path(), &runtime, &bucket, &x_api);
    let _process = Running(cmd.stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap());

    let (outcome, body) = invocation_answer(&runtime).await;
    assert_eq!(outcome, "error", "{body}");
    assert!(body.contains("401"), "the runtime is told why: {body}");
    // CloudWatch gets what the function writes; doctor's "function errors" check selects these lines.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(line) = text.lines().find(|l| flixops::doctor::is_error_line(l)) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no error line in the function's log:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(line.contains("extraction failed") && line.contains("401"), "{line}");
    assert!(!line.contains("test-token"), "the token never prints: {line}");
}

#[test]
fn lambda_mode_outside_a_lambda_environment_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) =
        output(flixops(dir.path()).env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9").env_remove("AWS_LAMBDA_FUNCTION_NAME"));
    assert_eq!(code, 1);
    assert!(stderr.contains("AWS_LAMBDA_FUNCTION_NAME is not"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_token_can_come_from_secrets_manager() {
    let x_api = MockServer::start().await;
    Mock::given(path(SEARCH))
        .and(wiremock::matchers::header("authorization", "Bearer token-from-secrets-manager"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")))
        .mount(&x_api)
        .await;
    let secrets = aws_sdk_secretsmanager::Client::new(&common::moto_sdk());
    let name = format!("x-token-{:08x}", fastrand::u32(..));
    let created = secrets.create_secret().name(&name).secret_string("token-from-secrets-manager").send().await.unwrap();
    let arn = created.arn().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[project]\nname = \"t\"\n[extract]\napi_base_url = \"{}\"\nbearer_token = {{ secret_arn = \"{arn}\" }}\n[env.dev]\ntarget = \"local\"\n",
        x_api.uri()
    );
    std::fs::write(dir.path().join("flixops.toml"), text).unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).arg("extract").envs(common::moto_env()));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("token-from-secrets-manager"), "{stderr}");
    assert_eq!(parquet_files(&dir.path().join(".flixops/lake")).len(), 1);
}

/// Backfills (issue 19): 4,000 tweets from 2026-10-01, one a minute (8 full-archive pages of 500).
mod backfill {
    use super::*;
    use common::x_archive::{Archive, at};

    const RANGE: [&str; 4] = ["--since", "2026-10-01", "--until", "2026-10-05"];

    fn archive(n: u64) -> Archive {
        Archive::spread(1_000_000, n, at("2026-10-01T00:00:00Z"), Duration::from_secs(60))
    }

    fn every_id(archive: &Archive) -> BTreeSet<String> {
        archive.ids_between(at("2026-10-01T00:00:00Z"), at("2026-10-05T00:00:00Z")).into_iter().collect()
    }

    fn backfill(dir: &Path, args: &[&str]) -> (i32, String, String) {
        output(flixops(dir).arg("backfill").args(args).env("FLIXOPS_TEST_TOKEN", "t"))
    }

    fn state(lake: &Path) -> Value {
        let key = lake.join("p/_state/backfill-20261001T000000Z-20261005T000000Z.json");
        serde_json::from_slice(&std::fs::read(key).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_quote_is_the_counts_and_a_dry_run_or_no_terminal_buys_nothing() {
        let archive = archive(4000);
        let server = archive.serve().await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());

        let (code, stdout, stderr) = backfill(dir.path(), &[&RANGE[..], &["--dry-run", "-o", "json"]].concat());
        assert_eq!(code, 0, "{stderr}");
        let quote: Value = serde_json::from_str(&stdout).unwrap();
        let days: Vec<(String, u64)> = quote["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["start"].as_str().unwrap()[..10].to_string(), d["tweet_count"].as_u64().unwrap()))
            .collect();
        let by_day = |day: &str| {
            let from = at(&format!("{day}T00:00:00Z"));
            archive.ids_between(from, from + chrono::Duration::days(1)).len() as u64
        };
        let expected: Vec<(String, u64)> = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
            .iter()
            .map(|d| (d.to_string(), by_day(d)))
            .collect();
        assert_eq!(days, expected, "one bucket a day, as the counts endpoint answered");
        assert_eq!(quote["total_posts"], 4000);
        assert!(
            (quote["total_usd"].as_f64().unwrap() - 20.0).abs() < 1e-9,
            "4,000 posts at the default $0.005: {quote}"
        );
        assert_eq!(archive.searches(), 0, "--dry-run makes no search call");
        assert!(!dir.path().join(".flixops/lake/p/_state").exists(), "--dry-run writes nothing");

        let (code, _, stderr) = backfill(dir.path(), &RANGE);
        assert_eq!(code, 2, "without a terminal --yes is required: {stderr}");
        assert!(stderr.contains("total: 4000 posts ≈ $20.00 at $0.005 per post"), "the quote comes first: {stderr}");
        assert!(stderr.contains("pass --yes"), "{stderr}");
        assert_eq!(archive.searches(), 0, "nothing was bought");

        let (code, _, stderr) = backfill(dir.path(), &["--since", "last week", "--dry-run"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("--since `last week`: expected a date"), "{stderr}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_backfill_killed_after_page_three_of_eight_resumes_without_buying_twice() {
        let archive = archive(4000);
        archive.slow_after(3, Duration::from_secs(120));
        let server = archive.serve().await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());
        let lake = dir.path().join(".flixops/lake");

        let child = flixops(dir.path())
            .arg("backfill")
            .args(RANGE)
            .arg("--yes")
            .env("FLIXOPS_TEST_TOKEN", "t")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut running = Running(child);
        let key = lake.join("p/_state/backfill-20261001T000000Z-20261005T000000Z.json");
        wait_for("page 3's progress", || {
            std::fs::read(&key)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|s| s["pages"] == 3)
        });
        wait_for("page 4 in flight", || archive.searches() == 4);
        running.0.kill().unwrap(); // SIGKILL while page 4 is in flight
        running.0.wait().unwrap();
        let saved = state(&lake);
        assert_eq!((saved["progress"].as_str(), saved["posts"].as_u64()), (Some("open"), Some(1500)), "{saved}");

        let (code, stdout, _) =
            output(flixops(dir.path()).args(["doctor", "-o", "json"]).env("FLIXOPS_TEST_TOKEN", "t"));
        let doctor: Value = serde_json::from_str(&stdout).unwrap_or_default();
        let check = doctor["checks"].as_array().unwrap().iter().find(|c| c["name"] == "backfill").unwrap().clone();
        let detail = check["detail"].as_str().unwrap();
        assert!(
            detail.contains(
                "open backfill 2026-10-01T00:00:00Z .. 2026-10-05T00:00:00Z: 1500 of about 4000 posts read (38%)"
            ),
            "{code}: {detail}"
        );
        assert!(
            check["fix"].as_str().unwrap().contains("flixops backfill --since 2026-10-01 --until 2026-10-05"),
            "{check}"
        );

        archive.fast();
        let (code, stdout, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes", "-o", "json"]].concat());
        assert_eq!(code, 0, "the dead run's lease does not block the rerun: {stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["quote"]["already_read"], 1500, "{report}");
        assert_eq!((report["progress"].as_str(), report["posts_total"].as_u64()), (Some("complete"), Some(4000)));
        assert_eq!(ids_in(&lake), every_id(&archive), "every tweet of the range is in the lake");
        let served = archive.served();
        let distinct: BTreeSet<&String> = served.iter().collect();
        assert_eq!(distinct.len(), 4000);
        assert_eq!(served.len() - distinct.len(), 500, "only the page in flight at the kill was bought twice");
        assert!(!lake.join("p/_state/extract.json").exists(), "the recent-search checkpoint is never touched");

        let searches = archive.searches();
        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes"]].concat());
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("this range was backfilled completely already (4000 posts): nothing bought"),
            "{stderr}"
        );
        assert_eq!(archive.searches(), searches, "a complete range is not bought again");

        let (_, stdout, _) = output(flixops(dir.path()).args(["doctor", "-o", "json"]).env("FLIXOPS_TEST_TOKEN", "t"));
        let doctor: Value = serde_json::from_str(&stdout).unwrap();
        let check = doctor["checks"].as_array().unwrap().iter().find(|c| c["name"] == "backfill").unwrap().clone();
        assert_eq!(check["detail"], "no backfill open", "{check}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_cap_leaves_a_resumable_partial_and_another_range_is_refused_until_abandoned() {
        let archive = archive(4000);
        let server = archive.serve().await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());
        let lake = dir.path().join(".flixops/lake");

        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes", "--max-posts", "1000"]].concat());
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("partial: resumes next run (--max-posts 1000 reached: 1000 posts read)"), "{stderr}");
        assert!(stderr.contains("backfill open: 1000 of about 4000 posts read"), "{stderr}");
        assert_eq!((state(&lake)["progress"].as_str(), archive.served().len()), (Some("open"), 1000));

        let searches = archive.searches();
        let (code, _, stderr) = backfill(dir.path(), &["--since", "2026-09-01", "--until", "2026-09-10", "--yes"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("a backfill of another range is open: 2026-10-01T00:00:00Z .. 2026-10-05T00:00:00Z for `flixbus` (1000 posts read so far"), "{stderr}");
        assert!(
            stderr
                .contains("`flixops backfill --since 2026-10-01 --until 2026-10-05`, or start this one with --abandon"),
            "{stderr}"
        );
        assert_eq!(archive.searches(), searches, "the refused range bought nothing");

        let (code, _, stderr) =
            backfill(dir.path(), &["--since", "2026-10-04", "--until", "2026-10-05", "--yes", "--abandon"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("abandoned the open backfill"), "{stderr}");
        assert_eq!(state(&lake)["progress"], "abandoned");
        assert!(stderr.contains("backfill complete"), "{stderr}");
    }

    #[cfg(feature = "local")]
    #[tokio::test(flavor = "multi_thread")]
    async fn the_local_models_count_backfilled_tweets_once() {
        let archive = archive(1200);
        let server = archive.serve().await;
        // Recent search serves the newest 50 of the same tweets: they reach the lake twice.
        let recent = Timeline::default();
        let newest: Vec<String> = every_id(&archive).into_iter().rev().take(50).collect();
        recent.add(newest.iter().map(|id| common::x_api::tweet(id.parse().unwrap())));
        Mock::given(path(SEARCH)).respond_with(recent.clone()).mount(&server).await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());

        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes"]].concat());
        assert_eq!(code, 0, "{stderr}");
        let (code, _, stderr) = output(flixops(dir.path()).arg("run").env("FLIXOPS_TEST_TOKEN", "t"));
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(recent.served().len(), 50);
        let conn = duckdb::Connection::open(dir.path().join(".flixops/warehouse.duckdb")).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM raw.tweets_raw"), 1250, "the lake holds the 50 twice");
        assert_eq!(count("SELECT count(*) FROM staging.stg_tweets"), 1200);
        assert_eq!(count("SELECT sum(tweet_count) FROM marts.tweets_daily"), 1200);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_monthly_cap_counts_recent_search_and_backfills_together() {
        let archive = archive(4000);
        let server = archive.serve().await;
        let recent = Timeline::of(5_000_000..5_000_100);
        Mock::given(path(SEARCH)).respond_with(recent.clone()).mount(&server).await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());
        let toml = std::fs::read_to_string(dir.path().join("flixops.toml")).unwrap();
        let toml = toml.replace("[extract]\n", "[extract]\nmax_posts_per_month = 1200\n");
        std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
        let (code, _, stderr) = output(flixops(dir.path()).arg("extract").env("FLIXOPS_TEST_TOKEN", "t"));
        assert_eq!(code, 0, "{stderr}");

        let (code, stdout, stderr) = backfill(dir.path(), &[&RANGE[..], &["--dry-run", "-o", "json"]].concat());
        assert_eq!(code, 0, "{stderr}");
        let quote: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!((quote["month_posts"].as_u64(), quote["month_left"].as_u64()), (Some(100), Some(1100)), "{quote}");

        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes"]].concat());
        assert_eq!(code, 0, "a cap is a resumable partial, not a failure: {stderr}");
        assert!(
            stderr
                .contains("partial: resumes next run (max_posts_per_month = 1200 reached: 1100 posts read this month)"),
            "{stderr}"
        );
        assert_eq!(archive.served().len(), 1000, "two pages of 500 fit under the 1,100 the cap left");
        let lake = dir.path().join(".flixops/lake");
        assert_eq!(
            (state(&lake)["progress"].as_str(), state(&lake)["until_id"].as_str()),
            (Some("open"), Some("1003000"))
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_the_cloud_target_it_writes_to_the_bucket_with_extracts_credentials() {
        let archive = archive(4000);
        let server = archive.serve().await;
        let (s3, bucket) = common::moto_bucket("backfill").await;
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[project]\nname = \"t\"\n[extract]\napi_base_url = \"{}\"\nbearer_token = {{ env = \"FLIXOPS_TEST_TOKEN\" }}\n\
             [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\nbucket = \"{bucket}\"\n",
            server.uri()
        );
        std::fs::write(dir.path().join("flixops.toml"), text).unwrap();
        let run = |args: &[&str]| {
            let mut cmd = flixops(dir.path());
            cmd.arg("backfill").args(RANGE).args(args).envs(common::moto_env()).env("FLIXOPS_TEST_TOKEN", "t");
            output(&mut cmd)
        };
        let (code, _, stderr) = run(&["--yes", "--max-posts", "1000"]);
        assert_eq!(code, 0, "{stderr}");
        let (code, _, stderr) = run(&["--yes"]);
        assert_eq!(code, 0, "{stderr}");
        let keys = common::s3_keys(&s3, &bucket, "flixops/").await;
        assert!(
            keys.contains(&"flixops/_state/backfill-20261001T000000Z-20261005T000000Z.json".to_string()),
            "{keys:?}"
        );
        let files: Vec<&String> = keys.iter().filter(|k| k.starts_with("flixops/tweets/dt=")).collect();
        assert_eq!(files.len(), 8, "{keys:?}");
        let mut ids = BTreeSet::new();
        for key in files {
            let body = s3.get_object().bucket(&bucket).key(key).send().await.unwrap().body.collect().await.unwrap();
            ids.extend(strings(&read_batches(body.into_bytes().to_vec()), "tweet_id").into_iter().flatten());
        }
        assert_eq!(ids, every_id(&archive));
        assert_eq!(archive.served().len(), 4000, "the second run resumed below the first one's pages");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_rate_limit_past_the_time_budget_leaves_a_resumable_partial() {
        let archive = archive(4000);
        let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
        archive.rate_limit_after(2, reset);
        let server = archive.serve().await;
        let dir = tempfile::tempdir().unwrap();
        write_paged_config(dir.path(), &server.uri());
        let lake = dir.path().join(".flixops/lake");

        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes"]].concat());
        assert_eq!(code, 0, "a rate limit is a resumable partial: {stderr}");
        assert!(stderr.contains("partial: resumes next run (rate limited by the X API until "), "{stderr}");
        assert_eq!((state(&lake)["progress"].as_str(), state(&lake)["posts"].as_u64()), (Some("open"), Some(1000)));

        archive.unlimited();
        let (code, _, stderr) = backfill(dir.path(), &[&RANGE[..], &["--yes"]].concat());
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(state(&lake)["progress"], "complete");
        assert_eq!(archive.served().len(), 4000, "the resumed run bought only the rest");
    }
}
