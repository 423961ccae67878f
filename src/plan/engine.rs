//! The dependency graph: concurrent reads, planning with outputs passed along edges, ordered apply,
//! reverse-ordered destroy.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Action, Address, Change, Inputs, Note, Observed, Outputs, Plan, PlanError, PlannedChange, Resource};

/// Resources in an order where every dependency comes before its dependants.
pub struct Graph {
    resources: Vec<Box<dyn Resource>>,
}

/// What `read` found for every resource, by address.
pub type ObservedAll = BTreeMap<Address, Option<Observed>>;

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// Resources created, updated, replaced or deleted, in order.
    pub applied: Vec<Address>,
    /// What was left undone on purpose, with why and the fix (deploy shows them as warnings).
    pub notes: Vec<Note>,
}

impl Graph {
    /// Orders the resources (stable: ties keep the given order); rejects duplicates, unknown
    /// dependencies and cycles.
    pub fn new(resources: Vec<Box<dyn Resource>>) -> Result<Self, PlanError> {
        let addresses: Vec<Address> = resources.iter().map(|r| r.address()).collect();
        let known: BTreeSet<&Address> = addresses.iter().collect();
        if known.len() != addresses.len() {
            return Err(PlanError::Graph("two resources share an address".into()));
        }
        for r in &resources {
            if let Some(missing) = r.depends_on().into_iter().find(|d| !known.contains(d)) {
                return Err(PlanError::Graph(format!("{} depends on unknown {missing}", r.address())));
            }
        }
        let mut pending: Vec<Option<Box<dyn Resource>>> = resources.into_iter().map(Some).collect();
        let mut placed: BTreeSet<Address> = BTreeSet::new();
        let mut ordered = Vec::with_capacity(pending.len());
        while ordered.len() < addresses.len() {
            let next = pending
                .iter()
                .position(|slot| slot.as_ref().is_some_and(|r| r.depends_on().iter().all(|d| placed.contains(d))));
            let Some(index) = next else {
                let stuck: Vec<String> = pending.iter().flatten().map(|r| r.address().0).collect();
                return Err(PlanError::Graph(format!("dependency cycle among {}", stuck.join(", "))));
            };
            let resource = pending[index].take().expect("slot is filled");
            placed.insert(resource.address());
            ordered.push(resource);
        }
        Ok(Self { resources: ordered })
    }

    /// Addresses in apply order.
    pub fn addresses(&self) -> Vec<Address> {
        self.resources.iter().map(|r| r.address()).collect()
    }

