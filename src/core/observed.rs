/*!
The facts one reconcile pass decides on, as plain data: leader data, the peer relation, client
relations, this machine's side and etcd's own view. [`crate::reconcile::observe`] reads them;
the pure core only looks.
*/

use crate::core::config::{CharmConfig, ConfigError};
use crate::core::render::{self, url};
use crate::core::version::Refusal;
use crate::etcd::{Member, MemberStatus};
use crate::juju::context::{member_name, Hook};
use crate::juju::Settings;
/// Leader data keys (`leader-set`), written by the Juju leader only.
pub mod keys {
    /// Random `initial-cluster-token` of the cluster, set once at bootstrap.
    pub const TOKEN: &str = "cluster-token";
    /// The unit that bootstrapped (or is bootstrapping) the first member.
    pub const BOOTSTRAP_UNIT: &str = "bootstrap-unit";
    /// `name=peerURL,...` of the started voting members, sorted (the proxy `cluster` value).
    pub const CLUSTER: &str = "cluster";
    /// Client URLs of the started voting members, sorted, comma-separated.
    pub const ENDPOINTS: &str = "endpoints";
    /// etcd version of the cluster.
    pub const VERSION: &str = "etcd-version";
    /// The unit currently admitted as a learner (one at a time).
    pub const JOINING_UNIT: &str = "joining-unit";
    /// Its member id (hex).
    pub const JOINING_ID: &str = "joining-member-id";
    /// The `initial-cluster` it must start with (`initial-cluster-state: existing`).
    pub const JOINING_CLUSTER: &str = "joining-initial-cluster";
    /// The one unit allowed to restart etcd now (rolling restart); absent when none.
    pub const RESTART_GRANTED: &str = "restart-granted";
    /// `true` or `false`: whether the cluster serves TLS, set with the token at bootstrap and
    /// again once a switch of the `tls` option has reached every member.
    pub const TLS: &str = "tls";
    /// `<unit> <peer URL>`: the member the leader last moved to a new scheme in a TLS switch
    /// (also wakes that unit up to restart on it); cleared once the switch is recorded.
    pub const TLS_SWITCHING: &str = "tls-switching";
    /// `true` or `false`: what the `tls` option read when a refresh found it differing from the
    /// transport in force; while it reads that, the cluster keeps its transport
    /// ([`crate::core::transport`]). Cleared once the option reads otherwise.
    pub const TLS_KEPT: &str = "tls-kept";
    /// The client CA's certificate (PEM), made by the leader when TLS is on: it signs the
    /// members' client-port certificates, the units' and the consumers' client certificates.
    pub const TLS_CA: &str = "tls-ca";
    /// The peer CA's certificate (PEM): it signs only members' peer certificates, so no
    /// consumer certificate is accepted on the peer port. Absent on a cluster whose CA was
    /// made by an older charm (its peers keep trusting [`TLS_CA`]).
    pub const TLS_PEER_CA: &str = "tls-peer-ca";
    /// The consumers' client certificate (PEM), given on `db` and `proxy`.
    pub const TLS_CLIENT_CERT: &str = "tls-client-cert";
    /// Juju 3: the application secret holding the CA keys ([`secret_keys`]); only the leader
    /// reads it.
    pub const TLS_CA_SECRET: &str = "tls-ca-secret";
    /// Juju 3: the application secret holding the consumers' client key, granted to each
    /// `db`/`proxy` relation.
    pub const TLS_CLIENT_SECRET: &str = "tls-client-secret";
    /// Juju 2.9 fallback (no secrets), and clusters from an older charm until the leader moves
    /// them to secrets: the client CA's private key (PEM).
    pub const TLS_CA_KEY: &str = "tls-ca-key";
    /// Juju 2.9 fallback: the peer CA's private key (PEM).
    pub const TLS_PEER_CA_KEY: &str = "tls-peer-ca-key";
    /// Juju 2.9 fallback: the consumers' client key (PEM).
    pub const TLS_CLIENT_KEY: &str = "tls-client-key";
    /// The certificates the leader issued to `unit` ([`issued_key`]): JSON of an
    /// [`super::Issued`].
    pub const TLS_ISSUED_PREFIX: &str = "tls-issued-";
    /// `consumer-cert-<app>`: the client certificate (PEM, CN = the application's name) the
    /// leader issued to one application related on `db` ([`consumer_key`]).
    pub const CONSUMER_CERT_PREFIX: &str = "consumer-cert-";
    /// `consumer-secret-<app>` (Juju 3): the application secret holding that certificate's
    /// key, granted to that application's relations only.
    pub const CONSUMER_SECRET_PREFIX: &str = "consumer-secret-";
    /// `consumer-key-<app>` (Juju 2.9 fallback): that certificate's key (PEM).
    pub const CONSUMER_KEY_PREFIX: &str = "consumer-key-";
    /// `consumer-password-<app>` (Juju 2.9 fallback): that application's etcd password (Juju 3:
    /// in its secret).
    pub const CONSUMER_PASSWORD_PREFIX: &str = "consumer-password-";
    /// Every leader-data key prefix of one consumer application's credentials.
    pub const CONSUMER_PREFIXES: [&str; 4] = [
        CONSUMER_CERT_PREFIX,
        CONSUMER_SECRET_PREFIX,
        CONSUMER_KEY_PREFIX,
        CONSUMER_PASSWORD_PREFIX,
    ];

