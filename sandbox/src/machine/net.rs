//! The sandbox network: a "switch" namespace holding bridge `br0`, and one namespace per machine
//! joined to it by a veth pair.
//!
//! **Invariant:** nothing here adds an address, route, link or NAT rule to the host's own network
//! namespace. Every `ip` command names a namespace of ours (`ip -n NS …`), veth pairs are created
//! inside the switch namespace with their peer sent straight into the machine namespace, and the
//! subnet exists only inside those namespaces, so nothing leaves the host.

use super::host::{run, run_ok};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// Highest machine number a lab can address (`subnet.(10 + id)` must stay below `.255`).
pub const MAX_MACHINE_ID: u32 = 244;

/// Longest lab prefix: keeps `<prefix>v<id>` within Linux's 15-character interface names.
pub const MAX_PREFIX_LEN: usize = 8;

/// The network of one sandbox: a switch namespace with bridge br0, and a /24 subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lab {
    /// Name prefix of every namespace and interface of this sandbox, e.g. `sbx3f2a` (<= 8 chars).
    pub prefix: String,
    /// The first three octets of the /24 the machines live on, e.g. `[10, 213, 7]`.
    pub subnet: [u8; 3],
}

impl Lab {
    /// Checks the prefix is short, lowercase alphanumeric and starts with a letter.
    pub fn validate(&self) -> anyhow::Result<()> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > MAX_PREFIX_LEN
            || !p.starts_with(|c: char| c.is_ascii_lowercase())
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            bail!(
                "bad sandbox prefix {p:?}: use 1 to {MAX_PREFIX_LEN} lowercase letters or digits, starting with a letter"
            );
        }
        Ok(())
    }

    /// The switch namespace: `<prefix>-sw`.
    pub fn switch_ns(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    /// The namespace of machine `id`: `<prefix>-m<id>`.
    pub fn machine_ns(&self, id: u32) -> String {
        format!("{}-m{id}", self.prefix)
    }

    /// The switch-side end of machine `id`'s veth: `<prefix>v<id>` (at most 15 characters).
    pub fn veth(&self, id: u32) -> String {
        format!("{}v{id}", self.prefix)
    }

    /// The address of machine `id`: `subnet.(10 + id)`; ids above [`MAX_MACHINE_ID`] are clamped
    /// (and refused by [`super::Machine::boot`]).
    pub fn address(&self, machine: u32) -> Ipv4Addr {
        let last = 10 + machine.min(MAX_MACHINE_ID);
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], last as u8)
    }

    /// A stable, locally administered MAC for machine `id`'s eth0 (`0a:58:` + its address).
    pub fn mac(&self, machine: u32) -> String {
        let o = self.address(machine).octets();
        format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    }

    /// Creates the switch namespace with `br0` and `lo` up; idempotent.
    pub fn ensure_switch(&self) -> anyhow::Result<()> {
        self.validate()?;
        let sw = self.switch_ns();
        ensure_netns(&sw)?;
        if !link_exists(&sw, "br0") {
            // Another thread may be creating it too: only its absence afterwards is an error.
            if let Err(e) = ip(&sw, &["link", "add", "br0", "type", "bridge"]) {
                if !link_exists(&sw, "br0") {
                    return Err(e);
                }
            }
        }
        ip(&sw, &["link", "set", "br0", "up"])?;
        ip(&sw, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Deletes the switch namespace (and with it every veth pair plugged into it); idempotent.
    pub fn destroy(&self) -> anyhow::Result<()> {
        self.validate()?;
        delete_netns(&self.switch_ns())
    }

    /// Creates machine `id`'s namespace and its veth to the switch, with `address` (its own
    /// after a `change-address`, else [`Lab::address`]) the only one on `eth0`, and `lo` up;
    /// idempotent. An existing link keeps its up/down state (a partition survives a power
    /// cycle, as a pulled cable would).
    pub(crate) fn ensure_machine_net(&self, id: u32, address: Ipv4Addr) -> anyhow::Result<()> {
        if id > MAX_MACHINE_ID {
            bail!("machine number {id} is too high: a sandbox addresses machines 0 to {MAX_MACHINE_ID}");
        }
        self.ensure_switch()?;
        let (sw, mn, vh) = (self.switch_ns(), self.machine_ns(id), self.veth(id));
        ensure_netns(&mn)?;
        if !(link_exists(&mn, "eth0") && link_exists(&sw, &vh)) {
            // A half pair (one namespace recreated): start the pair over.
            let _ = run_ok(Command::new("ip").args(["-n", &sw, "link", "del", &vh]));
            let _ = run_ok(Command::new("ip").args(["-n", &mn, "link", "del", "eth0"]));
            ip(
                &sw,
                &[
                    "link", "add", &vh, "type", "veth", "peer", "name", "eth0", "netns", &mn,
                ],
            )?;
            ip(&mn, &["link", "set", "eth0", "address", &self.mac(id)])?;
            ip(&sw, &["link", "set", &vh, "master", "br0"])?;
            ip(&sw, &["link", "set", &vh, "up"])?;
        }
        let want = format!("{address}/24");
        self.drop_other_addresses(id, &want)?;
        ip(&mn, &["addr", "replace", &want, "dev", "eth0"])?;
        ip(&mn, &["link", "set", "eth0", "up"])?;
        ip(&mn, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Moves machine `id`'s `eth0` to `address` (same /24, inside its own namespace only): the
    /// old address goes first (Linux deletes the secondary addresses of a subnet with its
    /// primary, so adding the new one first would lose it too), then the new one is added.
    pub(crate) fn move_machine_address(&self, id: u32, address: Ipv4Addr) -> anyhow::Result<()> {
        if !self.subnet_has(address) {
            bail!("{address} is not on this sandbox's subnet");
        }
        let want = format!("{address}/24");
        self.drop_other_addresses(id, &want)?;
        ip(
            &self.machine_ns(id),
            &["addr", "replace", &want, "dev", "eth0"],
        )?;
        Ok(())
    }

    fn subnet_has(&self, a: Ipv4Addr) -> bool {
        a.octets()[..3] == self.subnet
    }

    /// Deletes every IPv4 address of machine `id`'s `eth0` but `keep` (`a.b.c.d/24`).
    fn drop_other_addresses(&self, id: u32, keep: &str) -> anyhow::Result<()> {
        let mn = self.machine_ns(id);
        let out = ip(&mn, &["-o", "-4", "addr", "show", "dev", "eth0"])?;
        // `2: eth0    inet 10.1.2.11/24 brd … scope global eth0` → the word after `inet`.
        for line in out.lines() {
            let mut words = line.split_whitespace().skip_while(|w| *w != "inet").skip(1);
            if let Some(a) = words.next().filter(|a| *a != keep) {
                ip(&mn, &["addr", "del", a, "dev", "eth0"])?;
            }
        }
        Ok(())
    }

    /// Removes machine `id`'s namespace and its switch-side veth; idempotent.
    pub(crate) fn remove_machine_net(&self, id: u32) -> anyhow::Result<()> {
        let (sw, vh) = (self.switch_ns(), self.veth(id));
        if link_exists(&sw, &vh) {
            ip(&sw, &["link", "del", &vh])?;
        }
        delete_netns(&self.machine_ns(id))
    }

    /// Sets the switch-side end of machine `id`'s veth up or down.
    pub(crate) fn set_port(&self, id: u32, up: bool) -> anyhow::Result<()> {
        let (sw, vh) = (self.switch_ns(), self.veth(id));
        if !link_exists(&sw, &vh) {
            bail!("machine {id} has no port on switch {sw}: boot it first");
        }
        ip(&sw, &["link", "set", &vh, if up { "up" } else { "down" }])?;
        Ok(())
    }
}

/// Adds a blackhole route to each peer inside namespace `ns`.
pub(crate) fn blackhole(ns: &str, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
    for p in peers {
        ip(ns, &["route", "replace", "blackhole", &format!("{p}/32")])?;
    }
    Ok(())
}

/// Removes every blackhole route inside namespace `ns`.
pub(crate) fn clear_blackholes(ns: &str) -> anyhow::Result<()> {
    let out = ip(ns, &["-o", "route", "show", "type", "blackhole"])?;
    for line in out.lines() {
        // `blackhole 10.1.2.3 ` → the destination is the second word.
        if let Some(dst) = line.split_whitespace().nth(1) {
            ip(ns, &["route", "del", "blackhole", dst])?;
        }
    }
    Ok(())
}

/// Runs `ip -n NS ARGS…` and returns its stdout.
pub(crate) fn ip(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

/// Whether network namespace `name` exists (as `/run/netns/<name>`).
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Every named network namespace.
pub fn netns_list() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/run/netns") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

fn ensure_netns(name: &str) -> anyhow::Result<()> {
    if !netns_exists(name) {
        if let Err(e) = run(Command::new("ip").args(["netns", "add", name])) {
            // Lost a race with another thread creating the same namespace: fine.
            if !netns_exists(name) {
                return Err(e.context(format!(
                    "cannot create network namespace {name}: are you root?"
                )));
            }
        }
    }
    Ok(())
}

/// Deletes network namespace `name` if it exists.
pub(crate) fn delete_netns(name: &str) -> anyhow::Result<()> {
    if netns_exists(name) {
        run(Command::new("ip").args(["netns", "del", name])).with_context(|| {
            format!("cannot delete network namespace {name}; try `ip netns del {name}`")
        })?;
    }
    Ok(())
}

fn link_exists(ns: &str, link: &str) -> bool {
    netns_exists(ns) && run_ok(Command::new("ip").args(["-n", ns, "link", "show", "dev", link]))
}
