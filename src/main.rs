//! Entry point: works out what Juju invoked (hook or action) and runs it.

use etcd_charm::core::facts;
use etcd_charm::etcd::client::EtcdApi;
use etcd_charm::juju::context::{Hook, Invocation, JujuContext, RelationEvent};
use etcd_charm::juju::hooktools::HookTools;
use etcd_charm::juju::{Juju, Level};
use etcd_charm::machine::host::Host;
use etcd_charm::machine::metrics;
use etcd_charm::{actions, reconcile, trace};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The facts exporter's service: `etcd-charm serve-facts <addr> <file>`.
    if let [_, mode, addr, file] = args.as_slice() {
        if mode == facts::SERVE_MODE {
            if let Err(e) = metrics::serve(addr, file) {
                eprintln!("error: cannot serve {file} on {addr}: {e}");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
    }
    let timings = trace::start(trace::wanted(std::env::var(trace::ENV).ok().as_deref()));
    let run_span = tracing::debug_span!("run").entered();
    let context = tracing::debug_span!("context").entered();
    let ctx = JujuContext::from_env();
    let argv0 = args.first().cloned().unwrap_or_default();
    let invocation = Invocation::detect(ctx.dispatch_path.as_deref(), &argv0);
    drop(context);
    let hook = match &invocation {
        Invocation::Hook(hook) => Some(hook.clone()),
        _ => None,
    };
    let update_status = matches!(&hook, Some(Hook::Other(h)) if h == "update-status");
    let broken =
        matches!(&hook, Some(Hook::Relation { event, .. }) if *event == RelationEvent::Broken);
    let juju = HookTools::default().reading_kept(update_status);
    let what = invocation_name(&invocation);
    let result = run(&ctx, invocation, &juju);
    // A failed hook keeps nothing: its retry, and the next update-status, ask Juju.
    if hook.is_some() {
        juju.keep_answers(broken || result.is_err());
    }
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            juju.log(Level::Error, &format!("{e:#}"));
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(run_span);
    timings.finish(&juju, &what);
    code
}

/// The hook or action's name, for the timings.
fn invocation_name(invocation: &Invocation) -> String {
    match invocation {
        Invocation::Hook(hook) => format!("hook {}", hook.name()),
        Invocation::Action(name) => format!("action {name}"),
        Invocation::Unknown(what) => what.clone(),
    }
}

fn run(ctx: &JujuContext, invocation: Invocation, juju: &HookTools) -> anyhow::Result<()> {
    match invocation {
        Invocation::Unknown(what) if what == etcd_charm::core::backup::DISPATCH => {
            let etcd = EtcdApi::new()?;
            if !actions::scheduled_backup(ctx, juju, &etcd) {
                anyhow::bail!("the scheduled backup failed: see the log above");
            }
        }
        Invocation::Unknown(what) => {
            juju.log(
                Level::Info,
                &format!("nothing to do for {what:?}: not a hook or an action"),
            );
        }
        Invocation::Hook(hook) => {
            let etcd = EtcdApi::new()?;
            let done = reconcile::reconcile(ctx, &hook, juju, &etcd, &Host);
            actions::request_store(ctx, &hook.name(), juju);
            // A failed hook may have written some files: the facts are brought up to date.
            facts_after_hook(ctx, &hook, juju, !matches!(done, Ok(false)));
            done?;
        }
        Invocation::Action(name) => {
            let etcd = EtcdApi::new()?;
            let results = actions::run(ctx, &name, juju, &etcd)?;
            let done = results.get("defragmented").unwrap_or_default();
            if name == "defrag" && !done.is_empty() {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                let now = now.map_or(0, |d| d.as_secs() as i64);
                if let Err(e) = metrics::after_defrag(&Host, juju, &ctx.member_name(), done, now) {
                    juju.log(
                        Level::Warning,
                        &format!("cannot record the defragmentation for the facts exporter: {e}"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// The facts exporter after a hook: its binary, unit and file brought up to date (a failure is
/// logged, never fails the hook: etcd does not depend on it); removed with the unit. Only when a
/// fact can have changed: the hook wrote a file they are read from (`wrote`), a peer announced a
/// defragmentation or verified backup, or the hook is one that (re)installs the exporter
/// (`config-changed` also runs when the unit's agent starts). The common `update-status` skips it.
fn facts_after_hook(ctx: &JujuContext, hook: &Hook, juju: &HookTools, wrote: bool) {
    let name = hook.name();
    if matches!(hook, Hook::Remove) {
        return metrics::remove(&Host);
    }
    if matches!(hook, Hook::Stop) {
        return;
    }
    let announced = metrics::take_announced(&Host, juju, ctx).unwrap_or_else(|e| {
        let msg = format!("cannot read a peer's defragmentation or verified backup: {e}");
        juju.log(Level::Warning, &msg);
        false
    });
    let check = matches!(name.as_str(), "install" | "upgrade-charm");
    let always = check || matches!(name.as_str(), "config-changed" | "start");
    if !(wrote || announced || always) {
        return;
    }
    let copied = metrics::install_binary(check).map_err(|e| e.to_string());
    let done = copied.and_then(|c| metrics::refresh(&Host, c).map_err(|e| e.to_string()));
    if let Err(e) = done {
        let msg = format!("the facts exporter (etcd-charm-metrics.service) is not up to date: {e}");
        juju.log(Level::Warning, &msg);
    }
}