    /// Reads every resource concurrently; all failures are reported together.
    pub async fn read_all(&self) -> Result<ObservedAll, PlanError> {
        let reads = futures::future::join_all(self.resources.iter().map(|r| async move {
            let started = std::time::Instant::now();
            (r.read().await, started.elapsed())
        }))
        .await;
        let mut observed = ObservedAll::new();
        let mut errors = Vec::new();
        for (resource, (result, took)) in self.resources.iter().zip(reads) {
            let found = match &result {
                Ok(Some(state)) => format!("exists ({} fields compared)", state.fields.len()),
                Ok(None) => "does not exist".to_string(),
                Err(e) => format!("failed: {}", e.message),
            };
            tracing::debug!("read {}: {found} in {} ms", resource.address(), took.as_millis());
            match result {
                Ok(state) => {
                    observed.insert(resource.address(), state);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(observed) } else { Err(PlanError::Read(errors)) }
    }

    /// What was read without the fields that move by themselves ([`Resource::volatile_fields`]):
    /// the state a saved plan records and compares.
    pub fn settled(&self, observed: &ObservedAll) -> ObservedAll {
        let mut settled = observed.clone();
        for resource in &self.resources {
            if let Some(Some(state)) = settled.get_mut(&resource.address()) {
                resource.volatile_fields().iter().for_each(|field| drop(state.fields.remove(*field)));
            }
        }
        settled
    }

    /// Diffs every resource against what was read. Outputs of resources that will be created are
    /// their planned outputs, so a dependant shows [`super::UNKNOWN`] only for what is truly unknown.
    pub fn plan(&self, observed: &ObservedAll) -> Plan {
        let mut outputs: BTreeMap<Address, Outputs> = BTreeMap::new();
        let mut changes: Vec<PlannedChange> = Vec::with_capacity(self.resources.len());
        for resource in &self.resources {
            let address = resource.address();
            let state = observed.get(&address).and_then(Option::as_ref);
            let change = resource.diff(state, &self.inputs(resource.as_ref(), &outputs, &changes));
            let mut known = resource.planned_outputs();
            if let (Some(state), false) = (state, change.action == Action::Replace) {
                known.extend(state.outputs.clone());
            }
            outputs.insert(address.clone(), known);
            changes.push(PlannedChange { address, change });
        }
        Plan { notes: self.notes(), ..Plan::new(changes) }
    }

    /// Every resource's notes, in apply order.
    fn notes(&self) -> Vec<Note> {
        self.resources
            .iter()
            .flat_map(|r| r.notes().into_iter().map(|message| Note { address: r.address(), message }))
            .collect()
    }

    /// Runs every planned change's [`Resource::check`] concurrently; all failures are reported
    /// together, before anything is applied.
    pub async fn check(&self, plan: &Plan) -> Result<(), PlanError> {
        let planned: BTreeMap<&Address, &Change> = plan.resources.iter().map(|r| (&r.address, &r.change)).collect();
        let checks = self.resources.iter().filter_map(|resource| {
            let change = planned.get(&resource.address()).filter(|c| c.action != Action::NoOp)?;
            Some(resource.check(change))
        });
        let errors: Vec<_> = futures::future::join_all(checks).await.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() { Ok(()) } else { Err(PlanError::Check(errors)) }
    }

    /// Applies in order, re-diffing each resource with its dependencies' real outputs. Stops at the
    /// first failure and says what was applied and what was not.
    pub async fn apply(&self, observed: &ObservedAll) -> Result<ApplyReport, PlanError> {
        let mut outputs: BTreeMap<Address, Outputs> = BTreeMap::new();
        let mut applied = Vec::new();
        let mut done: Vec<PlannedChange> = Vec::with_capacity(self.resources.len());
        for (index, resource) in self.resources.iter().enumerate() {
            let address = resource.address();
            let state = observed.get(&address).and_then(Option::as_ref);
            let inputs = self.inputs(resource.as_ref(), &outputs, &done);
            let change = resource.diff(state, &inputs);
            log_write(&address, &change);
            let result = match change.action {
                Action::NoOp => Ok(state.map(|s| s.outputs.clone()).unwrap_or_default()),
                Action::Replace if !resource.replaces_in_place() => {
                    self.replace(resource.as_ref(), &change, &inputs).await
                }
                _ => resource.apply(&change, state, &inputs).await,
            };
            let mut known = resource.planned_outputs();
            match result {
                Ok(new) => known.extend(new),
                Err(failed) => {
                    let pending = self.resources[index + 1..].iter().map(|r| r.address()).collect();
                    return Err(PlanError::Apply { failed, applied, pending, verb: "deploy" });
                }
            }
            if change.action != Action::NoOp {
                applied.push(address.clone());
            }
            outputs.insert(address.clone(), known);
            done.push(PlannedChange { address, change });
        }
        Ok(ApplyReport { applied, notes: self.notes() })
    }

    async fn replace(
        &self,
        resource: &dyn Resource,
        change: &Change,
        inputs: &Inputs,
    ) -> Result<Outputs, super::ResourceError> {
        resource.delete().await?;
        let create = Change { action: Action::Create, ..change.clone() };
        resource.apply(&create, None, inputs).await
    }

    /// What `destroy` would remove: every existing resource not in `keep`, dependants first.
    pub fn destroy_plan(&self, observed: &ObservedAll, keep: &[Address]) -> Plan {
        let changes = self
            .doomed(observed, keep)
            .into_iter()
            .map(|r| PlannedChange {
                address: r.address(),
                change: Change { action: Action::Delete, fields: Vec::new(), reason: None },
            })
            .collect();
        Plan::new(changes)
    }

    /// Deletes every existing resource not in `keep`, in reverse dependency order.
    pub async fn destroy(&self, observed: &ObservedAll, keep: &[Address]) -> Result<ApplyReport, PlanError> {
        let doomed = self.doomed(observed, keep);
        let mut applied = Vec::new();
        for (index, resource) in doomed.iter().enumerate() {
            tracing::debug!("delete {}", resource.address());
            if let Err(failed) = resource.delete().await {
                let pending = doomed[index + 1..].iter().map(|r| r.address()).collect();
                return Err(PlanError::Apply { failed, applied, pending, verb: "destroy" });
            }
            applied.push(resource.address());
        }
        Ok(ApplyReport { applied, notes: Vec::new() })
    }

    fn doomed(&self, observed: &ObservedAll, keep: &[Address]) -> Vec<&dyn Resource> {
        self.resources
            .iter()
            .rev()
            .filter(|r| observed.get(&r.address()).is_some_and(Option::is_some) && !keep.contains(&r.address()))
            .map(|r| r.as_ref())
            .collect()
    }

    /// What a resource knows of its dependencies: their outputs, and what this run does to them.
    fn inputs(
        &self,
        resource: &dyn Resource,
        outputs: &BTreeMap<Address, Outputs>,
        changes: &[PlannedChange],
    ) -> Inputs {
        let mut inputs = Inputs::default();
        for dep in resource.depends_on() {
            if let Some(change) = changes.iter().find(|c| c.address == dep) {
                inputs.insert_change(dep.clone(), change.change.clone());
            }
            if let Some(values) = outputs.get(&dep) {
                inputs.insert(dep, values.clone());
            }
        }
        inputs
    }
}

/// `-v`: what apply is about to write, field by field (values as the plan shows them).
fn log_write(address: &Address, change: &Change) {
    if change.action == Action::NoOp {
        return;
    }
    let fields: Vec<&str> = change.fields.iter().map(|f| f.field.as_str()).collect();
    tracing::debug!("{:?} {address}: {}", change.action, fields.join(", "));
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::future::BoxFuture;

    use super::*;
    use crate::plan::{Fields, ResourceError};

    /// An in-memory resource: `store` plays the cloud, `log` records calls in order.
    struct Fake {
        name: &'static str,
        deps: Vec<&'static str>,
        value: &'static str,
        store: Arc<Mutex<BTreeMap<String, Fields>>>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Resource for Fake {
        fn address(&self) -> Address {
            Address::new("fake", self.name)
        }
        fn depends_on(&self) -> Vec<Address> {
            self.deps.iter().map(|d| Address::new("fake", d)).collect()
        }
        fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
            let found = self.store.lock().unwrap().get(self.name).cloned();
            Box::pin(async move {
                Ok(found.map(|fields| {
                    let id = fields["value"].clone();
                    Observed { fields, outputs: [("id".to_string(), id)].into() }
                }))
            })
        }
        fn desired(&self, inputs: &Inputs) -> Fields {
            let mut fields: Fields = [("value".to_string(), self.value.to_string())].into();
            for d in self.depends_on() {
                fields.insert(format!("from_{d}"), inputs.value(&d, "id"));
            }
            fields
        }
        fn apply<'a>(
            &'a self,
            _change: &'a Change,
            _observed: Option<&'a Observed>,
            inputs: &'a Inputs,
        ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
            Box::pin(async move {
                self.log.lock().unwrap().push(format!("apply {}", self.name));
                self.store.lock().unwrap().insert(self.name.to_string(), self.desired(inputs));
                Ok([("id".to_string(), self.value.to_string())].into())
            })
        }
        fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
            Box::pin(async move {
                self.log.lock().unwrap().push(format!("delete {}", self.name));
                self.store.lock().unwrap().remove(self.name);
                Ok(())
            })
        }
    }

