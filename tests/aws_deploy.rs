//! `plan` / `deploy` of the AWS resources against moto's server on 127.0.0.1: first deploy creates
//! everything, a second makes no write call, drift shows in plan and is repaired, a deploy that dies
//! after any write converges on the next run, and bad credentials or region exit 3.
//!
//! Tests share one moto. In-process deploys each run in their own moto account
//! (`x-moto-account-id`); CLI runs use moto's default account and unique project names, so every
//! bucket, role, secret, function and schedule name is their own either way.

use crate::common;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{MotoAccount, cloud_env, flixops, moto_env, moto_sdk, output};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use flixops::aws::lambda::{Artifact, Function};
use flixops::aws::stack::Upstream;
use flixops::aws::{Clients, Session};
use flixops::config::{Config, EnvConfig};
use flixops::plan::{Address, Change, Fields, Inputs, Observed, Outputs, Resource, ResourceError};
use futures::future::BoxFuture;
use serde_json::Value;

/// What a first deploy creates: 11 AWS resources, 11 Snowflake objects, one dynamic table per model.
const RESOURCES: u64 = 11 + 11 + flixops::models::DEFAULT_MODELS.len() as u64;

/// A project on the cloud target with a name no other test uses.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    /// The moto account of in-process deploys (the CLI uses moto's default account).
    account: MotoAccount,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("t{:08x}", fastrand::u32(..));
        let toml = format!(
            "[project]\nname = \"{name}\"\n\n[extract]\nquery = \"#brexit\"\nschedule = \"rate(2 hours)\"\n\n\
             [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\n"
        );
        std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
        Self { dir, name, account: MotoAccount::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn bucket(&self) -> String {
        format!("{}-prod-tweets", self.name)
    }

    /// A small Linux executable standing in for the Lambda's bootstrap; `tag` changes its bytes.
    fn artifact(&self, tag: &str) -> PathBuf {
        let path = self.path().join(format!("bootstrap-{tag}"));
        std::fs::write(&path, common::elf::bootstrap(tag)).unwrap();
        path
    }

    fn config(&self) -> (Config, EnvConfig) {
        let config = Config::load(&self.path().join("flixops.toml")).unwrap();
        let env = config.env(Some("prod")).unwrap().clone();
        (config, env)
    }

    /// Runs the CLI against moto; returns (exit code, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_at(common::moto(), args)
    }

    /// Runs the CLI against `moto` (a test's own, started with other settings), over HTTPS as real
    /// S3 is reached: the bucket's TLS-only policy refuses object calls over plain HTTP.
    fn cli_at(&self, moto: &common::Moto, args: &[&str]) -> (i32, String, String) {
        let mut cmd = flixops(self.path());
        cmd.args(args).envs(cloud_env(self.path())).env("AWS_ENDPOINT_URL", &moto.tls_endpoint);
        cmd.env("SSL_CERT_FILE", &moto.ca_file);
        cmd.env("FLIXOPS_ARTIFACT", self.artifact("v1"));
        output(&mut cmd)
    }

    fn deploy_json(&self) -> Value {
        let (code, stdout, stderr) = self.cli(&["deploy", "--yes", "--output", "json"]);
        assert_eq!(code, 0, "deploy failed:\n{stderr}");
        serde_json::from_str(&stdout).unwrap()
    }
}

/// A peer on 127.0.0.1 that accepts every connection and never answers; returns its port. The
/// connections stay open for the life of the test process.
fn silent_peer() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_never_answers_fails_each_command_within_the_timeout_naming_what_waited() {
    let p = Project::new();
    let silent = format!("http://127.0.0.1:{}", silent_peer());
    let timed = |cmd: &mut std::process::Command| {
        let started = std::time::Instant::now();
        let out = output(cmd.env("FLIXOPS_OPERATION_TIMEOUT_SECS", "2").env("FLIXOPS_CONNECT_TIMEOUT_SECS", "2"));
        (out, started.elapsed())
    };

    // AWS does not answer at all: export iam-policy stops at STS.
    let mut export = flixops(p.path());
    export.args(["export", "iam-policy", "--env", "prod"]).envs(moto_env()).env("AWS_ENDPOINT_URL", &silent);
    let ((code, _, stderr), took) = timed(&mut export);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot reach AWS STS"), "{stderr}");
    assert!(took < std::time::Duration::from_secs(30), "gave up after {took:?}");

    // Lambda does not answer: deploy names the resource that waited and applies nothing.
    let mut deploy = flixops(p.path());
    deploy.args(["deploy", "--yes"]).envs(cloud_env(p.path())).env("AWS_ENDPOINT_URL_LAMBDA", &silent);
    deploy.env("FLIXOPS_ARTIFACT", p.artifact("v1"));
    let ((code, _, stderr), took) = timed(&mut deploy);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("aws_lambda_function.extract") && stderr.contains("FLIXOPS_OPERATION_TIMEOUT_SECS"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(60), "gave up after {took:?}");
    let missing = clients().s3.head_bucket().bucket(p.bucket()).send().await.unwrap_err().into_service_error();
    assert!(missing.is_not_found(), "nothing was applied: {missing:?}");

    // Snowflake does not answer the sign-in: plan says so.
    let home = p.path().join("silent-snowflake");
    std::fs::create_dir_all(&home).unwrap();
    let port = silent.rsplit(':').next().unwrap();
    let connection = format!(
        "[default]\naccount = \"fake\"\nuser = \"u\"\npassword = \"p\"\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"http\"\n"
    );
    std::fs::write(home.join("connections.toml"), connection).unwrap();
    let mut plan = flixops(p.path());
    plan.args(["plan"]).envs(cloud_env(p.path())).env("SNOWFLAKE_HOME", &home);
    let ((code, _, stderr), took) = timed(&mut plan);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no answer to the sign-in within 2 s"), "{stderr}");
    assert!(took < std::time::Duration::from_secs(30), "gave up after {took:?}");
}

/// Sends one operation (by name) to a peer that never answers, the rest to moto.
#[derive(Debug)]
struct Stall {
    operation: &'static str,
    peer: String,
}

impl Intercept for Stall {
    fn name(&self) -> &'static str {
        "Stall"
    }
    fn modify_before_transmit(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().is_some_and(|m| m.name() == self.operation) {
            let request = context.request_mut();
            let path = request.uri().split_once("://").and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()));
            request.set_uri(format!("{}{}", self.peer, path.unwrap_or_default()))?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_never_gets_an_answer_fails_the_deploy_within_the_timeout_saying_what_was_applied() {
    let p = Project::new();
    let stall = Stall { operation: "CreateFunction", peer: format!("http://127.0.0.1:{}", silent_peer()) };
    let timeouts =
        flixops::timeouts::Timeouts::from_env(&|k| (k == "FLIXOPS_OPERATION_TIMEOUT_SECS").then(|| "2".into()));
    let sdk = moto_sdk().to_builder().timeout_config(timeouts.unwrap().aws()).build();
    let interceptors = [SharedInterceptor::new(p.account.clone()), SharedInterceptor::new(stall)];
    let session = Session::from_sdk("prod", &sdk, None, &interceptors).await.unwrap();
    let (config, env) = p.config();
    let artifact = Artifact::load(Some(&p.artifact("v1"))).unwrap();
    let started = std::time::Instant::now();
    let prepared = flixops::deploy::prepare_in(session, &config, &env, artifact, upstream()).await.unwrap();
    let err = prepared.apply().await.map(drop).unwrap_err().to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "gave up after {:?}", started.elapsed());
    assert!(
        err.contains("aws_lambda_function.extract")
            && err.contains("FLIXOPS_OPERATION_TIMEOUT_SECS")
            && err.contains("aws_s3_bucket.lake")
            && err.contains("stopped at: aws_lambda_function.extract"),
        "names the resource that waited and what was applied before it: {err}"
    );
}

/// Clients on moto for checking what deploy did, outside flixops (moto's default account, where
/// the CLI runs).
fn clients() -> Clients {
    Clients::new(&moto_sdk(), &[SharedInterceptor::new(common::OverTls)])
}

/// Clients in one test's own moto account (in-process deploys).
fn clients_in(account: &MotoAccount) -> Clients {
    Clients::new(&moto_sdk(), &[SharedInterceptor::new(account.clone())])
}

/// The function's log group as CloudWatch Logs lists it.
async fn log_group(c: &Clients, p: &Project) -> Option<aws_sdk_cloudwatchlogs::types::LogGroup> {
    let name = format!("/aws/lambda/{}-prod-extract", p.name);
    let groups = c.logs.describe_log_groups().log_group_name_prefix(&name).send().await.unwrap();
    groups.log_groups().iter().find(|g| g.log_group_name() == Some(name.as_str())).cloned()
}

