/*!
Which etcd versions may replace which (pure): etcd upgrades one minor version at a time and does
not support downgrades; patch versions within a minor go both ways. A new `etcd` resource is
installed only when its version is an allowed successor of every version the unit knows of (the
one installed, the one its member runs, the cluster's in leader data); else nothing changes and
the unit shows a [`Refusal`] (recorded, so later hooks keep showing it until a good resource is
attached).
*/

use serde::{Deserialize, Serialize};
use std::fmt;

/// An etcd version, `major.minor.patch` (a leading `v` and a `-suffix` are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

impl Version {
    /// Parses `3.5.1`, `v3.5.1`, `3.5.1-rc.0`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    /// `3.5.x`: any patch release of this minor version.
    pub fn minor_series(&self) -> String {
        format!("{}.{}.x", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why an `etcd` resource was not installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Its version is below a minor version the unit or the cluster runs.
    Downgrade {
        /// The resource's version.
        offered: String,
        /// The version it would go below.
        current: String,
        /// The minor series that may be attached instead (`3.5.x or 3.6.x`).
        attach: String,
    },
    /// Its version is more than one minor version above one the unit or the cluster runs.
    SkipsMinor {
        /// The resource's version.
        offered: String,
        /// The version it skips from.
        current: String,
        /// The minor series to attach first (`3.5.x`).
        next: String,
    },
    /// Its version is below [`MINIMUM`]: nothing was installed.
    TooOld {
        /// The version found.
        found: String,
        /// Where: `the etcd resource` or `the etcd-server package`.
        source: String,
    },
    /// It is not an etcd release (no `etcd`/`etcdctl`, or they do not run).
    NotEtcd {
        /// What is wrong with it.
        why: String,
        /// The version that stays installed.
        current: String,
        /// The minor series that may be attached instead.
        attach: String,
    },
}

/// The oldest etcd the charm runs: 3.4 brought learners (the charm adds every member as one)
/// and reads `enable-grpc-gateway` from its config file.
pub const MINIMUM: Version = Version {
    major: 3,
    minor: 4,
    patch: 0,
};

/// Refuses an etcd below [`MINIMUM`], found in `source` (the resource or a package).
pub fn check_supported(found: Version, source: &str) -> Result<(), Refusal> {
    match found < MINIMUM {
        true => Err(Refusal::TooOld {
            found: found.to_string(),
            source: source.to_string(),
        }),
        false => Ok(()),
    }
}

/// Is `to` an allowed successor of `from`? The same minor version (any patch, up or down) or the
/// next minor version of the same major.
pub fn check_upgrade(from: Version, to: Version) -> Result<(), Refusal> {
    let (f, t) = ((from.major, from.minor), (to.major, to.minor));
    if t == f || (to.major == from.major && to.minor == from.minor + 1) {
        return Ok(());
    }
    if t < f {
        return Err(Refusal::Downgrade {
            offered: to.to_string(),
            current: from.to_string(),
            attach: allowed_series(&[&from.to_string()]),
        });
    }
    let next = Version {
        minor: from.minor + 1,
        ..from
    };
    Err(Refusal::SkipsMinor {
        offered: to.to_string(),
        current: from.to_string(),
        next: next.minor_series(),
    })
}

/// Checks `to` against every known version (unparseable ones are ignored): refused as a
/// downgrade below the highest, or as skipping a minor above the lowest.
pub fn check_against(known: &[&str], to: Version) -> Result<(), Refusal> {
    let known: Vec<Version> = known.iter().filter_map(|v| Version::parse(v)).collect();
    let (Some(lo), Some(hi)) = (known.iter().min(), known.iter().max()) else {
        return Ok(());
    };
    check_upgrade(*hi, to).map_err(|r| match r {
        Refusal::Downgrade {
            offered, current, ..
        } => {
            let all: Vec<String> = known.iter().map(Version::to_string).collect();
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let attach = allowed_series(&all);
            Refusal::Downgrade {
                offered,
                current,
                attach,
            }
        }
        other => other,
    })?;
    check_upgrade(*lo, to)
}

/// The minor series that may be attached instead, given the versions known (`3.5.x or 3.6.x`).
pub fn allowed_series(known: &[&str]) -> String {
    let known: Vec<Version> = known.iter().filter_map(|v| Version::parse(v)).collect();
    let (Some(lo), Some(hi)) = (known.iter().min(), known.iter().max()) else {
        return "a 3.x release".into();
    };
    let next = Version {
        minor: lo.minor + 1,
        ..*lo
    };
    match next.major == hi.major && next.minor > hi.minor {
        true => format!("{} or {}", hi.minor_series(), next.minor_series()),
        false => hi.minor_series(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_release_versions() {
        assert_eq!(
            Version::parse("v3.5.21"),
            Some(Version {
                major: 3,
                minor: 5,
                patch: 21
            })
        );
        assert_eq!(Version::parse("3.6.0-rc.1"), Some(v("3.6.0")));
        assert_eq!(v("3.4.23").to_string(), "3.4.23");
        for bad in ["", "3.5", "3.5.x", "etcd", "3.5.1.2"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(v("3.4.23") < v("3.5.0"));
    }

    #[test]
    fn one_minor_up_and_patches_both_ways() {
        assert_eq!(check_upgrade(v("3.4.23"), v("3.5.1")), Ok(()));
        assert_eq!(check_upgrade(v("3.5.1"), v("3.5.21")), Ok(()));
        assert_eq!(check_upgrade(v("3.5.21"), v("3.5.1")), Ok(()));
        assert_eq!(check_upgrade(v("3.5.1"), v("3.5.1")), Ok(()));
        assert_eq!(
            check_upgrade(v("3.5.1"), v("3.4.23")),
            Err(Refusal::Downgrade {
                offered: "3.4.23".into(),
                current: "3.5.1".into(),
                attach: "3.5.x or 3.6.x".into()
            })
        );
        assert_eq!(
            check_upgrade(v("3.4.23"), v("3.6.5")),
            Err(Refusal::SkipsMinor {
                offered: "3.6.5".into(),
                current: "3.4.23".into(),
                next: "3.5.x".into()
            })
        );
        assert!(matches!(
            check_upgrade(v("3.6.5"), v("4.0.0")),
            Err(Refusal::SkipsMinor { .. })
        ));
        assert!(matches!(
            check_upgrade(v("3.0.0"), v("2.3.8")),
            Err(Refusal::Downgrade { .. })
        ));
    }

    #[test]
    fn below_3_4_is_refused() {
        assert_eq!(
            check_supported(v("3.3.25"), "the etcd resource"),
            Err(Refusal::TooOld {
                found: "3.3.25".into(),
                source: "the etcd resource".into()
            })
        );
        assert!(check_supported(v("3.2.26"), "the etcd-server package").is_err());
        assert_eq!(check_supported(v("3.4.0"), "the etcd resource"), Ok(()));
        assert_eq!(check_supported(v("3.6.5"), "the etcd resource"), Ok(()));
    }

    #[test]
    fn every_known_version_counts() {
        // Mid-upgrade: the unit has 3.5.1 installed, its member still runs 3.4.23.
        let known = ["3.5.1", "3.4.23", "garbage"];
        assert_eq!(check_against(&known, v("3.5.9")), Ok(()));
        assert!(matches!(
            check_against(&known, v("3.4.23")),
            Err(Refusal::Downgrade { current, attach, .. }) if current == "3.5.1" && attach == "3.5.x"
        ));
        assert!(matches!(
            check_against(&known, v("3.6.0")),
            Err(Refusal::SkipsMinor { current, .. }) if current == "3.4.23"
        ));
        assert_eq!(check_against(&[], v("3.6.0")), Ok(()));
        assert_eq!(allowed_series(&["3.5.1"]), "3.5.x or 3.6.x");
        assert_eq!(allowed_series(&known), "3.5.x");
        assert_eq!(allowed_series(&[]), "a 3.x release");
    }
}
