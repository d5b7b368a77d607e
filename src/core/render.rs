/*!
Pure rendering of the files the charm writes: etcd's YAML config, the hardened systemd unit and
the `etcdctl` wrapper with its environment file. No IO here.

etcd starts with only `--config-file`, so every setting (name and data dir included) is in the
YAML. The config is a typed value, [`EtcdConfig`]: rendered with serde (YAML) and read back the
same way, so what the charm reads from the file is what it wrote; URL lists are comma-separated
strings, as etcd parses them. The `initial-*` keys only matter for a member's first start:
[`EtcdConfig::runtime`] leaves them out, so changing them alone never restarts etcd, and two
files etcd reads alike (quoting, layout) never restart it either. `enable-grpc-gateway` is always written: etcd 3.4 turns its HTTP/JSON
gateway (`/v3/...`, used by Patroni and etcd3gw) off under `--config-file` unless it is.
*/

use crate::core::config::CharmConfig;
use crate::core::version::Version;
use crate::paths;
use serde::{Deserialize, Serialize};

/// `initial-cluster-state`: whether a member's first start founds a cluster or joins one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Bootstrap a new cluster.
    New,
    /// Join an existing one.
    Existing,
}

/// How a member's first start finds its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCluster {
    /// Bootstrap or join.
    pub state: ClusterState,
    /// `name=peerURL,...`, this member included.
    pub cluster: String,
    /// The cluster token (only used by `new`).
    pub token: String,
}

/// `http://host:port` (`https://` with `tls`), with IPv6 addresses in brackets.
pub fn url(tls: bool, address: &str, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    match address.contains(':') {
        true => format!("{scheme}://[{address}]:{port}"),
        false => format!("{scheme}://{address}:{port}"),
    }
}

/// The `scheme://host` and port of a URL.
fn split_port(url: &str) -> Option<(&str, u16)> {
    let (host, port) = url.rsplit_once(':')?;
    Some((host, port.trim_end_matches('/').parse().ok()?))
}

/// etcd's config file as the charm writes it: a typed value, rendered as YAML
/// ([`EtcdConfig::render`]) and read back from the file ([`EtcdConfig::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EtcdConfig {
    /// The member name.
    pub name: String,
    /// The data dir.
    pub data_dir: String,
    /// Comma-separated peer URLs to listen on.
    pub listen_peer_urls: String,
    /// Comma-separated client URLs to listen on.
    pub listen_client_urls: String,
    /// The peer URL advertised to the cluster.
    pub initial_advertise_peer_urls: String,
    /// The client URL advertised to clients.
    pub advertise_client_urls: String,
    /// etcd's plain-http metrics listener (`/metrics`, `/health`) for COS; absent in files
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_metrics_urls: Option<String>,
    /// Raft heartbeat, ms.
    pub heartbeat_interval: u32,
    /// Raft election timeout, ms.
    pub election_timeout: u32,
    /// Entries between snapshots; etcd's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_count: Option<u64>,
    /// Backend quota, bytes (0: etcd's default).
    pub quota_backend_bytes: u64,
    /// `periodic` or `revision`.
    pub auto_compaction_mode: String,
    /// History kept by auto compaction.
    pub auto_compaction_retention: String,
    /// Membership changes that would lose quorum are refused.
    pub strict_reconfig_check: bool,
    /// The HTTP/JSON gateway (`/v3/...`): etcd 3.4 turns it off under `--config-file` unless
    /// set.
    pub enable_grpc_gateway: bool,
    /// The v2 API (`enable_v2`): etcd 3.4 and 3.5 only; written only when on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_v2: bool,
    /// etcd's corruption checks, with the keys of the version it runs.
    #[serde(flatten)]
    pub corruption: CorruptionChecks,
    /// `zap`.
    pub logger: String,
    /// etcd's log level.
    pub log_level: String,
    /// TLS on the client port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_transport_security: Option<TransportSecurity>,
    /// TLS on the peer port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_transport_security: Option<TransportSecurity>,
    /// `name=peerURL,...`, this member included (first start only).
    pub initial_cluster: String,
    /// `new` or `existing` (first start only).
    pub initial_cluster_state: ClusterState,
    /// The cluster token (first start only).
    pub initial_cluster_token: String,
}

