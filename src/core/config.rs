/*!
Charm config: raw `config-get` JSON in, a validated [`CharmConfig`] out.

Validation happens once, here; everything downstream takes a `CharmConfig` and never re-checks.
An invalid value gives a [`ConfigError`] that names the option and its valid values, and the
charm applies nothing until it is fixed.
*/

use crate::core::backup::{self, Retention};
use serde_json::{Map, Value};

/// The validated charm config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmConfig {
    /// Client port (`port`, default 2379).
    pub port: u16,
    /// Peer port (`management_port`, default 2380).
    pub management_port: u16,
    /// Raft heartbeat interval in ms.
    pub heartbeat_interval: u32,
    /// Raft election timeout in ms.
    pub election_timeout: u32,
    /// Raft entries between snapshots; `None` (config `auto`) keeps etcd's default.
    pub snapshot_count: Option<u64>,
    /// Backend quota in bytes; 0 is etcd's default (2 GiB).
    pub quota_backend_bytes: u64,
    /// `periodic` or `revision`.
    pub auto_compaction_mode: String,
    /// Hours or a duration (`5m`) in periodic mode, revisions in revision mode; `0` disables.
    pub auto_compaction_retention: String,
    /// etcd's `log-level`.
    pub log_level: String,
    /// Listen on all interfaces instead of the unit's address and loopback.
    pub bind_to_all_interfaces: bool,
    /// Serve clients and peers over TLS with the cluster's own CA (`tls`, on by default, as
    /// requested: a running cluster switches to it member by member, and a refresh alone never
    /// switches it, see [`crate::core::transport`]).
    pub tls: bool,
    /// Serve etcd's v2 API (`enable_v2`), for old consumers; etcd 3.4 and 3.5 only (3.6 removed
    /// it: the plan refuses it there).
    pub enable_v2: bool,
    /// Port of etcd's plain-http metrics listener (`metrics_port`: `/metrics`, `/health`) on
    /// the unit's address, scraped by COS agents.
    pub metrics_port: u16,
    /// Scheduled backups to object storage: the period in seconds (`backup_schedule`); `None`
    /// is off.
    pub backup_period: Option<u64>,
    /// How many and how old of this application's backups are kept (`backup_retention_count`,
    /// `backup_retention_days`; 0 is no limit).
    pub backup_retention: Retention,
    /// Automatic maintenance (`auto_defrag`, `defrag_*`, `auto_nospace_recovery`).
    pub maintenance: Maintenance,
    /// How long member and consumer certificates are valid, and when they are renewed.
    pub certificates: CertificatePolicy,
}

/// The longest `tls_cert_validity_days` accepted (about ten years).
pub const MAX_VALIDITY: u64 = 3650;

/// How long member and consumer certificates are valid (`tls_cert_validity_days`), and how long
/// before their expiry they are renewed (`tls_renew_before_days`, shorter than the validity:
/// a certificate just issued is never due); see [`crate::core::rotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// Days a new certificate is valid (counted from the end of the day it is made).
    pub validity_days: u64,
    /// Days before its expiry a certificate is issued again.
    pub renew_before_days: u64,
}

impl Default for CertificatePolicy {
    /// One year, renewed a month ahead.
    fn default() -> Self {
        CertificatePolicy {
            validity_days: 365,
            renew_before_days: 30,
        }
    }
}

/// What the Juju leader may do by itself at `update-status` ([`crate::core::maintenance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// Defragment fragmented members (`auto_defrag`).
    pub auto_defrag: bool,
    /// Free space, in percent of a member's database, from which it is defragmented
    /// (`defrag_free_percent`, 0 turns automatic defragmentation off).
    pub free_percent: u64,
    /// Free space, in bytes, from which a member is defragmented (`defrag_free_bytes`, 0 turns
    /// it off).
    pub free_bytes: u64,
    /// Seconds at least between two automatic defragmentations of one member
    /// (`defrag_interval`, given in minutes).
    pub interval_secs: u64,
    /// Recover from a NOSPACE alarm by itself (`auto_nospace_recovery`).
    pub nospace_recovery: bool,
}