    /// When the leader last defragmented each member, automatically or in a NOSPACE recovery:
    /// `name=<unix seconds>,…` ([`crate::core::maintenance`]).
    pub const DEFRAGMENTED: &str = "defragmented";
    /// While a NOSPACE recovery runs: when it began (its compaction), in Unix seconds.
    pub const NOSPACE_RECOVERY: &str = "nospace-recovery";

    /// `on` once the leader has enabled etcd's auth ([`crate::core::auth`]).
    pub const AUTH: &str = "etcd-auth";
    /// `auth-user-<name>`: the grant of the etcd user and role `name` the leader made
    /// ([`crate::etcd::Grant::record`]).
    pub const AUTH_USER_PREFIX: &str = "auth-user-";

    /// The leader data key `prefix` + `app` of one consumer's credentials.
    pub fn consumer_key(prefix: &str, app: &str) -> String {
        format!("{prefix}{app}")
    }

    /// The leader data key of the certificates issued to `unit` (`etcd/1` → `tls-issued-etcd-1`).
    pub fn issued_key(unit: &str) -> String {
        format!("{TLS_ISSUED_PREFIX}{}", unit.replace('/', "-"))
    }
}

/// Keys of the charm's Juju secrets (Juju requires `[a-z](-?[a-z0-9]){2,}`).
pub mod secret_keys {
    /// The client CA's private key.
    pub const CA_KEY: &str = "ca-key";
    /// The peer CA's private key.
    pub const PEER_CA_KEY: &str = "peer-ca-key";
    /// The consumers' client key.
    pub const CLIENT_KEY: &str = "client-key";
    /// A consumer's etcd password.
    pub const PASSWORD: &str = "password";
    /// In the CA secret, after a CA rotation: the key consumers' passwords are derived from.
    pub const PASSWORD_KEY: &str = "password-key";
}

