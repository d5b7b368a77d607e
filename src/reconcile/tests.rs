//! `observe` and `apply` as state transitions, on fakes of the three boundaries: facts in, the
//! calls made and the state left on the machine out. Time is the fake machine's virtual clock,
//! so a retry budget runs out without the test waiting for it.

use super::apply::{apply, ApplyError};
use super::observe::{self, observe};
use super::reconcile;
use crate::core::config::CharmConfig;
use crate::core::effect::{Effect, Plan};
use crate::core::observed::{keys, Leadership, Observed};
use crate::core::plan::plan;
use crate::core::render::{self, ClusterState, InitialCluster};
use crate::core::status::{Health, Status};
use crate::fakes::{FakeEtcd, FakeJuju, FakeMachine};
use crate::juju::context::{Hook, JujuContext};
use crate::juju::Settings;
use crate::machine::{state, Machine};
use crate::paths;
use serde_json::json;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

fn hook() -> Hook {
    Hook::Other("update-status".into())
}

/// etcd/0's machine running member etcd0 (id 1) of [`FakeEtcd::healthy`] with the default
/// config, all files in place.
fn member_machine() -> FakeMachine {
    let m = FakeMachine::installed("3.4.23");
    let init = InitialCluster {
        state: ClusterState::New,
        cluster: "etcd0=http://10.0.0.1:2380".into(),
        token: "t0k".into(),
    };
    let cfg = CharmConfig::plain();
    let config = render::etcd_config(&cfg, "3.4.23", "etcd0", "10.0.0.1", &init, &[]);
    m.put(paths::CONFIG_FILE, &config);
    m.put(paths::UNIT_FILE, &render::systemd_unit());
    m.put(paths::ETCDCTL_ENV, &render::etcdctl_env(false, 2379));
    let wrapper = render::etcdctl_wrapper(&state::real_etcdctl(&m));
    m.put(paths::ETCDCTL_WRAPPER, &wrapper);
    m.put(&format!("{}/member/snap/db", paths::DATA_DIR), "");
    state::record_member_id(&m, 1).unwrap();
    m.active.set(true);
    m
}

/// Unit `unit` (its peers etcd/1 and etcd/2) of a three-unit application whose leader data names the cluster's token.
fn juju(unit: &str) -> FakeJuju {
    let mut j = FakeJuju::new(unit, json!({}));
    for n in 1..3 {
        let peer = format!("etcd/{n}");
        let data = Settings::from([
            ("peer-url".into(), format!("http://10.0.0.{}:2380", n + 1)),
            ("client-url".into(), format!("http://10.0.0.{}:2379", n + 1)),
        ]);
        j.peers.insert(peer, data);
    }
    let ld = [(keys::TOKEN, "t0k"), (keys::BOOTSTRAP_UNIT, "etcd/0")];
    for (k, v) in ld {
        j.leader_data.borrow_mut().insert(k.into(), v.into());
    }
    j
}

/// The facts of a pass whose plan needs the CA keys (they are read).
fn observed(j: &FakeJuju, etcd: &FakeEtcd, m: &FakeMachine) -> Observed {
    observed_in(&j.ctx(), j, etcd, m)
}

/// [`observed`] in the hook context `ctx`.
fn observed_in(ctx: &JujuContext, j: &FakeJuju, etcd: &FakeEtcd, m: &FakeMachine) -> Observed {
    let mut o = observe(ctx, &hook(), j, etcd, m).unwrap();
    observe::read_ca_keys(j, &o.leader_data, &mut o.secrets);
    o
}

/// A plan of these effects only, to apply.
fn only(effects: Vec<Effect>) -> Plan {
    Plan {
        effects,
        ..Plan::only(Status::Starting)
    }
}

/// Runs passes until the plan is empty: a settled unit.
fn settle(j: &FakeJuju, etcd: &FakeEtcd, m: &FakeMachine) -> Observed {
    for _ in 0..3 {
        let o = observed(j, etcd, m);
        let p = plan(&o);
        if p.effects.is_empty() {
            return o;
        }
        apply(&p, &o, j, etcd, m).unwrap();
    }
    panic!("not settled: {:?}", plan(&observed(j, etcd, m)));
}

fn restarts(p: &Plan) -> bool {
    p.effects.iter().any(|e| matches!(e, Effect::Restart(_)))
}

fn logged(j: &FakeJuju, part: &str) -> bool {
    j.logs.borrow().iter().any(|l| l.contains(part))
}

/// An `active` status of the plain-http cluster the fakes run.
fn plain(status: &str) -> String {
    format!("{status}; unencrypted and unauthenticated (anyone who reaches the client port reads and writes every key): switch to TLS with `juju config etcd tls=true`")
}

