//! `flixops export` and the terraform/ bootstrap module: the module's policies equal
//! `export iam-policy` and hold exactly the calls `deploy` makes; every permission policy passes
//! parliament; the HCL parses and checkov finds nothing; the workflow and DAG are well-formed.
//! The checkers run from their own venv (scripts/test.sh), without network.

use crate::common;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{flixops, output};
use serde_json::Value;

const ACCOUNT: &str = "123456789012";

/// Read-only actions that have no resource type in IAM's Service Authorization Reference, so they
/// can only be granted on "*": the account's Lambda concurrency quota.
const ACCOUNT_LEVEL: &[&str] = &["lambda:GetAccountSettings"];

fn scan_python() -> PathBuf {
    if let Some(path) = std::env::var_os("FLIXOPS_SCAN_PYTHON") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/flixops/scan-venv/bin/python");
    assert!(path.exists(), "{} not found: run scripts/test.sh, which installs the checkers", path.display());
    path
}

/// A checker command, cut off from the network when this machine allows it (`unshare -n`).
fn offline(program: &Path) -> Command {
    let isolated = Command::new("unshare").args(["-n", "true"]).output().is_ok_and(|o| o.status.success());
    if isolated {
        let mut cmd = Command::new("unshare");
        cmd.arg("-n").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn project(dir: &Path) {
    let toml = "[project]\nname = \"acme-tweets\"\n\n[extract]\nschedule = \"rate(2 hours)\"\n\n\
                [env.prod]\ntarget = \"aws-snowflake\"\nregion = \"eu-west-1\"\nprefix = \"raw\"\n";
    std::fs::write(dir.join("flixops.toml"), toml).unwrap();
}

fn export(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = output(flixops(dir).arg("export").args(args));
    assert_eq!(code, 0, "export {args:?}: {stderr}");
    stdout
}

fn canonical(doc: &str) -> String {
    flixops::aws::policy::canonical(doc).unwrap()
}

#[test]
fn the_module_policies_are_export_iam_policy_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    for (file, flag) in [("deploy-policy.json.tftpl", None), ("plan-policy.json.tftpl", Some("--read-only"))] {
        let template = std::fs::read_to_string(repo().join("terraform").join(file)).unwrap();
        let filled = template
            .replace("${project}", "acme-tweets")
            .replace("${env}", "prod")
            .replace("${bucket}", "acme-tweets-prod-tweets")
            .replace("${prefix}", "raw")
            .replace("${region}", "eu-west-1")
            .replace("${account_id}", ACCOUNT);
        assert!(!filled.contains("${"), "{file}: a variable the module does not pass: {filled}");
        let mut args = vec!["iam-policy", "--env", "prod", "--account-id", ACCOUNT];
        args.extend(flag);
        let exported = export(dir.path(), &args);
        assert_eq!(canonical(&filled), canonical(&exported), "{file} differs from `flixops export {args:?}`");
    }
}

#[test]
fn the_committed_module_is_what_export_terraform_writes_and_edits_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tf");
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "terraform", "--dir"]).arg(&out));
    assert_eq!(code, 0, "{stderr}");
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let committed = repo().join("terraform").join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&committed).unwrap_or_default(),
            "{} is stale: run `flixops export terraform --dir terraform --force`",
            committed.display()
        );
    }
    std::fs::write(out.join("main.tf"), "# my edit\n").unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "terraform", "--dir"]).arg(&out));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("main.tf: exists with other content") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("main.tf")).unwrap(), "# my edit\n", "nothing was overwritten");
}

