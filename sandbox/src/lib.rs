//! The sandbox: a local Juju-like model whose machines are real systemd-nspawn containers.
//!
//! # Layout
//! - [`machine`]: the cached rootfs, the network namespaces and the nspawn machines.
//! - [`tools`]: Juju's hook tools, parsed and formatted as Juju does, and their client.
//! - [`controller`]: the long-running process that owns the model and runs hooks.
//! - [`secrets`]: Juju's charm secrets as pure changes to a store.
//! - [`api`]: what the command line and the controller say to each other.
//! - [`cli`]: the `sandbox` command line, shaped like Juju's.

pub mod api;
pub mod cli;
pub mod client;
pub mod controller;
pub mod machine;
pub mod secrets;
pub mod status;
pub mod tools;
