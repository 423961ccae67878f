//! The files init writes: flixops.toml (from a commented skeleton, or the existing file edited with
//! toml_edit so the user's comments and other keys survive; validated by [`Config::parse`] before
//! anything is written), the default models, `.gitignore` and the CI workflow.

use std::path::Path;

use toml_edit::{DocumentMut, InlineTable, Item, TableLike, Value};

use super::wizard::Answers;
use super::{Ci, InitError, Options, Report, TokenSource, Vars, shown};
use crate::config::Config;
use crate::snowflake::connection;

/// A new project file; the values are replaced by the answers, the comments stay.
const SKELETON: &str = r#"# flixops project file. `flixops init --force` updates it and keeps your edits and comments.
# Reference: the README's "Configuration" section. No secret is ever written here:
# extract.bearer_token only says where the X API token is read from.

[project]
name = "flixops-project"      # a-z, 0-9 and -: used in default resource names
default_env = "dev"           # used when --env is not given

[extract]
query = "flixbus"             # the X API v2 recent-search query
schedule = "rate(1 hour)"     # aws-snowflake: how often the extractor runs (EventBridge Scheduler)
bearer_token = { env = "X_BEARER_TOKEN" }   # where the token is read from, never the token itself
# max_results = 100           # tweets per page, 10..100
# max_pages = 10              # stop after N pages (default: follow next_token to the end)
"#;

/// The keys of one target that the other target rejects.
const LOCAL_KEYS: &[&str] = &["lake_dir", "warehouse"];
const CLOUD_KEYS: &[&str] =
    &["region", "aws_profile", "bucket", "snowflake_connection", "database", "snowflake_warehouse", "target_lag"];

/// The comment a key gets when init adds it.
fn comment(key: &str) -> Option<&'static str> {
    Some(match key {
        "region" => "AWS region of every resource",
        "aws_profile" => "from ~/.aws; leave out for the default credential chain",
        "bucket" => "the data bucket (deploy creates it)",
        "snowflake_connection" => "from ~/.snowflake/connections.toml",
        "database" => "holds raw, staging, marts and ops",
        "snowflake_warehouse" => "runs the dynamic tables",
        "target_lag" => "how fresh the dynamic tables are kept",
        "schedule" => "aws-snowflake: how often the extractor runs (EventBridge Scheduler)",
        "default_env" => "used when --env is not given",
        _ => return None,
    })
}

fn target_comment(target: &str) -> &'static str {
    match target {
        "local" => "a directory lake and DuckDB under .flixops/",
        _ => "S3, Lambda and Snowflake",
    }
}

/// The new `[env.NAME]` section, appended as text so its comments land where they belong.
fn env_section(name: &str, target: &str) -> String {
    let mut text = format!("\n[env.{name}]\ntarget = \"{target}\"  # {}\n", target_comment(target));
    if target == "local" {
        text.push_str("# lake_dir = \".flixops/lake\"              # relative to this file\n");
        text.push_str("# warehouse = \".flixops/warehouse.duckdb\"\n");
    }
    text
}

/// Everything rendered and checked before the first write.
pub(crate) struct Planned {
    config_text: String,
    workflow: Option<String>,
}

/// Renders flixops.toml (and the workflow) and checks it with flixops' own validation.
pub(crate) fn plan(options: &Options, existing: Option<&str>, answers: &Answers) -> Result<Planned, InitError> {
    let config_text = render_config(existing, answers, &options.config_file)?;
    let config = Config::parse(&config_text, &options.config_file).map_err(InitError::Rejected)?;
    let workflow = match (&answers.ci, &answers.cloud) {
        (Ci::GithubActions, Some(cloud)) => {
            let env = config.env(Some(answers.env.as_str())).map_err(InitError::Rejected)?;
            let crate::config::Target::AwsSnowflake(target) = &env.target else {
                return Ok(Planned { config_text, workflow: None });
            };
            let install = crate::export::Install::Release;
            Some(crate::export::github_actions(env, target, &cloud.region, "main", install)?)
        }
        _ => None,
    };
    Ok(Planned { config_text, workflow })
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut, InitError> {
    text.parse().map_err(|e: toml_edit::TomlError| InitError::Unparsable {
        path: path.to_path_buf(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    })
}

/// The skeleton or the existing text, with the answers set in place.
fn render_config(existing: Option<&str>, answers: &Answers, path: &Path) -> Result<String, InitError> {
    let mut doc = parse(existing.unwrap_or(SKELETON), path)?;
    let has_env = doc.get("env").and_then(Item::as_table_like).is_some_and(|t| t.contains_key(&answers.env));
    if !has_env {
        let mut text = doc.to_string();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&env_section(&answers.env, answers.target.name()));
        doc = parse(&text, path)?;
    }
    apply(&mut doc, answers, existing.is_none())?;
    Ok(doc.to_string())
}

/// Sets every key init owns; a fresh file also gets `default_env`.
fn apply(doc: &mut DocumentMut, a: &Answers, fresh: bool) -> Result<(), InitError> {
    let project = table(doc.as_table_mut(), "project")?;
    set(project, "name", &a.project);
    if fresh {
        set(project, "default_env", &a.env);
    }
    let extract = table(doc.as_table_mut(), "extract")?;
    set(extract, "query", &a.query);
    if let Some(schedule) = &a.schedule {
        set(extract, "schedule", schedule);
    }
    set_value(extract, "bearer_token", token_value(&a.token));
    let env = table(table(doc.as_table_mut(), "env")?, &a.env)?;
    set_target(env, a.target.name());
    match &a.cloud {
        None => remove(env, CLOUD_KEYS),
        Some(c) => {
            remove(env, LOCAL_KEYS);
            set(env, "region", &c.region);
            set_or_remove(env, "aws_profile", c.aws_profile.as_deref());
            set(env, "bucket", &c.bucket);
            set_or_remove(env, "snowflake_connection", c.snowflake_connection.as_deref());
            set(env, "database", &c.database);
            set(env, "snowflake_warehouse", &c.warehouse);
            set(env, "target_lag", &c.target_lag);
        }
    }
    Ok(())
}

/// The sub-table `key` of `parent`, created when missing.
fn table<'a>(parent: &'a mut dyn TableLike, key: &str) -> Result<&'a mut dyn TableLike, InitError> {
    let item = parent.entry(key).or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_like_mut()
        .ok_or_else(|| InitError::Usage(format!("`{key}` in flixops.toml is not a table; make it one, or remove it")))
}

