//! The resource engine: read what exists, diff it against what the config wants, apply in
//! dependency order. Every cloud object is a [`Resource`]; the engine never knows which service it is.

mod engine;
mod render;
pub mod saved;

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;

pub use engine::{ApplyReport, Graph, ObservedAll};
pub use render::{Shown, render_notes, render_plan};

/// A resource's comparable state: field name → rendered value (JSON documents in canonical form).
pub type Fields = BTreeMap<String, String>;

/// [`Fields`] from name/value pairs, as resources write their desired and observed state.
pub fn field_map<const N: usize>(pairs: [(&str, String); N]) -> Fields {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// What a resource hands to the resources that depend on it (ARNs, channels, names).
pub type Outputs = BTreeMap<String, String>;

/// The value a field shows in a plan when it depends on an output that only exists after apply.
pub const UNKNOWN: &str = "(known after apply)";

/// A resource's stable name in plans and errors, `kind.name` as in terraform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Address(pub String);

impl Address {
    /// Builds `kind.name`.
    pub fn new(kind: &str, name: &str) -> Self {
        Self(format!("{kind}.{name}"))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outputs of a resource's dependencies, as far as they are known, and what this run does to
/// them (a pipe must be recreated when its stage's URL changes).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    by_address: BTreeMap<Address, Outputs>,
    changes: BTreeMap<Address, Change>,
}

impl Inputs {
    /// Records the outputs of one dependency.
    pub fn insert(&mut self, address: Address, outputs: Outputs) {
        self.by_address.insert(address, outputs);
    }

    /// Records what this run does to one dependency.
    pub fn insert_change(&mut self, address: Address, change: Change) {
        self.changes.insert(address, change);
    }

    /// What this run does to a dependency (None: nothing, or not a dependency).
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.get(address).filter(|c| c.action != Action::NoOp)
    }

    /// One output, if it is known yet.
    pub fn get(&self, address: &Address, key: &str) -> Option<&str> {
        self.by_address.get(address)?.get(key).map(String::as_str)
    }

    /// One output, or [`UNKNOWN`] while planning a dependency that does not exist yet.
    pub fn value(&self, address: &Address, key: &str) -> String {
        self.get(address, key).unwrap_or(UNKNOWN).to_string()
    }
}

/// What `read` found: comparable fields plus the outputs dependants need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The same field names `desired` produces.
    pub fields: Fields,
    /// ARNs and the like.
    pub outputs: Outputs,
}

/// What will happen to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Exists and matches.
    NoOp,
    /// Does not exist yet.
    Create,
    /// Exists; some fields change in place.
    Update,
    /// Exists; a field that cannot change in place differs, so delete then create.
    Replace,
    /// Exists and is no longer wanted.
    Delete,
}

/// One field's move from the observed value to the desired one (None: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Field name.
    pub field: String,
    /// Observed value.
    pub before: Option<String>,
    /// Desired value.
    pub after: Option<String>,
}

/// The diff of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happens.
    pub action: Action,
    /// The fields that differ (every desired field for a create).
    pub fields: Vec<FieldChange>,
    /// Why a replace is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Change {
    /// True when a field of that name changes.
    pub fn touches(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.field == field)
    }
}

/// Compares desired fields with observed ones; fields listed in `replace_on` force a replace.
pub fn diff_fields(desired: &Fields, observed: Option<&Observed>, replace_on: &[&str]) -> Change {
    let Some(observed) = observed else {
        let fields = desired
            .iter()
            .map(|(k, v)| FieldChange { field: k.clone(), before: None, after: Some(v.clone()) })
            .collect();
        return Change { action: Action::Create, fields, reason: None };
    };
    let fields: Vec<FieldChange> = desired
        .iter()
        .filter(|(k, v)| observed.fields.get(*k) != Some(*v))
        .map(|(k, v)| FieldChange { field: k.clone(), before: observed.fields.get(k).cloned(), after: Some(v.clone()) })
        .collect();
    let forced: Vec<&str> = fields.iter().map(|f| f.field.as_str()).filter(|f| replace_on.contains(f)).collect();
    let (action, reason) = match (fields.is_empty(), forced.is_empty()) {
        (true, _) => (Action::NoOp, None),
        (false, true) => (Action::Update, None),
        (false, false) => (Action::Replace, Some(format!("{} cannot change in place", forced.join(", ")))),
    };
    Change { action, fields, reason }
}

/// A failure of one call on one resource; `kind` decides the exit code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{address}: {op} failed: {message}")]
pub struct ResourceError {
    /// The resource.
    pub address: Address,
    /// What was being done (`read`, `create`, `update versioning`, …).
    pub op: String,
    /// The service's answer, with the fix where one is known.
    pub message: String,
    /// Connect/credential failures exit 3.
    pub kind: ErrorKind,
}

/// Coarse classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Unreachable service, or credentials refused.
    Connect,
    /// Anything else the service said no to.
    Other,
}

/// One desired cloud object: how to read it, what it should look like, and how to get it there.
pub trait Resource: Send + Sync {
    /// `kind.name`, unique in a graph.
    fn address(&self) -> Address;

    /// Resources whose outputs this one needs, so they are applied first.
    fn depends_on(&self) -> Vec<Address> {
        Vec::new()
    }

    /// Reads the actual state; None when it does not exist. Never writes.
    fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>>;

    /// The wanted state, given what is known of the dependencies.
    fn desired(&self, inputs: &Inputs) -> Fields;

    /// Outputs known before the resource exists (ARNs computed from account and name).
    fn planned_outputs(&self) -> Outputs {
        Outputs::new()
    }

