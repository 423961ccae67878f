//! SQL models: `models/<schema>/<name>.sql` files holding one SELECT each, rendered with a few
//! handlebars helpers where Snowflake and DuckDB differ, ordered by their `ref`s.

mod compile;
mod helpers;
pub mod ledger;
pub mod snowflake;
mod statement;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use compile::{Compiled, CompiledModel, compile};
pub use helpers::Dialect;

/// The default models, compiled into the binary (`init` also copies them into a project).
pub const DEFAULT_MODELS: &[(&str, &str)] = &[
    ("staging/stg_tweets.sql", include_str!("../../snowflake/models/staging/stg_tweets.sql")),
    ("marts/users_stats.sql", include_str!("../../snowflake/models/marts/users_stats.sql")),
    ("marts/hashtags_daily.sql", include_str!("../../snowflake/models/marts/hashtags_daily.sql")),
    ("marts/user_top_hashtags.sql", include_str!("../../snowflake/models/marts/user_top_hashtags.sql")),
    ("marts/tweets_daily.sql", include_str!("../../snowflake/models/marts/tweets_daily.sql")),
    ("marts/multi_hashtag_tweets.sql", include_str!("../../snowflake/models/marts/multi_hashtag_tweets.sql")),
];

/// A model's source: `schema.name` and its template text.
#[derive(Debug, Clone)]
pub struct Model {
    /// Schema (the folder name).
    pub schema: String,
    /// Table name (the file stem).
    pub name: String,
    /// Handlebars template of one SELECT.
    pub template: String,
    /// Where it came from, for messages.
    pub origin: String,
}

impl Model {
    /// `schema.name`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A model rendered for one dialect.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `schema.name`.
    pub id: String,
    /// Schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// The SELECT, ready to run.
    pub sql: String,
    /// Models it reads (`schema.name`).
    pub refs: Vec<String>,
    /// SHA-256 of `sql`: the ledger compares it to decide what changed.
    pub checksum: String,
    /// The file it came from, for messages.
    pub origin: String,
}

/// A model that cannot be found, read or rendered, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The models directory or a file in it cannot be read.
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file breaks the `models/<schema>/<name>.sql` layout.
    #[error("{path}: {message}", path = .path.display())]
    Layout { path: PathBuf, message: String },
    /// Handlebars rejected the template (unknown helper, missing argument, syntax).
    #[error("{origin}: {message}")]
    Render { origin: String, message: String },
    /// A `ref` names no model.
    #[error("{origin}: refers to `{target}`, which is not a model; models are {known}")]
    UnknownRef { origin: String, target: String, known: String },
    /// Models refer to each other in a circle.
    #[error("models refer to each other in a cycle: {0}")]
    Cycle(String),
    /// A model that is not exactly one SELECT (or WITH … SELECT); nothing was run.
    #[error(
        "{origin}: {reason}; a model is exactly one SELECT (or WITH … SELECT), which flixops builds into \
         {id} itself: remove the other statements from the file (nothing was run)"
    )]
    NotOneSelect { origin: String, id: String, reason: String },
    /// `compile` was asked for a model the project does not have.
    #[error("no model `{name}`; the models are {known}")]
    NoSuchModel { name: String, known: String },
}

impl ModelError {
    /// True when the project's model files are at fault, not the disk (exit code 2).
    pub fn is_usage(&self) -> bool {
        !matches!(self, ModelError::Read { .. })
    }
}

/// The project's models from `dir` when it exists, else the built-in defaults.
pub fn discover(dir: &Path) -> Result<Vec<Model>, ModelError> {
    if !dir.exists() {
        return DEFAULT_MODELS
            .iter()
            .map(|(path, text)| model_from(Path::new(path), text, format!("(built-in) models/{path}")))
            .collect();
    }
    let mut models = Vec::new();
    for schema_entry in std::fs::read_dir(dir).map_err(read(dir))? {
        let schema_path = schema_entry.map_err(read(dir))?.path();
        if !schema_path.is_dir() {
            reject_loose_file(&schema_path)?;
            continue;
        }
        for entry in std::fs::read_dir(&schema_path).map_err(read(&schema_path))? {
            let path = entry.map_err(read(&schema_path))?.path();
            if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(read(&path))?;
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                models.push(model_from(&relative, &text, path.display().to_string())?);
            } else {
                reject_loose_file(&path)?;
            }
        }
    }
    models.sort_by_key(Model::id);
    Ok(models)
}

fn read(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Read { path: path.to_path_buf(), source }
}

