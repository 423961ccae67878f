//! The CI files flixops ships and writes, used as CI uses them: every workflow under
//! .github/workflows/ and every workflow `flixops export github-actions` writes validates against
//! GitHub's workflow schema (check-jsonschema's vendored copy, offline); and the exported deploy
//! job runs: its `run:` steps in bash as a GitHub runner runs them (its `${{ … }}` expressions,
//! `$GITHUB_ENV` and `$GITHUB_PATH`), flixops installed from a release server on 127.0.0.1 (this
//! test's binary and a Lambda package, with their SHA-256 files), against moto and fakesnow, signing
//! in with a key pair made here. A workflow that cannot install, verify or sign in fails here.

use crate::common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{Running, flixops, moto, output, test_python};
use serde_json::Value;
use sha2::Digest;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv with the static checkers (check-jsonschema, PyYAML), from scripts/test.sh.
fn scan_python() -> PathBuf {
    if let Some(path) = std::env::var_os("FLIXOPS_SCAN_PYTHON") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/flixops/scan-venv/bin/python");
    assert!(path.exists(), "{} not found: run scripts/test.sh, which installs the checkers", path.display());
    path
}

/// check-jsonschema with GitHub's workflow schema as the package ships it, cut off from the
/// network where this machine allows it (`unshare -n`).
fn check_workflows(files: &[PathBuf]) -> (bool, String) {
    let checker = scan_python().with_file_name("check-jsonschema");
    let isolated = Command::new("unshare").args(["-n", "true"]).output().is_ok_and(|o| o.status.success());
    let mut cmd = if isolated { Command::new("unshare") } else { Command::new(&checker) };
    if isolated {
        cmd.arg("-n").arg(&checker);
    }
    let out =
        cmd.args(["--builtin-schema", "vendor.github-workflows"]).args(files).output().expect("check-jsonschema runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A YAML document as JSON, every scalar a string (PyYAML's BaseLoader), as the runner reads it.
fn yaml(text: &str) -> Value {
    let mut child = Command::new(scan_python())
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.load(sys.stdin.read(), Loader=yaml.BaseLoader)))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not YAML:\n{text}"))
}

const PROJECT: &str = "[project]\nname = \"NAME\"\n\n[extract]\nquery = \"#brexit\"\n\n[env.prod]\n\
                       target = \"aws-snowflake\"\nregion = \"us-east-1\"\nsnowflake_connection = \"ci\"\n\
                       snowflake_warehouse = \"TRANSFORM_WH\"\n";

fn project() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("w{:08x}", fastrand::u32(..));
    std::fs::write(dir.path().join("flixops.toml"), PROJECT.replace("NAME", &name)).unwrap();
    (dir, name)
}

fn export(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = output(flixops(dir).args(["export", "github-actions", "--env", "prod"]).args(args));
    assert_eq!(code, 0, "{stderr}");
    stdout
}

#[test]
fn every_workflow_in_the_repository_and_every_exported_one_passes_githubs_schema() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    assert!(files.len() >= 2, "the release workflow and its Lambda job: {files:?}");
    let (dir, _) = project();
    for (name, args) in [("release.yml", &[][..]), ("source.yml", &["--from-source"][..])] {
        let path = dir.path().join(name);
        std::fs::write(&path, export(dir.path(), args)).unwrap();
        files.push(path);
    }
    let (ok, report) = check_workflows(&files);
    assert!(ok, "{report}");

    // The check can fail: a step with both `uses` and `run` is not a workflow GitHub accepts.
    let broken = dir.path().join("broken.yml");
    let text =
        export(dir.path(), &[]).replacen("      - name: flixops plan\n", "      - uses: x/y@v1\n        name: p\n", 1);
    std::fs::write(&broken, text).unwrap();
    let (ok, report) = check_workflows(&[broken]);
    assert!(!ok, "{report}");
}

