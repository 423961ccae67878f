//! The Snowflake side of `deploy` against fakesnow (through tests/peers/fakesnow_server.py) and
//! moto: everything is created and wired to AWS, a second deploy runs no DDL, a model edit
//! re-applies that model only, the models compute the right numbers (in UTC) on fakesnow, a changed
//! COPY or a new stage URL recreates the pipe the safe way (paused, its queue drained, bounded),
//! each pipe state gets its documented repair, the file format loads parquet logical types,
//! sessions run in UTC on a warehouse, a model that does not compile fails the plan, doctor names
//! a missing grant, and a bad connection exits 3 with the fix. The statements fakesnow cannot run
//! for real are compared with golden files and parsed by sqlglot.

use crate::common;
use std::path::Path;
use std::process::Command;

use crate::common::{
    MotoAccount, cloud_env, flixops, moto, moto_sdk, output, snowflake_client, snowflake_home, test_python,
};
use flixops::aws::lambda::Artifact;
use flixops::aws::{Clients, Session};
use flixops::config::{Config, EnvConfig};
use flixops::snowflake::Client;
use serde_json::Value;

const IAM_USER: &str = "arn:aws:iam::999999999999:user/fake-sf-user";
const QUEUE: &str = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-FAKE-queue";

/// A cloud project with a name (so a database, bucket and integration) no other test uses.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    account: MotoAccount,
}

