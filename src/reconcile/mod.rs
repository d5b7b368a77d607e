/*!
The reconcile path every hook goes through: [`observe()`] reads the facts, the pure core
([`crate::core::plan`]) decides, [`apply()`] carries the plan out; [`reconcile`] loops over
passes until nothing more can be done in this hook.
*/

pub mod apply;
mod ca_rotation;
pub mod observe;
#[cfg(test)]
mod tests;

use crate::core::effect::Effect;
use crate::core::observed::Goal;
use crate::core::plan::plan;
use crate::core::status::Status;
use crate::etcd::Etcd;
use crate::juju::context::{Hook, JujuContext};
use crate::juju::{Juju, JujuError, Level};
use crate::machine::{state, Machine};
use apply::{apply, ApplyError};
use observe::observe;

/// At most this many observe → plan → apply passes per hook.
const MAX_PASSES: usize = 5;

/// Runs the observe → plan → apply loop for one hook and sets the unit's status. Returns
/// whether it wrote a file the facts exporter reads (etcd's config, the TLS files, the backup
/// timer).
pub fn reconcile(
    ctx: &JujuContext,
    hook: &Hook,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
    machine: &dyn Machine,
) -> Result<bool, ApplyError> {
    let mut status = Status::Starting;
    let mut facts_inputs = false;
    // Install, version and port effects are done once per hook, whatever the passes plan.
    let once = |e: &Effect| {
        matches!(
            e,
            Effect::Install | Effect::SetVersion(_) | Effect::OpenPorts(_)
        )
    };
    let mut done: Vec<Effect> = Vec::new();
    let mut period = None;
    let mut staying = true;
    for _ in 0..MAX_PASSES {
        let mut o = {
            let _span = tracing::debug_span!("observe").entered();
            observe(ctx, hook, juju, etcd, machine)?
        };
        period = o.config.as_ref().ok().and_then(|c| c.backup_period);
        staying = !o.departing && !matches!(o.hook, Hook::Stop | Hook::Remove);
        let planned = tracing::debug_span!("plan").entered();
        let mut p = plan(&o);
        // A member is removed only once goal-state has been asked whether its unit is still
        // to come (not yet in the relation): that pass is planned again with the answer.
        let removes = p.effects.iter().any(|e| matches!(e, Effect::Remove { .. }));
        if o.goal == Goal::Unread && removes {
            o.goal = observe::goal(juju);
            p = plan(&o);
        }
        // The CA keys' secret is read only for a plan that signs with them; it is planned
        // again with what the secret holds (or that it is gone).
        if o.secrets.ca_keys_unread && p.effects.iter().any(Effect::needs_ca_keys) {
            observe::read_ca_keys(juju, &o.leader_data, &mut o.secrets);
            p = plan(&o);
        }
        drop(planned);
        p.effects.retain(|e| !(once(e) && done.contains(e)));
        done.extend(p.effects.iter().filter(|e| once(e)).cloned());
        // A pass with nothing to do (the common update-status) logs nothing, nor one that only
        // sets the version and port again (every config-changed).
        let bookkeeping = |e: &Effect| matches!(e, Effect::SetVersion(_) | Effect::OpenPorts(_));
        if !p.effects.iter().all(bookkeeping) {
            juju.log(
                Level::Debug,
                &format!("plan: [{}] → {:?}", brief(&p.effects), p.status),
            );
        }
        let outcome = {
            let _span = tracing::debug_span!("apply").entered();
            apply(&p, &o, juju, etcd, machine)?
        };
        facts_inputs |= p.effects.iter().any(|e| {
            matches!(
                e,
                Effect::Render(_) | Effect::Restart(_) | Effect::TlsFiles { .. }
            )
        });
        status = outcome.status.unwrap_or(p.status);
        if !(p.again && outcome.progressed) {
            break;
        }
    }
    facts_inputs |= backup_timer(ctx, juju, machine, period, staying);
    let _span = tracing::debug_span!("status").entered();
    set_status(juju, machine, &status, ctx.app_name())?;
    Ok(facts_inputs)
}

/// The scheduled backups' timer, in line with the schedule and the `s3-credentials` relation
/// (asked about only while a schedule is set). A failure is logged, never the hook's. Returns
/// whether the timer changed.
fn backup_timer(
    ctx: &JujuContext,
    juju: &dyn Juju,
    machine: &dyn Machine,
    period: Option<u64>,
    staying: bool,
) -> bool {
    let related = period.is_some()
        && juju
            .relation_ids(crate::core::backup::RELATION)
            .is_ok_and(|ids| !ids.is_empty());
    let unit = &ctx.unit_name;
    match crate::machine::backup::sync_timer(machine, unit, period, related, staying) {
        Ok(true) => {
            juju.log(Level::Info, "scheduled backups: timer updated");
            true
        }
        Ok(false) => false,
        Err(e) => {
            juju.log(Level::Warning, &format!("scheduled backups: {e}"));
            true
        }
    }
}

/// `status-set`, skipped when the status is the one this charm set last (the common
/// update-status): only the charm sets its workload status.
pub(crate) fn set_status(
    juju: &dyn Juju,
    machine: &dyn Machine,
    status: &Status,
    app: &str,
) -> Result<(), JujuError> {
    let message = status.message_for(app);
    let line = format!("{}\n{message}", status.state());
    if state::last_status(machine).as_deref() == Some(line.as_str()) {
        return Ok(());
    }
    state::forget_status(machine);
    juju.status_set(status.state(), &message)?;
    state::record_status(machine, &line);
    Ok(())
}

/// The effects for the debug log, rendered files shortened.
fn brief(effects: &[Effect]) -> String {
    let one = |e: &Effect| match e {
        Effect::Render(c) => format!("Render({} bytes)", c.len()),
        Effect::Restart(c) => format!("Restart({} bytes)", c.len()),
        // Client data may hold a private key: keys only.
        Effect::RelationSet(rel, s) => {
            let keys: Vec<&str> = s.keys().map(String::as_str).collect();
            format!("RelationSet({rel}, [{}])", keys.join(", "))
        }
        other => format!("{other:?}"),
    };
    effects.iter().map(one).collect::<Vec<_>>().join(", ")
}
