/*!
What the pure core decides: [`Effect`]s in order and the status to show ([`Plan`]). Applied by
[`crate::reconcile::apply`].
*/

use crate::core::status::{Chore, Status};
use crate::etcd::Grant;
use crate::juju::Settings;

/// One thing to do, in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Install etcd (resource, else packages) and report its version.
    Install,
    /// `application-version-set`.
    SetVersion(String),
    /// Write etcd's config (and unit, wrapper, env) where they differ; never restarts etcd.
    Render(String),
    /// Restart etcd with this config (this unit's turn, or nothing to keep up): mark the
    /// restart, write the files, restart, wait a bounded time for the member to be healthy.
    Restart(String),
    /// Enable and start etcd without blocking, then wait a bounded time for it to answer.
    Start,
    /// Leader: make the client and peer CAs and the consumers' client certificate; the
    /// certificates go to leader data, the keys to application secrets (Juju 2.9: leader data).
    CreateCa,
    /// Leader (Juju 3): move the keys an older charm left in leader data into secrets.
    MoveKeysToSecrets,
    /// Leader, CA rotation phase 1 → 2: the new CAs sign, the old ones stay trusted
    /// ([`crate::core::ca_rotation`]); their keys and secrets swap too.
    CaRotationSwap,
    /// Leader, CA rotation done: the old CAs' keys and secret are removed, the rotation's
    /// leader data cleared.
    CaRotationFinish,
    /// Make this unit's member and client keys for these names (they stay on the machine) and
    /// publish certificate requests for them in its peer data.
    TlsRequest {
        /// The names the member certificate is to be valid for.
        sans: Vec<String>,
    },
    /// Leader: sign `unit`'s published requests, publish the certificates in leader data.
    Issue {
        /// The unit.
        unit: String,
    },
    /// Write this member's TLS files (the pending keys, the certificates the leader issued for
    /// them, both CAs), then record what they came from.
    TlsFiles {
        /// The names the member certificate is valid for.
        sans: Vec<String>,
    },
    /// Write the CA bundle clients verify the server with (this text, made by
    /// [`crate::core::certificates::bundle`]).
    TrustBundle(String),
    /// Make a CSR for the member key and these names for the `certificates` relation (kept on
    /// the machine; published on the next pass).
    ExternalRequest {
        /// The names it asks for.
        sans: Vec<String>,
    },
    /// Write the client port's server certificate file (etcd reads it per handshake).
    ServeCert(String),
    /// Leader: make `app`'s own client key and certificate (CN = `app`), the certificate to
    /// leader data, the key to a secret (Juju 2.9: leader data); when it has them, renew the
    /// certificate for the same key.
    IssueConsumer {
        /// The application related on `db`.
        app: String,
    },
    /// Leader: renew the consumers' shared client certificate (no common name) for its key.
    RenewSharedClient,
    /// Leader: forget `app`'s credentials (its last `db` relation is gone): its leader data and
    /// its secret are removed.
    RetireConsumer {
        /// The application.
        app: String,
    },
    /// Leader: one change to etcd's users, roles or auth switch ([`crate::core::auth`]), recorded in leader data once
    /// made.
    Auth(AuthChange),
    /// Leader (Juju 3): let a `db`/`proxy` relation's application read a secret.
    GrantSecret {
        /// The secret's URI.
        id: String,
        /// The relation.
        relation: String,
    },
    /// Record the member id the data dir belongs to.
    RecordMemberId(u64),
    /// Move a removed member's data dir aside so the unit can rejoin.
    Wipe,
    /// Put the (empty) data dir on the `data` store's volume ([`crate::core::storage`]).
    UseVolume,
    /// Give the data dir's tree to this machine's etcd user where another uid or gid owns it
    /// (a volume written on another machine, rejoined: [`crate::core::storage`]).
    OwnDataDir,
    /// `open-port` for these ports (clients, metrics); `close-port` for any other this unit
    /// opened (a port option changed).
    OpenPorts(Vec<u16>),
    /// `relation-set` on the peer relation (this unit's data).
    PeerSet(String, Settings),
    /// `relation-set` on a `db`/`proxy` relation.
    RelationSet(String, Settings),
    /// `leader-set`.
    LeaderSet(Settings),
    /// Leader: add the unit's member as a learner, publish its `joining-*` data.
    Admit {
        /// The unit.
        unit: String,
        /// Its peer URL.
        peer_url: String,
    },
    /// Leader: promote the joining learner, then clear `joining-*`.
    Promote {
        /// The unit.
        unit: String,
        /// Its member id.
        id: u64,
    },
    /// Leader: remove a member whose unit is gone.
    Remove {
        /// Member name (or peer URL when unnamed), for logs.
        name: String,
        /// Member id.
        id: u64,
    },
    /// Leader: let `unit` restart etcd (`restart-granted`) once enough other voting members
    /// are healthy to keep a quorum while it does.
    GrantRestart {
        /// The unit.
        unit: String,
    },
    /// Leader: point a member at the peer URL its unit now publishes (port or address change).
    UpdatePeerUrl {
        /// Member name.
        name: String,
        /// Member id.
        id: u64,
        /// The new peer URL.
        peer_url: String,
    },
    /// Departing unit: hand Raft leadership to `transfer_to` if set, then remove itself.
    Leave {
        /// This member's id.
        id: u64,
        /// Where to move Raft leadership first.
        transfer_to: Option<u64>,
    },
    /// Leader (`update-status`): one step of automatic maintenance
    /// ([`crate::core::maintenance`]); the status says so while it runs, and a step that fails
    /// stops the pass (the record planned after it is not written).
    Maintain(Chore),
    /// Remember that this unit is leaving.
    MarkDeparting,
    /// Stop and disable etcd.
    Stop,
    /// Remove the charm's files from the machine.
    Cleanup,
}

