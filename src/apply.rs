/*!
Carries out a [`Plan`], and runs the observe → plan → apply loop ([`reconcile`]) every hook
goes through.

Membership calls retry inside the hook with bounded back-off while etcd says "not yet" (the
~5 s `unhealthy cluster` window after a member starts, a learner not in sync); when the budget
runs out the pass stops and the status says what it waits for. Only real failures (a hook tool
failing, a file that cannot be written, a departing unit that cannot leave without breaking
quorum) fail the hook.
*/

use crate::context::{member_name, Hook, JujuContext};
use crate::etcd::{retry_not_yet, Etcd, EtcdError};
use crate::hooktools::{Juju, JujuError, Level};
use crate::host::{self, HostError};
use crate::install::{self, InstallError};
use crate::membership::{initial_cluster, joining_keys};
use crate::observe::{observe, Observed};
use crate::plan::{plan, Effect, Plan};
use crate::render::{self, url};
use crate::status::Status;
use crate::{paths, render::runtime_part};
use std::time::{Duration, Instant};

/// At most this many observe → plan → apply passes per hook.
const MAX_PASSES: usize = 5;
/// How long a start waits for the local member to answer.
const START_WAIT: Duration = Duration::from_secs(15);
/// Retry budgets for "not yet" answers.
const ADD_BUDGET: Duration = Duration::from_secs(25);
const PROMOTE_BUDGET: Duration = Duration::from_secs(30);
const REMOVE_BUDGET: Duration = Duration::from_secs(20);
const PAUSE: Duration = Duration::from_secs(1);

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

/// Runs the observe → plan → apply loop for one hook and sets the unit's status.
pub fn reconcile(
    ctx: &JujuContext,
    hook: &Hook,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
) -> Result<(), ApplyError> {
    let mut status = Status::Starting;
    // Install, version and port effects are done once per hook, whatever the passes plan.
    let once = |e: &Effect| {
        matches!(
            e,
            Effect::Install | Effect::SetVersion(_) | Effect::OpenPort(_)
        )
    };
    let mut done: Vec<Effect> = Vec::new();
    for _ in 0..MAX_PASSES {
        let o = observe(ctx, hook, juju, etcd)?;
        let mut p = plan(&o);
        p.effects.retain(|e| !(once(e) && done.contains(e)));
        done.extend(p.effects.iter().filter(|e| once(e)).cloned());
        juju.log(
            Level::Debug,
            &format!("plan: [{}] → {:?}", brief(&p.effects), p.status),
        );
        let outcome = apply(&p, &o, juju, etcd)?;
        status = outcome.status.unwrap_or(p.status);
        if !(p.again && outcome.progressed) {
            break;
        }
    }
    juju.status_set(status.state(), &status.message())?;
    Ok(())
}

/// The effects for the debug log, rendered files shortened.
fn brief(effects: &[Effect]) -> String {
    let one = |e: &Effect| match e {
        Effect::Render(c) => format!("Render({} bytes)", c.len()),
        other => format!("{other:?}"),
    };
    effects.iter().map(one).collect::<Vec<_>>().join(", ")
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
    let port = o.config.as_ref().map_or(2379, |c| c.port);
    for effect in &p.effects {
        match effect {
            Effect::Install => match install::install(juju) {
                Ok(v) => {
                    juju.application_version_set(&v)?;
                    if o.local.version.as_ref().is_some_and(|old| *old != v)
                        && o.local.service_active
                    {
                        host::systemctl(&["restart", "--no-block", paths::SERVICE])?;
                    }
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
            Effect::Render(config) => write_files(o, config, port)?,
            Effect::Start => start(o, etcd, port)?,
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
            Effect::Leave { id, transfer_to } => leave(o, juju, etcd, *id, *transfer_to, port)?,
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
    Ok(out)
}

/// Logs a membership step that could not be done now; returns `false` (no progress).
fn not_yet(juju: &dyn Juju, what: &str, e: EtcdError) -> bool {
    juju.log(
        Level::Warning,
        &format!("cannot {what} now, will retry on a later hook: {e}"),
    );
    false
}

/// Writes the unit, wrapper, env file and config; restarts a running etcd only when something
/// it reads changed.
fn write_files(o: &Observed, config: &str, port: u16) -> Result<(), HostError> {
    host::ensure_user_and_dirs()?;
    host::write_if_changed(paths::ETCDCTL_ENV, &render::etcdctl_env(port), 0o644)?;
    host::write_if_changed(
        paths::ETCDCTL_WRAPPER,
        &render::etcdctl_wrapper(&o.local.etcdctl),
        0o755,
    )?;
    let unit_changed = host::write_if_changed(paths::UNIT_FILE, &render::systemd_unit(), 0o644)?;
    if unit_changed {
        host::systemctl(&["daemon-reload"])?;
    }
    host::write_if_changed(paths::CONFIG_FILE, config, 0o644)?;
    let old = o.local.rendered_config.as_deref().map(runtime_part);
    let config_changed = old.is_some_and(|old| old != runtime_part(config));
    if o.local.service_active && (unit_changed || config_changed) {
        host::systemctl(&["restart", "--no-block", paths::SERVICE])?;
    }
    Ok(())
}

/// Starts etcd without blocking the hook, then waits a bounded time for it to answer and
/// records its member id.
fn start(o: &Observed, etcd: &dyn Etcd, port: u16) -> Result<(), HostError> {
    host::systemctl(&["enable", paths::SERVICE])?;
    if !o.local.service_active {
        host::systemctl(&["start", "--no-block", paths::SERVICE])?;
    }
    let deadline = Instant::now() + START_WAIT;
    while Instant::now() < deadline {
        if let Ok(s) = etcd.status(&url("127.0.0.1", port)) {
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
    port: u16,
) -> Result<(), ApplyError> {
    if let Some(to) = to {
        let moved = retry_not_yet(Duration::from_secs(10), PAUSE, || {
            etcd.move_leader(&url("127.0.0.1", port), to)
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
            juju.status_set(status.state(), &status.message())?;
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
    let _ = host::systemctl(&["daemon-reload"]);
    if host::has_member_data() {
        host::wipe_data_dir()?;
    }
    let _ = std::fs::remove_dir_all(paths::STATE_DIR);
    Ok(())
}
