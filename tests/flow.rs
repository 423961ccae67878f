//! The data really flows: `deploy`, then `extract` against the X API mock writes parquet to S3
//! (moto), S3 notifies Snowflake's queue (SQS in moto), the pipe loads each notified file into the
//! raw table (fakesnow, tests/peers/fakesnow_server.py) and the models refresh from it; `doctor
//! --canary` follows one more file through. Then one link at a time is broken, and exactly the
//! checks that see that link turn red, each with its fix; `deploy` repairs what it owns. A check
//! that hangs reports its own timeout while the others report. `flixops logs` prints the
//! function's CloudWatch events as `sam logs` does.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{self, cloud_env, flixops, output, snowflake_client};
use serde_json::Value;

/// A cloud project whose extractor reads the X API mock at `x`.
struct Project {
    dir: tempfile::TempDir,
    name: String,
}

impl Project {
    fn new(x: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("f{:08x}", fastrand::u32(..));
        let toml = format!(
            "[project]\nname = \"{name}\"\n\n[extract]\nquery = \"#brexit\"\napi_base_url = \"{x}\"\n\n\
             [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\nsnowflake_warehouse = \"TRANSFORM_WH\"\n"
        );
        std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
        std::fs::write(dir.path().join("bootstrap"), common::elf::bootstrap("")).unwrap();
        Self { dir, name }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn database(&self) -> String {
        self.name.to_uppercase()
    }

    fn bucket(&self) -> String {
        format!("{}-prod-tweets", self.name)
    }

    /// Runs the binary with the peers' environment and `extra`.
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = flixops(self.path());
        cmd.args(args).envs(cloud_env(self.path())).env("FLIXOPS_ARTIFACT", self.path().join("bootstrap"));
        cmd.envs(extra.iter().copied());
        output(&mut cmd)
    }

    fn deploy(&self) {
        let (code, _, stderr) = self.run(&["deploy", "--yes"], &[]);
        assert_eq!(code, 0, "{stderr}");
    }

    /// `doctor --canary -o json` with the canary waiting at most `wait`.
    fn doctor(&self, wait: &str, extra: &[(&str, &str)]) -> Value {
        let (_, stdout, stderr) =
            self.run(&["doctor", "--canary", "--canary-timeout", wait, "--output", "json"], extra);
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"))
    }
}

/// Every check that is not ok: name → (status, detail, fix).
fn red(report: &Value) -> BTreeMap<String, (String, String, String)> {
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| (field(c, "name"), (field(c, "status"), field(c, "detail"), field(c, "fix"))))
        .collect()
}

/// Asserts that exactly `expected` are not ok: each (name, a piece of its detail, a piece of its fix).
fn assert_red(report: &Value, expected: &[(&str, &str, &str)]) {
    let found = red(report);
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    let mut wanted: Vec<&str> = expected.iter().map(|(n, _, _)| *n).collect();
    wanted.sort();
    assert_eq!(names, wanted, "{found:#?}");
    for (name, detail, fix) in expected {
        let (_, got_detail, got_fix) = &found[*name];
        assert!(got_detail.contains(detail), "{name}: `{got_detail}` lacks `{detail}`");
        assert!(got_fix.contains(fix), "{name}: fix `{got_fix}` lacks `{fix}`");
    }
}

/// The X API: the recorded #brexit page for the deployed token (its `next_token` dropped: one
/// page), nothing newer after it (a request with `since_id`), X's usage count, the recorded 401
/// for any other token.
async fn x_api() -> (wiremock::MockServer, Value) {
    use wiremock::matchers::{header, method, path, query_param_is_missing};
    let server = wiremock::MockServer::start().await;
    let mut page: Value = serde_json::from_str(&common::page("brexit.jsonl")).unwrap();
    page["meta"].as_object_mut().unwrap().remove("next_token");
    wiremock::Mock::given(method("GET"))
        .and(path("/2/tweets/search/recent"))
        .and(header("authorization", "Bearer good-token"))
        .and(query_param_is_missing("since_id"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(&page))
        .mount(&server)
        .await;
    wiremock::Mock::given(method("GET"))
        .and(path("/2/tweets/search/recent"))
        .and(header("authorization", "Bearer good-token"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"meta": {"result_count": 0}})),
        )
        .mount(&server)
        .await;
    let usage = r#"{"data":{"cap_reset_day":10,"project_cap":"2000000","project_usage":"43435"}}"#;
    wiremock::Mock::given(method("GET"))
        .and(path("/2/usage/tweets"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(usage))
        .mount(&server)
        .await;
    let unauthorized = std::fs::read_to_string(common::fixture("search_all_401.json")).unwrap();
    wiremock::Mock::given(method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(401).set_body_string(unauthorized))
        .mount(&server)
        .await;
    (server, page)
}