/// Peer relation unit data keys (each unit writes its own).
pub mod peer_keys {
    /// `http(s)://<address>:<management_port>`.
    pub const PEER_URL: &str = "peer-url";
    /// `http(s)://<address>:<port>`.
    pub const CLIENT_URL: &str = "client-url";
    /// The unit's address (compatible with the reactive etcd charm).
    pub const INGRESS: &str = "db-ingress-address";
    /// Member id (hex) this unit's etcd started as; absent while not started.
    pub const STARTED: &str = "started";
    /// Present while this unit's etcd must restart to apply new settings (a fingerprint of what
    /// it will run); removed once it has restarted and its member is healthy again, which tells
    /// the leader the next unit may go.
    pub const RESTART_REQUEST: &str = "restart-request";
    /// The etcd version this unit's member runs (kept while it does not answer): the leader
    /// publishes the lowest as the cluster's (`etcd-version` leader data).
    pub const VERSION: &str = "etcd-version";
    /// When the newest verified backup this unit took was taken (Unix time): the status warns
    /// when the newest of all is older than twice `backup_schedule`.
    pub const BACKUP_VERIFIED: &str = "backup-verified";
    /// The start (Unix time) of the backup schedule's period whose backup this unit took or is
    /// taking: another unit skips that period.
    pub const BACKUP_PERIOD: &str = "backup-period";
    /// A certificate signing request (PEM) for this member's key, valid for its names: the
    /// leader signs a client-port certificate (client CA) and a peer certificate (peer CA).
    pub const TLS_CSR: &str = "tls-csr";
    /// A certificate signing request (PEM) for this unit's own client key (the charm's and
    /// `etcdctl`'s identity).
    pub const TLS_CLIENT_CSR: &str = "tls-client-csr";
    /// The [`super::Issued::from`] of the certificates this unit's TLS files hold, once
    /// written: the leader enables auth only when every unit's are current.
    pub const TLS_FILES: &str = "tls-files";
    /// While a CA rotation runs: the digest of the CA set this unit's running etcd loaded
    /// ([`crate::core::ca_rotation`]).
    pub const CA_LOADED: &str = "ca-loaded";
}

/// What the leader issued to one unit, in leader data ([`keys::issued_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    /// [`Issued::fingerprint`] of the requests and CAs these were made from.
    pub from: String,
    /// The member's client-port certificate (PEM).
    pub server: String,
    /// The member's peer certificate (PEM).
    pub peer: String,
    /// The unit's client certificate (PEM).
    pub client: String,
}

impl Issued {
    /// Identifies what certificates are made from: both requests, both CAs and the unit's
    /// client identity (`CN=root`: certificates an older charm issued without it are issued
    /// again).
    pub fn fingerprint(csr: &str, client_csr: &str, ca: &str, peer_ca: &str) -> String {
        let identity = ["client-cn=root".to_string()];
        render::tls_record(csr, client_csr, &format!("{ca}{peer_ca}"), &identity)
            .trim()
            .to_string()
    }

    /// Parses leader data's value; `None` when malformed.
    pub fn parse(value: &str) -> Option<Issued> {
        serde_json::from_str(value).ok()
    }
}

/// A unit's pending certificate requests, as published in its peer data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsRequest {
    /// The member CSR.
    pub csr: String,
    /// The client CSR.
    pub client_csr: String,
}

impl TlsRequest {
    /// The request in peer data, when both parts are there.
    pub fn from_data(data: &Settings) -> Option<TlsRequest> {
        let get = |k| data.get(k).filter(|v| !v.is_empty()).cloned();
        Some(TlsRequest {
            csr: get(peer_keys::TLS_CSR)?,
            client_csr: get(peer_keys::TLS_CLIENT_CSR)?,
        })
    }

    /// What a pending request is made of (its requests and names), as recorded on the machine
    /// with its keys.
    pub fn record(&self, sans: &[String]) -> String {
        render::tls_record(&self.csr, &self.client_csr, "", sans)
    }
}

/// The record of a member's TLS files written from `issued`: the CAs, what the certificates
/// were issued from and the certificates themselves (a renewal changes only them), and the
/// names.
pub fn tls_files_record(ca: &str, peer_ca: &str, issued: &Issued, sans: &[String]) -> String {
    let i = issued;
    let issued = format!("{}\n{}{}{}", i.from, i.server, i.peer, i.client);
    render::tls_record(ca, peer_ca, &issued, sans)
}

/// The CA private keys, as the leader read them (its secret, or the 2.9 fallback's leader
/// data). Debug never shows them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CaKeys {
    /// The client CA's key.
    pub ca_key: String,
    /// The peer CA's key; `None` on a cluster from an older charm (one CA for both ports).
    pub peer_ca_key: Option<String>,
    /// The key consumers' passwords are derived from, once the CA that first derived them was
    /// rotated away ([`crate::core::ca_rotation`]); `None`: [`CaKeys::ca_key`].
    pub password_key: Option<String>,
}

impl std::fmt::Debug for CaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaKeys(<redacted>)")
    }
}