    fn graph(store: &Arc<Mutex<BTreeMap<String, Fields>>>, log: &Arc<Mutex<Vec<String>>>) -> Graph {
        let fake = |name, deps: &[&'static str], value| -> Box<dyn Resource> {
            Box::new(Fake { name, deps: deps.to_vec(), value, store: store.clone(), log: log.clone() })
        };
        // Given out of order on purpose: c needs b, b needs a.
        Graph::new(vec![fake("c", &["b"], "C"), fake("a", &[], "A"), fake("b", &["a"], "B")]).unwrap()
    }

    #[tokio::test]
    async fn applies_in_dependency_order_passes_outputs_and_converges() {
        let (store, log) = Default::default();
        let g = graph(&store, &log);
        let observed = g.read_all().await.unwrap();
        let plan = g.plan(&observed);
        assert_eq!((plan.add, plan.change, plan.destroy), (3, 0, 0));
        let b = &plan.resources[1];
        assert_eq!(b.address.0, "fake.b");
        let from_a = b.change.fields.iter().find(|f| f.field == "from_fake.a").unwrap();
        assert_eq!(from_a.after.as_deref(), Some(crate::plan::UNKNOWN), "a's id is only known after apply");

        g.apply(&observed).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["apply a", "apply b", "apply c"]);
        assert_eq!(store.lock().unwrap()["b"]["from_fake.a"], "A", "b received a's output");