/// Each port requires a client certificate: the client port one from the client CA, the peer
/// port one from the peer CA (members only). The member's two certificates share its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TransportSecurity {
    /// This member's certificate.
    pub cert_file: String,
    /// Its key.
    pub key_file: String,
    /// The cluster's CA.
    pub trusted_ca_file: String,
    /// Clients must present a certificate from that CA.
    pub client_cert_auth: bool,
}

impl TransportSecurity {
    /// The client port's (client CA) or the peer port's (peer CA: members only).
    fn charm(peer: bool) -> TransportSecurity {
        let (cert, ca) = match peer {
            false => (paths::TLS_CERT, paths::TLS_CA),
            true => (paths::TLS_PEER_CERT, paths::TLS_PEER_CA),
        };
        TransportSecurity {
            cert_file: cert.into(),
            key_file: paths::TLS_KEY.into(),
            trusted_ca_file: ca.into(),
            client_cert_auth: true,
        }
    }
}

/// The first line of the file.
const HEADER: &str = "# Managed by the etcd charm: local changes are overwritten.\n";

impl EtcdConfig {
    /// This member's config, for the etcd `version` it runs on (the installed one). `old_peer_urls`
    /// are peer URLs the cluster still has for this member (after a `management_port` change):
    /// etcd keeps listening on those of this host until the leader has updated the member, so
    /// the cluster never loses sight of it.
    pub fn new(
        cfg: &CharmConfig,
        version: &str,
        name: &str,
        address: &str,
        init: &InitialCluster,
        old_peer_urls: &[String],
    ) -> EtcdConfig {
        let version = Version::parse(version);
        let tls = cfg.tls;
        let peer = url(tls, address, cfg.management_port);
        let client = url(tls, address, cfg.port);
        let (mut listen_peer, listen_client) = match cfg.bind_to_all_interfaces {
            true => (
                url(tls, "0.0.0.0", cfg.management_port),
                url(tls, "0.0.0.0", cfg.port),
            ),
            false => (
                peer.clone(),
                format!("{client},{}", url(tls, "127.0.0.1", cfg.port)),
            ),
        };
        let own_host = split_port(&peer).map(|(h, _)| h);
        for old in old_peer_urls.iter().filter(|u| **u != peer) {
            match (split_port(old), cfg.bind_to_all_interfaces) {
                // The same port on another scheme (a TLS switch) cannot be listened on twice.
                (Some((_, port)), true) if port != cfg.management_port => {
                    listen_peer.push_str(&format!(",{}", url(tls, "0.0.0.0", port)))
                }
                (Some((host, _)), false) if Some(host) == own_host => {
                    listen_peer.push_str(&format!(",{old}"))
                }
                _ => {}
            }
        }
        let security = |peer| tls.then(|| TransportSecurity::charm(peer));
        let metrics_host = match cfg.bind_to_all_interfaces {
            true => "0.0.0.0",
            false => address,
        };
        EtcdConfig {
            name: name.into(),
            data_dir: paths::DATA_DIR.into(),
            listen_peer_urls: listen_peer,
            listen_client_urls: listen_client,
            initial_advertise_peer_urls: peer,
            advertise_client_urls: client,
            listen_metrics_urls: Some(url(false, metrics_host, cfg.metrics_port)),
            heartbeat_interval: cfg.heartbeat_interval,
            election_timeout: cfg.election_timeout,
            snapshot_count: cfg.snapshot_count,
            quota_backend_bytes: cfg.quota_backend_bytes,
            auto_compaction_mode: cfg.auto_compaction_mode.clone(),
            auto_compaction_retention: cfg.auto_compaction_retention.clone(),
            strict_reconfig_check: true,
            enable_grpc_gateway: true,
            enable_v2: cfg.enable_v2 && version.is_some_and(has_v2),
            logger: "zap".into(),
            corruption: CorruptionChecks::of(version),
            log_level: cfg.log_level.clone(),
            client_transport_security: security(false),
            peer_transport_security: security(true),
            initial_cluster: init.cluster.clone(),
            initial_cluster_state: init.state,
            initial_cluster_token: init.token.clone(),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        // Strings, numbers and booleans only: serialising cannot fail.
        let yaml = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!("{HEADER}{yaml}")
    }

    /// A config file this charm wrote (any version of it); `None` when it is not one.
    pub fn parse(text: &str) -> Option<EtcdConfig> {
        serde_yaml_ng::from_str(text).ok()
    }

    /// What etcd reads on every start: all but the `initial-*` settings (left out: the state
    /// is fixed at `new`, the others empty).
    pub fn runtime(&self) -> EtcdConfig {
        EtcdConfig {
            initial_cluster: String::new(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: String::new(),
            ..self.clone()
        }
    }

    /// Clients are served over TLS.
    pub fn tls(&self) -> bool {
        self.advertise_client_urls.starts_with("https://")
    }

    /// The client port (that of the first advertised client URL).
    pub fn client_port(&self) -> Option<u16> {
        let first = self.advertise_client_urls.split(',').next()?;
        split_port(first.trim()).map(|(_, port)| port)
    }

    /// The member's client URL on loopback.
    pub fn local_url(&self) -> Option<String> {
        Some(url(self.tls(), "127.0.0.1", self.client_port()?))
    }

    /// The peer and client URLs advertised.
    pub fn advertised_urls(&self) -> Option<(String, String)> {
        let (peer, client) = (
            &self.initial_advertise_peer_urls,
            &self.advertise_client_urls,
        );
        (!peer.is_empty() && !client.is_empty()).then(|| (peer.clone(), client.clone()))
    }

    /// The `initial-*` settings.
    pub fn initial_cluster(&self) -> InitialCluster {
        InitialCluster {
            state: self.initial_cluster_state,
            cluster: self.initial_cluster.clone(),
            token: self.initial_cluster_token.clone(),
        }
    }
}

/// How often the Raft leader compares the members' latest data hashes: it reads the whole
/// keyspace, so every few hours (etcd's data-corruption guide).
pub const CORRUPT_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// etcd's corruption checks, with the keys etcd's version reads (none for an unknown version):
/// the initial check of a restarted member, the Raft leader's periodic check, and the
/// compact-hash check where it exists (3.5.5+). 3.6 names the initial and compact-hash checks as
/// feature gates and drops `experimental-` from the period (setting both names is an error).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CorruptionChecks {
    /// 3.4 and 3.5: a restarted member compares its data with its peers' before serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental_initial_corrupt_check: Option<bool>,
    /// 3.4 and 3.5: how often the Raft leader compares its latest data hash with the
    /// followers', in nanoseconds (etcd reads durations in its config file as integers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental_corrupt_check_time: Option<u64>,
    /// 3.5.5 and later 3.5: the leader compares the hashes computed at each compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental_compact_hash_check_enabled: Option<bool>,
    /// 3.6: `InitialCorruptCheck=true,CompactHashCheck=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_gates: Option<String>,
    /// 3.6: the periodic check's period, nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt_check_time: Option<u64>,
}

impl CorruptionChecks {
    /// Every check on, with the keys of etcd `version`.
    pub fn of(version: Option<Version>) -> CorruptionChecks {
        let period = u64::try_from(CORRUPT_CHECK_PERIOD.as_nanos()).unwrap_or(u64::MAX);
        let v = version.map(|v| (v.major, v.minor, v.patch));
        match v {
            Some((3, minor @ (4 | 5), patch)) => CorruptionChecks {
                experimental_initial_corrupt_check: Some(true),
                experimental_corrupt_check_time: Some(period),
                experimental_compact_hash_check_enabled: (minor == 5 && patch >= 5).then_some(true),
                ..CorruptionChecks::default()
            },
            Some((3, 6.., _)) => CorruptionChecks {
                feature_gates: Some("InitialCorruptCheck=true,CompactHashCheck=true".into()),
                corrupt_check_time: Some(period),
                ..CorruptionChecks::default()
            },
            _ => CorruptionChecks::default(),
        }
    }
}

/// etcd `v` has the v2 API (`enable-v2`): 3.4 and 3.5.
pub fn has_v2(v: Version) -> bool {
    (v.major, v.minor) < (3, 6)
}

/// This member's etcd config file ([`EtcdConfig::new`], rendered).
pub fn etcd_config(
    cfg: &CharmConfig,
    version: &str,
    name: &str,
    address: &str,
    init: &InitialCluster,
    old_peer_urls: &[String],
) -> String {
    EtcdConfig::new(cfg, version, name, address, init, old_peer_urls).render()
}

/// True when a config this charm rendered serves clients over TLS.
pub fn tls_of(rendered: &str) -> bool {
    EtcdConfig::parse(rendered).is_some_and(|c| c.tls())
}

/// The loopback client URL of the member a config this charm rendered describes.
pub fn local_url(rendered: &str) -> Option<String> {
    EtcdConfig::parse(rendered)?.local_url()
}

/// The loopback client URL of the local member: that of the config it runs (`rendered`), else
/// the one `cfg` asks for (etcd's defaults without one).
pub fn member_url(rendered: Option<&str>, cfg: Option<&CharmConfig>) -> String {
    rendered.and_then(local_url).unwrap_or_else(|| {
        let (tls, port) = cfg.map_or((false, 2379), |c| (c.tls, c.port));
        url(tls, "127.0.0.1", port)
    })
}

/// The names a member's certificate is valid for: its address, its hostname and loopback.
pub fn tls_sans(address: &str, hostname: Option<&str>) -> Vec<String> {
    let names = [Some(address), hostname.filter(|h| !h.is_empty())];
    let all = names
        .into_iter()
        .flatten()
        .chain(["localhost", "127.0.0.1"]);
    let mut sans: Vec<String> = Vec::new();
    for name in all {
        if !sans.iter().any(|s| s == name) {
            sans.push(name.to_string());
        }
    }
    sans
}

/// What a member's TLS files were made from, as recorded once they are written: the
/// fingerprints of the CA and client credentials, and the certificate's names. The files are
/// made again when this changes.
pub fn tls_record(ca: &str, client_cert: &str, client_key: &str, sans: &[String]) -> String {
    format!(
        "{} {}\n",
        fnv([ca, client_cert, client_key]),
        sans.join(",")
    )
}

/// 64-bit FNV-1a of the parts (each followed by a NUL), hex.
fn fnv<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// What etcd reads on every start of a config this charm rendered (all but `initial-*`), as
/// text: equal for configs etcd reads alike, whatever their layout.
pub fn runtime_part(rendered: &str) -> String {
    match EtcdConfig::parse(rendered) {
        Some(c) => c.runtime().render(),
        None => rendered.to_string(),
    }
}

/// The client port of a config this charm rendered (that of its first advertised client URL).
pub fn client_port(rendered: &str) -> Option<u16> {
    EtcdConfig::parse(rendered)?.client_port()
}

/// The peer and client URLs a config this charm rendered advertises.
pub fn advertised_urls(rendered: &str) -> Option<(String, String)> {
    EtcdConfig::parse(rendered)?.advertised_urls()
}

/// A short, stable fingerprint (64-bit FNV-1a, hex) of what a restarted etcd runs: the
/// settings it reads on every start, its systemd unit and its version.
pub fn restart_fingerprint(config: &str, unit: &str, version: &str) -> String {
    fnv([runtime_part(config).as_str(), unit, version])
}

/// The `initial-*` settings of a config this charm rendered.
pub fn initial_cluster_of(rendered: &str) -> Option<InitialCluster> {
    EtcdConfig::parse(rendered).map(|c| c.initial_cluster())
}

/// The kernel protections of the charm's systemd units (etcd's and the facts exporter's).
pub(crate) const KERNEL_PROTECTION: &str = "ProtectKernelTunables=yes\n\
ProtectKernelModules=yes\n\
ProtectKernelLogs=yes\n\
ProtectControlGroups=yes\n\
ProtectClock=yes\n\
ProtectHostname=yes\n\
ProtectProc=invisible\n\
ProcSubset=pid";
/// Their system-call limits.
pub(crate) const SYSCALL_LIMITS: &str = "RestrictRealtime=yes\n\
RestrictSUIDSGID=yes\n\
RemoveIPC=yes\n\
SystemCallArchitectures=native\n\
SystemCallFilter=@system-service\n\
SystemCallFilter=~@privileged @resources";

/// The systemd unit: `Type=notify`, only `--config-file`, sandboxed so that `systemd-analyze
/// security etcd` scores 1.1 (measured in a sandbox machine, systemd 252). etcd needs no
/// capability, writes only under its home and reaches its peers and clients over TCP. Directives
/// an older systemd does not know (Ubuntu 20.04's 245 lacks `ProtectProc` and `ProcSubset`) are
/// ignored there with a warning, never an error.
pub fn systemd_unit() -> String {
    format!(
        "# Managed by the etcd charm: local changes are overwritten.
[Unit]
Description=etcd key-value store (managed by the etcd charm)
Documentation=https://etcd.io/docs/
After=network-online.target local-fs.target time-sync.target
Wants=network-online.target

[Service]
Type=notify
User=etcd
Group=etcd
ExecStart={etcd} --config-file {config}
Restart=always
RestartSec=5s
# etcd reports ready only with a quorum: joiners are started with --no-block.
TimeoutStartSec=300s
LimitNOFILE=65536
IOSchedulingClass=best-effort
IOSchedulingPriority=0
UMask=0077
# Files: the OS read-only, etcd's home (data dir, moved-aside copies) the only writable place;
# the TLS files in {tls} stay readable (root:etcd 0640).
ProtectSystem=strict
ReadWritePaths={home}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
# Only root and etcd are mapped: etcd's files and the TLS files are owned by these two.
PrivateUsers=yes
{kernel}
# No PrivateNetwork or IPAddressDeny: etcd serves clients and dials peers at any address.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
LockPersonality=yes
# Go's runtime never maps memory both writable and executable.
MemoryDenyWriteExecute=yes
{syscalls}
# A filtered call fails (Go's runtime then carries on, e.g. without raising a limit): no kill.
SystemCallErrorNumber=EPERM
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
",
        kernel = KERNEL_PROTECTION,
        syscalls = SYSCALL_LIMITS,
        etcd = paths::ETCD_LINK,
        config = paths::CONFIG_FILE,
        home = paths::ETCD_HOME,
        tls = paths::TLS_DIR,
    )
}

/// Environment for `etcdctl`: API v3, the local member's client URL and, with TLS, the CA and
/// client certificate.
pub fn etcdctl_env(tls: bool, port: u16) -> String {
    let mut env = format!(
        "# Managed by the etcd charm.\nETCDCTL_API=3\nETCDCTL_ENDPOINTS={}\n",
        url(tls, "127.0.0.1", port)
    );
    if tls {
        env.push_str(&format!(
            "ETCDCTL_CACERT={}\nETCDCTL_CERT={}\nETCDCTL_KEY={}\n",
            paths::TLS_CA_BUNDLE,
            paths::TLS_CLIENT_CERT,
            paths::TLS_CLIENT_KEY
        ));
    }
    env
}

/// The `etcdctl` wrapper on PATH. etcdctl 3.4 refuses to run when a variable (such as
/// `ETCDCTL_ENDPOINTS`) and its flag (`--endpoints`) are both set, so the variable is dropped
/// when the flag is given.
pub fn etcdctl_wrapper(real_etcdctl: &str) -> String {
    format!(
        "#!/bin/sh
# Managed by the etcd charm: etcdctl talking to the local member unless --endpoints is given.
set -a
[ -r {env} ] && . {env}
set +a
for arg in \"$@\"; do
    case \"$arg\" in
        --endpoints|--endpoints=*) unset ETCDCTL_ENDPOINTS ;;
        --cacert|--cacert=*) unset ETCDCTL_CACERT ;;
        --cert|--cert=*) unset ETCDCTL_CERT ;;
        --key|--key=*) unset ETCDCTL_KEY ;;
    esac
