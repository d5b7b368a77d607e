//! The machine layer of the sandbox: the cached rootfs, the network namespaces and the
//! `systemd-nspawn --boot` machines.
//!
//! - [`rootfs`]: one debootstrapped Debian per recipe, cached and shared read-only.
//! - [`net`]: a switch namespace with bridge `br0` per sandbox, one namespace per machine.
//! - [`archive`]: the local apt repository machines install packages from, cached per content.
//! - [`nspawn`]: booting, entering, power-cycling, partitioning and destroying machines.
//!
//! **Architecture invariant:** nothing here touches the host's own network namespace (no
//! address, route, link or NAT rule, ever); machines reach only each other. Everything is
//! synchronous (std threads and child processes) and is found again from plain persisted data
//! ([`Machine`] is serializable), so the process that booted a machine may die and be restarted
//! while the machine keeps running.
//!
//! On-disk layout of one machine (`MachineSpec::dir`): `upper/` and `work/` (the overlay's
//! writable layer, kept across reboots), `root/` (the overlay mount point), `lower` (the rootfs
//! the upper layer belongs to) and `console.log`.

pub mod archive;
mod cgroup;
mod host;
pub mod net;
pub mod nspawn;
pub mod rootfs;
pub mod sys;

pub use net::{Lab, MAX_MACHINE_ID};
pub use nspawn::{destroy_machine, sweep, ExecOutput, Machine, MachineSpec};
pub use rootfs::{cache_root, ensure_rootfs, RootfsRecipe};

#[cfg(test)]
mod tests;
