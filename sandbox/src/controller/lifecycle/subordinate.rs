//! Subordinate charms and container-scoped relations, as pure changes to the model.
//!
//! A subordinate application has no units of its own making: when a principal unit enters the
//! scope of a container-scoped relation with it, Juju creates one subordinate unit for that
//! principal unit, on its machine (state/relationunit.go `EnterScope`, `subordinateOps`). In a
//! container-scoped relation a unit sees only the counterpart on its own machine. The subordinate
//! goes with its principal unit, or when it leaves its last container relation with the
//! principal's application (state/relationunit.go `LeaveScope`).

use super::remove_unit;
use crate::controller::model::{app_of, CharmMeta, EndpointMeta, Event, Life, Model, Relation};
use serde_json::Value;

/// The endpoint every charm provides without declaring it (juju/charm meta.go).
pub const JUJU_INFO: &str = "juju-info";

/// An endpoint's `scope:` in metadata.yaml (`global` unless it says `container`).
pub fn endpoint_scope(spec: &Value) -> String {
    match spec["scope"].as_str() {
        Some("container") => "container".into(),
        _ => "global".into(),
    }
}

/// Adds the implicit `juju-info` provides endpoint (unless the charm declares that name).
pub fn add_juju_info(endpoints: &mut std::collections::BTreeMap<String, EndpointMeta>) {
    endpoints
        .entry(JUJU_INFO.into())
        .or_insert_with(|| EndpointMeta {
            role: "provides".into(),
            interface: JUJU_INFO.into(),
            scope: "global".into(),
        });
}

/// `deploy -n`: a subordinate gets no units, and only the default count is accepted
/// (cmd/juju/application/deploy.go).
pub fn units_to_deploy(meta: &CharmMeta, n: u32) -> Result<u32, String> {
    match (meta.subordinate, n) {
        (false, n) => Ok(n),
        (true, 1) => Ok(0),
        (true, _) => Err("cannot use --num-units or --to with subordinate application".into()),
    }
}

/// `add-unit` of a subordinate application is refused (state/application.go `AddUnit`).
pub fn check_add_unit(model: &Model, app: &str) -> Result<(), String> {
    if model.apps.get(app).is_some_and(|a| a.meta.subordinate) {
        return Err(format!(
            "cannot add unit to application {app:?}: application is a subordinate"
        ));
    }
    Ok(())
}

/// `remove-unit` of a subordinate unit is refused (apiserver application `DestroyUnit`).
pub fn check_remove_unit(model: &Model, unit: &str) -> Result<(), String> {
    if model.units.get(unit).is_some_and(|u| u.principal.is_some()) {
        return Err(format!(
            "unit {unit:?} is a subordinate, to remove use remove-relation. Note: this will remove all units of {:?}",
            app_of(unit)
        ));
    }
    Ok(())
}

/// Whether a relation between these endpoints is container-scoped: when either end says so
/// (state/state.go `AddRelation` gives both ends the container scope).
pub fn is_container(model: &Model, ends: &[crate::controller::model::RelEnd]) -> bool {
    ends.len() == 2
        && ends.iter().any(|e| {
            model
                .apps
                .get(&e.app)
                .and_then(|a| a.meta.endpoints.get(&e.endpoint))
                .is_some_and(|m| m.scope == "container")
        })
}

/// Of several endpoint pairs `integrate` could mean, the ones not through the implicit
/// `juju-info` if there are such (state/state.go `InferEndpoints`).
pub fn prefer_explicit<T>(candidates: Vec<T>, endpoints: impl Fn(&T) -> [&str; 2]) -> Vec<T> {
    if candidates.len() < 2 {
        return candidates;
    }
    let (explicit, implicit): (Vec<T>, Vec<T>) = candidates
        .into_iter()
        .partition(|c| !endpoints(c).contains(&JUJU_INFO));
    if explicit.is_empty() {
        implicit
    } else {
        explicit
    }
}