fn set(table: &mut dyn TableLike, key: &str, value: &str) {
    set_value(table, key, Value::from(value));
}

/// Replaces a value keeping its comments and spacing; a new key gets its explaining comment.
fn set_value(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(item) => *item = Item::Value(value),
        None => {
            if let Some(text) = comment(key) {
                value.decor_mut().set_suffix(format!("  # {text}"));
            }
            table.insert(key, Item::Value(value));
        }
    }
}

/// Sets `target`; when it changes, its comment changes with it.
fn set_target(env: &mut dyn TableLike, target: &str) {
    let changed = env.get("target").and_then(Item::as_str) != Some(target);
    set(env, "target", target);
    if let (true, Some(Item::Value(value))) = (changed, env.get_mut("target")) {
        value.decor_mut().set_suffix(format!("  # {}", target_comment(target)));
    }
}

fn set_or_remove(table: &mut dyn TableLike, key: &str, value: Option<&str>) {
    match value {
        Some(value) => set(table, key, value),
        None => remove(table, &[key]),
    }
}

fn remove(table: &mut dyn TableLike, keys: &[&str]) {
    for key in keys {
        table.remove(key);
    }
}

/// `{ env = "NAME" }` or `{ secret_arn = "arn:…" }`: a reference, never the token.
fn token_value(token: &TokenSource) -> Value {
    let mut table = InlineTable::new();
    match token {
        TokenSource::Env(name) => table.insert("env", Value::from(name.as_str())),
        TokenSource::SecretArn(arn) => table.insert("secret_arn", Value::from(arn.as_str())),
    };
    table.fmt();
    Value::InlineTable(table)
}

/// Writes everything planned: the new connection, flixops.toml, models, .gitignore, the workflow.
pub(crate) fn write(
    options: &Options,
    answers: &Answers,
    planned: Planned,
    var: Vars<'_>,
) -> Result<Report, InitError> {
    let dir = &options.dir;
    let mut report = Report {
        config: shown(dir, &options.config_file),
        env: answers.env.clone(),
        target: answers.target.name(),
        written: Vec::new(),
        kept: Vec::new(),
        warnings: answers.warnings.clone(),
        next_steps: Vec::new(),
    };
    if let Some(new) = &answers.new_connection {
        let path = connection::add(new, var)?;
        report.written.push(path.display().to_string());
    }
    std::fs::create_dir_all(dir).map_err(|source| InitError::Write { path: dir.clone(), source })?;
    let config = &options.config_file;
    match std::fs::read_to_string(config).is_ok_and(|old| old == planned.config_text) {
        true => report.kept.push(shown(dir, config)),
        false => {
            write_file(config, &planned.config_text)?;
            report.written.push(shown(dir, config));
        }
    }
    models(dir, &mut report)?;
    gitignore(dir, &mut report)?;
    if let Some(text) = &planned.workflow {
        workflow(dir, text, options.force, &mut report)?;
    }
    Ok(report)
}