/// A role's inline policy, decoded.
async fn policy_text(c: &Clients, role: &str, name: &str) -> String {
    let out = c.iam.get_role_policy().role_name(role).policy_name(name).send().await.unwrap();
    percent_encoding::percent_decode_str(out.policy_document()).decode_utf8().unwrap().into_owned()
}

fn writes(report: &Value) -> Vec<String> {
    report["write_calls"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

fn operations(calls: &[String]) -> Vec<&str> {
    calls.iter().map(|c| c.rsplit(':').next().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_deploy_creates_everything_and_the_second_makes_no_write_call() {
    let p = Project::new();
    let (code, stdout, stderr) = p.cli(&["plan", "--detailed-exitcode", "--output", "json"]);
    assert_eq!(code, 2, "changes pending → exit 2\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (plan["add"].as_u64(), plan["change"].as_u64(), plan["destroy"].as_u64()),
        (Some(RESOURCES), Some(0), Some(0)),
        "11 AWS + 11 Snowflake resources + one dynamic table per model"
    );
    let c = clients();
    let missing = c.s3.head_bucket().bucket(p.bucket()).send().await.unwrap_err().into_service_error();
    assert!(missing.is_not_found(), "plan must not create the bucket: {missing:?}");

    let first = p.deploy_json();
    let first_writes = writes(&first);
    let ops = operations(&first_writes);
    for op in
        ["CreateBucket", "PutPublicAccessBlock", "PutBucketPolicy", "CreateRole", "CreateFunction", "CreateSchedule"]
    {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }

    // What a user would check in the console.
    let pab = c.s3.get_public_access_block().bucket(p.bucket()).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let versioning = c.s3.get_bucket_versioning().bucket(p.bucket()).send().await.unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let ownership = c.s3.get_bucket_ownership_controls().bucket(p.bucket()).send().await.unwrap();
    let ownership = ownership.ownership_controls().unwrap().rules()[0].object_ownership().as_str().to_string();
    assert_eq!(ownership, "BucketOwnerEnforced", "ACLs disabled");
    let encryption = c.s3.get_bucket_encryption().bucket(p.bucket()).send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration().unwrap().rules()[0];
    let algorithm = rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str();
    assert_eq!(algorithm, "AES256");
    let lifecycle = c.s3.get_bucket_lifecycle_configuration().bucket(p.bucket()).send().await.unwrap();
    let state = lifecycle.rules().iter().find(|r| r.id() == Some("flixops-prod-state-versions")).unwrap();
    assert_eq!(state.filter().and_then(|f| f.prefix()), Some("flixops/_state/"));
    assert_eq!(state.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()), Some(7));
    let policy = c.s3.get_bucket_policy().bucket(p.bucket()).send().await.unwrap();
    assert!(policy.policy().unwrap().contains("aws:SecureTransport"), "TLS-only policy");
    let role = c.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await.unwrap();
    let trust = flixops::aws::policy::canonical(role.role().unwrap().assume_role_policy_document().unwrap()).unwrap();
    let trust: Value = serde_json::from_str(&trust).unwrap();
    let external_id = &trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"];
    let external_id = external_id.as_str().or(external_id[0].as_str()).unwrap_or_else(|| panic!("{trust}"));
    let random = external_id.strip_prefix("flixops-").unwrap_or_default();
    assert!(random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()), "a random external id: {trust}");
    let boundary = format!("arn:aws:iam::123456789012:policy/{}-prod-flixops-boundary", p.name);
    for kind in ["snowflake", "extract", "scheduler"] {
        let role = c.iam.get_role().role_name(format!("{}-prod-{kind}", p.name)).send().await.unwrap();
        let attached = role.role().unwrap().permissions_boundary().and_then(|b| b.permissions_boundary_arn());
        assert_eq!(attached, Some(boundary.as_str()), "{kind} role is capped by the boundary");
    }
    let function = c.lambda.get_function().function_name(format!("{}-prod-extract", p.name)).send().await.unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(config.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    let env = config.environment().unwrap().variables().unwrap();
    let secret =
        c.secrets.describe_secret().secret_id(format!("flixops/{}/prod/x-bearer-token", p.name)).send().await.unwrap();
    assert_eq!(
        env.get("FLIXOPS_X_TOKEN_SECRET_ARN").map(String::as_str),
        secret.arn(),
        "secret ARN flows into the function"
    );
    assert_eq!(env.get("FLIXOPS_BUCKET"), Some(&p.bucket()));
    let schedule = c.scheduler.get_schedule().name(format!("{}-prod-extract", p.name)).send().await.unwrap();
    assert_eq!(schedule.schedule_expression(), Some("rate(2 hours)"));
    assert_eq!(schedule.target().unwrap().arn(), config.function_arn().unwrap(), "schedule invokes the function");
    let group = log_group(&c, &p).await.expect("deploy creates the function's log group");
    assert_eq!(group.retention_in_days(), Some(30), "the default retention");
    assert!(
        !policy_text(&c, &format!("{}-prod-extract", p.name), "extract").await.contains("logs:CreateLogGroup"),
        "the function never needs to create its log group"
    );
    let notes = first["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("about five minutes")), "{notes:?}");

    let second = p.deploy_json();
    assert_eq!(writes(&second), Vec::<String>::new(), "a converged deploy makes zero write calls");
    assert_eq!(second["notes"], serde_json::json!([]), "nothing changed, nothing to wait for");
    assert_eq!(second["plan"]["add"].as_u64().unwrap() + second["plan"]["change"].as_u64().unwrap(), 0);
    let (code, stdout, stderr) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "no changes → exit 0\n{stderr}");
    assert!(stdout.contains("No changes."), "the plan is on stdout: {stdout}");
}

/// `deploy` writes the extractor's first checkpoint, so no run reads a missing key (a 403 to a role
/// that may not list the bucket: docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html), and
/// never over an existing one; `plan` estimates the X spend from what the runs recorded.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_seeds_the_checkpoint_once_and_plan_estimates_the_x_spend_from_it() {
    let p = Project::new();
    let (code, stdout, stderr) = p.cli(&["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ aws_s3_object.checkpoint"), "{stdout}");
    assert!(stdout.contains("X API spend: unknown until the first run"), "{stdout}");
    p.deploy_json();

    let c = clients();
    let key = "flixops/_state/extract.json";
    let read = || async {
        c.s3.get_object().bucket(p.bucket()).key(key).send().await.unwrap().body.collect().await.unwrap().to_vec()
    };
    let seeded = flixops::extract::checkpoint::parse(&read().await).unwrap();
    assert_eq!(seeded, flixops::extract::checkpoint::Checkpoint::empty("#brexit"), "an empty state for the query");

    // What two runs of the function record this month: 100 posts.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let ran = flixops::extract::checkpoint::Checkpoint {
        month: flixops::extract::checkpoint::MonthUsage {
            month,
            posts: 100,
            runs: 2,
            included: flixops::extract::checkpoint::Included { users: 40, posts: 10 },
        },
        ..seeded
    };
    let body = serde_json::to_vec(&ran).unwrap();
    c.s3.put_object().bucket(p.bucket()).key(key).body(body.clone().into()).send().await.unwrap();
    let (code, stdout, stderr) = p.cli(&["plan", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    // rate(2 hours): 360 runs in 30 days × (50 posts × $0.005 + 5 included posts × $0.005 + 20
    // included users × $0.010), the includes counted as billed by default.
    let usd = plan["x_spend"]["monthly_usd"].as_f64().unwrap();
    assert!((usd - 171.0).abs() < 1e-9, "{plan}");
    let (_, stdout, _) = p.cli(&["plan"]);
    let line = "X API spend: ≈ $171.00/month (360 runs × 50.0 posts at $0.005 per post, + 5.0 included posts at \
                $0.005 and 20.0 included users at $0.01 a run, counted as billed)";
    assert!(stdout.contains(line), "{stdout}");

    let again = p.deploy_json();
    assert_eq!(writes(&again), Vec::<String>::new(), "an existing checkpoint is not written again");
    assert_eq!(read().await, body, "and never overwritten");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_shows_in_plan_and_deploy_repairs_exactly_it() {
    let p = Project::new();
    p.deploy_json();
    let c = clients();
    c.s3.delete_public_access_block().bucket(p.bucket()).send().await.unwrap();
    let role = format!("{}-prod-extract", p.name);
    let broad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::*"}]}"#;
    c.iam.put_role_policy().role_name(&role).policy_name("extract").policy_document(broad).send().await.unwrap();
    c.iam.delete_role_permissions_boundary().role_name(&role).send().await.unwrap();
    let wide =
        c.iam.create_policy().policy_name(format!("{}-wide", p.name)).policy_document(broad).send().await.unwrap();
    let wide = wide.policy().unwrap().arn().unwrap().to_string();
    c.iam.attach_role_policy().role_name(&role).policy_arn(&wide).send().await.unwrap();
    let group = format!("/aws/lambda/{}-prod-extract", p.name);
    c.logs.put_retention_policy().log_group_name(&group).retention_in_days(7).send().await.unwrap();
    // Encrypted, but with another key than the one Snowflake's role can read without a KMS grant.
    let kms = aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
        .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .build()
        .unwrap();
    let kms =
        aws_sdk_s3::types::ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(kms).build();
    let kms = aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder().rules(kms).build().unwrap();
    c.s3.put_bucket_encryption().bucket(p.bucket()).server_side_encryption_configuration(kms).send().await.unwrap();
    c.s3.delete_bucket_ownership_controls().bucket(p.bucket()).send().await.unwrap();

    let (code, stdout, stderr) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.contains("  ~ aws_s3_bucket.lake\n"), "{stdout}");
    assert!(stdout.contains("~ public_access_block") && stdout.contains("-> \"all four settings on\""), "{stdout}");
    assert!(stdout.contains("~ default_encryption  = \"aws:kms\" -> \"AES256\""), "{stdout}");
    assert!(stdout.contains("~ object_ownership    = \"none\" -> \"BucketOwnerEnforced\""), "{stdout}");
    assert!(stdout.contains("  ~ aws_iam_role.extract\n") && stdout.contains("arn:aws:s3:::*"), "{stdout}");
    assert!(stdout.contains("~ permissions_boundary = \"none\" -> \"arn:aws:iam::123456789012:policy/"), "{stdout}");
    assert!(
        stdout.contains("~ attached_policies ") && stdout.contains(&format!("= \"{wide}\" -> \"none\"")),
        "{stdout}"
    );
    assert!(stdout.contains("  ~ aws_cloudwatch_log_group.extract\n"), "{stdout}");
    assert!(stdout.contains("~ retention_days = \"7\" -> \"30\""), "{stdout}");
    assert!(stdout.contains("Plan: 0 to add, 3 to change, 0 to destroy."), "{stdout}");

    let repair = p.deploy_json();
    let calls = writes(&repair);
    assert_eq!(
        operations(&calls),
        [
            "PutPublicAccessBlock",
            "PutBucketOwnershipControls",
            "PutBucketEncryption",
            "PutRolePermissionsBoundary",
            "PutRolePolicy",
            "DetachRolePolicy",
            "PutRetentionPolicy"
        ],
        "only the drifted settings are written, the boundary before the policy"
    );
    assert_eq!(log_group(&c, &p).await.unwrap().retention_in_days(), Some(30));
    let (code, _, stderr) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{stderr}");

    // The retention is the project's to choose.
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap();
    std::fs::write(p.path().join("flixops.toml"), format!("{toml}log_retention_days = 90\n")).unwrap();
    assert_eq!(operations(&writes(&p.deploy_json())), ["PutRetentionPolicy"]);
    assert_eq!(log_group(&c, &p).await.unwrap().retention_in_days(), Some(90));

    // A new binary: only the code is updated, detected by CodeSha256.
    let mut cmd = flixops(p.path());
    cmd.args(["deploy", "--yes", "--output", "json"])
        .envs(cloud_env(p.path()))
        .env("FLIXOPS_ARTIFACT", p.artifact("v2"));
    let (code, stdout, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(operations(&writes(&report)), ["UpdateFunctionCode"]);
}

/// The plan line of one field (`+ name = …` or `~ name = …`), with the padding collapsed.
fn field_line(plan: &str, sign: char, field: &str) -> Option<String> {
    let line = plan.lines().find(|l| l.trim_start().starts_with(&format!("{sign} {field} ")))?;
    Some(line.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What moto holds of the one-run-at-a-time settings: reserved concurrency, the function's async
/// retries and event age, the schedule's retries and event age.
async fn one_run_settings(
    c: &Clients,
    p: &Project,
) -> (Option<i32>, (Option<i32>, Option<i32>), (Option<i32>, Option<i32>)) {
    let function = format!("{}-prod-extract", p.name);
    let reserved = c.lambda.get_function_concurrency().function_name(&function).send().await.unwrap();
    let invoke = c.lambda.get_function_event_invoke_config().function_name(&function).send().await.unwrap();
    let schedule = c.scheduler.get_schedule().name(&function).send().await.unwrap();
    let retry = schedule.target().unwrap().retry_policy().unwrap();
    (
        reserved.reserved_concurrent_executions(),
        (invoke.maximum_retry_attempts(), invoke.maximum_event_age_in_seconds()),
        (retry.maximum_retry_attempts(), retry.maximum_event_age_in_seconds()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn one_run_at_a_time_is_planned_applied_converged_and_repaired_after_drift() {
    let p = Project::new();
    let (code, plan, stderr) = p.cli(&["plan"]);
    assert_eq!(code, 0, "{stderr}");
    // rate(2 hours): an invocation that cannot start waits at most one interval.
    for (sign_field, value) in [
        ("reserved_concurrency", "\"1\""),
        ("async_max_retry_attempts", "\"0\""),
        ("async_max_event_age_secs", "\"7200\""),
        ("max_retry_attempts", "\"0\""),
        ("max_event_age_secs", "\"7200\""),
    ] {
        let line = field_line(&plan, '+', sign_field).unwrap_or_else(|| panic!("{sign_field} not planned:\n{plan}"));
        assert_eq!(line, format!("+ {sign_field} = {value}"), "{plan}");
    }

    let first = writes(&p.deploy_json());
    for op in ["PutFunctionConcurrency", "PutFunctionEventInvokeConfig"] {
        assert!(operations(&first).contains(&op), "{op} missing from {first:?}");
    }
    let c = clients();
    assert_eq!(one_run_settings(&c, &p).await, (Some(1), (Some(0), Some(7200)), (Some(0), Some(7200))));
    assert_eq!(writes(&p.deploy_json()), Vec::<String>::new(), "a converged deploy makes zero write calls");

    // Someone widens all three by hand: Lambda's and Scheduler's own defaults, five executions.
    let function = format!("{}-prod-extract", p.name);
    c.lambda
        .put_function_concurrency()
        .function_name(&function)
        .reserved_concurrent_executions(5)
        .send()
        .await
        .unwrap();
    let defaults = c.lambda.put_function_event_invoke_config().function_name(&function);
    defaults.maximum_retry_attempts(2).maximum_event_age_in_seconds(21600).send().await.unwrap();
    let schedule = c.scheduler.get_schedule().name(&function).send().await.unwrap();
    let target = schedule.target().unwrap();
    let retry = aws_sdk_scheduler::types::RetryPolicy::builder()
        .maximum_retry_attempts(185)
        .maximum_event_age_in_seconds(86400)
        .build();
    let target = aws_sdk_scheduler::types::Target::builder()
        .arn(target.arn())
        .role_arn(target.role_arn())
        .retry_policy(retry)
        .build()
        .unwrap();
    let window = aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
        .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
        .build()
        .unwrap();
    let update = c.scheduler.update_schedule().name(&function).schedule_expression("rate(2 hours)");
    let update = update.state(aws_sdk_scheduler::types::ScheduleState::Enabled);
    update.target(target).flexible_time_window(window).send().await.unwrap();

    let (code, plan, stderr) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{stderr}");
    for (field, before, after) in [
        ("reserved_concurrency", "5", "1"),
        ("async_max_retry_attempts", "2", "0"),
        ("async_max_event_age_secs", "21600", "7200"),
        ("max_retry_attempts", "185", "0"),
        ("max_event_age_secs", "86400", "7200"),
    ] {
        let line = field_line(&plan, '~', field).unwrap_or_else(|| panic!("{field} drift not shown:\n{plan}"));
        assert_eq!(line, format!("~ {field} = \"{before}\" -> \"{after}\""), "{plan}");
    }
    assert!(plan.contains("Plan: 0 to add, 2 to change, 0 to destroy."), "{plan}");

    let repair = writes(&p.deploy_json());
    assert_eq!(
        operations(&repair),
        ["PutFunctionConcurrency", "PutFunctionEventInvokeConfig", "UpdateSchedule"],
        "exactly the drifted settings are written"
    );
    assert_eq!(one_run_settings(&c, &p).await, (Some(1), (Some(0), Some(7200)), (Some(0), Some(7200))));
    assert_eq!(writes(&p.deploy_json()), Vec::<String>::new(), "converged again");

    let (_, stdout, _) = p.cli(&["doctor", "--output", "json"]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "one run at a time").unwrap();
    assert_eq!(check["status"], "ok", "{check}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_whose_quota_leaves_nothing_to_reserve_deploys_the_rest_and_says_how_to_fix_it() {
    // New accounts often get 10 concurrent executions, all of which Lambda keeps unreserved.
    let moto = common::start_moto(&[("MOTO_LAMBDA_CONCURRENCY_QUOTA", "10")]);
    let p = Project::new();
    let why = "aws_lambda_function.extract: runs without reserved concurrency, so two extraction runs can overlap: \
               the account's Lambda concurrency quota is 10 and Lambda keeps 10 of it unreserved, which leaves none \
               to reserve; fix: request a quota increase for Lambda \"Concurrent executions\" in Service Quotas";
    let (code, plan, stderr) = p.cli_at(&moto, &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains(&format!("\nNote: {why}")) && plan.contains("--quota-code L-B99A9384"), "{plan}");
    assert!(!plan.contains("reserved_concurrency"), "not planned where the account cannot have it: {plan}");
    assert!(field_line(&plan, '+', "async_max_retry_attempts").is_some(), "the rest is planned: {plan}");

    let (code, deploy, stderr) = p.cli_at(&moto, &["deploy", "--yes"]);
    assert_eq!(code, 0, "the refusal does not fail the deploy: {stderr}");
    assert!(deploy.contains("Apply complete!") && deploy.contains(&format!("\nWarning: {why}")), "{deploy}");
    let c = Clients::new(&common::moto_sdk_at(&moto.endpoint), &[]);
    assert_eq!(one_run_settings(&c, &p).await, (None, (Some(0), Some(7200)), (Some(0), Some(7200))));

    let (code, stdout, stderr) = p.cli_at(&moto, &["deploy", "--yes", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let again: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(writes(&again), Vec::<String>::new(), "converged: nothing is retried in vain");
    let notes = again["applied"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{again:#}");
    assert!(
        format!("{}: {}", notes[0]["address"].as_str().unwrap(), notes[0]["message"].as_str().unwrap())
            .starts_with(why)
    );
    let (code, _, stderr) = p.cli_at(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a note is not a change: {stderr}");

    let (_, _, doctor) = p.cli_at(&moto, &["doctor"]);
    let line =
        doctor.lines().position(|l| l.starts_with("[!] one run at a time")).unwrap_or_else(|| panic!("{doctor}"));
    let lines: Vec<&str> = doctor.lines().collect();
    assert!(lines[line].contains("has no reserved concurrency, so two extraction runs can overlap"), "{doctor}");
    assert!(lines[line + 1].contains("fix: request a quota increase for Lambda"), "{doctor}");
    drop(moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reservation_refused_between_plan_and_apply_is_a_warning_and_the_rest_is_applied() {
    // Quota 102, of which Lambda keeps 100 unreserved: one execution can be reserved, at plan time.
    let moto = common::start_moto(&[("MOTO_LAMBDA_CONCURRENCY_QUOTA", "102")]);
    let sdk = common::moto_sdk_at(&moto.endpoint);
    let p = Project::new();
    let (config, env) = p.config();
    let session = Session::from_sdk("prod", &sdk, None, &[SharedInterceptor::new(common::OverTls)]).await.unwrap();
    let artifact = Artifact::load(Some(&p.artifact("v1"))).unwrap();
    let prepared = flixops::deploy::prepare_in(session, &config, &env, artifact, upstream()).await.unwrap();
    assert!(prepared.plan.notes.is_empty(), "{:?}", prepared.plan.notes);

    // Meanwhile another function takes two.
    let c = Clients::new(&sdk, &[]);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = c.iam.create_role().role_name("other-team").assume_role_policy_document(trust).send().await.unwrap();
    let zip = Artifact::load(Some(&p.artifact("other"))).unwrap().zip;
    c.lambda
        .create_function()
        .function_name("other-team")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().unwrap().arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(zip)).build(),
        )
        .send()
        .await
        .unwrap();
    c.lambda
        .put_function_concurrency()
        .function_name("other-team")
        .reserved_concurrent_executions(2)
        .send()
        .await
        .unwrap();

    let report = prepared.apply().await.unwrap();
    assert!(operations(&report.write_calls).contains(&"PutFunctionConcurrency"), "it was tried");
    let notes: Vec<String> = report.applied.notes.iter().map(|n| format!("{}: {}", n.address, n.message)).collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("aws_lambda_function.extract: runs without reserved concurrency")
            && notes[0].contains("Lambda refused to reserve one execution")
            && notes[0].contains("below its minimum value of [100]")
            && notes[0].contains("Service Quotas"),
        "{notes:?}"
    );
    assert_eq!(one_run_settings(&c, &p).await, (None, (Some(0), Some(7200)), (Some(0), Some(7200))));
    drop(moto);
}

/// `plan --out FILE` then `deploy FILE` applies exactly the reviewed plan, as terraform's saved
/// plans do: without asking, and refused (exit 1, nothing written) when the live state, the
/// configuration or the planned change moved since the plan was made, naming what moved.
#[test]
fn a_saved_plan_is_applied_exactly_or_refused_naming_what_moved() {
    let p = Project::new();
    let file = p.path().join("prod.plan").display().to_string();
    let (code, stdout, stderr) = p.cli(&["plan", "--out", &file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ aws_s3_bucket.lake"), "the plan is on stdout: {stdout}");
    assert!(stdout.contains(&format!("Saved the plan to {file}. Nothing was changed.")), "{stdout}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!((saved["format"].as_str(), saved["env"].as_str()), (Some("flixops-plan/1"), Some("prod")));
    assert_eq!(saved["flixops_version"], env!("CARGO_PKG_VERSION"));

    let (code, stdout, stderr) = p.cli(&["deploy", &file, "--output", "json"]);
    assert_eq!(code, 0, "no --yes and no terminal needed: the plan was reviewed\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["plan"]["resources"], saved["plan"]["resources"], "exactly the saved plan was applied");
    assert!(!writes(&report).is_empty());

    let (code, _, stderr) = p.cli(&["deploy", &file]);
    assert_eq!(code, 1, "the same plan twice: {stderr}");
    assert!(
        stderr.contains(&format!("{file} no longer matches what it was made from, so nothing was applied")),
        "{stderr}"
    );
    assert!(stderr.contains("aws_s3_bucket.lake: created since the plan was made"), "{stderr}");

    // A converged plan, then a hand edit before it is applied.
    let (code, _, stderr) = p.cli(&["plan", "--out", &file]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    for value in ["DenyInsecureTransport", "Enabled", "arn:aws:iam::", "AES256"] {
        assert!(!text.contains(value), "values read are kept as checksums only, `{value}` is in:\n{text}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let suspended = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
        .build();
    let put = clients().s3.put_bucket_versioning().bucket(p.bucket()).versioning_configuration(suspended);
    rt.block_on(put.send()).unwrap();
    let (code, stdout, stderr) = p.cli(&["deploy", &file, "--output", "json"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("aws_s3_bucket.lake: versioning changed since the plan was made"), "{stderr}");
    assert!(stderr.contains(&format!("run `flixops plan --out {file}` again")), "{stderr}");
    let error: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((error["error"]["kind"].as_str(), error["error"]["exit_code"].as_u64()), (Some("plan_stale"), Some(1)));
    let versioning = rt.block_on(clients().s3.get_bucket_versioning().bucket(p.bucket()).send()).unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Suspended"), "nothing was applied");

    // The configuration changes after the plan.
    let (code, _, stderr) = p.cli(&["plan", "--out", &file]);
    assert_eq!(code, 0, "{stderr}");
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap();
    std::fs::write(p.path().join("flixops.toml"), format!("{toml}log_retention_days = 90\n")).unwrap();
    let (code, _, stderr) = p.cli(&["deploy", &file]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("flixops.toml or models/ changed since the plan was made"), "{stderr}");
    std::fs::write(p.path().join("flixops.toml"), &toml).unwrap();

    // Another artifact than the plan's: the same state, another change.
    let v2 = p.artifact("v2").display().to_string();
    let (code, _, stderr) = p.cli(&["deploy", &file, "--artifact", &v2]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("aws_lambda_function.extract: the change planned now differs from the saved one"),
        "{stderr}"
    );

    let (code, _, stderr) = p.cli(&["deploy", &file, "--env", "dev"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a plan for environment `prod`, not `dev`"), "{stderr}");

    // Snowpipe loads a file meanwhile (S3 notifies its queue, the peer loads it): the pipe's
    // status moves by itself, the plan stands.
    let text = common::page("two_tweets.jsonl");
    let page: flixops::extract::tweet::Page = serde_json::from_str(&text).unwrap();
    let (batch, _) = page.to_batch("#brexit", chrono::Utc::now().timestamp_micros());
    let body = flixops::extract::parquet::encode(&batch).unwrap();
    let key = format!("flixops/tweets/dt={}/meanwhile-0000.parquet", chrono::Utc::now().format("%Y-%m-%d"));
    let tls = aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(common::OverTls);
    let s3 = Clients::new(&moto_sdk(), &[tls]).s3;
    rt.block_on(s3.put_object().bucket(p.bucket()).key(&key).body(body.into()).send()).unwrap();
    let status = format!("SELECT SYSTEM$PIPE_STATUS('{}.RAW.TWEETS_PIPE') AS S", p.name.to_uppercase());
    let snowflake = rt.block_on(common::snowflake_client(p.path()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = rt.block_on(snowflake.query(&status)).unwrap();
        let json: Value = serde_json::from_str(&flixops::snowflake::text(&rows[0], "S")).unwrap();
        if json["lastIngestedTimestamp"].is_string() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the file loaded within 30 s: {json}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, stdout, stderr) = p.cli(&["deploy", &file, "--output", "json", "-v"]);
    assert_eq!(code, 0, "the reviewed repair applies: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(operations(&writes(&report)), ["PutBucketVersioning"], "exactly the planned change");
    for line in [
        "read aws_s3_bucket.lake: exists",
        "read snowflake_pipe.tweets: exists",
        "Update aws_s3_bucket.lake: versioning",
        "AWS call S3:PutBucketVersioning",
    ] {
        assert!(stderr.contains(line), "-v shows each resource read and written: `{line}` missing from\n{stderr}");
    }
    let (code, _, stderr) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "converged: {stderr}");
}

#[test]
fn deploy_without_a_terminal_asks_for_yes_and_changes_nothing() {
    let p = Project::new();
    let (code, stdout, stderr) = p.cli(&["deploy"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pass --yes"), "{stderr}");
    assert!(stdout.contains("+ aws_s3_bucket.lake"), "the plan is shown first, on stdout: {stdout}");
    let (code, _, _) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "nothing was applied");
}

/// Stands in for a Snowflake resource (issue: Snowflake resources) with fixed outputs.
struct StandIn {
    address: Address,
    outputs: Outputs,
}

impl Resource for StandIn {
    fn address(&self) -> Address {
        self.address.clone()
    }
    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
        Box::pin(async move { Ok(Some(Observed { fields: Fields::new(), outputs: self.outputs.clone() })) })
    }
    fn desired(&self, _inputs: &Inputs) -> Fields {
        Fields::new()
    }
    fn apply<'a>(
        &'a self,
        _: &'a Change,
        _: Option<&'a Observed>,
        _: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
        Box::pin(async move { Ok(self.outputs.clone()) })
    }
    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
        Box::pin(async { Ok(()) })
    }
}

const SNOWFLAKE_USER: &str = "arn:aws:iam::999999999999:user/sf-abc123";
/// The external ID the stand-in integration has (a real one is random, read from DESC INTEGRATION).
const EXTERNAL_ID: &str = "flixops-5f0c1e2d3b4a69788796a5b4c3d2e1f0";
const PIPE_QUEUE: &str = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDA-queue";

fn upstream() -> Upstream {
    upstream_with(PIPE_QUEUE)
}

/// The stand-ins, with the pipe's queue at `queue`.
fn upstream_with(queue: &str) -> Upstream {
    let integration = Address::new("snowflake_storage_integration", "lake");
    let pipe = Address::new("snowflake_pipe", "tweets");
    Upstream {
        integration: Some(integration.clone()),
        pipe: Some(pipe.clone()),
        resources: vec![
            Box::new(StandIn {
                address: integration,
                outputs: [("iam_user_arn".into(), SNOWFLAKE_USER.into()), ("external_id".into(), EXTERNAL_ID.into())]
                    .into(),
            }),
            Box::new(StandIn { address: pipe, outputs: [("notification_channel".into(), queue.into())].into() }),
        ],
    }
}

/// A session in `account`, with `extra` interceptors after it.
async fn session(account: &MotoAccount, extra: &[SharedInterceptor]) -> Session {
    let mut interceptors = vec![SharedInterceptor::new(account.clone())];
    interceptors.extend(extra.iter().cloned());
    let session = Session::from_sdk("prod", &moto_sdk(), None, &interceptors).await.unwrap();
    assert_eq!(session.account_id, account.0, "STS answers with the test's own account");
    session
}

/// One in-process deploy with the Snowflake stand-ins, in the project's own moto account; returns
/// the write calls or the error text.
async fn deploy_in_process(p: &Project, extra: &[SharedInterceptor]) -> Result<Vec<String>, String> {
    deploy_with(p, extra, upstream()).await
}

/// [`deploy_in_process`] with the given Snowflake stand-ins.
async fn deploy_with(p: &Project, extra: &[SharedInterceptor], upstream: Upstream) -> Result<Vec<String>, String> {
    let (config, env) = p.config();
    let artifact = Artifact::load(Some(&p.artifact("v1"))).unwrap();
    let prepared = flixops::deploy::prepare_in(session(&p.account, extra).await, &config, &env, artifact, upstream)
        .await
        .map_err(|e| e.to_string())?;
    prepared.apply().await.map(|r| r.write_calls).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_flow_into_the_trust_and_the_notification_merges_with_existing_rules() {
    let p = Project::new();
    let c = clients_in(&p.account);
    c.s3.create_bucket().bucket(p.bucket()).send().await.unwrap();
    // Written as the console writes it, capitalised (S3 takes either case).
    let suffix = aws_sdk_s3::types::FilterRule::builder()
        .name(aws_sdk_s3::types::FilterRuleName::from("Suffix"))
        .value(".parquet")
        .build();
    let theirs = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("other-team")
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:audit")
        .events(aws_sdk_s3::types::Event::from("s3:ObjectRemoved:*"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(aws_sdk_s3::types::S3KeyFilter::builder().filter_rules(suffix).build())
                .build(),
        )
        .build()
        .unwrap();
    let config = aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(theirs).build();
    c.s3.put_bucket_notification_configuration()
        .bucket(p.bucket())
        .notification_configuration(config)
        .send()
        .await
        .unwrap();

    let calls = deploy_in_process(&p, &[]).await.unwrap();
    assert!(operations(&calls).contains(&"PutBucketNotificationConfiguration"), "{calls:?}");
    assert!(!operations(&calls).contains(&"CreateBucket"), "the existing bucket is adopted: {calls:?}");

    let notification = c.s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    let mut rules: Vec<(&str, &str)> =
        notification.queue_configurations().iter().map(|q| (q.id().unwrap(), q.queue_arn())).collect();
    rules.sort();
    assert_eq!(
        rules,
        [("flixops-prod-snowpipe", PIPE_QUEUE), ("other-team", "arn:aws:sqs:us-east-1:123456789012:audit")]
    );
    // S3 answers the rule names capitalised, which the SDK's enum does not know: flixops reads its
    // prefix from the raw name, so the next deploy below finds nothing to change.
    let filters: Vec<(&str, &str)> = notification
        .queue_configurations()
        .iter()
        .flat_map(|q| q.filter().and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default())
        .map(|r| (r.name().unwrap().as_str(), r.value().unwrap()))
        .collect();
    assert!(filters.contains(&("Prefix", "flixops/tweets/")), "{filters:?}");
    assert!(filters.contains(&("Suffix", ".parquet")), "the other rule's filter is kept: {filters:?}");

    let role = c.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await.unwrap();
    let trust: Value = serde_json::from_str(
        &flixops::aws::policy::canonical(role.role().unwrap().assume_role_policy_document().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"][0], SNOWFLAKE_USER, "the integration's IAM user is trusted");

    assert_eq!(deploy_in_process(&p, &[]).await.unwrap(), Vec::<String>::new(), "converged");
}

/// Another team's queue rule on object creation under `prefix`.
fn their_rule(prefix: &str) -> aws_sdk_s3::types::QueueConfiguration {
    let filter = aws_sdk_s3::types::FilterRule::builder()
        .name(aws_sdk_s3::types::FilterRuleName::from("Prefix"))
        .value(prefix)
        .build();
    let theirs = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("analytics")
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:analytics")
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:Put"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(aws_sdk_s3::types::S3KeyFilter::builder().filter_rules(filter).build())
                .build(),
        )
        .build()
        .unwrap();
    theirs
}

/// Puts [`their_rule`] on the project's bucket.
async fn foreign_rule(c: &Clients, p: &Project, prefix: &str) {
    let config =
        aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(their_rule(prefix)).build();
    let put = c.s3.put_bucket_notification_configuration().bucket(p.bucket()).notification_configuration(config);
    put.send().await.unwrap();
}

/// Another writer that wins the race: flixops' notification write lands as their configuration
/// (only their rule), as if they had written just after it.
#[derive(Debug)]
struct AnotherWriter;

impl Intercept for AnotherWriter {
    fn name(&self) -> &'static str {
        "AnotherWriter"
    }
    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_s3::operation::put_bucket_notification_configuration::PutBucketNotificationConfigurationInput;
        if let Some(input) = context.input_mut().downcast_mut::<PutBucketNotificationConfigurationInput>() {
            let theirs = aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(their_rule("exports/"))
                .build();
            input.notification_configuration = Some(theirs);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_replaced_by_another_writer_is_found_when_read_back() {
    let p = Project::new();
    let err = deploy_in_process(&p, &[SharedInterceptor::new(AnotherWriter)]).await.expect_err("ours is gone");
    assert!(
        err.contains("rule `flixops-prod-snowpipe` →")
            && err.contains("another writer replaced the configuration")
            && err.contains("stopped at: aws_s3_bucket_notification.snowpipe"),
        "{err}"
    );
    deploy_in_process(&p, &[]).await.unwrap();
    let c = clients_in(&p.account);
    let notification = c.s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    let mut ids: Vec<_> = notification.queue_configurations().iter().map(|q| q.id().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["analytics", "flixops-prod-snowpipe"], "the rerun merges ours back in");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_overlapping_ours_stops_the_plan_and_one_on_another_prefix_is_kept() {
    let p = Project::new();
    let c = clients_in(&p.account);
    c.s3.create_bucket().bucket(p.bucket()).send().await.unwrap();
    // Another team's rule on a prefix that contains ours: S3 would refuse ours as ambiguous.
    foreign_rule(&c, &p, "flixops/").await;
    let err = deploy_in_process(&p, &[]).await.expect_err("overlapping rules");
    assert!(
        err.contains(&format!(
            "bucket `{}` already has rule `analytics` → arn:aws:sqs:us-east-1:123456789012:analytics",
            p.bucket()
        )) && err.contains("prefix `flixops/`, which overlaps flixops' rule on `flixops/tweets/`")
            && err.contains("Configuration is ambiguously defined")
            && err.contains("SNS")
            && err.contains("`prefix` in flixops.toml"),
        "{err}"
    );
    let notification = c.s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    let ids: Vec<_> = notification.queue_configurations().iter().map(|q| q.id().unwrap()).collect();
    assert_eq!(ids, ["analytics"], "nothing was written");
    let role = c.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await;
    let role = role.unwrap_err().into_service_error();
    assert!(role.is_no_such_entity_exception(), "the check ran before anything was applied: {role:?}");

    // On a prefix of its own, the other rule is kept next to ours.
    foreign_rule(&c, &p, "exports/").await;
    deploy_in_process(&p, &[]).await.unwrap();
    let notification = c.s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    let mut ids: Vec<_> = notification.queue_configurations().iter().map(|q| q.id().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["analytics", "flixops-prod-snowpipe"]);
}

/// S3 answers HeadBucket with 403 when another account holds the name
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html; tests/peers/moto_server.py
/// answers so too): the plan shows a create, and its check refuses it before anything is applied.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_name_held_by_another_account_stops_the_plan_before_anything_is_applied() {
    let p = Project::new();
    let someone_else = clients_in(&MotoAccount::new());
    someone_else.s3.create_bucket().bucket(p.bucket()).send().await.unwrap();
    let err = deploy_in_process(&p, &[]).await.expect_err("the name is taken");
    assert!(
        err.contains(&format!("cannot create bucket `{}`: HeadBucket answers 403", p.bucket()))
            && err.contains("choose another `bucket` in flixops.toml"),
        "{err}"
    );
    let c = clients_in(&p.account);
    let role = c.iam.get_role().role_name(format!("{}-prod-snowflake", p.name)).send().await;
    assert!(role.is_err(), "the check ran before anything was applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_in_another_region_is_refused_before_the_notification_is_written() {
    let p = Project::new();
    let elsewhere = "arn:aws:sqs:eu-west-1:999999999999:sf-snowpipe-AIDA-queue";
    let err = deploy_with(&p, &[], upstream_with(elsewhere)).await.expect_err("S3 cannot notify another region");
    assert!(
        err.contains(&format!(
            "Snowpipe's queue {elsewhere} is in eu-west-1 but bucket `{}` is in us-east-1",
            p.bucket()
        )) && err.contains("deploy this environment to eu-west-1")
            && err.contains("stopped at: aws_s3_bucket_notification.snowpipe"),
        "{err}"
    );
    let c = clients_in(&p.account);
    let notification = c.s3.get_bucket_notification_configuration().bucket(p.bucket()).send().await.unwrap();
    assert!(notification.queue_configurations().is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_destination_of_another_rule_is_named_when_s3_refuses_the_write() {
    let p = Project::new();
    let c = clients_in(&p.account);
    c.s3.create_bucket().bucket(p.bucket()).send().await.unwrap();
    // Another team's function, notified of deletions.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = c.iam.create_role().role_name(format!("{}-audit", p.name)).assume_role_policy_document(trust).send();
    let role = role.await.unwrap().role.unwrap().arn;
    let zip = Artifact::load(Some(&p.artifact("audit"))).unwrap().zip;
    let created = c
        .lambda
        .create_function()
        .function_name("audit")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.into()).build())
        .send()
        .await
        .unwrap();
    let function = created.function_arn().unwrap().to_string();
    let rule = aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
        .id("audit-deletions")
        .lambda_function_arn(&function)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectRemoved:*"))
        .build()
        .unwrap();
    let put = || {
        let config = aws_sdk_s3::types::NotificationConfiguration::builder()
            .lambda_function_configurations(rule.clone())
            .build();
        c.s3.put_bucket_notification_configuration().bucket(p.bucket()).notification_configuration(config).send()
    };
    let refused = put().await.expect_err("S3 validates the destination: the function does not allow S3 yet");
    assert_eq!(refused.code(), Some("InvalidArgument"));
    let permit = c.lambda.add_permission().function_name("audit").statement_id("s3").action("lambda:InvokeFunction");
    permit.principal("s3.amazonaws.com").send().await.unwrap();
    put().await.unwrap();
    // The function is deleted, its rule stays behind.
    c.lambda.delete_function().function_name("audit").send().await.unwrap();

    let err = deploy_in_process(&p, &[]).await.expect_err("S3 re-validates every destination");
    assert!(
        err.contains(&format!(
            "S3 could not validate rule `audit-deletions` → {function}: Not authorized to invoke function"
        )) && err.contains("a stale one")
            && err.contains(&format!("get-bucket-notification-configuration --bucket {}", p.bucket()))
            && err.contains("stopped at: aws_s3_bucket_notification.snowpipe"),
        "{err}"
    );
    assert!(!err.contains("flixops' own rule"), "ours is not the one refused: {err}");
}

/// Fails the Nth write call before it is sent, as if the process had been killed just there.
#[derive(Debug)]
struct DieAtWrite {
    n: usize,
    seen: AtomicUsize,
}

impl Intercept for DieAtWrite {
    fn name(&self) -> &'static str {
        "DieAtWrite"
    }
    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let call = cfg.load::<Metadata>().map(|m| format!("{}:{}", m.service(), m.name())).unwrap_or_default();
        if flixops::aws::is_write(&call) && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            return Err(format!("simulated crash before {call}").into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_that_dies_after_any_step_converges_on_the_next_run() {
    let total = deploy_in_process(&Project::new(), &[]).await.unwrap().len();
    assert!(total >= 15, "a fresh deploy writes every resource: {total}");
    for n in 1..=total {
        let p = Project::new();
        let die = SharedInterceptor::new(DieAtWrite { n, seen: AtomicUsize::new(0) });
        let err = deploy_in_process(&p, &[die]).await.expect_err("the simulated crash stops the deploy");
        assert!(err.contains("simulated crash") && err.contains("stopped at:"), "step {n}: {err}");
        assert!(err.contains("run `flixops deploy` again"), "step {n}: says how to resume: {err}");
        deploy_in_process(&p, &[]).await.unwrap_or_else(|e| panic!("step {n}: the re-run failed: {e}"));
        let after = deploy_in_process(&p, &[]).await.unwrap();
        assert_eq!(after, Vec::<String>::new(), "step {n}: not converged");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_makes_no_write_call_even_with_drift() {
    let p = Project::new();
    deploy_in_process(&p, &[]).await.unwrap();
    clients_in(&p.account).s3.delete_bucket_policy().bucket(p.bucket()).send().await.unwrap();
    let (config, env) = p.config();
    let artifact = Artifact::load(Some(&p.artifact("v2"))).unwrap();
    let prepared =
        flixops::deploy::prepare_in(session(&p.account, &[]).await, &config, &env, artifact, upstream()).await.unwrap();
    assert_eq!(prepared.plan.change, 2, "policy and code differ");
    assert_eq!(prepared.session.calls.writes(), Vec::<String>::new());
    assert!(prepared.session.calls.calls().len() > 10, "it did read");
}

#[test]
fn unreachable_endpoint_missing_credentials_or_region_exit_3_with_the_fix() {
    let p = Project::new();
    let run = |env: Vec<(&'static str, String)>| {
        let mut cmd = flixops(p.path());
        cmd.args(["plan"]).env("FLIXOPS_ARTIFACT", p.artifact("v1"));
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ] {
            cmd.env_remove(key);
        }
        cmd.envs(env);
        output(&mut cmd)
    };

    let mut closed = cloud_env(p.path());
    closed.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    closed.push(("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")));
    let (code, _, stderr) = run(closed);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot reach AWS STS") && stderr.contains("aws sts get-caller-identity"), "{stderr}");

    let mut no_creds = cloud_env(p.path());
    no_creds.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"));
    // Nothing of the developer's ~/.aws may answer instead.
    no_creds.push(("HOME", p.path().display().to_string()));
    let (code, _, stderr) = run(no_creds);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no AWS credentials found") && stderr.contains("aws sso login"), "{stderr}");
    assert!(!stderr.contains("DispatchFailure {"), "no Debug dump: {stderr}");

    // No region anywhere: the config names none either.
    std::fs::write(
        p.path().join("flixops.toml"),
        format!("[project]\nname = \"{}\"\n[env.prod]\ntarget = \"aws-snowflake\"\n", p.name),
    )
    .unwrap();
    let mut no_region = cloud_env(p.path());
    no_region.retain(|(k, _)| *k != "AWS_REGION");
    let (code, _, stderr) = run(no_region);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no AWS region") && stderr.contains("[env.prod]"), "{stderr}");
}

#[test]
fn credentials_moto_refuses_exit_3() {
    // This moto checks access keys against its IAM users, as AWS does.
    let strict = common::start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let p = Project::new();
    let mut cmd = flixops(p.path());
    cmd.args(["deploy", "--yes"]).envs(cloud_env(p.path())).env("AWS_ENDPOINT_URL", &strict.endpoint);
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE").env("FLIXOPS_ARTIFACT", p.artifact("v1"));
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("AWS did not accept the credentials") && stderr.contains("InvalidClientTokenId"),
        "{stderr}"
    );
    drop(strict);
}

#[test]
fn plan_on_a_local_environment_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["plan"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing to deploy") && stderr.contains("flixops run"), "{stderr}");
    let (code, _, _) = output(flixops(dir.path()).args(["plan", "--detailed-exitcode"]));
    assert_eq!(code, 1, "with --detailed-exitcode every error exits 1 (2 means changes)");
}

#[test]
fn secrets_set_stores_stdin_without_echoing_it() {
    use std::io::Write;
    let p = Project::new();
    p.deploy_json();
    let token = "AAAAAAAAAAAAAAAAAAAAAtest-token-value";
    let mut cmd = flixops(p.path());
    cmd.args(["secrets", "set"]).envs(moto_env());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains(token), "the token is never printed: {text}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored = rt
        .block_on(
            clients().secrets.get_secret_value().secret_id(format!("flixops/{}/prod/x-bearer-token", p.name)).send(),
        )
        .unwrap();
    assert_eq!(stored.secret_string(), Some(token), "stored without the trailing newline");

    let mut cmd = flixops(p.path());
    cmd.args(["secrets", "set"]).envs(moto_env()).stdin(std::process::Stdio::null());
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no token on stdin"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_keeps_the_data_bucket_unless_purge_data_and_a_redeploy_restores_everything() {
    let p = Project::new();
    let c = clients();
    // Data first: after deploy the TLS-only policy denies object calls over moto's plain HTTP.
    c.s3.create_bucket().bucket(p.bucket()).send().await.unwrap();
    let on = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .build();
    c.s3.put_bucket_versioning().bucket(p.bucket()).versioning_configuration(on).send().await.unwrap();
    for body in ["v1", "v2"] {
        let put = c.s3.put_object().bucket(p.bucket()).key("flixops/tweets/dt=2026-11-25/a.parquet");
        put.body(body.as_bytes().to_vec().into()).send().await.unwrap();
    }
    p.deploy_json();

    let (code, stdout, stderr) = p.cli(&["destroy"]);
    assert_eq!(code, 1, "no terminal and no --yes: nothing is destroyed\n{stderr}");
    assert!(stdout.contains("- aws_lambda_function.extract") && stderr.contains("pass --yes"), "{stdout}{stderr}");

    let (code, stdout, stderr) = p.cli(&["destroy", "--yes", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let destroyed: Vec<&str> =
        report["applied"]["applied"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let aws: Vec<&str> = destroyed.iter().copied().filter(|a| a.starts_with("aws_")).collect();
    for kept in ["snowflake_database.main", "snowflake_schema.raw", "snowflake_table.tweets_raw"] {
        assert!(!destroyed.contains(&kept), "{kept} holds the data and is kept: {destroyed:?}");
    }
    for gone in
        ["snowflake_pipe.tweets", "snowflake_storage_integration.lake", "snowflake_dynamic_table.marts.users_stats"]
    {
        assert!(destroyed.contains(&gone), "{gone} not destroyed: {destroyed:?}");
    }
    let pipe = destroyed.iter().position(|a| *a == "snowflake_pipe.tweets").unwrap();
    let stage = destroyed.iter().position(|a| *a == "snowflake_stage.tweets").unwrap();
    assert!(pipe < stage, "the pipe goes before the stage it reads");
    assert_eq!(
        aws,
        [
            "aws_s3_bucket_notification.snowpipe",
            "aws_scheduler_schedule.extract",
            "aws_iam_role.scheduler",
            "aws_lambda_function.extract",
            "aws_cloudwatch_log_group.extract",
            "aws_iam_role.extract",
            "aws_secretsmanager_secret.x_token",
            "aws_iam_role.snowflake",
            "aws_iam_policy.boundary",
        ],
        "reverse dependency order, the bucket kept"
    );
    assert!(c.s3.head_bucket().bucket(p.bucket()).send().await.is_ok(), "the data bucket is kept");
    let gone = c.lambda.get_function().function_name(format!("{}-prod-extract", p.name)).send().await;
    let gone = gone.unwrap_err().into_service_error();
    assert!(gone.is_resource_not_found_exception(), "the function is deleted: {gone:?}");
    assert!(log_group(&c, &p).await.is_none(), "the log group goes with the function");

    let redeploy = p.deploy_json();
    assert!(operations(&writes(&redeploy)).contains(&"RestoreSecret"), "the secret in its recovery window is restored");
    assert_eq!(writes(&p.deploy_json()), Vec::<String>::new(), "converged again");

    let (code, _, stderr) = p.cli(&["destroy", "--yes", "--purge-data"]);
    assert_eq!(code, 0, "{stderr}");
    let purged = c.s3.head_bucket().bucket(p.bucket()).send().await.unwrap_err().into_service_error();
    assert!(purged.is_not_found(), "purged: bucket and every version gone: {purged:?}");
    let (code, stdout, stderr) = p.cli(&["destroy", "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Nothing to destroy."), "{stdout}");
}

#[test]
fn doctor_is_green_after_deploy_and_names_the_drift_and_its_fix_without_repairing_it() {
    let p = Project::new();
    let (code, _, stderr) = p.cli(&["doctor"]);
    assert_eq!(code, 1, "nothing deployed yet: {stderr}");
    assert!(
        stderr.contains("[✗] aws_s3_bucket.lake")
            && stderr.contains("missing")
            && stderr.contains("fix: flixops deploy"),
        "{stderr}"
    );
    let (_, stdout, _) = p.cli(&["doctor", "--output", "json"]);
    let before: Value = serde_json::from_str(&stdout).unwrap();
    let token = check(&before, "x token");
    assert_eq!(
        (token["status"].as_str(), token["fix"].as_str()),
        (Some("fail"), Some("flixops deploy (creates it), then flixops secrets set")),
        "{token}"
    );
    assert!(token["detail"].as_str().unwrap().ends_with("x-bearer-token not found"), "{token}");

    p.deploy_json();
    let (_, stdout, _) = p.cli(&["doctor", "--output", "json"]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    // The secret deploy created has no value until `secrets set`: Secrets Manager answers
    // ResourceNotFoundException for it too, but doctor tells the two apart.
    let token = check(&report, "x token");
    assert_eq!(
        (token["status"].as_str(), token["detail"].as_str(), token["fix"].as_str()),
        (
            Some("fail"),
            Some(format!("the secret flixops/{}/prod/x-bearer-token exists but has no token yet", p.name).as_str()),
            Some("flixops secrets set (reads the token from stdin)")
        ),
        "{token}"
    );
    // Every resource as deployed (the runtime checks — token, data — are tests/snowflake_deploy.rs').
    let resources: Vec<&Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["name"].as_str().unwrap().contains('.')).collect();
    assert!(resources.len() > 20 && resources.iter().all(|c| c["status"] == "ok"), "{resources:#?}");
    assert!(report["checks"].as_array().unwrap().iter().any(|c| c["name"] == "aws identity" && c["status"] == "ok"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clients().s3.delete_public_access_block().bucket(p.bucket()).send()).unwrap();
    let (code, _, stderr) = p.cli(&["doctor"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("[✗] aws_s3_bucket.lake") && stderr.contains("drifted: public_access_block"), "{stderr}");
    let (code, _, _) = p.cli(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "doctor is read-only: the drift is still there");
}

/// One check of a doctor JSON report, by name.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    let checks = report["checks"].as_array().unwrap();
    checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[test]
fn credentials_and_region_come_from_the_named_profile() {
    let p = Project::new();
    std::fs::write(
        p.path().join("flixops.toml"),
        format!("[project]\nname = \"{}\"\n[env.prod]\ntarget = \"aws-snowflake\"\naws_profile = \"ci\"\n", p.name),
    )
    .unwrap();
    std::fs::write(p.path().join("aws-config"), "[profile ci]\nregion = eu-west-1\n").unwrap();
    std::fs::write(
        p.path().join("aws-credentials"),
        "[ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let mut cmd = flixops(p.path());
    cmd.args(["plan", "--output", "json"]).envs(cloud_env(p.path())).env("FLIXOPS_ARTIFACT", p.artifact("v1"));
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        cmd.env_remove(key);
    }
    cmd.env("AWS_CONFIG_FILE", p.path().join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", p.path().join("aws-credentials"));
    let (code, stdout, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let role = plan["resources"].as_array().unwrap().iter().find(|r| r["address"] == "aws_iam_role.scheduler").unwrap();
    let policy = role["fields"].as_array().unwrap().iter().find(|f| f["field"] == "policy").unwrap();
    assert!(policy["after"].as_str().unwrap().contains("arn:aws:lambda:eu-west-1:"), "the profile's region: {policy}");
}

/// The function's architecture that this machine's flixops is not built for (arm64 on x86_64), so
/// this very binary is no package for it; and the ELF machine of a bootstrap built for it.
fn the_other_architecture() -> (&'static str, common::elf::Machine) {
    use common::elf::Machine;
    if cfg!(target_arch = "aarch64") { ("x86_64", Machine::X86_64) } else { ("arm64", Machine::Aarch64) }
}

/// The plan's change of one resource, from `plan --output json`.
fn planned<'a>(plan: &'a Value, address: &str) -> &'a Value {
    let resources = plan["resources"].as_array().unwrap();
    resources.iter().find(|r| r["address"] == address).unwrap_or_else(|| panic!("no {address}: {plan}"))
}

/// `lambda_architecture = "arm64"` end to end: an aarch64 `bootstrap` deploys as an arm64 function
/// and converges, an x86_64 one is refused before anything is read. Without a package for that
/// architecture (this flixops is built for the other one, as on a Mac it is no Linux binary at
/// all), `plan` shows the code as unknown with a note and plans everything else, `deploy` will not
/// create the function without code (nothing written), and once it exists a deploy without the
/// package repairs other drift and keeps the deployed code; `doctor` runs every resource check.
#[tokio::test(flavor = "multi_thread")]
async fn an_arm64_function_deploys_and_without_its_code_everything_else_is_planned_and_checked() {
    let p = Project::new();
    let (arch, machine) = the_other_architecture();
    let toml = std::fs::read_to_string(p.path().join("flixops.toml")).unwrap();
    std::fs::write(p.path().join("flixops.toml"), format!("{toml}lambda_architecture = \"{arch}\"\n")).unwrap();
    let mut bootstrap = common::elf::minimal_elf(machine, &[("libc.so.6", &["GLIBC_2.17"])]);
    bootstrap.extend_from_slice(b"v1");
    let package = p.path().join("bootstrap-other");
    std::fs::write(&package, bootstrap).unwrap();
    let run = |args: &[&str], artifact: Option<&Path>| {
        let mut cmd = flixops(p.path());
        cmd.args(args).envs(cloud_env(p.path()));
        if let Some(path) = artifact {
            cmd.env("FLIXOPS_ARTIFACT", path);
        }
        output(&mut cmd)
    };
    let function = Function::address().to_string();

    let (code, stdout, stderr) = run(&["plan", "--output", "json"], None);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["add"], RESOURCES, "everything is planned, the function included: {plan}");
    let create = planned(&plan, &function);
    let code_field = create["fields"].as_array().unwrap().iter().find(|f| f["field"] == "code_sha256").unwrap();
    assert_eq!(code_field["after"], "(unknown: no Linux artifact, see the note)");
    let note = plan["notes"].as_array().unwrap().iter().find(|n| n["address"] == function.as_str()).unwrap();
    let note = note["message"].as_str().unwrap();
    assert!(
        note.contains("the function's code is unknown") && note.contains(&format!("the function is {arch}")),
        "{note}"
    );
    assert!(note.contains("--artifact"), "the note says how to give the code: {note}");

    let (code, _, stderr) = run(&["deploy", "--yes"], None);
    assert_eq!(code, 2, "no code to create the function with: {stderr}");
    assert!(stderr.contains("deploy must create the function, but") && stderr.contains("--artifact"), "{stderr}");
    let c = clients();
    let missing = c.s3.head_bucket().bucket(p.bucket()).send().await;
    assert!(missing.is_err(), "refused before any write: the bucket was not created");

    let (code, _, stderr) = run(&["deploy", "--yes"], Some(&p.artifact("v1")));
    assert_eq!(code, 2, "a bootstrap of the wrong architecture: {stderr}");
    let other = if arch == "arm64" { "x86_64" } else { "arm64" };
    assert!(stderr.contains(&format!("`bootstrap` is {other}, but the function is {arch}")), "{stderr}");
    assert!(stderr.contains(&format!("lambda_architecture = \"{other}\"")), "{stderr}");

    let (code, _, stderr) = run(&["deploy", "--yes"], Some(&package));
    assert_eq!(code, 0, "{stderr}");
    let name = format!("{}-prod-extract", p.name);
    let deployed = c.lambda.get_function().function_name(&name).send().await.unwrap();
    let config = deployed.configuration().unwrap();
    let architectures: Vec<&str> = config.architectures().iter().map(|a| a.as_str()).collect();
    assert_eq!(architectures, [arch], "the function runs on {arch}");
    let sha = config.code_sha256().unwrap().to_string();
    let (code, _, stderr) = run(&["plan", "--detailed-exitcode"], Some(&package));
    assert_eq!(code, 0, "converged: {stderr}");

    // Drift elsewhere, and no package: the plan repairs the bucket and leaves the code alone.
    c.s3.delete_public_access_block().bucket(p.bucket()).send().await.unwrap();
    let (code, stdout, stderr) = run(&["plan", "--output", "json"], None);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(planned(&plan, &function)["action"], "no-op", "the deployed code is kept: {plan}");
    assert_eq!(planned(&plan, "aws_s3_bucket.lake")["action"], "update");
    assert!(plan["notes"].as_array().unwrap().iter().any(|n| n["address"] == function.as_str()), "{plan}");
    let (code, stdout, stderr) = run(&["deploy", "--yes", "--output", "json"], None);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!operations(&writes(&report)).iter().any(|op| op.contains("Function")), "{report}");
    let after = c.lambda.get_function().function_name(&name).send().await.unwrap();
    assert_eq!(after.configuration().unwrap().code_sha256(), Some(sha.as_str()), "the code is untouched");

    // doctor, without the package, runs every resource check and finds them as deployed.
    let (_, stdout, stderr) = run(&["doctor", "--output", "json"], None);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    let resources: Vec<&Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["name"].as_str().unwrap().contains('.')).collect();
    assert!(resources.len() > 20 && resources.iter().all(|c| c["status"] == "ok"), "{resources:#?}");
    assert!(resources.iter().any(|c| c["name"] == function.as_str()), "{resources:#?}");
}
