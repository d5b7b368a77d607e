//! The model: applications, units, machines, relations and tasks, persisted as one JSON file.

use crate::tools::env::{PortRange, Settings, StatusInfo};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One hook or action a unit has to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// `install`.
    Install,
    /// `leader-elected`.
    LeaderElected,
    /// `leader-settings-changed`.
    LeaderSettingsChanged,
    /// `config-changed`.
    ConfigChanged,
    /// `start`.
    Start,
    /// `upgrade-charm`.
    UpgradeCharm,
    /// `update-status`.
    UpdateStatus,
    /// `stop`.
    Stop,
    /// `remove`.
    Remove,
    /// `<endpoint>-relation-created`.
    RelationCreated {
        /// Relation id.
        rel: i64,
    },
    /// `<endpoint>-relation-joined`.
    RelationJoined {
        /// Relation id.
        rel: i64,
        /// The joining remote unit.
        remote: String,
    },
    /// `<endpoint>-relation-changed` (app-level when `remote` is `None`).
    RelationChanged {
        /// Relation id.
        rel: i64,
        /// The remote unit whose data changed.
        remote: Option<String>,
    },
    /// `<endpoint>-relation-departed`.
    RelationDeparted {
        /// Relation id.
        rel: i64,
        /// The remote unit that left (for the departing unit itself: each remaining peer).
        remote: String,
        /// `JUJU_DEPARTING_UNIT`.
        departing: String,
    },
    /// `<endpoint>-relation-broken`.
    RelationBroken {
        /// Relation id.
        rel: i64,
    },
    /// An action (task id).
    Action {
        /// Task id.
        id: u64,
    },
    /// A command run by `sandbox exec` in a hook context.
    Exec {
        /// Task id holding the command and its output.
        id: u64,
    },
    /// `secret-changed`: a secret this unit read has a new revision.
    SecretChanged {
        /// Bare secret id.
        id: String,
    },
    /// `secret-rotate`: an owned secret's rotation is due.
    SecretRotate {
        /// Bare secret id.
        id: String,
    },
    /// `secret-expired`: a revision of an owned secret expired.
    SecretExpired {
        /// Bare secret id.
        id: String,
        /// The revision.
        revision: u32,
    },
    /// `secret-remove`: no reader tracks a revision of an owned secret any more.
    SecretRemove {
        /// Bare secret id.
        id: String,
        /// The revision.
        revision: u32,
    },
    /// `<store>-storage-attached`.
    StorageAttached {
        /// Storage id, e.g. `data/0`.
        id: String,
    },
    /// `<store>-storage-detaching`.
    StorageDetaching {
        /// Storage id, e.g. `data/0`.
        id: String,
    },
}

/// An endpoint declared by a charm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointMeta {
    /// `provides`, `requires` or `peers`.
    pub role: String,
    /// Interface name.
    pub interface: String,
    /// `global` or `container` (`scope:` in metadata.yaml).
    #[serde(default = "global_scope")]
    pub scope: String,
}

fn global_scope() -> String {
    "global".into()
}

/// What the sandbox reads from a charm's metadata.yaml, config.yaml and actions.yaml.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CharmMeta {
    /// Charm name.
    pub name: String,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, EndpointMeta>,
    /// Resources: name → file name.
    pub resources: BTreeMap<String, String>,
    /// Config options: name → `{type, default, description}`.
    pub options: BTreeMap<String, Value>,
    /// Actions: name → schema entry of actions.yaml.
    pub actions: BTreeMap<String, Value>,
    /// `subordinate: true`: its units live beside a principal's (see `lifecycle::subordinate`).
    #[serde(default)]
    pub subordinate: bool,
    /// Stores declared under `storage:`.
    #[serde(default)]
    pub storage: BTreeMap<String, super::storage::StoreMeta>,
}

/// Life of a unit or relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Life {
    /// Normal.
    Alive,
    /// Being removed: running its teardown hooks.
    Dying,
}