/// The release workflow calls the Lambda-package job by a path GitHub resolves (`./.github/…`, a
/// file that exists: dist 0.34.0 writes `$/.github/…`), and each workflow it calls takes the plan.
#[test]
fn the_release_calls_local_workflows_that_exist_and_publish_the_lambda_packages() {
    let release = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    let release = yaml(&release);
    let called: Vec<&str> = release["jobs"].as_object().unwrap().values().filter_map(|j| j["uses"].as_str()).collect();
    assert!(called.contains(&"./.github/workflows/lambda.yml"), "{called:?}");
    for uses in called {
        let path = uses.strip_prefix("./").unwrap_or_else(|| panic!("not a local workflow: {uses}"));
        let called = yaml(&std::fs::read_to_string(repo().join(path)).unwrap());
        assert!(called["on"]["workflow_call"]["inputs"]["plan"].is_object(), "{path} takes dist's plan");
    }
    let lambda = std::fs::read_to_string(repo().join(".github/workflows/lambda.yml")).unwrap();
    let upload = lambda.split("actions/upload-artifact@").nth(1).unwrap();
    assert!(upload.contains("name: artifacts-lambda-"), "dist's release uploads every `artifacts-*`: {lambda}");
    for arch in ["x86_64", "arm64"] {
        assert!(lambda.contains(&format!("architecture: {arch}")), "{lambda}");
    }
}

#[test]
fn every_action_is_pinned_to_a_commit_and_the_release_variant_compiles_nothing() {
    let (dir, _) = project();
    for args in [&[][..], &["--from-source"][..]] {
        let text = export(dir.path(), args);
        for line in
            text.lines().filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
        {
            let reference = line.split("uses:").nth(1).unwrap().trim();
            let (action, rest) = reference.split_once('@').unwrap_or_else(|| panic!("{line}"));
            let (sha, tag) = rest.split_once(" # ").unwrap_or_else(|| panic!("a `# vX` comment: {line}"));
            assert!(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{action}: {line}");
            assert!(tag.starts_with('v'), "{line}");
        }
        let workflow = yaml(&text);
        let runs: String = workflow["jobs"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|job| job["steps"].as_array().unwrap().iter().filter_map(|s| s["run"].as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        if args.is_empty() {
            assert!(
                !runs.contains("cargo") && !runs.contains("rustup"),
                "the release variant compiles nothing: {runs}"
            );
            assert!(workflow["jobs"].get("build").is_none(), "{text}");
            assert_eq!(workflow["env"]["FLIXOPS_RELEASE"].as_str(), Some(flixops::export::release_url().as_str()));
        } else {
            assert!(runs.contains("cargo install --locked --no-default-features"), "{runs}");
            assert!(text.contains("actions/cache@"), "the build is cached: {text}");
            assert_eq!(workflow["jobs"]["deploy"]["needs"], "build");
        }
        assert!(runs.contains("flixops deploy --yes --artifact \"$FLIXOPS_ARTIFACT\""), "{runs}");
        assert!(runs.contains("flixops doctor --skip token --artifact \"$FLIXOPS_ARTIFACT\""), "{runs}");
        // The passphrase reaches only the flixops steps: never the workflow's or a job's `env`.
        let scopes =
            std::iter::once(&workflow["env"]).chain(workflow["jobs"].as_object().unwrap().values().map(|j| &j["env"]));
        for scope in scopes {
            assert!(!scope.to_string().contains("PASSPHRASE"), "no workflow- or job-wide passphrase: {scope}");
        }
    }
    // `--install` only makes sense when compiling.
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "github-actions", "--install", "flixops"]));
    assert_eq!(code, 2, "{stderr}");
    // A connection's name becomes part of variable names.
    let toml = std::fs::read_to_string(dir.path().join("flixops.toml")).unwrap();
    std::fs::write(dir.path().join("flixops.toml"), toml.replace("\"ci\"", "\"my-conn\"")).unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["export", "github-actions", "--env", "prod"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("snowflake_connection `my-conn`") && stderr.contains("letters, digits and _"), "{stderr}");
}

