//! `goal-state` over the model, as the uniter facade's `oneGoalState` builds it
//! (apiserver/facades/agent/uniter/uniter.go `goalStateUnits`, `goalStateRelations`): every unit
//! of this application (new ones at once, dying ones as `dying`), and for each non-peer
//! relation, keyed by the local endpoint, the remote application with the relation's status and
//! every remote unit with its own.

use super::model::{Agent, Life, Model, Relation, Unit};
use crate::tools::env::{GoalState, GoalStatus};

/// A unit's goal status: `dying` once it is removed, `error` while a hook failed, else its
/// workload status.
fn unit_status(u: &Unit) -> GoalStatus {
    let status = match (u.life, u.agent) {
        (Life::Dying, _) => "dying".to_string(),
        (_, Agent::Error) => "error".to_string(),
        _ => u.workload.status.clone(),
    };
    GoalStatus {
        status,
        since: u.workload_since,
    }
}

/// A relation's status: `broken` while it is removed, `joined` once units of both sides are in
/// it, else `joining`.
fn relation_status(r: &Relation) -> String {
    let entered = |app: &str| r.entered.iter().any(|u| super::model::app_of(u) == app);
    if r.life == Life::Dying {
        "broken".into()
    } else if r.ends.iter().all(|e| entered(&e.app)) {
        "joined".into()
    } else {
        "joining".into()
    }
}

/// What `goal-state` shows to `unit`.
pub fn goal_state(model: &Model, unit: &str) -> GoalState {
    let app = super::model::app_of(unit);
    // Subordinates of other principals are left out (`goalStateUnits`).
    let principal = model.units.get(unit).and_then(|u| u.principal.as_ref());
    let units_of = |a: &str| -> Vec<(String, GoalStatus)> {
        model
            .units
            .values()
            .filter(|u| u.app == a && (u.principal.is_none() || u.principal.as_ref() == principal))
            .map(|u| (u.name.clone(), unit_status(u)))
            .collect()
    };
    let mut gs = GoalState {
        units: units_of(app).into_iter().collect(),
        ..Default::default()
    };
    for r in model.relations.values().filter(|r| !r.is_peer()) {
        let (Some(local), Some(remote)) = (r.end_of(app), r.remote_app(app)) else {
            continue;
        };
        let entry = gs.relations.entry(local.endpoint.clone()).or_default();
        let status = GoalStatus {
            status: relation_status(r),
            since: r.since,
        };
        entry.insert(remote.clone(), status);
        entry.extend(units_of(&remote));
    }
    gs
}

#[cfg(test)]
mod tests {
    use super::goal_state;
    use crate::controller::lifecycle::{add_relation, add_unit, remove_unit};
    use crate::controller::model::{App, CharmMeta, Model, RelEnd};
    use std::path::Path;

    fn app(m: &mut Model, name: &str) {
        m.apps.insert(
            name.into(),
            App {
                name: name.into(),
                charm_dir: "/x".into(),
                charm_rev: 0,
                meta: CharmMeta::default(),
                config: Default::default(),
                resources: Default::default(),
                leader: None,
                leader_data: Default::default(),
                status: Default::default(),
                version: String::new(),
                next_unit: 0,
            },
        );
    }

    fn end(app: &str, endpoint: &str) -> RelEnd {
        RelEnd {
            app: app.into(),
            endpoint: endpoint.into(),
        }
    }

    #[test]
    fn own_units_at_once_dying_ones_as_dying_peers_left_out() {
        let mut m = Model::new(Path::new("goal-state-test"));
        app(&mut m, "etcd");
        app(&mut m, "client");
        add_relation(&mut m, vec![end("etcd", "cluster")], "etcd".into());
        let db = add_relation(
            &mut m,
            vec![end("etcd", "db"), end("client", "db")],
            "etcd".into(),
        );
        let units: Vec<String> = (0..2).map(|_| add_unit(&mut m, "etcd")).collect();
        add_unit(&mut m, "client");
        remove_unit(&mut m, &units[1]);
        let gs = goal_state(&m, &units[0]);
        let status = |s: &std::collections::BTreeMap<String, _>| -> Vec<(String, String)> {
            s.iter()
                .map(|(k, v): (&String, &crate::tools::env::GoalStatus)| {
                    (k.clone(), v.status.clone())
                })
                .collect()
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            status(&gs.units),
            [pair("etcd/0", "waiting"), pair("etcd/1", "dying")]
        );
        assert_eq!(gs.relations.keys().collect::<Vec<_>>(), ["db"]);
        assert_eq!(
            status(&gs.relations["db"]),
            [pair("client", "joining"), pair("client/0", "waiting")]
        );
        m.relations.get_mut(&db).expect("db").entered =
            ["etcd/0".to_string(), "client/0".to_string()].into();
        assert_eq!(
            goal_state(&m, "client/0").relations["db"]["etcd"].status,
            "joined"
        );
    }
}
