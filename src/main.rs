//! Entry point: works out what Juju invoked (hook or action) and runs it.

use etcd_charm::etcd::client::EtcdApi;
use etcd_charm::juju::context::{Invocation, JujuContext};
use etcd_charm::juju::hooktools::HookTools;
use etcd_charm::juju::{Juju, Level};
use etcd_charm::machine::host::Host;
use etcd_charm::{actions, reconcile};
use std::process::ExitCode;

fn main() -> ExitCode {
    let ctx = JujuContext::from_env();
    let argv0 = std::env::args().next().unwrap_or_default();
    let invocation = Invocation::detect(ctx.dispatch_path.as_deref(), &argv0);
    let juju = HookTools;
    match run(&ctx, invocation, &juju) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            juju.log(Level::Error, &format!("{e:#}"));
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
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
            reconcile::reconcile(ctx, &hook, juju, &etcd, &Host)?;
        }
        Invocation::Action(name) => {
            let etcd = EtcdApi::new()?;
            actions::run(ctx, &name, juju, &etcd)?;
        }
    }
    Ok(())
}
