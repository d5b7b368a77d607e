/*!
The etcd boundary: the [`Etcd`] trait the rest of the charm sees, with the member list and
status types and the errors sorted by what the caller should do. [`client::EtcdApi`] is the
real client: the etcd v3 API, through the `etcd-client` crate on a tokio current-thread runtime
(driven, for a look ahead, by a thread of its own until the status is taken).

Every call is bounded: a connect timeout, a request timeout and an outer deadline per endpoint,
so a dead member never hangs a hook. Calls that need a voting member try the given endpoints in
order and move on when one is unreachable or a learner. An `https://` endpoint is reached with
the cluster's CA and the client certificate the charm wrote ([`crate::paths::TLS_CA`] and
beside it).
*/

pub mod client;

use crate::clock::{Clock, SystemClock};
use std::time::Duration;

/// One member as the member list reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// Name; empty until the member has started and published it.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs; empty until started.
    pub client_urls: Vec<String>,
    /// Raft learner (non-voting).
    pub is_learner: bool,
}

impl Member {
    /// True once the member has started and published its name and client URLs.
    pub fn started(&self) -> bool {
        !self.name.is_empty() && !self.client_urls.is_empty()
    }
}

/// Where a status round asks: the first client URL of every started member but `local`.
pub fn round_endpoints(members: &[Member], local: Option<u64>) -> Vec<String> {
    let others = members
        .iter()
        .filter(|m| m.started() && Some(m.id) != local);
    others
        .filter_map(|m| m.client_urls.first().cloned())
        .collect()
}

/// What one member says about itself (`Maintenance.Status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberStatus {
    /// The answering member's id.
    pub member_id: u64,
    /// The Raft leader's id (0: none).
    pub leader: u64,
    /// Raft term.
    pub raft_term: u64,
    /// Raft index.
    pub raft_index: u64,
    /// Backend database size in bytes.
    pub db_size: i64,
    /// Bytes of the backend actually in use (`dbSizeInUse`); the rest is free pages a
    /// defragmentation gives back.
    pub db_size_in_use: i64,
    /// etcd version.
    pub version: String,
    /// True if the member is a learner.
    pub is_learner: bool,
    /// Errors the member reports (e.g. alarms).
    pub errors: Vec<String>,
}

/// What a role may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The `root` role (everything, auth and maintenance included).
    Root,
    /// Read-write on the whole keyspace.
    All,
    /// Read-write on the keys starting with this prefix.
    Prefix(String),
    /// Nothing (the consumer asked for a prefix that cannot be granted).
    Nothing,
}

impl Grant {
    /// As recorded in leader data.
    pub fn record(&self) -> String {
        match self {
            Grant::Root => "root".into(),
            Grant::All => "*".into(),
            Grant::Prefix(p) => format!("prefix:{p}"),
            Grant::Nothing => "none".into(),
        }
    }

    /// Parses a record; `None` when malformed.
    pub fn parse(record: &str) -> Option<Grant> {
        Some(match record {
            "root" => Grant::Root,
            "*" => Grant::All,
            "none" => Grant::Nothing,
            _ => Grant::Prefix(record.strip_prefix("prefix:")?.to_string()),
        })
    }
}

/// Failures of etcd calls, sorted by what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered.
    #[error("no etcd member answered {op} at {endpoints}: {detail}")]
    Unreachable {
        /// The operation.
        op: String,
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        detail: String,
    },
    /// etcd refused for a reason that passes (unhealthy cluster for 5 s after a member start,
    /// learner not in sync, a learner already present): retry later.
    #[error("etcd refused {op} for now: {message}")]
    NotYet {
        /// The operation.
        op: String,
        /// etcd's message.
        message: String,
    },
    /// The member is not in the cluster (any more).
    #[error("member {0:x} is not in the cluster")]
    MemberNotFound(u64),
    /// Any other failure.
    #[error("etcd {op} failed: {message}")]
    Failed {
        /// The operation.
        op: String,
        /// etcd's message.
        message: String,
    },
}