done
exec {real_etcdctl} \"$@\"
",
        env = paths::ETCDCTL_ENV,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The etcd version the tests render for unless they say.
    const V: &str = "3.4.23";

    /// etcd0's config at 10.0.0.1 on etcd [`V`], bootstrapping.
    fn rendered(cfg: &CharmConfig) -> String {
        rendered_on(cfg, V)
    }

    /// [`rendered`] on etcd `version`.
    fn rendered_on(cfg: &CharmConfig, version: &str) -> String {
        etcd_config(cfg, version, "etcd0", "10.0.0.1", &init(), &[])
    }

    fn init() -> InitialCluster {
        InitialCluster {
            state: ClusterState::New,
            cluster: "etcd0=http://10.0.0.1:2380".into(),
            token: "0123e4".into(),
        }
    }

    #[test]
    fn etcd_config_snapshot() {
        let got = rendered(&CharmConfig::plain());
        let expected = r#"# Managed by the etcd charm: local changes are overwritten.
name: etcd0
data-dir: /var/lib/etcd/data
listen-peer-urls: http://10.0.0.1:2380
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
initial-advertise-peer-urls: http://10.0.0.1:2380
advertise-client-urls: http://10.0.0.1:2379
listen-metrics-urls: http://10.0.0.1:2381
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
auto-compaction-mode: periodic
auto-compaction-retention: '0'
strict-reconfig-check: true
enable-grpc-gateway: true
experimental-initial-corrupt-check: true
experimental-corrupt-check-time: 14400000000000
logger: zap
log-level: info
initial-cluster: etcd0=http://10.0.0.1:2380
initial-cluster-state: new
initial-cluster-token: '0123e4'
"#;
        assert_eq!(got, expected);
        assert_eq!(initial_cluster_of(&got), Some(init()));
        // As charms before the typed config wrote it: read alike, so an upgrade of the charm
        // rewrites the file without restarting etcd.
        let before = expected.replace('\'', "\"");
        assert_eq!(EtcdConfig::parse(&before), EtcdConfig::parse(&got));
        assert_eq!(runtime_part(&before), runtime_part(&got));
        assert_eq!(EtcdConfig::parse("not: [a config"), None);
    }

    /// The config of member etcd0 bootstrapping (`new`) and joining (`existing`).
    fn new_and_existing(cfg: &CharmConfig) -> (String, String) {
        let joined = InitialCluster {
            state: ClusterState::Existing,
            ..init()
        };
        (
            rendered(cfg),
            etcd_config(cfg, V, "etcd0", "10.0.0.1", &joined, &[]),
        )
    }

    #[test]
    fn initial_settings_are_not_runtime() {
        let cfg = CharmConfig::plain();
        let (a, b) = new_and_existing(&cfg);
        assert_ne!(a, b);
        assert_eq!(runtime_part(&a), runtime_part(&b));
        let cfg = CharmConfig {
            snapshot_count: Some(10),
            ..cfg
        };
        assert_ne!(runtime_part(&a), runtime_part(&rendered(&cfg)));
    }

    #[test]
    fn tls_config_serves_https_with_client_certificates() {
        let cfg = CharmConfig {
            tls: true,
            ..CharmConfig::plain()
        };
        let secure = InitialCluster {
            cluster: "etcd0=https://10.0.0.1:2380".into(),
            ..init()
        };
        let got = etcd_config(&cfg, V, "etcd0", "10.0.0.1", &secure, &[]);
        let expected = r#"listen-peer-urls: https://10.0.0.1:2380
listen-client-urls: https://10.0.0.1:2379,https://127.0.0.1:2379
initial-advertise-peer-urls: https://10.0.0.1:2380
advertise-client-urls: https://10.0.0.1:2379
"#;
        assert!(got.contains(expected), "{got}");
        let security = r#"log-level: info
client-transport-security:
  cert-file: /etc/etcd/tls/server.crt
  key-file: /etc/etcd/tls/server.key
  trusted-ca-file: /etc/etcd/tls/ca.crt
  client-cert-auth: true
peer-transport-security:
  cert-file: /etc/etcd/tls/peer.crt
  key-file: /etc/etcd/tls/server.key
  trusted-ca-file: /etc/etcd/tls/peer-ca.crt
  client-cert-auth: true
initial-cluster: etcd0=https://10.0.0.1:2380
"#;
        assert!(got.contains(security), "{got}");
        // Read back: the scheme, the local URL, the initial cluster.
        assert!(tls_of(&got));
        assert_eq!(local_url(&got).as_deref(), Some("https://127.0.0.1:2379"));
        assert_eq!(client_port(&got), Some(2379));
        assert_eq!(initial_cluster_of(&got), Some(secure));
        let plain = rendered(&CharmConfig::plain());
        assert!(!tls_of(&plain));
        assert!(!plain.contains("transport-security"));
        assert_eq!(local_url(&plain).as_deref(), Some("http://127.0.0.1:2379"));
    }

    #[test]
    fn etcdctl_gets_the_client_certificate_with_tls() {
        assert_eq!(
            etcdctl_env(false, 2379),
            "# Managed by the etcd charm.\nETCDCTL_API=3\nETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n"
        );
        let env = etcdctl_env(true, 4001);
        assert!(env.contains("ETCDCTL_ENDPOINTS=https://127.0.0.1:4001\n"));
        assert!(env.contains("ETCDCTL_CACERT=/etc/etcd/tls/ca-bundle.crt\n"));
        assert!(env.contains("ETCDCTL_CERT=/etc/etcd/tls/client.crt\n"));
        assert!(env.contains("ETCDCTL_KEY=/etc/etcd/tls/client.key\n"));
        // A flag given on the command line drops its variable (etcdctl refuses both).
        let wrapper = etcdctl_wrapper("/opt/etcd/bin/etcdctl");
        assert!(wrapper.contains("--cacert|--cacert=*) unset ETCDCTL_CACERT ;;"));
        assert!(wrapper.contains("--endpoints|--endpoints=*) unset ETCDCTL_ENDPOINTS ;;"));
    }

    #[test]
    fn tls_names_and_record() {
        assert_eq!(
            tls_sans("10.0.0.1", Some("machine-0")),
            ["10.0.0.1", "machine-0", "localhost", "127.0.0.1"]
        );
        assert_eq!(tls_sans("127.0.0.1", None), ["127.0.0.1", "localhost"]);
        let sans = tls_sans("10.0.0.1", None);
        let a = tls_record("ca", "cert", "key", &sans);
        assert_eq!(a, tls_record("ca", "cert", "key", &sans));
        assert_ne!(a, tls_record("ca2", "cert", "key", &sans));
        assert_ne!(
            a,
            tls_record("ca", "cert", "key", &tls_sans("10.0.0.2", None))
        );
    }

    #[test]
    fn unit_is_hardened() {
        let unit = systemd_unit();
        for line in [
            "Type=notify",
            "ExecStart=/usr/local/bin/etcd --config-file /etc/etcd/etcd.conf.yml\n",
            "User=etcd",
            "Restart=always",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/etcd\n",
            "CapabilityBoundingSet=\n",
            "AmbientCapabilities=\n",
            "PrivateDevices=yes",
            "PrivateUsers=yes",
            "ProtectProc=invisible",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
            "MemoryDenyWriteExecute=yes",
            "SystemCallFilter=@system-service\n",
            "SystemCallFilter=~@privileged @resources\n",
            "UMask=0077",
        ] {
            assert!(unit.contains(line), "{line}");
        }
        // etcd must reach its peers: no network sandbox.
        for absent in ["PrivateNetwork=", "IPAddressDeny=", "IPAddressAllow="] {
            assert!(!unit.contains(absent), "{absent}");
        }
        // One writable place: etcd's home.
        assert_eq!(unit.matches("ReadWritePaths=").count(), 1);
    }

    #[test]
    fn old_peer_port_stays_open_until_updated() {
        let cfg = CharmConfig {
            management_port: 2480,
            ..CharmConfig::plain()
        };
        let old = [
            "http://10.0.0.1:2380".to_string(),
            "http://10.0.0.9:2380".to_string(),
        ];
        let got = etcd_config(&cfg, V, "etcd0", "10.0.0.1", &init(), &old);
        assert!(got.contains("listen-peer-urls: http://10.0.0.1:2480,http://10.0.0.1:2380\n"));
        assert!(got.contains("initial-advertise-peer-urls: http://10.0.0.1:2480\n"));
    }

    #[test]
    fn old_peer_url_on_the_other_scheme_is_not_listened_on() {
        // A TLS switch: the same port cannot serve both schemes, with or without 0.0.0.0.
        for all in [false, true] {
            let cfg = CharmConfig {
                tls: true,
                bind_to_all_interfaces: all,
                ..CharmConfig::plain()
            };
            let old = ["http://10.0.0.1:2380".to_string()];
            let got = etcd_config(&cfg, V, "etcd0", "10.0.0.1", &init(), &old);
            let want = if all { "0.0.0.0" } else { "10.0.0.1" };
            assert!(
                got.contains(&format!("listen-peer-urls: https://{want}:2380\n")),
                "{got}"
            );
        }
    }

    #[test]
    fn ipv6_urls() {
        assert_eq!(url(false, "fd00::1", 2380), "http://[fd00::1]:2380");
        assert_eq!(url(true, "10.0.0.1", 2379), "https://10.0.0.1:2379");
    }

    #[test]
    fn reads_back_what_it_rendered() {
        let cfg = CharmConfig {
            port: 4001,
            ..CharmConfig::plain()
        };
        let got = rendered(&cfg);
        assert_eq!(client_port(&got), Some(4001));
        let parsed = EtcdConfig::parse(&got).unwrap();
        assert_eq!(parsed.log_level, "info");
        assert_eq!(parsed.initial_cluster_token, "0123e4");
        assert_eq!(parsed.render(), got);
        assert_eq!(
            advertised_urls(&got),
            Some((
                "http://10.0.0.1:2380".to_string(),
                "http://10.0.0.1:4001".to_string()
            ))
        );
        let v6 = etcd_config(&cfg, V, "etcd0", "fd00::1", &init(), &[]);
        assert_eq!(client_port(&v6), Some(4001));
    }

    #[test]
    fn fingerprint_follows_what_etcd_reads() {
        let cfg = CharmConfig::plain();
        let (a, b) = new_and_existing(&cfg);
        let unit = systemd_unit();
        let f = restart_fingerprint(&a, &unit, "3.4.23");
        assert_eq!(f.len(), 16);
        assert_eq!(f, restart_fingerprint(&b, &unit, "3.4.23"));
        assert_ne!(f, restart_fingerprint(&a, &unit, "3.5.0"));
        let debug = CharmConfig {
            log_level: "debug".into(),
            ..CharmConfig::plain()
        };
        let c = rendered(&debug);
        assert_ne!(f, restart_fingerprint(&c, &unit, "3.4.23"));
        // A new metrics port, and a file from before the metrics listener, restart etcd.
        let metrics = CharmConfig {
            metrics_port: 9000,
            ..CharmConfig::plain()
        };
        let m = rendered(&metrics);
        assert!(m.contains("listen-metrics-urls: http://10.0.0.1:9000\n"));
        assert_ne!(f, restart_fingerprint(&m, &unit, "3.4.23"));
        let before = a.replace("listen-metrics-urls: http://10.0.0.1:2381\n", "");
        assert_eq!(
            EtcdConfig::parse(&before).unwrap().listen_metrics_urls,
            None
        );
        assert_ne!(f, restart_fingerprint(&before, &unit, "3.4.23"));
    }

    #[test]
    fn v2_api_is_rendered_on_3_4_and_3_5_only() {
        let cfg = CharmConfig {
            enable_v2: true,
            ..CharmConfig::plain()
        };
        let render = rendered_on;
        for v in ["3.4.23", "3.5.21"] {
            assert!(render(&cfg, v).contains("\nenable-v2: true\n"), "{v}");
            // Off: not written at all, as before the option existed.
            let off = render(&CharmConfig::plain(), v);
            assert!(!off.contains("enable-v2"), "{v}: {off}");
        }
        assert!(!render(&cfg, "3.6.5").contains("enable-v2"));
    }

    #[test]
    fn corruption_checks_per_version() {
        let render = |v| rendered_on(&CharmConfig::plain(), v);
        let keys = |text: &str| -> Vec<String> {
            let lines = text.lines().filter(|l| {
                l.contains("corrupt") || l.contains("hash-check") || l.starts_with("feature-gates")
            });
            lines.map(String::from).collect()
        };
        let four_hours = "14400000000000";
        assert_eq!(
            keys(&render("3.4.23")),
            [
                "experimental-initial-corrupt-check: true".to_string(),
                format!("experimental-corrupt-check-time: {four_hours}"),
            ]
        );
        // The compact-hash check exists from 3.5.5.
        assert_eq!(keys(&render("3.5.1")), keys(&render("3.4.23")));
        assert_eq!(
            keys(&render("3.5.21")),
            [
                "experimental-initial-corrupt-check: true".to_string(),
                format!("experimental-corrupt-check-time: {four_hours}"),
                "experimental-compact-hash-check-enabled: true".to_string(),
            ]
        );
        // 3.6: feature gates and the new name, never the experimental ones beside them.
        let v36 = render("3.6.5");
        assert_eq!(
            keys(&v36),
            [
                "feature-gates: InitialCorruptCheck=true,CompactHashCheck=true".to_string(),
                format!("corrupt-check-time: {four_hours}"),
            ]
        );
        assert!(!v36.contains("experimental-"), "{v36}");
        // Read back as written, and a change of version is a change etcd reads.
        assert_eq!(
            EtcdConfig::parse(&v36).map(|c| c.render()),
            Some(v36.clone())
        );
        assert_ne!(runtime_part(&v36), runtime_part(&render("3.5.21")));
        assert!(keys(&render("unknown")).is_empty());
    }
}