#[test]
fn the_module_parses_and_checkov_finds_nothing() {
    let python = scan_python();
    for entry in std::fs::read_dir(repo().join("terraform")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let parsed = Command::new(&python)
                .args(["-c", "import hcl2, sys; hcl2.load(open(sys.argv[1]))"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(parsed.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&parsed.stderr));
        }
    }
    let checkov = python.with_file_name("checkov");
    let out = offline(&checkov)
        .args(["--framework", "terraform", "--quiet", "--compact", "--skip-download", "-o", "json", "-d"])
        .arg(repo().join("terraform"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov output: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(report["summary"]["parsing_errors"], 0, "{report:#}");
    assert!(report["summary"]["passed"].as_u64().unwrap() > 10, "checkov checked the roles: {report:#}");
}

fn policies(dir: &Path) -> Vec<(String, Value)> {
    let all: Value =
        serde_json::from_str(&export(dir, &["policies", "--env", "prod", "--account-id", ACCOUNT])).unwrap();
    all.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn statements(doc: &Value) -> Vec<Value> {
    serde_json::from_str::<Value>(&canonical(&doc.to_string())).unwrap()["Statement"].as_array().unwrap().clone()
}

#[test]
fn every_permission_policy_passes_parliament_allows_no_wildcard_action_and_is_scoped() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let parliament = scan_python().with_file_name("parliament");
    let mut checked = 0;
    for (name, doc) in policies(dir.path()) {
        for s in statements(&doc) {
            for action in s["Action"].as_array().unwrap() {
                let wildcard = action.as_str().unwrap().contains('*');
                assert!(!wildcard || s["Effect"] == "Deny", "{name}: Allow of {action}");
            }
            let account_level =
                s["Action"].as_array().unwrap().iter().all(|a| ACCOUNT_LEVEL.contains(&a.as_str().unwrap()));
            for resource in s["Resource"].as_array().into_iter().flatten() {
                let r = resource.as_str().unwrap();
                if r == "*" && s["Action"] == serde_json::json!(["logs:DescribeLogGroups"]) {
                    // No resource type in the Service Authorization Reference: IAM grants it on "*"
                    // only (parliament, below, knows this too). It lists names and retention.
                    continue;
                }
                let scoped = ["acme-tweets-prod", "acme-tweets/prod"].iter().any(|n| r.contains(n));
                let unscopable = r == "*" && account_level && s["Effect"] == "Allow";
                assert!(scoped || unscopable, "{name}: resource {r} is not scoped to the environment");
            }
        }
        // Trust policies are resource policies without a Resource element; parliament reads every
        // document as an identity policy, so they are checked by the next test instead.
        if name.ends_with("-trust") {
            continue;
        }
        let out = offline(&parliament)
            .arg("--string")
            .arg(doc.to_string())
            .arg("--json")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let findings = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && findings.trim().is_empty(),
            "{name}: parliament: {findings}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(
        checked, 7,
        "bucket policy, snowflake-read, extract, scheduler-invoke, boundary, deployer, deployer-read-only"
    );
}

#[test]
fn trust_policies_name_one_principal_and_pin_a_condition() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let trusts: Vec<(String, Value)> =
        policies(dir.path()).into_iter().filter(|(n, _)| n.ends_with("-trust")).collect();
    assert_eq!(trusts.len(), 3);
    for (name, doc) in trusts {
        for s in statements(&doc) {
            assert_eq!(s["Action"], serde_json::json!(["sts:AssumeRole"]), "{name}");
            assert!(s.get("Resource").is_none(), "{name}: a trust policy has no Resource");
            let principals: Vec<&Value> = s["Principal"].as_object().unwrap().values().collect();
            assert_eq!(principals.len(), 1, "{name}: {s}");
            assert_eq!(principals[0].as_array().unwrap().len(), 1, "{name}: one principal");
            let conditions = s["Condition"]["StringEquals"].as_object().unwrap();
            assert!(
                conditions.contains_key("sts:ExternalId")
                    || conditions.get("aws:SourceAccount") == Some(&serde_json::json!([ACCOUNT])),
                "{name}: {s}"
            );
        }
    }
}

/// The IAM action each SDK operation flixops calls is authorized by (most are `service:Operation`).
fn iam_action(call: &str) -> Option<String> {
    let (service, op) = call.split_once(':').unwrap();
    let service = if service == "CloudWatch Logs" { "logs" } else { service };
    let renamed = match op {
        "GetCallerIdentity" => return None, // needs no permission
        "HeadBucket" => "ListBucket",
        "HeadObject" => "GetObject",
        "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" => "PutBucketPublicAccessBlock",
        "GetBucketEncryption" => "GetEncryptionConfiguration",
        "PutBucketEncryption" => "PutEncryptionConfiguration",
        "GetBucketNotificationConfiguration" => "GetBucketNotification",
        "PutBucketNotificationConfiguration" => "PutBucketNotification",
        "GetBucketLifecycleConfiguration" => "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" => "PutLifecycleConfiguration",
        other => other,
    };
    Some(format!("{}:{renamed}", service.to_lowercase().replace(' ', "")))
}

#[test]
fn the_deployer_policy_allows_every_call_of_a_deploy_and_nothing_it_does_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("p{:08x}", fastrand::u32(..));
    let toml =
        format!("[project]\nname = \"{name}\"\n[env.prod]\ntarget = \"aws-snowflake\"\nregion = \"us-east-1\"\n");
    std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
    std::fs::write(dir.path().join("bootstrap"), common::elf::bootstrap("")).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = flixops(dir.path());
        cmd.args(args).envs(common::moto_tls_env()).env("FLIXOPS_ARTIFACT", dir.path().join("bootstrap"));
        let (code, stdout, stderr) = output(&mut cmd);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    let deployer: Value = serde_json::from_str(&run(&["export", "iam-policy"])).unwrap();
    let allowed: BTreeSet<String> = statements(&deployer)
        .iter()
        .flat_map(|s| {
            s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    let (config, env) = {
        let config = flixops::config::Config::load(&dir.path().join("flixops.toml")).unwrap();
        let env = config.env(Some("prod")).unwrap().clone();
        (config, env)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (used, planned) = rt.block_on(lifecycle(&config, &env, dir.path()));
    let read_only: Value = serde_json::from_str(&run(&["export", "iam-policy", "--read-only"])).unwrap();
    let plan_allowed: BTreeSet<String> = statements(&read_only)
        .iter()
        .flat_map(|s| {
            s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    let beyond: Vec<&String> = planned.difference(&plan_allowed).collect();
    assert!(beyond.is_empty(), "`plan` calls what the read-only policy does not allow: {beyond:?}");
    // Kept from the CI deployer on purpose (an administrator's first deploy sets them): the bucket
    // policy and the permissions boundary, either of which would let it widen its own access.
    // A lifecycle rule can expire any object, so like the bucket policy it is an administrator's.
    let admin_only =
        ["s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "iam:CreatePolicy", "iam:CreatePolicyVersion"];
    let missing: Vec<&String> =
        used.iter().filter(|a| !allowed.contains(*a) && !admin_only.contains(&a.as_str())).collect();
    assert!(
        missing.is_empty(),
        "deploy, drift repair or destroy calls what the deployer policy does not allow: {missing:?}"
    );
    let implied = [
        "iam:PassRole",             // authorizes CreateFunction/CreateSchedule handing over a role
        "lambda:TagResource",       // authorizes CreateFunction with tags
        "s3:GetBucketNotification", // the Snowpipe notification, once the pipe exists
        "s3:PutBucketNotification",
        "iam:DeletePolicyVersion", // destroy, once an administrator has updated the boundary
        // doctor, which CI runs with the deploy role (`--skip token`): the checkpoint, the function's log
        "s3:GetObject",
        "logs:FilterLogEvents",
    ];
    assert!(
        !allowed.contains(&"secretsmanager:GetSecretValue".to_string()),
        "the deploy role cannot read the X token: {allowed:?}"
    );
    let unused: Vec<&String> =
        allowed.iter().filter(|a| !used.contains(*a) && !implied.contains(&a.as_str())).collect();
    assert!(unused.is_empty(), "the deployer policy allows what no deploy, repair or destroy calls: {unused:?}");
}

/// Every IAM action flixops needed through a whole life: create, converged plan, repair of drift
/// in every resource kind, new code, destroy, and a re-deploy. Runs in its own moto account.
async fn lifecycle(
    config: &flixops::config::Config,
    env: &flixops::config::EnvConfig,
    dir: &Path,
) -> (BTreeSet<String>, BTreeSet<String>) {
    use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
    let sdk = common::moto_sdk();
    let account = [SharedInterceptor::new(common::MotoAccount::new())];
    let hand = flixops::aws::Clients::new(&sdk, &account);
    let (mut used, mut planned) = (BTreeSet::new(), BTreeSet::new());
    let artifact = |tag: &str| {
        std::fs::write(dir.join("bootstrap"), common::elf::bootstrap(tag)).unwrap();
        flixops::aws::lambda::Artifact::load(Some(&dir.join("bootstrap"))).unwrap()
    };
    for round in ["create", "converged", "repair", "destroy", "redeploy"] {
        let session = flixops::aws::Session::from_sdk("prod", &sdk, None, &account).await.unwrap();
        let calls = session.calls.clone();
        let names =
            flixops::aws::stack::Names::new(&config.project, "prod", &format!("{}-prod-tweets", config.project));
        if round == "repair" {
            break_everything(&hand, &names).await;
        }
        let code = artifact(if round == "repair" { "v2" } else { "v1" });
        if round == "destroy" {
            let prepared =
                flixops::deploy::prepare_destroy(Some(session), config, env, Default::default(), false).await.unwrap();
            prepared.destroy().await.unwrap();
        } else {
            let prepared = flixops::deploy::prepare_in(session, config, env, code, Default::default()).await.unwrap();
            assert_eq!(prepared.plan.is_empty(), round == "converged", "{round}: {:?}", prepared.plan);
            prepared.apply().await.unwrap();
        }
        let actions = calls.calls().iter().filter_map(|c| iam_action(c)).collect::<Vec<_>>();
        if round == "converged" {
            planned.extend(actions.iter().cloned());
        }
        used.extend(actions);
    }
    (used, planned)
}

/// Drift by hand in every resource kind flixops repairs.
async fn break_everything(c: &flixops::aws::Clients, n: &flixops::aws::stack::Names) {
    let role = &n.extract_role;
    c.iam.delete_role_permissions_boundary().role_name(role).send().await.unwrap();
    c.iam.untag_role().role_name(role).tag_keys("flixops:env").send().await.unwrap();
    let anyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    c.iam.update_assume_role_policy().role_name(role).policy_document(anyone).send().await.unwrap();
    let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::*"}]}"#;
    let policy = c.iam.create_policy().policy_name(format!("{role}-wide")).policy_document(wide).send().await.unwrap();
    c.iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(policy.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    c.iam.delete_role_policy().role_name(&n.scheduler_role).policy_name("invoke-extract").send().await.unwrap();
    let env = aws_sdk_lambda::types::Environment::builder().variables("FLIXOPS_QUERY", "changed").build();
    c.lambda.update_function_configuration().function_name(&n.function).environment(env).send().await.unwrap();
    c.lambda.delete_function_concurrency().function_name(&n.function).send().await.unwrap();
    let retries = c.lambda.put_function_event_invoke_config().function_name(&n.function).maximum_retry_attempts(2);
    retries.send().await.unwrap();
    c.secrets.update_secret().secret_id(&n.secret).description("changed").send().await.unwrap();
    c.secrets.untag_resource().secret_id(&n.secret).tag_keys("flixops:env").send().await.unwrap();
    c.logs.put_retention_policy().log_group_name(&n.log_group).retention_in_days(7).send().await.unwrap();
    let group = c.logs.describe_log_groups().log_group_name_prefix(&n.log_group).send().await.unwrap();
    let arn = group.log_groups()[0].log_group_arn().unwrap().to_string();
    c.logs.untag_resource().resource_arn(arn).tag_keys("flixops:env").send().await.unwrap();
    let schedule = c.scheduler.get_schedule().name(&n.schedule).send().await.unwrap();
    let window = aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
        .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
        .build()
        .unwrap();
    let update = c.scheduler.update_schedule().name(&n.schedule).schedule_expression("rate(7 days)");
    update.target(schedule.target().unwrap().clone()).flexible_time_window(window).send().await.unwrap();
}

#[test]
fn the_workflow_plans_on_pull_requests_and_deploys_then_checks_on_main() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let yaml = export(dir.path(), &["github-actions", "--env", "prod"]);
    let json = Command::new(scan_python())
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.load(sys.stdin.read(), Loader=yaml.BaseLoader)))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(yaml.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let workflow: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|_| panic!("not YAML:\n{yaml}"));
    assert!(workflow["permissions"].get("id-token").is_none(), "only the plan and deploy jobs get a token: {yaml}");
    for job in ["plan", "deploy"] {
        assert_eq!(workflow["jobs"][job]["permissions"]["id-token"], "write", "{job}: OIDC, no stored keys");
    }
    assert_eq!(workflow["env"]["AWS_REGION"], "eu-west-1");
    let steps = |job: &str| -> String {
        workflow["jobs"][job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(workflow["jobs"]["plan"]["if"], "github.event_name == 'pull_request'");
    assert!(steps("plan").contains("flixops plan --artifact"), "{yaml}");
    assert!(!steps("plan").contains("deploy"), "pull requests never deploy: {yaml}");
    let deploy = steps("deploy");
    let (d, c) = (deploy.find("deploy --yes").unwrap(), deploy.find("flixops doctor").unwrap());
    assert!(d < c, "doctor runs after deploy: {deploy}");
    assert!(deploy.contains("flixops doctor --skip token"), "the deploy role does not read the token: {deploy}");
    assert!(
        yaml.contains("${{ vars.FLIXOPS_DEPLOY_ROLE_ARN }}") && yaml.contains("${{ vars.FLIXOPS_PLAN_ROLE_ARN }}"),
        "{yaml}"
    );
    assert_eq!(workflow["on"]["push"]["branches"][0], "main");
    assert!(
        yaml.contains("SNOWFLAKE_CONNECTIONS_DEFAULT_ACCOUNT: ${{ vars.SNOWFLAKE_ACCOUNT }}")
            && yaml.contains("${{ secrets.SNOWFLAKE_PRIVATE_KEY }}"),
        "signs in to Snowflake from repository variables and secrets: {yaml}"
    );
    let own = export(
        dir.path(),
        &[
            "github-actions",
            "--env",
            "prod",
            "--from-source",
            "--install",
            "--git https://example.invalid/flixops flixops",
        ],
    );
    assert!(
        own.contains(
            "cargo install --locked --no-default-features --root \"$PWD/flixops-bin\" --git https://example.invalid/flixops flixops"
        ),
        "{own}"
    );
    assert!(
        own.contains(&format!("--default-toolchain {}", env!("CARGO_PKG_RUST_VERSION"))),
        "pinned toolchain: {own}"
    );
}

#[test]
fn the_airflow_dag_compiles_and_chains_its_tasks_per_target() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let dag = export(dir.path(), &["airflow", "--env", "prod"]);
    let file = dir.path().join("flixops_dag.py");
    std::fs::write(&file, &dag).unwrap();
    let compiled = Command::new(scan_python()).args(["-m", "py_compile"]).arg(&file).output().unwrap();
    assert!(compiled.status.success(), "{}\n{dag}", String::from_utf8_lossy(&compiled.stderr));
    assert!(
        dag.contains("extract >> doctor") && !dag.contains("task_id=\"transform\""),
        "aws-snowflake: dynamic tables, no transform task: {dag}"
    );
    assert!(dag.contains("schedule=timedelta(hours=2)"), "rate(2 hours) carried over: {dag}");
    assert!(dag.contains("flixops --env prod --config \"$FLIXOPS_PROJECT_DIR/flixops.toml\""), "{dag}");

    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let local = export(dir.path(), &["airflow"]);
    assert!(local.contains("extract >> transform >> doctor"), "{local}");
    std::fs::write(&file, &local).unwrap();
    let compiled = Command::new(scan_python()).args(["-m", "py_compile"]).arg(&file).output().unwrap();
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));

    // The third Friday is a valid EventBridge schedule that standard cron cannot say.
    let nth =
        "[project]\nname = \"demo\"\n[extract]\nschedule = \"cron(0 6 ? * 6#3 *)\"\n[env.dev]\ntarget = \"local\"\n";
    std::fs::write(dir.path().join("flixops.toml"), nth).unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "airflow"]));
    assert_eq!(code, 2, "a flixops.toml problem: {stderr}");
    assert!(stderr.contains("flixops.toml: line 4: extract.schedule `cron(0 6 ? * 6#3 *)` has no Airflow equivalent: day-of-week `6#3` has no cron equivalent"), "{stderr}");
    let at = nth.replace("cron(0 6 ? * 6#3 *)", "at(2026-01-01T00:00:00)");
    std::fs::write(dir.path().join("flixops.toml"), at).unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "airflow"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("line 4, column 12: extract.schedule: `at(2026-01-01T00:00:00)` is not valid: at(…) runs once"),
        "{stderr}"
    );
}

