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
use crate::core::effect::{Effect, Plan};
use crate::core::membership::{initial_cluster, joining_keys, restart_keys};
use crate::core::observed::{keys, Observed};
use crate::core::render::{self, url};
use crate::core::status::Status;
use crate::etcd::Member;
use crate::etcd::{retry_not_yet, Etcd, EtcdError, MemberStatus};
use crate::juju::context::member_name;
use crate::juju::{Juju, JujuError, Level};
use crate::machine::host::{self, HostError};
use crate::machine::install::{self, InstallError};
use crate::machine::tls::{self, TlsError};
use crate::paths;
use std::time::{Duration, Instant};

/// How long a start waits for the local member to answer.
const START_WAIT: Duration = Duration::from_secs(15);
/// Retry budgets for "not yet" answers.
const ADD_BUDGET: Duration = Duration::from_secs(25);
const PROMOTE_BUDGET: Duration = Duration::from_secs(30);
const REMOVE_BUDGET: Duration = Duration::from_secs(20);
const PAUSE: Duration = Duration::from_secs(1);
/// How long a restart may take for systemd to see etcd ready (it has rejoined a quorum); after
/// that systemd carries on and later hooks confirm.
const RESTART_WAIT: Duration = Duration::from_secs(30);
/// How long, after that, the restarted member has to answer with a Raft leader.
const HEALTH_WAIT: Duration = Duration::from_secs(15);
/// How long the leader waits for enough healthy members before granting a restart: covers a
/// re-election after the previous restart, not a dead member (that waits for a later hook).
const GRANT_BUDGET: Duration = Duration::from_secs(5);

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
    #[error("cannot install etcd: {0}")]
    Install(#[source] InstallError),
    /// A TLS certificate could not be made or written.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The departing member cannot be removed without breaking quorum.
    #[error("cannot remove this unit's member without breaking quorum ({0}): bring the other members back, then run `juju resolved`")]
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

/// Applies the effects in order.
pub fn apply(
    p: &Plan,
    o: &Observed,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
) -> Result<Outcome, ApplyError> {
    let mut out = Outcome {
        progressed: true,
        status: None,
    };
    let local = local_url(o);
    let mut refused = None;
    for effect in &p.effects {
        match effect {
            // A new version is not restarted here: the next pass sees the running version differ
            // from the installed one and restarts it in turn (rolling restart).
            Effect::Install => match install_checked(o, juju) {
                Ok(v) => {
                    host::record_refusal(None)?;
                    // A running member shows its version once it has restarted on the new one.
                    let running = o.local.status.as_ref().map(|s| s.version.as_str());
                    match running.filter(|r| !r.is_empty() && *r != v) {
                        None => juju.application_version_set(&v)?,
                        Some(r) => juju.log(
                            Level::Info,
                            &format!("etcd {v} installed: this member restarts on it in its turn (it runs {r})"),
                        ),
                    }
                }
                Err(InstallError::Refused(refusal)) => {
                    let status = Status::ResourceRefused(refusal.clone());
                    juju.log(Level::Warning, &status.message());
                    host::record_refusal(Some(&refusal))?;
                    refused = Some(status);
                }
                Err(InstallError::NoSource { resource, package }) => {
                    let why = format!("resource: {resource}; package: {package}");
                    juju.log(Level::Error, &format!("cannot install etcd: {why}"));
                    let short =
                        "no etcd resource attached and the etcd-server package is unavailable";
                    return Ok(Outcome {
                        progressed: false,
                        status: Some(Status::NoResource(short.into())),
                    });
                }
                Err(e) => return Err(ApplyError::Install(e)),
            },
            Effect::SetVersion(v) => juju.application_version_set(v)?,
            Effect::OpenPort(port) => {
                if let Err(e) = juju.open_port(*port) {
                    juju.log(Level::Warning, &format!("cannot open the client port: {e}"));
                }
            }
            Effect::Render(config) => write_files(o, config)?,
            Effect::Restart(config) => restart(o, juju, etcd, config)?,
            Effect::GrantRestart { unit } => {
                if let Some(paused) = grant_restart(o, juju, etcd, unit)? {
                    out.progressed = false;
                    out.status = Some(paused);
                }
            }
            Effect::Start => start(o, etcd)?,
            Effect::CreateCa => {
                juju.leader_set(&tls::create_ca()?)?;
                juju.log(
                    Level::Info,
                    "created the cluster's TLS certificate authority",
                );
            }
            Effect::TlsFiles { sans } => {
                tls::write_member_files(&o.leader_data.raw, sans)?;
                juju.log(
                    Level::Info,
                    &format!(
                        "wrote this member's TLS certificate for {}",
                        sans.join(", ")
                    ),
                );
            }
            Effect::RecordMemberId(id) => host::record_member_id(*id)?,
            Effect::Wipe => {
                juju.log(Level::Warning, "this unit's member was removed from the cluster: moving its data aside to rejoin");
                let _ = host::systemctl(&["stop", paths::SERVICE]);
                host::wipe_data_dir()?;
            }
            Effect::PeerSet(rel, s) | Effect::RelationSet(rel, s) => juju.relation_set(rel, s)?,
            Effect::LeaderSet(s) => juju.leader_set(s)?,
            Effect::Admit { unit, peer_url } => {
                let added = retry_not_yet(ADD_BUDGET, PAUSE, || {
                    etcd.member_add_learner(&o.endpoints, peer_url)
                });
                match added {
                    Ok((id, members)) => {
                        let cluster = initial_cluster(&members, id, &member_name(unit));
                        juju.log(Level::Info, &format!("admitted {unit} as learner {id:x}"));
                        juju.leader_set(&joining_keys(unit, Some(id), &cluster))?;
                    }
                    Err(e) => out.progressed = not_yet(juju, &format!("admit {unit}"), e),
                }
            }
            Effect::Promote { unit, id } => {
                match retry_not_yet(PROMOTE_BUDGET, PAUSE, || {
                    etcd.member_promote(&o.endpoints, *id)
                }) {
                    Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
                        juju.log(
                            Level::Info,
                            &format!("promoted {unit} ({id:x}) to a voting member"),
                        );
                        juju.leader_set(&joining_keys("", None, ""))?;
                    }
                    Err(e) => out.progressed = not_yet(juju, &format!("promote {unit}"), e),
                }
            }
            Effect::Remove { name, id } => {
                match retry_not_yet(REMOVE_BUDGET, PAUSE, || {
                    etcd.member_remove(&o.endpoints, *id)
                }) {
                    Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
                        juju.log(
                            Level::Info,
                            &format!("removed member {name} ({id:x}): its unit is gone"),
                        );
                    }
                    Err(e) => out.progressed = not_yet(juju, &format!("remove {name}"), e),
                }
            }
            Effect::UpdatePeerUrl { name, id, peer_url } => {
                let urls = [peer_url.clone()];
                match retry_not_yet(REMOVE_BUDGET, PAUSE, || {
                    etcd.member_update(&o.endpoints, *id, &urls)
                }) {
                    Ok(()) => juju.log(
                        Level::Info,
                        &format!("member {name} now has peer URL {peer_url}"),
                    ),
                    Err(e) => {
                        out.progressed = not_yet(juju, &format!("update {name}'s peer URL"), e)
                    }
                }
            }
            Effect::Leave { id, transfer_to } => leave(o, juju, etcd, *id, *transfer_to, &local)?,
            Effect::MarkDeparting => host::mark_departing()?,
            Effect::Stop => {
                if std::path::Path::new(paths::UNIT_FILE).exists() {
                    let _ = host::systemctl(&["disable", "--now", paths::SERVICE]);
                }
            }
            Effect::Cleanup => cleanup()?,
        }
        if !out.progressed || out.status.is_some() {
            break;
        }
    }
    // The refusal shows from this pass on (later passes and hooks read it from the record).
    out.status = out.status.or(refused);
    Ok(out)
}