#[test]
fn observe_reads_the_machine_and_the_local_member() {
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    let o = observed(&j, &etcd, &m);
    assert_eq!(o.leadership, Leadership::Leader);
    assert_eq!(o.local.version.as_deref(), Some("3.4.23"));
    assert!(o.local.has_data && o.local.service_active && !o.local.restart_pending);
    assert_eq!(o.local.member_id, Some(1));
    assert_eq!(o.local.status.as_ref().map(|s| s.member_id), Some(1));
    assert_eq!(o.local.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(o.local.hostname.as_deref(), Some("machine-0"));
    assert_eq!(o.members.as_ref().map(Vec::len), Some(3));
    // The local member votes: it is asked first.
    assert_eq!(o.endpoints[0], "http://127.0.0.1:2379");
    assert!(!o.departing);
    assert_eq!(o.peers.len(), 2, "the leader reads its peers");
    // Published once, then a settled member plans nothing.
    let o = settle(&j, &etcd, &m);
    assert_eq!(plan(&o).status, Status::Active(Health::plain(3)));
}

#[test]
fn observe_on_stop_asks_etcd_nothing_and_a_fresh_machine_needs_an_install() {
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    let o = observe(&j.ctx(), &Hook::Stop, &j, &etcd, &m).unwrap();
    assert_eq!((o.local.status, o.members), (None, None));
    assert!(o.local.service_active, "systemd is asked instead");

    let fresh = FakeMachine::new();
    let o = observed(&j, &etcd, &fresh);
    assert_eq!(o.local.version, None);
    assert!(!o.local.has_data && !o.local.service_active);
    assert_eq!(plan(&o).effects, [Effect::Install]);
}

#[test]
fn a_settled_follower_does_not_read_its_peers_and_a_departing_mark_sticks() {
    let mut j = juju("etcd/0");
    j.leader = false;
    let etcd = FakeEtcd::healthy(3);
    let m = member_machine();
    let o = observed(&j, &etcd, &m);
    assert!(o.peers.is_empty());
    state::mark_departing(&m).unwrap();
    assert!(observed(&j, &etcd, &m).departing);
    // With a backup schedule it reads them: the status shows the newest verified backup.
    j.config.insert("backup_schedule".into(), json!("1h"));
    let now = crate::machine::host::now_secs();
    let at = |ago: u64| (now - ago).to_string();
    let verified = |p: &mut Settings, ago| p.insert("backup-verified".into(), at(ago));
    verified(j.peers.get_mut("etcd/1").unwrap(), 9000);
    verified(j.peers.get_mut("etcd/2").unwrap(), 7200);
    verified(&mut j.own_data.borrow_mut(), 10_000);
    let o = observed(&j, &etcd, &m);
    assert_eq!(o.peers[1].backup_verified, Some(now - 7200));
    assert!(o
        .backup_verified_age()
        .is_some_and(|a| (7200..7300).contains(&a)));
}

#[test]
fn the_data_volume_is_observed_and_storage_detaching_departs() {
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    let o = observed(&j, &etcd, &m);
    assert_eq!(o.local.volume, Default::default());
    let mount = format!(
        "812 790 0:52 /data-0 {} rw,relatime - ext4 /dev/sda1 rw\n",
        paths::VOLUME
    );
    m.put(paths::MOUNTINFO, &mount);
    m.use_volume().unwrap();
    m.put(paths::VOLUME_OWNER, "1 etcd/0\n");
    let o = observed(&j, &etcd, &m);
    let owner = o
        .local
        .volume
        .owner
        .as_ref()
        .map(|w| (w.member_id, w.unit.as_str()));
    assert!(o.local.volume.mounted && o.local.volume.in_use);
    assert_eq!(owner, Some((1, "etcd/0")));
    assert!(!o.departing);
    let detaching = Hook::parse("data-storage-detaching");
    let o = observe(&j.ctx(), &detaching, &j, &etcd, &m).unwrap();
    assert!(o.departing, "the unit leaves before its volume goes");
}

#[test]
fn a_rejoined_volume_is_given_to_this_machines_etcd_user_before_its_id_is_recorded() {
    let (j, etcd, m) = (juju("etcd/3"), FakeEtcd::healthy(3), FakeMachine::new());
    m.use_volume().unwrap();
    m.put(paths::VOLUME_OWNER, "2 etcd/1\n");
    let o = observed(&j, &etcd, &m);
    let rejoin = only(vec![Effect::OwnDataDir, Effect::RecordMemberId(2)]);
    apply(&rejoin, &o, &j, &etcd, &m).unwrap();
    let calls = m.calls();
    let given = calls.iter().any(|c| c == "give the data dir to etcd");
    assert!(given, "{calls:?}");
    assert_eq!(state::recorded_member_id(&m), Some(2));
    assert!(
        !calls.iter().any(|c| c.contains("aside")),
        "nothing set aside"
    );
}

#[test]
fn the_restart_grant_waits_for_a_quorum_of_the_others() {
    let j = juju("etcd/0");
    let m = member_machine();
    let grant = only(vec![Effect::GrantRestart {
        unit: "etcd/2".into(),
    }]);
    // Three voters, one other dead: the grantee's going would leave one of three.
    let etcd = FakeEtcd::healthy(3);
    etcd.kill(1);
    let o = observed(&j, &etcd, &m);
    let out = apply(&grant, &o, &j, &etcd, &m).unwrap();
    let paused = Status::RestartPaused {
        unit: "etcd/2".into(),
        healthy: 1,
        others: 2,
        needed: 2,
    };
    assert_eq!(out.status, Some(paused));
    assert!(!out.progressed);
    assert!(j.leader_sets.borrow().is_empty());
    // It waited for a member just restarted to come back, within its budget only.
    assert!(m.elapsed() > Duration::ZERO && m.elapsed() <= Duration::from_secs(5));

    // All healthy: granted.
    let etcd = FakeEtcd::healthy(3);
    let out = apply(&grant, &o, &j, &etcd, &m).unwrap();
    assert_eq!((out.status, out.progressed), (None, true));
    let granted = Settings::from([(keys::RESTART_GRANTED.into(), "etcd/2".into())]);
    assert_eq!(*j.leader_sets.borrow(), [granted]);
}

#[test]
fn in_a_cluster_of_two_the_other_member_must_be_healthy() {
    let (j, m) = (juju("etcd/0"), member_machine());
    let etcd = FakeEtcd::healthy(2);
    etcd.kill(1);
    let o = observed(&j, &etcd, &m);
    let grant = only(vec![Effect::GrantRestart {
        unit: "etcd/0".into(),
    }]);
    let out = apply(&grant, &o, &j, &etcd, &m).unwrap();
    assert!(matches!(
        out.status,
        Some(Status::RestartPaused {
            healthy: 0,
            others: 1,
            needed: 1,
            ..
        })
    ));
}

#[test]
fn a_hook_killed_between_writing_and_restarting_is_resumed_by_the_next() {
    // A sole member with a new setting restarts at once.
    let mut j = juju("etcd/0");
    j.peers.clear();
    j.config.insert("log_level".into(), json!("debug"));
    let etcd = FakeEtcd::healthy(1);
    let m = member_machine();
    let o = observed(&j, &etcd, &m);
    let p = plan(&o);
    assert!(restarts(&p), "{p:?}");
    *m.dies_at.borrow_mut() = Some("restart etcd");
    let killed = catch_unwind(AssertUnwindSafe(|| apply(&p, &o, &j, &etcd, &m)));
    assert!(killed.is_err());
    // The new config is on disk but etcd still runs the old one: the mark says so.
    assert!(m
        .read(paths::CONFIG_FILE)
        .unwrap()
        .contains("log-level: debug"));
    assert!(state::restart_pending(&m));

    // The next hook sees the mark and restarts, though the files no longer differ.
    *m.dies_at.borrow_mut() = None;
    let o = observed(&j, &etcd, &m);
    assert!(o.local.restart_pending);
    let p = plan(&o);
    assert!(restarts(&p), "{p:?}");
    let out = apply(&p, &o, &j, &etcd, &m).unwrap();
    assert!(out.progressed);
    assert!(!state::restart_pending(&m));
    assert!(m.calls().contains(&"restart etcd".to_string()));
    assert!(logged(&j, "restarted etcd: member 1 healthy"));
    // And then nothing more to do.
    settle(&j, &etcd, &m);
}

#[test]
fn each_membership_retry_budget_runs_out_into_a_later_hook() {
    let cases = [
        (
            "member add",
            Effect::Admit {
                unit: "etcd/3".into(),
                peer_url: "http://10.0.0.4:2380".into(),
            },
            "cannot admit etcd/3 now",
            25,
        ),
        (
            "member promote",
            Effect::Promote {
                unit: "etcd/3".into(),
                id: 0x99,
            },
            "cannot promote etcd/3 now",
            30,
        ),
        (
            "member remove",
            Effect::Remove {
                name: "etcd2".into(),
                id: 3,
            },
            "cannot remove etcd2 now",
            20,
        ),
        (
            "member update",
            Effect::UpdatePeerUrl {
                name: "etcd2".into(),
                id: 3,
                peer_url: "http://10.0.0.3:2480".into(),
            },
            "cannot update etcd2's peer URL now",
            20,
        ),
    ];
    for (op, effect, log, budget) in cases {
        let (j, m) = (juju("etcd/0"), member_machine());
        let etcd = FakeEtcd::healthy(3);
        etcd.not_yet.borrow_mut().push(op);
        let o = observed(&j, &etcd, &m);
        let out = apply(&only(vec![effect, Effect::Start]), &o, &j, &etcd, &m).unwrap();
        assert!(!out.progressed, "{op}");
        assert!(logged(&j, log), "{op}: {:?}", j.logs.borrow());
        // Tried again and again, one second apart, for the budget and no longer.
        let tries = etcd.calls().iter().filter(|c| c.starts_with(op)).count();
        assert!(tries > 10, "{op}: {tries}");
        let budget = Duration::from_secs(budget);
        assert!(m.elapsed() <= budget && m.elapsed() >= budget - Duration::from_secs(2));
        // The pass stopped there: nothing after it, no leader data written.
        assert!(
            !m.calls().iter().any(|c| c.starts_with("systemctl")),
            "{op}"
        );
        assert!(j.leader_sets.borrow().is_empty(), "{op}");
    }
}

#[test]
fn a_promotion_goes_to_the_raft_leader_first() {
    let (j, m, etcd) = (juju("etcd/0"), member_machine(), FakeEtcd::healthy(3));
    // Member 3 (etcd2) leads Raft.
    for status in etcd.status.borrow_mut().values_mut() {
        let id = status.as_ref().unwrap().member_id;
        *status = Ok(crate::fakes::status_of(id, 3));
    }
    let o = observed(&j, &etcd, &m);
    let promote = Effect::Promote {
        unit: "etcd/3".into(),
        id: 0x99,
    };
    apply(&only(vec![promote]), &o, &j, &etcd, &m).unwrap();
    let want = format!("member promote 99 at {}", crate::fakes::client_url(2));
    assert!(etcd.calls().contains(&want), "{:?}", etcd.calls());
}

#[test]
fn a_membership_step_that_goes_through_records_the_leader_data() {
    let (j, m, etcd) = (juju("etcd/0"), member_machine(), FakeEtcd::healthy(3));
    let o = observed(&j, &etcd, &m);
    let admit = Effect::Admit {
        unit: "etcd/3".into(),
        peer_url: "http://10.0.0.4:2380".into(),
    };
    let out = apply(&only(vec![admit]), &o, &j, &etcd, &m).unwrap();
    assert!(out.progressed);
    let set = j.leader_sets.borrow()[0].clone();
    assert_eq!(set[keys::JOINING_UNIT], "etcd/3");
    assert_eq!(set[keys::JOINING_ID], "99");
    assert!(set[keys::JOINING_CLUSTER].contains("etcd3=http://10.0.0.4:2380"));
    assert_eq!(m.elapsed(), Duration::ZERO);
}

#[test]
fn a_departing_member_that_cannot_leave_fails_the_hook_blocked() {
    let (j, m) = (juju("etcd/0"), member_machine());
    let etcd = FakeEtcd::healthy(3);
    etcd.not_yet
        .borrow_mut()
        .extend(["move leader", "member remove"]);
    let o = observed(&j, &etcd, &m);
    let leave = only(vec![Effect::Leave {
        id: 1,
        transfer_to: Some(2),
    }]);
    let e = apply(&leave, &o, &j, &etcd, &m).unwrap_err();
    assert!(matches!(e, ApplyError::CannotLeave(_)));
    assert!(logged(&j, "cannot move Raft leadership first"));
    let status = j.statuses.borrow().last().cloned().unwrap();
    assert!(
        status.starts_with("blocked cannot leave the cluster"),
        "{status}"
    );
    // 10 s to move the leadership, then 20 s to remove the member.
    assert!(m.elapsed() <= Duration::from_secs(30));
    assert!(m.elapsed() >= Duration::from_secs(26));
    assert_eq!(state::recorded_member_id(&m), Some(1));
}

#[test]
fn a_start_that_is_not_answered_gives_up_after_its_wait() {
    let (j, m) = (juju("etcd/0"), member_machine());
    m.active.set(false);
    let etcd = FakeEtcd::healthy(1);
    etcd.kill(0);
    let o = observed(&j, &etcd, &m);
    state::mark_restart_pending(&m).unwrap();
    m.calls.borrow_mut().clear();
    let out = apply(&only(vec![Effect::Start]), &o, &j, &etcd, &m).unwrap();
    assert!(out.progressed);
    assert_eq!(
        m.calls(),
        [
            "systemctl enable etcd.service",
            "systemctl start --no-block etcd.service"
        ]
    );
    assert!(
        !state::restart_pending(&m),
        "it starts with the files as written"
    );
    assert!(m.elapsed() >= Duration::from_secs(15));
    assert!(m.elapsed() <= Duration::from_secs(16));
}

#[test]
fn install_refused_or_impossible_shows_why() {
    use crate::core::version::Refusal;
    use crate::fakes::FakeInstall;
    let (j, etcd) = (juju("etcd/0"), FakeEtcd::healthy(1));
    let m = member_machine();
    let refusal = Refusal::Downgrade {
        offered: "3.3.0".into(),
        current: "3.4.23".into(),
        attach: "3.4.x or 3.5.x".into(),
    };
    *m.install.borrow_mut() = FakeInstall::Refused(refusal.clone());
    let o = observed(&j, &etcd, &m);
    let out = apply(&only(vec![Effect::Install]), &o, &j, &etcd, &m).unwrap();
    assert_eq!(out.status, Some(Status::ResourceRefused(refusal.clone())));
    assert_eq!(state::refused_resource(&m), Some(refusal));
    // A good one clears the record.
    *m.install.borrow_mut() = FakeInstall::Version("3.4.25".into());
    let out = apply(&only(vec![Effect::Install]), &o, &j, &etcd, &m).unwrap();
    assert_eq!(out.status, None);
    assert_eq!(state::refused_resource(&m), None);
    assert_eq!(state::installed_version(&m).as_deref(), Some("3.4.25"));

    let fresh = FakeMachine::new();
    *fresh.install.borrow_mut() = FakeInstall::NoSource;
    let o = observed(&j, &etcd, &fresh);
    let out = apply(&plan(&o), &o, &j, &etcd, &fresh).unwrap();
    assert!(!out.progressed);
    assert!(matches!(out.status, Some(Status::NoResource(_))));
}

#[test]
fn reconcile_bootstraps_a_fresh_leader_and_sets_its_status_once() {
    let j = FakeJuju::new("etcd/0", json!({}));
    let etcd = FakeEtcd::healthy(1);
    let m = FakeMachine::new();
    reconcile(&j.ctx(), &Hook::Install, &j, &etcd, &m).unwrap();
    assert!(m.calls().contains(&"install etcd".to_string()));
    assert!(m
        .read(paths::CONFIG_FILE)
        .unwrap()
        .contains("initial-cluster-state: new"));
    assert_eq!(j.leader_data.borrow()[keys::TOKEN], "f00dcafe");
    assert_eq!(state::recorded_member_id(&m), Some(1));
    let statuses = j.statuses.borrow().clone();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    // The same status again is not set again.
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(j.statuses.borrow().len(), 1, "{:?}", j.statuses.borrow());
}

#[test]
fn the_leader_adopts_a_running_cluster_without_a_bootstrap_record() {
    // Deployed onto the volumes of an earlier application: the member runs, the leader data
    // names no token, so a new unit would wait for a bootstrap forever.
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    j.leader_data.borrow_mut().clear();
    let o = settle(&j, &etcd, &m);
    assert_eq!(j.leader_data.borrow()[keys::TOKEN], "f00dcafe");
    assert!(j.leader_data.borrow().contains_key(keys::CLUSTER));
    assert_eq!(plan(&o).status, Status::Active(Health::plain(3)));
    assert!(
        !m.calls().iter().any(|c| c.contains("restart")),
        "{:?}",
        m.calls()
    );
}

#[test]
fn a_failure_is_printed_once_with_its_cause() {
    use crate::machine::host::HostError;
    use crate::machine::InstallError;
    let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
    let host = HostError::Io {
        path: "/opt/etcd/bin/etcd".into(),
        cause: io,
    };
    let e = anyhow::Error::new(ApplyError::Install(InstallError::Host(host)));
    let shown = format!("{e:#}");
    assert_eq!(
        shown,
        "cannot install etcd: cannot write /opt/etcd/bin/etcd: permission denied"
    );
}

#[test]
fn update_status_asks_every_member_and_names_the_dead_one() {
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    settle(&j, &etcd, &m);
    etcd.kill(2);
    let o = observed(&j, &etcd, &m);
    let answered: Vec<u64> = o.cluster.answers.iter().map(|s| s.member_id).collect();
    assert_eq!(
        answered,
        [1, 2],
        "the local member and etcd1 answer, etcd2 does not"
    );
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    let last = j.statuses.borrow().last().cloned();
    assert_eq!(
        last,
        Some(plain(
            "active 2 of 3 members healthy: etcd2 (etcd/2) does not answer"
        ))
    );
    // Its alarm shows too, and blocks.
    etcd.alarms.borrow_mut().push((2, "NOSPACE".into()));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    let last = j.statuses.borrow().last().cloned().unwrap_or_default();
    assert!(last.starts_with("blocked 2 of 3 members healthy: etcd2 (etcd/2) does not answer; alarm NOSPACE on etcd1 (etcd/1)"), "{last}");
    assert!(last.contains("`juju run etcd/leader compact`"), "{last}");
}

/// Applies the TLS effects of `o`'s plan (nothing else), returns them.
fn apply_tls(j: &FakeJuju, etcd: &FakeEtcd, m: &FakeMachine, o: &Observed) -> Vec<Effect> {
    let tls: Vec<Effect> = plan(o)
        .effects
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Effect::CreateCa
                    | Effect::TlsRequest { .. }
                    | Effect::Issue { .. }
                    | Effect::TlsFiles { .. }
            )
        })
        .collect();
    apply(&only(tls.clone()), o, j, etcd, m).unwrap();
    tls
}

