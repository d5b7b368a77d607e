/*!
Where the charm puts things on the machine.
*/

/// etcd's YAML config file: etcd starts with only `--config-file` pointing here.
pub const CONFIG_FILE: &str = "/etc/etcd/etcd.conf.yml";
/// Environment for `etcdctl` (endpoints of the local member), sourced by the wrapper.
pub const ETCDCTL_ENV: &str = "/etc/etcd/etcdctl.env";
/// The systemd unit the charm owns.
pub const UNIT_FILE: &str = "/etc/systemd/system/etcd.service";
/// The systemd unit name.
pub const SERVICE: &str = "etcd.service";
/// etcd's home; only the etcd user may enter it.
pub const ETCD_HOME: &str = "/var/lib/etcd";
/// The member's data dir (mode 0700, owned by etcd): a directory on the root disk, or a link
/// to [`VOLUME_DATA_DIR`] on a unit that started on Juju storage.
pub const DATA_DIR: &str = "/var/lib/etcd/data";
/// Where Juju mounts the `data` storage (`location` in `metadata.yaml`): a path no earlier
/// revision used, so a refresh that adds the store hides nothing.
pub const VOLUME: &str = "/var/lib/etcd/storage";
/// The data dir on the volume; old data set aside stays beside it, on the same volume.
pub const VOLUME_DATA_DIR: &str = "/var/lib/etcd/storage/data";
/// On the volume: `<member id hex> <unit>` of the member its data dir belongs to.
pub const VOLUME_OWNER: &str = "/var/lib/etcd/storage/member";
/// The kernel's mount table as this process sees it (is the volume mounted?).
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Charm-owned state: the member id the data dir belongs to, the departing and restart marks.
pub const STATE_DIR: &str = "/var/lib/etcd-charm";
/// The charm's own metrics (Prometheus text), rewritten atomically by hooks and actions; world
/// readable (timestamps only) for the facts exporter's dynamic user.
pub const FACTS_FILE: &str = "/var/lib/etcd-charm-metrics/charm.prom";
/// The directory it is in.
pub const FACTS_DIR: &str = "/var/lib/etcd-charm-metrics";
/// A copy of the charm binary the facts exporter runs (outside the agent's directories).
pub const FACTS_BIN: &str = "/usr/local/lib/etcd-charm/etcd-charm";
/// The facts exporter's systemd unit.
pub const FACTS_UNIT_FILE: &str = "/etc/systemd/system/etcd-charm-metrics.service";
/// Its name.
pub const FACTS_SERVICE: &str = "etcd-charm-metrics.service";
/// Binaries installed from the `etcd` resource.
pub const BIN_DIR: &str = "/opt/etcd/bin";
/// What the systemd unit runs: a link to the real `etcd`.
pub const ETCD_LINK: &str = "/usr/local/bin/etcd";
/// The `etcdctl` on PATH: a wrapper talking to the local member by default.
pub const ETCDCTL_WRAPPER: &str = "/usr/local/bin/etcdctl";
/// A link to the real `etcdutl` (etcd >= 3.5), when the resource has one.
pub const ETCDUTL_LINK: &str = "/usr/local/bin/etcdutl";
/// TLS files (mode 0750, root:etcd): the CA, this member's server/peer certificate and key,
/// and the client certificate the charm and `etcdctl` use.
pub const TLS_DIR: &str = "/etc/etcd/tls";
/// The cluster's CA certificate (from leader data).
pub const TLS_CA: &str = "/etc/etcd/tls/ca.crt";
/// This member's certificate, for clients and peers alike (server and client auth).
pub const TLS_CERT: &str = "/etc/etcd/tls/server.crt";
/// Its key (root:etcd 0640).
pub const TLS_KEY: &str = "/etc/etcd/tls/server.key";
/// The shared client certificate (from leader data), for the charm and `etcdctl`.
pub const TLS_CLIENT_CERT: &str = "/etc/etcd/tls/client.crt";
/// Its key (root only, 0600).
pub const TLS_CLIENT_KEY: &str = "/etc/etcd/tls/client.key";
/// The peer CA's certificate: the only CA the peer port trusts.
pub const TLS_PEER_CA: &str = "/etc/etcd/tls/peer-ca.crt";
/// This member's peer certificate (same key as [`TLS_CERT`]).
pub const TLS_PEER_CERT: &str = "/etc/etcd/tls/peer.crt";
/// What clients verify this member's client port with: the client CA, and the external CAs
/// while one is in use ([`crate::core::certificates`]).
pub const TLS_CA_BUNDLE: &str = "/etc/etcd/tls/ca-bundle.crt";
/// This unit's request on the `certificates` relation (for the member key).
pub const TLS_EXT_CSR: &str = "/etc/etcd/tls/external.csr";
/// The names it asks for.
pub const TLS_EXT_NAMES: &str = "/etc/etcd/tls/external.names";
/// This unit's keys awaiting their certificates (root only, 0600), and what they were requested
/// for (written last).
pub const TLS_PENDING_KEY: &str = "/etc/etcd/tls/pending.key";
/// The pending client key.
pub const TLS_PENDING_CLIENT_KEY: &str = "/etc/etcd/tls/pending-client.key";
/// The record of the pending request.
pub const TLS_PENDING_RECORD: &str = "/etc/etcd/tls/pending.record";
