//! `flixops init`, as a user meets it: scripted with `--no-interactive` (flags and FLIXOPS_INIT_*
//! variables), and answered on a pseudo-terminal like a person would (arrow keys, typed text).
//! Every run gets a fake HOME, ~/.aws and ~/.snowflake, so no test reads this machine's files; the
//! only network peer is moto on 127.0.0.1 (the AWS credential check).

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flixops::config::{Config, SecretRef, Target};
use serde_json::Value;

/// Looks like an X bearer token; no file init writes may contain it.
const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAFlixopsTestBearer0123456789TokenValueNeverWritten";
/// A key passphrase in the environment; it must never be written either.
const PASSPHRASE: &str = "key-passphrase-never-written-42";
/// The body of the test's private key: its path may be written, its content never.
const KEY_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDflixopsTestKeyBody";

/// A fake user: HOME with ~/.aws and ~/.snowflake, and an empty project directory.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home/.aws", "home/.snowflake", "home/keys", "project"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let key = format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n");
        std::fs::write(root.path().join("home/keys/rsa_key.p8"), key).unwrap();
        Self { root }
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.root.path().join("project")
    }

    fn key_file(&self) -> String {
        self.home().join("keys/rsa_key.p8").display().to_string()
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root.path().join(relative)).unwrap_or_default()
    }

    /// The flixops binary in the project directory with only the fake user's environment.
    fn command(&self) -> Command {
        let home = self.home();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flixops"));
        cmd.current_dir(self.project())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join(".aws/config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SNOWFLAKE_HOME", home.join(".snowflake"))
            .env("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", PASSPHRASE)
            .env("X_BEARER_TOKEN", TOKEN);
        cmd
    }

    /// Runs `flixops init ARGS` without a terminal; returns (exit code, stdout, stderr).
    fn init(&self, args: &[&str]) -> (i32, String, String) {
        self.init_with(args, &[])
    }

    fn init_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = self.command();
        cmd.arg("init").args(args).envs(env.iter().copied()).stdin(Stdio::null());
        common::output(&mut cmd)
    }

    fn config(&self) -> Config {
        Config::load(&self.project().join("flixops.toml")).unwrap()
    }

    /// Fails if any file under the sandbox holds the token, the passphrase or the key's content
    /// (the key file itself excepted).
    fn assert_no_secret_written(&self) {
        for path in files_under(self.root.path()) {
            if path.ends_with("keys/rsa_key.p8") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for secret in [TOKEN, PASSPHRASE, KEY_BODY] {
                assert!(!text.contains(secret), "{} contains a secret", path.display());
            }
        }
    }

    /// A moto-backed profile `ci` and an unreachable profile `broken`, both in `region`.
    fn aws_profiles(&self, moto: &str, region: &str) {
        self.write(
            "home/.aws/config",
            &format!(
                "[profile broken]\nregion = {region}\nendpoint_url = http://127.0.0.1:9\n\n\
                 [profile ci]\nregion = {region}\nendpoint_url = {moto}\n"
            ),
        );
        self.write(
            "home/.aws/credentials",
            "[broken]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n\
             [ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        );
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

fn cloud(config: &Config, env: &str) -> flixops::config::AwsSnowflakeTarget {
    match &config.env(Some(env)).unwrap().target {
        Target::AwsSnowflake(cloud) => cloud.clone(),
        other => panic!("expected aws-snowflake, got {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
#[cfg_attr(not(feature = "local"), ignore = "runs the local pipeline (DuckDB)")]
fn a_scripted_local_project_runs_the_demo_pipeline() {
    let sandbox = Sandbox::new();
    let (code, _, stderr) = sandbox.init(&["--no-interactive", "--target", "local", "--project", "demo-tweets"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("flixops run --demo"), "the next steps name the demo run: {stderr}");

    let config = sandbox.config();
    let env = config.env(None).unwrap();
    assert_eq!((config.project.as_str(), env.name.as_str(), env.target.kind()), ("demo-tweets", "dev", "local"));
    assert_eq!(config.extract.bearer_token, SecretRef::Env("X_BEARER_TOKEN".into()));
    let sql = files_under(&sandbox.project().join("models"));
    assert_eq!(sql.len(), flixops::models::DEFAULT_MODELS.len(), "{sql:?}");
    assert_eq!(sandbox.read("project/.gitignore"), ".flixops/\n");
    sandbox.assert_no_secret_written();

    // What the next steps promise works with the files as written.
    let mut run = sandbox.command();
    run.args(["run", "--demo"]);
    let (code, _, stderr) = common::output(&mut run);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("marts.users_stats"), "{stderr}");
    sandbox.assert_no_secret_written();
}

#[test]
fn a_scripted_cloud_project_holds_every_answer_and_the_ci_workflow() {
    let sandbox = Sandbox::new();
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-token";
    let (code, stdout, stderr) = sandbox.init(&[
        "--no-interactive",
        "--no-validate",
        "--target=aws-snowflake",
        "--env=prod",
        "--project=acme",
        "--aws-profile=prod",
        "--region=eu-west-1",
        "--bucket=acme-data",
        "--snowflake-connection=prod",
        "--database=ACME_DB",
        "--snowflake-warehouse=TRANSFORM_WH",
        "--target-lag=30 minutes",
        &format!("--token-secret-arn={arn}"),
        "--query=#flixbus -is:retweet",
        "--schedule=rate(2 hours)",
        "--ci=github-actions",
        "--output=json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let written: Vec<&str> = report["written"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(written.contains(&"flixops.toml") && written.contains(&".github/workflows/flixops.yml"), "{written:?}");
    assert!(report["next_steps"].to_string().contains("flixops secrets set --env prod"), "{report}");

    let config = sandbox.config();
    let c = cloud(&config, "prod");
    assert_eq!(
        (c.aws_profile.as_deref(), c.region.as_deref(), c.bucket.as_str(), c.snowflake_connection.as_deref()),
        (Some("prod"), Some("eu-west-1"), "acme-data", Some("prod"))
    );
    assert_eq!(
        (c.database.as_str(), c.warehouse.as_str(), c.target_lag.as_str()),
        ("ACME_DB", "TRANSFORM_WH", "30 minutes")
    );
    assert_eq!(config.default_env.as_deref(), Some("prod"));
    assert_eq!(
        (config.extract.query.as_str(), config.extract.schedule.as_str()),
        ("#flixbus -is:retweet", "rate(2 hours)")
    );
    assert_eq!(config.extract.bearer_token, SecretRef::SecretsManager(arn.into()));
    let workflow = sandbox.read("project/.github/workflows/flixops.yml");
    assert!(workflow.contains("FLIXOPS_ENV: \"prod\"") && workflow.contains("AWS_REGION: \"eu-west-1\""), "{workflow}");
    sandbox.assert_no_secret_written();
}

#[test]
fn answers_come_from_flixops_init_variables_too() {
    let sandbox = Sandbox::new();
    let vars = [
        ("FLIXOPS_INIT_TARGET", "aws-snowflake"),
        ("FLIXOPS_INIT_PROJECT", "from-vars"),
        ("FLIXOPS_INIT_REGION", "ap-southeast-2"),
        ("FLIXOPS_INIT_SNOWFLAKE_CONNECTION", "ops"),
        ("FLIXOPS_INIT_TOKEN_ENV", "MY_X_TOKEN"),
        ("FLIXOPS_ENV", "stage"),
    ];
    let (code, _, stderr) = sandbox.init_with(&["--no-interactive", "--no-validate"], &vars);
    assert_eq!(code, 0, "{stderr}");
    let config = sandbox.config();
    let c = cloud(&config, "stage");
    assert_eq!((c.region.as_deref(), c.snowflake_connection.as_deref()), (Some("ap-southeast-2"), Some("ops")));
    assert_eq!(c.bucket, "from-vars-stage-tweets");
    assert_eq!(config.extract.bearer_token, SecretRef::Env("MY_X_TOKEN".into()));
}

#[test]
fn an_existing_project_file_is_refused_without_force() {
    let sandbox = Sandbox::new();
    sandbox.write("project/flixops.toml", "# hand-written\n");
    let (code, _, stderr) = sandbox.init(&["--no-interactive"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("flixops.toml exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(sandbox.read("project/flixops.toml"), "# hand-written\n");
    assert!(!sandbox.project().join("models").exists(), "nothing else is written either");
}

#[test]
fn force_updates_the_file_in_place_keeping_comments_and_other_settings() {
    let sandbox = Sandbox::new();
    let (code, _, stderr) = sandbox.init(&["--no-interactive", "--project", "keepers"]);
    assert_eq!(code, 0, "{stderr}");
    let edited = sandbox.read("project/flixops.toml").replace("[extract]\n", "[extract]\nmax_pages = 3  # cost cap\n");
    let edited =
        format!("# team note: ask Ana before changing\n{edited}\n[env.qa]\ntarget = \"local\"\nprefix = \"qa\"\n");
    sandbox.write("project/flixops.toml", &edited);

    let (code, _, stderr) = sandbox.init(&["--no-interactive", "--force", "--query", "#brexit"]);
    assert_eq!(code, 0, "{stderr}");
    let text = sandbox.read("project/flixops.toml");
    assert!(text.starts_with("# team note: ask Ana before changing\n"), "{text}");
    assert!(text.contains("max_pages = 3  # cost cap") && text.contains("prefix = \"qa\""), "{text}");
    let config = sandbox.config();
    assert_eq!((config.project.as_str(), config.extract.query.as_str()), ("keepers", "#brexit"));
    assert_eq!((config.extract.max_pages, config.envs.len()), (Some(3), 2));
}

#[test]
fn existing_models_and_gitignore_lines_are_kept() {
    let sandbox = Sandbox::new();
    sandbox.write("project/models/staging/stg_tweets.sql", "-- mine\nSELECT 1 AS tweet_id\n");
    sandbox.write("project/.gitignore", "target/\n.flixops/\n");
    let (code, stdout, stderr) = sandbox.init(&["--no-interactive", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let kept = report["kept"].to_string();
    assert!(kept.contains("models/staging/stg_tweets.sql") && kept.contains(".gitignore"), "{report}");
    assert_eq!(sandbox.read("project/models/staging/stg_tweets.sql"), "-- mine\nSELECT 1 AS tweet_id\n");
    assert!(sandbox.project().join("models/marts/users_stats.sql").exists());
    for _ in 0..2 {
        let (code, _, stderr) = sandbox.init(&["--no-interactive", "--force"]);
        assert_eq!(code, 0, "{stderr}");
    }
    assert_eq!(sandbox.read("project/.gitignore"), "target/\n.flixops/\n");
}

#[test]
fn without_a_terminal_init_asks_for_no_interactive_instead_of_waiting() {
    let sandbox = Sandbox::new();
    let (code, _, stderr) = sandbox.init(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pass --no-interactive"), "{stderr}");
    assert!(!sandbox.project().join("flixops.toml").exists());
}

#[test]
fn a_scripted_cloud_init_checks_aws_and_adds_a_private_snowflake_connection() {
    let sandbox = Sandbox::new();
    sandbox.aws_profiles(&common::moto().endpoint, "us-east-1");
    let key = sandbox.key_file();
    let args = [
        "--no-interactive",
        "--target=aws-snowflake",
        "--aws-profile=ci",
        "--snowflake-connection=flixops",
        "--snowflake-account=acme-prod",
        "--snowflake-user=FLIXOPS",
        "--snowflake-private-key-file",
        &key,
    ];
    let (code, _, stderr) = sandbox.init(&args);
    assert_eq!(code, 0, "{stderr}");
    let c = cloud(&sandbox.config(), "prod");
    assert_eq!(
        (c.aws_profile.as_deref(), c.region.as_deref(), c.snowflake_connection.as_deref()),
        (Some("ci"), Some("us-east-1"), Some("flixops")),
        "the region comes from the profile"
    );
    let connections = sandbox.home().join(".snowflake/connections.toml");
    assert_eq!(mode(&connections), 0o600);
    let home = sandbox.home().join(".snowflake").display().to_string();
    let var = |k: &str| (k == "SNOWFLAKE_HOME").then(|| home.clone());
    let resolved = flixops::snowflake::connection::resolve(Some("flixops"), &var).unwrap();
    assert_eq!((resolved.account.as_str(), resolved.user.as_str()), ("acme-prod", "FLIXOPS"));
    sandbox.assert_no_secret_written();

    // A scripted run stops on a failed check instead of writing a project that cannot deploy.
    let other = Sandbox::new();
    other.aws_profiles(&common::moto().endpoint, "us-east-1");
    let (code, _, stderr) = other.init(&["--no-interactive", "--target=aws-snowflake", "--aws-profile=broken"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot reach AWS STS") && stderr.contains("--no-validate"), "{stderr}");
    let (code, _, stderr) =
        other.init(&["--no-interactive", "--target=aws-snowflake", "--aws-profile=ci", "--snowflake-connection=nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Snowflake connection `nope`") && stderr.contains("--no-validate"), "{stderr}");
    assert!(!other.project().join("flixops.toml").exists());
}

#[test]
fn the_wizard_on_a_terminal_writes_a_local_project() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.arg("init").env("TERM", "xterm");
    let mut term = pty::Pty::spawn(cmd);
    term.answer("Project name", "pty-demo\r");
    term.answer("Where should the pipeline run?", "\r");
    term.answer("Environment name", "\r");
    term.answer("Where is the X API bearer token?", "\r");
    term.answer("Environment variable holding the token", "MY_X_TOKEN\r");
    term.answer("X recent-search query", "#brexit\r");
    term.expect("next steps");
    assert_eq!(term.wait(), 0, "{}", term.screen());
    assert!(term.screen().contains("MY_X_TOKEN is not set"), "{}", term.screen());

    let config = sandbox.config();
    let env = config.env(None).unwrap();
    assert_eq!((config.project.as_str(), env.name.as_str(), env.target.kind()), ("pty-demo", "dev", "local"));
    assert_eq!(config.extract.bearer_token, SecretRef::Env("MY_X_TOKEN".into()));
    assert_eq!(config.extract.query, "#brexit");
    sandbox.assert_no_secret_written();
}

#[test]
fn the_wizard_repicks_a_failing_profile_and_creates_a_snowflake_connection() {
    const DOWN: &str = "\x1b[B";
    let sandbox = Sandbox::new();
    sandbox.aws_profiles(&common::moto().endpoint, "eu-central-1");
    sandbox.write("home/.snowflake/connections.toml", "# mine\n[legacy]\naccount = \"old\"\nuser = \"u\"\n");
    let mut cmd = sandbox.command();
    cmd.arg("init").env("TERM", "xterm");
    let mut term = pty::Pty::spawn(cmd);
    term.answer("Project name", "cloudy\r");
    term.answer("Where should the pipeline run?", &format!("{DOWN}\r"));
    term.answer("Environment name", "\r");
    term.answer("AWS profile", "\r"); // `broken`, listed first
    term.answer("AWS region", "\r"); // the profile's region
    term.expect("cannot reach AWS STS");
    term.answer("What now?", "\r"); // pick again
    term.answer("AWS profile", &format!("{DOWN}\r")); // `ci`
    term.answer("AWS region", "\r");
    term.expect("✓ AWS account");
    term.answer("S3 bucket", "\r");
    term.expect("✓ bucket cloudy-prod-tweets is free: deploy creates it");
    term.answer("Snowflake connection", &format!("{DOWN}\r")); // create a new one
    term.answer("Name of the new Snowflake connection", "\r");
    term.answer("Snowflake account identifier", "acme-prod\r");
    term.answer("Snowflake user", "FLIXOPS\r");
    term.answer("Private key file", &format!("{}\r", sandbox.key_file()));
    term.expect("✓ Snowflake connection `cloudy`");
    term.answer("Snowflake database", "\r");
    term.answer("Snowflake warehouse", "\r");
    term.answer("Where is the X API bearer token?", &format!("{DOWN}\r"));
    term.answer("Secrets Manager secret ARN", "arn:aws:secretsmanager:eu-central-1:123456789012:secret:x\r");
    term.expect("flixops secrets set");
    term.answer("X recent-search query", "\r");
    term.answer("Extraction schedule", "\r");
    term.answer("CI workflow", &format!("{DOWN}\r"));
    term.expect("next steps");
    assert_eq!(term.wait(), 0, "{}", term.screen());

    let config = sandbox.config();
    let c = cloud(&config, "prod");
    assert_eq!(
        (c.aws_profile.as_deref(), c.region.as_deref(), c.bucket.as_str(), c.snowflake_connection.as_deref()),
        (Some("ci"), Some("eu-central-1"), "cloudy-prod-tweets", Some("cloudy"))
    );
    assert!(matches!(config.extract.bearer_token, SecretRef::SecretsManager(_)));
    assert!(sandbox.project().join(".github/workflows/flixops.yml").exists());
    let connections = sandbox.read("home/.snowflake/connections.toml");
    assert!(connections.starts_with("# mine\n[legacy]") && connections.contains("[cloudy]"), "{connections}");
    sandbox.assert_no_secret_written();
}

/// A child process on a pseudo-terminal (libc's openpty): the screen it draws is collected, and
/// keys are typed into it. Enough of `expect` for dialoguer's prompts, without a pty crate.
mod pty {
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    pub struct Pty {
        master: File,
        child: Child,
        output: Arc<Mutex<Vec<u8>>>,
        /// How much of the stripped screen earlier expectations consumed.
        seen: usize,
    }

    impl Pty {
        /// Starts `cmd` with stdin, stdout and stderr on a new 40x120 terminal it controls.
        pub fn spawn(mut cmd: Command) -> Self {
            let (mut master, mut slave) = (0, 0);
            let size = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
            let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
            assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
            // Not inherited by the processes other tests start meanwhile (they would hold the terminal open).
            for fd in [master, slave] {
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
            let stdio = || Stdio::from(slave.try_clone().unwrap());
            cmd.stdin(stdio()).stdout(stdio()).stderr(stdio());
            // A session of its own with the terminal as its controlling tty, like a login shell's child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("flixops starts on the pty");
            drop(cmd);
            drop(slave);
            let output = Arc::new(Mutex::new(Vec::new()));
            let (mut reader, sink) = (master.try_clone().unwrap(), output.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Ends with EIO once the child and every copy of the terminal's other side are gone.
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            Self { master, child, output, seen: 0 }
        }

        /// Everything drawn so far, without escape sequences.
        pub fn screen(&self) -> String {
            strip(&self.output.lock().unwrap())
        }

        /// Waits up to 60 s for `text` to appear after what earlier expectations consumed.
        pub fn expect(&mut self, text: &str) {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let screen = self.screen();
                if let Some(at) = screen.get(self.seen..).and_then(|rest| rest.find(text)) {
                    self.seen += at + text.len();
                    return;
                }
                assert!(Instant::now() < deadline, "`{text}` did not appear; the screen:\n{screen}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Waits for a prompt, then types `keys`.
        pub fn answer(&mut self, prompt: &str, keys: &str) {
            self.expect(prompt);
            // Let the prompt switch the terminal to raw mode before the keys arrive.
            std::thread::sleep(Duration::from_millis(150));
            self.master.write_all(keys.as_bytes()).unwrap();
        }

        /// The exit code, waiting up to 60 s.
        pub fn wait(&mut self) -> i32 {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status.code().unwrap_or(-1);
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("flixops did not exit; the screen:\n{}", self.screen());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Pty {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The text of terminal output: escape sequences and carriage returns removed; an incomplete
    /// UTF-8 character at the end is left for the next read.
    fn strip(bytes: &[u8]) -> String {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' if chars.peek() == Some(&'[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                '\x1b' => {
                    chars.next();
                }
                '\r' => {}
                c => out.push(c),
            }
        }
        out
    }
}

/// The scripted cloud answers, with a new Snowflake connection (no sign-in) and this bucket.
fn cloud_args(key: &str, profile: &str, bucket: &str) -> Vec<String> {
    [
        "--no-interactive",
        "--target=aws-snowflake",
        profile,
        bucket,
        "--snowflake-connection=flixops",
        "--snowflake-account=acme-prod",
        "--snowflake-user=FLIXOPS",
        "--snowflake-private-key-file",
        key,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_is_checked_live_and_one_these_credentials_cannot_use_is_refused() {
    // A bucket already in this account is adopted.
    let (_, mine) = common::moto_bucket("init-adopt").await;
    let sandbox = Sandbox::new();
    sandbox.aws_profiles(&common::moto().endpoint, "us-east-1");
    let key = sandbox.key_file();
    let args = cloud_args(&key, "--aws-profile=ci", &format!("--bucket={mine}"));
    let (code, _, stderr) = sandbox.init(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(cloud(&sandbox.config(), "prod").bucket, mine);

    // Credentials that may not look at the bucket (here: a user with no S3 permission, on a moto
    // that checks keys): the name is refused before anything is written.
    let strict = common::start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let sdk = common::moto_sdk_at(&strict.endpoint);
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.create_user().user_name("limited").send().await.unwrap();
    let who =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;
    iam.put_user_policy().user_name("limited").policy_name("who").policy_document(who).send().await.unwrap();
    let created = iam.create_access_key().user_name("limited").send().await.unwrap().access_key.unwrap();
    let other = Sandbox::new();
    other.write(
        "home/.aws/config",
        &format!("[profile limited]\nregion = us-east-1\nendpoint_url = {}\n", strict.endpoint),
    );
    other.write(
        "home/.aws/credentials",
        &format!(
            "[limited]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            created.access_key_id, created.secret_access_key
        ),
    );
    let key = other.key_file();
    let args = cloud_args(&key, "--aws-profile=limited", "--bucket=someone-elses-tweets");
    let (code, _, stderr) = other.init(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--bucket: bucket someone-elses-tweets exists but not for these credentials"), "{stderr}");
    assert!(!other.project().join("flixops.toml").exists());
}

#[test]
fn an_existing_snowflake_connection_is_signed_in_with_and_a_dead_one_refused() {
    let sandbox = Sandbox::new();
    sandbox.aws_profiles(&common::moto().endpoint, "us-east-1");
    let home = common::snowflake_home(&sandbox.home(), "");
    let args = ["--no-interactive", "--target=aws-snowflake", "--aws-profile=ci", "--snowflake-connection=default"];
    let (code, _, stderr) = sandbox.init(&args);
    assert_eq!(code, 0, "fakesnow accepts the sign-in: {stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!(
        "[default]\naccount = \"a\"\nuser = \"u\"\npassword = \"hunter2\"\nhost = \"127.0.0.1\"\nport = {closed}\nprotocol = \"http\"\n"
    );
    std::fs::write(home.join("connections.toml"), text).unwrap();
    let other = Sandbox::new();
    other.aws_profiles(&common::moto().endpoint, "us-east-1");
    let other_home = other.home().join(".snowflake");
    std::fs::create_dir_all(&other_home).unwrap();
    std::fs::copy(home.join("connections.toml"), other_home.join("connections.toml")).unwrap();
    let (code, _, stderr) = other.init(&args);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("cannot connect to Snowflake (connection `default`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!other.project().join("flixops.toml").exists(), "nothing written on a failed check");
}
