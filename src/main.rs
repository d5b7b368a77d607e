//! Entry point: works out what Juju invoked (hook or action) and runs it.

use etcd_charm::etcd::client::EtcdApi;
use etcd_charm::juju::context::{Invocation, JujuContext};
use etcd_charm::juju::hooktools::HookTools;
use etcd_charm::juju::{Juju, Level};
use etcd_charm::machine::host::Host;
use etcd_charm::{actions, reconcile, trace};
use std::process::ExitCode;

fn main() -> ExitCode {
    let timings = trace::start(trace::wanted(std::env::var(trace::ENV).ok().as_deref()));
    let run_span = tracing::debug_span!("run").entered();
    let context = tracing::debug_span!("context").entered();
    let ctx = JujuContext::from_env();
    let argv0 = std::env::args().next().unwrap_or_default();
    let invocation = Invocation::detect(ctx.dispatch_path.as_deref(), &argv0);
    drop(context);
    let juju = HookTools::default();
    let what = invocation_name(&invocation);
    let code = match run(&ctx, invocation, &juju) {
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
        Invocation::Unknown(what) => {
            juju.log(
                Level::Info,
                &format!("nothing to do for {what:?}: not a hook or an action"),
            );
        }
        Invocation::Hook(hook) => {
            let etcd = EtcdApi::new()?;
            reconcile::reconcile(ctx, &hook, juju, &etcd, &Host)?;
        }
        Invocation::Action(name) => {
            let etcd = EtcdApi::new()?;
            actions::run(ctx, &name, juju, &etcd)?;
        }
    }
    Ok(())
}
