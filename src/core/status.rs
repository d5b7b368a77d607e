/*!
Every workload status the charm sets, with its fixed, actionable text.

`blocked` messages say what the operator must do; `waiting` messages say for what. A command
suggested names the application as [`APP`]; [`Status::message_for`] puts in the real one.
*/

use crate::core::config::ConfigError;
use crate::core::version::Refusal;

/// Where a suggested command names the application, until [`Status::message_for`].
pub const APP: &str = "<app>";

/// Backend usage, in percent of the quota, above which the status says so.
pub const USAGE_WARNING: u64 = 80;

/// The cluster as the status round found it, for an `active` status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// Started voting members.
    pub voters: usize,
    /// Voting members that did not answer, as `etcd0 (etcd/0)`.
    pub silent: Vec<String>,
    /// Learners (non-voting members), as `etcd3 (etcd/3)`.
    pub learners: Vec<String>,
    /// Active alarms: the alarm (`NOSPACE`, `CORRUPT`) and where (a member, or `cluster`).
    pub alarms: Vec<(String, String)>,
    /// Members whose backend uses more than [`USAGE_WARNING`] % of the quota, with the percent.
    pub full: Vec<(String, u64)>,
    /// The newest verified backup's age, when it is older than twice the backup schedule.
    pub stale_backup: Option<String>,
    /// The leader recovers from NOSPACE by itself (`auto_nospace_recovery`).
    pub nospace_recovery: bool,
    /// The transport clients and peers use.
    pub transport: Transport,
    /// Certificates close to an expiry renewal cannot fix (`the client CA`, …), with the whole
    /// days left ([`crate::core::rotation::expiring`]).
    pub expiring: Vec<(&'static str, u64)>,
    /// The external CA's phase or provider ([`crate::core::certificates::status_note`]).
    pub external_ca: Option<String>,
}

/// The transport of a running cluster, as an `active` status tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// TLS with client certificates (the default).
    #[default]
    Tls,
    /// Plain http, as the `tls` option asks.
    Plain,
    /// Kept across a refresh although the `tls` option now reads `option`
    /// ([`crate::core::transport`]).
    Kept {
        /// What the option reads.
        option: bool,
    },
}

impl Transport {
    /// What the status adds, if anything.
    fn note(self) -> Option<String> {
        let set = |v: bool| format!("`juju config {APP} tls={v}`");
        Some(match self {
            Transport::Tls => return None,
            Transport::Plain => format!("{PLAIN}: switch to TLS with {}", set(true)),
            Transport::Kept { option: true } => format!(
                "kept on plain http across the refresh although tls now reads true, {PLAIN}: keep http with {}, or switch to TLS with {} then {}",
                set(false),
                set(false),
                set(true)
            ),
            Transport::Kept { option: false } => format!(
                "kept on TLS across the refresh although tls now reads false: keep TLS with {}, or switch to plain http with {} then {}",
                set(true),
                set(true),
                set(false)
            ),
        })
    }
}

/// What plain http means for the cluster.
const PLAIN: &str = "unencrypted and unauthenticated (anyone who reaches the client port reads and writes every key)";

impl Health {
    /// `voters` voting members, all healthy, nothing to report (NOSPACE recovered from by
    /// the leader, as by default).
    pub fn healthy(voters: usize) -> Health {
        Health {
            voters,
            nospace_recovery: true,
            ..Health::default()
        }
    }

    /// [`Health::healthy`], on plain http.
    pub fn plain(voters: usize) -> Health {
        Health {
            transport: Transport::Plain,
            ..Health::healthy(voters)
        }
    }