/// Installs etcd from the resource, checked against every version this unit knows of: the
/// installed one, the one its member runs, the cluster's (leader data).
fn install_checked(o: &Observed, juju: &dyn Juju) -> Result<String, InstallError> {
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
    install::install(juju, o.local.version.as_deref(), &known)
}

/// Logs a membership step that could not be done now; returns `false` (no progress).
fn not_yet(juju: &dyn Juju, what: &str, e: EtcdError) -> bool {
    juju.log(
        Level::Warning,
        &format!("cannot {what} now, will retry on a later hook: {e}"),
    );
    false
}

/// The loopback client URL of the local member: that of the config etcd runs, else of the
/// charm config.
fn local_url(o: &Observed) -> String {
    o.local
        .rendered_config
        .as_deref()
        .and_then(render::local_url)
        .unwrap_or_else(|| {
            let (tls, port) = o.config.as_ref().map_or((false, 2379), |c| (c.tls, c.port));
            url(tls, "127.0.0.1", port)
        })
}

/// Writes the unit, wrapper, env file and config where they differ. Never restarts etcd: the
/// plan restarts it ([`Effect::Restart`]) when its turn comes.
fn write_files(o: &Observed, config: &str) -> Result<(), HostError> {
    let port = render::client_port(config).unwrap_or(2379);
    let env = render::etcdctl_env(render::tls_of(config), port);
    host::ensure_user_and_dirs()?;
    host::write_if_changed(paths::ETCDCTL_ENV, &env, 0o644)?;
    host::write_if_changed(
        paths::ETCDCTL_WRAPPER,
        &render::etcdctl_wrapper(&o.local.etcdctl),
        0o755,
    )?;
    if host::write_if_changed(paths::UNIT_FILE, &render::systemd_unit(), 0o644)? {
        host::systemctl(&["daemon-reload"])?;
    }
    host::write_if_changed(paths::CONFIG_FILE, config, 0o644)?;
    Ok(())
}