/// The leader makes the CAs, requests its own certificates, signs them and writes its files,
/// pass after pass; returns the kinds of effect in order.
fn certify_leader(j: &FakeJuju, ctx: &JujuContext, m: &FakeMachine) -> Vec<String> {
    let etcd = FakeEtcd::healthy(1);
    let mut kinds = Vec::new();
    for _ in 0..6 {
        let o = observed_in(ctx, j, &etcd, m);
        let applied = apply_tls(j, &etcd, m, &o);
        let names = applied.iter().map(|e| format!("{e:?}"));
        kinds.extend(names.map(|n| n.split([' ', '{', '(']).next().unwrap_or("").to_string()));
        if applied.is_empty() {
            break;
        }
    }
    kinds
}

/// A TLS leader with its CAs made and its own certificates written.
fn tls_leader() -> (FakeJuju, FakeMachine) {
    let mut j = juju("etcd/0");
    j.config.insert("tls".into(), json!(true));
    let m = FakeMachine::installed("3.4.23");
    certify_leader(&j, &j.ctx(), &m);
    (j, m)
}

#[test]
fn the_leader_certifies_itself_with_the_ca_keys_in_a_secret() {
    let mut j = juju("etcd/0");
    j.config.insert("tls".into(), json!(true));
    let m = FakeMachine::installed("3.4.23");
    let kinds = certify_leader(&j, &j.ctx(), &m);
    assert_eq!(kinds, ["CreateCa", "TlsRequest", "Issue", "TlsFiles"]);
    // Two application secrets (the CA keys, the consumers' key); no key ever in leader data.
    assert_eq!(j.secrets.borrow().len(), 2);
    let ld = j.leader_data.borrow().clone();
    for k in [
        keys::TLS_CA_SECRET,
        keys::TLS_CLIENT_SECRET,
        keys::TLS_PEER_CA,
    ] {
        assert!(ld.contains_key(k), "{k}");
    }
    let sets = j.leader_sets.borrow();
    assert!(!sets
        .iter()
        .flat_map(|s| s.values())
        .any(|v| v.contains("PRIVATE KEY")));
    // Its own keys stay on its machine: its peer data has requests only.
    let own = j.own_data.borrow().clone();
    assert!(own["tls-csr"].contains("CERTIFICATE REQUEST"));
    assert!(!own.values().any(|v| v.contains("PRIVATE KEY")));
    assert_eq!(m.read(paths::TLS_KEY), m.read(paths::TLS_PENDING_KEY));
    assert_ne!(m.read(paths::TLS_PEER_CA), m.read(paths::TLS_CA));
    // A peer's malformed request: logged and ignored, nothing issued, the hook goes on.
    let garbage = [("tls-csr", "-----BEGIN garbage"), ("tls-client-csr", "x")];
    let peer = j.peers.get_mut("etcd/1").unwrap();
    peer.extend(garbage.map(|(k, v)| (k.to_string(), v.to_string())));
    let etcd = FakeEtcd::healthy(1);
    let o = observed(&j, &etcd, &m);
    let issue = Effect::Issue {
        unit: "etcd/1".into(),
    };
    assert_eq!(apply_tls(&j, &etcd, &m, &o), [issue]);
    let logs = j.logs.borrow().join("\n");
    assert!(
        logs.contains("ignoring the TLS certificate requests of etcd/1"),
        "{logs}"
    );
    assert!(!j
        .leader_data
        .borrow()
        .contains_key(&keys::issued_key("etcd/1")));
    // A secret gone (its hook failed after leader-set): the CAs are made again.
    j.secrets.borrow_mut().clear();
    let etcd = FakeEtcd::healthy(1);
    let o = observed(&j, &etcd, &m);
    assert!(o.secrets.ca_lost);
    assert_eq!(plan(&o).effects, [Effect::CreateCa]);
}