        let again = g.plan(&g.read_all().await.unwrap());
        assert!(again.is_empty(), "{again:?}");
    }

    #[tokio::test]
    async fn destroy_walks_the_graph_in_reverse() {
        let (store, log) = Default::default();
        let g = graph(&store, &log);
        g.apply(&g.read_all().await.unwrap()).await.unwrap();
        log.lock().unwrap().clear();
        let observed = g.read_all().await.unwrap();
        let keep = [Address::new("fake", "a")];
        assert_eq!(g.destroy_plan(&observed, &keep).destroy, 2);
        g.destroy(&observed, &keep).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["delete c", "delete b"], "dependants first, the kept one stays");
        assert_eq!(store.lock().unwrap().keys().collect::<Vec<_>>(), ["a"]);
    }

    /// Exists as wanted, but says what it cannot have in this account.
    struct Noted;

    impl Resource for Noted {
        fn address(&self) -> Address {
            Address::new("fake", "noted")
        }
        fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
            Box::pin(async { Ok(Some(Observed::default())) })
        }
        fn desired(&self, _inputs: &Inputs) -> Fields {
            Fields::new()
        }
        fn apply<'a>(
            &'a self,
            _change: &'a Change,
            _observed: Option<&'a Observed>,
            _inputs: &'a Inputs,
        ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
            Box::pin(async { Ok(Outputs::new()) })
        }
        fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
            Box::pin(async { Ok(()) })
        }
        fn notes(&self) -> Vec<String> {
            vec!["runs without X: the account has none; fix: ask for some".into()]
        }
    }

    #[tokio::test]
    async fn notes_reach_the_plan_and_the_apply_report_without_being_a_change() {
        let g = Graph::new(vec![Box::new(Noted)]).unwrap();
        let observed = g.read_all().await.unwrap();
        let plan = g.plan(&observed);
        let note = Note {
            address: Address::new("fake", "noted"),
            message: "runs without X: the account has none; fix: ask for some".into(),
        };
        assert!(plan.is_empty(), "a note is not a change");
        assert_eq!(plan.notes, [note.clone()]);
        let mut text = Vec::new();
        crate::plan::render_plan(&mut text, &plan, "plan").unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "No changes. The infrastructure matches the configuration.\n\n\
             Note: fake.noted: runs without X: the account has none; fix: ask for some\n"
        );
        let report = g.apply(&observed).await.unwrap();
        assert_eq!((report.applied, report.notes), (Vec::new(), vec![note]));
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_rejected() {
        let (store, log): (Arc<Mutex<BTreeMap<String, Fields>>>, Arc<Mutex<Vec<String>>>) = Default::default();
        let fake = |name, deps: &[&'static str]| -> Box<dyn Resource> {
            Box::new(Fake { name, deps: deps.to_vec(), value: "v", store: store.clone(), log: log.clone() })
        };
        let cycle = Graph::new(vec![fake("a", &["b"]), fake("b", &["a"])]).err().unwrap();
        assert!(cycle.to_string().contains("dependency cycle among fake.a, fake.b"), "{cycle}");
        let unknown = Graph::new(vec![fake("a", &["zzz"])]).err().unwrap();
        assert!(unknown.to_string().contains("fake.a depends on unknown fake.zzz"), "{unknown}");
    }

    /// Records what its dependency's change was when diffed, and fails its check when told to.
    struct Watcher {
        seen: Arc<Mutex<Vec<Option<Action>>>>,
        refuse: bool,
    }

    impl Resource for Watcher {
        fn address(&self) -> Address {
            Address::new("fake", "watcher")
        }
        fn depends_on(&self) -> Vec<Address> {
            vec![Address::new("fake", "a")]
        }
        fn read(&self) -> BoxFuture<'_, Result<Option<Observed>, ResourceError>> {
            Box::pin(async { Ok(None) })
        }
        fn desired(&self, _: &Inputs) -> Fields {
            [("v".to_string(), "1".to_string())].into()
        }
        fn diff(&self, observed: Option<&Observed>, inputs: &Inputs) -> Change {
            self.seen.lock().unwrap().push(inputs.change(&Address::new("fake", "a")).map(|c| c.action));
            crate::plan::diff_fields(&self.desired(inputs), observed, &[])
        }
        fn check<'a>(&'a self, _: &'a Change) -> BoxFuture<'a, Result<(), ResourceError>> {
            let refuse = self.refuse;
            Box::pin(async move {
                if !refuse {
                    return Ok(());
                }
                Err(ResourceError {
                    address: self.address(),
                    op: "compile".into(),
                    message: "does not compile".into(),
                    kind: crate::plan::ErrorKind::Other,
                })
            })
        }
        fn apply<'a>(
            &'a self,
            _: &'a Change,
            _: Option<&'a Observed>,
            _: &'a Inputs,
        ) -> BoxFuture<'a, Result<Outputs, ResourceError>> {
            Box::pin(async { Ok(Outputs::new()) })
        }
        fn delete(&self) -> BoxFuture<'_, Result<(), ResourceError>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn a_dependant_sees_its_dependencys_change_and_checks_fail_the_plan_before_apply() {
        let (store, log): (Arc<Mutex<BTreeMap<String, Fields>>>, Arc<Mutex<Vec<String>>>) = Default::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let build = |refuse| {
            let a = Fake { name: "a", deps: vec![], value: "A", store: store.clone(), log: log.clone() };
            let resources: Vec<Box<dyn Resource>> = vec![Box::new(a), Box::new(Watcher { seen: seen.clone(), refuse })];
            Graph::new(resources).unwrap()
        };
        let g = build(false);
        let observed = g.read_all().await.unwrap();
        let plan = g.plan(&observed);
        g.check(&plan).await.unwrap();
        g.apply(&observed).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [Some(Action::Create), Some(Action::Create)], "in plan and in apply");
        seen.lock().unwrap().clear();
        let g = build(true);
        let observed = g.read_all().await.unwrap();
        let plan = g.plan(&observed);
        assert_eq!(*seen.lock().unwrap(), [None], "a converged dependency is no change");
        let err = g.check(&plan).await.unwrap_err().to_string();
        assert!(err.starts_with("the plan cannot be applied (nothing was changed)"), "{err}");
        assert!(err.contains("fake.watcher: compile failed: does not compile"), "{err}");
    }
}