/// What `export terraform` writes is what `terraform fmt` would write (terraform is on this
/// machine's PATH; without it the test says so and checks nothing).
#[test]
fn the_exported_module_is_terraform_fmt_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("module");
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "terraform", "--dir"]).arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let fmt = Command::new("terraform").args(["fmt", "-check", "-diff", "-no-color"]).arg(&out).output();
    let Ok(fmt) = fmt else {
        eprintln!("SKIPPED: terraform is not on PATH, so `terraform fmt -check` did not run");
        return;
    };
    assert!(fmt.status.success(), "not terraform fmt clean:\n{}", String::from_utf8_lossy(&fmt.stdout));
}

/// Stand-ins for the three Airflow names the DAG imports: they record each task's command and
/// environment with `params` rendered as Airflow renders templated fields.
const AIRFLOW_STUB: &str = r#"
import json, re, sys, types
tasks = []
class DAG:
    def __init__(self, **kw): DAG.params = kw["params"]
    def __enter__(self): return self
    def __exit__(self, *a): pass
class Param:
    def __init__(self, default, **kw): self.default = default
class BashOperator:
    def __init__(self, task_id, bash_command, env, append_env):
        render = lambda v: re.sub(r"\{\{ params\.(\w+) \}\}", lambda m: DAG.params[m[1]].default, v)
        tasks.append({"task": task_id, "command": bash_command, "env": {k: render(v) for k, v in env.items()}})
    def __rshift__(self, other): return other
