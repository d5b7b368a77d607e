/*!
The `JUJU_*` environment of one hook or action, parsed once.

Nothing else in the charm reads environment variables: `main` builds a [`JujuContext`] with
[`JujuContext::from_env`] and hands it down.
*/

use std::collections::HashMap;
use std::path::Path;

/// The peer relation's endpoint name (`peers: cluster` in `metadata.yaml`).
pub const PEER_ENDPOINT: &str = "cluster";

/// What Juju asked this process to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A hook, e.g. `hooks/config-changed`.
    Hook(Hook),
    /// An action, e.g. `actions/health`.
    Action(String),
    /// Neither `hooks/x` nor `actions/x`: logged, and the process exits 0.
    Unknown(String),
}

/// The kind of relation hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationEvent {
    /// `<endpoint>-relation-created`.
    Created,
    /// `<endpoint>-relation-joined`.
    Joined,
    /// `<endpoint>-relation-changed`.
    Changed,
    /// `<endpoint>-relation-departed`.
    Departed,
    /// `<endpoint>-relation-broken`.
    Broken,
}

/// A hook name, with the few the charm treats specially spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// `install`.
    Install,
    /// `stop`: stops etcd.
    Stop,
    /// `remove`: cleans up the machine.
    Remove,
    /// `<endpoint>-relation-<event>`.
    Relation {
        /// Endpoint name, e.g. `cluster` or `db`.
        endpoint: String,
        /// Which relation event.
        event: RelationEvent,
    },
    /// `<store>-storage-attached`: a store's volume is mounted (before `install` for the
    /// storage a unit is deployed with).
    StorageAttached(String),
    /// `<store>-storage-detaching`: the volume goes once the hook exits.
    StorageDetaching(String),
    /// Any other hook (`start`, `config-changed`, `update-status`, `leader-elected`, ...):
    /// they all run the reconcile path.
    Other(String),
}

impl Hook {
    /// Parses a hook name such as `db-relation-changed`.
    pub fn parse(name: &str) -> Hook {
        match name {
            "install" => return Hook::Install,
            "stop" => return Hook::Stop,
            "remove" => return Hook::Remove,
            _ => {}
        }
        let events = [
            ("-relation-created", RelationEvent::Created),
            ("-relation-joined", RelationEvent::Joined),
            ("-relation-changed", RelationEvent::Changed),
            ("-relation-departed", RelationEvent::Departed),
            ("-relation-broken", RelationEvent::Broken),
        ];
        for (suffix, attached) in [("-storage-attached", true), ("-storage-detaching", false)] {
            match name.strip_suffix(suffix) {
                Some(store) if !store.is_empty() && attached => {
                    return Hook::StorageAttached(store.into())
                }
                Some(store) if !store.is_empty() => return Hook::StorageDetaching(store.into()),
                _ => {}
            }
        }
        for (suffix, event) in events {
            if let Some(endpoint) = name.strip_suffix(suffix) {
                if !endpoint.is_empty() {
                    let endpoint = endpoint.to_string();
                    return Hook::Relation { endpoint, event };
                }
            }
        }
        Hook::Other(name.to_string())
    }

    /// The hook's name as Juju spells it.
    pub fn name(&self) -> String {
        match self {
            Hook::Install => "install".into(),
            Hook::Stop => "stop".into(),
            Hook::Remove => "remove".into(),
            Hook::Relation { endpoint, event } => {
                let event = match event {
                    RelationEvent::Created => "created",
                    RelationEvent::Joined => "joined",
                    RelationEvent::Changed => "changed",
                    RelationEvent::Departed => "departed",
                    RelationEvent::Broken => "broken",
                };
                format!("{endpoint}-relation-{event}")
            }
            Hook::StorageAttached(store) => format!("{store}-storage-attached"),
            Hook::StorageDetaching(store) => format!("{store}-storage-detaching"),
            Hook::Other(name) => name.clone(),
        }
    }
}

impl Invocation {
    /// Works out the invocation from `JUJU_DISPATCH_PATH` (e.g. `hooks/install`), else from
    /// `argv[0]` (`.../hooks/install` or `.../actions/health`), as ops' dispatcher does.
    pub fn detect(dispatch_path: Option<&str>, argv0: &str) -> Invocation {
        let path = match dispatch_path.filter(|p| !p.is_empty()) {
            Some(path) => path.to_string(),
            None => {
                // Old-style symlinks: the parent directory says hook or action.
                let p = Path::new(argv0);
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let dir = p
                    .parent()
                    .and_then(|d| d.file_name())
                    .and_then(|d| d.to_str());
                match dir {
                    Some(dir) => format!("{dir}/{name}"),
                    None => name.to_string(),
                }
            }
        };
        match path.split_once('/') {
            Some(("hooks", name)) if !name.is_empty() => Invocation::Hook(Hook::parse(name)),
            Some(("actions", name)) if !name.is_empty() => Invocation::Action(name.to_string()),
            _ => Invocation::Unknown(path),
        }
    }
}