/// Waits at most `budget` for the member at `endpoint` to answer with a Raft leader.
fn wait_healthy(etcd: &dyn Etcd, endpoint: &str, budget: Duration) -> Option<MemberStatus> {
    let deadline = Instant::now() + budget;
    loop {
        if let Ok(s) = etcd.status(endpoint) {
            if s.leader != 0 {
                return Some(s);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Restarts etcd with `config`: mark, write, restart (systemd returns once etcd is ready, i.e.
/// back in a quorum), clear the mark, then wait a bounded time for the member to know its Raft
/// leader. Not being healthy in time is no failure: the status says so and later hooks confirm.
fn restart(o: &Observed, juju: &dyn Juju, etcd: &dyn Etcd, config: &str) -> Result<(), ApplyError> {
    host::mark_restart_pending()?;
    write_files(o, config)?;
    juju.log(Level::Info, "restarting etcd with the new settings");
    let began = Instant::now();
    let restarted = host::restart_service(RESTART_WAIT);
    host::clear_restart_pending();
    if let Err(e) = &restarted {
        juju.log(Level::Warning, &format!("etcd is not back yet: {e}"));
    }
    let local = render::local_url(config).unwrap_or_else(|| local_url(o));
    match wait_healthy(etcd, &local, HEALTH_WAIT) {
        Some(s) => {
            host::record_member_id(s.member_id)?;
            if !s.version.is_empty() {
                juju.application_version_set(&s.version)?;
            }
            juju.log(
                Level::Info,
                &format!(
                    "restarted etcd: member {:x} healthy after {} ms",
                    s.member_id,
                    began.elapsed().as_millis()
                ),
            );
        }
        None => juju.log(
            Level::Warning,
            "restarted etcd: its member is not healthy yet, the next restart waits for it",
        ),
    }
    Ok(())
}

/// Leader: grants `unit` its restart once enough of the other voting members answer with a
/// Raft leader to keep a quorum while it restarts (all of them in a cluster of two), waiting for
/// that at most [`GRANT_BUDGET`] (a member just restarted may not be back yet). Returns the
/// status to show when it could not grant.
fn grant_restart(
    o: &Observed,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
    unit: &str,
) -> Result<Option<Status>, ApplyError> {
    let name = member_name(unit);
    let voters: Vec<&Member> = o
        .members
        .iter()
        .flatten()
        .filter(|m| !m.is_learner)
        .collect();
    let others: Vec<&&Member> = voters.iter().filter(|m| m.name != name).collect();
    let needed = (voters.len() / 2 + 1).min(others.len());
    let healthy = || {
        others
            .iter()
            .filter(|m| {
                m.client_urls.first().is_some_and(|ep| {
                    etcd.status(ep)
                        .is_ok_and(|s| s.leader != 0 && !s.is_learner)
                })
            })
            .count()
    };
    let deadline = Instant::now() + GRANT_BUDGET;
    let mut found = healthy();
    while found < needed && Instant::now() + PAUSE < deadline {
        std::thread::sleep(PAUSE);
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
    juju.leader_set(&restart_keys(unit))?;
    juju.log(
        Level::Info,
        &format!("granted {unit} its turn to restart etcd"),
    );
    Ok(None)
}

/// Starts etcd without blocking the hook, then waits a bounded time for it to answer and
/// records its member id.
fn start(o: &Observed, etcd: &dyn Etcd) -> Result<(), HostError> {
    host::systemctl(&["enable", paths::SERVICE])?;
    if !o.local.service_active {
        host::systemctl(&["start", "--no-block", paths::SERVICE])?;
        // It starts with the files as written: no restart is pending any more.
        host::clear_restart_pending();
    }
    // The URL of the config just written.
    let local = host::read(paths::CONFIG_FILE)
        .as_deref()
        .and_then(render::local_url)
        .unwrap_or_else(|| local_url(o));
    let deadline = Instant::now() + START_WAIT;
    while Instant::now() < deadline {
        if let Ok(s) = etcd.status(&local) {
            return host::record_member_id(s.member_id);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Moves Raft leadership away if asked, removes this member, and leaves a clear error when
/// etcd refuses because of quorum.
fn leave(
    o: &Observed,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
    id: u64,
    to: Option<u64>,
    local: &str,
) -> Result<(), ApplyError> {
    if let Some(to) = to {
        let moved = retry_not_yet(Duration::from_secs(10), PAUSE, || {
            etcd.move_leader(local, to)
        });
        match moved {
            Ok(()) => juju.log(Level::Info, &format!("moved Raft leadership to {to:x}")),
            Err(e) => juju.log(
                Level::Warning,
                &format!("cannot move Raft leadership first: {e}"),
            ),
        }
    }
    match retry_not_yet(REMOVE_BUDGET, PAUSE, || {
        etcd.member_remove(&o.endpoints, id)
    }) {
        Ok(()) | Err(EtcdError::MemberNotFound(_)) => {
            juju.log(
                Level::Info,
                &format!("removed this unit's member {id:x} from the cluster"),
            );
            host::forget_member_id();
            Ok(())
        }
        Err(e @ EtcdError::NotYet { .. }) => {
            let status = Status::CannotLeave(e.to_string());
            set_status(juju, &status)?;
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
fn cleanup() -> Result<(), HostError> {
    for f in [
        paths::UNIT_FILE,
        paths::CONFIG_FILE,
        paths::ETCDCTL_ENV,
        paths::ETCDCTL_WRAPPER,
        paths::ETCD_LINK,
        paths::ETCDUTL_LINK,
    ] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(paths::TLS_DIR);
    let _ = host::systemctl(&["daemon-reload"]);
    if host::has_member_data() {
        host::wipe_data_dir()?;
    }
    let _ = std::fs::remove_dir_all(paths::STATE_DIR);
    Ok(())
}