#[test]
fn the_leader_reads_its_ca_keys_only_for_a_pass_that_signs() {
    let (mut j, m) = tls_leader();
    let etcd = FakeEtcd::healthy(1);
    for _ in 0..3 {
        reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    }
    // Settled, its own certificates issued and written: update-status reads no secret.
    j.secret_gets.borrow_mut().clear();
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(*j.secret_gets.borrow(), Vec::<String>::new());
    // A peer's requests: the CA keys are read (once) and its certificates signed.
    let sans = ["etcd1.internal".to_string()];
    let req = crate::machine::tls::make_request(&FakeMachine::new(), &sans).unwrap();
    let data = [("tls-csr", req.csr), ("tls-client-csr", req.client_csr)];
    let peer = data.map(|(k, v)| (k.to_string(), v));
    j.peers.insert("etcd/1".into(), Settings::from(peer));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    let ca_secret = j.leader_data.borrow()[keys::TLS_CA_SECRET].clone();
    assert_eq!(*j.secret_gets.borrow(), [ca_secret]);
    assert!(j
        .leader_data
        .borrow()
        .contains_key(&keys::issued_key("etcd/1")));
    // The secret gone, found by the next pass that signs: the CAs are made again.
    j.secrets.borrow_mut().clear();
    j.peers
        .get_mut("etcd/1")
        .unwrap()
        .insert("tls-csr".into(), "-----BEGIN x".into());
    let mut o = observe(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert!(o.secrets.ca_keys_unread && o.secrets.ca_keys.is_none());
    assert!(plan(&o).effects.iter().any(Effect::needs_ca_keys));
    observe::read_ca_keys(&j, &o.leader_data, &mut o.secrets);
    assert!(o.secrets.ca_lost && !o.secrets.ca_keys_unread);
    assert_eq!(plan(&o).effects, [Effect::CreateCa]);
}

#[test]
fn under_juju_2_9_the_keys_are_in_leader_data() {
    let mut j = juju("etcd/0");
    j.config.insert("tls".into(), json!(true));
    j.no_secrets = true;
    let ctx = JujuContext {
        juju_version: Some("2.9.44".into()),
        ..j.ctx()
    };
    let m = FakeMachine::installed("3.4.23");
    let kinds = certify_leader(&j, &ctx, &m);
    assert_eq!(kinds, ["CreateCa", "TlsRequest", "Issue", "TlsFiles"]);
    let ld = j.leader_data.borrow().clone();
    for k in [
        keys::TLS_CA_KEY,
        keys::TLS_PEER_CA_KEY,
        keys::TLS_CLIENT_KEY,
    ] {
        assert!(ld[k].contains("PRIVATE KEY"), "{k}");
    }
    assert!(!ld.contains_key(keys::TLS_CA_SECRET));
}

/// The leader's `update-status` count of etcd calls so far, after settling.
fn settled_leader() -> (FakeJuju, FakeEtcd, FakeMachine) {
    let (j, etcd, m) = (juju("etcd/0"), FakeEtcd::healthy(3), member_machine());
    settle(&j, &etcd, &m);
    etcd.calls.borrow_mut().clear();
    (j, etcd, m)
}

#[test]
fn update_status_defragments_a_fragmented_follower_once_and_records_it() {
    use crate::etcd::MemberStatus;
    use crate::fakes::{client_url, status_of};
    let (j, etcd, m) = settled_leader();
    // etcd2: 300 MiB, 100 MiB of it in use.
    let fragmented = MemberStatus {
        db_size: 300 << 20,
        db_size_in_use: 100 << 20,
        ..status_of(3, 1)
    };
    etcd.status
        .borrow_mut()
        .insert(client_url(2), Ok(fragmented));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(etcd.calls(), [format!("defragment {}", client_url(2))]);
    let statuses = j.statuses.borrow().clone();
    let running = "maintenance automatic maintenance: defragmenting etcd2 (etcd/2) (200.0 MiB \
                   free of its 300.0 MiB database)";
    assert!(statuses.iter().any(|s| s == running), "{statuses:?}");
    assert_eq!(
        statuses.last().cloned(),
        Some(plain("active 3 members healthy"))
    );
    assert!(logged(&j, "defragmenting etcd2 (etcd/2) (200.0 MiB free of its 300.0 MiB database): 300.0 MiB -> 300.0 MiB, 0.0 KiB freed"));
    let record = j.leader_data.borrow().get(keys::DEFRAGMENTED).cloned();
    assert!(record.is_some_and(|r| r.starts_with("etcd2=")));
    // Still fragmented (the fake frees nothing), but not due again within the interval.
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(etcd.calls().len(), 1);
}

#[test]
fn an_automatic_defragmentation_is_recorded_for_the_facts_and_announced() {
    use crate::core::maintenance::DEFRAG_KEY;
    use crate::etcd::MemberStatus;
    use crate::fakes::{client_url, status_of};
    let last_defrag = format!("{}/last-defrag", paths::STATE_DIR);
    let (j, etcd, m) = settled_leader();
    // The leader's own member etcd0 fragmented: recorded on its machine and in the facts file.
    let fragmented = MemberStatus {
        db_size: 300 << 20,
        db_size_in_use: 100 << 20,
        ..status_of(1, 1)
    };
    for url in [client_url(0), "http://127.0.0.1:2379".into()] {
        etcd.status.borrow_mut().insert(url, Ok(fragmented.clone()));
    }
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(etcd.calls(), [format!("defragment {}", client_url(0))]);
    let record = j.leader_data.borrow()[keys::DEFRAGMENTED].clone();
    let at = record.strip_prefix("etcd0=").unwrap().to_string();
    assert_eq!(m.read(&last_defrag), Some(format!("{at}\n")));
    let facts = m.read(paths::FACTS_FILE).unwrap();
    assert!(facts.contains(&format!("etcd_charm_last_defrag_timestamp_seconds {at}\n")));
    assert_eq!(j.own_data.borrow()[DEFRAG_KEY], format!("{at} etcd0"));
    // A follower's member: not recorded here, announced for its unit, which records it.
    let (j, etcd, m) = settled_leader();
    let follower = MemberStatus {
        member_id: 3,
        ..fragmented
    };
    etcd.status.borrow_mut().insert(client_url(2), Ok(follower));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(m.read(&last_defrag), None);
    let announced = j.own_data.borrow().clone();
    let mut j2 = juju("etcd/2");
    j2.peers.insert("etcd/0".into(), announced);
    let ctx = JujuContext {
        relation: Some(crate::juju::context::PEER_ENDPOINT.into()),
        relation_id: Some("cluster:1".into()),
        remote_unit: Some("etcd/0".into()),
        ..j2.ctx()
    };
    let m2 = FakeMachine::new();
    assert!(crate::machine::metrics::take_announced(&m2, &j2, &ctx).unwrap());
    let record = j.leader_data.borrow()[keys::DEFRAGMENTED].clone();
    let at = record.strip_prefix("etcd2=").unwrap().to_string();
    assert_eq!(m2.read(&last_defrag), Some(format!("{at}\n")));
}

#[test]
fn update_status_recovers_from_nospace_in_one_hook() {
    use crate::fakes::client_url;
    let (j, etcd, m) = settled_leader();
    etcd.alarms.borrow_mut().push((2, "NOSPACE".into()));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(
        etcd.calls(),
        [
            "compact 100 physical=true".to_string(),
            format!("defragment {}", client_url(1)),
            format!("defragment {}", client_url(2)),
            format!("defragment {}", client_url(0)),
            "disarm NOSPACE 2".to_string(),
        ]
    );
    assert!(etcd.alarms.borrow().is_empty());
    // The record cleared (an empty value unsets a leader data key).
    let record = j.leader_data.borrow().get(keys::NOSPACE_RECOVERY).cloned();
    assert!(record.as_ref().is_none_or(|r| r.is_empty()), "{record:?}");
    assert!(logged(
        &j,
        "recovering from NOSPACE: disarming the alarm: disarmed"
    ));
    assert_eq!(
        j.statuses.borrow().last().cloned(),
        Some(plain("active 3 members healthy"))
    );
}

#[test]
fn a_consumers_bad_prefix_and_unreadable_secret_are_logged_without_their_content() {
    let (mut j, m) = tls_leader();
    let evil = "\n*PRIVATE KEY";
    j.db = Some((
        "client".into(),
        Settings::from([("prefix".into(), evil.into())]),
    ));
    let cert = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, "client");
    let secret = keys::consumer_key(keys::CONSUMER_SECRET_PREFIX, "client");
    j.leader_data
        .borrow_mut()
        .extend([(cert, "CLIENT CERT".into()), (secret, "secret:gone".into())]);
    let etcd = FakeEtcd::healthy(1);
    let o = observed(&j, &etcd, &m);
    assert_eq!(o.clients[0].app.as_deref(), Some("client"));
    assert!(o.secrets.consumer_keys.is_empty());
    let logs = j.logs.borrow().join("\n");
    assert!(logs.contains("asks for a key prefix etcd keys should not start with"));
    assert!(logs.contains("secret secret:gone does not exist"), "{logs}");
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
    // Its user gets nothing until it asks for a prefix etcd can grant.
    let nothing = crate::core::auth::changes(&o, true).into_iter().any(|c| {
        matches!(c, crate::core::effect::AuthChange::SetUser { name, grant: crate::etcd::Grant::Nothing, .. } if name == "client")
    });
    assert!(nothing);
}

