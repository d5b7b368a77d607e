//! Putting a unit's hook tools and charm onto its machine (the host's side of Juju's deployer).

use super::model::unit_tag;
use crate::machine::Machine;
use anyhow::Context;
use std::time::Duration;

/// Installs the hook tools and the charm for `unit` into its machine.
pub fn install_unit_files(
    handle: &Machine,
    unit: &str,
    charm_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let tag = unit_tag(unit);
    let tools = format!("/var/lib/juju/tools/{tag}");
    let exe = tool_binary()?;
    handle.write_file(&format!("{tools}/jujuc"), &exe, 0o755)?;
    let links: Vec<String> = crate::tools::installed_tool_names()
        .iter()
        .map(|t| format!("ln -sf jujuc {t}"))
        .collect();
    // The machine's `juju-exec` (2.9: `juju-run`): the first unit's binary, as jujud is one.
    let runner = format!("/usr/bin/{}", crate::tools::juju_exec::installed_name());
    let script = format!(
        "cd {tools} && {} && {{ [ -e {runner} ] || ln -s {tools}/jujuc {runner}; }}",
        links.join(" && ")
    );
    let out = handle.run(&["sh", "-c", &script], Duration::from_secs(30))?;
    anyhow::ensure!(
        out.status == 0,
        "cannot link the hook tools: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    install_charm(handle, unit, charm_dir)
}

/// The hook tools' binary: `jujuc`, built beside this one (the tool client alone, quick to
/// start), else this binary itself, which serves as every tool too (`/proc/self/exe` still
/// reads when a rebuild has replaced the file).
fn tool_binary() -> anyhow::Result<Vec<u8>> {
    let beside = std::env::current_exe().map(|e| e.with_file_name("jujuc"));
    if let Ok(bytes) = beside.and_then(std::fs::read) {
        return Ok(bytes);
    }
    std::fs::read("/proc/self/exe")
        .context("cannot read the controller's own binary to install the hook tools")
}

/// Copies (or replaces) the charm of `unit` in its machine.
pub fn install_charm(
    handle: &Machine,
    unit: &str,
    charm_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let dest = format!("/var/lib/juju/agents/{}/charm", unit_tag(unit));
    handle.run(&["rm", "-rf", &dest], Duration::from_secs(30))?;
    handle.copy_private_dir_in(charm_dir, &dest)
}