for name, attrs in {"airflow": {"DAG": DAG}, "airflow.models": {}, "airflow.models.param": {"Param": Param},
                    "airflow.operators": {}, "airflow.operators.bash": {"BashOperator": BashOperator}}.items():
    module = types.ModuleType(name); module.__dict__.update(attrs); sys.modules[name] = module
exec(open(sys.argv[1]).read())
print(json.dumps(tasks))
"#;

/// The DAG's tasks run from a project directory with a space in its path: each calls flixops with
/// the directory's flixops.toml as one argument.
#[test]
fn the_airflow_tasks_run_flixops_in_a_project_path_with_spaces() {
    let root = tempfile::tempdir().unwrap();
    let project_dir = root.path().join("team data/flixops project");
    std::fs::create_dir_all(&project_dir).unwrap();
    std::fs::write(project_dir.join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let dag = export(&project_dir, &["airflow"]);
    let file = root.path().join("flixops_dag.py");
    std::fs::write(&file, &dag).unwrap();
    let out = Command::new(scan_python())
        .args(["-c", AIRFLOW_STUB])
        .arg(&file)
        .env_remove("FLIXOPS_PROJECT_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{dag}", String::from_utf8_lossy(&out.stderr));
    let tasks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = tasks.as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["extract", "transform", "doctor"]);

    // A `flixops` on PATH that prints its working directory and arguments, one per line.
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("flixops");
    std::fs::write(&fake, "#!/bin/sh\npwd\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for task in tasks.as_array().unwrap() {
        let mut bash = Command::new("bash");
        bash.args(["-c", task["command"].as_str().unwrap()]).env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
        for (key, value) in task["env"].as_object().unwrap() {
            bash.env(key, value.as_str().unwrap());
        }
        let ran = bash.output().unwrap();
        assert!(ran.status.success(), "{task}: {}", String::from_utf8_lossy(&ran.stderr));
        let lines: Vec<String> = String::from_utf8_lossy(&ran.stdout).lines().map(str::to_string).collect();
        let config = project_dir.join("flixops.toml").display().to_string();
        let expected = [project_dir.display().to_string(), "--env".into(), "dev".into(), "--config".into(), config];
        assert_eq!(lines[..5], expected, "{task}");
        assert_eq!(lines[5], task["task"].as_str().unwrap());
    }
}

#[test]
fn export_iam_policy_refuses_a_bad_account_id_and_the_local_target() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let (code, _, stderr) =
        output(flixops(dir.path()).args(["export", "iam-policy", "--env", "prod", "--account-id", "12ab"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("12 digits"), "{stderr}");
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "iam-policy", "--account-id", ACCOUNT]));
    assert_eq!(code, 2, "{stderr}");
}
