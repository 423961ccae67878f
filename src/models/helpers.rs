//! The handlebars helpers: the only places where Snowflake and DuckDB SQL differ.

use std::sync::{Arc, Mutex};

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};

use super::{Model, ModelError};

/// The SQL dialect a model is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialect {
    /// The local target's embedded DuckDB.
    DuckDb,
    /// Snowflake; names are qualified with this database.
    Snowflake { database: String },
}

/// The value types `field` and `cast` know.
fn type_name(dialect: &Dialect, kind: &str) -> Option<&'static str> {
    Some(match (dialect, kind) {
        (Dialect::DuckDb, "string") => "VARCHAR",
        (Dialect::DuckDb, "integer") => "BIGINT",
        (Dialect::DuckDb, "float") => "DOUBLE",
        (Dialect::DuckDb, "boolean") => "BOOLEAN",
        (Dialect::DuckDb, "timestamp") => "TIMESTAMP",
        (Dialect::DuckDb, "string_array") => "VARCHAR[]",
        (Dialect::Snowflake { .. }, "string") => "STRING",
        (Dialect::Snowflake { .. }, "integer") => "NUMBER",
        (Dialect::Snowflake { .. }, "float") => "FLOAT",
        (Dialect::Snowflake { .. }, "boolean") => "BOOLEAN",
        (Dialect::Snowflake { .. }, "timestamp") => "TIMESTAMP_NTZ",
        (Dialect::Snowflake { .. }, "string_array") => "ARRAY",
        _ => return None,
    })
}

/// `{{field "key" "type"}}`: a typed value from the raw `record` (timestamps as UTC, no zone).
///
/// On Snowflake the parquet file format sets `USE_LOGICAL_TYPE = TRUE`, so a UTC-adjusted parquet
/// timestamp loads as the instant it is (TIMESTAMP_LTZ); text with an explicit offset casts to the
/// same instant. The cast keeps that instant, CONVERT_TIMEZONE moves it to UTC, and the cast to
/// TIMESTAMP_NTZ keeps UTC's wall clock: no step reads the session's time zone
/// (https://docs.snowflake.com/en/sql-reference/functions/convert_timezone).
fn field(dialect: &Dialect, key: &str, kind: &str) -> String {
    let ty = type_name(dialect, kind).unwrap_or("?");
    match (dialect, kind) {
        (Dialect::DuckDb, "string") => format!("(record ->> '{key}')"),
        (Dialect::DuckDb, "string_array") => format!("CAST(record -> '{key}' AS {ty})"),
        // TIMESTAMPTZ → TIMESTAMP is UTC here: the embedded DuckDB has no ICU, so no session zone applies.
        (Dialect::DuckDb, "timestamp") => format!("CAST(CAST(record ->> '{key}' AS TIMESTAMPTZ) AS TIMESTAMP)"),
        (Dialect::DuckDb, _) => format!("CAST(record ->> '{key}' AS {ty})"),
        (Dialect::Snowflake { .. }, "timestamp") => {
            format!("CONVERT_TIMEZONE('UTC', record:\"{key}\"::TIMESTAMP_LTZ)::TIMESTAMP_NTZ")
        }
        (Dialect::Snowflake { .. }, _) => format!("record:\"{key}\"::{ty}"),
    }
}

/// `{{ref "schema.name"}}` / `{{source "schema.name"}}`: a table's qualified name.
fn qualified(dialect: &Dialect, id: &str) -> String {
    let (schema, name) = id.split_once('.').unwrap_or(("", id));
    match dialect {
        Dialect::DuckDb => format!("\"{schema}\".\"{name}\""),
        Dialect::Snowflake { database } => {
            format!("\"{database}\".\"{}\".\"{}\"", schema.to_uppercase(), name.to_uppercase())
        }
    }
}

/// `{{flatten "array_expr" "alias"}}`: one row per element, the element as `alias.value`.
fn flatten(dialect: &Dialect, expr: &str, alias: &str) -> String {
    match dialect {
        Dialect::DuckDb => format!("LATERAL (SELECT UNNEST({expr}) AS value) AS {alias}"),
        Dialect::Snowflake { .. } => format!("LATERAL FLATTEN(input => {expr}) AS {alias}"),
    }
}

fn cast(dialect: &Dialect, expr: &str, kind: &str) -> String {
    let ty = type_name(dialect, kind).unwrap_or("?");
    match dialect {
        Dialect::DuckDb => format!("CAST({expr} AS {ty})"),
        Dialect::Snowflake { .. } => format!("{expr}::{ty}"),
    }
}

