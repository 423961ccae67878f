//! `flixops export`: artifacts for teams that run their own tooling, rendered from the same
//! templates and names `deploy` uses, so they cannot drift from it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::aws::stack::Scope;
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig};

/// The bootstrap module's hand-written files, compiled in so `export terraform` can write the module anywhere.
const TERRAFORM_FILES: &[(&str, &str)] = &[
    ("versions.tf", include_str!("../terraform/versions.tf")),
    ("variables.tf", include_str!("../terraform/variables.tf")),
    ("main.tf", include_str!("../terraform/main.tf")),
    ("outputs.tf", include_str!("../terraform/outputs.tf")),
    ("README.md", include_str!("../terraform/README.md")),
];

/// What can go wrong writing exported files.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file exists with other content; nothing was written.
    #[error("{path}: exists with other content; nothing was written (pass --force to overwrite)", path = .path.display())]
    WouldOverwrite { path: PathBuf },
    /// Writing failed.
    #[error("{path}: cannot write", path = .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `extract.schedule` has no Airflow equivalent.
    #[error(
        "{path}{line}: extract.schedule `{expression}` has no Airflow equivalent: {why}; use rate(…) or a \
         cron(…) without L, W, # or a year"
    )]
    Schedule { path: String, line: String, expression: String, why: String },
    /// The Snowflake connection's name cannot be part of an environment variable's name.
    #[error(
        "snowflake_connection `{name}`: the workflow passes the connection as SNOWFLAKE_CONNECTIONS_<NAME>_* \
         variables, so its name must be letters, digits and _; rename it in flixops.toml (and connections.toml)"
    )]
    ConnectionName { name: String },
    /// A template failed to render.
    #[error("template {name}: {message}")]
    Render { name: String, message: String },
}

/// The scope terraform's `templatefile()` fills in: every value a `${variable}` of the module.
pub fn terraform_scope() -> Scope {
    Scope {
        project: "${project}".into(),
        env: "${env}".into(),
        bucket: "${bucket}".into(),
        prefix: "${prefix}".into(),
        account: "${account_id}".into(),
        region: "${region}".into(),
    }
}

/// The module's files: the hand-written ones plus the two policy templates generated from
/// flixops' own deployer policy.
pub fn terraform_files() -> Vec<(String, String)> {
    let scope = terraform_scope();
    let pretty = |doc: String| {
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap_or_default();
        serde_json::to_string_pretty(&value).unwrap_or(doc) + "\n"
    };
    let mut files: Vec<(String, String)> =
        TERRAFORM_FILES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    files.push(("deploy-policy.json.tftpl".into(), pretty(scope.deployer_policy(false))));
    files.push(("plan-policy.json.tftpl".into(), pretty(scope.deployer_policy(true))));
    files
}

/// Writes files under `dir`; refuses, before writing anything, to replace a file with other
/// content unless `force`. Returns the paths written.
pub fn write_files(dir: &Path, files: &[(String, String)], force: bool) -> Result<Vec<PathBuf>, ExportError> {
    if !force {
        for (name, text) in files {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).is_ok_and(|existing| existing != *text) {
                return Err(ExportError::WouldOverwrite { path });
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Write { path: dir.to_path_buf(), source })?;
    files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| ExportError::Write { path: path.clone(), source })?;
            Ok(path)
        })
        .collect()
}

/// The actions the workflow uses, each pinned to a commit (a tag can be moved), with its release.
const ACTIONS: &[(&str, &str)] = &[
    ("checkout", "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"),
    ("aws", "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c # v6.2.3"),
    ("cache", "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5"),
    ("upload", "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0"),
    ("download", "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1"),
];

/// Where this version's release files are (cargo-dist's GitHub release, `v{version}`).
pub fn release_url() -> String {
    format!("{}/releases/download/v{}", env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_VERSION"))
}

/// How the GitHub Actions workflow gets flixops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install<'a> {
    /// This version's release archive and Lambda package, checksums verified.
    Release,
    /// Compiled on Amazon Linux 2023 with `cargo install --locked --no-default-features` and these
    /// arguments (None: this version from crates.io), cached between runs.
    FromSource(Option<&'a str>),
}

/// The GitHub Actions workflow: plan on pull requests, deploy then doctor on the deploy branch,
/// signing in to Snowflake with key-pair from repository secrets.
pub fn github_actions(
    env: &EnvConfig,
    cloud: &AwsSnowflakeTarget,
    region: &str,
    branch: &str,
    install: Install<'_>,
) -> Result<String, ExportError> {
    let connection = cloud.snowflake_connection.clone().unwrap_or_else(|| "default".into());
    if connection.is_empty() || !connection.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ExportError::ConnectionName { name: connection });
    }
    let install_args = match install {
        Install::FromSource(Some(args)) => args.to_string(),
        _ => format!("flixops --version {}", env!("CARGO_PKG_VERSION")),
    };
    let cache_key: String =
        install_args.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let actions: serde_json::Map<String, serde_json::Value> =
        ACTIONS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let expression = |e: &str| format!("${{{{ {e} }}}}");
    let data = json!({
        "version": env!("CARGO_PKG_VERSION"), "rust": env!("CARGO_PKG_RUST_VERSION"),
        "env": env.name, "region": region, "branch": branch,
        "from_source": matches!(install, Install::FromSource(_)), "install": install_args, "cache_key": cache_key,
        "release": release_url(), "architecture": cloud.lambda_architecture,
        "connection": connection, "connection_prefix": format!("SNOWFLAKE_CONNECTIONS_{}", connection.to_uppercase()),
        "actions": actions,
        "plan_role": expression("vars.FLIXOPS_PLAN_ROLE_ARN"), "deploy_role": expression("vars.FLIXOPS_DEPLOY_ROLE_ARN"),
        "secret_key": expression("secrets.SNOWFLAKE_PRIVATE_KEY"),
        "secret_passphrase": expression("secrets.SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
    });
    render("ci/github-actions", data)
}

