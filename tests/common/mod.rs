//! Shared test harness: the flixops binary, recorded pages, an X API mock and moto's S3.
#![allow(dead_code)]

pub mod elf;
pub mod report_page;
pub mod x_api;
pub mod x_archive;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The recordings copied from shared/fixtures/x-api (see their README for provenance).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/x-api").join(name)
}

/// The first page of a JSONL recording, as text.
pub fn page(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap().lines().next().unwrap().to_string()
}

/// The flixops binary with a clean environment for its settings.
pub fn flixops(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flixops"));
    cmd.current_dir(dir).env_remove("FLIXOPS_CONFIG").env_remove("FLIXOPS_ENV").env_remove("RUST_LOG");
    cmd.env_remove("AWS_LAMBDA_RUNTIME_API");
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SNOWFLAKE_")) {
        cmd.env_remove(key);
    }
    cmd.env("SNOWFLAKE_HOME", "/nonexistent/flixops-test-snowflake-home");
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("flixops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// moto's server on 127.0.0.1; it exits (and removes its certificates) when the test process
/// does, even from a static that is never dropped (tests/peers/lifeline.py).
pub struct Moto {
    pub endpoint: String,
    /// The same moto over HTTPS, with a certificate signed by `ca_file`.
    pub tls_endpoint: String,
    /// The CA to trust for `tls_endpoint` (give it to the binary as SSL_CERT_FILE).
    pub ca_file: PathBuf,
    _child: ChildGuard,
    _certs: tempfile::TempDir,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// The venv Python that has moto: $FLIXOPS_TEST_PYTHON, else the venv the test script makes.
pub fn test_python() -> PathBuf {
    if let Some(path) = std::env::var_os("FLIXOPS_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let path = PathBuf::from(home).join(".cache/flixops/venv/bin/python");
    assert!(
        path.exists(),
        "{} not found: run the README's test command (scripts/test.sh), which installs moto",
        path.display()
    );
    path
}

/// Starts moto on 127.0.0.1 through tests/peers/moto_server.py (which corrects two S3 answers the
/// Rust SDK rejects); `env` is extra environment for moto itself.
pub fn start_moto(env: &[(&str, &str)]) -> Moto {
    let port = free_port();
    let tls_port = std::iter::repeat_with(free_port).find(|p| *p != port).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/moto_server.py");
    let child = Command::new(test_python())
        .arg(launcher)
        .args([port.to_string(), tls_port.to_string()])
        .arg(certs.path())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in [tls_port, port] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on 127.0.0.1:{port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        tls_endpoint: format!("https://127.0.0.1:{tls_port}"),
        ca_file: certs.path().join("ca.pem"),
        _child: guard,
        _certs: certs,
    }
}

/// moto, started once per test binary; it exits with the test process.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start_moto(&[]))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Environment that points the AWS SDK at moto with dummy credentials and no profile lookups.
pub fn moto_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto().endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent/flixops-test-aws-config".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/flixops-test-aws-credentials".into()),
    ]
}

/// An SDK config for in-process clients on the moto at `endpoint`, with its dummy credentials.
pub fn moto_sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build()
}

/// [`moto_sdk_at`] the shared moto.
pub fn moto_sdk() -> aws_config::SdkConfig {
    moto_sdk_at(&moto().endpoint)
}

/// An S3 client on moto, and a fresh bucket for one test.
pub async fn moto_bucket(name_hint: &str) -> (aws_sdk_s3::Client, String) {
    let client = flixops::aws::s3_client(&moto_sdk());
    let bucket = format!("{name_hint}-{:08x}", fastrand::u32(..));
    client.create_bucket().bucket(&bucket).send().await.expect("moto creates the bucket");
    (client, bucket)
}

/// The keys under `prefix` in a (moto) bucket, sorted.
pub async fn s3_keys(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = client.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("moto lists the bucket");
    let mut keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    keys.sort();
    keys
}

/// All files under `dir` ending in `.parquet`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads every row of parquet files back as arrow batches.
pub fn read_batches(bytes: Vec<u8>) -> Vec<arrow::array::RecordBatch> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    reader.map(|b| b.unwrap()).collect()
}

/// The string values of a column across batches (None for nulls).
pub fn strings(batches: &[arrow::array::RecordBatch], column: &str) -> Vec<Option<String>> {
    use arrow::array::{Array, AsArray};
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..a.len()).map(move |i| (!a.is_null(i)).then(|| a.value(i).to_string())).collect::<Vec<_>>()
        })
        .collect()
}

/// Kills a child on drop (for processes a test stops itself).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Puts every request into its own moto account (moto's `x-moto-account-id` header), so tests
/// running in parallel never see each other's resources; STS answers with that account too.
#[derive(Debug, Clone)]
pub struct MotoAccount(pub String);

impl MotoAccount {
    /// A fresh random account id.
    pub fn new() -> Self {
        Self(format!("{:012}", fastrand::u64(100_000_000_000..1_000_000_000_000)))
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let headers = context.request_mut().headers_mut();
        headers.insert("x-moto-account-id", self.0.clone());
        OverTls.modify_before_signing(context, _components, _cfg)
    }
}

/// Marks an in-process client's plain-HTTP requests as TLS-terminated (`X-Forwarded-Proto: https`),
/// which tests/peers/moto_server.py honours: a bucket's TLS-only policy then treats them as the
/// HTTPS requests the binary makes. (The test process cannot trust the throwaway CA otherwise.)
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

impl aws_smithy_runtime_api::client::interceptors::Intercept for OverTls {
    fn name(&self) -> &'static str {
        "OverTls"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        context.request_mut().headers_mut().insert("x-forwarded-proto", "https");
        Ok(())
    }
}

