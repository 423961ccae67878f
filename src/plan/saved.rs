//! A plan saved by `plan --out FILE` and applied by `deploy FILE`, as terraform's saved plans: the
//! file records what the plan was made from (flixops' version, the environment, a checksum of
//! flixops.toml and models/, and every field read from the live state as a SHA-256, never as its
//! value), so `deploy FILE` applies exactly the reviewed plan or refuses, naming what moved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ObservedAll, Plan};

/// What the file's `format` field holds; another value is not a plan this flixops reads.
pub const FORMAT: &str = "flixops-plan/1";

/// The saved plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`FORMAT`].
    pub format: String,
    /// The flixops version that made it; another version refuses to apply it.
    pub flixops_version: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// `[project] name`.
    pub project: String,
    /// The environment it is for.
    pub env: String,
    /// SHA-256 of flixops.toml and every file under models/ (see [`config_checksum`]).
    pub config_sha256: String,
    /// SHA-256 over `observed`.
    pub observed_sha256: String,
    /// Per resource: None when it did not exist, else each field read as a SHA-256 of its value.
    pub observed: BTreeMap<String, Option<BTreeMap<String, String>>>,
    /// The plan as `plan --output json` prints it.
    pub plan: serde_json::Value,
}

/// A saved plan that cannot be read, or no longer matches what it was made from.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// The file cannot be read or written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a plan this flixops reads.
    #[error("{path}: not a flixops plan file ({why}); make one with `flixops plan --out FILE`", path = .path.display())]
    NotAPlan { path: PathBuf, why: String },
    /// `--env` names another environment than the plan's.
    #[error("{path} is a plan for environment `{planned}`, not `{asked}`; drop --env or pass --env {planned}", path = .path.display())]
    OtherEnv { path: PathBuf, planned: String, asked: String },
    /// What the plan was made from has changed; nothing was applied.
    #[error(
        "{path} no longer matches what it was made from, so nothing was applied:\n{}\nrun `flixops plan --out {path}` \
         again, review the new plan, then `flixops deploy {path}`",
        .moved.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n"),
        path = .path.display()
    )]
    Moved { path: PathBuf, moved: Vec<String> },
}

impl PlanFileError {
    /// True when the file or the flags are wrong (exit code 2); a plan that moved is a failure (1).
    pub fn is_usage(&self) -> bool {
        matches!(self, PlanFileError::NotAPlan { .. } | PlanFileError::OtherEnv { .. })
            || matches!(self, PlanFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// A stable name for `--output json`.
    pub fn kind(&self) -> &'static str {
        match self {
            PlanFileError::Moved { .. } => "plan_stale",
            _ => "plan_file",
        }
    }

    /// The next thing to do.
    pub fn fix(&self) -> String {
        match self {
            PlanFileError::Io { path, .. } | PlanFileError::NotAPlan { path, .. } => {
                format!("pass a file written by `flixops plan --out {}`", path.display())
            }
            PlanFileError::OtherEnv { planned, .. } => format!("drop --env, or pass --env {planned}"),
            PlanFileError::Moved { path, .. } => {
                format!("run `flixops plan --out {0}` again, review it, then `flixops deploy {0}`", path.display())
            }
        }
    }
}

/// What a plan is made from besides the live state.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `[project] name`.
    pub project: String,
    /// The environment.
    pub env: String,
    /// [`config_checksum`] of the project.
    pub config_sha256: String,
}

impl SavedPlan {
    /// Records `plan` and what it was made from.
    pub fn new(origin: &Origin, plan: &Plan, observed: &ObservedAll) -> Self {
        let observed = digest(observed);
        Self {
            format: FORMAT.to_string(),
            flixops_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            project: origin.project.clone(),
            env: origin.env.clone(),
            config_sha256: origin.config_sha256.clone(),
            observed_sha256: sha256(serde_json::to_string(&observed).unwrap_or_default().as_bytes()),
            observed,
            plan: serde_json::to_value(plan).unwrap_or_default(),
        }
    }

    /// Writes the file (through a temporary file beside it, so a reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        let io = |source| PlanFileError::Io { path: path.to_path_buf(), source };
        let text = serde_json::to_string_pretty(self).expect("a plan serializes") + "\n";
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.partial"));
        std::fs::write(&temp, text).map_err(io)?;
        std::fs::rename(&temp, path).map_err(io)
    }

    /// Reads a file written by [`SavedPlan::write`].
    pub fn read(path: &Path) -> Result<Self, PlanFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| PlanFileError::Io { path: path.to_path_buf(), source })?;
        let not_a_plan = |why: String| PlanFileError::NotAPlan { path: path.to_path_buf(), why };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| not_a_plan(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => serde_json::from_value(value).map_err(|e| not_a_plan(e.to_string())),
            Some(other) => Err(not_a_plan(format!("format `{other}`, this flixops reads `{FORMAT}`"))),
            None => Err(not_a_plan("no `format` field".into())),
        }
    }

    /// The value the plan sets a field of a resource to (`after`), when it changes it.
    pub fn planned_value(&self, address: &str, field: &str) -> Option<String> {
        let resources = self.plan.get("resources")?.as_array()?;
        let resource = resources.iter().find(|r| r.get("address").and_then(|a| a.as_str()) == Some(address))?;
        let fields = resource.get("fields")?.as_array()?;
        let change = fields.iter().find(|f| f.get("field").and_then(|n| n.as_str()) == Some(field))?;
        change.get("after")?.as_str().map(str::to_string)
    }

    /// What differs between the plan's making and now: flixops' version, the configuration, each
    /// resource's existence and fields, and the planned changes themselves. Empty: apply it.
    pub fn moved(&self, origin: &Origin, plan: &Plan, observed: &ObservedAll) -> Vec<String> {
        let mut moved = Vec::new();
        let version = env!("CARGO_PKG_VERSION");
        if self.flixops_version != version {
            moved.push(format!("made by flixops {}, this is flixops {version}", self.flixops_version));
        }
        if self.config_sha256 != origin.config_sha256 {
            moved.push("flixops.toml or models/ changed since the plan was made".to_string());
        }
        let now = digest(observed);
        if sha256(serde_json::to_string(&now).unwrap_or_default().as_bytes()) != self.observed_sha256 {
            moved.extend(state_moves(&self.observed, &now));
        }
        if moved.is_empty() {
            moved.extend(plan_moves(&self.plan, &serde_json::to_value(plan).unwrap_or_default()));
        }
        moved
    }
}