/// What the charm asks of etcd.
pub trait Etcd {
    /// Begins asking the status of the member at `endpoint`, and what a reconcile pass asks
    /// after it of a voting member (its member list, then a status round of the others), so
    /// that those calls, made next and in that order, take the answers (a client may ask only
    /// when they are made).
    fn begin_status(&self, endpoint: &str) {
        let _ = endpoint;
    }
    /// Status of the member at one client endpoint.
    fn status(&self, endpoint: &str) -> Result<MemberStatus, EtcdError>;
    /// The status of the member at each of `endpoints`, in order, asked all at once (one round,
    /// each bounded like [`Etcd::status`]).
    fn statuses(&self, endpoints: &[String]) -> Vec<Result<MemberStatus, EtcdError>> {
        endpoints.iter().map(|ep| self.status(ep)).collect()
    }
    /// Member list from the first voting member of `endpoints` that answers.
    fn member_list(&self, endpoints: &[String]) -> Result<Vec<Member>, EtcdError>;
    /// Adds a learner with this peer URL; returns its id and the new member list.
    fn member_add_learner(
        &self,
        endpoints: &[String],
        peer_url: &str,
    ) -> Result<(u64, Vec<Member>), EtcdError>;
    /// Promotes a learner to a voting member.
    fn member_promote(&self, endpoints: &[String], id: u64) -> Result<(), EtcdError>;
    /// Removes a member.
    fn member_remove(&self, endpoints: &[String], id: u64) -> Result<(), EtcdError>;
    /// Replaces a member's peer URLs.
    fn member_update(
        &self,
        endpoints: &[String],
        id: u64,
        peer_urls: &[String],
    ) -> Result<(), EtcdError>;
    /// Moves Raft leadership to `target`; `leader_endpoint` must be the current leader's.
    fn move_leader(&self, leader_endpoint: &str, target: u64) -> Result<(), EtcdError>;
    /// Active alarms as (member id, alarm name).
    fn alarms(&self, endpoints: &[String]) -> Result<Vec<(u64, String)>, EtcdError>;
    /// The current revision of the key-value store, from the first voting member that answers.
    fn revision(&self, endpoints: &[String]) -> Result<i64, EtcdError> {
        let _ = endpoints;
        Err(unsupported("revision"))
    }
    /// Compacts the key-value history up to `revision`; with `physical`, returns only once the
    /// compacted entries are removed from the backend.
    fn compact(
        &self,
        endpoints: &[String],
        revision: i64,
        physical: bool,
    ) -> Result<(), EtcdError> {
        let _ = (endpoints, revision, physical);
        Err(unsupported("compact"))
    }
    /// Defragments the backend of the member at one client endpoint (that member only; it
    /// serves nothing while it runs).
    fn defragment(&self, endpoint: &str) -> Result<(), EtcdError> {
        let _ = endpoint;
        Err(unsupported("defragment"))
    }
    /// Disarms one alarm (`NOSPACE` or `CORRUPT`) of one member.
    fn alarm_disarm(
        &self,
        endpoints: &[String],
        member: u64,
        alarm: &str,
    ) -> Result<(), EtcdError> {
        let _ = (endpoints, member, alarm);
        Err(unsupported("alarm disarm"))
    }
    /// Makes user and role `name` if missing (a client certificate with CN = `name`
    /// authenticates the user, and `password` if given, else it has none), revokes `old` from
    /// the role and grants it `grant` (`root` gets the `root` role itself).
    fn auth_set_user(
        &self,
        endpoints: &[String],
        name: &str,
        grant: &Grant,
        old: Option<&Grant>,
        password: &Option<String>,
    ) -> Result<(), EtcdError> {
        let _ = (endpoints, name, grant, old, password);
        Err(unsupported("auth user"))
    }
    /// Deletes user and role `name` (gone already is fine).
    fn auth_delete_user(&self, endpoints: &[String], name: &str) -> Result<(), EtcdError> {
        let _ = (endpoints, name);
        Err(unsupported("auth user delete"))
    }
    /// `auth enable` (`true`) or `auth disable` (`false`).
    fn auth_switch(&self, endpoints: &[String], on: bool) -> Result<(), EtcdError> {
        let _ = (endpoints, on);
        Err(unsupported("auth enable"))
    }
    /// Streams a snapshot of the member at one client endpoint into `dest` (created or
    /// truncated): the backend database followed by its sha256, as `etcdctl snapshot save`
    /// writes it. Returns the bytes written.
    fn snapshot(&self, endpoint: &str, dest: &std::path::Path) -> Result<u64, EtcdError> {
        let _ = (endpoint, dest);
        Err(unsupported("snapshot"))
    }
}

/// What a client without a given call answers.
fn unsupported(op: &str) -> EtcdError {
    EtcdError::Failed {
        op: op.into(),
        message: "not supported by this client".into(),
    }
}

/// Retries `f` while it returns [`EtcdError::NotYet`], until `budget` has passed.
pub fn retry_not_yet<T>(
    budget: Duration,
    pause: Duration,
    f: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    retry_not_yet_on(&SystemClock, budget, pause, f)
}

/// [`retry_not_yet`] on `clock`.
pub fn retry_not_yet_on<T>(
    clock: &dyn Clock,
    budget: Duration,
    pause: Duration,
    mut f: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    let deadline = clock.now() + budget;
    loop {
        match f() {
            Err(EtcdError::NotYet { .. }) if clock.now() + pause < deadline => clock.sleep(pause),
            other => return other,
        }
    }
}