/// What `goal-state` says of this application's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Not asked: it is asked, and the pass planned again, only for a plan that removes a
    /// member ([`crate::core::effect::Effect::Remove`]).
    Unread,
    /// The tool failed: any started voter may still be a unit's.
    Unknown,
    /// The units that are staying (not `dying`), those not yet in the peer relation included.
    Staying(Vec<String>),
}

/// Where the keys of the charm's TLS live, as this pass found them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSecrets {
    /// Juju has secrets (3.x): keys go there, else to leader data (the 2.9 fallback).
    pub available: bool,
    /// Leader: the CA keys, when read and readable.
    pub ca_keys: Option<CaKeys>,
    /// Leader: leader data names the CA keys' secret and this pass has not read it yet: it
    /// is read only when the plan has an effect that needs the keys
    /// ([`crate::core::effect::Effect::needs_ca_keys`]), then the pass is planned again.
    pub ca_keys_unread: bool,
    /// The consumers' client key, when readable (read only with client relations).
    pub client_key: Option<Redacted>,
    /// The keys of the `db` consumers' own certificates, by application, that this pass read
    /// (only those whose credentials a relation does not carry yet).
    pub consumer_keys: std::collections::BTreeMap<String, Redacted>,
    /// Leader: leader data names a CA secret that does not exist (made in a hook that then
    /// failed): the CAs are made again.
    pub ca_lost: bool,
}

impl TlsSecrets {
    /// Leader: the CA keys are at hand (read, or in a secret not read yet).
    pub fn has_ca_keys(&self) -> bool {
        self.ca_keys.is_some() || self.ca_keys_unread
    }
}

/// A private key kept out of Debug output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Is this unit the Juju leader?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// `is-leader` says yes.
    Leader,
    /// `is-leader` says no.
    Follower,
    /// The leadership tools are missing (Juju < 1.23.2).
    Unsupported,
}

/// A unit that is joining, as the leader published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joining {
    /// The unit, e.g. `etcd/3`.
    pub unit: String,
    /// Its learner member id.
    pub member_id: u64,
    /// Its `initial-cluster`.
    pub initial_cluster: String,
}

/// Leader data, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderData {
    /// All keys as read (to diff before writing).
    pub raw: Settings,
    /// The unit joining now, if any.
    pub joining: Option<Joining>,
    /// The unit allowed to restart etcd now, if any.
    pub restart_granted: Option<String>,
}

impl LeaderData {
    /// Parses leader settings; a malformed joining entry is ignored.
    pub fn parse(raw: Settings) -> LeaderData {
        let joining = (|| {
            Some(Joining {
                unit: raw.get(keys::JOINING_UNIT)?.clone(),
                member_id: u64::from_str_radix(raw.get(keys::JOINING_ID)?, 16).ok()?,
                initial_cluster: raw.get(keys::JOINING_CLUSTER)?.clone(),
            })
        })();
        let restart_granted = raw
            .get(keys::RESTART_GRANTED)
            .filter(|u| !u.is_empty())
            .cloned();
        LeaderData {
            raw,
            joining,
            restart_granted,
        }
    }

    /// One key, `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Another unit on the peer relation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// Unit name, e.g. `etcd/1`.
    pub unit: String,
    /// Its member name, e.g. `etcd1`.
    pub name: String,
    /// Its peer URL, once published and well-formed.
    pub peer_url: Option<String>,
    /// Its client URL, once published and well-formed.
    pub client_url: Option<String>,
    /// The member id it announced as started.
    pub started: Option<u64>,
    /// Its pending restart request (see [`peer_keys::RESTART_REQUEST`]).
    pub restart_request: Option<String>,
    /// The etcd version its member runs, as it published it.
    pub version: Option<String>,
    /// Its certificate requests, if published.
    pub tls_request: Option<TlsRequest>,
    /// When the newest verified backup it took was taken ([`peer_keys::BACKUP_VERIFIED`]).
    pub backup_verified: Option<u64>,
    /// What its TLS files were written from ([`peer_keys::TLS_FILES`]).
    pub tls_files: Option<String>,
    /// The CA set its running etcd loaded ([`peer_keys::CA_LOADED`]).
    pub ca_loaded: Option<String>,
    /// Its external-CA state (peer data `tls-external`).
    pub ext_tls: Option<String>,
}