/// Rows each model should hold, computed from the page alone.
fn expected_counts(page: &Value) -> BTreeMap<&'static str, usize> {
    use std::collections::{BTreeSet, HashMap};
    let tweets = page["data"].as_array().unwrap();
    let date = |t: &Value| t["created_at"].as_str().unwrap()[..10].to_string();
    let tags = |t: &Value| common::contract_text(page, t).1;
    let lower = |t: &Value| tags(t).iter().map(|h| h.to_lowercase()).collect::<BTreeSet<_>>();
    let mut per_user: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for t in tweets {
        per_user.entry(t["author_id"].as_str().unwrap()).or_default().extend(lower(t));
    }
    BTreeMap::from([
        ("STAGING.STG_TWEETS", tweets.iter().map(|t| t["id"].as_str().unwrap()).collect::<BTreeSet<_>>().len()),
        ("MARTS.USERS_STATS", per_user.len()),
        ("MARTS.TWEETS_DAILY", tweets.iter().map(date).collect::<BTreeSet<_>>().len()),
        (
            "MARTS.HASHTAGS_DAILY",
            tweets.iter().flat_map(|t| lower(t).into_iter().map(move |h| (date(t), h))).collect::<BTreeSet<_>>().len(),
        ),
        ("MARTS.USER_TOP_HASHTAGS", per_user.values().map(|tags| tags.len().min(3)).sum()),
        ("MARTS.MULTI_HASHTAG_TWEETS", tweets.iter().filter(|t| tags(t).len() >= 3).count()),
    ])
}

