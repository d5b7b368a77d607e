/*!
Carries out a [`Plan`]: the effects in order, against Juju, etcd and the machine.

Membership calls retry inside the hook with bounded back-off while etcd says "not yet" (the
~5 s `unhealthy cluster` window after a member starts, a learner not in sync); when the budget
runs out the pass stops and the status says what it waits for. Only real failures (a hook tool
failing, a file that cannot be written, a departing unit that cannot leave without breaking
quorum) fail the hook.

A restart ([`Effect::Restart`]) marks itself in the charm's state before writing the files and
clears the mark once `systemctl restart` has returned, so a hook killed in between restarts etcd
on the next run. The leader grants a restart ([`Effect::GrantRestart`]) only after asking each
other voting member's status: enough of them must be healthy to keep a quorum.
*/

use super::set_status;
use crate::actions::defrag::{defrag_member, DefragStop, Sizes};
use crate::core::ca_rotation;
use crate::core::effect::{AuthChange, Effect, Plan};
use crate::core::membership::{initial_cluster, joining_keys, restart_keys};
use crate::core::observed::{
    keys, peer_keys, secret_keys, CaKeys, Issued, Joining, Observed, TlsRequest, VolumeOwner,
};
use crate::core::render;
use crate::core::status::{Chore, Status};
use crate::core::storage;
use crate::etcd::{retry_not_yet_on, Etcd, EtcdError, Member, MemberStatus};
use crate::juju::context::member_name;
use crate::juju::{Juju, JujuError, Level, SecretOwner, Settings};
use crate::machine::host::HostError;
use crate::machine::metrics;
use crate::machine::tls::{self, TlsError};
use crate::machine::{ext_tls, state, InstallError, Machine};
use crate::paths;
use std::time::Duration;

/// How long a start waits for the local member to answer.
const START_WAIT: Duration = Duration::from_secs(15);
/// Retry budgets for "not yet" answers.
const ADD_BUDGET: Duration = Duration::from_secs(25);
const PROMOTE_BUDGET: Duration = Duration::from_secs(30);
const REMOVE_BUDGET: Duration = Duration::from_secs(20);
const PAUSE: Duration = Duration::from_secs(1);
/// How long a departing leader tries to hand Raft leadership over.
const MOVE_LEADER_BUDGET: Duration = Duration::from_secs(10);
/// How long a restart may take for systemd to see etcd ready (it has rejoined a quorum); after
/// that systemd carries on and later hooks confirm.
const RESTART_WAIT: Duration = Duration::from_secs(30);
/// How long, after that, the restarted member has to answer with a Raft leader.
const HEALTH_WAIT: Duration = Duration::from_secs(15);
/// How long the leader waits for enough healthy members before granting a restart: covers a
/// re-election after the previous restart, not a dead member (that waits for a later hook).
const GRANT_BUDGET: Duration = Duration::from_secs(5);
/// How long an automatically defragmented member has to answer with a Raft leader again.
const DEFRAG_BACK_WAIT: Duration = Duration::from_secs(30);