/// `{{iso_weekday "expr"}}`: the ISO day of the week of a date or timestamp, 1 Monday … 7 Sunday
/// (Snowflake's DAYOFWEEK follows the WEEK_START parameter, DAYOFWEEKISO does not: "Calendar weeks
/// and weekdays" in https://docs.snowflake.com/en/sql-reference/functions-date-time).
fn iso_weekday(dialect: &Dialect, expr: &str) -> String {
    match dialect {
        Dialect::DuckDb => format!("isodow({expr})"),
        Dialect::Snowflake { .. } => format!("DAYOFWEEKISO({expr})"),
    }
}

fn array_size(dialect: &Dialect, expr: &str) -> String {
    match dialect {
        Dialect::DuckDb => format!("len({expr})"),
        Dialect::Snowflake { .. } => format!("ARRAY_SIZE({expr})"),
    }
}

/// Reads string argument `index` of helper `name`, or fails the render.
fn arg<'a>(h: &'a Helper, name: &'static str, index: usize) -> Result<&'a str, RenderErrorReason> {
    h.param(index).and_then(|p| p.value().as_str()).ok_or(RenderErrorReason::ParamNotFoundForIndex(name, index))
}

fn kind_arg<'a>(
    dialect: &Dialect,
    h: &'a Helper,
    name: &'static str,
    index: usize,
) -> Result<&'a str, RenderErrorReason> {
    let kind = arg(h, name, index)?;
    match type_name(dialect, kind) {
        Some(_) => Ok(kind),
        None => Err(RenderErrorReason::Other(format!(
            "{name}: unknown type `{kind}`; use string, integer, float, boolean, timestamp or string_array"
        ))),
    }
}

fn identifier_arg<'a>(h: &'a Helper, name: &'static str, index: usize) -> Result<&'a str, RenderErrorReason> {
    let value = arg(h, name, index)?;
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    ok.then_some(value).ok_or_else(|| RenderErrorReason::Other(format!("{name}: `{value}` is not a plain name")))
}

type Refs = Arc<Mutex<Vec<String>>>;

fn helper<F>(hb: &mut Handlebars, name: &'static str, f: F)
where
    F: Fn(&Helper) -> Result<String, RenderErrorReason> + Send + Sync + 'static,
{
    let def =
        move |h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output| -> HelperResult {
            Ok(out.write(&f(h)?)?)
        };
    hb.register_helper(name, Box::new(def));
}

fn register(hb: &mut Handlebars, dialect: &Dialect, refs: &Refs) {
    let d = dialect.clone();
    helper(hb, "field", move |h| Ok(field(&d, identifier_arg(h, "field", 0)?, kind_arg(&d, h, "field", 1)?)));
    let (d, r) = (dialect.clone(), refs.clone());
    helper(hb, "ref", move |h| {
        let id = identifier_arg(h, "ref", 0)?;
        r.lock().expect("refs lock").push(id.to_string());
        Ok(qualified(&d, id))
    });
    let d = dialect.clone();
    helper(hb, "source", move |h| Ok(qualified(&d, identifier_arg(h, "source", 0)?)));
    let d = dialect.clone();
    helper(hb, "flatten", move |h| Ok(flatten(&d, identifier_arg(h, "flatten", 0)?, identifier_arg(h, "flatten", 1)?)));
    let d = dialect.clone();
    helper(hb, "cast", move |h| Ok(cast(&d, identifier_arg(h, "cast", 0)?, kind_arg(&d, h, "cast", 1)?)));
    let d = dialect.clone();
    helper(hb, "array_size", move |h| Ok(array_size(&d, identifier_arg(h, "array_size", 0)?)));
    let d = dialect.clone();
    helper(hb, "iso_weekday", move |h| Ok(iso_weekday(&d, identifier_arg(h, "iso_weekday", 0)?)));
}

/// Renders one model; returns its SQL and the models it `ref`s.
pub(super) fn render(model: &Model, dialect: &Dialect) -> Result<(String, Vec<String>), ModelError> {
    let refs: Refs = Arc::default();
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    register(&mut hb, dialect, &refs);
    let failed =
        |e: &dyn std::fmt::Display| ModelError::Render { origin: model.origin.clone(), message: e.to_string() };
    let sql = hb.render_template(&model.template, &()).map_err(|e| failed(&e))?;
    let mut refs = refs.lock().expect("refs lock").clone();
    refs.sort();
    refs.dedup();
    Ok((sql.trim().to_string(), refs))
}
