//! One running hook context's buffered effects, and their commit to the model at exit.

use super::super::model::{app_of, Event, Model};
use crate::tools::env::{PortRange, Settings};
use std::collections::BTreeMap;

/// The buffered effects of one running hook or action, committed when it exits 0.
#[derive(Debug, Clone)]
pub struct HookCtx {
    /// `JUJU_CONTEXT_ID`.
    pub id: String,
    /// The unit running it.
    pub unit: String,
    /// What runs.
    pub event: Event,
    /// Pending relation writes: relation id → (unit changes, app changes); "" deletes.
    pub relation_sets: BTreeMap<i64, (Settings, Settings)>,
    /// Pending port changes in order: (open?, range).
    pub ports: Vec<(bool, PortRange)>,
    /// Pending state changes: key → Some(value) or None to delete.
    pub state: BTreeMap<String, Option<String>>,
    /// The task, for actions and exec.
    pub task: Option<u64>,
    /// Pending secret changes.
    pub secrets: crate::secrets::Pending,
    /// Pending `storage-add`s: store and count.
    pub storage_adds: Vec<(String, u32)>,
}

impl HookCtx {
    /// A fresh context with id `id` (the caller makes it unguessable).
    pub fn new(id: String, unit: &str, event: Event, task: Option<u64>) -> HookCtx {
        HookCtx {
            id,
            unit: unit.into(),
            event,
            relation_sets: BTreeMap::new(),
            ports: vec![],
            state: BTreeMap::new(),
            task,
            secrets: Default::default(),
            storage_adds: vec![],
        }
    }

    /// Commits the buffered secret changes (Juju's first step at hook exit) and queues the
    /// secret hooks they cause at `now`; the controller's refusal is the hook's failure.
    pub fn commit_secrets(&self, model: &mut Model, now: f64) -> Result<(), String> {
        let who = super::super::secret_hooks::who(model, &self.unit);
        crate::secrets::commit(&mut model.secrets, &self.secrets, &who)?;
        super::super::secret_hooks::queue_due(model, now);
        Ok(())
    }

    /// Applies the buffered writes to the model and queues the hooks they cause.
    pub fn commit(&self, model: &mut Model) {
        super::super::storage::commit_adds(model, &self.unit, &self.storage_adds);
        for (rel, (unit_set, app_set)) in &self.relation_sets {
            for (changes, app) in [(unit_set, false), (app_set, true)] {
                if changes.is_empty() {
                    continue;
                }
                let Some(r) = model.relations.get_mut(rel) else {
                    continue;
                };
                let bag = if app {
                    r.app_data
                        .entry(app_of(&self.unit).to_string())
                        .or_default()
                } else {
                    r.unit_data.entry(self.unit.clone()).or_default()
                };
                let before = bag.clone();
                merge(bag, changes);
                if *bag != before {
                    super::data_changed(model, *rel, &self.unit, app);
                }
            }
        }
        if let Some(u) = model.units.get_mut(&self.unit) {
            for (open, range) in &self.ports {
                if *open {
                    u.ports.insert(range.clone());
                } else {
                    u.ports.remove(range);
                }
            }
            for (k, v) in &self.state {
                match v {
                    Some(v) => u.state.insert(k.clone(), v.clone()),
                    None => u.state.remove(k),
                };
            }
        }
    }
}

/// Merges `changes` into `bag`; an empty value deletes its key.
pub fn merge(bag: &mut Settings, changes: &Settings) {
    for (k, v) in changes {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}
