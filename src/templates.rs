//! Templates compiled into the binary (`templates/`): handlebars in strict mode (a missing value is
//! an error) without HTML escaping, with two helpers: `json` (a value as a JSON literal) and `concat`.

use std::sync::OnceLock;

use handlebars::{Handlebars, handlebars_helper};
use serde_json::Value;

/// Every template, by name (its path under `templates/` without `.hbs` and extension).
const TEMPLATES: &[(&str, &str)] = &[
    ("iam/snowflake-trust", include_str!("../templates/iam/snowflake-trust.json.hbs")),
    ("iam/snowflake-read", include_str!("../templates/iam/snowflake-read.json.hbs")),
    ("iam/lambda-trust", include_str!("../templates/iam/lambda-trust.json.hbs")),
    ("iam/extract", include_str!("../templates/iam/extract.json.hbs")),
    ("iam/scheduler-trust", include_str!("../templates/iam/scheduler-trust.json.hbs")),
    ("iam/scheduler-invoke", include_str!("../templates/iam/scheduler-invoke.json.hbs")),
    ("iam/bucket-tls-only", include_str!("../templates/iam/bucket-tls-only.json.hbs")),
    ("iam/deployer", include_str!("../templates/iam/deployer.json.hbs")),
    ("ci/github-actions", include_str!("../templates/ci/github-actions.yml.hbs")),
    ("ci/github-actions-setup", include_str!("../templates/ci/github-actions-setup.yml.hbs")),
    ("ci/airflow", include_str!("../templates/ci/airflow_dag.py.hbs")),
];

handlebars_helper!(json: |value: Json| serde_json::to_string(value).unwrap_or_default());
handlebars_helper!(concat: |*args| args.iter().map(|a| a.as_str().map(str::to_string).unwrap_or_else(|| a.to_string())).collect::<String>());

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.register_helper("json", Box::new(json));
        hb.register_helper("concat", Box::new(concat));
        for (name, text) in TEMPLATES {
            hb.register_template_string(name, *text).expect("embedded templates parse (unit-tested)");
        }
        hb
    })
}

/// Renders one embedded template.
pub fn render(name: &str, data: &Value) -> Result<String, handlebars::RenderError> {
    registry().render(name, data)
}

/// The names of the embedded templates under a folder (e.g. `iam/`).
pub fn names(folder: &str) -> Vec<&'static str> {
    TEMPLATES.iter().map(|(n, _)| *n).filter(|n| n.starts_with(folder)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        assert!(super::names("").len() >= 10);
        let _ = super::registry();
    }
}
