//! An in-memory [`HookEnv`] for the tool tests: `etcd/0` in relations `cluster:1` and `db:7`.

use crate::tools::env::{
    Databag, HookEnv, NetworkInfo, PortRange, Settings, StatusInfo, ToolError,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A relation as the fake sees it.
#[derive(Default)]
pub(crate) struct FakeRel {
    pub endpoint: String,
    pub remote_app: String,
    pub units: Vec<String>,
    /// Unit or application name → its databag.
    pub data: BTreeMap<String, Settings>,
}

/// Everything in memory; calls that change something are recorded.
#[derive(Default)]
pub(crate) struct FakeEnv {
    pub leader: bool,
    pub relation: Option<i64>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub leader_data: Settings,
    pub relations: BTreeMap<i64, FakeRel>,
    pub sets: Vec<(i64, bool, Settings)>,
    pub config: BTreeMap<String, Value>,
    pub params: Option<Value>,
    pub results: Vec<(String, String)>,
    pub failed: Option<String>,
    pub action_logs: Vec<String>,
    pub status: StatusInfo,
    pub status_sets: Vec<(bool, String, String)>,
    pub version: Option<String>,
    pub ports: Vec<PortRange>,
    pub port_ops: Vec<(bool, String, Option<Vec<String>>)>,
    pub logs: Vec<(String, String)>,
    pub state: Settings,
    pub state_deleted: Vec<String>,
    /// The model's secrets, this hook's pending secret changes, and the unit the secret store
    /// sees calling (`etcd/0` unless set).
    pub secrets: crate::secrets::Store,
    pub pending: crate::secrets::Pending,
    pub secret_unit: Option<String>,
    /// What `goal-state` answers.
    pub goal: crate::tools::env::GoalState,
    /// The unit's storage (id → mount point), the running storage hook's id, `storage-add`s.
    pub storage: Vec<(String, String)>,
    pub hook_storage: Option<String>,
    pub storage_adds: Vec<(String, u32)>,
}

/// The model uuid the fake's `secret-add` prints.
pub(crate) const MODEL_UUID: &str = "a1b2c3d4-0000-4000-8000-000000000001";

/// Settings from pairs.
pub(crate) fn settings(pairs: &[(&str, &str)]) -> Settings {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl FakeEnv {
    /// `etcd/0` with a peer relation `cluster:1` (peer `etcd/1`) and `db:7` to `mysql/0`.
    pub fn new() -> FakeEnv {
        let mut env = FakeEnv {
            status: StatusInfo {
                status: "active".into(),
                message: "ok".into(),
            },
            ..Default::default()
        };
        env.relations.insert(
            1,
            FakeRel {
                endpoint: "cluster".into(),
                remote_app: "etcd".into(),
                units: vec!["etcd/1".into()],
                data: [("etcd/1".to_string(), settings(&[("hostname", "etcd-1")]))].into(),
            },
        );
        env.relations.insert(
            7,
            FakeRel {
                endpoint: "db".into(),
                remote_app: "mysql".into(),
                units: vec!["mysql/0".into()],
                data: [
                    (
                        "mysql/0".to_string(),
                        settings(&[("user", "admin"), ("port", "3306")]),
                    ),
                    ("mysql".to_string(), settings(&[("database", "app")])),
                    ("etcd/0".to_string(), settings(&[("mine", "yes")])),
                ]
                .into(),
            },
        );
        env
    }

    /// Inside `db-relation-changed` for `mysql/0`.
    pub fn in_db_hook() -> FakeEnv {
        FakeEnv {
            relation: Some(7),
            remote_unit: Some("mysql/0".into()),
            remote_app: Some("mysql".into()),
            ..FakeEnv::new()
        }
    }

    /// Who calls, for the secret store: relations as the fake has them, the time fixed at 1000.
    pub fn who(&self) -> crate::secrets::Who {
        crate::secrets::Who {
            unit: self.secret_unit.clone().unwrap_or_else(|| "etcd/0".into()),
            leader: self.leader,
            model_uuid: MODEL_UUID.into(),
            now: 1000.0,
            remote_apps: self
                .relations
                .iter()
                .map(|(id, r)| (*id, r.remote_app.clone()))
                .collect(),
            live_relations: self
                .relations
                .iter()
                .map(|(id, r)| (*id, format!("relation-{}.db#etcd.db", r.remote_app)))
                .collect(),
        }
    }

    /// Commits the pending secret changes, as a hook exiting 0 does.
    pub fn commit_secrets(&mut self) -> Result<(), String> {
        let who = self.who();
        let pending = std::mem::take(&mut self.pending);
        crate::secrets::commit(&mut self.secrets, &pending, &who)
    }

    fn rel(&self, id: i64) -> Result<&FakeRel, ToolError> {
        self.relations
            .get(&id)
            .ok_or_else(|| ToolError::new("relation not found"))
    }
}

fn not_leader(msg: &str) -> Result<(), ToolError> {
    Err(ToolError::new(msg))
}

impl HookEnv for FakeEnv {
    fn unit_name(&self) -> String {
        "etcd/0".into()
    }
    fn app_name(&self) -> String {
        "etcd".into()
    }
    fn current_relation(&self) -> Option<i64> {
        self.relation
    }
    fn remote_unit(&self) -> Option<String> {
        self.remote_unit.clone()
    }
    fn remote_app(&self) -> Option<String> {
        self.remote_app.clone()
    }
    fn is_leader(&self) -> Result<bool, ToolError> {
        Ok(self.leader)
    }
    fn leader_get(&self) -> Result<Settings, ToolError> {
        Ok(self.leader_data.clone())
    }
    fn leader_set(&mut self, s: Settings) -> Result<(), ToolError> {
        if !self.leader {
            return not_leader(
                "cannot write leadership settings: cannot write settings: not the leader",
            );
        }
        for (k, v) in s {
            if v.is_empty() {
                self.leader_data.remove(&k);
            } else {
                self.leader_data.insert(k, v);
            }
        }
        Ok(())
    }
    fn relation_endpoint(&self, id: i64) -> Option<String> {
        self.relations.get(&id).map(|r| r.endpoint.clone())
    }
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, ToolError> {
        let ids = self
            .relations
            .iter()
            .filter(|(_, r)| r.endpoint == endpoint);
        Ok(ids.map(|(id, r)| format!("{}:{id}", r.endpoint)).collect())
    }
    fn relation_list(&self, id: i64) -> Result<Vec<String>, ToolError> {
        Ok(self.rel(id)?.units.clone())
    }
    fn relation_remote_app(&self, id: i64) -> Result<String, ToolError> {
        Ok(self.rel(id)?.remote_app.clone())
    }
    fn relation_get(&self, id: i64, bag: &Databag) -> Result<Settings, ToolError> {
        let r = self.rel(id)?;
        let name = match bag {
            Databag::App(a) if a == "etcd" && !self.leader && r.endpoint != "cluster" => {
                return Err(ToolError::new("permission denied"))
            }
            Databag::App(n) | Databag::Unit(n) => n,
        };
        Ok(r.data.get(name).cloned().unwrap_or_default())
    }
    fn relation_set(&mut self, id: i64, app: bool, s: Settings) -> Result<(), ToolError> {
        if app && !self.leader {
            return not_leader("cannot write relation settings");
        }
        self.sets.push((id, app, s));
        Ok(())
    }
    fn config(&self) -> Result<BTreeMap<String, Value>, ToolError> {
        Ok(self.config.clone())
    }
    fn action_params(&self) -> Option<Value> {
        self.params.clone()
    }
    fn action_set(&mut self, key: &str, value: &str) -> Result<(), ToolError> {
        self.results.push((key.into(), value.into()));
        Ok(())
    }
    fn action_fail(&mut self, message: &str) -> Result<(), ToolError> {
        self.failed = Some(message.into());
        Ok(())
    }
    fn action_log(&mut self, message: &str) -> Result<(), ToolError> {
        self.action_logs.push(message.into());
        Ok(())
    }
    fn status_set(
        &mut self,
        application: bool,
        status: &str,
        message: &str,
    ) -> Result<(), ToolError> {
        if application && !self.leader {
            return not_leader("this unit is not the leader");
        }
        self.status_sets
            .push((application, status.into(), message.into()));
        Ok(())
    }
    fn status_get(&self) -> Result<StatusInfo, ToolError> {
        Ok(self.status.clone())
    }
    fn application_status_get(
        &self,
    ) -> Result<(StatusInfo, BTreeMap<String, StatusInfo>), ToolError> {
        if !self.leader {
            return Err(ToolError::new(
                "finding application status: this unit is not the leader",
            ));
        }
        let app = StatusInfo {
            status: "waiting".into(),
            message: "2 of 3".into(),
        };
        Ok((app, [("etcd/0".to_string(), self.status.clone())].into()))
    }
    fn application_version_set(&mut self, version: &str) -> Result<(), ToolError> {
        self.version = Some(version.into());
        Ok(())
    }
    fn unit_address(&self, which: &str) -> Result<String, ToolError> {
        Ok(if which == "public-address" {
            "192.0.2.10"
        } else {
            "10.40.3.11"
        }
        .into())
    }
    fn network_get(&self, binding: &str) -> Result<NetworkInfo, ToolError> {
        if binding != "db" && binding != "cluster" {
            let msg = format!("undefined for unit charm: binding name {binding:?} not defined by the unit's charm");
            return Err(ToolError::new(msg));
        }
        Ok(NetworkInfo {
            interface: "eth0".into(),
            mac: "00:16:3e:aa:bb:cc".into(),
            address: "10.40.3.11".into(),
            cidr: "10.40.3.0/24".into(),
            hostname: "etcd-0".into(),
        })
    }
    fn change_port(
        &mut self,
        open: bool,
        range: PortRange,
        endpoints: Option<Vec<String>>,
    ) -> Result<(), ToolError> {
        self.port_ops.push((open, range.to_string(), endpoints));
        Ok(())
    }
    fn opened_ports(&self) -> Result<Vec<PortRange>, ToolError> {
        Ok(self.ports.clone())
    }
    fn juju_log(&mut self, level: &str, message: &str) -> Result<(), ToolError> {
        self.logs.push((level.into(), message.into()));
        Ok(())
    }
    fn resource_get(&mut self, name: &str) -> Result<String, ToolError> {
        if name != "snapshot" {
            return Err(ToolError::new(format!(
                "could not download resource: resource {name:?} not found"
            )));
        }
        Ok("/var/lib/juju/agents/unit-etcd-0/resources/snapshot/snap.db".into())
    }
    fn state_get(&self) -> Result<Settings, ToolError> {
        Ok(self.state.clone())
    }
    fn state_set(&mut self, s: Settings) -> Result<(), ToolError> {
        self.state.extend(s);
        Ok(())
    }
    fn state_delete(&mut self, key: &str) -> Result<(), ToolError> {
        self.state_deleted.push(key.into());
        Ok(())
    }
    fn goal_state(&self) -> Result<crate::tools::env::GoalState, ToolError> {
        Ok(self.goal.clone())
    }
    fn secret(&mut self, call: crate::secrets::Call) -> Result<crate::secrets::Answer, ToolError> {
        let who = self.who();
        crate::secrets::handle(&mut self.secrets, &mut self.pending, &who, call)
            .map_err(ToolError::new)
    }
    fn hook_storage(&self) -> Option<String> {
        self.hook_storage.clone()
    }
    fn storage_get(&self, id: &str) -> Result<crate::tools::env::StorageInfo, ToolError> {
        let (_, location) = self
            .storage
            .iter()
            .find(|(i, _)| i == id)
            .ok_or_else(|| ToolError::new(format!("storage {id:?} not found")))?;
        Ok(crate::tools::env::StorageInfo {
            kind: "filesystem".into(),
            location: location.clone(),
        })
    }
    fn storage_list(&self, name: &str) -> Result<Vec<String>, ToolError> {
        let of_store = |id: &&String| name.is_empty() || id.split('/').next() == Some(name);
        Ok(self
            .storage
            .iter()
            .map(|(i, _)| i)
            .filter(of_store)
            .cloned()
            .collect())
    }
    fn storage_add(&mut self, adds: Vec<(String, u32)>) -> Result<(), ToolError> {
        self.storage_adds.extend(adds);
        Ok(())
    }
}
