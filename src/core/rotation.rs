/*!
Certificate renewal, as pure decisions: from the validity dates of the certificates the leader
issued (in leader data) and the clock, what the leader issues again, and which expiries renewal
cannot fix.

- Every certificate the charm's CAs sign (members' client-port and peer certificates, the units'
  own client certificates, each consumer's and the shared one without a common name) is valid
  [`CertificatePolicy::validity_days`] ([`window`]), and is issued again [`CertificatePolicy::renew_before_days`]
  before it expires, or as soon as its validity is not the configured one (the option changed).
- A renewal keeps the key: the leader signs the same request (a consumer's key, the shared
  client key) again, so a member's files change only in their certificates, which etcd reads at
  each new TLS handshake: no restart, and no handshake ever pairs a new key with an old
  certificate.
- The CAs are not renewed (their validity is [`CA_VALIDITY_DAYS`]): [`expiring`] names a CA
  close to its expiry, and this unit's own certificates once past the date they should have
  been renewed by (no leader signs meanwhile).
*/

use crate::core::config::CertificatePolicy;
use crate::core::facts;
use crate::core::observed::{keys, Issued, Observed};

/// One day, in seconds.
const DAY: i64 = 86_400;

/// How long the CAs are valid, in days (about ten years).
pub const CA_VALIDITY_DAYS: u64 = 3652;

/// A CA expiring within this many days (or the renewal margin, if longer) is warned of.
const CA_WARNING_DAYS: u64 = 30;

/// The validity of a certificate made at `now` (Unix seconds) for `days`: from the midnight
/// (UTC) before `now`'s day (some clock skew between machines) to the midnight `days` after
/// it.
pub fn window(now: i64, days: u64) -> (i64, i64) {
    let today = now.div_euclid(DAY) * DAY;
    let days = i64::try_from(days).unwrap_or(i64::MAX / DAY / 2);
    (today - DAY, today + days * DAY)
}

/// Why a certificate is issued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// It expires within the renewal margin (or has expired).
    Expiring,
    /// Its validity is not the configured one.
    Validity,
}

/// The `notBefore` and `notAfter` (Unix seconds) of the first certificate in `pem`.
pub fn validity(pem: &str) -> Option<(i64, i64)> {
    let block = pem::parse(pem).ok()?;
    facts::validity(block.contents())
}

/// Whether the certificate `pem` must be issued again at `now` under `policy`; a certificate
/// that cannot be read is left as it is.
pub fn due(pem: &str, now: u64, policy: CertificatePolicy) -> Option<Renewal> {
    let (before, after) = validity(pem)?;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let margin = i64::try_from(policy.renew_before_days).unwrap_or(i64::MAX / DAY) * DAY;
    let (want_before, want_after) = window(0, policy.validity_days);
    if after.saturating_sub(now) <= margin {
        Some(Renewal::Expiring)
    } else if after - before != want_after - want_before {
        Some(Renewal::Validity)
    } else {
        None
    }
}

/// What the leader issued to a unit is due when any of its three certificates is.
pub fn issued_due(issued: &Issued, now: u64, policy: CertificatePolicy) -> Option<Renewal> {
    [&issued.server, &issued.peer, &issued.client]
        .into_iter()
        .find_map(|pem| due(pem, now, policy))
}

/// The certificate policy of this pass (the defaults while the config is invalid: nothing is
/// planned then).
fn policy(o: &Observed) -> CertificatePolicy {
    o.config
        .as_ref()
        .map(|c| c.certificates)
        .unwrap_or_default()
}

/// Leader: the units whose issued certificates are due, among `units` (those with current
/// certificates: others are issued anyway).
pub fn units_due<'a>(o: &Observed, units: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let policy = policy(o);
    units
        .into_iter()
        .filter(|unit| {
            let issued = o.leader_data.get(&keys::issued_key(unit));
            let issued = issued.and_then(Issued::parse);
            issued.is_some_and(|i| issued_due(&i, o.now, policy).is_some())
        })
        .collect()
}

