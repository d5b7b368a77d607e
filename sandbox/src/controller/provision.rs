//! Machines for units: booting one per unit, installing the hook tools and the charm, and
//! tearing machines down again.

use super::lifecycle::agent;
use super::model::MachineState;
use super::{lab, machine_dir, runner, Shared, State, MACHINE_RUN_DIR};
use crate::machine::{archive, Lab, Machine, MachineSpec};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

fn hosts(st: &State) -> Vec<(Ipv4Addr, String)> {
    st.model
        .machines
        .values()
        .filter_map(|m| m.address.parse().ok().map(|a| (a, m.hostname.clone())))
        .collect()
}

/// The lab and boot spec of `unit`'s machine, with the package archive `archive` bound in
/// (computed under the lock; [`prepare_boot`] then makes its dirs without it).
fn boot_spec(
    sh: &Shared,
    st: &State,
    unit: &str,
    archive: Option<PathBuf>,
) -> anyhow::Result<(Lab, MachineSpec)> {
    let u = st
        .model
        .units
        .get(unit)
        .ok_or_else(|| anyhow::anyhow!("unit is gone"))?;
    let m = &st.model.machines[&u.machine];
    let mut spec = MachineSpec {
        id: m.id,
        hostname: m.hostname.clone(),
        dir: machine_dir(sh, m.id),
        hosts: hosts(st),
        binds: vec![(
            super::tool_socket_dir(&sh.home, m.id),
            MACHINE_RUN_DIR.to_string(),
        )],
        ro_binds: archive
            .into_iter()
            .map(|dir| (dir, archive::MOUNT.to_string()))
            .collect(),
        // A moved machine keeps its address across power cycles.
        address: m
            .address
            .parse()
            .ok()
            .filter(|a| *a != lab(st).address(m.id)),
    };
    for (dir, at, ro) in super::storage::volumes::boot_binds(&sh.home, &st.model, unit) {
        let binds = if ro {
            &mut spec.ro_binds
        } else {
            &mut spec.binds
        };
        binds.push((dir, at));
    }
    Ok((lab(st), spec))
}

/// Before a boot, without the lock: the machine's state dir and its storage dirs (owner-only),
/// and its tool socket served.
fn prepare_boot(sh: &Arc<Shared>, spec: &MachineSpec) -> anyhow::Result<()> {
    super::private::dir(&spec.dir)?;
    let storage = sh.home.join("storage");
    for (dir, _) in spec.binds.iter().chain(&spec.ro_binds) {
        if dir.starts_with(&storage) {
            super::private::dir(dir)?;
        }
    }
    super::serve_tool_socket(sh, spec.id)
}

/// The package archive machines install from, built on the first call of this process (see
/// [`archive`]); `None`, logged once, when the host's apt cannot make it: machines then have no
/// apt source, and the rest of the sandbox works.
fn package_archive(sh: &Shared) -> Option<PathBuf> {
    static ARCHIVE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let mut progress = |l: &str| sh.log_line("controller", "INFO", l);
            archive::ensure_archive(&sh.rootfs, archive::PACKAGES, &mut progress)
                .map_err(|e| {
                    sh.log_line(
                        "controller",
                        "WARNING",
                        &format!(
                            "machines get no package archive, apt-get install fails in them: {e:#}"
                        ),
                    )
                })
                .ok()
        })
        .clone()
}

