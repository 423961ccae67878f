//! `flixops export`: artifacts for teams that run their own tooling, rendered from the same
//! templates and names `deploy` uses, so they cannot drift from it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::aws::stack::Scope;
use crate::config::{Config, EnvConfig};

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

/// The GitHub Actions workflow: plan on pull requests, deploy then doctor on the deploy branch.
/// `install` is what follows `cargo install --locked` (default: this version from crates.io).
pub fn github_actions(
    env: &EnvConfig,
    region: &str,
    branch: &str,
    install: Option<&str>,
) -> Result<String, ExportError> {
    let install =
        install.map(str::to_string).unwrap_or_else(|| format!("flixops --version {}", env!("CARGO_PKG_VERSION")));
    let data = json!({
        "version": env!("CARGO_PKG_VERSION"), "rust": env!("CARGO_PKG_RUST_VERSION"),
        "env": env.name, "region": region, "branch": branch, "install": install,
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
    render(
        "ci/airflow",
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "env": env.name,
            "dag_id": format!("flixops_{}_{}", config.project.replace('-', "_"), env.name.replace('-', "_")),
            "project_dir": config.root.display().to_string(),
            "schedule": schedule,
            "local": matches!(env.target, crate::config::Target::Local(_)),
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
    /// The GitHub Actions workflow deploying from `branch`, installing `install` if given.
    GithubActions { branch: String, install: Option<String> },
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
        Document::GithubActions { branch, install } => {
            let region = crate::deploy::cloud_target(env)?.region.clone().ok_or_else(|| region_hint(config, env))?;
            return Ok(github_actions(env, &region, branch, install.as_deref())?);
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