/// Whether units `a` and `b` may see each other in `rel`: always in a global relation, only on
/// the same machine in a container-scoped one.
pub fn same_container(model: &Model, rel: &Relation, a: &str, b: &str) -> bool {
    let machine = |u: &str| model.units.get(u).map(|u| u.machine);
    !rel.container || machine(a) == machine(b)
}

/// The subordinate units of `principal`.
pub fn subordinates_of(model: &Model, principal: &str) -> Vec<String> {
    model
        .units
        .values()
        .filter(|u| u.principal.as_deref() == Some(principal))
        .map(|u| u.name.clone())
        .collect()
}

/// After principal unit `unit` entered `rel`'s scope: if the relation is container-scoped with a
/// subordinate application and `unit` has no unit of it yet, that unit is created on `unit`'s
/// machine, with Juju's install sequence queued. Answers the new unit.
pub fn principal_entered(model: &mut Model, rel_id: i64, unit: &str) -> Option<String> {
    let rel = model.relations.get(&rel_id)?;
    let u = model.units.get(unit)?;
    if !rel.container || u.principal.is_some() || u.life != Life::Alive {
        return None;
    }
    let sub_app = rel.remote_app(&u.app)?;
    if !model.apps.get(&sub_app)?.meta.subordinate
        || subordinates_of(model, unit)
            .iter()
            .any(|s| app_of(s) == sub_app)
    {
        return None;
    }
    let machine = u.machine;
    // A unit as `add_unit` makes it, moved from its own new machine onto the principal's.
    let name = super::add_unit(model, &sub_app);
    let sub = model.units.get_mut(&name)?;
    let own = std::mem::replace(&mut sub.machine, machine);
    sub.principal = Some(unit.to_string());
    model.machines.remove(&own);
    if model.next_machine == own + 1 {
        model.next_machine = own;
    }
    Some(name)
}

/// `unit` is being removed: its subordinate units are removed with it (state/unit.go
/// `destroyOps`). Each side would otherwise be told twice of the other leaving the container
/// relation: the first word stands.
pub fn principal_removed(model: &mut Model, unit: &str) {
    for sub in subordinates_of(model, unit) {
        remove_unit(model, &sub);
        for u in [sub.as_str(), unit] {
            dedupe_departed(model, u);
        }
    }
}

fn dedupe_departed(model: &mut Model, unit: &str) {
    let Some(u) = model.units.get_mut(unit) else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    u.queue.retain(|e| match e {
        Event::RelationDeparted { rel, remote, .. } => seen.insert((*rel, remote.clone())),
        _ => true,
    });
}

/// After subordinate `unit` ran `-relation-broken` for `rel`: if that was its last live
/// container relation with its principal's application, the unit is removed.
pub fn subordinate_left(model: &mut Model, unit: &str, rel_id: i64) {
    let Some(principal) = model.units.get(unit).and_then(|u| u.principal.clone()) else {
        return;
    };
    let papp = app_of(&principal);
    let with_principal = |r: &Relation| r.container && r.involves(papp) && r.involves(app_of(unit));
    if !model.relations.get(&rel_id).is_some_and(with_principal) {
        return;
    }
    let still = model
        .relations
        .values()
        .any(|r| r.id != rel_id && r.life == Life::Alive && with_principal(r));
    if !still {
        remove_unit(model, unit);
    }
}

/// Whether `unit` still has subordinate units: a principal goes only after them (state/unit.go
/// `EnsureDead`: `ErrUnitHasSubordinates`).
pub fn waits_for_subordinates(model: &Model, unit: &str) -> bool {
    !subordinates_of(model, unit).is_empty()
}

/// Whether a dying principal's own teardown is over, so it may go once its subordinates have.
pub fn principal_done(model: &Model, unit: &str) -> bool {
    model
        .units
        .get(unit)
        .is_some_and(|u| u.life == Life::Dying && u.queue.is_empty())
        && subordinates_of(model, unit).is_empty()
}

#[cfg(test)]
mod tests;