/// An application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    /// Name.
    pub name: String,
    /// Host dir of the unpacked charm.
    pub charm_dir: PathBuf,
    /// Charm revision (bumped by refresh).
    pub charm_rev: u32,
    /// Charm metadata.
    pub meta: CharmMeta,
    /// Config values set by the user (typed).
    pub config: BTreeMap<String, Value>,
    /// Attached resources: name → host path.
    pub resources: BTreeMap<String, PathBuf>,
    /// The leader unit.
    pub leader: Option<String>,
    /// Leader settings.
    pub leader_data: Settings,
    /// Application status set by the leader.
    pub status: StatusInfo,
    /// Workload version.
    pub version: String,
    /// Next unit number.
    pub next_unit: u32,
}

impl App {
    /// A new application of the charm staged at `charm_dir`, with no config, resources or units.
    pub fn new(name: &str, charm_dir: PathBuf, meta: CharmMeta) -> App {
        App {
            name: name.into(),
            charm_dir,
            charm_rev: 0,
            meta,
            config: BTreeMap::new(),
            resources: BTreeMap::new(),
            leader: None,
            leader_data: Settings::new(),
            status: StatusInfo::default(),
            version: String::new(),
            next_unit: 0,
        }
    }
}

/// Agent state of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agent {
    /// Waiting for its machine.
    Allocating,
    /// No hook running.
    Idle,
    /// Running a hook or action.
    Executing,
    /// A hook failed.
    Error,
    /// Its machine is gone.
    Lost,
}

/// A unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    /// e.g. `etcd/0`.
    pub name: String,
    /// Application name.
    pub app: String,
    /// Machine number.
    pub machine: u32,
    /// Alive or dying.
    pub life: Life,
    /// Hooks and actions still to run, in order.
    pub queue: VecDeque<Event>,
    /// Whether `install` completed.
    pub installed: bool,
    /// Workload status and when it was set.
    pub workload: StatusInfo,
    /// When the workload status last changed.
    pub workload_since: f64,
    /// Agent state.
    pub agent: Agent,
    /// Agent message (e.g. `hook failed: "install"`).
    pub agent_message: String,
    /// When the agent state last changed.
    pub agent_since: f64,
    /// Failed attempts of the event at the head of the queue.
    pub retries: u32,
    /// Earliest time the head of the queue may run again.
    pub retry_at: f64,
    /// Unit state (`state-get`).
    pub state: Settings,
    /// Opened ports.
    pub ports: BTreeSet<PortRange>,
    /// Charm revision deployed on the unit.
    pub charm_rev: u32,
    /// For a subordinate unit: its principal unit, whose machine it shares.
    #[serde(default)]
    pub principal: Option<String>,
}

/// A machine record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineRec {
    /// Number.
    pub id: u32,
    /// Host name.
    pub hostname: String,
    /// Address on the sandbox network.
    pub address: String,
    /// MAC address of eth0.
    pub mac: String,
    /// Booting, running, or killed.
    pub state: MachineState,
    /// The booted machine, when running.
    pub handle: Option<crate::machine::Machine>,
    /// Units whose traffic from this machine is cut (partition --from).
    pub blocked_from: Vec<String>,
    /// Fully cut off the switch.
    pub partitioned: bool,
}

/// Where a machine is in its life (serialized as the strings model.json has always held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineState {
    /// Not booted yet, or being booted again.
    Pending,
    /// Running: its units may run hooks.
    Started,
    /// Killed, or found dead after a controller restart.
    Down,
}

impl MachineState {
    /// Its name in status and model.json.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Pending => "pending",
            MachineState::Started => "started",
            MachineState::Down => "down",
        }
    }
}

/// One side of a relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelEnd {
    /// Application.
    pub app: String,
    /// Endpoint.
    pub endpoint: String,
}

/// A relation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relation {
    /// Id.
    pub id: i64,
    /// One end for a peer relation, two otherwise.
    pub ends: Vec<RelEnd>,
    /// Interface.
    pub interface: String,
    /// Alive, or dying (being removed).
    pub life: Life,
    /// Application databags.
    pub app_data: BTreeMap<String, Settings>,
    /// Unit databags.
    pub unit_data: BTreeMap<String, Settings>,
    /// For each local unit: the remote units it has joined (in scope).
    pub scope: BTreeMap<String, BTreeSet<String>>,
    /// Units that entered the relation (ran `-relation-created`).
    pub entered: BTreeSet<String>,
    /// Dying units the others have been told about (ran or will run departed for them).
    #[serde(default)]
    pub departing: BTreeSet<String>,
    /// When it was made or began to die (its status' since, for `goal-state`).
    #[serde(default)]
    pub since: f64,
    /// Container-scoped: units see only counterparts on their own machine.
    #[serde(default)]
    pub container: bool,
}