/// A `db` or `proxy` relation and what this unit has published on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientRelation {
    /// Relation id, e.g. `db:4`.
    pub id: String,
    /// `db` or `proxy`.
    pub endpoint: String,
    /// The remote application, once one of its units has joined.
    pub app: Option<String>,
    /// The key prefix its application asks to be confined to (`prefix` in its application
    /// data), as given.
    pub prefix: Option<String>,
    /// This unit's current data on it.
    pub published: Settings,
}

/// The `cos-agent` relation (limit 1): its id, this unit's data on it, and the model it is in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CosAgent {
    /// Relation id, e.g. `cos-agent:9`.
    pub relation: String,
    /// This unit's current data on it.
    pub published: Settings,
    /// The model's name.
    pub model: String,
    /// The model's UUID.
    pub model_uuid: String,
}

/// This machine's side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Local {
    /// Installed etcd version; `None` when not installed.
    pub version: Option<String>,
    /// The real `etcdctl` the wrapper runs.
    pub etcdctl: String,
    /// The unit's address on the `cluster` binding.
    pub address: Option<String>,
    /// The data dir holds a member.
    pub has_data: bool,
    /// The member id recorded for the data dir.
    pub member_id: Option<u64>,
    /// etcd runs: the local member answers, or systemd says it is active (or activating).
    pub service_active: bool,
    /// The rendered etcd config, if any: what etcd runs (a change that needs a restart is
    /// written only when the unit restarts).
    pub rendered_config: Option<String>,
    /// The systemd unit file, as on disk.
    pub unit_file: Option<String>,
    /// The `etcdctl` environment file, as on disk.
    pub etcdctl_env: Option<String>,
    /// The `etcdctl` wrapper, as on disk.
    pub etcdctl_wrapper: Option<String>,
    /// A restart was begun (new files written) and the hook died before etcd was restarted.
    pub restart_pending: bool,
    /// The local member's own status, when it answers.
    pub status: Option<MemberStatus>,
    /// The machine's hostname (a name in this member's certificate).
    pub hostname: Option<String>,
    /// What this member's TLS files were made from ([`render::tls_record`]); `None` when they
    /// are not all there.
    pub tls_record: Option<String>,
    /// The record of this unit's pending keys and requests ([`TlsRequest::record`]), when the
    /// keys are on the machine.
    pub tls_request_record: Option<String>,
    /// Why the last `etcd` resource attached was not installed, while that stands.
    pub refused_resource: Option<Refusal>,
    /// The `data` store ([`crate::core::storage`]).
    pub volume: Volume,
}

/// The `data` store's volume as this machine shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Volume {
    /// Juju has mounted it at [`crate::paths::VOLUME`].
    pub mounted: bool,
    /// The data dir is a link to the volume's.
    pub in_use: bool,
    /// The member its data dir belongs to, as recorded on the volume.
    pub owner: Option<VolumeOwner>,
}

/// Whose member data a volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeOwner {
    /// The member id.
    pub member_id: u64,
    /// The unit that ran it, e.g. `etcd/1`.
    pub unit: String,
    /// The cluster listed this member alone when last seen: the volume holds the whole cluster.
    pub alone: bool,
}

impl VolumeOwner {
    /// Parses the volume's record, `<member id hex> <unit>[ alone]`.
    pub fn parse(record: &str) -> Option<VolumeOwner> {
        let mut fields = record.split_whitespace();
        let (id, unit) = (fields.next()?, fields.next()?);
        Some(VolumeOwner {
            member_id: u64::from_str_radix(id, 16).ok()?,
            unit: unit.to_string(),
            alone: fields.next() == Some("alone"),
        })
    }

    /// The record written on the volume.
    pub fn record(&self) -> String {
        let alone = if self.alone { " alone" } else { "" };
        format!("{:x} {}{alone}\n", self.member_id, self.unit)
    }
}

/// What the status round found: each started member's own answer and the active alarms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterView {
    /// The statuses of the members that answered, the local one included.
    pub answers: Vec<MemberStatus>,
    /// Active alarms as (member id, alarm name, e.g. `NOSPACE`); member id 0: the cluster's.
    pub alarms: Vec<(u64, String)>,
}