    fn message(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let n = self.voters;
        let mut m = match self.silent.len() {
            0 => format!("{n} member{} healthy", plural(n)),
            k => format!(
                "{} of {n} members healthy: {} {} not answer",
                n.saturating_sub(k),
                self.silent.join(", "),
                if k == 1 { "does" } else { "do" }
            ),
        };
        for (alarm, on) in &self.alarms {
            let advice = match (alarm.as_str(), self.nospace_recovery) {
                // Only while every member answers can the leader recover by itself.
                ("NOSPACE", true) if self.silent.is_empty() => {
                    format!("{NOSPACE_BY_ITSELF} (by hand: {NOSPACE_BY_HAND})")
                }
                _ => alarm_advice(alarm),
            };
            m.push_str(&format!("; alarm {alarm} on {on}: {advice}"));
        }
        let nospace = self.alarms.iter().any(|(a, _)| a == "NOSPACE");
        for (who, percent) in &self.full {
            m.push_str(&format!("; {who} uses {percent}% of the backend quota"));
            if !nospace {
                m.push_str(&format!(
                    ": run `juju run {APP}/leader compact` then `juju run {APP}/leader defrag all=true`, or raise quota_backend_bytes"
                ));
            }
        }
        if !self.learners.is_empty() {
            let k = self.learners.len();
            m.push_str(&format!(
                "; learner{} {} not yet promoted",
                plural(k),
                self.learners.join(", ")
            ));
        }
        if n % 2 == 0 {
            m.push_str("; an odd number of units is recommended");
        }
        if let Some(note) = self.transport.note() {
            m.push_str(&format!("; {note}"));
        }
        for (what, days) in &self.expiring {
            m.push_str(&format!("; {what} {}", expiry_advice(what, *days)));
        }
        if let Some(note) = &self.external_ca {
            m.push_str(&format!("; {note}"));
        }
        if let Some(age) = &self.stale_backup {
            m.push_str(&format!(
                "; the last verified backup is {age} old, over twice backup_schedule: see `juju debug-log` and `juju run {APP}/leader list-backups`"
            ));
        }
        m
    }
}

/// When a certificate renewal cannot fix expires, and what to do.
fn expiry_advice(what: &str, days: u64) -> String {
    let when = match days {
        0 => "expires within a day".to_string(),
        1 => "expires in 1 day".to_string(),
        n => format!("expires in {n} days"),
    };
    match what.ends_with("CA") {
        true => format!("{when}: the charm does not renew its CAs; replace the cluster's CA before then"),
        false => format!("{when} and is not renewed yet: the leader renews it at its next hook; check that the application has a leader (`juju status`) and see `juju debug-log`"),
    }
}

/// What to do about NOSPACE when the leader recovers from it by itself.
const NOSPACE_BY_ITSELF: &str = "writes refused, the backend quota is full: delete what is not needed; the leader then compacts, defragments and disarms it by itself at update-status";

/// How to recover from NOSPACE by hand.
const NOSPACE_BY_HAND: &str = "run `juju run <app>/leader compact`, `juju run <app>/leader defrag all=true`, then `juju run <app>/leader alarm-disarm`";

/// What to do about an active alarm.
fn alarm_advice(alarm: &str) -> String {
    match alarm {
        "NOSPACE" => format!("writes refused, the backend quota is full: {NOSPACE_BY_HAND}"),
        "CORRUPT" => format!(
            "writes refused, members' data differ: rebuild the corrupt member as the README's \"Data corruption\" says, then `juju run {APP}/leader alarm-disarm alarm=corrupt`"
        ),
        _ => format!("see `juju run {APP}/leader alarm-list`"),
    }
}

/// One step of the leader's automatic maintenance ([`crate::core::maintenance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chore {
    /// Defragment one member: because it is fragmented, or in a NOSPACE recovery.
    Defrag {
        /// The member, as `etcd1 (etcd/1)`.
        member: String,
        /// Its id.
        id: u64,
        /// Its client URL.
        endpoint: String,
        /// Its free bytes (database size minus the part in use) when observed.
        free: u64,
        /// Its database size when observed.
        size: u64,
        /// Part of a NOSPACE recovery.
        nospace: bool,
    },
    /// NOSPACE recovery: compact the history to the current revision.
    Compact,
    /// NOSPACE recovery: disarm the NOSPACE alarm of these members (0: the cluster's).
    Disarm(Vec<u64>),
}