impl Project {
    fn new(extra_env: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("s{:08x}", fastrand::u32(..));
        let toml = format!(
            "[project]\nname = \"{name}\"\n\n[extract]\nquery = \"#brexit\"\n\n\
             [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\nsnowflake_warehouse = \"TRANSFORM_WH\"\n{extra_env}"
        );
        std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
        Self { dir, name, account: MotoAccount::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn database(&self) -> String {
        self.name.to_uppercase()
    }

    fn config(&self) -> (Config, EnvConfig) {
        let config = Config::load(&self.path().join("flixops.toml")).unwrap();
        let env = config.env(Some("prod")).unwrap().clone();
        (config, env)
    }

    /// Copies the built-in models into `models/` so a test can edit them.
    fn write_models(&self) {
        for (path, text) in flixops::models::DEFAULT_MODELS {
            let target = self.path().join("models").join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, text).unwrap();
        }
    }

    async fn session(&self) -> Session {
        let interceptors = [aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(self.account.clone())];
        Session::from_sdk("prod", &moto_sdk(), None, &interceptors).await.unwrap()
    }

    /// One in-process plan (and deploy when `apply`), on a fresh Snowflake session each time, as
    /// separate CLI runs would be.
    async fn deploy(&self, apply: bool) -> (flixops::plan::Plan, Vec<String>, Vec<String>) {
        let (plan, client, report) = self.try_deploy(apply).await;
        match report {
            None => (plan, Vec::new(), client.writes()),
            Some(Ok(report)) => (plan, report.write_calls, report.snowflake_writes),
            Some(Err(e)) => panic!("deploy failed: {e}"),
        }
    }

    /// [`Project::deploy`] that hands back a failed deploy's error (None: not applied).
    async fn try_deploy(
        &self,
        apply: bool,
    ) -> (flixops::plan::Plan, Client, Option<Result<flixops::deploy::DeployReport, flixops::Error>>) {
        let (config, env) = self.config();
        let cloud = flixops::deploy::cloud_target(&env).unwrap();
        let client = common::flixops_client(self.path(), cloud).await;
        let session = self.session().await;
        let models = flixops::deploy::snowflake_models(&config, cloud).unwrap();
        let upstream =
            flixops::deploy::snowflake_upstream(&client, &config, &env, &session.account_id, &models).unwrap();
        let artifact = Artifact::load(Some(&artifact(self.path()))).unwrap();
        let mut prepared = flixops::deploy::prepare_in(session, &config, &env, artifact, upstream).await.unwrap();
        prepared.snowflake = Some(client.clone());
        let plan = prepared.plan.clone();
        if !apply {
            return (plan, client, None);
        }
        (plan, client, Some(prepared.apply().await))
    }
}

fn artifact(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("bootstrap");
    std::fs::write(&path, common::elf::bootstrap("")).unwrap();
    path
}

fn changed(plan: &flixops::plan::Plan) -> Vec<String> {
    plan.resources
        .iter()
        .filter(|r| r.change.action != flixops::plan::Action::NoOp)
        .map(|r| r.address.0.clone())
        .collect()
}

/// The rows of `sql`, each as the text of `columns` in that order.
async fn rows(client: &Client, sql: &str, columns: &[&str]) -> Vec<Vec<String>> {
    let rows = client.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter().map(|r| columns.iter().map(|c| flixops::snowflake::text(r, c)).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_deploy_creates_and_wires_everything_and_the_second_runs_no_ddl() {
    let p = Project::new("");
    let (plan, _, reads) = p.deploy(false).await;
    assert!(reads.is_empty(), "plan sent only reads to Snowflake: {reads:?}");
    let planned = changed(&plan);
    for address in [
        "snowflake_database.main",
        "snowflake_schema.raw",
        "snowflake_storage_integration.lake",
        "snowflake_stage.tweets",
        "snowflake_pipe.tweets",
        "snowflake_dynamic_table.marts.users_stats",
        "aws_s3_bucket_notification.snowpipe",
    ] {
        assert!(planned.iter().any(|a| a == address), "{address} not in plan {planned:?}");
    }

    let (_, aws_writes, ddl) = p.deploy(true).await;
    assert!(!aws_writes.is_empty());
    assert!(ddl.iter().any(|s| s.starts_with("CREATE STORAGE INTEGRATION IF NOT EXISTS")), "{ddl:#?}");
    assert!(!ddl.iter().any(|s| s.contains("OR REPLACE STORAGE INTEGRATION")), "never replaces the integration");

    // What a user checks: the objects exist in Snowflake …
    let client = snowflake_client(p.path()).await;
    let db = p.database();
    let schemas = rows(&client, &format!("SHOW SCHEMAS IN DATABASE \"{db}\""), &["name"]).await;
    for schema in ["RAW", "OPS", "STAGING", "MARTS"] {
        assert!(schemas.iter().any(|r| r.contains(&schema.to_string())), "{schema} missing: {schemas:?}");
    }
    let pipes = client.query(&format!("SHOW PIPES LIKE 'TWEETS_PIPE' IN SCHEMA \"{db}\".\"RAW\"")).await.unwrap();
    assert_eq!(pipes.len(), 1);
    let copy = pipes[0]["definition"].as_str().unwrap();
    assert!(copy.contains("METADATA$START_SCAN_TIME") && copy.contains(&format!("\"{db}\".\"RAW\".\"TWEETS_RAW\"")));
    let ledger = rows(
        &client,
        &format!("SELECT \"MODEL\", \"STATUS\" FROM \"{db}\".\"OPS\".\"MODEL_LEDGER\" ORDER BY 1"),
        &["MODEL", "STATUS"],
    )
    .await;
    assert_eq!(ledger.len(), flixops::models::DEFAULT_MODELS.len(), "{ledger:?}");
    assert!(ledger.iter().all(|r| r[1] == "applied"), "{ledger:?}");

    // … and AWS trusts the integration's IAM user with the pinned external ID, and notifies the pipe.
    let c = Clients::new(
        &moto_sdk(),
        &[aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(p.account.clone())],
    );
    let role = c.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await.unwrap();
    let trust = percent_encoding::percent_decode_str(role.role().unwrap().assume_role_policy_document().unwrap())
        .decode_utf8()
        .unwrap()
        .to_string();
    assert!(trust.contains(IAM_USER), "{trust}");
    let integration = rows(
        &client,
        &format!("DESC STORAGE INTEGRATION \"{}_PROD_LAKE\"", p.name.to_uppercase()),
        &["property", "property_value"],
    )
    .await;
    let external_id = integration.iter().find(|r| r[0] == "STORAGE_AWS_EXTERNAL_ID").unwrap()[1].clone();
    let random = external_id.strip_prefix("flixops-").unwrap_or_default();
    assert!(random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()), "random: {external_id}");
    assert!(trust.contains(&format!("\"sts:ExternalId\":\"{external_id}\"")), "one ID on both sides: {trust}");
    let bucket = format!("{}-prod-tweets", p.name);
    let notification = c.s3.get_bucket_notification_configuration().bucket(&bucket).send().await.unwrap();
    let queues: Vec<_> = notification.queue_configurations().iter().map(|q| q.queue_arn()).collect();
    assert_eq!(queues, [QUEUE]);

    let (plan, aws_writes, ddl) = p.deploy(true).await;
    assert!(plan.is_empty(), "second plan: {:?}", changed(&plan));
    assert_eq!((aws_writes, ddl), (Vec::<String>::new(), Vec::<String>::new()), "second deploy changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_edit_reapplies_that_model_only_and_a_lag_change_all_of_them() {
    let p = Project::new("");
    p.write_models();
    p.deploy(true).await;

    let path = p.path().join("models/marts/users_stats.sql");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("COUNT(*) AS tweet_count", "COUNT(*) AS tweet_count, 1 AS edited");
    std::fs::write(&path, edited).unwrap();
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(changed(&plan), ["snowflake_dynamic_table.marts.users_stats"]);
    let (_, aws_writes, ddl) = p.deploy(true).await;
    assert!(aws_writes.is_empty());
    assert_eq!(ddl.len(), 4, "ledger row replaced by 'applying', the DDL, ledger 'applied': {ddl:#?}");
    assert!(
        ddl[0].starts_with("DELETE FROM") && ddl[1].starts_with("INSERT INTO") && ddl[3].starts_with("UPDATE"),
        "{ddl:#?}"
    );
    assert!(
        ddl[2].starts_with(&format!("CREATE OR REPLACE DYNAMIC TABLE \"{}\".\"MARTS\".\"USERS_STATS\"", p.database()))
    );

    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap() + "target_lag = \"15 minutes\"\n";
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(
        changed(&plan).len(),
        flixops::models::DEFAULT_MODELS.len(),
        "every model's DDL names the lag: {:?}",
        changed(&plan)
    );
}

/// One raw record as Snowpipe loads it: the parquet row as a VARIANT.
fn record(tweet: &str, user: &str, text: &str, tags: &[&str], extracted: &str) -> String {
    record_created(tweet, user, text, tags, extracted, "2024-03-01T10:00:00Z")
}

/// [`record`] of a tweet created at `created` (a timestamp with its offset, as a logical-type load gives it).
fn record_created(tweet: &str, user: &str, text: &str, tags: &[&str], extracted: &str, created: &str) -> String {
    serde_json::json!({
        "tweet_id": tweet, "tweet_created_at": created, "tweet_text": text, "tweet_lang": "en",
        "is_retweet": false, "is_reply": false, "is_quote": false, "replied_to_id": null,
        "quoted_id": null, "retweeted_id": null,
        "tweet_hashtags": tags, "retweet_count": 1, "reply_count": 0, "like_count": 2, "quote_count": 0,
        "user_id": user, "user_username": format!("u{user}"), "user_location": null, "user_followers_count": 10,
        "query": "#brexit", "extracted_at": extracted,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_models_compute_the_marts_on_snowflake_sql() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let raw = format!("\"{}\".\"RAW\".\"TWEETS_RAW\"", p.database());
    let records = [
        record("1", "a", "four", &["Brexit", "eu"], "2024-03-01T11:00:00Z"),
        record("1", "a", "four", &["Brexit", "eu"], "2024-03-01T12:00:00Z"), // the same tweet, stored twice
        record("2", "a", "sixsix", &["brexit"], "2024-03-01T11:00:00Z"),
        reply_that_quotes(record("3", "b", "xy", &["a", "b", "c"], "2024-03-01T11:00:00Z"), "1", "2"),
        // 01:30 at +02:00 is 23:30 UTC the day before: the day is the UTC day, whatever the zone.
        record_created("4", "b", "late", &[], "2024-03-01T11:00:00Z", "2024-03-01T01:30:00+02:00"),
    ];
    for (i, r) in records.iter().enumerate() {
        let sql = format!(
            "INSERT INTO {raw} (\"RECORD\", \"FILE_NAME\", \"FILE_ROW_NUMBER\", \"LOADED_AT\") SELECT PARSE_JSON(?), ?, 0, CURRENT_TIMESTAMP()"
        );
        client.query_with(&sql, &[r.as_str(), format!("f{i}.parquet").as_str()]).await.unwrap();
    }
    // The models refresh from the raw table, staging first (as their lag would; ALTER … REFRESH
    // refreshes one now).
    let db = p.database();
    for model in [
        "STAGING\".\"STG_TWEETS",
        "MARTS\".\"USERS_STATS",
        "MARTS\".\"TWEETS_DAILY",
        "MARTS\".\"HASHTAGS_DAILY",
        "MARTS\".\"MULTI_HASHTAG_TWEETS",
    ] {
        client.execute(&format!("ALTER DYNAMIC TABLE \"{db}\".\"{model}\" REFRESH")).await.unwrap();
    }

    let users = rows(
        &client,
        &format!("SELECT USER_ID, TWEET_COUNT, AVG_TWEET_LENGTH FROM \"{db}\".\"MARTS\".\"USERS_STATS\" ORDER BY 1"),
        &["USER_ID", "TWEET_COUNT", "AVG_TWEET_LENGTH"],
    )
    .await;
    assert_eq!(users.len(), 2);
    assert_eq!((users[0][0].as_str(), users[0][1].as_str()), ("a", "2"), "tweet 1 counted once: {users:?}");
    let utc = rows(
        &client,
        &format!(
            "SELECT TWEET_ID FROM \"{db}\".\"STAGING\".\"STG_TWEETS\" WHERE TWEET_CREATED_AT = '2024-02-29 23:30:00'"
        ),
        &["TWEET_ID"],
    )
    .await;
    assert_eq!(utc, [["4".to_string()]], "the instant in UTC, without zone");
    let day = rows(
        &client,
        &format!("SELECT TWEET_COUNT FROM \"{db}\".\"MARTS\".\"TWEETS_DAILY\" WHERE TWEET_DATE = '2024-02-29'"),
        &["TWEET_COUNT"],
    )
    .await;
    assert_eq!(day, [["1".to_string()]], "counted on its UTC day");
    assert_eq!(users[0][2].parse::<f64>().unwrap(), 5.0, "(4 + 6) / 2");
    let tags = rows(
        &client,
        &format!("SELECT HASHTAG, TWEET_COUNT FROM \"{db}\".\"MARTS\".\"HASHTAGS_DAILY\" ORDER BY 1"),
        &["HASHTAG", "TWEET_COUNT"],
    )
    .await;
    let brexit = tags.iter().find(|r| r[0] == "brexit").unwrap();
    assert_eq!(brexit[1], "2", "Brexit and brexit are one tag: {tags:?}");
    let multi =
        rows(&client, &format!("SELECT TWEET_ID FROM \"{db}\".\"MARTS\".\"MULTI_HASHTAG_TWEETS\""), &["TWEET_ID"])
            .await;
    assert_eq!(multi, [["3".to_string()]]);
    let refs = rows(
        &client,
        &format!(
            "SELECT TWEET_ID, COALESCE(REPLIED_TO_ID, '-') AS R, COALESCE(QUOTED_ID, '-') AS Q, \
             COALESCE(RETWEETED_ID, '-') AS T FROM \"{db}\".\"STAGING\".\"STG_TWEETS\" ORDER BY 1"
        ),
        &["TWEET_ID", "R", "Q", "T"],
    )
    .await;
    assert_eq!(
        refs,
        [["1", "-", "-", "-"], ["2", "-", "-", "-"], ["3", "1", "2", "-"], ["4", "-", "-", "-"]],
        "one column per reference kind"
    );
}

/// A record that replies to `replied_to` and quotes `quoted`.
fn reply_that_quotes(record: String, replied_to: &str, quoted: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(&record).unwrap();
    value["is_reply"] = true.into();
    value["is_quote"] = true.into();
    value["replied_to_id"] = replied_to.into();
    value["quoted_id"] = quoted.into();
    value.to_string()
}

/// The first two words of each statement.
fn verbs(statements: &[String]) -> Vec<String> {
    statements.iter().map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect()
}

/// Tells the emulator what a running Snowflake would have done to the project's pipe.
async fn pipe_status(client: &Client, p: &Project, status: Value) {
    let pipe = format!("{}.RAW.TWEETS_PIPE", p.database());
    client.execute(&format!("CALL FAKESNOW_SET_PIPE_STATUS('{pipe}', '{status}')")).await.unwrap();
}

/// SYSTEM$PIPE_STATUS of the project's pipe.
async fn pipe_state(client: &Client, p: &Project) -> Value {
    let sql = format!("SELECT SYSTEM$PIPE_STATUS('{}.RAW.TWEETS_PIPE') AS S", p.database());
    serde_json::from_str(&rows(client, &sql, &["S"]).await[0][0]).unwrap()
}

fn pipe_change(plan: &flixops::plan::Plan) -> &flixops::plan::Change {
    &plan.resources.iter().find(|r| r.address.0 == "snowflake_pipe.tweets").unwrap().change
}

/// A page of the data contract as parquet (the recorded two-tweet page), as the extractor writes it.
fn page_file() -> Vec<u8> {
    let text = common::page("two_tweets.jsonl");
    let page: flixops::extract::tweet::Page = serde_json::from_str(&text).unwrap();
    let (batch, _) = page.to_batch("#brexit", chrono::Utc::now().timestamp_micros());
    flixops::extract::parquet::encode(&batch).unwrap()
}

/// Puts `body` at `{prefix}/tweets/dt=…/{name}` in the project's bucket, as the extractor does: S3
/// notifies the pipe's queue and Snowpipe loads it. `account` is the moto account of the bucket
/// (None: moto's default, where the CLI deploys).
async fn upload(p: &Project, account: Option<&MotoAccount>, name: &str, body: Vec<u8>) -> String {
    use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
    let interceptor = match account {
        Some(account) => SharedInterceptor::new(account.clone()),
        None => SharedInterceptor::new(common::OverTls),
    };
    let s3 = Clients::new(&moto_sdk(), &[interceptor]).s3;
    let key = format!("flixops/tweets/dt={}/{name}", chrono::Utc::now().format("%Y-%m-%d"));
    let bucket = format!("{}-prod-tweets", p.name);
    s3.put_object().bucket(bucket).key(&key).body(body.into()).send().await.unwrap();
    key
}

/// Reads SYSTEM$PIPE_STATUS until `done` holds (the peer loads within a second; at most 30 s).
async fn pipe_until(client: &Client, p: &Project, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = pipe_state(client, p).await;
        if done(&status) {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{what} within 30 s: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Lets `minutes` pass for what Snowflake recorded in the project's database (emulator-only).
async fn pass_time(client: &Client, p: &Project, minutes: i64) {
    client.execute(&format!("CALL FAKESNOW_PASS_TIME('{}', {minutes})", p.database())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_copy_recreates_the_pipe_paused_drained_refreshed_and_resumed() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    // Someone replaced the pipe by hand with another COPY; files wait in its queue.
    client.execute(&hand_made_pipe(&p)).await.unwrap();
    // Eight files arrive while loading is slow: two load per status read while it runs (plan and
    // deploy read it too).
    pipe_status(&client, &p, serde_json::json!({"drainPerRead": 0})).await;
    for i in 0..8 {
        upload(&p, Some(&p.account), &format!("r-{i:04}.parquet"), page_file()).await;
    }
    pipe_until(&client, &p, "eight files queued", |s| s["pendingFileCount"] == 8).await;
    pipe_status(&client, &p, serde_json::json!({"drainPerRead": 2})).await;
    let lost_before =
        rows(&client, &format!("CALL FAKESNOW_LOST_FILES('{}.RAW.TWEETS_PIPE')", p.database()), &["LOST"]).await;
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(pipe_change(&plan).action, flixops::plan::Action::Replace);
    let (_, _, ddl) = p.deploy(true).await;
    // Paused, its queue not drained while paused: resumed until the three files loaded, paused again,
    // then replaced (marked "refresh pending"), paused, refreshed, unmarked and resumed.
    assert_eq!(
        verbs(&ddl),
        ["ALTER PIPE", "ALTER PIPE", "ALTER PIPE", "CREATE OR", "ALTER PIPE", "ALTER PIPE", "ALTER PIPE", "ALTER PIPE"],
        "{ddl:#?}"
    );
    assert!(ddl[0].ends_with("= TRUE") && ddl[1].ends_with("= FALSE") && ddl[2].ends_with("= TRUE"), "{ddl:#?}");
    assert!(ddl[3].contains("COMMENT = 'flixops: replaced, refresh pending MODIFIED_AFTER "), "{ddl:#?}");
    assert!(ddl[6].ends_with("UNSET COMMENT") && ddl[7].ends_with("SET PIPE_EXECUTION_PAUSED = FALSE"), "{ddl:#?}");
    let refresh = regex_like_offset(&ddl[5]);
    assert!(refresh, "MODIFIED_AFTER with an explicit +00:00 offset: {}", ddl[5]);
    let lost = rows(&client, &format!("CALL FAKESNOW_LOST_FILES('{}.RAW.TWEETS_PIPE')", p.database()), &["LOST"]).await;
    assert_eq!(lost, lost_before, "no queued file was dropped with the old pipe");
    assert_eq!(pipe_state(&client, &p).await["executionState"], "RUNNING");
}

/// A pipe someone created by hand on the project's stage, with another COPY than flixops's.
fn hand_made_pipe(p: &Project) -> String {
    let db = p.database();
    format!(
        "CREATE OR REPLACE PIPE \"{db}\".\"RAW\".\"TWEETS_PIPE\" AUTO_INGEST = TRUE AS COPY INTO \"{db}\".\"RAW\".\"TWEETS_RAW\" \
         FROM @\"{db}\".\"RAW\".\"TWEETS_STAGE\" FILE_FORMAT = (FORMAT_NAME = '{db}.RAW.PARQUET_FORMAT')"
    )
}

/// The MODIFIED_AFTER of a REFRESH statement.
fn refreshed_after(statement: &str) -> chrono::DateTime<chrono::Utc> {
    let at = statement.split("MODIFIED_AFTER = '").nth(1).unwrap().trim_end_matches('\'');
    chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replace_refreshes_from_the_last_load_and_a_rerun_after_a_crash_redoes_the_refresh() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let db = p.database();
    let pipe = format!("\"{db}\".\"RAW\".\"TWEETS_PIPE\"");
    // The last file loaded 90 minutes ago (a later one failed), then the pipe was paused; someone
    // replaced its COPY by hand.
    upload(&p, Some(&p.account), "a.parquet", page_file()).await;
    let loaded = |s: &Value| s["lastIngestedTimestamp"].is_string() && s["pendingFileCount"] == 0;
    pipe_until(&client, &p, "a.parquet loaded", loaded).await;
    pass_time(&client, &p, 60).await;
    upload(&p, Some(&p.account), "b.parquet", b"not parquet".to_vec()).await;
    let failed = format!(
        "SELECT FILE_NAME FROM TABLE(\"{db}\".INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => '{db}.RAW.TWEETS_RAW', \
         START_TIME => DATEADD(HOURS, -3, CURRENT_TIMESTAMP()))) WHERE STATUS = 'Load failed'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&client, &failed, &["FILE_NAME"]).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "b.parquet's failed load within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    pass_time(&client, &p, 30).await;
    client.execute(&hand_made_pipe(&p)).await.unwrap();
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = TRUE")).await.unwrap();
    // The deploy stops after the replace, before the refresh.
    client.execute("CALL FAKESNOW_FAIL_NEXT_REFRESH('Connection reset by peer')").await.unwrap();
    let started = chrono::Utc::now();
    let (_, _, report) = p.try_deploy(true).await;
    let err = report.unwrap().map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("snowflake_pipe.tweets") && err.contains("Connection reset by peer"), "{err}");
    let comment =
        rows(&client, &format!("SHOW PIPES LIKE 'TWEETS_PIPE' IN SCHEMA \"{db}\".\"RAW\""), &["comment"]).await;
    assert!(comment[0][0].starts_with("flixops: replaced, refresh pending MODIFIED_AFTER "), "{comment:?}");

    // The rerun sees the pending refresh, says so, and does it from the last load.
    let (plan, _, _) = p.deploy(false).await;
    let change = pipe_change(&plan);
    assert_eq!(change.action, flixops::plan::Action::Update, "{change:?}");
    assert!(
        change.reason.as_deref().unwrap().starts_with("an earlier replace stopped before its refresh"),
        "{change:?}"
    );
    assert!(change.fields.iter().any(|f| f.field == "refresh_pending"), "{change:?}");
    let (_, _, ddl) = p.deploy(true).await;
    let refresh = ddl.iter().find(|s| s.contains(" REFRESH ")).unwrap_or_else(|| panic!("no refresh: {ddl:#?}"));
    let since = refreshed_after(refresh);
    let expected = started - chrono::Duration::minutes(95);
    assert!((since - expected).num_seconds().abs() < 120, "from the last successful load, 5 min early: {refresh}");
    assert!(ddl.iter().any(|s| s.ends_with("UNSET COMMENT")), "{ddl:#?}");
    assert_eq!(pipe_state(&client, &p).await["executionState"], "RUNNING");
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(pipe_change(&plan).action, flixops::plan::Action::NoOp, "done once");
}

/// `ALTER PIPE … REFRESH MODIFIED_AFTER = 'YYYY-MM-DDTHH:MM:SS+00:00'`.
fn regex_like_offset(statement: &str) -> bool {
    let Some(at) = statement.split("MODIFIED_AFTER = '").nth(1) else { return false };
    let value = at.trim_end_matches('\'');
    value.len() == 25 && value.ends_with("+00:00") && chrono::DateTime::parse_from_rfc3339(value).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_that_does_not_drain_leaves_the_pipe_running_unchanged() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let db = flixops::snowflake::ident::Ident::new(&p.database()).unwrap();
    let part = |n: &str| flixops::snowflake::ident::Ident::new(n).unwrap();
    let qualified = |name: &str| flixops::snowflake::ident::Qualified::new(&db, &part("raw"), &part(name));
    let pipe = flixops::snowflake::pipe::Pipe {
        client: client.clone(),
        name: qualified("tweets_pipe"),
        table: qualified("tweets_raw"),
        stage: qualified("tweets_stage"),
        format: qualified("parquet_format"),
        trust_from: flixops::plan::Address::new("aws_iam_role", "snowflake"),
        propagation: flixops::aws::Propagation::from_secs(0),
        drain: flixops::snowflake::pipe::Drain {
            timeout: std::time::Duration::from_millis(600),
            interval: std::time::Duration::from_millis(100),
        },
    };
    use flixops::plan::Resource;
    let before = rows(
        &client,
        &format!("SHOW PIPES LIKE 'TWEETS_PIPE' IN SCHEMA {}", qualified("x").schema_path()),
        &["definition"],
    )
    .await;
    // Loading is stuck: five files arrive, none loads.
    pipe_status(&client, &p, serde_json::json!({"drainPerRead": 0})).await;
    for i in 0..5 {
        upload(&p, Some(&p.account), &format!("s-{i:04}.parquet"), page_file()).await;
    }
    pipe_until(&client, &p, "five files queued", |s| s["pendingFileCount"] == 5).await;
    let observed = pipe.read().await.unwrap();
    let replace = flixops::plan::Change { action: flixops::plan::Action::Replace, fields: vec![], reason: None };
    let err = pipe.apply(&replace, observed.as_ref(), &flixops::plan::Inputs::default()).await.unwrap_err();
    assert_eq!(err.op, "wait for queued files");
    assert!(err.message.starts_with("5 file(s) queued before the pause were still waiting"), "{}", err.message);
    assert!(err.message.contains("flixops deploy"), "{}", err.message);
    let after = rows(
        &client,
        &format!("SHOW PIPES LIKE 'TWEETS_PIPE' IN SCHEMA {}", qualified("x").schema_path()),
        &["definition"],
    )
    .await;
    assert_eq!(after, before, "not replaced");
    let status = pipe_state(&client, &p).await;
    assert_eq!((status["executionState"].as_str(), status["pendingFileCount"].as_u64()), (Some("RUNNING"), Some(5)));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_pipe_state_gets_its_documented_repair_and_the_plan_says_why() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let pipe = format!("\"{}\".\"RAW\".\"TWEETS_PIPE\"", p.database());

    // Paused two hours ago, after loading: a plain resume.
    upload(&p, Some(&p.account), "a.parquet", page_file()).await;
    pipe_until(&client, &p, "a.parquet loaded", |s| s["lastIngestedTimestamp"].is_string()).await;
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = TRUE")).await.unwrap();
    pass_time(&client, &p, 120).await;
    let (plan, _, _) = p.deploy(false).await;
    let change = pipe_change(&plan);
    assert_eq!(change.action, flixops::plan::Action::Update);
    assert!(change.reason.as_deref().unwrap().starts_with("PAUSED: resumed with ALTER PIPE"), "{change:?}");
    let (_, _, ddl) = p.deploy(true).await;
    assert_eq!(ddl, [format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = FALSE")]);

    // Paused 20 days, nothing loaded since: stale; a plain resume is refused, the forced one works.
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = TRUE")).await.unwrap();
    pass_time(&client, &p, 20 * 24 * 60).await;
    let plain = client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = FALSE")).await;
    assert!(plain.unwrap_err().to_string().contains("stale"), "the emulator refuses as Snowflake does");
    let (plan, _, _) = p.deploy(false).await;
    let reason = pipe_change(&plan).reason.clone().unwrap();
    assert!(reason.contains("last file loaded 20 days ago") && reason.contains("staleness_check_override"), "{reason}");
    let (_, _, ddl) = p.deploy(true).await;
    assert_eq!(
        ddl,
        [format!("SELECT SYSTEM$PIPE_FORCE_RESUME('{}.RAW.TWEETS_PIPE', 'staleness_check_override')", p.database())]
    );
    assert_eq!(pipe_state(&client, &p).await["executionState"], "RUNNING");

    // Stopped by Snowflake: recreated, without the pause and drain a stopped pipe cannot do.
    pipe_status(&client, &p, serde_json::json!({"executionState": "STOPPED_STAGE_ALTERED"})).await;
    let (plan, _, _) = p.deploy(false).await;
    let change = pipe_change(&plan);
    assert_eq!(change.action, flixops::plan::Action::Replace);
    assert!(change.reason.as_deref().unwrap().starts_with("STOPPED_STAGE_ALTERED:"), "{change:?}");
    let (_, _, ddl) = p.deploy(true).await;
    assert_eq!(verbs(&ddl), ["CREATE OR", "ALTER PIPE", "ALTER PIPE", "ALTER PIPE", "ALTER PIPE"], "{ddl:#?}");
    assert_eq!(pipe_state(&client, &p).await["executionState"], "RUNNING");

    // Stalled on an error: not deploy's to change (doctor names it).
    pipe_status(&client, &p, serde_json::json!({"executionState": "STALLED_COMPILATION_ERROR"})).await;
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(pipe_change(&plan).action, flixops::plan::Action::NoOp);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_stage_url_recreates_the_pipe_it_stops_and_a_new_integration_does_not() {
    let p = Project::new("");
    p.deploy(true).await;
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap() + "prefix = \"moved\"\n";
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();
    let (plan, _, _) = p.deploy(false).await;
    let change = pipe_change(&plan);
    assert_eq!(change.action, flixops::plan::Action::Replace, "{change:?}");
    assert_eq!(change.reason.as_deref(), Some("the stage's URL changes, which stops the pipe (STOPPED_STAGE_ALTERED)"));
    let (_, _, ddl) = p.deploy(true).await;
    let stage = ddl.iter().position(|s| s.starts_with("ALTER STAGE")).unwrap();
    let replaced = ddl.iter().position(|s| s.starts_with("CREATE OR REPLACE PIPE")).unwrap();
    assert!(stage < replaced, "{ddl:#?}");
    assert!(
        !ddl[stage + 1..replaced].iter().any(|s| s.contains("PIPE_EXECUTION_PAUSED")),
        "a stopped pipe is not paused first: {ddl:#?}"
    );
    let client = snowflake_client(p.path()).await;
    assert_eq!(pipe_state(&client, &p).await["executionState"], "RUNNING");
    let (plan, _, _) = p.deploy(false).await;
    assert!(plan.is_empty(), "{:?}", changed(&plan));

    // The integration changes by hand: the stage's ALTER repeats its URL, so the pipe keeps running.
    let stage = format!("\"{}\".\"RAW\".\"TWEETS_STAGE\"", p.database());
    client
        .execute(&format!(
            "ALTER STAGE {stage} SET URL = 's3://{}-prod-tweets/moved/tweets/' STORAGE_INTEGRATION = \"OTHER\"",
            p.name
        ))
        .await
        .unwrap();
    let (plan, _, _) = p.deploy(false).await;
    assert_eq!(changed(&plan), ["snowflake_stage.tweets"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_external_id_is_kept_and_the_role_trusts_it() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let integration = format!("\"{}_PROD_LAKE\"", p.name.to_uppercase());
    let desc = format!("DESC STORAGE INTEGRATION {integration}");
    let property = |rows: &[Vec<String>], key: &str| rows.iter().find(|r| r[0] == key).unwrap()[1].clone();
    let before = rows(&client, &desc, &["property", "property_value"]).await;
    let role_arn = property(&before, "STORAGE_AWS_ROLE_ARN");
    client
        .execute(&format!(
            "ALTER STORAGE INTEGRATION {integration} SET STORAGE_AWS_ROLE_ARN = '{role_arn}' \
             STORAGE_AWS_EXTERNAL_ID = 'chosen-by-an-earlier-deploy'"
        ))
        .await
        .unwrap();

    let (plan, _, _) = p.deploy(false).await;
    let planned = changed(&plan);
    assert!(!planned.iter().any(|a| a == "snowflake_storage_integration.lake"), "kept: {planned:?}");
    assert!(planned.iter().any(|a| a == "aws_iam_role.snowflake"), "the trust follows it: {planned:?}");
    let (_, _, ddl) = p.deploy(true).await;
    assert!(!ddl.iter().any(|s| s.contains("STORAGE INTEGRATION")), "{ddl:#?}");
    let after = rows(&client, &desc, &["property", "property_value"]).await;
    assert_eq!(property(&after, "STORAGE_AWS_EXTERNAL_ID"), "chosen-by-an-earlier-deploy");
    let aws = Clients::new(
        &moto_sdk(),
        &[aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(p.account.clone())],
    );
    let role = aws.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await.unwrap();
    let trust = percent_encoding::percent_decode_str(role.role().unwrap().assume_role_policy_document().unwrap())
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert!(trust.contains("\"sts:ExternalId\":\"chosen-by-an-earlier-deploy\""), "{trust}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_format_loads_parquet_logical_types_and_its_drift_is_repaired() {
    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let format = format!("\"{}\".\"RAW\".\"PARQUET_FORMAT\"", p.database());
    let shown = |client: Client| {
        let db = p.database();
        async move {
            let sql = format!("SHOW FILE FORMATS LIKE 'PARQUET_FORMAT' IN SCHEMA \"{db}\".\"RAW\"");
            let options = rows(&client, &sql, &["format_options"]).await;
            serde_json::from_str::<Value>(&options[0][0]).unwrap()["USE_LOGICAL_TYPE"].clone()
        }
    };
    assert_eq!(shown(client.clone()).await, Value::Bool(true));
    // Recreated by hand without the option: Snowflake stops the pipe that uses it.
    client.execute(&format!("CREATE OR REPLACE FILE FORMAT {format} TYPE = PARQUET")).await.unwrap();
    let (plan, _, _) = p.deploy(false).await;
    let planned = changed(&plan);
    assert!(
        planned.starts_with(&["snowflake_file_format.parquet".into(), "snowflake_pipe.tweets".into()]),
        "{planned:?}"
    );
    let format_change = &plan.resources.iter().find(|r| r.address.0 == "snowflake_file_format.parquet").unwrap().change;
    assert_eq!(format_change.action, flixops::plan::Action::Update);
    assert!(pipe_change(&plan).reason.as_deref().unwrap().starts_with("STOPPED_FILE_FORMAT_DROPPED"), "{plan:?}");
    let (_, _, ddl) = p.deploy(true).await;
    assert_eq!(ddl[0], format!("ALTER FILE FORMAT {format} SET USE_LOGICAL_TYPE = TRUE"));
    assert_eq!(shown(client.clone()).await, Value::Bool(true));
    let (plan, _, _) = p.deploy(false).await;
    assert!(plan.is_empty(), "{:?}", changed(&plan));
}

#[tokio::test(flavor = "multi_thread")]
async fn flixops_sessions_run_in_utc_on_the_configured_warehouse() {
    let p = Project::new("");
    let (_, env) = p.config();
    let cloud = flixops::deploy::cloud_target(&env).unwrap();
    let client = common::flixops_client(p.path(), cloud).await;
    let tz = rows(&client, "SHOW PARAMETERS LIKE 'TIMEZONE' IN SESSION", &["value", "level"]).await;
    assert_eq!(tz, [["UTC".to_string(), "SESSION".to_string()]]);
    let warehouse = rows(&client, "SELECT CURRENT_WAREHOUSE() AS W", &["W"]).await;
    assert_eq!(warehouse, [["TRANSFORM_WH".to_string()]], "the connection names none: snowflake_warehouse");

    // A connection's own warehouse wins.
    let home = snowflake_home(p.path(), "warehouse = \"LOADING_WH\"\n").display().to_string();
    let var = move |k: &str| (k == "SNOWFLAKE_HOME").then(|| home.clone());
    let own = flixops::deploy::connect_snowflake_with(cloud, &var).await.unwrap();
    assert_eq!(rows(&own, "SELECT CURRENT_WAREHOUSE() AS W", &["W"]).await, [["LOADING_WH".to_string()]]);

    // Without any, Snowflake refuses to read a table (the emulator as the docs say).
    let home = snowflake_home(p.path(), "").display().to_string();
    let var = move |k: &str| (k == "SNOWFLAKE_HOME").then(|| home.clone());
    let bare = Client::connect(&flixops::snowflake::connection::resolve(None, &var).unwrap()).await.unwrap();
    let err = bare.query("SELECT 1 AS ONE FROM (SELECT 1)").await.unwrap_err().to_string();
    assert!(err.contains("No active warehouse selected"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_does_not_compile_fails_the_plan_before_anything_changes() {
    let p = Project::new("");
    p.write_models();
    std::fs::write(
        p.path().join("models/marts/broken.sql"),
        "SELECT user_id, no_such_column FROM {{ref \"staging.stg_tweets\"}}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = flixops(p.path());
        cmd.args(args).envs(cloud_env(p.path())).env("FLIXOPS_ARTIFACT", artifact(p.path()));
        output(&mut cmd)
    };
    // Nothing exists yet: the models it reads are compiled inline.
    let (code, stdout, stderr) = run(&["plan"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("the plan cannot be applied (nothing was changed)"), "{stderr}");
    assert!(stderr.contains("models/marts/broken.sql does not compile on Snowflake (EXPLAIN)"), "{stderr}");
    assert!(stderr.to_ascii_uppercase().contains("NO_SUCH_COLUMN"), "Snowflake's error names the column: {stderr}");
    let (code, _, stderr) = run(&["deploy", "--yes"]);
    assert_eq!(code, 1, "{stderr}");
    let client = snowflake_client(p.path()).await;
    let databases = rows(&client, "SHOW DATABASES", &["name"]).await;
    assert!(!databases.iter().any(|r| r[0] == p.database()), "deploy stopped before its first write: {databases:?}");

    // Fixed, it plans; the compile is a read (EXPLAIN), so plan still writes nothing.
    std::fs::remove_file(p.path().join("models/marts/broken.sql")).unwrap();
    let (plan, _, writes) = p.deploy(false).await;
    assert!(!plan.is_empty() && writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_plans_and_deploys_both_clouds_then_reports_zero_writes() {
    let p = Project::new("");
    let run = |args: &[&str]| {
        let mut cmd = flixops(p.path());
        cmd.args(args).envs(cloud_env(p.path())).env("FLIXOPS_ARTIFACT", artifact(p.path()));
        output(&mut cmd)
    };
    let (code, stdout, stderr) = run(&["plan", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert!(plan["add"].as_u64().unwrap() > 20, "{stdout}");
    let (code, stdout, stderr) = run(&["deploy", "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("snowflake_dynamic_table.marts.users_stats"), "the plan, on stdout: {stdout}");
    let (code, stdout, stderr) = run(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["snowflake_writes"], serde_json::json!([]), "{stdout}");
    assert_eq!(report["write_calls"], serde_json::json!([]), "{stdout}");
}

#[test]
fn a_bad_connection_exits_3_with_the_fix() {
    let p = Project::new("snowflake_connection = \"prod\"\n");
    let run = |home: &Path| {
        let mut cmd = flixops(p.path());
        cmd.args(["plan"])
            .envs(common::moto_env())
            .env("SNOWFLAKE_HOME", home)
            .env("FLIXOPS_ARTIFACT", artifact(p.path()));
        output(&mut cmd)
    };
    // No such connection.
    let home = snowflake_home(p.path(), "");
    let (code, _, stderr) = run(&home);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("`prod` is not defined") && stderr.contains("snow connection add"), "{stderr}");

    // Nothing listens at the host.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        home.join("connections.toml"),
        format!("[prod]\naccount = \"a\"\nuser = \"u\"\npassword = \"hunter2\"\nhost = \"127.0.0.1\"\nport = {closed}\nprotocol = \"http\"\n"),
    )
    .unwrap();
    let (code, _, stderr) = run(&home);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot connect to Snowflake (connection `prod`"), "{stderr}");
    assert!(stderr.contains("fix: check `account`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password never prints");

    // An unreadable key.
    std::fs::write(
        home.join("connections.toml"),
        "[prod]\naccount = \"a\"\nuser = \"u\"\nprivate_key_file = \"/nonexistent/rsa.p8\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&home);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot read the private key /nonexistent/rsa.p8"), "{stderr}");
}

/// An encrypted PKCS#8 key, made with the venv's `cryptography` (a dependency of the Python connector).
fn encrypted_key(dir: &Path, passphrase: &str) -> std::path::PathBuf {
    let path = dir.join("rsa_key.p8");
    let script = format!(
        "from cryptography.hazmat.primitives.asymmetric import rsa\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
         open({path:?}, 'wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.BestAvailableEncryption({passphrase:?}.encode())))\n",
        path = path.display().to_string()
    );
    let status = Command::new(test_python()).args(["-c", &script]).status().unwrap();
    assert!(status.success());
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_key_signs_in_with_its_passphrase_and_not_without() {
    let dir = tempfile::tempdir().unwrap();
    let key = encrypted_key(dir.path(), "correct horse");
    let home = snowflake_home(dir.path(), &format!("private_key_file = {:?}\n", key.display().to_string()));
    let resolve = |pwd: &'static str| {
        let home = home.display().to_string();
        let var = move |k: &str| match k {
            "SNOWFLAKE_HOME" => Some(home.clone()),
            "SNOWFLAKE_PRIVATE_KEY_FILE_PWD" => Some(pwd.to_string()),
            _ => None,
        };
        flixops::snowflake::connection::resolve(None, &var).unwrap()
    };
    let client = Client::connect(&resolve("correct horse")).await.expect("the key decrypts and signs the JWT");
    assert_eq!(rows(&client, "SELECT 1 AS ONE", &["ONE"]).await, [["1".to_string()]]);
    let Err(err) = Client::connect(&resolve("wrong")).await else { panic!("a wrong passphrase must fail") };
    assert!(err.is_connect() && err.to_string().contains("private key"), "{err}");
    assert!(!err.to_string().contains("wrong"), "the passphrase never prints: {err}");
}

/// The statements fakesnow only emulates, as flixops sends them, equal the golden files and parse
/// with sqlglot's Snowflake dialect (UPDATE_GOLDEN=1 rewrites the files).
#[tokio::test(flavor = "multi_thread")]
async fn account_level_statements_match_the_golden_files_and_parse_as_snowflake_sql() {
    let p = Project::new("");
    let (_, _, created) = p.deploy(true).await;
    // Drift in each emulated object, so the repair statements are captured too.
    let client = snowflake_client(p.path()).await;
    let (db, integration) = (p.database(), format!("\"{}_PROD_LAKE\"", p.name.to_uppercase()));
    for drift in [
        format!("ALTER STORAGE INTEGRATION {integration} SET STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::1:role/other'"),
        format!("CREATE OR REPLACE FILE FORMAT \"{db}\".\"RAW\".\"PARQUET_FORMAT\" TYPE = PARQUET"),
        format!(
            "CREATE OR REPLACE PIPE \"{db}\".\"RAW\".\"TWEETS_PIPE\" AUTO_INGEST = TRUE AS COPY INTO \"X\".\"Y\".\"Z\" FROM @\"{db}\".\"RAW\".\"TWEETS_STAGE\""
        ),
        format!(
            "ALTER STAGE \"{db}\".\"RAW\".\"TWEETS_STAGE\" SET URL = 's3://other/' STORAGE_INTEGRATION = {integration}"
        ),
    ] {
        client.execute(&drift).await.unwrap();
    }
    let (_, _, mut repaired) = p.deploy(true).await;
    // A pipe paused for three weeks: forced to resume.
    client
        .execute(&format!("ALTER PIPE \"{db}\".\"RAW\".\"TWEETS_PIPE\" SET PIPE_EXECUTION_PAUSED = TRUE"))
        .await
        .unwrap();
    pass_time(&client, &p, 21 * 24 * 60).await;
    let (_, _, resumed) = p.deploy(true).await;
    repaired.extend(resumed);
    let timestamp = fixed_refresh_time();
    let normalize = |s: &String| {
        let s = s
            .replace(&p.name.to_uppercase(), "PROJECT")
            .replace(&p.name, "project")
            .replace(&p.account.0, "123456789012");
        timestamp(&s)
    };
    let emulated = |s: &&String| {
        ["STORAGE INTEGRATION", "STAGE", "PIPE", "DYNAMIC TABLE", "FILE FORMAT"].iter().any(|k| s.contains(k))
    };
    let first: Vec<String> = created.iter().filter(emulated).map(normalize).collect();
    let second: Vec<String> = repaired.iter().filter(emulated).map(normalize).collect();
    let text = format!("{};\n\n{};\n", first.join(";\n\n"), second.join(";\n\n"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/snowflake_deploy.sql");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(text, expected, "the deploy SQL changed; review it and run with UPDATE_GOLDEN=1");

    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sqlglot_check.py");
    let out = Command::new(test_python()).arg(checker).arg(&path).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sqlglot: {report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(&format!("{} statements, 0 failed", first.len() + second.len())), "{report}");
}

/// Replaces the pipe refresh's timestamp (the time of the deploy) with a fixed one.
fn fixed_refresh_time() -> impl Fn(&str) -> String {
    |s: &str| {
        let s = fixed_after(s, "MODIFIED_AFTER = '", "2024-01-01T00:00:00+00:00");
        let s = fixed_after(&s, "refresh pending MODIFIED_AFTER ", "2024-01-01T00:00:00+00:00");
        fixed_after(&s, "STORAGE_AWS_EXTERNAL_ID = 'flixops-", "RANDOM")
    }
}

/// `s` with what follows `marker` up to the next quote replaced by `fixed`.
fn fixed_after(s: &str, marker: &str, fixed: &str) -> String {
    match s.find(marker) {
        Some(at) => {
            let start = at + marker.len();
            let end = s[start..].find('\'').map_or(s.len(), |e| start + e);
            format!("{}{fixed}{}", &s[..start], &s[end..])
        }
        None => s.to_string(),
    }
}

/// The X API as the doctor's one cheap call sees it: a recorded page for the right token, the
/// recorded 401 for any other.
async fn x_api_mock() -> wiremock::MockServer {
    use wiremock::matchers::{header, method, path};
    let server = wiremock::MockServer::start().await;
    let page = common::page("two_tweets.jsonl");
    wiremock::Mock::given(method("GET"))
        .and(path("/2/tweets/search/recent"))
        .and(header("authorization", "Bearer good-token"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(page))
        .mount(&server)
        .await;
    // docs.x.com/x-api/usage/tweets: the project's own count, which doctor sets beside flixops'.
    let usage = r#"{"data":{"cap_reset_day":10,"project_cap":"2000000","project_id":"1369785403853424","project_usage":"43435"}}"#;
    wiremock::Mock::given(method("GET"))
        .and(path("/2/usage/tweets"))
        .and(header("authorization", "Bearer good-token"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(usage))
        .mount(&server)
        .await;
    let unauthorized = std::fs::read_to_string(common::fixture("search_all_401.json")).unwrap();
    wiremock::Mock::given(method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(401).set_body_string(unauthorized))
        .mount(&server)
        .await;
    server
}

/// The same moto over plain HTTP, which the bucket's TLS-only policy refuses for objects.
fn over_plain_http(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| !matches!(*k, "AWS_ENDPOINT_URL" | "SSL_CERT_FILE"));
    env.push(("AWS_ENDPOINT_URL", moto().endpoint.clone()));
    env
}

fn doctor(p: &Project) -> (i32, Value, String) {
    doctor_with(p, cloud_env(p.path()))
}

fn doctor_with(p: &Project, env: Vec<(&'static str, String)>) -> (i32, Value, String) {
    let mut cmd = flixops(p.path());
    cmd.args(["doctor", "--output", "json"]).envs(env).env("FLIXOPS_ARTIFACT", artifact(p.path()));
    let (code, stdout, stderr) = output(&mut cmd);
    (code, serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}")), stderr)
}

/// Writes lines into the function's log group, as the Lambda service does with its output.
async fn function_log(logs: &aws_sdk_cloudwatchlogs::Client, p: &Project, lines: &[&str]) {
    let group = format!("/aws/lambda/{}-prod-extract", p.name);
    let _ = logs.create_log_group().log_group_name(&group).send().await;
    let stream = format!("run-{}", fastrand::u32(..));
    logs.create_log_stream().log_group_name(&group).log_stream_name(&stream).send().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let events = lines.iter().map(|line| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message(*line).build().unwrap()
    });
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .set_log_events(Some(events.collect()))
        .send()
        .await
        .unwrap();
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {report}"))
}

/// A check's status and detail.
fn verdict<'a>(report: &'a Value, name: &str) -> (&'a str, &'a str) {
    let c = check(report, name);
    (c["status"].as_str().unwrap_or_default(), c["detail"].as_str().unwrap_or_default())
}

fn set_token(p: &Project, token: &str) {
    use std::io::Write;
    let mut cmd = flixops(p.path());
    cmd.args(["secrets", "set"]).envs(cloud_env(p.path()));
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_is_green_after_deploy_and_red_with_the_fix_for_each_broken_part() {
    let x = x_api_mock().await;
    let p = Project::new("");
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap();
    let toml = toml.replace("[extract]\n", &format!("[extract]\napi_base_url = \"{}\"\n", x.uri()));
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();
    let mut cmd = flixops(p.path());
    cmd.args(["deploy", "--yes"]).envs(cloud_env(p.path())).env("FLIXOPS_ARTIFACT", artifact(p.path()));
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    set_token(&p, "good-token");
    let client = snowflake_client(p.path()).await;
    let db = p.database();
    // The deploying role owns what it created; the warehouse is an administrator's to grant.
    client.execute("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"FLIXOPS\"").await.unwrap();

    // Over plain HTTP the bucket refuses the checkpoint read: the TLS-only policy is in force.
    let (code, report, _) = doctor_with(&p, over_plain_http(cloud_env(p.path())));
    assert_eq!(code, 1);
    let c = check(&report, "checkpoint");
    assert!(c["status"] == "fail" && c["detail"].as_str().unwrap().contains("403"), "{c}");

    // One extraction over HTTPS (as the function runs), and its log line.
    let mut cmd = flixops(p.path());
    cmd.args(["extract"]).envs(cloud_env(p.path())).env("X_BEARER_TOKEN", "good-token");
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let aws = Clients::new(&moto_sdk(), &[]);
    function_log(&aws.logs, &p, &[" INFO extraction finished run_id=1 pages=1 tweets=1"]).await;
    // Snowpipe loads the page the extraction wrote.
    pipe_until(&client, &p, "the extracted page loaded", |s| s["lastIngestedTimestamp"].is_string()).await;

    let (code, report, stderr) = doctor(&p);
    let not_ok: Vec<&Value> = report["checks"].as_array().unwrap().iter().filter(|c| c["status"] != "ok").collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}\n{stderr}");
    assert_eq!(code, 0);
    for name in [
        "snowflake sign-in",
        "x token",
        "stage",
        "pipe",
        "copy history",
        "raw freshness",
        "checkpoint",
        "function errors",
        "models freshness",
        "privileges",
        "snowflake_pipe.tweets",
        "x spend",
        "rejects",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report}");
    }
    let spend = check(&report, "x spend")["detail"].as_str().unwrap().to_string();
    assert!(spend.starts_with("1 posts read in "), "the one extraction's post: {spend}");
    assert!(spend.contains("X counts 43435 for the whole project"), "X's count, with the deployed token: {spend}");

    // Break one part at a time; doctor names it and its fix, and repairs nothing.
    let pipe = format!("\"{db}\".\"RAW\".\"TWEETS_PIPE\"");
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = TRUE")).await.unwrap();
    let (code, report, _) = doctor(&p);
    assert_eq!(code, 1);
    let c = check(&report, "pipe");
    assert_eq!(
        (c["status"].as_str(), c["fix"].as_str()),
        (Some("fail"), Some("flixops deploy (resumes a paused pipe)")),
        "{c}"
    );
    assert_eq!(check(&report, "pipe")["detail"], "execution state PAUSED");
    client.execute(&format!("ALTER PIPE {pipe} SET PIPE_EXECUTION_PAUSED = FALSE")).await.unwrap();

    set_token(&p, "revoked-token");
    let (_, report, _) = doctor(&p);
    let c = check(&report, "x token");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("401") && c["fix"].as_str().unwrap().contains("flixops secrets set"),
        "{c}"
    );
    assert!(!report.to_string().contains("revoked-token"), "the token never prints");
    // CI's deploy role cannot read the token: `--skip token` leaves the probe out.
    let mut skipping = flixops(p.path());
    skipping.args(["doctor", "--skip", "token", "--output", "json"]).envs(cloud_env(p.path()));
    let (code, stdout, stderr) = output(skipping.env("FLIXOPS_ARTIFACT", artifact(p.path())));
    let skipped: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"));
    assert!(skipped["checks"].as_array().unwrap().iter().all(|c| c["name"] != "x token"), "{skipped}");
    assert_eq!(code, 0, "nothing else fails: {skipped}");
    set_token(&p, "good-token");

    // The role Snowflake assumes no longer trusts the integration's external ID.
    let role = format!("{}-prod-snowflake", p.name);
    let trust =
        aws.iam.get_role().role_name(&role).send().await.unwrap().role.unwrap().assume_role_policy_document.unwrap();
    let trust = percent_encoding::percent_decode_str(&trust).decode_utf8().unwrap().into_owned();
    let doc: Value = serde_json::from_str(&trust).unwrap();
    let external_id = doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"].as_str().unwrap().to_string();
    assert!(external_id.starts_with("flixops-"), "{trust}");
    let changed = trust.replace(&external_id, "someone-else");
    aws.iam.update_assume_role_policy().role_name(&role).policy_document(changed).send().await.unwrap();
    let (_, report, _) = doctor(&p);
    let c = check(&report, "aws_iam_role.snowflake");
    assert_eq!(
        (c["status"].as_str(), c["detail"].as_str(), c["fix"].as_str()),
        (Some("fail"), Some("drifted: trust_policy"), Some("flixops deploy")),
        "{c}"
    );
    aws.iam.update_assume_role_policy().role_name(&role).policy_document(trust).send().await.unwrap();

    client.execute(&format!("DROP STORAGE INTEGRATION \"{}_PROD_LAKE\"", p.name.to_uppercase())).await.unwrap();
    let (_, report, _) = doctor(&p);
    let c = check(&report, "snowflake_storage_integration.lake");
    assert_eq!(
        (c["status"].as_str(), c["detail"].as_str(), c["fix"].as_str()),
        (Some("fail"), Some("missing"), Some("flixops deploy"))
    );

    let bucket = format!("{}-prod-tweets", p.name);
    let empty = aws_sdk_s3::types::NotificationConfiguration::builder().build();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(empty)
        .send()
        .await
        .unwrap();
    let (_, report, _) = doctor(&p);
    let c = check(&report, "aws_s3_bucket_notification.snowpipe");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fix"], "flixops deploy");

    // deploy repairs the integration and the notification.
    let mut cmd = flixops(p.path());
    cmd.args(["deploy", "--yes"]).envs(cloud_env(p.path())).env("FLIXOPS_ARTIFACT", artifact(p.path()));
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");

    // A file Snowpipe cannot load, beside one it loads: the failed one is named with its error.
    upload(&p, None, "a-0001.parquet", page_file()).await;
    let broken = upload(&p, None, "b-0001.parquet", b"PAR1 and then not parquet".to_vec()).await;
    let failed = format!(
        "SELECT FILE_NAME FROM TABLE(\"{db}\".INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => '{db}.RAW.TWEETS_RAW', \
         START_TIME => DATEADD(HOURS, -1, CURRENT_TIMESTAMP()))) WHERE STATUS = 'Load failed'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&client, &failed, &["FILE_NAME"]).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the broken file's load within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, report, _) = doctor(&p);
    let c = check(&report, "copy history");
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap();
    let named =
        format!("1 file(s) not loaded in the last 24 h: {broken} (Load failed): Error parsing the parquet file");
    assert!(detail.starts_with(&named), "{detail}");
    assert!(c["fix"].as_str().unwrap().contains("REFRESH"), "{c}");

    // Over a hundred failed dynamic tables elsewhere in the account, which DYNAMIC_TABLES() lists
    // first by default, do not hide this database's: each one's refresh really fails.
    let other = format!("\"OTHER{}\"", p.name.to_uppercase());
    for sql in [
        format!("CREATE DATABASE {other}"),
        format!("CREATE SCHEMA {other}.\"MARTS\""),
        format!("CREATE TABLE {other}.\"MARTS\".\"SRC\" (\"V\" VARIANT)"),
    ] {
        client.execute(&sql).await.unwrap();
    }
    for i in 0..101 {
        client
            .execute(&format!(
                "CREATE DYNAMIC TABLE {other}.\"MARTS\".\"T{i}\" TARGET_LAG = '1 minute' WAREHOUSE = \"TEST_WH\" AS \
                 SELECT V:\"n\"::INT AS N FROM {other}.\"MARTS\".\"SRC\""
            ))
            .await
            .unwrap();
    }
    client
        .execute(&format!("INSERT INTO {other}.\"MARTS\".\"SRC\" SELECT PARSE_JSON('{{\"n\": \"abc\"}}')"))
        .await
        .unwrap();
    // A minute passes there: each refreshes on its lag, and fails on the value.
    client.execute(&format!("CALL FAKESNOW_PASS_TIME('OTHER{}', 2)", p.name.to_uppercase())).await.unwrap();
    let failing = format!(
        "SELECT NAME FROM TABLE({other}.INFORMATION_SCHEMA.DYNAMIC_TABLES(RESULT_LIMIT => 1000)) \
         WHERE DATABASE_NAME = 'OTHER{}' AND LAST_COMPLETED_REFRESH_STATE = 'FAILED'",
        p.name.to_uppercase()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rows(&client, &failing, &["NAME"]).await.len() < 101 {
        assert!(std::time::Instant::now() < deadline, "101 failed refreshes within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let (_, report, _) = doctor(&p);
    let (status, detail) = verdict(&report, "models freshness");
    let models = flixops::models::DEFAULT_MODELS.len();
    assert!(
        status == "ok" && detail.starts_with(&format!("{models} models, oldest data 0 h old")),
        "{status}: {detail}"
    );

    // Files wait in the pipe's queue but nothing loaded for hours: a warning that points at the loads.
    pass_time(&client, &p, 180).await;
    pipe_status(&client, &p, serde_json::json!({"drainPerRead": 0})).await;
    for i in 0..12 {
        upload(&p, None, &format!("c-{i:04}.parquet"), page_file()).await;
    }
    pipe_until(&client, &p, "twelve files queued", |s| s["pendingFileCount"] == 12).await;
    let (_, report, _) = doctor(&p);
    assert_eq!(verdict(&report, "pipe"), ("warn", "12 file(s) queued, but the last file loaded 3 h ago"));
    pipe_status(&client, &p, serde_json::json!({"drainPerRead": null})).await;
    pipe_until(&client, &p, "the twelve files loaded", |s| s["pendingFileCount"] == 0).await;

    // A model whose refresh fails is named with the error; a suspended one grows old: a warning.
    let raw = format!("\"{db}\".\"RAW\".\"TWEETS_RAW\"");
    let mut bad: Value = serde_json::from_str(&record("9", "z", "x", &[], "2024-03-01T11:00:00Z")).unwrap();
    bad["user_followers_count"] = "abc".into();
    client
        .query_with(
            &format!("INSERT INTO {raw} (\"RECORD\", \"FILE_NAME\", \"LOADED_AT\") SELECT PARSE_JSON(?), 'bad', CURRENT_TIMESTAMP()"),
            &[bad.to_string().as_str()],
        )
        .await
        .unwrap();
    let staging = format!("\"{db}\".\"STAGING\".\"STG_TWEETS\"");
    let refused = client.execute(&format!("ALTER DYNAMIC TABLE {staging} REFRESH")).await.unwrap_err();
    assert!(refused.to_string().contains("abc"), "{refused}");
    let (_, report, _) = doctor(&p);
    let (status, detail) = verdict(&report, "models freshness");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.starts_with("1 model(s) failed to refresh, e.g. STAGING.STG_TWEETS: ") && detail.contains("abc"),
        "{detail}"
    );
    client.execute(&format!("DELETE FROM {raw} WHERE \"FILE_NAME\" = 'bad'")).await.unwrap();
    client.execute(&format!("ALTER DYNAMIC TABLE {staging} REFRESH")).await.unwrap();
    for (file, _) in flixops::models::DEFAULT_MODELS {
        let (schema, name) = file.trim_end_matches(".sql").split_once('/').unwrap();
        let (schema, name) = (schema.to_uppercase(), name.to_uppercase());
        client.execute(&format!("ALTER DYNAMIC TABLE \"{db}\".\"{schema}\".\"{name}\" SUSPEND")).await.unwrap();
    }
    pass_time(&client, &p, 300).await;
    let (_, report, _) = doctor(&p);
    let (status, detail) = verdict(&report, "models freshness");
    let stale = format!("{models} models, oldest data 5 h old (");
    assert!(status == "warn" && detail.starts_with(&stale), "{status}: {detail}");

    // A failed run of the function: its error line is named, with where to read the rest.
    function_log(&aws.logs, &p, &["ERROR extraction failed: X API 429 Too Many Requests", "REPORT Duration: 812 ms"])
        .await;
    let (code, report, _) = doctor(&p);
    assert_eq!(code, 1);
    assert_eq!(
        verdict(&report, "function errors"),
        ("fail", "1 error line(s) in the last 24 h, newest: ERROR extraction failed: X API 429 Too Many Requests")
    );
    assert_eq!(check(&report, "function errors")["fix"], "flixops logs --errors --since 24h");

    // Snowflake unreachable: its sign-in fails with the command to test the connection, and the
    // AWS side is still checked.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut env = cloud_env(p.path());
    env.push(("SNOWFLAKE_CONNECTIONS_DEFAULT_PORT", closed.to_string()));
    let (code, report, _) = doctor_with(&p, env);
    assert_eq!(code, 1);
    let c = check(&report, "snowflake sign-in");
    assert_eq!((c["status"].as_str(), c["fix"].as_str()), (Some("fail"), Some("snow connection test")), "{c}");
    assert_eq!(check(&report, "aws_lambda_function.extract")["status"], "ok", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_a_missing_grant_with_the_statement_that_fixes_it() {
    let p = Project::new("");
    let role = format!("DEPLOY_{}", p.name.to_uppercase());
    let as_role = |mut env: Vec<(&'static str, String)>| {
        env.push(("SNOWFLAKE_CONNECTIONS_DEFAULT_ROLE", role.clone()));
        env
    };
    let client = snowflake_client(p.path()).await;
    client.execute(&format!("GRANT CREATE INTEGRATION ON ACCOUNT TO ROLE \"{role}\"")).await.unwrap();
    let mut cmd = flixops(p.path());
    cmd.args(["deploy", "--yes"]).envs(as_role(cloud_env(p.path()))).env("FLIXOPS_ARTIFACT", artifact(p.path()));
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");

    // The role owns what it created, but nobody granted it the warehouse.
    let (_, report, _) = doctor_with(&p, as_role(cloud_env(p.path())));
    let c = check(&report, "privileges");
    assert_eq!(
        (c["status"].as_str(), c["detail"].as_str(), c["fix"].as_str()),
        (
            Some("fail"),
            Some(format!("role {role} lacks USAGE on warehouse TRANSFORM_WH").as_str()),
            Some(format!("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"{role}\";").as_str())
        ),
        "{c}"
    );

    // Granted through another role, it counts: SHOW GRANTS is followed through granted roles.
    let users = format!("WH_USERS_{}", p.name.to_uppercase());
    client.execute(&format!("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"{users}\"")).await.unwrap();
    client.execute(&format!("GRANT ROLE \"{users}\" TO ROLE \"{role}\"")).await.unwrap();
    let (_, report, _) = doctor_with(&p, as_role(cloud_env(p.path())));
    assert_eq!(verdict(&report, "privileges"), ("ok", format!("role {role} holds what flixops needs").as_str()));

    // Ownership of the pipe moved to an unrelated role: doctor can no longer read its status.
    let pipe = format!("\"{}\".\"RAW\".\"TWEETS_PIPE\"", p.database());
    let other = format!("LOADER_{}", p.name.to_uppercase());
    client.execute(&format!("GRANT OWNERSHIP ON PIPE {pipe} TO ROLE \"{other}\"")).await.unwrap();
    let (_, report, _) = doctor_with(&p, as_role(cloud_env(p.path())));
    let c = check(&report, "privileges");
    assert_eq!(c["fix"], format!("GRANT MONITOR ON PIPE {pipe} TO ROLE \"{role}\";"), "{c}");
}

/// Only ACCOUNTADMIN, or a role granted CREATE INTEGRATION, may create a storage integration
/// (https://docs.snowflake.com/en/sql-reference/sql/create-storage-integration#access-control-requirements;
/// the peer refuses it too): `plan` says so with the grant, before `deploy` would have created the
/// bucket and the role and then stopped.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_cannot_create_the_integration_is_told_in_plan_with_the_grant() {
    let p = Project::new("");
    let role = format!("NEWCOMER_{}", p.name.to_uppercase());
    let mut env = cloud_env(p.path());
    env.push(("SNOWFLAKE_CONNECTIONS_DEFAULT_ROLE", role.clone()));
    let run = |verb: &[&str]| {
        let mut cmd = flixops(p.path());
        cmd.args(verb).envs(env.clone()).env("FLIXOPS_ARTIFACT", artifact(p.path()));
        output(&mut cmd)
    };
    for verb in [&["plan"][..], &["deploy", "--yes"]] {
        let (code, _, stderr) = run(verb);
        assert_eq!(code, 1, "{verb:?}: {stderr}");
        assert!(
            stderr.contains(&format!("role {role} cannot create storage integration"))
                && stderr.contains(&format!("GRANT CREATE INTEGRATION ON ACCOUNT TO ROLE \"{role}\"")),
            "{verb:?}: {stderr}"
        );
    }
    let bucket =
        flixops::aws::s3_client(&moto_sdk()).head_bucket().bucket(format!("{}-prod-tweets", p.name)).send().await;
    assert!(bucket.is_err(), "deploy stopped in its check phase: nothing was created");

    let client = snowflake_client(p.path()).await;
    client.execute(&format!("GRANT CREATE INTEGRATION ON ACCOUNT TO ROLE \"{role}\"")).await.unwrap();
    let (code, _, stderr) = run(&["plan"]);
    assert_eq!(code, 0, "granted, the plan goes through: {stderr}");
}

/// The same tweets give the same report on both targets: the demo's raw rows from the local
/// warehouse are loaded into Snowflake's raw table (as Snowpipe loads a file), the dynamic tables
/// are built over them, and `flixops report` on aws-snowflake prints and draws the numbers the
/// local report does. Only what describes the warehouse differs (its name, when rows were loaded).
#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread")]
async fn the_report_on_snowflake_equals_the_local_report_of_the_same_tweets() {
    let local = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(flixops(local.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(flixops(local.path()).args(["report", "-o", "json", "--out", "local.html"]));
    assert_eq!(code, 0, "{stderr}");
    let local_report: Value = serde_json::from_str(&stdout).unwrap();
    let records: Vec<(String, String, i64)> = {
        let conn = duckdb::Connection::open(local.path().join(".flixops/warehouse.duckdb")).unwrap();
        let mut stmt =
            conn.prepare("SELECT CAST(record AS VARCHAR), file_name, file_row_number FROM raw.tweets_raw").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(records.len(), 100);

    let p = Project::new("");
    p.deploy(true).await;
    let client = snowflake_client(p.path()).await;
    let raw = format!("\"{}\".\"RAW\".\"TWEETS_RAW\"", p.database());
    let insert = format!(
        "INSERT INTO {raw} (\"RECORD\", \"FILE_NAME\", \"FILE_ROW_NUMBER\", \"LOADED_AT\") \
         SELECT PARSE_JSON(?), ?, ?, CURRENT_TIMESTAMP()"
    );
    for (record, file, row) in &records {
        client.query_with(&insert, &[&as_loaded(record), file, &row.to_string()]).await.unwrap();
    }
    // fakesnow builds a dynamic table once, at creation: a lag change re-creates them over the data.
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap() + "target_lag = \"5 minutes\"\n";
    std::fs::write(p.path().join("flixops.toml"), toml).unwrap();
    p.deploy(true).await;

    let home = snowflake_home(p.path(), "");
    let (code, stdout, stderr) = output(
        flixops(p.path())
            .args(["report", "--env", "prod", "-o", "json", "--out", "snow.html"])
            .env("SNOWFLAKE_HOME", &home),
    );
    assert_eq!(code, 0, "{stderr}");
    let snow_report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(snow_report["target"], "aws-snowflake");
    assert_eq!(snow_report["source"], format!("Snowflake database {}", p.database()));
    assert!(snow_report["coverage"][0]["newest_load_at"].is_string(), "{snow_report:#}");
    assert_eq!(snow_report["totals"]["tweets"], 100, "{snow_report:#}");
    assert_eq!(numbers(snow_report), numbers(local_report));

    let cells = |path: std::path::PathBuf| {
        let page = crate::common::report_page::parse(&std::fs::read_to_string(path).unwrap());
        assert!(page.loose_digits.is_empty(), "{:?}", page.loose_digits);
        assert_eq!(page.charts, 4);
        page.cells.into_iter().filter(|(k, _)| k.0 != "meta" && k.2 != "newest_load_at").collect::<Vec<_>>()
    };
    assert_eq!(cells(p.path().join("snow.html")), cells(local.path().join("local.html")), "the same page");
}

/// A raw record as Snowpipe loads the parquet row: timestamps as instants with their offset
/// (the file format sets USE_LOGICAL_TYPE), here written the way the models test writes them.
#[cfg(feature = "local")]
fn as_loaded(record: &str) -> String {
    let mut value: Value = serde_json::from_str(record).unwrap();
    for key in ["tweet_created_at", "extracted_at"] {
        let text = value[key].as_str().unwrap().to_string();
        let at = chrono::DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%#z")
            .unwrap_or_else(|e| panic!("{key} = {text}: {e}"));
        value[key] = at.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into();
    }
    value.to_string()
}

/// A report's numbers, without what describes the warehouse it was read from.
#[cfg(feature = "local")]
fn numbers(mut report: Value) -> Value {
    let object = report.as_object_mut().unwrap();
    for key in ["environment", "target", "source", "generated_at", "path"] {
        object.remove(key);
    }
    for query in report["coverage"].as_array_mut().unwrap() {
        query.as_object_mut().unwrap().remove("newest_load_at");
    }
    report
}