impl Relation {
    /// Whether this is a peer relation.
    pub fn is_peer(&self) -> bool {
        self.ends.len() == 1
    }
    /// The end of `app` (for peers, the only end).
    pub fn end_of(&self, app: &str) -> Option<&RelEnd> {
        self.ends.iter().find(|e| e.app == app)
    }
    /// The application on the other side from `app` (itself for peers).
    pub fn remote_app(&self, app: &str) -> Option<String> {
        if self.is_peer() {
            return Some(self.ends[0].app.clone());
        }
        self.ends
            .iter()
            .find(|e| e.app != app)
            .map(|e| e.app.clone())
    }
    /// Whether `app` takes part.
    pub fn involves(&self, app: &str) -> bool {
        self.ends.iter().any(|e| e.app == app)
    }
    /// `app:endpoint` key of this relation in status.
    pub fn key(&self) -> String {
        self.ends
            .iter()
            .map(|e| format!("{}:{}", e.app, e.endpoint))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where a task is in its life (serialized as the strings model.json has always held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    /// Queued, or put back after its machine went down mid-run.
    Pending,
    /// Its hook process runs.
    Running,
    /// Exited 0.
    Completed,
    /// Exited non-zero, called `action-fail`, or is not implemented.
    Failed,
}

impl TaskStatus {
    /// Whether it has ended.
    pub fn is_done(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// A task: an action or an exec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: u64,
    /// Unit.
    pub unit: String,
    /// Action name (`juju-exec` for exec).
    pub action: String,
    /// Params.
    pub params: Value,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// Message (from action-fail).
    pub message: String,
    /// Results from action-set, nested.
    pub results: Value,
    /// Progress messages (time, text).
    pub log: Vec<(f64, String)>,
    /// Hook stdout.
    pub stdout: String,
    /// Hook stderr.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
    /// Times.
    pub enqueued: f64,
    /// Start time.
    pub started: f64,
    /// Completion time.
    pub completed: f64,
}

/// The whole persisted model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// Model name.
    pub name: String,
    /// Model UUID.
    pub uuid: String,
    /// Network prefix (netns names) of this sandbox.
    pub prefix: String,
    /// First three octets of the machines' /24.
    pub subnet: [u8; 3],
    /// Model config.
    pub config: BTreeMap<String, String>,
    /// Applications.
    pub apps: BTreeMap<String, App>,
    /// Units.
    pub units: BTreeMap<String, Unit>,
    /// Machines.
    pub machines: BTreeMap<u32, MachineRec>,
    /// Relations.
    pub relations: BTreeMap<i64, Relation>,
    /// Tasks.
    pub tasks: BTreeMap<u64, Task>,
    /// Next machine number.
    pub next_machine: u32,
    /// Next relation id.
    pub next_relation: i64,
    /// Next task id.
    pub next_task: u64,
    /// Charm secrets.
    #[serde(default)]
    pub secrets: crate::secrets::Store,
    /// The Juju version the model imitates (`sandbox bootstrap --agent-version`).
    #[serde(default = "default_agent_version")]
    pub agent_version: String,
    /// Storage instances and the model-wide `stores` sequence.
    #[serde(default)]
    pub storage: super::storage::Storage,
}

/// The Juju version a model imitates unless bootstrapped with another.
pub const DEFAULT_AGENT_VERSION: &str = "3.4.0";

fn default_agent_version() -> String {
    DEFAULT_AGENT_VERSION.into()
}

/// Checks an `--agent-version`: `2.9.N` or `3.N.N`.
pub fn check_agent_version(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric && (v.starts_with("2.9.") || parts[0] == "3") {
        Ok(())
    } else {
        Err(format!(
            "agent version {v:?} is not one the sandbox imitates: give 2.9.x (Juju 2.9) or 3.x.y (the default is {DEFAULT_AGENT_VERSION})"
        ))
    }
}

impl Model {
    /// A fresh model whose network names derive from `home` (so leaks can be swept by name).
    pub fn new(home: &Path) -> Model {
        use sha2::Digest;
        let h = sha2::Sha256::digest(home.to_string_lossy().as_bytes());
        let x = random_hex(16);
        let uuid = format!(
            "{}-{}-4{}-8{}-{}",
            &x[0..8],
            &x[8..12],
            &x[13..16],
            &x[17..20],
            &x[20..32]
        );
        let mut config = BTreeMap::new();
        config.insert("update-status-hook-interval".into(), "5m".into());
        config.insert("automatically-retry-hooks".into(), "true".into());
        Model {
            name: "default".into(),
            uuid,
            prefix: format!("sbx{}", hex8(&h[0..2])),
            subnet: [10, 200 + h[2] % 50, h[3]],
            config,
            apps: BTreeMap::new(),
            units: BTreeMap::new(),
            machines: BTreeMap::new(),
            relations: BTreeMap::new(),
            tasks: BTreeMap::new(),
            next_machine: 0,
            next_relation: 0,
            next_task: 1,
            secrets: Default::default(),
            agent_version: default_agent_version(),
            storage: Default::default(),
        }
    }

    /// Whether the model imitates Juju 2.9 (no secrets, 2.9's status and verbs).
    pub fn is_juju29(&self) -> bool {
        self.agent_version.starts_with("2.")
    }

    /// Loads the model from `path`.
    pub fn load(path: &Path) -> anyhow::Result<Option<Model>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!(
                    "{} is corrupt: remove it or run `sandbox destroy`",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Saves the model atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        super::private::write(&tmp, &serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Alive units of an application, sorted by number.
    pub fn units_of(&self, app: &str) -> Vec<String> {
        let mut v: Vec<&Unit> = self.units.values().filter(|u| u.app == app).collect();
        v.sort_by_key(|u| unit_number(&u.name));
        v.into_iter().map(|u| u.name.clone()).collect()
    }

    /// The relation between two ends, if any.
    pub fn find_relation(&self, a: &RelEnd, b: &RelEnd) -> Option<i64> {
        self.relations
            .values()
            .find(|r| {
                (r.ends.len() == 2)
                    && ((r.ends[0] == *a && r.ends[1] == *b)
                        || (r.ends[0] == *b && r.ends[1] == *a))
            })
            .map(|r| r.id)
    }
}

/// The number of a unit name (`etcd/3` → 3).
pub fn unit_number(unit: &str) -> u32 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The application of a unit name.
pub fn app_of(unit: &str) -> &str {
    unit.split('/').next().unwrap_or(unit)
}

/// `n` random bytes from the kernel, in hex.
pub fn random_hex(n: usize) -> String {
    let mut r = vec![0u8; n];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut r).expect("random bytes from /dev/urandom");
    hex8(&r)
}

fn hex8(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Directory name of a unit's agent (`unit-etcd-0`).
pub fn unit_tag(unit: &str) -> String {
    format!("unit-{}", unit.replace('/', "-"))
}

#[cfg(test)]
mod tests {
    use super::{check_agent_version, MachineState, TaskStatus};

    /// The states read and write the strings model.json held when they were strings.
    #[test]
    fn states_keep_their_model_json_strings() {
        for (s, name) in [
            (MachineState::Pending, "pending"),
            (MachineState::Started, "started"),
            (MachineState::Down, "down"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), name);
            assert_eq!(s.as_str(), name);
            assert_eq!(
                serde_json::from_value::<MachineState>(name.into()).unwrap(),
                s
            );
        }
        for (s, name) in [
            (TaskStatus::Pending, "pending"),
            (TaskStatus::Running, "running"),
            (TaskStatus::Completed, "completed"),
            (TaskStatus::Failed, "failed"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<TaskStatus>(name.into()).unwrap(),
                s
            );
        }
    }

    #[test]
    fn agent_versions_the_sandbox_imitates() {
        for ok in ["2.9.44", "3.4.0", "3.6.28"] {
            assert_eq!(check_agent_version(ok), Ok(()), "{ok}");
        }
        for bad in ["2.8.1", "4.0.0", "3.4", "2.9.x", ""] {
            assert!(check_agent_version(bad).is_err(), "{bad}");
        }
    }
}