impl Chore {
    /// What it does, for the status and the log.
    pub fn describe(&self) -> String {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        match self {
            Chore::Defrag {
                member,
                nospace: true,
                ..
            } => format!("recovering from NOSPACE: defragmenting {member}"),
            Chore::Defrag {
                member, free, size, ..
            } => format!(
                "automatic maintenance: defragmenting {member} ({} free of its {} database)",
                mib(*free),
                mib(*size)
            ),
            Chore::Compact => {
                "recovering from NOSPACE: compacting the history to the current revision".into()
            }
            Chore::Disarm(_) => "recovering from NOSPACE: disarming the alarm".into(),
        }
    }
}

/// Where a unit stands while the cluster switches to or off TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchStep {
    /// Another unit switches now.
    Next(String),
    /// No unit's turn now (the leader grants the next once a quorum is healthy).
    Pending,
    /// This unit's turn: the leader updates its member's peer URL first.
    PeerUrl,
    /// This unit restarts etcd on the new scheme now.
    ThisUnit,
}

/// A workload status of this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// This unit's member is a healthy voting member; how the cluster's members answered.
    Active(Health),
    /// etcd is being installed.
    Installing,
    /// The Juju leader is starting a new one-member cluster.
    Bootstrapping,
    /// etcd is being (re)started on this unit.
    Starting,
    /// This unit was admitted as a learner and is starting.
    Joining,
    /// This unit's member is a learner, waiting for the leader to promote it.
    Learner,
    /// This unit's data dir belongs to a member removed from the cluster: it is wiped to rejoin.
    Rejoining,
    /// This unit is leaving the cluster.
    Leaving,
    /// No address on the `cluster` binding yet.
    WaitAddress,
    /// The leader has not bootstrapped the cluster yet.
    WaitBootstrap,
    /// Waiting for the leader to admit this unit; `behind` is the unit joining first, if any.
    WaitAdmission {
        /// The unit currently joining.
        behind: Option<String>,
    },
    /// New settings need etcd restarted: waiting for the leader's go-ahead (one member restarts
    /// at a time); `behind` is the unit restarting now, if any.
    WaitRestart {
        /// The unit restarting now.
        behind: Option<String>,
    },
    /// etcd is being restarted with new settings (this unit's turn).
    Restarting,
    /// etcd was restarted: waiting for its member to be healthy before the next unit's turn.
    WaitRestarted,
    /// Leader: the next restart waits until enough other members are healthy to keep a quorum.
    RestartPaused {
        /// The unit whose turn it would be.
        unit: String,
        /// Other voting members that answered with a Raft leader.
        healthy: usize,
        /// Other voting members.
        others: usize,
        /// How many must be healthy.
        needed: usize,
    },
    /// No member of the cluster answers.
    WaitCluster,
    /// The local member runs but has no Raft leader yet.
    WaitHealthy,
    /// Juju lacks leader election.
    NoLeadership,
    /// A config value is invalid.
    InvalidConfig(ConfigError),
    /// The cluster is switching to (`tls`) or off TLS, one member at a time.
    SwitchingTls {
        /// The scheme switched to: https when true.
        tls: bool,
        /// Where this unit stands.
        step: SwitchStep,
    },
    /// The CAs are being rotated (`rotate-ca`); this unit's member is healthy.
    RotatingCa {
        /// The phase, of 3.
        phase: u8,
        /// What happens in it.
        what: &'static str,
    },
    /// TLS is on and the leader has not published the cluster's CA yet.
    WaitTlsCa,
    /// This unit has requested its TLS certificates and has none yet.
    WaitTlsCert,
    /// etcd could not be installed: no resource and no package archive.
    NoResource(String),
    /// The attached `etcd` resource was not installed (a downgrade, a skipped minor version, not
    /// etcd): etcd keeps its binaries until a good resource is attached.
    ResourceRefused(Refusal),
    /// The unit cannot leave without breaking quorum.
    CannotLeave(String),
    /// etcd is stopped because the unit is going away.
    Stopped,
    /// The storage volume holds another unit's member data: waiting for the member list.
    VolumeCheck,
    /// The storage volume holds the data of a member the cluster still lists whose unit is still
    /// in the peer relation: not started (never two copies of one member).
    VolumeOfListedMember {
        /// The member id recorded on the volume.
        id: u64,
        /// The unit that ran it.
        unit: String,
    },
    /// The storage volume holds the data of a member the cluster still lists, its unit gone:
    /// rejoining as that member on that data (no resync).
    VolumeRejoin {
        /// The member id recorded on the volume.
        id: u64,
        /// The unit that ran it.
        unit: String,
    },
    /// The storage volume held the data of a removed member: set aside, joining as a new one.
    VolumeSetAside {
        /// The member id recorded on the volume.
        id: u64,
        /// The unit that ran it.
        unit: String,
    },
    /// The leader runs a step of automatic maintenance now.
    Maintaining(Chore),
}