fn reject_loose_file(path: &Path) -> Result<(), ModelError> {
    if path.extension().is_some_and(|e| e == "sql") || path.is_dir() {
        return Err(ModelError::Layout {
            path: path.to_path_buf(),
            message: "models live at models/<schema>/<name>.sql; move it there".into(),
        });
    }
    tracing::warn!("{}: not a model (only .sql files are), ignored", path.display());
    Ok(())
}

fn model_from(relative: &Path, text: &str, origin: String) -> Result<Model, ModelError> {
    let part = |p: Option<&std::ffi::OsStr>| p.and_then(|s| s.to_str()).unwrap_or("").to_string();
    let schema = part(relative.parent().and_then(Path::file_name));
    let name = part(relative.file_stem());
    for (what, value) in [("schema folder", &schema), ("file name", &name)] {
        if !is_plain_identifier(value) {
            return Err(ModelError::Layout {
                path: PathBuf::from(&origin),
                message: format!("{what} `{value}` must be lowercase a-z, 0-9 and _, starting with a letter"),
            });
        }
    }
    Ok(Model { schema, name, template: text.to_string(), origin })
}

fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Renders every model for `dialect`, in dependency order (a model after the models it reads).
pub fn render_all(models: &[Model], dialect: &Dialect) -> Result<Vec<Rendered>, ModelError> {
    let known: BTreeSet<String> = models.iter().map(Model::id).collect();
    let mut rendered = BTreeMap::new();
    for model in models {
        let (sql, refs) = helpers::render(model, dialect)?;
        if let Some(reason) = statement::problem(&sql) {
            return Err(ModelError::NotOneSelect { origin: model.origin.clone(), id: model.id(), reason });
        }
        if let Some(target) = refs.iter().find(|r| !known.contains(*r)) {
            let known = known.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(ModelError::UnknownRef { origin: model.origin.clone(), target: target.clone(), known });
        }
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let r = Rendered {
            id: model.id(),
            schema: model.schema.clone(),
            name: model.name.clone(),
            sql,
            refs,
            checksum,
            origin: model.origin.clone(),
        };
        rendered.insert(r.id.clone(), r);
    }
    topological(rendered)
}

/// Kahn's algorithm, alphabetical among ready models so the order is stable.
fn topological(mut pending: BTreeMap<String, Rendered>) -> Result<Vec<Rendered>, ModelError> {
    let mut ordered: Vec<Rendered> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let done: BTreeSet<&str> = ordered.iter().map(|r| r.id.as_str()).collect();
        let ready: Vec<String> = pending
            .values()
            .filter(|r| r.refs.iter().all(|d| done.contains(d.as_str())))
            .map(|r| r.id.clone())
            .collect();
        if ready.is_empty() {
            return Err(ModelError::Cycle(pending.keys().cloned().collect::<Vec<_>>().join(" → ")));
        }
        for id in ready {
            ordered.extend(pending.remove(&id));
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, template: &str) -> Model {
        let (schema, name) = id.split_once('.').unwrap();
        Model {
            schema: schema.into(),
            name: name.into(),
            template: template.into(),
            origin: format!("models/{id}.sql"),
        }
    }

    #[test]
    fn default_models_render_in_dependency_order() {
        let models = discover(Path::new("/nonexistent/models")).unwrap();
        let order: Vec<_> = render_all(&models, &Dialect::DuckDb).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(order[0], "staging.stg_tweets");
        assert_eq!(order.len(), 6);
    }

    #[test]
    fn unknown_ref_names_the_file() {
        let err =
            render_all(&[model("marts.a", "SELECT * FROM {{ref \"staging.nope\"}}")], &Dialect::DuckDb).unwrap_err();
        assert!(err.to_string().starts_with("models/marts.a.sql: refers to `staging.nope`"), "{err}");
    }

    #[test]
    fn a_cycle_is_an_error() {
        let models = [model("m.a", "SELECT * FROM {{ref \"m.b\"}}"), model("m.b", "SELECT * FROM {{ref \"m.a\"}}")];
        assert!(matches!(render_all(&models, &Dialect::DuckDb), Err(ModelError::Cycle(_))));
    }

    #[test]
    fn a_missing_helper_argument_is_an_error_not_empty_sql() {
        let err = render_all(&[model("m.a", "SELECT {{field \"x\"}}")], &Dialect::DuckDb).unwrap_err();
        assert!(matches!(err, ModelError::Render { .. }), "{err}");
    }

    #[test]
    fn a_sql_file_outside_a_schema_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loose.sql"), "SELECT 1").unwrap();
        let err = discover(dir.path()).unwrap_err();
        assert!(err.to_string().contains("models/<schema>/<name>.sql"), "{err}");
    }
}