    /// Fields that cannot change in place.
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// True when `apply` performs a Replace itself (e.g. `CREATE OR REPLACE`), instead of the
    /// engine deleting first and creating after.
    fn replaces_in_place(&self) -> bool {
        false
    }

    /// The diff against what was read.
    fn diff(&self, observed: Option<&Observed>, inputs: &Inputs) -> Change {
        diff_fields(&self.desired(inputs), observed, self.replace_on())
    }

    /// Proves, without changing anything, that a planned change can be applied (a model's SQL
    /// compiles), so `plan` fails before `deploy` would fail half-way. Most resources have nothing
    /// to prove.
    fn check<'a>(&'a self, _change: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
        Box::pin(async { Ok(()) })
    }

    /// Makes the change (create, or update of exactly the changed fields); returns the outputs.
    fn apply<'a>(
        &'a self,
        change: &'a Change,
        observed: Option<&'a Observed>,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Outputs, ResourceError>>;

    /// Removes the resource (called only when it exists).
    fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>>;

    /// Fields `read` returns that move by themselves (a pipe's last load time): a saved plan does
    /// not compare them, since what they decide shows in the planned change, which it compares.
    fn volatile_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// What the resource leaves undone on purpose after `read` (or `apply`), with why and the fix:
    /// shown under the plan and after deploy, never a failure.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A resource's note: a setting it cannot have in this account, said instead of failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The resource.
    pub address: Address,
    /// What is left undone, why, and the fix.
    pub message: String,
}

/// One line of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    /// The resource.
    pub address: Address,
    /// Its diff.
    #[serde(flatten)]
    pub change: Change,
}

/// The whole plan, in apply order, with terraform's summary counts.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Every resource, no-ops included, in apply order.
    pub resources: Vec<PlannedChange>,
    /// Creates plus replaces.
    pub add: usize,
    /// Updates.
    pub change: usize,
    /// Deletes plus replaces.
    pub destroy: usize,
    /// What the plan leaves undone on purpose (e.g. a quota the account lacks).
    pub notes: Vec<Note>,
    /// What the extractor will cost a month at X's prices (cloud plans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_spend: Option<crate::extract::spend::Estimate>,
}

impl Plan {
    /// Counts the actions of a list of changes.
    pub fn new(resources: Vec<PlannedChange>) -> Self {
        let count = |pred: fn(Action) -> bool| resources.iter().filter(|r| pred(r.change.action)).count();
        Self {
            add: count(|a| matches!(a, Action::Create | Action::Replace)),
            change: count(|a| a == Action::Update),
            destroy: count(|a| matches!(a, Action::Delete | Action::Replace)),
            resources,
            notes: Vec::new(),
            x_spend: None,
        }
    }

    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.destroy == 0
    }
}

/// Failures of the engine as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Two resources share an address, or one depends on a missing or cyclic address.
    #[error("resource graph: {0}")]
    Graph(String),
    /// Reading the current state failed; nothing was changed.
    #[error("reading the current state failed (nothing was changed):\n{}", list(.0))]
    Read(Vec<ResourceError>),
    /// A planned change cannot be applied as it stands; nothing was changed.
    #[error("the plan cannot be applied (nothing was changed):\n{}", list(.0))]
    Check(Vec<ResourceError>),
    /// Applying stopped part way; says what was done and how to resume.
    #[error(
        "{failed}\n  applied before the failure: {applied}\n  stopped at: {stopped} (it may be partly applied)\n  \
         not reached: {pending}\n  \
         fix the cause and run `flixops {verb}` again: it reads what exists and continues from there",
        applied = names(.applied), stopped = .failed.address, pending = names(.pending)
    )]
    Apply { failed: ResourceError, applied: Vec<Address>, pending: Vec<Address>, verb: &'static str },
}

impl PlanError {
    /// True when the failure is an unreachable service or refused credentials (exit 3).
    pub fn is_connect(&self) -> bool {
        match self {
            PlanError::Graph(_) => false,
            PlanError::Read(errors) | PlanError::Check(errors) => errors.iter().any(|e| e.kind == ErrorKind::Connect),
            PlanError::Apply { failed, .. } => failed.kind == ErrorKind::Connect,
        }
    }
}

fn list(errors: &[ResourceError]) -> String {
    errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

fn names(addresses: &[Address]) -> String {
    if addresses.is_empty() {
        return "(none)".to_string();
    }
    addresses.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn diff_reports_only_changed_fields_and_forced_replacements() {
        let desired = fields(&[("a", "1"), ("b", "2"), ("name", "x")]);
        let same = Observed { fields: desired.clone(), outputs: Outputs::new() };
        assert_eq!(diff_fields(&desired, Some(&same), &[]).action, Action::NoOp);

        let drifted = Observed { fields: fields(&[("a", "1"), ("b", "3"), ("name", "x")]), ..Default::default() };
        let change = diff_fields(&desired, Some(&drifted), &["name"]);
        assert_eq!(change.action, Action::Update);
        assert_eq!(
            change.fields,
            [FieldChange { field: "b".into(), before: Some("3".into()), after: Some("2".into()) }]
        );

        let renamed = Observed { fields: fields(&[("a", "1"), ("b", "2"), ("name", "y")]), ..Default::default() };
        let change = diff_fields(&desired, Some(&renamed), &["name"]);
        assert_eq!(change.action, Action::Replace);
        assert_eq!(change.reason.as_deref(), Some("name cannot change in place"));

        let created = diff_fields(&desired, None, &[]);
        assert_eq!((created.action, created.fields.len()), (Action::Create, 3));
    }
}