#[test]
fn the_leader_asks_goal_state_only_for_a_pass_that_removes_a_member() {
    let (mut j, m) = (juju("etcd/0"), member_machine());
    let removed = |etcd: &FakeEtcd| etcd.calls().iter().any(|c| c.starts_with("member remove"));
    // Settled: no goal-state.
    let etcd = FakeEtcd::healthy(3);
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(j.goal_reads.get(), 0);
    assert!(!removed(&etcd));
    // etcd3's unit is staying but not in the relation yet (a new leader's relation-list fills
    // one -joined at a time): asked once, nothing removed.
    let etcd = FakeEtcd::healthy(4);
    j.goal = Some(BTreeMap::from([("etcd/3".into(), "waiting".into())]));
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert_eq!(j.goal_reads.get(), 1);
    assert!(!removed(&etcd));
    // Being removed (dying), or gone: its member is removed.
    for goal in [
        BTreeMap::from([("etcd/3".into(), "dying".into())]),
        BTreeMap::new(),
    ] {
        let etcd = FakeEtcd::healthy(4);
        j.goal = Some(goal);
        reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
        assert!(etcd.calls().contains(&"member remove 4".to_string()));
    }
    // goal-state fails: a started voter is kept, the failure logged.
    let etcd = FakeEtcd::healthy(4);
    j.goal = None;
    reconcile(&j.ctx(), &hook(), &j, &etcd, &m).unwrap();
    assert!(!removed(&etcd));
    assert!(logged(
        &j,
        "started members no unit in the relation owns are kept"
    ));
}