impl ClusterView {
    /// The answer of member `id`, if it answered.
    pub fn answer(&self, id: u64) -> Option<&MemberStatus> {
        self.answers.iter().find(|s| s.member_id == id)
    }
}

/// What a pass knows of the `certificates` relation (an external CA: `core::certificates`)
/// and this unit's files for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalFacts {
    /// The relation id, unless there is none or it is being broken.
    pub relation: Option<String>,
    /// The provider's application name, when it is known.
    pub provider: Option<String>,
    /// The provider's `certificates` value as read.
    pub provided: Option<String>,
    /// Our unit databag's `certificate_signing_requests` as read.
    pub published: Option<String>,
    /// The CSR this unit made (PEM), from its machine.
    pub csr: Option<String>,
    /// The names it was made for (comma-separated).
    pub csr_names: Option<String>,
    /// The member key's public key (SubjectPublicKeyInfo DER), from its machine.
    pub public_key: Option<Vec<u8>>,
    /// The client port's server certificate file as it is.
    pub served: Option<String>,
    /// The CA bundle file as it is.
    pub bundle: Option<String>,
}

/// Everything one reconcile pass decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// This unit, e.g. `etcd/0`.
    pub unit: String,
    /// The hook being run.
    pub hook: Hook,
    /// This unit is leaving (peer departed hook for itself, or marked before).
    pub departing: bool,
    /// Juju leadership.
    pub leadership: Leadership,
    /// Validated config.
    pub config: Result<CharmConfig, ConfigError>,
    /// Leader data.
    pub leader_data: LeaderData,
    /// The peer relation id, once it exists.
    pub peer_relation: Option<String>,
    /// The other units in the peer relation, sorted by unit number. Not read (empty) on a
    /// follower whose member votes and knows its Raft leader: nothing it decides needs them.
    pub peers: Vec<Peer>,
    /// This unit's own peer relation data.
    pub own_peer_data: Settings,
    /// `db` and `proxy` relations.
    pub clients: Vec<ClientRelation>,
    /// The `cos-agent` relation, if any.
    pub cos_agent: Option<CosAgent>,
    /// This machine.
    pub local: Local,
    /// Client URLs to send membership calls to, voting members first.
    pub endpoints: Vec<String>,
    /// The member list from a voting member; `None` when none answered (or not asked).
    pub members: Option<Vec<Member>>,
    /// Every started member's status and the alarms, asked once the member list is known.
    pub cluster: ClusterView,
    /// A fresh random token, used only if this pass bootstraps.
    pub fresh_token: String,
    /// The charm's TLS keys: where they live, what this unit could read.
    pub secrets: TlsSecrets,
    /// The wall-clock time of this pass, in seconds since the Unix epoch.
    pub now: u64,
    /// The `certificates` relation and this unit's files for it.
    pub external: ExternalFacts,
    /// This application's units as `goal-state` lists them.
    pub goal: Goal,
}

/// When the newest verified backup a unit took was taken, as its peer data announces it.
pub fn backup_verified(data: &Settings) -> Option<u64> {
    data.get(peer_keys::BACKUP_VERIFIED)?.trim().parse().ok()
}

impl Observed {
    /// Age in seconds of the newest verified backup this unit and its peers announce (the peers
    /// are read at every hook while a backup schedule is set).
    pub fn backup_verified_age(&self) -> Option<u64> {
        let peers = self.peers.iter().filter_map(|p| p.backup_verified);
        let newest = peers.chain(backup_verified(&self.own_peer_data)).max()?;
        Some(self.now.saturating_sub(newest))
    }

    /// The facts of `unit` in `update-status` with nothing known yet: a follower with the
    /// default config but plain http in the peer relation `cluster:0`, no peers, no member, nothing on its
    /// machine. The planner's tests start from it.
    pub fn blank(unit: &str) -> Observed {
        Observed {
            unit: unit.to_string(),
            hook: Hook::Other("update-status".into()),
            departing: false,
            leadership: Leadership::Follower,
            config: Ok(CharmConfig::plain()),
            leader_data: LeaderData::default(),
            peer_relation: Some("cluster:0".into()),
            peers: Vec::new(),
            own_peer_data: Settings::new(),
            clients: Vec::new(),
            cos_agent: None,
            local: Local::default(),
            endpoints: Vec::new(),
            members: None,
            cluster: ClusterView::default(),
            fresh_token: String::new(),
            secrets: TlsSecrets::default(),
            now: 1_800_000_000,
            external: Default::default(),
            goal: Goal::Unread,
        }
    }