impl Status {
    /// The Juju status name: `active`, `maintenance`, `waiting` or `blocked`.
    pub fn state(&self) -> &'static str {
        use Status::*;
        match self {
            Active(h) if !h.alarms.is_empty() => "blocked",
            Active(_) => "active",
            SwitchingTls {
                step: SwitchStep::ThisUnit,
                ..
            } => "maintenance",
            RotatingCa { .. }
            | Installing
            | Bootstrapping
            | Starting
            | Joining
            | Learner
            | Rejoining
            | Leaving
            | Restarting
            | Stopped
            | VolumeSetAside { .. }
            | VolumeRejoin { .. }
            | Maintaining(_) => "maintenance",
            WaitAddress
            | WaitBootstrap
            | WaitAdmission { .. }
            | WaitRestart { .. }
            | WaitRestarted
            | RestartPaused { .. }
            | WaitCluster
            | WaitHealthy
            | WaitTlsCa
            | WaitTlsCert
            | VolumeCheck
            | VolumeOfListedMember { .. }
            | SwitchingTls { .. } => "waiting",
            NoLeadership | InvalidConfig(_) | NoResource(_) | ResourceRefused(_)
            | CannotLeave(_) => "blocked",
        }
    }

    /// The same status once `alarm` has been disarmed.
    pub fn without_alarm(&self, alarm: &str) -> Status {
        match self {
            Status::Active(h) => {
                let mut h = h.clone();
                h.alarms.retain(|(a, _)| a != alarm);
                Status::Active(h)
            }
            other => other.clone(),
        }
    }

    /// The status message, its commands naming application `app`.
    pub fn message_for(&self, app: &str) -> String {
        self.message().replace(APP, app)
    }

    /// The status message, its commands naming the application as [`APP`].
    pub fn message(&self) -> String {
        use Status::*;
        match self {
            Active(health) => health.message(),
            Installing => "installing etcd".into(),
            Bootstrapping => "bootstrapping a new etcd cluster".into(),
            Starting => "starting etcd".into(),
            Joining => "joining the cluster as a learner".into(),
            Learner => "learner: waiting for the leader to promote this member".into(),
            Rejoining => "this member was removed from the cluster: wiping its data to rejoin".into(),
            Leaving => "leaving the cluster".into(),
            WaitAddress => "waiting for an address on the cluster binding".into(),
            WaitBootstrap => "waiting for the leader to bootstrap the cluster".into(),
            WaitAdmission { behind: None } => {
                "waiting for the leader to admit this unit to the cluster".into()
            }
            WaitAdmission { behind: Some(u) } => {
                format!("waiting for the leader to admit this unit ({u} joins first)")
            }
            WaitRestart { behind: None } => {
                "waiting for its turn to restart etcd with the new settings".into()
            }
            WaitRestart { behind: Some(u) } => {
                format!("waiting for its turn to restart etcd with the new settings ({u} restarts first)")
            }
            Restarting => "restarting etcd with the new settings".into(),
            WaitRestarted => {
                "restarted etcd: waiting for its member to be healthy before the next restart".into()
            }
            RestartPaused {
                unit,
                healthy,
                others,
                needed,
            } => format!(
                "rolling restart paused: {healthy} of {others} other members healthy, {needed} needed before {unit} may restart"
            ),
            WaitCluster => "waiting for a member of the etcd cluster to answer".into(),
            WaitHealthy => "waiting for etcd to elect a leader".into(),
            NoLeadership => "this charm needs Juju's leader election (Juju >= 1.23.2): upgrade Juju, then redeploy or run `juju resolved`".into(),
            InvalidConfig(e) => e.to_string(),
            SwitchingTls { tls, step } => {
                let what = if *tls { "switching to TLS" } else { "switching off TLS" };
                let scheme = if *tls { "https" } else { "http" };
                match step {
                    SwitchStep::Next(u) => format!("{what}: {u} next"),
                    SwitchStep::Pending => format!("{what}: waiting for the next member's turn"),
                    SwitchStep::PeerUrl => format!(
                        "{what}: this member next, once the leader has updated its peer URL to {scheme}"
                    ),
                    SwitchStep::ThisUnit => format!("{what}: restarting etcd on {scheme}"),
                }
            }
            RotatingCa { phase, what } => format!("rotating the CA: phase {phase} of 3, {what}"),
            WaitTlsCa => "waiting for the leader to create the cluster's TLS certificate authority".into(),
            WaitTlsCert => "waiting for the leader to sign this unit's TLS certificates".into(),
            NoResource(why) => format!(
                "cannot install etcd ({why}): attach the etcd resource with `juju attach-resource {APP} etcd=./etcd.tar.gz`"
            ),
            ResourceRefused(r) => refusal_message(r),
            CannotLeave(why) => format!(
                "cannot leave the cluster without breaking quorum ({why}): bring the other members back or remove dead units first"
            ),
            Stopped => "etcd stopped".into(),
            VolumeCheck => {
                "waiting for the member list to check the data on the attached storage".into()
            }
            VolumeOfListedMember { id, unit } => format!(
                "the attached storage holds the data of member {id:x}, which the cluster still lists, and {unit} is still in the application: etcd not started; once {unit} is gone (`juju remove-unit {unit} --force` if its machine is lost) this unit rejoins as that member"
            ),
            VolumeRejoin { id, unit } => format!(
                "rejoining the cluster as member {id:x} (of {unit}) on its data on the attached storage"
            ),
            VolumeSetAside { id, unit } => format!(
                "the attached storage held the data of removed member {id:x} ({unit}): kept aside on it as data.removed-<time>, delete it when no longer needed; joining as a new member"
            ),
            Maintaining(chore) => chore.describe(),
        }
    }
}