/// Failures that fail the hook (Juju retries it).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A hook tool failed.
    #[error(transparent)]
    Juju(#[from] JujuError),
    /// A machine command or file write failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Installing etcd failed on the machine.
    #[error("cannot install etcd")]
    Install(#[source] InstallError),
    /// A TLS certificate could not be made or written.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The departing member cannot be removed without breaking quorum.
    #[error("cannot remove this unit's member without breaking quorum: bring the other members back, then run `juju resolved`")]
    CannotLeave(#[source] EtcdError),
}

/// What applying a plan achieved.
#[derive(Debug, Default)]
pub struct Outcome {
    /// False when something could not be done yet: no further pass.
    pub progressed: bool,
    /// A status that replaces the plan's.
    pub status: Option<Status>,
}

/// Applies the effects in order, until one cannot be done yet or replaces the status.
pub fn apply(
    p: &Plan,
    o: &Observed,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
    machine: &dyn Machine,
) -> Result<Outcome, ApplyError> {
    let run = Run {
        o,
        juju,
        etcd,
        machine,
    };
    let mut out = Outcome {
        progressed: true,
        status: None,
    };
    let mut refused = None;
    for effect in &p.effects {
        match effect {
            Effect::Install => match run.install()? {
                Installed::Done => {}
                Installed::Refused(status) => refused = Some(status),
                Installed::NoSource(status) => {
                    return Ok(Outcome {
                        progressed: false,
                        status: Some(status),
                    })
                }
            },
            Effect::SetVersion(v) => juju.application_version_set(v)?,
            Effect::OpenPorts(ports) => run.open_ports(ports),
            Effect::Render(config) => run.write_files(config)?,
            Effect::Restart(config) => run.restart(config)?,
            Effect::GrantRestart { unit } => {
                if let Some(paused) = run.grant_restart(unit)? {
                    out.progressed = false;
                    out.status = Some(paused);
                }
            }
            Effect::Start => run.start()?,
            Effect::CreateCa => run.create_ca()?,
            Effect::MoveKeysToSecrets => run.move_keys_to_secrets()?,
            Effect::CaRotationSwap => super::ca_rotation::swap(o, juju)?,
            Effect::CaRotationFinish => super::ca_rotation::finish(o, juju)?,
            Effect::TlsRequest { sans } => run.tls_request(sans)?,
            Effect::Issue { unit } => run.issue(unit)?,
            Effect::TlsFiles { sans } => run.tls_files(sans)?,
            Effect::TrustBundle(bundle) => ext_tls::write_trust_bundle(machine, bundle)?,
            Effect::ExternalRequest { sans } => {
                ext_tls::make_request(machine, &o.unit, sans)?;
                juju.log(
                    Level::Info,
                    "made a certificate request for the `certificates` relation",
                );
            }
            Effect::ServeCert(pem) => {
                ext_tls::serve(machine, pem)?;
                juju.log(Level::Info, "wrote the client port's server certificate (no restart: etcd reads it per connection)");
            }
            Effect::Auth(change) => run.auth(change)?,
            Effect::IssueConsumer { app } => run.issue_consumer(app)?,
            Effect::RenewSharedClient => run.renew_shared_client()?,
            Effect::RetireConsumer { app } => run.retire_consumer(app)?,
            Effect::GrantSecret { id, relation } => juju.secret_grant(id, relation, None)?,
            Effect::RecordMemberId(id) => run.record_member_id(*id)?,
            Effect::Wipe => run.wipe()?,
            Effect::UseVolume => run.use_volume()?,
            Effect::OwnDataDir => run.own_data_dir()?,
            Effect::PeerSet(rel, s) | Effect::RelationSet(rel, s) => juju.relation_set(rel, s)?,
            Effect::LeaderSet(s) => juju.leader_set(s)?,
            Effect::Admit { unit, peer_url } => out.progressed = run.admit(unit, peer_url)?,
            Effect::Promote { unit, id } => out.progressed = run.promote(unit, *id)?,
            Effect::Remove { name, id } => out.progressed = run.remove(name, *id),
            Effect::UpdatePeerUrl { name, id, peer_url } => {
                out.progressed = run.update_peer_url(name, *id, peer_url)
            }
            Effect::Leave { id, transfer_to } => run.leave(*id, *transfer_to)?,
            Effect::MarkDeparting => state::mark_departing(machine)?,
            Effect::Stop => {
                if machine.exists(paths::UNIT_FILE) {
                    let _ = machine.systemctl(&["disable", "--now", paths::SERVICE]);
                }
            }
            Effect::Cleanup => run.cleanup()?,
            Effect::Maintain(chore) => {
                out.progressed = run.maintain(chore)?;
                if out.progressed && matches!(chore, Chore::Disarm(_)) {
                    // Shown at once, not at the next update-status.
                    out.status = Some(p.status.without_alarm("NOSPACE"));
                }
            }
        }
        if !out.progressed || out.status.is_some() {
            break;
        }
    }
    // The refusal shows from this pass on (later passes and hooks read it from the record).
    out.status = out.status.or(refused);
    Ok(out)
}

/// How an install ended, when it did not fail the hook.
enum Installed {
    /// Installed (or kept): go on.
    Done,
    /// The resource was refused: go on, and show this status.
    Refused(Status),
    /// Nothing to install from: stop the pass, and show this status.
    NoSource(Status),
}

/// One pass being applied: the facts it was planned on and the three boundaries.
struct Run<'a> {
    o: &'a Observed,
    juju: &'a dyn Juju,
    etcd: &'a dyn Etcd,
    machine: &'a dyn Machine,
}

impl Run<'_> {
    /// Installs etcd from the resource, checked against every version this unit knows of: the
    /// installed one, the one its member runs, the cluster's (leader data). A new version is
    /// not restarted here: the next pass sees the running version differ from the installed
    /// one and restarts it in turn (rolling restart).
    fn install(&self) -> Result<Installed, ApplyError> {
        let (o, juju) = (self.o, self.juju);
        let running = o.local.status.as_ref().map(|s| s.version.as_str());
        let known: Vec<&str> = [
            o.local.version.as_deref(),
            running,
            o.leader_data.get(keys::VERSION),
        ]
        .into_iter()
        .flatten()
        .filter(|v| !v.is_empty())
        .collect();
        match self
            .machine
            .install(juju, o.local.version.as_deref(), &known)
        {
            Ok(v) => {
                state::record_refusal(self.machine, None)?;
                // A running member shows its version once it has restarted on the new one.
                match running.filter(|r| !r.is_empty() && *r != v) {
                    None => juju.application_version_set(&v)?,
                    Some(r) => juju.log(
                        Level::Info,
                        &format!("etcd {v} installed: this member restarts on it in its turn (it runs {r})"),
                    ),
                }
                Ok(Installed::Done)
            }
            Err(InstallError::Refused(refusal)) => {
                let status = Status::ResourceRefused(refusal.clone());
                juju.log(Level::Warning, &status.message_for(o.app()));
                state::record_refusal(self.machine, Some(&refusal))?;
                Ok(Installed::Refused(status))
            }
            Err(InstallError::NoSource { resource, package }) => {
                let why = format!("resource: {resource}; package: {package}");
                juju.log(Level::Error, &format!("cannot install etcd: {why}"));
                let short = "no etcd resource attached and the etcd-server package is unavailable";
                Ok(Installed::NoSource(Status::NoResource(short.into())))
            }
            Err(e) => Err(ApplyError::Install(e)),
        }
    }

    /// Retries a membership call while etcd says "not yet", on the machine's clock.
    fn retry<T>(
        &self,
        budget: Duration,
        f: impl FnMut() -> Result<T, EtcdError>,
    ) -> Result<T, EtcdError> {
        retry_not_yet_on(self.machine, budget, PAUSE, f)
    }

    /// Leader: adds `unit`'s member as a learner and publishes its `joining-*` data; false when
    /// etcd would not add it yet.
    fn admit(&self, unit: &str, peer_url: &str) -> Result<bool, ApplyError> {
        let o = self.o;
        let added = self.retry(ADD_BUDGET, || {
            self.etcd.member_add_learner(&o.endpoints, peer_url)
        });
        match added {
            Ok((id, members)) => {
                let joining = Joining {
                    unit: unit.to_string(),
                    member_id: id,
                    initial_cluster: initial_cluster(&members, id, &member_name(unit)),
                };
                let msg = format!("admitted {unit} as learner {id:x}");
                self.juju.log(Level::Info, &msg);
                self.juju.leader_set(&joining_keys(Some(&joining)))?;
                Ok(true)
            }
            Err(e) => Ok(self.not_yet(&format!("admit {unit}"), e)),
        }
    }

    /// Leader: promotes the joining learner and clears `joining-*`; false when etcd would not
    /// promote it yet.
    fn promote(&self, unit: &str, id: u64) -> Result<bool, ApplyError> {
        let endpoints = self.raft_leader_first();
        match self.retry(PROMOTE_BUDGET, || self.etcd.member_promote(&endpoints, id)) {
            Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
                let msg = format!("promoted {unit} ({id:x}) to a voting member");
                self.juju.log(Level::Info, &msg);
                self.juju.leader_set(&joining_keys(None))?;
                Ok(true)
            }
            Err(e) => Ok(self.not_yet(&format!("promote {unit}"), e)),
        }
    }

    /// The endpoints with the Raft leader's client URLs first: with auth on, a follower
    /// forwards a promotion to the leader without the caller's identity and the leader refuses
    /// it (etcd issue 20757), so it is asked first.
    fn raft_leader_first(&self) -> Vec<String> {
        let o = self.o;
        let leader = o.cluster.answers.iter().map(|s| s.leader).find(|l| *l != 0);
        let members = o.members.iter().flatten();
        let urls = members
            .filter(|m| Some(m.id) == leader)
            .flat_map(|m| &m.client_urls);
        let mut endpoints: Vec<String> = urls.cloned().collect();
        let rest = o
            .endpoints
            .iter()
            .filter(|e| !endpoints.contains(e))
            .cloned();
        endpoints.extend(rest.collect::<Vec<_>>());
        endpoints
    }

    /// Leader: removes a member whose unit is gone; false when etcd would not remove it yet.
    fn remove(&self, name: &str, id: u64) -> bool {
        let o = self.o;
        match self.retry(REMOVE_BUDGET, || self.etcd.member_remove(&o.endpoints, id)) {
            Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
                let msg = format!("removed member {name} ({id:x}): its unit is gone");
                self.juju.log(Level::Info, &msg);
                true
            }
            Err(e) => self.not_yet(&format!("remove {name}"), e),
        }
    }

    /// Leader: points a member at its new peer URL; false when etcd would not update it yet.
    fn update_peer_url(&self, name: &str, id: u64, peer_url: &str) -> bool {
        let (o, urls) = (self.o, [peer_url.to_string()]);
        match self.retry(REMOVE_BUDGET, || {
            self.etcd.member_update(&o.endpoints, id, &urls)
        }) {
            Ok(()) => {
                let msg = format!("member {name} now has peer URL {peer_url}");
                self.juju.log(Level::Info, &msg);
                true
            }
            Err(e) => self.not_yet(&format!("update {name}'s peer URL"), e),
        }
    }

    /// Leader: makes the CAs and the consumers' credentials and stores them
    /// ([`Run::store_keys`]).
    fn create_ca(&self) -> Result<(), ApplyError> {
        let ca = tls::create_ca(self.validity_days())?;
        let mut data = ca.public.clone();
        data.extend(self.store_keys(&ca.keys, &ca.client_key)?);
        // Consumers' certificates and passwords from a previous CA are made again.
        let made_by_old_ca = keys::CONSUMER_PREFIXES
            .iter()
            .chain([&keys::AUTH_USER_PREFIX]);
        let consumers = (self.o.leader_data.raw.keys())
            .filter(|k| made_by_old_ca.clone().any(|p| k.starts_with(p)));
        data.extend(consumers.map(|k| (k.clone(), String::new())));
        self.juju.leader_set(&data)?;
        let msg = "created the cluster's TLS certificate authorities (client and peer)";
        self.juju.log(Level::Info, msg);
        Ok(())
    }

    /// Leader: keeps the CA keys and the consumers' key where this Juju keeps secrets: two
    /// application secrets under Juju 3 (their content through a file, never an argument), else
    /// leader data (the Juju 2.9 fallback). Returns the leader data naming them.
    fn store_keys(&self, ca: &CaKeys, client_key: &str) -> Result<Settings, ApplyError> {
        let peer_key = ca.peer_ca_key.clone().unwrap_or_default();
        if !self.o.secrets.available {
            return Ok(Settings::from([
                (keys::TLS_CA_KEY.to_string(), ca.ca_key.clone()),
                (keys::TLS_PEER_CA_KEY.to_string(), peer_key),
                (keys::TLS_CLIENT_KEY.to_string(), client_key.to_string()),
            ]));
        }
        let mut content = Settings::from([(secret_keys::CA_KEY.to_string(), ca.ca_key.clone())]);
        if !peer_key.is_empty() {
            content.insert(secret_keys::PEER_CA_KEY.to_string(), peer_key);
        }
        let app = SecretOwner::Application;
        let ca_id = self.juju.secret_add(&content, app, None)?;
        let client = Settings::from([(secret_keys::CLIENT_KEY.to_string(), client_key.into())]);
        let client_id = self.juju.secret_add(&client, app, None)?;
        Ok(Settings::from([
            (keys::TLS_CA_SECRET.to_string(), ca_id),
            (keys::TLS_CLIENT_SECRET.to_string(), client_id),
            (keys::TLS_CA_KEY.to_string(), String::new()),
            (keys::TLS_PEER_CA_KEY.to_string(), String::new()),
            (keys::TLS_CLIENT_KEY.to_string(), String::new()),
        ]))
    }

    /// Leader: makes `app`'s own client credentials; its key goes to an application secret
    /// (granted to its relations when they are published), under Juju 2.9 to leader data. Once
    /// made, a renewal signs a new certificate for the same key (only the certificate changes).
    /// A certificate it cannot make is logged and ignored.
    fn issue_consumer(&self, app: &str) -> Result<(), ApplyError> {
        let Some(ca_keys) = &self.o.secrets.ca_keys else {
            return Ok(());
        };
        let key = |prefix| keys::consumer_key(prefix, app);
        let old = self.stored_key(
            &key(keys::CONSUMER_SECRET_PREFIX),
            &key(keys::CONSUMER_KEY_PREFIX),
        );
        let renewal = self
            .o
            .leader_data
            .get(&key(keys::CONSUMER_CERT_PREFIX))
            .is_some();
        if renewal && old.is_none() {
            let msg = format!("cannot renew {app}'s client certificate now: its key is unreadable");
            self.juju.log(Level::Warning, &msg);
            return Ok(());
        }
        let made = match tls::issue_consumer(ca_keys, app, self.validity_days(), old.as_deref()) {
            Ok(made) => made,
            Err(e) => {
                let msg = format!("cannot make {app}'s client certificate: {e}");
                self.juju.log(Level::Warning, &msg);
                return Ok(());
            }
        };
        let mut data = Settings::from([
            (key(keys::CONSUMER_CERT_PREFIX), made.cert),
            (
                ca_rotation::consumer_ca_key(app),
                ca_rotation::signer(&self.o.leader_data.raw),
            ),
        ]);
        let password = tls::consumer_password(ca_keys, app);
        match (renewal, self.o.secrets.available) {
            (true, _) => {}
            (false, true) => {
                let content = Settings::from([
                    (secret_keys::CLIENT_KEY.to_string(), made.key),
                    (secret_keys::PASSWORD.to_string(), password),
                ]);
                let id = self
                    .juju
                    .secret_add(&content, SecretOwner::Application, None)?;
                data.insert(key(keys::CONSUMER_SECRET_PREFIX), id);
            }
            (false, false) => {
                data.insert(key(keys::CONSUMER_KEY_PREFIX), made.key);
                data.insert(key(keys::CONSUMER_PASSWORD_PREFIX), password);
            }
        }
        self.juju.leader_set(&data)?;
        let msg = match renewal {
            true => format!("renewed {app}'s client certificate (same key)"),
            false => format!("issued {app} its own client certificate (CN={app})"),
        };
        self.juju.log(Level::Info, &msg);
        Ok(())
    }

    /// Leader: renews the consumers' shared client certificate for its key; a key it cannot
    /// read is logged, and the renewal tried again on a later hook.
    fn renew_shared_client(&self) -> Result<(), ApplyError> {
        let key = self.stored_key(keys::TLS_CLIENT_SECRET, keys::TLS_CLIENT_KEY);
        let (Some(ca_keys), Some(key)) = (&self.o.secrets.ca_keys, key) else {
            let msg = "cannot renew the shared client certificate now: its key is unreadable";
            self.juju.log(Level::Warning, msg);
            return Ok(());
        };
        match tls::renew_shared_client(ca_keys, &key, self.validity_days()) {
            Ok(cert) => {
                let signer = ca_rotation::signer(&self.o.leader_data.raw);
                let data = Settings::from([
                    (keys::TLS_CLIENT_CERT.to_string(), cert),
                    (ca_rotation::keys::SHARED_CA.to_string(), signer),
                ]);
                self.juju.leader_set(&data)?;
                let msg = "renewed the consumers' shared client certificate (same key)";
                self.juju.log(Level::Info, msg);
            }
            Err(e) => {
                let msg = format!("cannot renew the shared client certificate: {e}");
                self.juju.log(Level::Warning, &msg);
            }
        }
        Ok(())
    }

    /// Leader: a client key the charm keeps: in the secret leader data names under `secret`
    /// (Juju 3), else in leader data under `fallback`; `None` when there is none or it cannot be
    /// read.
    fn stored_key(&self, secret: &str, fallback: &str) -> Option<String> {
        let ld = &self.o.leader_data;
        match ld.get(secret).filter(|_| self.o.secrets.available) {
            Some(id) => {
                let content = self.juju.secret_get(id, true).ok()?;
                content.get(secret_keys::CLIENT_KEY).cloned()
            }
            None => ld.get(fallback).map(str::to_string),
        }
    }

    /// Days a certificate the leader signs now is valid (`tls_cert_validity_days`).
    fn validity_days(&self) -> u64 {
        let cfg = self.o.config.as_ref().ok();
        cfg.map(|c| c.certificates)
            .unwrap_or_default()
            .validity_days
    }

    /// Leader: makes one change to etcd's auth and records it in leader data; one etcd refuses
    /// is logged and planned again on a later hook.
    fn auth(&self, change: &AuthChange) -> Result<(), ApplyError> {
        let (etcd, eps) = (self.etcd, &self.o.endpoints);
        let user = |name: &str| format!("{}{name}", keys::AUTH_USER_PREFIX);
        let (done, record) = match change {
            AuthChange::SetUser { name, grant, old } => (
                etcd.auth_set_user(eps, name, grant, old.as_ref(), &self.password(name)),
                (
                    user(name),
                    grant.record(),
                    format!("etcd user {name}: {}", grant.record()),
                ),
            ),
            AuthChange::DeleteUser { name } => (
                etcd.auth_delete_user(eps, name),
                (
                    user(name),
                    String::new(),
                    format!("deleted etcd user {name}"),
                ),
            ),
            AuthChange::Enable => (
                etcd.auth_switch(eps, true),
                (keys::AUTH.into(), "on".into(), "enabled etcd auth".into()),
            ),
            AuthChange::Disable => (
                etcd.auth_switch(eps, false),
                (
                    keys::AUTH.into(),
                    String::new(),
                    "disabled etcd auth".into(),
                ),
            ),
        };
        let (key, value, msg) = record;
        match done {
            Ok(()) => {
                self.juju.leader_set(&Settings::from([(key, value)]))?;
                self.juju.log(Level::Info, &msg);
            }
            Err(e) => {
                let msg = format!("not yet: {msg} ({e}); retrying on a later hook");
                self.juju.log(Level::Warning, &msg);
            }
        }
        Ok(())
    }

    /// The etcd password of user `name`: none for `root` (only its certificate authenticates
    /// it), else the consumer's ([`tls::consumer_password`]).
    fn password(&self, name: &str) -> Option<String> {
        let keys = self
            .o
            .secrets
            .ca_keys
            .as_ref()
            .filter(|_| name != tls::ROOT)?;
        Some(tls::consumer_password(keys, name))
    }

    /// Leader: forgets `app`'s credentials: its secret is removed, then its leader data.
    fn retire_consumer(&self, app: &str) -> Result<(), ApplyError> {
        let key = |prefix| keys::consumer_key(prefix, app);
        let secret = self.o.leader_data.get(&key(keys::CONSUMER_SECRET_PREFIX));
        if let Some(id) = secret.filter(|_| self.o.secrets.available) {
            if let Err(e) = self.juju.secret_remove(id) {
                let msg = format!("cannot remove {app}'s client key secret: {e}");
                self.juju.log(Level::Warning, &msg);
            }
        }
        let gone = keys::CONSUMER_PREFIXES.map(|p| (key(p), String::new()));
        let mut gone = Settings::from(gone);
        gone.insert(ca_rotation::consumer_ca_key(app), String::new());
        self.juju.leader_set(&gone)?;
        let msg = format!("{app} has no db relation left: its client certificate is retired");
        self.juju.log(Level::Info, &msg);
        Ok(())
    }

    /// Leader (Juju 3): moves the keys an older charm left in leader data into secrets.
    fn move_keys_to_secrets(&self) -> Result<(), ApplyError> {
        let o = self.o;
        let client = o.leader_data.get(keys::TLS_CLIENT_KEY);
        let (Some(ca), Some(client)) = (&o.secrets.ca_keys, client) else {
            return Ok(());
        };
        self.juju.leader_set(&self.store_keys(ca, client)?)?;
        let msg = "moved the TLS keys from leader data into Juju secrets";
        self.juju.log(Level::Info, msg);
        Ok(())
    }

    /// Makes this unit's keys and publishes its certificate requests in its peer data.
    fn tls_request(&self, sans: &[String]) -> Result<(), ApplyError> {
        let Some(rel) = &self.o.peer_relation else {
            return Ok(());
        };
        let req = tls::make_request(self.machine, sans)?;
        let data = Settings::from([
            (peer_keys::TLS_CSR.to_string(), req.csr),
            (peer_keys::TLS_CLIENT_CSR.to_string(), req.client_csr),
        ]);
        self.juju.relation_set(rel, &data)?;
        let msg = format!("requested TLS certificates for {}", sans.join(", "));
        self.juju.log(Level::Info, &msg);
        Ok(())
    }

    /// Leader: signs `unit`'s requests; a request it cannot sign is logged and ignored.
    fn issue(&self, unit: &str) -> Result<(), ApplyError> {
        let (o, ld) = (self.o, &self.o.leader_data);
        let req = match unit == o.unit {
            true => TlsRequest::from_data(&o.own_peer_data),
            false => o
                .peers
                .iter()
                .find(|p| p.unit == unit)
                .and_then(|p| p.tls_request.clone()),
        };
        let (Some(req), Some(ca_keys), Some(ca)) = (req, &o.secrets.ca_keys, ld.get(keys::TLS_CA))
        else {
            return Ok(());
        };
        let peer_ca = ld.get(keys::TLS_PEER_CA).unwrap_or(ca);
        let from = Issued::fingerprint(&req.csr, &req.client_csr, ca, peer_ca);
        match tls::issue(ca_keys, &req, from, self.validity_days()) {
            Ok(issued) => {
                let value = serde_json::to_string(&issued).unwrap_or_default();
                self.juju
                    .leader_set(&Settings::from([(keys::issued_key(unit), value)]))?;
                let msg = format!("signed the TLS certificates {unit} requested");
                self.juju.log(Level::Info, &msg);
            }
            Err(e) => {
                let msg = format!("ignoring the TLS certificate requests of {unit}: {e}");
                self.juju.log(Level::Warning, &msg);
            }
        }
        Ok(())
    }

    /// Writes this member's TLS files from what the leader issued to it.
    fn tls_files(&self, sans: &[String]) -> Result<(), ApplyError> {
        let (o, ld) = (self.o, &self.o.leader_data);
        let issued = ld.get(&keys::issued_key(&o.unit)).and_then(Issued::parse);
        let Some(issued) = issued else {
            return Ok(());
        };
        tls::write_member_files(self.machine, &ld.raw, &issued, sans)?;
        let msg = format!(
            "wrote this member's TLS certificates for {}",
            sans.join(", ")
        );
        self.juju.log(Level::Info, &msg);
        Ok(())
    }

    /// Logs a membership step that could not be done now; returns `false` (no progress).
    fn not_yet(&self, what: &str, e: EtcdError) -> bool {
        self.juju.log(
            Level::Warning,
            &format!("cannot {what} now, will retry on a later hook: {e}"),
        );
        false
    }

    /// The loopback client URL of the local member: that of `config` (just written), else of
    /// the config etcd runs, else of the charm config.
    fn local_url(&self, config: Option<&str>) -> String {
        let o = self.o;
        let config = config.or(o.local.rendered_config.as_deref());
        render::member_url(config, o.config.as_ref().ok())
    }

    /// Writes the unit, wrapper, env file and config where they differ. Never restarts etcd:
    /// the plan restarts it ([`Effect::Restart`]) when its turn comes.
    fn write_files(&self, config: &str) -> Result<(), HostError> {
        let m = self.machine;
        let port = render::client_port(config).unwrap_or(2379);
        let env = render::etcdctl_env(render::tls_of(config), port);
        m.ensure_user_and_dirs()?;
        m.write(paths::ETCDCTL_ENV, &env, 0o644)?;
        let wrapper = render::etcdctl_wrapper(&self.o.local.etcdctl);
        m.write(paths::ETCDCTL_WRAPPER, &wrapper, 0o755)?;
        if m.write(paths::UNIT_FILE, &render::systemd_unit(), 0o644)? {
            m.systemctl(&["daemon-reload"])?;
        }
        m.write(paths::CONFIG_FILE, config, 0o644)?;
        Ok(())
    }

    /// Waits at most `budget` for the member at `endpoint` to answer with a Raft leader.
    fn wait_healthy(&self, endpoint: &str, budget: Duration) -> Option<MemberStatus> {
        let deadline = self.machine.now() + budget;
        loop {
            if let Ok(s) = self.etcd.status(endpoint) {
                if s.leader != 0 {
                    return Some(s);
                }
            }
            if self.machine.now() >= deadline {
                return None;
            }
            self.machine.sleep(Duration::from_millis(250));
        }
    }

    /// Restarts etcd with `config`: mark, write, restart (systemd returns once etcd is ready,
    /// i.e. back in a quorum), clear the mark, then wait a bounded time for the member to know
    /// its Raft leader. Not being healthy in time is no failure: the status says so and later
    /// hooks confirm.
    fn restart(&self, config: &str) -> Result<(), ApplyError> {
        let (m, juju) = (self.machine, self.juju);
        state::mark_restart_pending(m)?;
        self.write_files(config)?;
        juju.log(Level::Info, "restarting etcd with the new settings");
        let began = m.now();
        let restarted = m.restart_service(RESTART_WAIT);
        state::clear_restart_pending(m);
        if let Err(e) = &restarted {
            juju.log(Level::Warning, &format!("etcd is not back yet: {e}"));
        }
        match self.wait_healthy(&self.local_url(Some(config)), HEALTH_WAIT) {
            Some(s) => {
                self.record_member_id(s.member_id)?;
                if !s.version.is_empty() {
                    juju.application_version_set(&s.version)?;
                }
                let ms = m.now().duration_since(began).as_millis();
                let msg = format!(
                    "restarted etcd: member {:x} healthy after {ms} ms",
                    s.member_id
                );
                juju.log(Level::Info, &msg);
            }
            None => juju.log(
                Level::Warning,
                "restarted etcd: its member is not healthy yet, the next restart waits for it",
            ),
        }
        Ok(())
    }

    /// Leader: grants `unit` its restart once enough of the other voting members answer with a
    /// Raft leader to keep a quorum while it restarts (all of them in a cluster of two), waiting
    /// for that at most [`GRANT_BUDGET`] (a member just restarted may not be back yet). Returns
    /// the status to show when it could not grant.
    fn grant_restart(&self, unit: &str) -> Result<Option<Status>, ApplyError> {
        let (m, juju) = (self.machine, self.juju);
        let name = member_name(unit);
        let voters: Vec<&Member> = self
            .o
            .members
            .iter()
            .flatten()
            .filter(|m| !m.is_learner)
            .collect();
        let others: Vec<&&Member> = voters.iter().filter(|m| m.name != name).collect();
        let needed = (voters.len() / 2 + 1).min(others.len());
        let healthy = || {
            let answers = |m: &Member| {
                m.client_urls.first().is_some_and(|ep| {
                    self.etcd
                        .status(ep)
                        .is_ok_and(|s| s.leader != 0 && !s.is_learner)
                })
            };
            others.iter().filter(|m| answers(m)).count()
        };
        let deadline = m.now() + GRANT_BUDGET;
        let mut found = healthy();
        while found < needed && m.now() + PAUSE < deadline {
            m.sleep(PAUSE);
            found = healthy();
        }
        if found < needed {
            let paused = Status::RestartPaused {
                unit: unit.to_string(),
                healthy: found,
                others: others.len(),
                needed,
            };
            let why = paused.message();
            juju.log(
                Level::Warning,
                &format!("{why}; will retry on a later hook"),
            );
            return Ok(Some(paused));
        }
        juju.leader_set(&restart_keys(Some(unit)))?;
        juju.log(
            Level::Info,
            &format!("granted {unit} its turn to restart etcd"),
        );
        Ok(None)
    }

    /// Starts etcd without blocking the hook, then waits a bounded time for it to answer and
    /// records its member id.
    fn start(&self) -> Result<(), HostError> {
        let m = self.machine;
        m.systemctl(&["enable", paths::SERVICE])?;
        if !self.o.local.service_active {
            m.systemctl(&["start", "--no-block", paths::SERVICE])?;
            // It starts with the files as written: no restart is pending any more.
            state::clear_restart_pending(m);
        }
        // The URL of the config just written.
        let written = m.read(paths::CONFIG_FILE);
        let local = self.local_url(written.as_deref());
        let deadline = m.now() + START_WAIT;
        while m.now() < deadline {
            if let Ok(s) = self.etcd.status(&local) {
                return self.record_member_id(s.member_id);
            }
            m.sleep(Duration::from_millis(500));
        }
        Ok(())
    }

    /// This unit's member was removed from the cluster (or the volume brought a removed
    /// member's data): its data goes aside so it can rejoin.
    fn wipe(&self) -> Result<(), HostError> {
        let whose = match &self.o.local.volume.owner {
            Some(w) if self.o.local.volume.in_use && w.unit != self.o.unit => {
                format!(
                    "the storage volume holds removed member {:x}'s data (of {})",
                    w.member_id, w.unit
                )
            }
            _ => "this unit's member was removed from the cluster".to_string(),
        };
        let dir = match self.o.local.volume.in_use {
            true => paths::VOLUME_DATA_DIR,
            false => paths::DATA_DIR,
        };
        let msg = format!(
            "{whose}: moving it aside to {dir}.removed-<UTC time> (kept: delete it once no longer needed) and joining as a new member"
        );
        self.juju.log(Level::Warning, &msg);
        let _ = self.machine.systemctl(&["stop", paths::SERVICE]);
        state::wipe_data_dir(self.machine)
    }

    /// Records the member id the data dir belongs to, and on the volume whose member it is
    /// (and whether the cluster lists it alone).
    fn record_member_id(&self, id: u64) -> Result<(), HostError> {
        state::record_member_id(self.machine, id)?;
        if !self.o.local.volume.in_use {
            return Ok(());
        }
        let owner = VolumeOwner {
            member_id: id,
            unit: self.o.unit.clone(),
            alone: storage::listed_alone(self.o, id),
        };
        state::record_volume_owner(self.machine, &owner)
    }

    /// Puts the empty data dir on the `data` store's volume.
    fn use_volume(&self) -> Result<(), HostError> {
        self.machine.use_volume()?;
        let msg = format!(
            "etcd's data dir {} is on the storage volume ({})",
            paths::DATA_DIR,
            paths::VOLUME_DATA_DIR
        );
        self.juju.log(Level::Info, &msg);
        Ok(())
    }

    /// Gives the data dir to this machine's etcd user where another owns it (logged when so).
    fn own_data_dir(&self) -> Result<(), HostError> {
        let changed = self.machine.own_data_dir()?;
        if changed > 0 {
            let msg = format!(
                "gave {changed} entries of the data dir {} to this machine's etcd user (written \
                 under another uid or gid)",
                paths::DATA_DIR
            );
            self.juju.log(Level::Info, &msg);
        }
        Ok(())
    }

    /// Moves Raft leadership away if asked, removes this member, and leaves a clear error when
    /// etcd refuses because of quorum.
    fn leave(&self, id: u64, to: Option<u64>) -> Result<(), ApplyError> {
        let (o, juju, etcd) = (self.o, self.juju, self.etcd);
        if let Some(to) = to {
            let local = self.local_url(None);
            match self.retry(MOVE_LEADER_BUDGET, || etcd.move_leader(&local, to)) {
                Ok(()) => juju.log(Level::Info, &format!("moved Raft leadership to {to:x}")),
                Err(e) => juju.log(
                    Level::Warning,
                    &format!("cannot move Raft leadership first: {e}"),
                ),
            }
        }
        match self.retry(REMOVE_BUDGET, || etcd.member_remove(&o.endpoints, id)) {
            Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
                let msg = format!("removed this unit's member {id:x} from the cluster");
                juju.log(Level::Info, &msg);
                state::forget_member_id(self.machine);
                Ok(())
            }
            Err(e @ EtcdError::NotYet { .. }) => {
                let status = Status::CannotLeave(e.to_string());
                set_status(juju, self.machine, &status, o.app())?;
                Err(ApplyError::CannotLeave(e))
            }
            Err(e) => {
                juju.log(
                    Level::Warning,
                    &format!("cannot remove this unit's member (the leader removes it later): {e}"),
                );
                Ok(())
            }
        }
    }

    /// `remove` hook: the charm's files go; the data dir is moved aside, not deleted.
    /// Opens `ports` and closes the others this unit opened; a failure is logged only (ports
    /// matter for `juju expose`, not for the cluster).
    fn open_ports(&self, ports: &[u16]) {
        let juju = self.juju;
        let opened = juju.opened_ports().unwrap_or_else(|e| {
            juju.log(Level::Warning, &format!("cannot list opened ports: {e}"));
            Vec::new()
        });
        let stale = opened.iter().filter(|p| !ports.contains(p));
        for port in stale {
            if let Err(e) = juju.close_port(*port) {
                juju.log(Level::Warning, &format!("cannot close port {port}: {e}"));
            }
        }
        for port in ports.iter().filter(|p| !opened.contains(p)) {
            if let Err(e) = juju.open_port(*port) {
                juju.log(Level::Warning, &format!("cannot open port {port}: {e}"));
            }
        }
    }

    fn cleanup(&self) -> Result<(), HostError> {
        let m = self.machine;
        for f in [
            paths::UNIT_FILE,
            paths::CONFIG_FILE,
            paths::ETCDCTL_ENV,
            paths::ETCDCTL_WRAPPER,
            paths::ETCD_LINK,
            paths::ETCDUTL_LINK,
            paths::TLS_DIR,
        ] {
            m.remove(f);
        }
        let _ = m.systemctl(&["daemon-reload"]);
        // Data on the volume stays as it is: the volume may be attached to another unit.
        if state::has_member_data(m) && !self.o.local.volume.in_use {
            state::wipe_data_dir(m)?;
        }
        m.remove(paths::STATE_DIR);
        Ok(())
    }

    /// Leader: one step of automatic maintenance, the status saying so while it runs; false
    /// (no progress, nothing recorded) when it could not be done, which is logged.
    fn maintain(&self, chore: &Chore) -> Result<bool, ApplyError> {
        let (o, juju) = (self.o, self.juju);
        set_status(
            juju,
            self.machine,
            &Status::Maintaining(chore.clone()),
            o.app(),
        )?;
        let what = chore.describe();
        let done = match chore {
            Chore::Defrag { id, endpoint, .. } => self.defrag(*id, endpoint),
            Chore::Compact => self.compact_to_current(),
            Chore::Disarm(ids) => ids
                .iter()
                .try_for_each(|id| self.etcd.alarm_disarm(&o.endpoints, *id, "NOSPACE"))
                .map(|()| "disarmed".to_string())
                .map_err(|e| e.to_string()),
        };
        if let (Ok(_), Chore::Defrag { id, .. }) = (&done, chore) {
            self.record_own_defrag(*id);
        }
        match &done {
            Ok(result) => juju.log(Level::Info, &format!("{what}: {result}")),
            Err(why) => juju.log(
                Level::Warning,
                &format!("{what}: not done ({why}); the next update-status tries again"),
            ),
        }
        Ok(done.is_ok())
    }

    /// After member `id` was defragmented: recorded for the facts exporter when it is this
    /// unit's (as after the `defrag` action); a failure is logged only.
    fn record_own_defrag(&self, id: u64) {
        let own = self.o.local.status.as_ref().map(|s| s.member_id);
        if own != Some(id) {
            return;
        }
        let unix = i64::try_from(self.o.now).unwrap_or(i64::MAX);
        if let Err(e) = metrics::record_own_defrag(self.machine, unix) {
            let msg = format!("cannot record the defragmentation for the facts exporter: {e}");
            self.juju.log(Level::Warning, &msg);
        }
    }

    /// Defragments member `id` through the defrag action's step; what it freed, or why not.
    fn defrag(&self, id: u64, endpoint: &str) -> Result<String, String> {
        let voters: Vec<&Member> = self.o.members.iter().flatten().collect();
        let target = voters
            .iter()
            .find(|m| m.id == id)
            .ok_or("not a member any more")?;
        let back = DEFRAG_BACK_WAIT;
        match defrag_member(
            self.etcd,
            self.machine,
            &voters,
            target,
            endpoint,
            back,
            &mut |_| {},
        ) {
            Ok(Sizes { before, after }) => Ok(format!(
                "{} -> {}, {} freed",
                mib(before),
                mib(after),
                mib(before - after)
            )),
            Err(DefragStop::NotHealthy) => Err("it is not healthy now".into()),
            Err(DefragStop::Unsafe(why)) => Err(why),
            Err(DefragStop::Failed(e)) => Err(e.to_string()),
            Err(DefragStop::NotBack) => Err(format!(
                "defragmented, but it has not answered with a Raft leader within {} s",
                back.as_secs()
            )),
        }
    }

    /// Compacts the history to the current revision, physically; already compacted there is
    /// done too.
    fn compact_to_current(&self) -> Result<String, String> {
        let endpoints = &self.o.endpoints;
        let revision = self.etcd.revision(endpoints).map_err(|e| e.to_string())?;
        match self.etcd.compact(endpoints, revision, true) {
            Ok(()) => Ok(format!("compacted to revision {revision}")),
            Err(EtcdError::Failed { message, .. }) if message.contains("has been compacted") => {
                Ok(format!("already compacted to revision {revision}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Bytes in MiB (KiB below 1 MiB), for the maintenance log.
fn mib(bytes: i64) -> String {
    match bytes.unsigned_abs() < 1 << 20 {
        true => format!("{:.1} KiB", bytes as f64 / 1024.0),
        false => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    }
}