/// SHA-256 of flixops.toml and of every file under `models/` (path and bytes, sorted by path): a
/// plan made from other models or settings is not applied.
pub fn config_checksum(config_file: &Path, models: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(std::fs::read(config_file)?);
    let mut files = Vec::new();
    let mut dirs = vec![models.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() { dirs.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    for file in files {
        let relative = file.strip_prefix(models).unwrap_or(&file);
        hasher.update(b"\0");
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        hasher.update(std::fs::read(&file)?);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every observed field as a SHA-256 of its value: comparable, never revealing.
fn digest(observed: &ObservedAll) -> BTreeMap<String, Option<BTreeMap<String, String>>> {
    observed
        .iter()
        .map(|(address, state)| {
            let fields =
                state.as_ref().map(|s| s.fields.iter().map(|(k, v)| (k.clone(), sha256(v.as_bytes()))).collect());
            (address.0.clone(), fields)
        })
        .collect()
}

/// One line per resource whose existence or fields differ.
fn state_moves(
    then: &BTreeMap<String, Option<BTreeMap<String, String>>>,
    now: &BTreeMap<String, Option<BTreeMap<String, String>>>,
) -> Vec<String> {
    let addresses: std::collections::BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    addresses
        .into_iter()
        .filter_map(|address| match (then.get(address), now.get(address)) {
            (Some(Some(_)), Some(None)) => Some(format!("{address}: deleted since the plan was made")),
            (Some(None), Some(Some(_))) => Some(format!("{address}: created since the plan was made")),
            (Some(Some(a)), Some(Some(b))) if a != b => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let fields: Vec<&str> =
                    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(String::as_str).collect();
                Some(format!("{address}: {} changed since the plan was made", fields.join(", ")))
            }
            (None, Some(_)) | (Some(_), None) => Some(format!("{address}: not in both the plan and this flixops")),
            _ => None,
        })
        .collect()
}

/// One line per resource whose planned change differs (the same state and configuration, but,
/// say, another `--artifact`).
fn plan_moves(then: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    let by_address = |plan: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
        let resources = plan.get("resources").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        resources
            .into_iter()
            .map(|r| (r.get("address").and_then(|a| a.as_str()).unwrap_or_default().to_string(), r))
            .collect()
    };
    let (then, now) = (by_address(then), by_address(now));
    let addresses: std::collections::BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    addresses
        .into_iter()
        .filter(|a| then.get(*a) != now.get(*a))
        .map(|a| format!("{a}: the change planned now differs from the saved one (another --artifact?)"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Observed};

    fn observed(pairs: &[(&str, Option<&[(&str, &str)]>)]) -> ObservedAll {
        pairs
            .iter()
            .map(|(address, fields)| {
                let state = fields.map(|f| Observed {
                    fields: f.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                });
                (Address(address.to_string()), state)
            })
            .collect()
    }

    #[test]
    fn a_saved_plan_names_what_moved_and_never_holds_a_value() {
        let origin = Origin { project: "p".into(), env: "prod".into(), config_sha256: "c1".into() };
        let then =
            observed(&[("a.one", Some(&[("versioning", "Enabled"), ("policy", "s3cr3t-ish")])), ("b.two", None)]);
        let plan = Plan::new(Vec::new());
        let saved = SavedPlan::new(&origin, &plan, &then);
        let text = serde_json::to_string(&saved).unwrap();
        assert!(!text.contains("Enabled") && !text.contains("s3cr3t-ish"), "values are kept as checksums: {text}");
        assert!(saved.moved(&origin, &plan, &then).is_empty());

        let now = observed(&[
            ("a.one", Some(&[("versioning", "Suspended"), ("policy", "s3cr3t-ish")])),
            ("b.two", Some(&[])),
        ]);
        let changed = Origin { config_sha256: "c2".into(), ..origin.clone() };
        assert_eq!(
            saved.moved(&changed, &plan, &now),
            [
                "flixops.toml or models/ changed since the plan was made",
                "a.one: versioning changed since the plan was made",
                "b.two: created since the plan was made",
            ]
        );
    }
}