/// Polls the count `sql` answers until it is `want` (at most 30 s: the peers load within a second).
async fn eventually(what: &str, client: &flixops::snowflake::Client, sql: &str, want: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(client, sql).await != want {
        assert!(std::time::Instant::now() < deadline, "{what} did not happen within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// An S3 client on moto's default account, over TLS as far as the bucket policy can tell.
fn s3() -> aws_sdk_s3::Client {
    let tls = aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(common::OverTls);
    flixops::aws::Clients::new(&common::moto_sdk(), &[tls]).s3
}

async fn count(client: &flixops::snowflake::Client, sql: &str) -> u64 {
    let rows = client.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    flixops::snowflake::text(&rows[0], "N").parse().unwrap()
}

/// The bucket's notification rule for the pipe, rewritten (as someone editing it by hand would).
async fn edit_rule(p: &Project, prefix: &str, events: &[&str]) {
    let s3 = s3();
    let current = s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    let rule = current.queue_configurations()[0].clone();
    let filter = aws_sdk_s3::types::NotificationConfigurationFilter::builder()
        .key(
            aws_sdk_s3::types::S3KeyFilter::builder()
                .filter_rules(
                    aws_sdk_s3::types::FilterRule::builder()
                        .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                        .value(prefix)
                        .build(),
                )
                .build(),
        )
        .build();
    let edited = aws_sdk_s3::types::QueueConfiguration::builder()
        .set_id(rule.id().map(str::to_string))
        .queue_arn(rule.queue_arn())
        .set_events(Some(events.iter().map(|e| aws_sdk_s3::types::Event::from(*e)).collect()))
        .filter(filter)
        .build()
        .unwrap();
    let config = aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(edited).build();
    s3.put_bucket_notification_configuration()
        .bucket(p.bucket())
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_travels_from_the_extractor_to_the_models_and_each_broken_link_is_named_with_its_fix() {
    let (x, page) = x_api().await;
    let p = Project::new(&x.uri());
    p.deploy();
    let set_token = {
        let mut cmd = flixops(p.path());
        cmd.args(["secrets", "set"]).envs(cloud_env(p.path()));
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"good-token\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(set_token.status.success());
    let client = snowflake_client(p.path()).await;
    // The warehouse is an administrator's to grant (README, "The Snowflake side").
    client.execute("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"FLIXOPS\"").await.unwrap();
    let db = p.database();

    // One extraction: the page becomes a parquet file in S3, which Snowpipe loads.
    let (code, _, stderr) = p.run(&["extract"], &[("X_BEARER_TOKEN", "good-token")]);
    assert_eq!(code, 0, "{stderr}");
    let raw = format!("SELECT COUNT(*) AS N FROM \"{db}\".\"RAW\".\"TWEETS_RAW\"");
    eventually("the load of the extracted page", &client, &raw, 100).await;

    // The models refresh from the raw table (as their lag would; ALTER … REFRESH does it now).
    let expected = expected_counts(&page);
    for model in expected.keys() {
        let (schema, name) = model.split_once('.').unwrap();
        client.execute(&format!("ALTER DYNAMIC TABLE \"{db}\".\"{schema}\".\"{name}\" REFRESH")).await.unwrap();
    }
    for (model, rows) in &expected {
        let (schema, name) = model.split_once('.').unwrap();
        let sql = format!("SELECT COUNT(*) AS N FROM \"{db}\".\"{schema}\".\"{name}\"");
        assert_eq!(count(&client, &sql).await as usize, *rows, "{model}");
    }

    // Everything is green, and the canary travels the same way.
    let report = p.doctor("30s", &[]);
    assert_red(&report, &[]);
    let latency = report["canary"]["latency_ms"].as_u64().expect("the canary's latency in JSON");
    assert!(latency > 0 && latency < 30_000, "{report:#}");
    // The README quotes this figure (`--nocapture`): the peers' speed, not Snowflake's.
    eprintln!("canary latency against the peers: {latency} ms");
    let canary_file = report["canary"]["file"].as_str().unwrap().to_string();
    let loaded = format!("SELECT COUNT(*) AS N FROM \"{db}\".\"RAW\".\"TWEETS_RAW\" WHERE FILE_NAME = '{canary_file}'");
    assert_eq!(count(&client, &loaded).await, 1, "the canary's row is in the raw table");
    client.execute(&format!("ALTER DYNAMIC TABLE \"{db}\".\"MARTS\".\"TWEETS_DAILY\" REFRESH")).await.unwrap();
    let staged = format!("SELECT COUNT(*) AS N FROM \"{db}\".\"STAGING\".\"STG_TWEETS\"");
    assert_eq!(count(&client, &staged).await as usize, expected["STAGING.STG_TWEETS"], "no model counts the canary");

    // 1. The notification's prefix drifts: no file reaches the pipe.
    edit_rule(&p, "flixops/tweet/", &["s3:ObjectCreated:*"]).await;
    assert_red(
        &p.doctor("5s", &[]),
        &[
            ("aws_s3_bucket_notification.snowpipe", "drifted: rule", "flixops deploy"),
            ("canary", "no notification of it reached the pipe", "repair the link named"),
        ],
    );
    p.deploy();
    assert_red(&p.doctor("30s", &[]), &[]);

    // 2. Its events narrowed to Put: PutObject still notifies (the canary arrives), multipart
    //    uploads and copies would not; only the rule's check says so.
    edit_rule(&p, "flixops/tweets/", &["s3:ObjectCreated:Put"]).await;
    assert_red(&p.doctor("30s", &[]), &[("aws_s3_bucket_notification.snowpipe", "drifted: rule", "flixops deploy")]);
    p.deploy();

    // 3. The pipe is paused: the file waits in its queue, and loads once deploy resumes it.
    let pipe = format!("\"{db}\".\"RAW\".\"TWEETS_PIPE\"");
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = TRUE")).await.unwrap();
    let report = p.doctor("5s", &[]);
    assert_red(
        &report,
        &[
            ("snowflake_pipe.tweets", "drifted: execution_state", "flixops deploy"),
            ("pipe", "execution state PAUSED", "flixops deploy (resumes a paused pipe)"),
            ("canary", "the pipe is PAUSED", "repair the link named"),
        ],
    );
    let waiting = report["canary"]["file"].as_str().unwrap().to_string();
    p.deploy();
    let rows_of =
        |file: String| format!("SELECT COUNT(*) AS N FROM \"{db}\".\"RAW\".\"TWEETS_RAW\" WHERE FILE_NAME = '{file}'");
    eventually("the queued canary's load after the resume", &client, &rows_of(waiting), 1).await;
    assert_red(&p.doctor("30s", &[]), &[]);

    // 4. The role no longer trusts the integration's external ID: Snowflake cannot read the bucket.
    let iam = flixops::aws::Clients::new(&common::moto_sdk(), &[]).iam;
    let role = format!("{}-prod-snowflake", p.name);
    let trust =
        iam.get_role().role_name(&role).send().await.unwrap().role.unwrap().assume_role_policy_document.unwrap();
    let trust = percent_encoding::percent_decode_str(&trust).decode_utf8().unwrap().into_owned();
    let doc: Value = serde_json::from_str(&trust).unwrap();
    let external_id = doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"].as_str().unwrap().to_string();
    iam.update_assume_role_policy()
        .role_name(&role)
        .policy_document(trust.replace(&external_id, "someone-else"))
        .send()
        .await
        .unwrap();
    let report = p.doctor("5s", &[]);
    assert_red(
        &report,
        &[
            ("aws_iam_role.snowflake", "drifted: trust_policy", "flixops deploy"),
            ("stage", "Error assuming AWS_ROLE", "flixops deploy (role trust and integration)"),
            ("pipe", "STALLED_STAGE_PERMISSION_ERROR: Error assuming AWS_ROLE", "flixops deploy (role trust"),
            ("canary", "the pipe is STALLED_STAGE_PERMISSION_ERROR", "repair the link named"),
        ],
    );
    let waiting = report["canary"]["file"].as_str().unwrap().to_string();
    p.deploy();
    eventually("the stalled file's load once the trust is back", &client, &rows_of(waiting), 1).await;
    assert_red(&p.doctor("30s", &[]), &[]);

    // 5. A corrupt file: a real load error, named with its file and Snowflake's message. The data
    //    is not deploy's: it stays red after a deploy.
    let corrupt =
        format!("flixops/tweets/dt={}/20261129T000000Z-broken-0001.parquet", chrono::Utc::now().format("%Y-%m-%d"));
    let s3 = s3();
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"PAR1 but not a parquet file");
    s3.put_object().bucket(p.bucket()).key(&corrupt).body(body).send().await.unwrap();
    let failed = format!(
        "SELECT COUNT(*) AS N FROM TABLE(\"{db}\".INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => '{db}.RAW.TWEETS_RAW', \
         START_TIME => DATEADD(HOURS, -1, CURRENT_TIMESTAMP()))) WHERE STATUS = 'Load failed'"
    );
    eventually("the corrupt file's failed load", &client, &failed, 1).await;
    let broken =
        [("copy history", format!("{corrupt} (Load failed): Error parsing the parquet file"), "upload it again")];
    let expected_red: Vec<(&str, &str, &str)> = broken.iter().map(|(n, d, f)| (*n, d.as_str(), *f)).collect();
    assert_red(&p.doctor("30s", &[]), &expected_red);
    p.deploy();
    assert_red(&p.doctor("30s", &[]), &expected_red);

    // 6. The X API hangs: the token probe reports its own timeout; every other check still reports.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let _held = std::thread::spawn(move || silent.incoming().flatten().collect::<Vec<_>>());
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap().replace(&x.uri(), &silent_url);
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();
    let (_, stdout, stderr) = p.run(&["doctor", "--output", "json"], &[("FLIXOPS_CHECK_TIMEOUT_SECS", "8")]);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"));
    let mut hung = expected_red.clone();
    hung.push(("x token", "no answer within 8 s", ""));
    // The function's environment still names the API it was deployed with: doctor says so too.
    hung.push(("aws_lambda_function.extract", "drifted: environment", "flixops deploy"));
    assert_red(&report, &hung);
    let spend = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "x spend").unwrap();
    assert!(spend["detail"].as_str().unwrap().contains("X's own count unavailable (no answer within 8 s)"), "{spend}");
    assert!(report["checks"].as_array().unwrap().len() > 20, "the other checks reported: {report:#}");
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap().replace(&silent_url, &x.uri());
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();

    // 7. Ten hours pass in Snowflake. The extractor runs and finds nothing new: old data, but
    //    "ran, nothing new". Then its last run is 12 h old too: "did not run".
    client.execute(&format!("CALL FAKESNOW_PASS_TIME('{db}', 600)")).await.unwrap();
    let (code, stdout, stderr) = p.run(&["extract", "--output", "json"], &[("X_BEARER_TOKEN", "good-token")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["tweets"], 0, "nothing newer than the page");
    let freshness = |report: &Value| {
        let c = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "raw freshness").unwrap().clone();
        (c["status"].as_str().unwrap().to_string(), c["detail"].as_str().unwrap().to_string(), c["fix"].clone())
    };
    let (_, stdout, _) = p.run(&["doctor", "--output", "json"], &[]);
    let (status, detail, _) = freshness(&serde_json::from_str(&stdout).unwrap());
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.starts_with("newest row loaded 10 h ago; ran, nothing new: the last run finished "), "{detail}");
    let key = "flixops/_state/extract.json";
    let stored = s3.get_object().bucket(p.bucket()).key(key).send().await.unwrap();
    let mut checkpoint: Value = serde_json::from_slice(&stored.body.collect().await.unwrap().into_bytes()).unwrap();
    checkpoint["last_run"]["finished_at"] = (chrono::Utc::now() - chrono::Duration::hours(12)).to_rfc3339().into();
    let body = aws_sdk_s3::primitives::ByteStream::from(serde_json::to_vec(&checkpoint).unwrap());
    s3.put_object().bucket(p.bucket()).key(key).body(body).send().await.unwrap();
    let (_, stdout, _) = p.run(&["doctor", "--output", "json"], &[]);
    let (status, detail, fix) = freshness(&serde_json::from_str(&stdout).unwrap());
    assert_eq!((status.as_str(), fix.as_str().unwrap_or_default().contains("flixops logs --errors")), ("warn", true));
    assert!(detail.contains("did not run: the last run finished 12 h ago"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_prints_the_functions_events_as_sam_logs_does() {
    let p = Project::new("http://127.0.0.1:9");
    let logs = flixops::aws::Clients::new(&common::moto_sdk(), &[]).logs;
    let group = format!("/aws/lambda/{}-prod-extract", p.name);
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    let stream = "2026/11/29/[$LATEST]0123456789abcdef";
    logs.create_log_stream().log_group_name(&group).log_stream_name(stream).send().await.unwrap();
    let put = |lines: Vec<(i64, &'static str)>| {
        let logs = logs.clone();
        let group = group.clone();
        async move {
            let events = lines.into_iter().map(|(at, line)| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(at).message(line).build().unwrap()
            });
            logs.put_log_events()
                .log_group_name(&group)
                .log_stream_name(stream)
                .set_log_events(Some(events.collect()))
                .send()
                .await
                .unwrap();
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    put(vec![
        (now - 3 * 3_600_000, "START RequestId: old"),
        (now - 2_000, "START RequestId: 1 Version: $LATEST"),
        (now - 1_500, "ERROR extraction failed: X API 429 Too Many Requests"),
        (now - 1_000, "REPORT RequestId: 1 Duration: 812.04 ms"),
    ])
    .await;
    let at = |ms: i64| {
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap().naive_utc();
        if ms % 1000 == 0 {
            t.format("%Y-%m-%dT%H:%M:%S").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        }
    };

    let (code, stdout, stderr) = p.run(&["logs"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{stream} {} START RequestId: 1 Version: $LATEST", at(now - 2_000)),
            format!("{stream} {} ERROR extraction failed: X API 429 Too Many Requests", at(now - 1_500)),
            format!("{stream} {} REPORT RequestId: 1 Duration: 812.04 ms", at(now - 1_000)),
        ],
        "the last hour, oldest first, as `sam logs` prints them"
    );
    let (_, stdout, _) = p.run(&["logs", "--since", "4h", "--errors"], &[]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("ERROR extraction failed"), "{stdout}");
    let (_, stdout, _) = p.run(&["logs", "--since", "4h", "-o", "json"], &[]);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["source"], group);
    assert_eq!(json["events"].as_array().unwrap().len(), 4, "{json:#}");
    assert_eq!(json["events"][0]["message"], "START RequestId: old");
    assert_eq!(json["events"][0]["log_stream"], stream);

    // --follow prints what arrives later, once.
    let mut follow = flixops(p.path());
    follow.args(["logs", "--follow", "-o", "json"]).envs(cloud_env(p.path()));
    follow.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    let mut child = common::Running(follow.spawn().unwrap());
    let reader = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let lines = std::thread::spawn(move || {
        std::io::BufRead::lines(reader).map_while(Result::ok).take(4).collect::<Vec<String>>()
    });
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    put(vec![(chrono::Utc::now().timestamp_millis(), "START RequestId: 2 Version: $LATEST")]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lines.is_finished() {
        assert!(std::time::Instant::now() < deadline, "--follow printed no new line within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let lines = lines.join().unwrap();
    let messages: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(messages.last().unwrap(), "START RequestId: 2 Version: $LATEST", "{messages:?}");
    assert_eq!(messages.iter().filter(|m| m.starts_with("START RequestId: 1")).count(), 1, "each event once");
    drop(child);
}
