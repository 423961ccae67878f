//! The local target's commands: load the lake's new files, rebuild the models, and `run` (extract,
//! then both).

use std::io::Write;

use serde::Serialize;

use super::models::{ModelChange, ModelOutcome};
use super::{LoadReport, Warehouse};
use crate::Error;
use crate::config::{Config, EnvConfig};
use crate::extract;
use crate::logs::history::remember;
use crate::models::{self, Dialect};
use crate::output::Render;
use crate::pipeline::{self, Input};

/// What `transform` did on the local target.
#[derive(Debug, Clone, Serialize)]
pub struct TransformReport {
    /// Files loaded first (Snowpipe's job in the cloud).
    pub load: LoadReport,
    /// Each model, in the order it was built.
    pub models: Vec<ModelOutcome>,
}

/// Loads pending lake files, then rebuilds every model (local target); it goes into the run history.
pub fn transform(config: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
    let result = transform_unrecorded(config, env);
    remember(env, "transform", &result, |t| ("ok", t.summary(), None));
    result
}

fn transform_unrecorded(config: &Config, env: &EnvConfig) -> Result<TransformReport, Error> {
    let local = pipeline::local_target(env)?;
    let mut warehouse = Warehouse::open(local)?;
    let load = warehouse.load_new_files(&env.prefix)?;
    let found = models::discover(&config.root.join("models"))?;
    let rendered = models::render_all(&found, &Dialect::DuckDb)?;
    let models = super::models::apply(warehouse.connection(), &rendered)?;
    Ok(TransformReport { load, models })
}

/// What `run` did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The warehouse file, to query.
    #[serde(skip)]
    pub warehouse: std::path::PathBuf,
    /// The extraction.
    pub extract: extract::Report,
    /// The load and the models.
    pub transform: TransformReport,
    /// The report page `run --demo` writes beside the warehouse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<std::path::PathBuf>,
}

/// extract → load → transform, once (local target). The models are read and checked first, so a
/// model that cannot run stops the run before anything is fetched; a load or transform that fails
/// after the extraction says what was stored and that `flixops transform` carries on from it.
/// The run goes into the run history (`flixops logs`) as one line.
pub async fn run(config: &Config, env: &EnvConfig, input: &Input) -> Result<RunReport, Error> {
    let warehouse = pipeline::local_target(env)?.warehouse.clone();
    let result = run_unrecorded(config, env, input, warehouse).await;
    remember(env, "run", &result, |r| {
        let summary = format!("{}; {}", pipeline::summary_of(&r.extract), r.transform.summary());
        (pipeline::status_of(&r.extract), summary, Some(r.extract.run_id.clone()))
    });
    result
}

async fn run_unrecorded(
    config: &Config,
    env: &EnvConfig,
    input: &Input,
    warehouse: std::path::PathBuf,
) -> Result<RunReport, Error> {
    models::render_all(&models::discover(&config.root.join("models"))?, &Dialect::DuckDb)?;
    let extract = pipeline::extract_unrecorded(config, env, input, None).await?;
    let transform = transform_unrecorded(config, env)
        .map_err(|cause| Error::Kept { kept: kept(&extract), cause: Box::new(cause) })?;
    let report = match input {
        Input::Demo => demo_report(env, &warehouse).await,
        _ => None,
    };
    Ok(RunReport { warehouse, extract, transform, report })
}

/// The demo's report period (its recording spans minutes).
const DEMO_REPORT_DAYS: u32 = 30;

/// `run --demo` ends with the report of what it loaded: `report.html` beside the warehouse. The run
/// itself succeeded, so a page that cannot be written is a warning.
async fn demo_report(env: &EnvConfig, warehouse: &std::path::Path) -> Option<std::path::PathBuf> {
    let out = warehouse.parent()?.join("report.html");
    let options = crate::report::Options { days: DEMO_REPORT_DAYS, out };
    match crate::report::generate(env, &options).await {
        Ok(written) => Some(written.path),
        Err(e) => {
            tracing::warn!("the run is complete, but its report was not written: {e}");
            None
        }
    }
}

impl TransformReport {
    /// The load and the models in one line of the run history.
    fn summary(&self) -> String {
        let load = &self.load;
        format!("loaded {} file(s), {} rows; built {} model(s)", load.files_loaded, load.rows_loaded, self.models.len())
    }
}

/// What a run that stopped after its extraction still has, and how to carry on.
fn kept(extract: &extract::Report) -> String {
    match extract.pages {
        0 => "the extraction stored no new page; once the cause is fixed, `flixops transform` loads any pending \
              lake files and rebuilds the models"
            .to_string(),
        pages => format!(
            "the extraction stored {} tweets in {pages} page(s) under {} (run {}): they are kept, and once the \
             cause is fixed `flixops transform` loads them and rebuilds the models (no need to fetch them again)",
            extract.tweets, extract.location, extract.run_id
        ),
    }
}

impl Render for TransformReport {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let load = &self.load;
        writeln!(
            w,
            "load       {} new file(s), {} rows ({} already loaded)",
            load.files_loaded, load.rows_loaded, load.files_skipped
        )?;
        for m in &self.models {
            let change = match m.change {
                ModelChange::Created => "created",
                ModelChange::Changed => "changed, rebuilt",
                ModelChange::Refreshed => "refreshed",
            };
            writeln!(w, "transform  {:<28} {:>7} rows  {change}", m.model, m.rows)?;
        }
        Ok(())
    }
}

impl Render for RunReport {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let e = &self.extract;
        writeln!(w, "extract    {} tweets in {} page(s) → {}", e.tweets, e.pages, e.location)?;
        if let Some(reason) = &e.partial {
            writeln!(w, "  partial: resumes next run ({reason})")?;
        }
        e.warnings.iter().try_for_each(|note| writeln!(w, "  warning: {note}"))?;
        self.transform.write_human(w)?;
        if let Some(page) = &self.report {
            writeln!(w, "report     {}", page.display())?;
        }
        writeln!(w, "\nquery it:  duckdb {}", self.warehouse.display())
    }
}