impl Effect {
    /// Applying it signs with the CA keys or derives a password from them, so the leader reads
    /// their secret first (every other pass spares the `secret-get`). Exhaustive on purpose: a
    /// new effect must say.
    pub fn needs_ca_keys(&self) -> bool {
        match self {
            Effect::MoveKeysToSecrets
            | Effect::CaRotationSwap
            | Effect::Issue { .. }
            | Effect::IssueConsumer { .. }
            | Effect::RenewSharedClient
            | Effect::Auth(AuthChange::SetUser { .. }) => true,
            Effect::Install
            | Effect::SetVersion(_)
            | Effect::Render(_)
            | Effect::Restart(_)
            | Effect::Start
            | Effect::CreateCa
            | Effect::CaRotationFinish
            | Effect::TlsRequest { .. }
            | Effect::TlsFiles { .. }
            | Effect::TrustBundle(_)
            | Effect::ExternalRequest { .. }
            | Effect::ServeCert(_)
            | Effect::RetireConsumer { .. }
            | Effect::Auth(_)
            | Effect::GrantSecret { .. }
            | Effect::RecordMemberId(_)
            | Effect::Wipe
            | Effect::UseVolume
            | Effect::OwnDataDir
            | Effect::OpenPorts(_)
            | Effect::PeerSet(..)
            | Effect::RelationSet(..)
            | Effect::LeaderSet(_)
            | Effect::Admit { .. }
            | Effect::Promote { .. }
            | Effect::Remove { .. }
            | Effect::GrantRestart { .. }
            | Effect::UpdatePeerUrl { .. }
            | Effect::Leave { .. }
            | Effect::Maintain(_)
            | Effect::MarkDeparting
            | Effect::Stop
            | Effect::Cleanup => false,
        }
    }
}

/// What one pass does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Effects, applied in order.
    pub effects: Vec<Effect>,
    /// The status to set at the end.
    pub status: Status,
    /// Observe and plan again after applying (the world changed in a way worth a look).
    pub again: bool,
}

impl Plan {
    /// A plan with no effects that shows `status`.
    pub fn only(status: Status) -> Plan {
        Plan {
            effects: Vec::new(),
            status,
            again: false,
        }
    }
}

/// One change to etcd's auth state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthChange {
    /// Make user and role `name` (no password: a certificate's CN authenticates it) if they
    /// are missing, give the role `grant` instead of `old`, then record it.
    SetUser {
        /// User and role name.
        name: String,
        /// What the role may touch.
        grant: Grant,
        /// What it was given before, if anything.
        old: Option<Grant>,
    },
    /// Delete user and role `name`, then forget the record.
    DeleteUser {
        /// User and role name.
        name: String,
    },
    /// `auth enable`, then record it.
    Enable,
    /// `auth disable`, then record it.
    Disable,
}