/// Leader: whether the certificate in leader data under `key` (a consumer's, or the shared
/// one without a common name) is due.
pub fn leader_cert_due(o: &Observed, key: &str) -> bool {
    let cert = o.leader_data.get(key);
    cert.is_some_and(|c| due(c, o.now, policy(o)).is_some())
}

/// An expiry renewal cannot fix, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// What expires: `the client CA`, `the peer CA`, `this unit's certificates`.
    pub what: &'static str,
    /// Whole days left (0: today or past).
    pub days: u64,
}

/// The expiries this unit warns of: a CA within the renewal margin (at least
/// [`CA_WARNING_DAYS`]) of its expiry, and this unit's own certificates once they are past
/// their renewal date (renewal cannot happen: no leader signs).
pub fn expiring(o: &Observed) -> Vec<Expiry> {
    let policy = policy(o);
    let now = i64::try_from(o.now).unwrap_or(i64::MAX);
    let days_left = |after: i64| u64::try_from(after.saturating_sub(now) / DAY).unwrap_or(0);
    let ca_days = policy.renew_before_days.max(CA_WARNING_DAYS);
    let ld = &o.leader_data;
    let cas = [
        ("the client CA", keys::TLS_CA),
        ("the peer CA", keys::TLS_PEER_CA),
    ];
    let mut out: Vec<Expiry> = cas
        .into_iter()
        .filter_map(|(what, key)| {
            let (_, after) = validity(ld.get(key)?)?;
            let days = days_left(after);
            (days < ca_days).then_some(Expiry { what, days })
        })
        .collect();
    let own = ld.get(&keys::issued_key(&o.unit)).and_then(Issued::parse);
    let soonest = own.and_then(|i| {
        let afters = [&i.server, &i.peer, &i.client].map(|c| validity(c).map(|(_, a)| a));
        afters.into_iter().flatten().min()
    });
    let margin = i64::try_from(policy.renew_before_days).unwrap_or(0) * DAY;
    if let Some(after) = soonest.filter(|a| a.saturating_sub(now) < margin) {
        out.push(Expiry {
            what: "this unit's certificates",
            days: days_left(after),
        });
    }
    out
}