    /// The application's name (`etcd` for `etcd/0`), as commands suggested name it.
    pub fn app(&self) -> &str {
        self.unit.split('/').next().unwrap_or("")
    }

    /// `etcd0 (etcd/0)`: a member's name and its unit, the application being this unit's.
    pub fn label(&self, m: &Member) -> String {
        let app = self.app();
        let number = m
            .name
            .strip_prefix(app)
            .filter(|n| n.parse::<u64>().is_ok());
        match (m.name.as_str(), number) {
            ("", _) => m
                .peer_urls
                .first()
                .cloned()
                .unwrap_or_else(|| format!("{:x}", m.id)),
            (name, Some(n)) => format!("{name} ({app}/{n})"),
            (name, None) => name.to_string(),
        }
    }

    /// This unit's member name.
    pub fn name(&self) -> String {
        member_name(&self.unit)
    }

    /// The peer and client URLs this unit's etcd advertises: those of the config it runs while
    /// it runs (a changed port or address is announced once etcd has restarted with it), else
    /// those `cfg` asks for.
    pub fn advertised(&self, cfg: &CharmConfig, address: &str) -> (String, String) {
        let running = match self.local.service_active {
            true => self.local.rendered_config.as_deref(),
            false => None,
        };
        running
            .and_then(render::advertised_urls)
            .unwrap_or_else(|| {
                let url = |port| url(cfg.tls, address, port);
                (url(cfg.management_port), url(cfg.port))
            })
    }

    /// Whether the cluster serves TLS, once it was bootstrapped: the leader's record, else (an
    /// older charm's leader data) what runs: the listed peer URLs' scheme, else this member's.
    /// `None` before bootstrap (the `tls` option decides then).
    pub fn tls_in_force(&self) -> Option<bool> {
        if let Some(v) = self.leader_data.get(keys::TLS) {
            return Some(v == "true");
        }
        self.leader_data.get(keys::TOKEN)?;
        let listed = self.members.as_deref().filter(|m| !m.is_empty());
        let https = |u: &String| u.starts_with("https://");
        let runs = match listed {
            Some(m) => m.iter().flat_map(|m| &m.peer_urls).all(https),
            None => self
                .local
                .rendered_config
                .as_deref()
                .is_some_and(render::tls_of),
        };
        Some(runs)
    }

    /// This unit's member id: the one its running member reports, else the one recorded for
    /// its data dir. The one rule wherever the charm looks for its own member.
    pub fn member_id(&self) -> Option<u64> {
        let running = self.local.status.as_ref().map(|s| s.member_id);
        running.or(self.local.member_id)
    }

    /// This unit's member once it has started (data and a running service): what its peer
    /// data publishes as `started`, and what the leader counts it as owning.
    pub fn started_member(&self) -> Option<u64> {
        let started = self.local.has_data && self.local.service_active;
        self.member_id().filter(|_| started)
    }

    /// This unit's peer data holds a `restart-request` (the leader sees it asking).
    pub fn request_published(&self) -> bool {
        let request = self.own_peer_data.get(peer_keys::RESTART_REQUEST);
        request.is_some_and(|r| !r.is_empty())
    }

    /// This unit holds the restart turn for the request the leader saw: once it has confirmed
    /// (removed its request), a new restart asks again, even if the grant is not released yet.
    pub fn holds_restart_turn(&self) -> bool {
        self.leader_data.restart_granted.as_deref() == Some(self.unit.as_str())
            && self.request_published()
    }

    /// The local member answers, knows a Raft leader and is not a learner.
    pub fn healthy_voter(&self) -> bool {
        self.local
            .status
            .as_ref()
            .is_some_and(|s| !s.is_learner && s.leader != 0)
    }
}