/// What to run to attach another release tarball.
const ATTACH: &str = "with `juju attach-resource <app> etcd=./etcd-vX.Y.Z-linux-amd64.tar.gz`";

fn refusal_message(r: &Refusal) -> String {
    match r {
        Refusal::Downgrade {
            offered,
            current,
            attach,
        } => format!(
            "etcd resource {offered} refused: a downgrade from {current}, which etcd does not support; nothing changed: attach etcd {attach} {ATTACH}"
        ),
        Refusal::SkipsMinor {
            offered,
            current,
            next,
        } => format!(
            "etcd resource {offered} refused: it skips a minor version from {current} (etcd upgrades one minor version at a time); nothing changed: attach etcd {next} first {ATTACH}"
        ),
        Refusal::TooOld { found, source } => format!(
            "etcd {found} from {source} refused: the charm needs etcd 3.4 or later (Ubuntu 20.04 ships 3.2, 22.04 ships 3.3); nothing installed or started: attach etcd 3.5.x {ATTACH}"
        ),
        Refusal::NotEtcd {
            why,
            current,
            attach,
        } => format!(
            "etcd resource refused: not an etcd release ({why}); etcd {current} stays: attach etcd {attach} {ATTACH}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_warns_of_a_stale_backup() {
        let h = Health {
            stale_backup: Some("2d 1h".into()),
            ..Health::healthy(3)
        };
        assert_eq!(
            Status::Active(h).message_for("etcd"),
            "3 members healthy; the last verified backup is 2d 1h old, over twice \
             backup_schedule: see `juju debug-log` and `juju run etcd/leader list-backups`"
        );
    }

    #[test]
    fn active_warns_of_expiries_renewal_cannot_fix() {
        let h = Health {
            expiring: vec![("the client CA", 12), ("this unit's certificates", 0)],
            ..Health::healthy(3)
        };
        let m = Status::Active(h).message_for("etcd");
        assert!(m.starts_with("3 members healthy; the client CA expires in 12 days: "));
        assert!(m.contains("; this unit's certificates expires within a day and is not renewed"));
    }

    #[test]
    fn active_notes_even_clusters() {
        let m = |h: Health| Status::Active(h).message_for("db");
        assert_eq!(m(Health::healthy(1)), "1 member healthy");
        assert_eq!(
            m(Health::healthy(2)),
            "2 members healthy; an odd number of units is recommended"
        );
        assert_eq!(m(Health::healthy(3)), "3 members healthy");
        let one_down = Health {
            silent: vec!["etcd0 (etcd/0)".into()],
            ..Health::healthy(3)
        };
        assert_eq!(
            m(one_down),
            "2 of 3 members healthy: etcd0 (etcd/0) does not answer"
        );
        let corrupt = Status::Active(Health {
            alarms: vec![("CORRUPT".into(), "cluster".into())],
            ..Health::healthy(3)
        });
        assert_eq!(corrupt.state(), "blocked");
        let text = corrupt.message_for("db");
        assert!(
            text.contains("alarm CORRUPT on cluster: writes refused"),
            "{text}"
        );
        assert!(
            text.contains("`juju run db/leader alarm-disarm alarm=corrupt`"),
            "{text}"
        );
        assert!(!text.contains(APP), "{text}");
        assert_eq!(Status::NoLeadership.state(), "blocked");
        let wait = Status::WaitRestart {
            behind: Some("etcd/1".into()),
        };
        assert_eq!(wait.state(), "waiting");
        assert!(wait
            .message()
            .starts_with("waiting for its turn to restart"));
        assert_eq!(Status::Restarting.state(), "maintenance");
        assert!(Status::NoLeadership.message().contains("Juju >= 1.23.2"));
        let refused = Status::ResourceRefused(Refusal::Downgrade {
            offered: "3.4.23".into(),
            current: "3.5.1".into(),
            attach: "3.5.x or 3.6.x".into(),
        });
        assert_eq!(refused.state(), "blocked");
        assert_eq!(
            refused.message(),
            "etcd resource 3.4.23 refused: a downgrade from 3.5.1, which etcd does not support; \
             nothing changed: attach etcd 3.5.x or 3.6.x with `juju attach-resource <app> \
             etcd=./etcd-vX.Y.Z-linux-amd64.tar.gz`"
        );
        let old = Status::ResourceRefused(Refusal::TooOld {
            found: "3.3.25".into(),
            source: "the etcd resource".into(),
        });
        assert_eq!(old.state(), "blocked");
        assert_eq!(
            old.message_for("etcd"),
            "etcd 3.3.25 from the etcd resource refused: the charm needs etcd 3.4 or later \
             (Ubuntu 20.04 ships 3.2, 22.04 ships 3.3); nothing installed or started: attach etcd \
             3.5.x with `juju attach-resource etcd etcd=./etcd-vX.Y.Z-linux-amd64.tar.gz`"
        );
        let nospace = Status::Active(Health {
            alarms: vec![("NOSPACE".into(), "etcd1 (etcd/1)".into())],
            ..Health::healthy(3)
        });
        assert_eq!(
            nospace.message(),
            format!(
                "3 members healthy; alarm NOSPACE on etcd1 (etcd/1): {NOSPACE_BY_ITSELF} (by hand: \
                 {NOSPACE_BY_HAND})"
            )
        );
        let defrag = Status::Maintaining(Chore::Defrag {
            member: "etcd1 (etcd/1)".into(),
            id: 2,
            endpoint: "http://10.0.0.2:2379".into(),
            free: 150 << 20,
            size: 250 << 20,
            nospace: false,
        });
        assert_eq!(defrag.state(), "maintenance");
        assert_eq!(
            defrag.message(),
            "automatic maintenance: defragmenting etcd1 (etcd/1) (150.0 MiB free of its 250.0 MiB database)"
        );
        let switching = Status::SwitchingTls {
            tls: true,
            step: SwitchStep::Next("etcd/1".into()),
        };
        assert_eq!(switching.state(), "waiting");
        assert_eq!(switching.message(), "switching to TLS: etcd/1 next");
    }
}
