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
        "extract.schedule `{expression}` has no Airflow equivalent: use rate(N minutes|hours|days) or a \
         cron(...) without # or L"
    )]
    Schedule { expression: String },
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
    let schedule = airflow_schedule(&config.extract.schedule)
        .ok_or_else(|| ExportError::Schedule { expression: config.extract.schedule.clone() })?;
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

/// An EventBridge schedule expression as an Airflow `schedule=` Python expression:
/// `rate(2 hours)` → `timedelta(hours=2)`, `cron(0 6 ? * 2-6 *)` → `"0 6 * * 1-5"` (EventBridge
/// counts days of the week from 1 = Sunday, cron from 0). None when there is no equivalent.
pub fn airflow_schedule(expression: &str) -> Option<String> {
    let inner = |prefix: &str| expression.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')).map(str::trim);
    if let Some(rate) = inner("rate(") {
        let mut parts = rate.split_whitespace();
        let n = parts.next()?.parse::<u32>().ok()?;
        let unit = parts.next()?.trim_end_matches('s');
        return ["minute", "hour", "day"].contains(&unit).then(|| format!("timedelta({unit}s={n})"));
    }
    let fields: Vec<&str> = inner("cron(")?.split_whitespace().collect();
    if fields.len() != 6 {
        return None;
    }
    let weekday = shift_weekdays(fields[4])?;
    let five = [fields[0], fields[1], fields[2], fields[3], &weekday].map(|f| f.replace('?', "*"));
    Some(format!("{:?}", five.join(" ")))
}

/// EventBridge day-of-week numbers (1-7, Sunday first) to cron's (0-6); names pass unchanged.
fn shift_weekdays(field: &str) -> Option<String> {
    if field.contains('#') || field.contains('L') {
        return None;
    }
    let mut out = String::new();
    let mut number = String::new();
    for c in field.chars().chain(std::iter::once(',')) {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if !number.is_empty() {
            let n: u32 = number.parse().ok()?;
            out.push_str(&(n.checked_sub(1)?).to_string());
            number.clear();
        }
        out.push(c);
    }
    out.pop();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventbridge_schedules_become_airflow_schedules() {
        assert_eq!(airflow_schedule("rate(2 hours)").unwrap(), "timedelta(hours=2)");
        assert_eq!(airflow_schedule("rate(1 day)").unwrap(), "timedelta(days=1)");
        assert_eq!(airflow_schedule("cron(0 6 * * ? *)").unwrap(), "\"0 6 * * *\"");
        assert_eq!(airflow_schedule("cron(0 6 ? * 2-6 *)").unwrap(), "\"0 6 * * 1-5\"", "Monday-Friday");
        assert_eq!(airflow_schedule("cron(15 8 ? * MON,1 *)").unwrap(), "\"15 8 * * MON,0\"");
        assert_eq!(airflow_schedule("at(2026-01-01T00:00:00)"), None);
        assert_eq!(airflow_schedule("cron(0 6 ? * 6#3 *)"), None);
    }
}
