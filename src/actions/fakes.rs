//! Fakes of Juju's tools and of etcd for the actions' unit tests.

use crate::etcd::{Etcd, EtcdError, Member, MemberStatus};
use crate::juju::context::JujuContext;
use crate::juju::{Juju, JujuError, Level, Settings};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// Juju's hook tools for one action run.
pub struct FakeJuju {
    pub unit: String,
    pub params: Value,
    pub leader: bool,
    pub leader_data: RefCell<Settings>,
    pub config: Map<String, Value>,
    /// Peer units and their data.
    pub peers: BTreeMap<String, Settings>,
    pub results: RefCell<Vec<(String, String)>>,
    pub failure: RefCell<Option<String>>,
    pub logs: RefCell<Vec<String>>,
    pub leader_sets: RefCell<Vec<Settings>>,
}

impl FakeJuju {
    pub fn new(unit: &str, params: Value) -> FakeJuju {
        FakeJuju {
            unit: unit.into(),
            params,
            leader: true,
            leader_data: RefCell::new(Settings::new()),
            config: Map::new(),
            peers: BTreeMap::new(),
            results: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
            logs: RefCell::new(Vec::new()),
            leader_sets: RefCell::new(Vec::new()),
        }
    }

    pub fn ctx(&self) -> JujuContext {
        JujuContext {
            unit_name: self.unit.clone(),
            ..JujuContext::default()
        }
    }