/// A GitHub-hosted runner, emulated for `run:` steps: bash -e, the `${{ }}` expressions these
/// workflows use, `$GITHUB_ENV`/`$GITHUB_PATH` between steps, and, for `uses:` steps, what
/// checkout and configure-aws-credentials leave behind (the workspace; AWS credentials, here moto's).
struct Runner {
    workspace: PathBuf,
    temp: tempfile::TempDir,
    home: tempfile::TempDir,
    vars: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    /// What the machine itself has: endpoints and CAs of the emulators.
    machine: Vec<(String, String)>,
    /// What configure-aws-credentials exports.
    aws: Vec<(String, String)>,
    /// Workflow-level `env:` values to replace (the release host).
    overrides: BTreeMap<String, String>,
    /// Everything the steps printed.
    log: String,
}

/// Why a job stopped: the step and its output.
#[derive(Debug)]
struct Failed {
    step: String,
    output: String,
}

impl Runner {
    fn expression(&self, expr: &str, env: &BTreeMap<String, String>) -> String {
        let expr = expr.trim();
        let lookup = |map: &BTreeMap<String, String>, key: &str| map.get(key).cloned().unwrap_or_default();
        if let Some(key) = expr.strip_prefix("vars.") {
            lookup(&self.vars, key)
        } else if let Some(key) = expr.strip_prefix("secrets.") {
            lookup(&self.secrets, key)
        } else if let Some(key) = expr.strip_prefix("env.") {
            lookup(env, key)
        } else if expr == "runner.temp" {
            self.temp.path().display().to_string()
        } else {
            panic!("the emulated runner does not evaluate `{expr}`: teach it, or keep the workflow simpler")
        }
    }

    /// `text` with every `${{ … }}` evaluated.
    fn evaluate(&self, text: &str, env: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed expression") + start;
            out.push_str(&self.expression(&rest[start + 3..end], env));
            rest = &rest[end + 2..];
        }
        out + rest
    }

    fn env_of(&self, block: &Value, into: &mut BTreeMap<String, String>) {
        for (key, value) in block.as_object().into_iter().flatten() {
            let value =
                self.overrides.get(key).cloned().unwrap_or_else(|| self.evaluate(value.as_str().unwrap(), into));
            into.insert(key.clone(), value);
        }
    }

    /// Runs one job's steps in order, stopping at the first that fails.
    fn run_job(&mut self, workflow: &Value, job: &str) -> Result<(), Failed> {
        let mut env = BTreeMap::new();
        self.env_of(&workflow["env"], &mut env);
        self.env_of(&workflow["jobs"][job]["env"], &mut env);
        let mut path: Vec<String> = Vec::new();
        for (index, step) in workflow["jobs"][job]["steps"].as_array().unwrap().iter().enumerate() {
            let name = step["name"].as_str().or(step["uses"].as_str()).unwrap_or("step").to_string();
            if let Some(action) = step["uses"].as_str() {
                self.uses(action, step, &env);
                continue;
            }
            let mut step_env = env.clone();
            self.env_of(&step["env"], &mut step_env);
            let script = self.temp.path().join(format!("step-{index}.sh"));
            std::fs::write(&script, self.evaluate(step["run"].as_str().unwrap(), &step_env)).unwrap();
            let github_env = self.temp.path().join(format!("env-{index}"));
            let github_path = self.temp.path().join(format!("path-{index}"));
            std::fs::write(&github_env, "").unwrap();
            std::fs::write(&github_path, "").unwrap();
            let system_path = std::env::var("PATH").unwrap_or_default();
            let mut cmd = Command::new("bash");
            cmd.arg("-e").arg(&script).current_dir(&self.workspace).env_clear();
            cmd.envs(self.machine.iter().cloned()).envs(self.aws.iter().cloned()).envs(&step_env);
            cmd.env("PATH", path.iter().rev().cloned().chain([system_path]).collect::<Vec<_>>().join(":"));
            cmd.env("HOME", self.home.path()).env("CI", "true").env("RUNNER_TEMP", self.temp.path());
            cmd.env("GITHUB_ENV", &github_env)
                .env("GITHUB_PATH", &github_path)
                .env("GITHUB_WORKSPACE", &self.workspace);
            let (code, stdout, stderr) = output(&mut cmd);
            let printed = format!("{stdout}{stderr}");
            self.log.push_str(&format!("--- {name}\n{printed}"));
            if code != 0 {
                return Err(Failed { step: name, output: printed });
            }
            for line in std::fs::read_to_string(&github_env).unwrap().lines() {
                let (key, value) = line.split_once('=').expect("KEY=value lines");
                env.insert(key.to_string(), value.to_string());
            }
            path.extend(std::fs::read_to_string(&github_path).unwrap().lines().map(str::to_string));
        }
        Ok(())
    }

    fn uses(&mut self, action: &str, step: &Value, env: &BTreeMap<String, String>) {
        let (name, pin) = action.split_once('@').unwrap();
        assert!(pin.len() == 40, "{action} is pinned to a commit");
        match name {
            // The workspace is the project directory already.
            "actions/checkout" => {}
            "aws-actions/configure-aws-credentials" => {
                let role = self.evaluate(step["with"]["role-to-assume"].as_str().unwrap(), env);
                assert_eq!(role, self.vars["FLIXOPS_DEPLOY_ROLE_ARN"], "the deploy job assumes the deploy role");
                let region = self.evaluate(step["with"]["aws-region"].as_str().unwrap(), env);
                self.aws = common::moto_tls_env()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .chain([("AWS_REGION".to_string(), region)])
                    .collect();
            }
            other => panic!("the emulated runner does not know the action {other}"),
        }
    }
}