/// Points the machine's apt at the package archive only.
fn configure_apt(handle: &Machine, has_archive: bool) -> anyhow::Result<()> {
    for (path, text) in archive::sources(has_archive) {
        handle.write_file(path, text.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Boots the machine of `unit` in the background and makes the unit ready to run hooks.
pub fn provision(sh: &Arc<Shared>, unit: &str) {
    let sh = sh.clone();
    let unit = unit.to_string();
    std::thread::spawn(move || {
        if let Err(e) = provision_now(&sh, &unit) {
            sh.log_line(
                "controller",
                "ERROR",
                &format!("cannot provision the machine of {unit}: {e:#}"),
            );
            let mut st = sh.lock();
            let message = format!("{}: {e:#}", super::PROVISION_FAILED);
            agent::provision_failed(&mut st.model, &unit, message);
            sh.commit(&st);
        }
    });
}

fn provision_now(sh: &Arc<Shared>, unit: &str) -> anyhow::Result<()> {
    // Before the lock: the first call may take a while.
    let archive = package_archive(sh);
    let (lab, spec, charm_dir) = {
        let st = sh.lock();
        let (lab, spec) = boot_spec(sh, &st, unit, archive)?;
        let app = super::model::app_of(unit);
        (lab, spec, st.model.apps[app].charm_dir.clone())
    };
    prepare_boot(sh, &spec)?;
    lab.ensure_switch()?;
    sh.log_line(
        "controller",
        "INFO",
        &format!("starting machine {} for {unit}", spec.id),
    );
    let handle = boot_retrying(sh, &lab, &spec, unit, |handle| {
        let mut st = sh.lock();
        agent::machine_booted(&mut st.model, spec.id, handle.clone());
        sh.commit(&st);
    })?;
    configure_apt(&handle, spec.ro_binds.iter().any(|b| b.1 == archive::MOUNT))?;
    super::install::install_unit_files(&handle, unit, &charm_dir)?;
    let mac = handle.run(
        &["cat", "/sys/class/net/eth0/address"],
        Duration::from_secs(10),
    )?;
    // Every running machine, this one too, learns every name before this unit's first hook.
    let (text, machines) = hosts_file(&sh.lock(), &handle);
    for h in machines {
        let _ = h.write_file("/etc/hosts", text.as_bytes(), 0o644);
    }
    let mut st = sh.lock();
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
    agent::machine_started(&mut st.model, spec.id, unit, mac, super::model::now());
    runner::ensure_worker(sh, &mut st, unit);
    sh.log_line(
        "controller",
        "INFO",
        &format!("machine {} is running for {unit}", spec.id),
    );
    sh.commit(&st);
    Ok(())
}

/// The /etc/hosts that makes every machine name resolve, and the machines to write it into:
/// every running one and `new` (by the caller, once the lock is released).
pub(super) fn hosts_file(st: &State, new: &Machine) -> (String, Vec<Machine>) {
    let mut text = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
    for (a, h) in hosts(st) {
        text.push_str(&format!("{a} {h}\n"));
    }
    let mut machines: Vec<Machine> = st
        .model
        .machines
        .values()
        .filter(|m| m.state == MachineState::Started && m.id != new.id)
        .filter_map(|m| m.handle.clone())
        .collect();
    machines.push(new.clone());
    (text, machines)
}

/// Boots the (existing) machine of `unit` again, keeping its disk, in the background.
pub fn reboot(sh: &Arc<Shared>, unit: &str) {
    let sh = sh.clone();
    let unit = unit.to_string();
    std::thread::spawn(move || {
        let r = (|| -> anyhow::Result<()> {
            let archive = package_archive(&sh);
            let (lab, spec) = boot_spec(&sh, &sh.lock(), &unit, archive)?;
            prepare_boot(&sh, &spec)?;
            let handle = boot_retrying(&sh, &lab, &spec, &unit, |_| {})?;
            let mut st = sh.lock();
            agent::machine_rebooted(&mut st.model, spec.id, &unit, handle, super::model::now());
            runner::ensure_worker(&sh, &mut st, &unit);
            // Its lost subordinate units resume.
            for sub in agent::subordinates_back(&mut st.model, spec.id, super::model::now()) {
                runner::ensure_worker(&sh, &mut st, &sub);
            }
            sh.commit(&st);
            Ok(())
        })();
        if let Err(e) = r {
            sh.log_line(
                "controller",
                "ERROR",
                &format!("cannot restart the machine of {unit}: {e:#}"),
            );
        }
    });
}

/// Boots a machine, up to [`BOOT_ATTEMPTS`] times, as Juju's provisioner retries a failed
/// start: a host under load can fail one boot (each failure is logged). `started` sees each
/// machine whose nspawn runs, before its boot is waited for.
fn boot_retrying(
    sh: &Arc<Shared>,
    lab: &Lab,
    spec: &MachineSpec,
    unit: &str,
    started: impl Fn(&Machine),
) -> anyhow::Result<Machine> {
    let mut attempt = 1;
    loop {
        let booted = Machine::boot(lab, spec, &sh.rootfs).and_then(|m| {
            started(&m);
            m.wait_running(Duration::from_secs(120)).map(|()| m)
        });
        match booted {
            Ok(m) => return Ok(m),
            Err(e) if attempt < BOOT_ATTEMPTS => {
                let msg = format!(
                    "the machine of {unit} did not boot (attempt {attempt}), trying again: {e:#}"
                );
                sh.log_line("controller", "WARNING", &msg);
                std::thread::sleep(Duration::from_secs(2));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How many boots a machine is given.
const BOOT_ATTEMPTS: u32 = 3;

/// After a controller restart: re-attach to running machines, re-provision pending ones and
/// re-run hooks that were interrupted.
pub fn resume(sh: &Arc<Shared>) {
    let (lab, sockets, handles) = {
        let st = sh.lock();
        let sockets: Vec<u32> = st
            .model
            .machines
            .values()
            .filter(|m| m.state != MachineState::Pending)
            .map(|m| m.id)
            .collect();
        let handles: Vec<(u32, Machine)> = (st.model.machines.values())
            .filter_map(|m| Some((m.id, m.handle.clone()?)))
            .collect();
        (lab(&st), sockets, handles)
    };
    // Without the lock, before any hook runs: the network, the tool sockets, which machines
    // still run.
    let _ = lab.ensure_switch();
    let alive: std::collections::BTreeSet<u32> = handles
        .into_iter()
        .filter(|(_, h)| h.is_alive())
        .map(|(id, _)| id)
        .collect();
    for mid in sockets {
        if let Err(e) = super::serve_tool_socket(sh, mid) {
            sh.log_line(
                "controller",
                "ERROR",
                &format!("cannot serve the tool socket of machine {mid}: {e:#}"),
            );
        }
    }
    let mut st = sh.lock();
    let units: Vec<(String, u32)> = st
        .model
        .units
        .values()
        .map(|u| (u.name.clone(), u.machine))
        .collect();
    for (unit, mid) in units {
        // A unit whose machine record is gone counts as down.
        let state = st
            .model
            .machines
            .get(&mid)
            .map_or(MachineState::Down, |m| m.state);
        let alive = alive.contains(&mid);
        agent::resumed(&mut st.model, &unit, mid, state, alive);
        match (state, alive) {
            (MachineState::Started, true) => {
                runner::ensure_worker(sh, &mut st, &unit);
                super::storage::volumes::bind_new(sh, &st, &unit);
            }
            (MachineState::Pending, _) => provision(sh, &unit),
            _ => {}
        }
    }
    runner::deploy_subordinates(sh, &mut st);
    sh.commit(&st);
}