/// The Airflow DAG: extract → transform → doctor on the project's schedule.
pub fn airflow(config: &Config, env: &EnvConfig) -> Result<String, ExportError> {
    let expression = &config.extract.schedule;
    let schedule = crate::config::schedule::Schedule::parse(expression).and_then(|s| s.airflow()).map_err(|why| {
        let (path, line) = (config.path.display().to_string(), config.extract.schedule_line);
        let line = line.map(|l| format!(": line {l}")).unwrap_or_default();
        ExportError::Schedule { path, line, expression: expression.clone(), why }
    })?;
    let connection = match &env.target {
        crate::config::Target::AwsSnowflake(cloud) => cloud.snowflake_connection.clone(),
        crate::config::Target::Local(_) => None,
    };
    let connection = connection.unwrap_or_else(|| "default".into());
    render(
        "ci/airflow",
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "env": env.name,
            "dag_id": format!("flixops_{}_{}", config.project.replace('-', "_"), env.name.replace('-', "_")),
            "project_dir": config.root.display().to_string(),
            "schedule": schedule,
            "local": matches!(env.target, crate::config::Target::Local(_)),
            "release": release_url(),
            "connection": connection,
            "connection_prefix": format!("SNOWFLAKE_CONNECTIONS_{}", connection.to_uppercase()),
        }),
    )
}

fn render(name: &str, data: serde_json::Value) -> Result<String, ExportError> {
    crate::templates::render(name, &data).map_err(|e| ExportError::Render { name: name.into(), message: e.to_string() })
}

/// Which document `export` prints (terraform writes files instead, with [`write_files`]).
#[derive(Debug, Clone)]
pub enum Document {
    /// The Airflow DAG.
    Airflow,
    /// The GitHub Actions workflow deploying from `branch`: the release, or compiled from source
    /// (`install`: what `cargo install` is given).
    GithubActions { branch: String, from_source: bool, install: Option<String> },
    /// The deployer's IAM policy (`read_only`: what plan and doctor need).
    IamPolicy { read_only: bool },
    /// The policies deploy attaches.
    Policies,
}

/// Renders one exported document for the environment. The IAM documents name the account: from
/// `account_id` with the environment's region, else from the profile's credentials.
pub async fn document(
    config: &Config,
    env: &EnvConfig,
    what: &Document,
    account_id: Option<&str>,
) -> Result<String, crate::Error> {
    let read_only = match what {
        Document::Airflow => return Ok(airflow(config, env)?),
        Document::GithubActions { branch, from_source, install } => {
            let cloud = crate::deploy::cloud_target(env)?;
            let region = cloud.region.clone().ok_or_else(|| region_hint(config, env))?;
            let install = if *from_source { Install::FromSource(install.as_deref()) } else { Install::Release };
            return Ok(github_actions(env, cloud, &region, branch, install)?);
        }
        Document::IamPolicy { read_only } => Some(*read_only),
        Document::Policies => None,
    };
    let cloud = crate::deploy::cloud_target(env)?;
    let (account, region) = account_and_region(env, account_id).await?;
    let scope = Scope::of(config, env, cloud, &account, &region);
    let value = match read_only {
        Some(read_only) => serde_json::from_str(&scope.deployer_policy(read_only)).unwrap_or_default(),
        None => {
            let principal = "arn:aws:iam::<snowflake-account>:user/<from DESC INTEGRATION>";
            let docs = scope.policies(principal).into_iter();
            serde_json::Value::Object(docs.map(|(k, v)| (k, serde_json::from_str(&v).unwrap_or_default())).collect())
        }
    };
    Ok(serde_json::to_string_pretty(&value).unwrap_or_default() + "\n")
}

fn region_hint(config: &Config, env: &EnvConfig) -> crate::Error {
    crate::Error::Usage(format!("set `region` under [env.{}] in {}", env.name, config.path.display()))
}

/// The account and region the IAM documents name: no AWS call when both are known.
async fn account_and_region(env: &EnvConfig, account_id: Option<&str>) -> Result<(String, String), crate::Error> {
    let cloud = crate::deploy::cloud_target(env)?;
    let account = account_id.map(valid_account).transpose()?;
    if let (Some(account), Some(region)) = (&account, &cloud.region) {
        return Ok((account.clone(), region.clone()));
    }
    let session =
        crate::aws::Session::connect(&env.name, cloud.aws_profile.as_deref(), cloud.region.as_deref(), &[]).await?;
    Ok((account.unwrap_or(session.account_id), session.region))
}

fn valid_account(id: &str) -> Result<String, crate::Error> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        Err(crate::Error::Usage(format!("--account-id `{id}`: an AWS account id is 12 digits")))
    }
}