/// What a release publishes for the runner: the CLI archive as cargo-dist packs it (a root
/// directory named after the archive), the Lambda package, and a SHA-256 file for each.
fn release_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let stem = "flixops-x86_64-unknown-linux-gnu";
    std::fs::create_dir(dir.path().join(stem)).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_flixops"), dir.path().join(stem).join("flixops")).unwrap();
    let status =
        Command::new("tar").args(["-czf", &format!("{stem}.tar.gz"), stem]).current_dir(dir.path()).status().unwrap();
    assert!(status.success());
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(&bootstrap, common::elf::bootstrap("release")).unwrap();
    let package = flixops::aws::lambda::Artifact::load(Some(&bootstrap)).unwrap();
    std::fs::write(dir.path().join("flixops-lambda-x86_64.zip"), &package.zip).unwrap();
    for file in [format!("{stem}.tar.gz"), "flixops-lambda-x86_64.zip".into()] {
        let hash = hex::encode(sha2::Sha256::digest(std::fs::read(dir.path().join(&file)).unwrap()));
        std::fs::write(dir.path().join(format!("{file}.sha256")), format!("{hash} *{file}\n")).unwrap();
    }
    (dir, package.sha256)
}

/// Serves `dir` over HTTPS on 127.0.0.1 with moto's certificate for that address.
fn release_server(dir: &Path) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let certs = moto().ca_file.parent().unwrap().to_path_buf();
    let child = Command::new(test_python())
        .arg(repo().join("tests/peers/file_server.py"))
        .arg(port.to_string())
        .arg(dir)
        .arg(certs.join("cert.pem"))
        .arg(certs.join("key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the release server did not listen");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (Running(child), format!("https://127.0.0.1:{port}"))
}

