//! Fakes of the three boundaries (Juju's tools, etcd, the machine) for the unit tests of the
//! actions and of the reconcile path.

use crate::clock::Clock;
use crate::core::version::Refusal;
use crate::etcd::{Etcd, EtcdError, Grant, Member, MemberStatus};
use crate::juju::context::JujuContext;
use crate::juju::{secret_bare_id, HookToolError, Juju, JujuError, Level, SecretOwner, Settings};
use crate::machine::host::HostError;
use crate::machine::{state, InstallError, Machine};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

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
    /// This unit's own peer data, as `relation-set` left it.
    pub own_data: RefCell<Settings>,
    /// `relation-set` calls: relation id and settings.
    pub relation_sets: RefCell<Vec<(String, Settings)>>,
    /// `status-set` calls: `<state> <message>`.
    pub statuses: RefCell<Vec<String>>,
    /// Secrets by bare id: their latest content.
    pub secrets: RefCell<BTreeMap<String, Settings>>,
    /// `secret-get` calls: the ids asked for.
    pub secret_gets: RefCell<Vec<String>>,
    /// `secret-grant` calls: bare id, relation id, unit.
    pub grants: RefCell<Vec<(String, String, Option<String>)>>,
    /// Juju 2.9: no secret tools (each call fails as a missing tool).
    pub no_secrets: bool,
    /// The `s3-credentials` provider's application databag (`s3-credentials:9`, unit
    /// `s3-integrator/0`), when related.
    pub s3: Option<Settings>,
    /// A `db` consumer (`db:7`, unit `<app>/0`): its application and its application databag.
    pub db: Option<(String, Settings)>,
    /// `goal-state`'s units besides this one and its peers (those `active`), e.g. one not in
    /// the relation yet (`waiting`) or one being removed (`dying`); `None` makes the tool fail.
    pub goal: Option<BTreeMap<String, String>>,
    /// `goal-state` calls.
    pub goal_reads: Cell<usize>,
}

impl FakeJuju {
    pub fn new(unit: &str, params: Value) -> FakeJuju {
        FakeJuju {
            unit: unit.into(),
            params,
            leader: true,
            leader_data: RefCell::new(Settings::new()),
            // A plain-http cluster unless a test sets `tls`.
            config: Map::from_iter([("tls".to_string(), Value::Bool(false))]),
            peers: BTreeMap::new(),
            results: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
            logs: RefCell::new(Vec::new()),
            leader_sets: RefCell::new(Vec::new()),
            own_data: RefCell::new(Settings::new()),
            relation_sets: RefCell::new(Vec::new()),
            statuses: RefCell::new(Vec::new()),
            secrets: RefCell::new(BTreeMap::new()),
            secret_gets: RefCell::new(Vec::new()),
            grants: RefCell::new(Vec::new()),
            no_secrets: false,
            s3: None,
            db: None,
            goal: Some(BTreeMap::new()),
            goal_reads: Cell::new(0),
        }
    }

    /// A secret tool call: fails as a missing tool under Juju 2.9.
    fn secret_tool(&self, tool: &str) -> Result<(), JujuError> {
        match self.no_secrets {
            false => Ok(()),
            true => Err(JujuError::Tool(HookToolError {
                tool: tool.into(),
                args: Vec::new(),
                code: None,
                stderr: "No such file or directory".into(),
                missing: true,
            })),
        }
    }

