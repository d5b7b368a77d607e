/*!
The pure core: facts in ([`observed::Observed`]), a [`effect::Plan`] out. No IO, no
failure: nothing here reads a file, spawns a process, calls etcd or Juju, or looks at the clock.
A unit test in the crate root checks that no module here names an effectful one.

- [`observed`]: the facts one pass decides on (leader data, peers, this machine, etcd's view).
- [`effect`]: what a pass does ([`effect::Effect`]) and the status it shows.
- [`plan`]: this unit's own member; [`membership`]: the leader's side and the departing unit's;
  [`relations`]: relation data this unit publishes; [`maintenance`]: the leader's automatic
  defragmentation and NOSPACE recovery; [`auth`]: etcd's users, roles and `auth enable` on a
  TLS cluster.
- [`cos`]: the `cos-agent` data (alert rules, dashboards, scrape jobs) for COS agents;
  [`facts`]: the charm's own metrics file and the unit that serves it.
- [`render`]: etcd's config, the systemd unit and the `etcdctl` wrapper.
- [`backup`]: backups to object storage: schedule, who takes one, retention, object names.
- [`config`]: raw `config-get` JSON → validated [`config::CharmConfig`]; [`status`]: every status
  text; [`version`]: which etcd version may replace which.
- [`storage`]: the data dir on Juju storage (placement, a volume from another unit).
- [`rotation`]: when the leader renews certificates, and which expiries the status warns of.
- [`ca_rotation`]: the `rotate-ca` action's three phases (trust both, reissue, drop the old).
- [`certificates`]: an external CA on the `certificates` relation (tls-certificates v4).
- [`transport`]: TLS or plain http, the `tls` option kept from changing the transport on a refresh.
*/

pub mod auth;
pub mod backup;
pub mod ca_rotation;
pub mod certificates;
pub mod config;
pub mod cos;
pub mod effect;
pub mod facts;
pub mod maintenance;
pub mod membership;
pub mod observed;
pub mod plan;
pub mod relations;
pub mod render;
pub mod rotation;
pub mod status;
pub mod storage;
pub mod transport;
pub mod version;