/// An encrypted PKCS#8 key pair's private half, as PEM text (the venv's `cryptography`).
fn private_key(passphrase: &str) -> String {
    let script = format!(
        "from cryptography.hazmat.primitives.asymmetric import rsa\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
         print(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.BestAvailableEncryption({passphrase:?}.encode())).decode().strip())\n"
    );
    let out = Command::new(test_python()).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exported_deploy_job_installs_the_release_signs_in_with_the_key_pair_and_deploys() {
    let (dir, name) = project();
    let workflow = yaml(&export(dir.path(), &[]));
    let (release, lambda_sha) = release_dir();
    let (_server, url) = release_server(release.path());
    // An administrator's one-time grant (README "The Snowflake side"): doctor checks it.
    let admin = common::snowflake_client(dir.path()).await;
    admin.execute("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"FLIXOPS\"").await.unwrap();

    let passphrase = format!("pass-{:08x}", fastrand::u32(..));
    let key = private_key(&passphrase);
    let fakesnow = common::fakesnow().port.to_string();
    let empty_home = tempfile::tempdir().unwrap();
    let machine: Vec<(String, String)> = [
        // No connections.toml anywhere: the workflow's variables are the whole connection.
        ("SNOWFLAKE_HOME", empty_home.path().display().to_string()),
        // Where "Snowflake" is: fakesnow on this machine, as a private-link host would be given.
        ("SNOWFLAKE_CONNECTIONS_CI_HOST", "127.0.0.1".to_string()),
        ("SNOWFLAKE_CONNECTIONS_CI_PORT", fakesnow),
        ("SNOWFLAKE_CONNECTIONS_CI_PROTOCOL", "http".to_string()),
        // The release host's certificate is moto's test CA.
        ("CURL_CA_BUNDLE", moto().ca_file.display().to_string()),
        ("SSL_CERT_FILE", moto().ca_file.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let vars: BTreeMap<String, String> = [
        ("FLIXOPS_PLAN_ROLE_ARN", "arn:aws:iam::123456789012:role/plan"),
        ("FLIXOPS_DEPLOY_ROLE_ARN", "arn:aws:iam::123456789012:role/deploy"),
        ("SNOWFLAKE_ACCOUNT", "fake"),
        ("SNOWFLAKE_USER", "flixops"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secrets = |with_passphrase: bool| -> BTreeMap<String, String> {
        let mut s = BTreeMap::from([("SNOWFLAKE_PRIVATE_KEY".to_string(), key.clone())]);
        if with_passphrase {
            s.insert("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE".into(), passphrase.clone());
        }
        s
    };
    let runner = |with_passphrase: bool| Runner {
        workspace: dir.path().to_path_buf(),
        temp: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
        vars: vars.clone(),
        secrets: secrets(with_passphrase),
        machine: machine.clone(),
        aws: Vec::new(),
        overrides: BTreeMap::from([("FLIXOPS_RELEASE".to_string(), url.clone())]),
        log: String::new(),
    };
    assert_eq!(workflow["jobs"]["deploy"]["if"], "github.event_name == 'push'");

    // A release file that is not what its checksum says stops the job at the install.
    let archive = release.path().join("flixops-x86_64-unknown-linux-gnu.tar.gz");
    let good = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, [good.as_slice(), b"tampered"].concat()).unwrap();
    let failed = runner(true).run_job(&workflow, "deploy").unwrap_err();
    assert!(failed.step.starts_with("Install flixops"), "{failed:?}");
    assert!(failed.output.contains("FAILED"), "sha256sum names the file: {failed:?}");
    std::fs::write(&archive, good).unwrap();

    // An encrypted key without its passphrase cannot sign in: the deploy step fails, before any write.
    let mut no_passphrase = runner(false);
    let failed = no_passphrase.run_job(&workflow, "deploy").unwrap_err();
    assert_eq!(failed.step, "flixops deploy", "{failed:?}");
    assert!(failed.output.contains("private key"), "{failed:?}");

    let mut ci = runner(true);
    if let Err(failed) = ci.run_job(&workflow, "deploy") {
        panic!("{}: {}\n{}", failed.step, failed.output, ci.log);
    }
    assert!(ci.log.contains("Apply complete!"), "{}", ci.log);
    let lambda = aws_sdk_lambda::Client::new(&common::moto_sdk());
    let function = lambda.get_function().function_name(format!("{name}-prod-extract")).send().await.unwrap();
    assert_eq!(
        function.configuration().unwrap().code_sha256(),
        Some(lambda_sha.as_str()),
        "the function runs the release's Lambda package"
    );
    let key_file = ci.temp.path().join("snowflake/rsa_key.p8");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key, "the key as stored, not mangled");
    let body = key.lines().nth(1).unwrap();
    for log in [&ci.log, &no_passphrase.log] {
        assert!(!log.contains(body) && !log.contains(&passphrase), "a secret was printed:\n{log}");
    }
}

/// An Airflow DAG file's tasks as Airflow would load them: the file executed with the two names it
/// imports (`DAG`, `Param`, `BashOperator`) recording each task's command, working directory and
/// environment (its `params` rendered), and the `>>` chain. Returns the tasks in their run order.
fn dag_tasks(file: &Path) -> Vec<(String, Value)> {
    let loader = r#"
import json, re, sys, types
tasks, edges = {}, []
class DAG:
    def __init__(self, **kwargs): DAG.params = kwargs.get("params", {})
    def __enter__(self): return self
    def __exit__(self, *exc): return False
class Param:
    def __init__(self, default, **kwargs): self.default = default
class BashOperator:
    def __init__(self, task_id, bash_command, cwd=None, env=None, append_env=False, **kwargs):
        self.task_id = task_id
        # `env` is a templated field: Airflow renders `{{ params.NAME }}` before the task runs.
        render = lambda v: re.sub(r"\{\{ params\.(\w+) \}\}", lambda m: DAG.params[m[1]].default, v)
        env = env and {k: render(v) for k, v in env.items()}
        tasks[task_id] = {"bash_command": bash_command, "cwd": cwd, "env": env, "append_env": append_env}
    def __rshift__(self, other):
        edges.append((self.task_id, other.task_id))
        return other
airflow = types.ModuleType("airflow"); airflow.DAG = DAG
bash = types.ModuleType("airflow.operators.bash"); bash.BashOperator = BashOperator
param = types.ModuleType("airflow.models.param"); param.Param = Param
sys.modules.update({"airflow": airflow, "airflow.operators": types.ModuleType("airflow.operators"), "airflow.operators.bash": bash,
                    "airflow.models": types.ModuleType("airflow.models"), "airflow.models.param": param})
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), {"__name__": "dag"})
print(json.dumps({"tasks": tasks, "edges": edges}))
"#;
    let out = Command::new(scan_python()).args(["-c", loader]).arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let edges: Vec<(String, String)> = loaded["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_str().unwrap().to_string()))
        .collect();
    let tasks = loaded["tasks"].as_object().unwrap();
    let mut next = tasks.keys().find(|t| !edges.iter().any(|(_, to)| to == *t)).cloned();
    let mut ordered = Vec::new();
    while let Some(task) = next {
        next = edges.iter().find(|(from, _)| *from == task).map(|(_, to)| to.clone());
        ordered.push((task.clone(), tasks[&task].clone()));
    }
    assert_eq!(ordered.len(), tasks.len(), "one chain through every task: {loaded}");
    ordered
}

/// The exported Airflow DAG on aws-snowflake, run as a worker runs it: each BashOperator's command
/// in bash, in its directory, in order, with flixops on PATH and the credentials its header lists
/// (AWS from the environment, Snowflake as SNOWFLAKE_CONNECTIONS_CI_* with a key-pair file and no
/// connections.toml), against moto, fakesnow and the X API mock.
#[tokio::test(flavor = "multi_thread")]
async fn the_exported_airflow_dag_extracts_and_checks_with_the_variables_its_header_lists() {
    let (dir, name) = project();
    let timeline = common::x_api::Timeline::of([101, 102, 103]);
    let x = timeline.serve().await;
    let usage = r#"{"data":{"cap_reset_day":10,"project_cap":"2000000","project_usage":"3"}}"#;
    wiremock::Mock::given(wiremock::matchers::path("/2/usage/tweets"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(usage))
        .mount(&x)
        .await;
    let toml = std::fs::read_to_string(dir.path().join("flixops.toml")).unwrap();
    let toml = toml.replace("[extract]\n", &format!("[extract]\napi_base_url = \"{}\"\n", x.uri()));
    std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
    // The administrator's part: the first deploy, the token, the warehouse grant.
    let admin_env = common::cloud_env(dir.path());
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(&bootstrap, common::elf::bootstrap("airflow")).unwrap();
    let mut admin = flixops(dir.path());
    admin.args(["deploy", "--yes", "--env", "prod"]).envs(admin_env.clone()).env("FLIXOPS_ARTIFACT", &bootstrap);
    let toml = std::fs::read_to_string(dir.path().join("flixops.toml")).unwrap();
    // The admin signs in with the test's `default` connection; the workers with `ci` from variables.
    std::fs::write(dir.path().join("flixops.toml"), toml.replace("snowflake_connection = \"ci\"\n", "")).unwrap();
    let (code, _, stderr) = output(&mut admin);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(dir.path().join("flixops.toml"), toml).unwrap();
    let mut secrets = flixops(dir.path());
    secrets.args(["secrets", "set", "--env", "prod"]).envs(admin_env).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = secrets.stderr(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "worker-token").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let client = common::snowflake_client(dir.path()).await;
    client.execute("GRANT USAGE ON WAREHOUSE \"TRANSFORM_WH\" TO ROLE \"FLIXOPS\"").await.unwrap();

    let dag = dir.path().join("flixops_dag.py");
    let (code, text, stderr) = output(flixops(dir.path()).args(["export", "airflow", "--env", "prod"]));
    assert_eq!(code, 0, "{stderr}");
    for variable in
        ["SNOWFLAKE_CONNECTIONS_CI_ACCOUNT", "_USER", "_PRIVATE_KEY_FILE", "_PRIVATE_KEY_FILE_PWD", "FLIXOPS_ARTIFACT"]
    {
        assert!(text.contains(variable), "the header lists {variable}: {text}");
    }
    assert!(text.contains(&flixops::export::release_url()), "{text}");
    std::fs::write(&dag, &text).unwrap();

    let worker_bin = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_flixops"), worker_bin.path().join("flixops")).unwrap();
    let passphrase = "worker passphrase";
    let key = dir.path().join("worker_key.p8");
    std::fs::write(&key, private_key(passphrase) + "\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let empty_home = tempfile::tempdir().unwrap();
    let path = format!("{}:{}", worker_bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let worker: Vec<(String, String)> = common::moto_tls_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(
            [
                ("PATH", path),
                ("HOME", empty_home.path().display().to_string()),
                ("SNOWFLAKE_HOME", empty_home.path().display().to_string()),
                ("X_BEARER_TOKEN", "worker-token".to_string()),
                ("FLIXOPS_ARTIFACT", bootstrap.display().to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_ACCOUNT", "fake".to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_USER", "flixops".to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_PRIVATE_KEY_FILE", key.display().to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_PRIVATE_KEY_FILE_PWD", passphrase.to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_HOST", "127.0.0.1".to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_PORT", common::fakesnow().port.to_string()),
                ("SNOWFLAKE_CONNECTIONS_CI_PROTOCOL", "http".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        )
        .collect();
    let tasks = dag_tasks(&dag);
    let names: Vec<&str> = tasks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["extract", "doctor"], "aws-snowflake: the models are dynamic tables");
    for (task, spec) in &tasks {
        assert_eq!(spec["append_env"], true, "{task}: runs in the worker's environment, as the header says");
        let project = spec["env"]["FLIXOPS_PROJECT_DIR"].as_str().unwrap();
        assert_eq!(Path::new(project), dir.path(), "{task}: the project directory parameter defaults to the export's");
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(spec["bash_command"].as_str().unwrap());
        cmd.current_dir(worker_bin.path()).env_clear().envs(worker.iter().cloned());
        cmd.env("FLIXOPS_PROJECT_DIR", project);
        let (code, stdout, stderr) = output(&mut cmd);
        assert_eq!(code, 0, "task {task}: {stdout}\n{stderr}");
    }
    let over_tls = [aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(common::OverTls)];
    let s3 = flixops::aws::Clients::new(&common::moto_sdk(), &over_tls).s3;
    let keys = common::s3_keys(&s3, &format!("{name}-prod-tweets"), "flixops/tweets/").await;
    assert_eq!(keys.len(), 1, "the extract task stored the page: {keys:?}");
    // The extract task read the three tweets; doctor's token probe is one more search, which X
    // serves (and bills) like any other.
    assert_eq!(timeline.served().len(), 6, "three tweets read by extract, three by doctor's probe");
}