impl Default for Maintenance {
    /// OpenShift's etcd operator's thresholds: 45 % and 100 MiB; once an hour per member.
    fn default() -> Self {
        Maintenance {
            auto_defrag: true,
            free_percent: 45,
            free_bytes: 100 * 1024 * 1024,
            interval_secs: 3600,
            nospace_recovery: true,
        }
    }
}

impl Maintenance {
    /// Automatic defragmentation is on: switched on, both thresholds above 0.
    pub fn defrag_on(&self) -> bool {
        self.auto_defrag && self.free_percent > 0 && self.free_bytes > 0
    }

    fn parse(raw: &Map<String, Value>) -> Result<Maintenance, ConfigError> {
        let d = Maintenance::default();
        Ok(Maintenance {
            auto_defrag: boolean_or(raw, "auto_defrag", d.auto_defrag)?,
            free_percent: int(raw, "defrag_free_percent", d.free_percent, 0, 100)?,
            free_bytes: int(raw, "defrag_free_bytes", d.free_bytes, 0, MAX_QUOTA)?,
            interval_secs: 60 * int(raw, "defrag_interval", d.interval_secs / 60, 0, 10080)?,
            nospace_recovery: boolean_or(raw, "auto_nospace_recovery", d.nospace_recovery)?,
        })
    }
}

/// The loopback port the charm's facts exporter serves on (not an option: no other port may
/// take it).
pub const FACTS_PORT: u16 = 9379;

impl CharmConfig {
    /// The defaults with plain http (`tls=false`).
    pub fn plain() -> CharmConfig {
        CharmConfig {
            tls: false,
            ..CharmConfig::default()
        }
    }
}

impl Default for CharmConfig {
    fn default() -> Self {
        CharmConfig {
            port: 2379,
            management_port: 2380,
            heartbeat_interval: 100,
            election_timeout: 1000,
            snapshot_count: None,
            quota_backend_bytes: 0,
            auto_compaction_mode: "periodic".into(),
            auto_compaction_retention: "0".into(),
            log_level: "info".into(),
            bind_to_all_interfaces: false,
            tls: true,
            enable_v2: false,
            metrics_port: 2381,
            backup_period: None,
            backup_retention: Retention::default(),
            maintenance: Maintenance::default(),
            certificates: CertificatePolicy::default(),
        }
    }
}

/// An option whose value is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config {option}={value}: must be {expected}; fix it with `juju config <app> {option}=<value>`")]
pub struct ConfigError {
    /// The option name.
    pub option: String,
    /// The value as set.
    pub value: String,
    /// The valid values.
    pub expected: String,
}

const LOG_LEVELS: [&str; 6] = ["debug", "info", "warn", "error", "panic", "fatal"];
/// Largest quota accepted; etcd warns above 8 GiB.
const MAX_QUOTA: u64 = 100 * 1024 * 1024 * 1024;

fn invalid(option: &str, value: &Value, expected: &str) -> ConfigError {
    let value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    ConfigError {
        option: option.into(),
        value,
        expected: expected.into(),
    }
}

/// Reads an integer option (also accepted as a numeric string) within a range.
fn int(
    raw: &Map<String, Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let expected = format!("an integer from {min} to {max}");
    match raw.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            n.filter(|n| (min..=max).contains(n))
                .ok_or_else(|| invalid(key, v, &expected))
        }
    }
}

fn string(raw: &Map<String, Value>, key: &str, default: &str) -> Result<String, ConfigError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(default.into()),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(v) => Err(invalid(key, v, "a string")),
    }
}

fn one_of(
    raw: &Map<String, Value>,
    key: &str,
    default: &str,
    valid: &[&str],
) -> Result<String, ConfigError> {
    let s = string(raw, key, default)?;
    match valid.contains(&s.as_str()) {
        true => Ok(s),
        false => Err(invalid(
            key,
            &Value::String(s),
            &format!("one of {}", valid.join(", ")),
        )),
    }
}

/// A boolean option, false when unset.
fn boolean(raw: &Map<String, Value>, key: &str) -> Result<bool, ConfigError> {
    boolean_or(raw, key, false)
}

/// A boolean option, `default` when unset.
fn boolean_or(raw: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(invalid(key, v, "true or false")),
    }
}