/// The `JUJU_*` environment of this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JujuContext {
    /// `JUJU_UNIT_NAME`, e.g. `etcd/0`.
    pub unit_name: String,
    /// `JUJU_CHARM_DIR` (or `CHARM_DIR`).
    pub charm_dir: String,
    /// `JUJU_DISPATCH_PATH`, e.g. `hooks/install`.
    pub dispatch_path: Option<String>,
    /// `JUJU_RELATION`: the endpoint of a relation hook.
    pub relation: Option<String>,
    /// `JUJU_RELATION_ID`, e.g. `db:7`.
    pub relation_id: Option<String>,
    /// `JUJU_REMOTE_UNIT`.
    pub remote_unit: Option<String>,
    /// `JUJU_DEPARTING_UNIT`: set only in `-relation-departed`.
    pub departing_unit: Option<String>,
    /// `JUJU_ACTION_NAME`.
    pub action_name: Option<String>,
    /// `JUJU_VERSION`, e.g. `3.4.0`.
    pub juju_version: Option<String>,
    /// `JUJU_MODEL_NAME`.
    pub model_name: String,
    /// `JUJU_MODEL_UUID`.
    pub model_uuid: String,
}

impl JujuContext {
    /// Reads the process environment (the only place the charm does).
    pub fn from_env() -> JujuContext {
        JujuContext::from_map(&std::env::vars().collect())
    }

    /// Builds a context from a map of variables; empty values count as absent.
    pub fn from_map(env: &HashMap<String, String>) -> JujuContext {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        JujuContext {
            unit_name: get("JUJU_UNIT_NAME").unwrap_or_default(),
            charm_dir: get("JUJU_CHARM_DIR")
                .or_else(|| get("CHARM_DIR"))
                .unwrap_or_default(),
            dispatch_path: get("JUJU_DISPATCH_PATH"),
            relation: get("JUJU_RELATION"),
            relation_id: get("JUJU_RELATION_ID"),
            remote_unit: get("JUJU_REMOTE_UNIT"),
            departing_unit: get("JUJU_DEPARTING_UNIT"),
            action_name: get("JUJU_ACTION_NAME"),
            juju_version: get("JUJU_VERSION"),
            model_name: get("JUJU_MODEL_NAME").unwrap_or_default(),
            model_uuid: get("JUJU_MODEL_UUID").unwrap_or_default(),
        }
    }

    /// The etcd member name of this unit: the unit name without `/` (`etcd/0` → `etcd0`).
    pub fn member_name(&self) -> String {
        member_name(&self.unit_name)
    }

    /// The application name (`etcd` for `etcd/0`).
    pub fn app_name(&self) -> &str {
        self.unit_name.split('/').next().unwrap_or("")
    }

    /// True in a peer `-relation-departed` hook run because this very unit is leaving.
    pub fn is_departing_self(&self) -> bool {
        self.relation.as_deref() == Some(PEER_ENDPOINT)
            && self.departing_unit.as_deref() == Some(self.unit_name.as_str())
    }
}

/// The etcd member name of a unit: the unit name without `/`.
pub fn member_name(unit: &str) -> String {
    unit.replace('/', "")
}

/// The number of a unit (`etcd/12` → 12), for a stable admission order.
pub fn unit_number(unit: &str) -> u64 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_path_wins_over_argv0() {
        let inv = Invocation::detect(Some("hooks/db-relation-changed"), "/x/actions/health");
        let expected = Hook::Relation {
            endpoint: "db".into(),
            event: RelationEvent::Changed,
        };
        assert_eq!(inv, Invocation::Hook(expected));
    }

    #[test]
    fn argv0_symlinks() {
        let inv = Invocation::detect(None, "/charm/actions/health");
        assert_eq!(inv, Invocation::Action("health".into()));
        let inv = Invocation::detect(Some(""), "hooks/install");
        assert_eq!(inv, Invocation::Hook(Hook::Install));
        let inv = Invocation::detect(None, "/usr/bin/etcd-charm");
        assert_eq!(inv, Invocation::Unknown("bin/etcd-charm".into()));
    }

    #[test]
    fn hook_names_round_trip() {
        for name in [
            "install",
            "cluster-relation-departed",
            "update-status",
            "stop",
            "data-storage-attached",
            "data-storage-detaching",
        ] {
            assert_eq!(Hook::parse(name).name(), name);
        }
        assert_eq!(
            Hook::parse("data-storage-detaching"),
            Hook::StorageDetaching("data".into())
        );
        assert_eq!(
            Hook::parse("-storage-attached"),
            Hook::Other("-storage-attached".into())
        );
        assert_eq!(
            Hook::parse("-relation-joined"),
            Hook::Other("-relation-joined".into())
        );
    }

    #[test]
    fn departing_self() {
        let env: HashMap<String, String> = [
            ("JUJU_UNIT_NAME", "etcd/2"),
            ("JUJU_RELATION", "cluster"),
            ("JUJU_DEPARTING_UNIT", "etcd/2"),
            ("JUJU_REMOTE_UNIT", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = JujuContext::from_map(&env);
        assert!(ctx.is_departing_self());
        assert_eq!(ctx.remote_unit, None);
        assert_eq!(ctx.member_name(), "etcd2");
        assert_eq!(unit_number("etcd/12"), 12);
    }
}