/// A certificate (PEM) made at `at` (Unix seconds), valid `days`, for tests.
#[cfg(test)]
pub fn test_certificate(at: i64, days: u64) -> String {
    let (before, after) = window(at, days);
    let mut params = rcgen::CertificateParams::default();
    let t = |t| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    (params.not_before, params.not_after) = (t(before), t(after));
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::CharmConfig;

    /// A certificate made at `at`, valid `days` (a policy's validity, or the CAs').
    fn made(at: i64, days: impl Into<Days>) -> String {
        test_certificate(at, days.into().0)
    }

    struct Days(u64);
    impl From<u64> for Days {
        fn from(d: u64) -> Days {
            Days(d)
        }
    }
    impl From<CertificatePolicy> for Days {
        fn from(p: CertificatePolicy) -> Days {
            Days(p.validity_days)
        }
    }

    const T0: i64 = 1_800_000_000;

    #[test]
    fn a_certificate_is_due_within_the_margin_or_with_another_validity() {
        let p = CertificatePolicy::default();
        let c = made(T0, p);
        assert_eq!(validity(&c), Some(window(T0, 365)));
        // Just made: not due, even the last second of the day it was made.
        assert_eq!(due(&c, T0 as u64, p), None);
        let (_, after) = window(T0, 365);
        let renew_at = after - 30 * DAY;
        assert_eq!(due(&c, renew_at as u64 - 1, p), None);
        assert_eq!(due(&c, renew_at as u64, p), Some(Renewal::Expiring));
        assert_eq!(due(&c, after as u64 + 1, p), Some(Renewal::Expiring));
        // The validity option changed: due at once; once renewed under it, not.
        let short = CertificatePolicy {
            validity_days: 2,
            renew_before_days: 1,
        };
        assert_eq!(due(&c, T0 as u64, short), Some(Renewal::Validity));
        let renewed = made(T0, short);
        assert_eq!(due(&renewed, T0 as u64, short), None);
        // The largest margin allowed never makes a new certificate due, whenever it is made.
        for offset in [0, DAY / 2, DAY - 1] {
            let at = T0.div_euclid(DAY) * DAY + offset;
            assert_eq!(due(&made(at, short), at as u64, short), None);
        }
        // Certificates from an older charm (ten years) are renewed to the configured validity.
        let old = made(T0, CA_VALIDITY_DAYS);
        assert_eq!(due(&old, T0 as u64, p), Some(Renewal::Validity));
        assert_eq!(due("not a certificate", T0 as u64, p), None);
    }

    fn observed(policy: CertificatePolicy, now: i64) -> Observed {
        let mut o = Observed::blank("etcd/0");
        o.config = Ok(CharmConfig {
            certificates: policy,
            ..CharmConfig::default()
        });
        o.now = now as u64;
        o
    }

    fn issued(cert: &str) -> String {
        let i = Issued {
            from: "from".into(),
            server: cert.into(),
            peer: cert.into(),
            client: cert.into(),
        };
        serde_json::to_string(&i).unwrap()
    }

    #[test]
    fn the_leader_renews_units_and_consumers_as_the_clock_goes() {
        let p = CertificatePolicy::default();
        let mut o = observed(p, T0);
        let ld = &mut o.leader_data.raw;
        ld.insert(keys::issued_key("etcd/0"), issued(&made(T0, p)));
        ld.insert(keys::issued_key("etcd/1"), issued(&made(T0 - 340 * DAY, p)));
        ld.insert(keys::issued_key("etcd/2"), "garbage".into());
        let consumer = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, "kube");
        ld.insert(consumer.clone(), made(T0 - 100 * DAY, p));
        ld.insert(keys::TLS_CLIENT_CERT.into(), made(T0 - 336 * DAY, p));
        let units = ["etcd/0", "etcd/1", "etcd/2", "etcd/3"];
        assert_eq!(units_due(&o, units), ["etcd/1"]);
        assert!(!leader_cert_due(&o, &consumer));
        assert!(leader_cert_due(&o, keys::TLS_CLIENT_CERT));
        assert!(!leader_cert_due(&o, "absent"));
        // 340 days on, the consumer's is due too (expired), and etcd/0's.
        o.now += 340 * DAY as u64;
        assert!(leader_cert_due(&o, &consumer));
        assert_eq!(units_due(&o, units), ["etcd/0", "etcd/1"]);
    }

    #[test]
    fn status_warns_of_what_renewal_cannot_fix() {
        let p = CertificatePolicy::default();
        let mut o = observed(p, T0);
        let ca = made(T0, CA_VALIDITY_DAYS);
        o.leader_data.raw.insert(keys::TLS_CA.into(), ca.clone());
        o.leader_data.raw.insert(keys::TLS_PEER_CA.into(), ca);
        o.leader_data
            .raw
            .insert(keys::issued_key("etcd/0"), issued(&made(T0, p)));
        assert_eq!(expiring(&o), []);
        // Its own certificates not renewed by their date: warned of.
        o.now += 340 * DAY as u64;
        let own = expiring(&o);
        assert_eq!(own.len(), 1);
        assert_eq!((own[0].what, own[0].days), ("this unit's certificates", 24));
        // The CAs, 30 days ahead (the margin is not longer).
        let (_, ca_end) = window(T0, CA_VALIDITY_DAYS);
        o.now = (ca_end - 30 * DAY + 1) as u64;
        let whats: Vec<(&str, u64)> = expiring(&o).iter().map(|e| (e.what, e.days)).collect();
        assert_eq!(
            whats,
            [
                ("the client CA", 29),
                ("the peer CA", 29),
                ("this unit's certificates", 0)
            ]
        );
    }
}