/// A periodic retention: `0`, whole hours (`1`), or a Go duration of h/m/s units (`1h30m`).
fn valid_retention(mode: &str, s: &str) -> bool {
    if s.parse::<u64>().is_ok() {
        return true;
    }
    if mode != "periodic" || s.is_empty() {
        return false;
    }
    let mut digits = false;
    for c in s.chars() {
        match c {
            '0'..='9' => digits = true,
            'h' | 'm' | 's' if digits => digits = false,
            _ => return false,
        }
    }
    !digits
}

impl TryFrom<&Map<String, Value>> for CharmConfig {
    type Error = ConfigError;

    fn try_from(raw: &Map<String, Value>) -> Result<Self, ConfigError> {
        let d = CharmConfig::default();
        let port = int(raw, "port", d.port.into(), 1, 65535)? as u16;
        let management_port =
            int(raw, "management_port", d.management_port.into(), 1, 65535)? as u16;
        if management_port == port {
            let v = Value::from(management_port);
            return Err(invalid("management_port", &v, "different from port"));
        }
        let heartbeat_interval = int(raw, "heartbeat_interval", 100, 10, 5000)? as u32;
        let min_election = 5 * u64::from(heartbeat_interval);
        let election_timeout = int(raw, "election_timeout", 1000, min_election, 50000)? as u32;
        let snapshot_count = match string(raw, "snapshot_count", "auto")?.as_str() {
            "auto" | "" => None,
            _ => Some(int(raw, "snapshot_count", 0, 1, u64::from(u32::MAX))?),
        };
        let quota_backend_bytes = match raw.get("quota_backend_bytes") {
            Some(Value::Number(n)) if n.as_u64() == Some(0) => 0,
            _ => int(raw, "quota_backend_bytes", 0, 16 * 1024 * 1024, MAX_QUOTA).map_err(|e| {
                ConfigError {
                    expected: format!("0 (etcd's default, 2 GiB) or {}", e.expected),
                    ..e
                }
            })?,
        };
        let auto_compaction_mode = one_of(
            raw,
            "auto_compaction_mode",
            "periodic",
            &["periodic", "revision"],
        )?;
        let retention = string(raw, "auto_compaction_retention", "0")?;
        if !valid_retention(&auto_compaction_mode, &retention) {
            let expected = match auto_compaction_mode.as_str() {
                "periodic" => "0, a number of hours, or a duration such as 30m or 1h30m",
                _ => "a number of revisions (revision mode)",
            };
            return Err(invalid(
                "auto_compaction_retention",
                &Value::String(retention),
                expected,
            ));
        }
        let log_level = one_of(raw, "log_level", "info", &LOG_LEVELS)?;
        let bind_to_all_interfaces = boolean(raw, "bind_to_all_interfaces")?;
        let tls = boolean_or(raw, "tls", d.tls)?;
        let enable_v2 = boolean(raw, "enable_v2")?;
        let metrics_port = int(raw, "metrics_port", d.metrics_port.into(), 1, 65535)? as u16;
        if [port, management_port].contains(&metrics_port) {
            let v = Value::from(metrics_port);
            return Err(invalid(
                "metrics_port",
                &v,
                "different from port and management_port",
            ));
        }
        for (option, p) in [
            ("port", port),
            ("management_port", management_port),
            ("metrics_port", metrics_port),
        ] {
            if p == FACTS_PORT {
                let expected = format!(
                    "an integer from 1 to 65535 but {FACTS_PORT}, the charm's facts exporter port"
                );
                return Err(invalid(option, &Value::from(p), &expected));
            }
        }
        let schedule = string(raw, "backup_schedule", "")?;
        let backup_period = backup::parse_schedule(&schedule)
            .map_err(|e| invalid("backup_schedule", &Value::String(schedule), &e))?;
        let backup_retention = Retention {
            count: int(raw, "backup_retention_count", 0, 0, 10_000)? as u32,
            days: int(raw, "backup_retention_days", 0, 0, 36_500)? as u32,
        };
        let maintenance = Maintenance::parse(raw)?;
        let certificates = certificate_policy(raw)?;
        Ok(CharmConfig {
            port,
            management_port,
            heartbeat_interval,
            election_timeout,
            snapshot_count,
            quota_backend_bytes,
            auto_compaction_mode,
            auto_compaction_retention: retention,
            log_level,
            bind_to_all_interfaces,
            tls,
            enable_v2,
            metrics_port,
            backup_period,
            backup_retention,
            maintenance,
            certificates,
        })
    }
}

