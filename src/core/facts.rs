/*!
The charm's own metrics, facts etcd does not export (`cos/README.md`, "Metrics the charm
exports"): certificate expiry, the last defragmentation of this unit's member, the last
verified backup. Pure: the Prometheus text of a [`Facts`], the hardened systemd unit that
serves it on loopback, and the `notAfter` of a PEM certificate.
*/

use crate::core::config::FACTS_PORT;
use crate::core::render;
use crate::paths;

/// What the facts exporter serves, as Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// `notAfter` of each certificate the unit holds: `ca`, `member`, `client`.
    pub certificates: Vec<(&'static str, i64)>,
    /// When this unit's member last finished a defragmentation; 0 if never.
    pub last_defrag: i64,
    /// When the newest verified backup this unit knows of (its own or a peer's) was taken; `0`
    /// while scheduled backups are set up and none is known, `None` (not exported) otherwise.
    pub last_verified_backup: Option<i64>,
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, i64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (labels, v) in samples {
        out.push_str(&format!("{name}{labels} {v}\n"));
    }
}

/// The Prometheus text format (0.0.4) of `f`.
pub fn render(f: &Facts) -> String {
    let mut out = String::new();
    if !f.certificates.is_empty() {
        let certs: Vec<(String, i64)> = f
            .certificates
            .iter()
            .map(|(c, t)| (format!("{{certificate=\"{c}\"}}"), *t))
            .collect();
        gauge(
            &mut out,
            "etcd_charm_certificate_expiry_timestamp_seconds",
            "notAfter of a certificate this unit holds, in Unix seconds.",
            &certs,
        );
    }
    gauge(
        &mut out,
        "etcd_charm_last_defrag_timestamp_seconds",
        "When this unit's member last finished a defragmentation, in Unix seconds (0: never).",
        &[(String::new(), f.last_defrag)],
    );
    if let Some(t) = f.last_verified_backup {
        gauge(
            &mut out,
            "etcd_charm_last_verified_backup_timestamp_seconds",
            "When the newest backup a test restore verified was taken, in Unix seconds (0: none yet).",
            &[(String::new(), t)],
        );
    }
    out
}

/// The facts exporter's systemd unit: the charm binary serving [`paths::FACTS_FILE`] on
/// `127.0.0.1:`[`FACTS_PORT`], as a dynamic user with no capabilities, loopback only.
pub fn systemd_unit() -> String {
    format!(
        "# Managed by the etcd charm: local changes are overwritten.
[Unit]
Description=etcd charm facts exporter (Prometheus text on 127.0.0.1:{port})
After=network.target

[Service]
ExecStart={bin} {mode} 127.0.0.1:{port} {file}
Restart=always
RestartSec=5s
DynamicUser=yes
UMask=0077
MemoryMax=32M
TasksMax=4
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
PrivateUsers=yes
{kernel}
RestrictAddressFamilies=AF_INET
IPAddressDeny=any
IPAddressAllow=localhost
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
{syscalls}
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
",
        kernel = render::KERNEL_PROTECTION,
        syscalls = render::SYSCALL_LIMITS,
        port = FACTS_PORT,
        bin = paths::FACTS_BIN,
        mode = SERVE_MODE,
        file = paths::FACTS_FILE,
    )
}

/// The charm binary's first argument that makes it the facts exporter.
pub const SERVE_MODE: &str = "serve-facts";

/// One DER element at the start of `der`: its tag, content, and what follows.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        n => {
            let bytes = usize::from(n & 0x7f);
            if bytes > 4 || rest.len() < bytes {
                return None;
            }
            let len = rest[..bytes]
                .iter()
                .fold(0, |l, b| (l << 8) | usize::from(*b));
            (len, &rest[bytes..])
        }
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Unix seconds of an ASN.1 UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    let days = crate::core::backup::days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// The `notAfter` of an X.509 certificate (DER), in Unix seconds.
pub fn not_after(der: &[u8]) -> Option<i64> {
    validity(der).map(|(_, after)| after)
}

/// The `notBefore` and `notAfter` of an X.509 certificate (DER), in Unix seconds.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, then validity.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (_, validity, _) = element(rest)?;
    let (tag, time, after) = element(validity)?;
    let before = asn1_time(tag, time)?;
    let (tag, time, _) = element(after)?;
    Some((before, asn1_time(tag, time)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let f = Facts {
            certificates: vec![("ca", 2_000_000_000), ("member", 1_900_000_000)],
            last_defrag: 0,
            last_verified_backup: None,
        };
        let text = render(&f);
        assert!(text.contains(
            "# TYPE etcd_charm_certificate_expiry_timestamp_seconds gauge\n\
             etcd_charm_certificate_expiry_timestamp_seconds{certificate=\"ca\"} 2000000000\n\
             etcd_charm_certificate_expiry_timestamp_seconds{certificate=\"member\"} 1900000000\n"
        ));
        assert!(text.ends_with("etcd_charm_last_defrag_timestamp_seconds 0\n"));
        assert!(!text.contains("backup"));
        let none = render(&Facts {
            last_verified_backup: Some(5),
            ..Facts::default()
        });
        assert!(!none.contains("certificate"));
        assert!(none.ends_with("etcd_charm_last_verified_backup_timestamp_seconds 5\n"));
    }

    #[test]
    fn asn1_times() {
        assert_eq!(asn1_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(asn1_time(0x17, b"360506123000Z"), Some(2_093_689_800));
        assert_eq!(asn1_time(0x18, b"20360506123000Z"), Some(2_093_689_800));
        assert_eq!(asn1_time(0x18, b"2036050612300Z"), None);
        assert_eq!(not_after(b"\x30\x01"), None);
    }

    #[test]
    fn unit_serves_loopback_only() {
        let u = systemd_unit();
        assert!(u.contains(&format!("{} serve-facts 127.0.0.1:9379 ", paths::FACTS_BIN)));
        assert!(u.contains("DynamicUser=yes\n") && u.contains("IPAddressDeny=any\n"));
        assert!(u.contains("CapabilityBoundingSet=\n"));
    }
}