fn write_file(path: &Path, text: &str) -> Result<(), InitError> {
    let fail = |source| InitError::Write { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

/// Copies the default models into `models/`; a file that exists is the user's and is kept.
fn models(dir: &Path, report: &mut Report) -> Result<(), InitError> {
    for (relative, text) in crate::models::DEFAULT_MODELS {
        let path = dir.join("models").join(relative);
        if path.exists() {
            report.kept.push(shown(dir, &path));
        } else {
            write_file(&path, text)?;
            report.written.push(shown(dir, &path));
        }
    }
    Ok(())
}

/// Adds `.flixops/` (lake, warehouse, state) to .gitignore unless it is already ignored.
fn gitignore(dir: &Path, report: &mut Report) -> Result<(), InitError> {
    let path = dir.join(".gitignore");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let ignored =
        text.lines().map(str::trim).any(|l| matches!(l, ".flixops/" | ".flixops" | "/.flixops/" | "/.flixops"));
    if ignored {
        report.kept.push(shown(dir, &path));
        return Ok(());
    }
    let separator = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    write_file(&path, &format!("{text}{separator}.flixops/\n"))?;
    report.written.push(shown(dir, &path));
    Ok(())
}

/// Writes the CI workflow; an edited one is replaced only with `--force`.
fn workflow(dir: &Path, text: &str, force: bool, report: &mut Report) -> Result<(), InitError> {
    let path = dir.join(".github/workflows/flixops.yml");
    match std::fs::read_to_string(&path) {
        Ok(old) if old == text => report.kept.push(shown(dir, &path)),
        Ok(_) if !force => {
            report.kept.push(shown(dir, &path));
            report.warnings.push(format!(
                "{} differs from the workflow this flixops writes; pass --force to replace it",
                shown(dir, &path)
            ));
        }
        _ => {
            write_file(&path, text)?;
            report.written.push(shown(dir, &path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::TargetKind;
    use crate::init::wizard::Cloud;

    fn answers(cloud: bool) -> Answers {
        Answers {
            project: "acme".into(),
            env: if cloud { "prod".into() } else { "dev".into() },
            target: if cloud { TargetKind::AwsSnowflake } else { TargetKind::Local },
            cloud: cloud.then(|| Cloud {
                region: "eu-west-1".into(),
                aws_profile: None,
                bucket: "acme-prod-tweets".into(),
                snowflake_connection: Some("prod".into()),
                database: "ACME".into(),
                warehouse: "WH".into(),
                target_lag: "1 hour".into(),
            }),
            token: TokenSource::Env("X_TOKEN".into()),
            query: "#brexit".into(),
            schedule: None,
            ci: Ci::None,
            new_connection: None,
            warnings: Vec::new(),
        }
    }

    fn render(existing: Option<&str>, a: &Answers) -> String {
        let text = render_config(existing, a, Path::new("/p/flixops.toml")).unwrap();
        Config::parse(&text, Path::new("/p/flixops.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        text
    }

    #[test]
    fn a_fresh_file_is_commented_and_holds_only_a_token_reference() {
        let text = render(None, &answers(false));
        assert!(text.contains("name = \"acme\"      ") && text.contains("# a-z, 0-9 and -"), "{text}");
        assert!(text.contains("bearer_token = { env = \"X_TOKEN\" }   # where the token"), "{text}");
        assert!(text.contains("[env.dev]\ntarget = \"local\"  # a directory lake"), "{text}");
        assert!(text.contains("default_env = \"dev\""), "{text}");
    }

    #[test]
    fn an_edit_keeps_comments_and_other_keys_and_switches_target_keys() {
        let existing = "# my notes\n[project]\nname = \"old\" # renamed later\n\n[extract]\nmax_pages = 3 # keep\n\n\
                        [env.prod]\ntarget = \"local\"\nlake_dir = \"lake\"\nprefix = \"p\"\n";
        let text = render(Some(existing), &answers(true));
        assert!(text.starts_with("# my notes\n"), "{text}");
        assert!(text.contains("name = \"acme\" # renamed later"), "{text}");
        assert!(text.contains("max_pages = 3 # keep") && text.contains("prefix = \"p\""), "{text}");
        assert!(!text.contains("lake_dir") && !text.contains("aws_profile"), "{text}");
        assert!(text.contains("target = \"aws-snowflake\"  # S3, Lambda and Snowflake"), "{text}");
        assert!(text.contains("bucket = \"acme-prod-tweets\"  # the data bucket"), "{text}");
        assert!(!text.contains("default_env"), "an edit does not change which env is the default: {text}");
    }

    #[test]
    fn gitignore_gets_one_line_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target").unwrap();
        let mut report = Report {
            config: String::new(),
            env: String::new(),
            target: "local",
            written: Vec::new(),
            kept: Vec::new(),
            warnings: Vec::new(),
            next_steps: Vec::new(),
        };
        gitignore(dir.path(), &mut report).unwrap();
        gitignore(dir.path(), &mut report).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(), "target\n.flixops/\n");
        assert_eq!(report.kept, [".gitignore"]);
    }
}