/// `tls_cert_validity_days` and `tls_renew_before_days`: the margin must be shorter than the
/// validity, else a certificate would be due again as soon as it is renewed.
fn certificate_policy(raw: &Map<String, Value>) -> Result<CertificatePolicy, ConfigError> {
    let d = CertificatePolicy::default();
    let validity = int(
        raw,
        "tls_cert_validity_days",
        d.validity_days,
        1,
        MAX_VALIDITY,
    )?;
    let max_margin = validity - 1;
    let margin = int(
        raw,
        "tls_renew_before_days",
        d.renew_before_days,
        0,
        max_margin,
    )
    .map_err(|e| ConfigError {
        expected: format!("{} (less than tls_cert_validity_days)", e.expected),
        ..e
    })?;
    Ok(CertificatePolicy {
        validity_days: validity,
        renew_before_days: margin,
    })
}

impl CharmConfig {
    /// The backend quota etcd enforces, in bytes (`quota_backend_bytes`, 0: etcd's 2 GiB).
    pub fn quota(&self) -> u64 {
        match self.quota_backend_bytes {
            0 => 2 * 1024 * 1024 * 1024,
            q => q,
        }
    }
}

/// `enable_v2=true` with an etcd that has no v2 API (3.6 and later): the error to show.
pub fn v2_unsupported(version: &str) -> ConfigError {
    ConfigError {
        option: "enable_v2".into(),
        value: "true".into(),
        expected: format!(
            "false with etcd {version}: etcd 3.6 removed the v2 API (attach etcd 3.5.x for v2 consumers)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CharmConfig, ConfigError> {
        CharmConfig::try_from(v.as_object().unwrap())
    }

    #[test]
    fn defaults_from_nulls() {
        let c = parse(json!({"port": 2379, "snapshot_count": "auto", "log_level": null})).unwrap();
        assert_eq!(c, CharmConfig::default());
    }

    #[test]
    fn valid_values() {
        let c = parse(json!({
            "snapshot_count": "10000", "quota_backend_bytes": 8589934592u64,
            "auto_compaction_retention": "1h30m", "log_level": "warn",
        }))
        .unwrap();
        assert_eq!(c.snapshot_count, Some(10000));
        assert_eq!(c.quota_backend_bytes, 8589934592);
        assert_eq!(c.auto_compaction_retention, "1h30m");
    }

    #[test]
    fn invalid_values_name_the_option_and_range() {
        let e = parse(json!({"heartbeat_interval": 200, "election_timeout": 500})).unwrap_err();
        assert_eq!(e.option, "election_timeout");
        assert_eq!(e.expected, "an integer from 1000 to 50000");
        let e = parse(json!({"port": 2380})).unwrap_err();
        assert_eq!(e.option, "management_port");
        let e = parse(json!({"log_level": "loud"})).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("invalid config log_level=loud: must be one of debug"));
        let e =
            parse(json!({"auto_compaction_mode": "revision", "auto_compaction_retention": "5m"}));
        assert_eq!(e.unwrap_err().option, "auto_compaction_retention");
        let e = parse(json!({"quota_backend_bytes": 5})).unwrap_err();
        assert!(e.expected.starts_with("0 (etcd's default"));
        assert_eq!(parse(json!({"port": 0})).unwrap_err().option, "port");
        assert_eq!(parse(json!({"tls": "yes"})).unwrap_err().option, "tls");
        assert!(parse(json!({"tls": true})).unwrap().tls);
        let e = parse(json!({"enable_v2": "on"})).unwrap_err();
        assert_eq!(
            (e.option.as_str(), e.expected.as_str()),
            ("enable_v2", "true or false")
        );
        assert!(parse(json!({"enable_v2": true})).unwrap().enable_v2);
    }

    #[test]
    fn certificate_options() {
        let c = parse(json!({"tls_cert_validity_days": 2, "tls_renew_before_days": 1})).unwrap();
        assert_eq!(
            (
                c.certificates.validity_days,
                c.certificates.renew_before_days
            ),
            (2, 1)
        );
        let e = parse(json!({"tls_cert_validity_days": 0})).unwrap_err();
        assert_eq!(e.option, "tls_cert_validity_days");
        let e = parse(json!({"tls_cert_validity_days": 30, "tls_renew_before_days": 30}));
        let e = e.unwrap_err();
        assert_eq!(e.option, "tls_renew_before_days");
        assert_eq!(
            e.expected,
            "an integer from 0 to 29 (less than tls_cert_validity_days)"
        );
    }

    #[test]
    fn metrics_port_is_checked() {
        assert_eq!(
            parse(json!({"metrics_port": 9000})).unwrap().metrics_port,
            9000
        );
        let e = parse(json!({"metrics_port": 70000})).unwrap_err();
        assert_eq!(
            (e.option.as_str(), e.expected.as_str()),
            ("metrics_port", "an integer from 1 to 65535")
        );
        let e = parse(json!({"metrics_port": 2380})).unwrap_err();
        assert_eq!(e.expected, "different from port and management_port");
        let e = parse(json!({"port": FACTS_PORT})).unwrap_err();
        assert_eq!(e.option, "port");
        assert!(e.expected.contains("facts exporter"));
    }

    #[test]
    fn backup_options() {
        let c = parse(json!({"backup_schedule": "6h", "backup_retention_count": 7,
            "backup_retention_days": "30"}))
        .unwrap();
        assert_eq!(c.backup_period, Some(6 * 3600));
        assert_eq!(c.backup_retention, Retention { count: 7, days: 30 });
        assert_eq!(
            parse(json!({"backup_schedule": ""})).unwrap().backup_period,
            None
        );
        let e = parse(json!({"backup_schedule": "0 3 * * *"})).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "invalid config backup_schedule=0 3 * * *: must be empty (no scheduled backups), \
                 hourly, daily, weekly, or a period"
            ),
            "{e}"
        );
        let e = parse(json!({"backup_retention_count": -1})).unwrap_err();
        assert_eq!(
            (e.option.as_str(), e.expected.as_str()),
            ("backup_retention_count", "an integer from 0 to 10000")
        );
    }

    #[test]
    fn maintenance_options() {
        let m = parse(json!({})).unwrap().maintenance;
        assert_eq!(m, Maintenance::default());
        assert!(m.defrag_on() && m.nospace_recovery);
        let m = parse(
            json!({"defrag_free_percent": 30, "defrag_free_bytes": "1048576",
                             "defrag_interval": 0, "auto_nospace_recovery": false}),
        );
        let m = m.unwrap().maintenance;
        assert_eq!(
            (m.free_percent, m.free_bytes, m.interval_secs),
            (30, 1048576, 0)
        );
        assert!(!m.nospace_recovery);
        for off in [
            json!({"auto_defrag": false}),
            json!({"defrag_free_percent": 0}),
            json!({"defrag_free_bytes": 0}),
        ] {
            assert!(!parse(off).unwrap().maintenance.defrag_on());
        }
        let bad = [
            (
                json!({"defrag_free_percent": 101}),
                "defrag_free_percent",
                "an integer from 0 to 100",
            ),
            (
                json!({"defrag_free_bytes": -1}),
                "defrag_free_bytes",
                "an integer from 0 to 107374182400",
            ),
            (
                json!({"defrag_interval": 10081}),
                "defrag_interval",
                "an integer from 0 to 10080",
            ),
            (
                json!({"auto_defrag": "yes"}),
                "auto_defrag",
                "true or false",
            ),
            (
                json!({"auto_nospace_recovery": 1}),
                "auto_nospace_recovery",
                "true or false",
            ),
        ];
        for (raw, option, expected) in bad {
            let e = parse(raw).unwrap_err();
            assert_eq!((e.option.as_str(), e.expected.as_str()), (option, expected));
        }
    }
}