    /// The secret `id` (any form), or the tool's "not found".
    fn secret(&self, tool: &str, id: &str) -> Result<Settings, JujuError> {
        self.secret_tool(tool)?;
        let found = self.secrets.borrow().get(secret_bare_id(id)).cloned();
        found.ok_or_else(|| {
            JujuError::Tool(HookToolError {
                tool: tool.into(),
                args: vec![id.into()],
                code: Some(1),
                stderr: format!("ERROR secret {id:?} not found"),
                missing: false,
            })
        })
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
        crate::actions::run(&self.ctx(), action, self, etcd).unwrap();
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
            "s3-credentials" if self.s3.is_some() => vec!["s3-credentials:9".into()],
            "db" if self.db.is_some() => vec!["db:7".into()],
            _ => vec![],
        })
    }
    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, JujuError> {
        if relation_id == "s3-credentials:9" {
            return Ok(vec!["s3-integrator/0".into()]);
        }
        if let Some((app, _)) = self.db.as_ref().filter(|_| relation_id == "db:7") {
            return Ok(vec![format!("{app}/0")]);
        }
        Ok(self
            .peers
            .keys()
            .filter(|u| **u != self.unit)
            .cloned()
            .collect())
    }
    fn relation_get(&self, relation_id: &str, unit: &str) -> Result<Settings, JujuError> {
        if relation_id == "db:7" {
            return Ok(Settings::new());
        }
        if unit == self.unit {
            return Ok(self.own_data.borrow().clone());
        }
        Ok(self.peers.get(unit).cloned().unwrap_or_default())
    }
    fn relation_get_app(&self, relation_id: &str, _app: &str) -> Result<Settings, JujuError> {
        if let Some((_, data)) = self.db.as_ref().filter(|_| relation_id == "db:7") {
            return Ok(data.clone());
        }
        Ok(self.s3.clone().unwrap_or_default())
    }
    fn relation_set(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError> {
        if relation_id.starts_with("cluster:") {
            let mut own = self.own_data.borrow_mut();
            for (k, v) in settings {
                match v.is_empty() {
                    true => own.remove(k),
                    false => own.insert(k.clone(), v.clone()),
                };
            }
        }
        let set = (relation_id.to_string(), settings.clone());
        self.relation_sets.borrow_mut().push(set);
        Ok(())
    }
    fn relation_set_app(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError> {
        let set = (format!("{relation_id} --app"), settings.clone());
        self.relation_sets.borrow_mut().push(set);
        Ok(())
    }
    fn status_set(&self, status: &str, message: &str) -> Result<(), JujuError> {
        self.statuses
            .borrow_mut()
            .push(format!("{status} {message}"));
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
    fn close_port(&self, _port: u16) -> Result<(), JujuError> {
        Ok(())
    }
    fn opened_ports(&self) -> Result<Vec<u16>, JujuError> {
        Ok(Vec::new())
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
    fn secret_add(
        &self,
        content: &Settings,
        _owner: SecretOwner,
        _label: Option<&str>,
    ) -> Result<String, JujuError> {
        self.secret_tool("secret-add")?;
        let mut secrets = self.secrets.borrow_mut();
        let id = format!("{:020}", secrets.len() + 1);
        secrets.insert(id.clone(), content.clone());
        Ok(format!("secret://fake-model/{id}"))
    }
    fn secret_get(&self, id: &str, _refresh: bool) -> Result<Settings, JujuError> {
        self.secret_gets.borrow_mut().push(id.to_string());
        self.secret("secret-get", id)
    }
    fn secret_set(&self, id: &str, content: &Settings) -> Result<(), JujuError> {
        self.secret("secret-set", id)?;
        let id = secret_bare_id(id).to_string();
        self.secrets.borrow_mut().insert(id, content.clone());
        Ok(())
    }
    fn secret_grant(
        &self,
        id: &str,
        relation_id: &str,
        unit: Option<&str>,
    ) -> Result<(), JujuError> {
        self.secret("secret-grant", id)?;
        let grant = (
            secret_bare_id(id).to_string(),
            relation_id.to_string(),
            unit.map(str::to_string),
        );
        self.grants.borrow_mut().push(grant);
        Ok(())
    }
    fn secret_ids(&self) -> Result<Vec<String>, JujuError> {
        self.secret_tool("secret-ids")?;
        Ok(self.secrets.borrow().keys().cloned().collect())
    }
    fn secret_remove(&self, id: &str) -> Result<(), JujuError> {
        self.secret("secret-remove", id)?;
        self.secrets.borrow_mut().remove(secret_bare_id(id));
        Ok(())
    }
    fn goal_units(&self) -> Result<BTreeMap<String, String>, JujuError> {
        self.goal_reads.set(self.goal_reads.get() + 1);
        let extra = self.goal.clone().ok_or_else(|| {
            JujuError::Tool(HookToolError {
                tool: "goal-state".into(),
                args: Vec::new(),
                code: Some(1),
                stderr: "ERROR connection is shut down".into(),
                missing: false,
            })
        })?;
        let joined = std::iter::once(&self.unit).chain(self.peers.keys());
        let mut units: BTreeMap<String, String> =
            joined.map(|u| (u.clone(), "active".into())).collect();
        units.extend(extra);
        Ok(units)
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
    /// Operations (`member add`, `member promote`, ...) etcd refuses "for now", every time.
    pub not_yet: RefCell<Vec<&'static str>>,
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
            not_yet: RefCell::new(Vec::new()),
        }
    }

    /// Records a membership call; etcd's "not yet" when `op` is in [`FakeEtcd::not_yet`].
    fn membership(&self, op: &'static str, call: String) -> Result<(), EtcdError> {
        self.call(call);
        match self.not_yet.borrow().contains(&op) {
            true => Err(EtcdError::NotYet {
                op: op.into(),
                message: "etcdserver: unhealthy cluster".into(),
            }),
            false => Ok(()),
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
        db_size_in_use: 20_480,
        version: "3.4.23".into(),
        is_learner: false,
        errors: Vec::new(),
    }
}

impl Etcd for FakeEtcd {
    fn status(&self, endpoint: &str) -> Result<MemberStatus, EtcdError> {
        let mut answer = self.status.borrow().get(endpoint).cloned();
        // As etcd's: a member's status lists the cluster's alarms.
        if let Some(Ok(s)) = &mut answer {
            let alarms = self.alarms.borrow();
            let listed = alarms
                .iter()
                .map(|(m, a)| format!("memberID:{m} alarm:{a} "));
            s.errors.extend(listed);
        }
        answer.unwrap_or_else(|| {
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
        peer_url: &str,
    ) -> Result<(u64, Vec<Member>), EtcdError> {
        self.membership("member add", format!("member add {peer_url}"))?;
        let learner = Member {
            id: 0x99,
            peer_urls: vec![peer_url.to_string()],
            is_learner: true,
            ..Member::default()
        };
        let mut members = self.members.clone();
        members.push(learner);
        Ok((0x99, members))
    }
    fn member_promote(&self, endpoints: &[String], id: u64) -> Result<(), EtcdError> {
        let first = endpoints.first().map_or("", String::as_str);
        self.membership(
            "member promote",
            format!("member promote {id:x} at {first}"),
        )
    }
    fn member_remove(&self, _endpoints: &[String], id: u64) -> Result<(), EtcdError> {
        self.membership("member remove", format!("member remove {id:x}"))
    }
    fn member_update(
        &self,
        _endpoints: &[String],
        id: u64,
        peer_urls: &[String],
    ) -> Result<(), EtcdError> {
        let call = format!("member update {id:x} {}", peer_urls.join(","));
        self.membership("member update", call)
    }
    fn move_leader(&self, _leader_endpoint: &str, target: u64) -> Result<(), EtcdError> {
        self.membership("move leader", format!("move leader {target:x}"))
    }
    fn auth_set_user(
        &self,
        _endpoints: &[String],
        name: &str,
        grant: &Grant,
        _old: Option<&Grant>,
        _password: &Option<String>,
    ) -> Result<(), EtcdError> {
        self.membership("auth", format!("auth user {name} {}", grant.record()))
    }
    fn auth_delete_user(&self, _endpoints: &[String], name: &str) -> Result<(), EtcdError> {
        self.membership("auth", format!("auth user delete {name}"))
    }
    fn auth_switch(&self, _endpoints: &[String], on: bool) -> Result<(), EtcdError> {
        self.membership(
            "auth",
            format!("auth {}", if on { "enable" } else { "disable" }),
        )
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

/// What the fake machine's `install` does.
#[derive(Debug, Clone)]
pub enum FakeInstall {
    /// Installs this version.
    Version(String),
    /// Refuses the resource.
    Refused(Refusal),
    /// No resource and no package.
    NoSource,
}

/// A machine in memory: files and directories, etcd's service, a virtual clock, and the calls
/// made. A hook is "killed" at a call by [`FakeMachine::dies_at`]: the fake panics there, and
/// what was written so far stays, as on a real machine.
pub struct FakeMachine {
    pub files: RefCell<BTreeMap<String, String>>,
    pub dirs: RefCell<BTreeSet<String>>,
    /// Symbolic links: path → target (not followed).
    pub links: RefCell<BTreeMap<String, String>>,
    /// etcd's service runs.
    pub active: Cell<bool>,
    pub calls: RefCell<Vec<String>>,
    pub install: RefCell<FakeInstall>,
    /// The call (its start) at which the hook dies.
    pub dies_at: RefCell<Option<&'static str>>,
    start: Instant,
    elapsed: Cell<Duration>,
}

impl FakeMachine {
    /// A fresh machine with nothing installed.
    pub fn new() -> FakeMachine {
        FakeMachine {
            files: RefCell::new(BTreeMap::new()),
            dirs: RefCell::new(BTreeSet::new()),
            links: RefCell::new(BTreeMap::new()),
            active: Cell::new(false),
            calls: RefCell::new(Vec::new()),
            install: RefCell::new(FakeInstall::Version("3.4.23".into())),
            dies_at: RefCell::new(None),
            start: Instant::now(),
            elapsed: Cell::new(Duration::ZERO),
        }
    }

    /// A machine with etcd `version` installed.
    pub fn installed(version: &str) -> FakeMachine {
        let m = FakeMachine::new();
        m.put(crate::paths::ETCD_LINK, "");
        state::record_version(&m, version).unwrap();
        m
    }

    /// Puts a file.
    pub fn put(&self, path: &str, content: &str) {
        self.files.borrow_mut().insert(path.into(), content.into());
    }

    /// The virtual time that has passed.
    pub fn elapsed(&self) -> Duration {
        self.elapsed.get()
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn call(&self, c: String) {
        if let Some(at) = *self.dies_at.borrow() {
            if c.starts_with(at) {
                panic!("the hook was killed at `{c}`");
            }
        }
        self.calls.borrow_mut().push(c);
    }
}

impl Clock for FakeMachine {
    fn now(&self) -> Instant {
        self.start + self.elapsed.get()
    }
    fn sleep(&self, d: Duration) {
        self.elapsed.set(self.elapsed.get() + d);
    }
}

impl Machine for FakeMachine {
    fn read(&self, path: &str) -> Option<String> {
        self.files.borrow().get(path).cloned()
    }
    fn exists(&self, path: &str) -> bool {
        let inside = format!("{path}/");
        self.files.borrow().contains_key(path)
            || self.dirs.borrow().contains(path)
            || self.files.borrow().keys().any(|k| k.starts_with(&inside))
    }
    fn write(&self, path: &str, content: &str, _mode: u32) -> Result<bool, HostError> {
        if self.read(path).as_deref() == Some(content) {
            return Ok(false);
        }
        self.call(format!("write {path}"));
        self.put(path, content);
        Ok(true)
    }
    fn write_private(&self, path: &str, content: &str, _etcd_group: bool) -> Result<(), HostError> {
        self.write(path, content, 0o600).map(drop)
    }
    fn remove(&self, path: &str) {
        let inside = format!("{path}/");
        self.files
            .borrow_mut()
            .retain(|k, _| k != path && !k.starts_with(&inside));
        self.dirs
            .borrow_mut()
            .retain(|k| k != path && !k.starts_with(&inside));
    }
    fn systemctl(&self, args: &[&str]) -> Result<(), HostError> {
        self.call(format!("systemctl {}", args.join(" ")));
        match args {
            ["start", ..] | ["restart", ..] => self.active.set(true),
            ["stop", ..] | ["disable", "--now", ..] => self.active.set(false),
            _ => {}
        }
        Ok(())
    }
    fn service_active(&self) -> bool {
        self.active.get()
    }
    fn restart_service(&self, _timeout: Duration) -> Result<(), HostError> {
        self.call("restart etcd".into());
        self.active.set(true);
        Ok(())
    }
    fn ensure_user_and_dirs(&self) -> Result<(), HostError> {
        let mut dirs = self.dirs.borrow_mut();
        for d in [
            crate::paths::ETCD_HOME,
            crate::paths::DATA_DIR,
            crate::paths::STATE_DIR,
        ] {
            dirs.insert(d.into());
        }
        Ok(())
    }
    fn move_data_aside(&self) -> Result<(), HostError> {
        self.call("move the data dir aside".into());
        self.remove(crate::paths::DATA_DIR);
        Ok(())
    }
    fn use_volume(&self) -> Result<(), HostError> {
        self.call("put the data dir on the volume".into());
        let (path, target) = (crate::paths::DATA_DIR, crate::paths::VOLUME_DATA_DIR);
        self.links.borrow_mut().insert(path.into(), target.into());
        Ok(())
    }
    fn own_data_dir(&self) -> Result<usize, HostError> {
        self.call("give the data dir to etcd".into());
        Ok(0)
    }
    fn read_link(&self, path: &str) -> Option<String> {
        self.links.borrow().get(path).cloned()
    }
    fn install(
        &self,
        _juju: &dyn Juju,
        _installed: Option<&str>,
        _known: &[&str],
    ) -> Result<String, InstallError> {
        self.call("install etcd".into());
        let install = self.install.borrow().clone();
        match install {
            FakeInstall::Version(v) => {
                self.put(crate::paths::ETCD_LINK, "");
                state::record_version(self, &v)?;
                Ok(v)
            }
            FakeInstall::Refused(r) => Err(InstallError::Refused(r)),
            FakeInstall::NoSource => Err(InstallError::NoSource {
                resource: "not attached".into(),
                package: "unavailable".into(),
            }),
        }
    }
    fn hostname(&self) -> Option<String> {
        Some("machine-0".into())
    }
    fn random_token(&self) -> String {
        "f00dcafe".into()
    }
}
