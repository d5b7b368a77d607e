/*!
A Juju machine charm for etcd, as one small binary.

# Layout

- [`context`]: the `JUJU_*` environment, parsed once; what was invoked (hook or action).
- [`hooktools`]: the only place that runs Juju's hook tools; the [`hooktools::Juju`] trait.
- [`config`]: raw `config-get` JSON → validated [`config::CharmConfig`].
- [`observe`] → [`plan`] + [`membership`] + [`relations`] (pure) → [`apply`]: the reconcile
  path of every hook.
- [`render`]: pure rendering of etcd's config, the systemd unit and the `etcdctl` wrapper.
- [`etcd`]: the etcd v3 API with bounded timeouts; the [`etcd::Etcd`] trait.
- [`install`], [`host`], [`paths`]: the machine side; [`version`]: which etcd version may
  replace which (pure), checked before a new resource is installed.
- [`tls`]: the cluster's own CA and each member's certificate (effectful, run by [`apply`]).
- [`status`]: every status text; [`actions`]: the actions (health, snapshot, restore, ...).

**Architecture invariants:** `plan`, `membership` and `relations` do no IO and cannot fail; only
`hooktools` spawns Juju tools; only the Juju leader changes Raft membership, except a departing
unit removing itself.
*/

pub mod actions;
pub mod apply;
pub mod config;
pub mod context;
pub mod date;
pub mod etcd;
pub mod hooktools;
pub mod host;
pub mod install;
pub mod membership;
pub mod observe;
pub mod paths;
pub mod plan;
pub mod relations;
pub mod render;
pub mod status;
pub mod tls;
pub mod version;