    pub fn failed(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    pub fn result(&self, key: &str) -> Option<String> {
        self.results
            .borrow()
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Runs the named action as this unit against `etcd` (no hook tool fails here).
    pub fn run(&self, action: &str, etcd: &FakeEtcd) {
        super::run(&self.ctx(), action, self, etcd).unwrap();
    }

    /// Checks that a result key is set to `want`.
    #[track_caller]
    pub fn assert_result(&self, key: &str, want: &str) {
        assert_eq!(self.result(key).as_deref(), Some(want), "{key}");
    }

    /// The failure message, checked to start with `prefix`.
    #[track_caller]
    pub fn failure_starting(&self, prefix: &str) -> String {
        let msg = self.failed().expect("the action failed");
        assert!(msg.starts_with(prefix), "{msg}");
        msg
    }
}

impl Juju for FakeJuju {
    fn config_get(&self) -> Result<Map<String, Value>, JujuError> {
        Ok(self.config.clone())
    }
    fn is_leader(&self) -> Result<bool, JujuError> {
        Ok(self.leader)
    }
    fn leader_get(&self) -> Result<Settings, JujuError> {
        Ok(self.leader_data.borrow().clone())
    }
    fn leader_set(&self, settings: &Settings) -> Result<(), JujuError> {
        self.leader_sets.borrow_mut().push(settings.clone());
        let mut data = self.leader_data.borrow_mut();
        for (k, v) in settings {
            match v.is_empty() {
                true => data.remove(k),
                false => data.insert(k.clone(), v.clone()),
            };
        }
        Ok(())
    }
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, JujuError> {
        Ok(match endpoint {
            "cluster" => vec!["cluster:1".into()],
            _ => vec![],
        })
    }
    fn relation_list(&self, _relation_id: &str) -> Result<Vec<String>, JujuError> {
        Ok(self.peers.keys().cloned().collect())
    }
    fn relation_get(&self, _relation_id: &str, unit: &str) -> Result<Settings, JujuError> {
        Ok(self.peers.get(unit).cloned().unwrap_or_default())
    }
    fn relation_set(&self, _relation_id: &str, _settings: &Settings) -> Result<(), JujuError> {
        Ok(())
    }
    fn status_set(&self, _status: &str, _message: &str) -> Result<(), JujuError> {
        Ok(())
    }
    fn log(&self, _level: Level, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
    fn address(&self, _binding: &str) -> Result<Option<String>, JujuError> {
        Ok(Some("10.0.0.1".into()))
    }
    fn resource_get(&self, name: &str) -> Result<String, JujuError> {
        Err(JujuError::BadOutput {
            tool: "resource-get".into(),
            reason: format!("{name} is not attached"),
        })
    }
    fn application_version_set(&self, _version: &str) -> Result<(), JujuError> {
        Ok(())
    }
    fn open_port(&self, _port: u16) -> Result<(), JujuError> {
        Ok(())
    }
    fn action_get(&self) -> Result<Value, JujuError> {
        Ok(self.params.clone())
    }
    fn action_set(&self, results: &[(String, String)]) -> Result<(), JujuError> {
        self.results.borrow_mut().extend(results.iter().cloned());
        Ok(())
    }
    fn action_fail(&self, message: &str) -> Result<(), JujuError> {
        *self.failure.borrow_mut() = Some(message.to_string());
        Ok(())
    }
    fn action_log(&self, message: &str) -> Result<(), JujuError> {
        self.logs.borrow_mut().push(message.to_string());
        Ok(())
    }
}

/// An etcd cluster: members, what each endpoint answers, alarms, and the calls made.
pub struct FakeEtcd {
    pub members: Vec<Member>,
    pub status: RefCell<HashMap<String, Result<MemberStatus, EtcdError>>>,
    pub alarms: RefCell<Vec<(u64, String)>>,
    pub revision: i64,
    pub compacted: RefCell<i64>,
    pub calls: RefCell<Vec<String>>,
    /// Endpoints whose member stops answering once defragmented.
    pub dies_on_defrag: Vec<String>,
}

/// The client URL of member `i` (0-based).
pub fn client_url(i: usize) -> String {
    format!("http://10.0.0.{}:2379", i + 1)
}

impl FakeEtcd {
    /// `n` healthy voting members etcd0.. with ids 1.., member 1 the Raft leader; the local
    /// endpoint is etcd0's.
    pub fn healthy(n: usize) -> FakeEtcd {
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                id: i as u64 + 1,
                name: format!("etcd{i}"),
                peer_urls: vec![format!("http://10.0.0.{}:2380", i + 1)],
                client_urls: vec![client_url(i)],
                is_learner: false,
            })
            .collect();
        let mut status = HashMap::new();
        for m in &members {
            status.insert(m.client_urls[0].clone(), Ok(status_of(m.id, 1)));
        }
        if n > 0 {
            status.insert("http://127.0.0.1:2379".into(), Ok(status_of(1, 1)));
        }
        FakeEtcd {
            members,
            status: RefCell::new(status),
            alarms: RefCell::new(Vec::new()),
            revision: 100,
            compacted: RefCell::new(0),
            calls: RefCell::new(Vec::new()),
            dies_on_defrag: Vec::new(),
        }
    }

    /// Member `i` stops answering.
    pub fn kill(&self, i: usize) {
        let dead = timed_out(client_url(i));
        self.status.borrow_mut().insert(client_url(i), dead.clone());
        if i == 0 {
            self.status
                .borrow_mut()
                .insert("http://127.0.0.1:2379".into(), dead);
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn call(&self, c: String) {
        self.calls.borrow_mut().push(c);
    }

    fn first_answering(&self, endpoints: &[String]) -> Result<(), EtcdError> {
        let status = self.status.borrow();
        match endpoints
            .iter()
            .any(|e| status.get(e).is_some_and(|s| s.is_ok()))
        {
            true => Ok(()),
            false => Err(EtcdError::Unreachable {
                op: "call".into(),
                endpoints: endpoints.join(","),
                detail: "timed out".into(),
            }),
        }
    }
}

/// The status of a member that stopped answering at `endpoint`.
fn timed_out(endpoint: String) -> Result<MemberStatus, EtcdError> {
    Err(EtcdError::Unreachable {
        op: "status".into(),
        endpoints: endpoint,
        detail: "timed out".into(),
    })
}

/// A member's status: `id`, knowing Raft leader `leader`.
pub fn status_of(id: u64, leader: u64) -> MemberStatus {
    MemberStatus {
        member_id: id,
        leader,
        raft_term: 2,
        raft_index: 40 + id,
        db_size: 20_480,
        version: "3.4.23".into(),
        is_learner: false,
        errors: Vec::new(),
    }
}

impl Etcd for FakeEtcd {
    fn status(&self, endpoint: &str) -> Result<MemberStatus, EtcdError> {
        self.status
            .borrow()
            .get(endpoint)
            .cloned()
            .unwrap_or_else(|| {
                Err(EtcdError::Unreachable {
                    op: "status".into(),
                    endpoints: endpoint.into(),
                    detail: "connection refused".into(),
                })
            })
    }
    fn member_list(&self, endpoints: &[String]) -> Result<Vec<Member>, EtcdError> {
        self.first_answering(endpoints)?;
        Ok(self.members.clone())
    }
    fn member_add_learner(
        &self,
        _endpoints: &[String],
        _peer_url: &str,
    ) -> Result<(u64, Vec<Member>), EtcdError> {
        unimplemented!()
    }
    fn member_promote(&self, _endpoints: &[String], _id: u64) -> Result<(), EtcdError> {
        unimplemented!()
    }
    fn member_remove(&self, _endpoints: &[String], id: u64) -> Result<(), EtcdError> {
        self.call(format!("member remove {id:x}"));
        Ok(())
    }
    fn member_update(
        &self,
        _endpoints: &[String],
        _id: u64,
        _peer_urls: &[String],
    ) -> Result<(), EtcdError> {
        unimplemented!()
    }
    fn move_leader(&self, _leader_endpoint: &str, _target: u64) -> Result<(), EtcdError> {
        unimplemented!()
    }
    fn alarms(&self, endpoints: &[String]) -> Result<Vec<(u64, String)>, EtcdError> {
        self.first_answering(endpoints)?;
        Ok(self.alarms.borrow().clone())
    }
    fn revision(&self, endpoints: &[String]) -> Result<i64, EtcdError> {
        self.first_answering(endpoints)?;
        Ok(self.revision)
    }
    fn compact(
        &self,
        endpoints: &[String],
        revision: i64,
        physical: bool,
    ) -> Result<(), EtcdError> {
        self.first_answering(endpoints)?;
        if revision <= *self.compacted.borrow() {
            return Err(EtcdError::Failed {
                op: "compact".into(),
                message: "mvcc: required revision has been compacted".into(),
            });
        }
        self.call(format!("compact {revision} physical={physical}"));
        *self.compacted.borrow_mut() = revision;
        Ok(())
    }
    fn defragment(&self, endpoint: &str) -> Result<(), EtcdError> {
        self.status(endpoint)?;
        self.call(format!("defragment {endpoint}"));
        if let Some(i) = self.dies_on_defrag.iter().position(|e| e == endpoint) {
            let dead = timed_out(self.dies_on_defrag[i].clone());
            self.status.borrow_mut().insert(endpoint.into(), dead);
        }
        Ok(())
    }
    fn alarm_disarm(
        &self,
        endpoints: &[String],
        member: u64,
        alarm: &str,
    ) -> Result<(), EtcdError> {
        self.first_answering(endpoints)?;
        self.call(format!("disarm {alarm} {member:x}"));
        self.alarms
            .borrow_mut()
            .retain(|(m, a)| !(*m == member && a == alarm));
        Ok(())
    }
}