/// fakesnow behind tests/peers/fakesnow_server.py (JSON rowsets, the account objects fakesnow
/// lacks, Snowpipe auto-ingest from moto's S3 and SQS), started once per test binary on 127.0.0.1.
pub struct FakeSnow {
    /// Its port.
    pub port: u16,
    _child: ChildGuard,
}

/// The shared fakesnow server.
pub fn fakesnow() -> &'static FakeSnow {
    static FAKESNOW: OnceLock<FakeSnow> = OnceLock::new();
    FAKESNOW.get_or_init(|| {
        let port = free_port();
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/fakesnow_server.py");
        // Its log (fakesnow's tracebacks) goes to a file, for when a statement fails unexpectedly;
        // one per test binary, replaced by its next run.
        let exe = std::env::current_exe().unwrap();
        let binary = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("tests");
        let log = std::fs::File::create(std::env::temp_dir().join(format!("flixops-fakesnow-{binary}.log"))).unwrap();
        // Snowflake's side in AWS (its queue, reading the bucket through the role) is on moto,
        // over HTTPS as Snowflake reaches S3.
        let aws = moto();
        let child = Command::new(test_python())
            .arg(launcher)
            .arg(port.to_string())
            .arg(&aws.tls_endpoint)
            .arg(&aws.ca_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("fakesnow starts");
        let guard = ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "fakesnow did not listen on 127.0.0.1:{port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        FakeSnow { port, _child: guard }
    })
}

/// Writes `dir/.snowflake/connections.toml` with a `default` connection to fakesnow (password
/// auth unless `extra` sets a key) and returns that directory, for `SNOWFLAKE_HOME`.
pub fn snowflake_home(dir: &Path, extra: &str) -> PathBuf {
    let home = dir.join(".snowflake");
    std::fs::create_dir_all(&home).unwrap();
    let auth = if extra.contains("private_key_file") { "" } else { "password = \"test\"\n" };
    let text = format!(
        "[default]\naccount = \"fake\"\nuser = \"flixops\"\n{auth}host = \"127.0.0.1\"\nport = {}\nprotocol = \"http\"\n{extra}",
        fakesnow().port
    );
    std::fs::write(home.join("connections.toml"), text).unwrap();
    home
}

/// moto over HTTPS, trusting its test CA, as the function and real S3 are reached: the bucket's
/// TLS-only policy denies object calls over plain HTTP.
pub fn moto_tls_env() -> Vec<(&'static str, String)> {
    let mut env = moto_env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", moto().tls_endpoint.clone()));
    env.push(("SSL_CERT_FILE", moto().ca_file.display().to_string()));
    env
}

/// moto (over HTTPS) plus a Snowflake home with the fakesnow connection (for CLI runs).
pub fn cloud_env(dir: &Path) -> Vec<(&'static str, String)> {
    let mut env = moto_tls_env();
    env.push(("SNOWFLAKE_HOME", snowflake_home(dir, "").display().to_string()));
    env
}

/// A signed-in client on fakesnow for a test's own statements (in-process tests), on warehouse
/// TEST_WH: reading or writing a table needs one, as on Snowflake.
pub async fn snowflake_client(dir: &Path) -> flixops::snowflake::Client {
    let home = snowflake_home(dir, "").display().to_string();
    let var = move |k: &str| (k == "SNOWFLAKE_HOME").then(|| home.clone());
    let mut connection = flixops::snowflake::connection::resolve(None, &var).unwrap();
    connection.warehouse = Some("TEST_WH".into());
    flixops::snowflake::Client::connect(&connection).await.unwrap()
}

/// What the data contract stores for a recorded tweet, computed from the page's JSON alone (the
/// oracle the extractor is checked against): its text and hashtags, taken from its original in
/// `includes.tweets` for a retweet, from `note_tweet` for a long post, with `&lt;`, `&gt;` and then
/// `&amp;` unescaped.
pub fn contract_text(page: &serde_json::Value, tweet: &serde_json::Value) -> (String, Vec<String>) {
    let retweeted = tweet["referenced_tweets"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["type"] == "retweeted"))
        .map(|r| &r["id"]);
    let original = retweeted.and_then(|id| {
        page["includes"]["tweets"].as_array().and_then(|originals| originals.iter().find(|o| &o["id"] == id))
    });
    let source = original.unwrap_or(tweet);
    let note = &source["note_tweet"];
    let text = note["text"].as_str().or(source["text"].as_str()).unwrap();
    let entities = if note["entities"].is_object() { &note["entities"] } else { &source["entities"] };
    let tags = entities["hashtags"]
        .as_array()
        .map_or(vec![], |tags| tags.iter().map(|h| h["tag"].as_str().unwrap().to_string()).collect());
    (text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), tags)
}

/// The hashtags of each row of a `tweet_hashtags` column, across batches.
pub fn hashtags(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<String>> {
    use arrow::array::{Array, AsArray};
    batches
        .iter()
        .flat_map(|b| {
            let lists = b.column_by_name("tweet_hashtags").unwrap().as_list::<i32>().clone();
            (0..lists.len())
                .map(move |i| lists.value(i).as_string::<i32>().iter().map(|t| t.unwrap().to_string()).collect())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A client on fakesnow signed in the way flixops signs in for `target` (the test connection names
/// no warehouse, so flixops's own fallback is exercised).
pub async fn flixops_client(dir: &Path, target: &flixops::config::AwsSnowflakeTarget) -> flixops::snowflake::Client {
    let home = snowflake_home(dir, "").display().to_string();
    let var = move |k: &str| (k == "SNOWFLAKE_HOME").then(|| home.clone());
    flixops::deploy::connect_snowflake_with(target, &var).await.unwrap()
}
