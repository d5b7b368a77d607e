//! The planner as state transitions, one unit's side: install, bootstrap, joining, rejoining,
//! config, missing tools, status. Arrange facts, plan, assert effects. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::config::{CharmConfig, ConfigError};
use etcd_charm::context::Hook;
use etcd_charm::hooktools::Settings;
use etcd_charm::observe::{keys, Leadership};
use etcd_charm::plan::{plan, Effect, Plan};
use etcd_charm::status::Status;
use fixtures::*;

#[test]
fn not_installed_installs_first() {
    let mut o = fresh(0);
    o.local.version = None;
    let p = plan(&o);
    assert_eq!(p.effects, [Effect::Install]);
    assert_eq!(p.status, Status::Installing);
    assert!(p.again);
}

#[test]
fn fresh_leader_bootstraps_a_one_member_cluster() {
    let mut o = fresh(0);
    o.leadership = Leadership::Leader;
    let p = plan(&o);
    let token = Settings::from([
        (keys::TOKEN.to_string(), "f00dcafe".to_string()),
        (keys::BOOTSTRAP_UNIT.to_string(), "etcd/0".to_string()),
    ]);
    assert_eq!(p.effects[0], Effect::LeaderSet(token));
    let config = rendered(&p);
    assert!(config.contains("initial-cluster: etcd0=http://10.0.0.10:2380\n"));
    assert!(config.contains("initial-cluster-state: new\n"));
    assert!(config.contains("initial-cluster-token: \"f00dcafe\"\n"));
    assert!(p.effects.contains(&Effect::Start));
    assert_eq!(p.status, Status::Bootstrapping);
    assert!(p.again);
}

#[test]
fn follower_without_token_waits_for_bootstrap() {
    let p = plan(&fresh(1));
    assert_eq!(p.status, Status::WaitBootstrap);
    assert!(!p
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Start | Effect::LeaderSet(_))));
    // It still announces its peer URL (and the compatible ingress address).
    let Some(Effect::PeerSet(rel, data)) =
        p.effects.iter().find(|e| matches!(e, Effect::PeerSet(..)))
    else {
        panic!("no PeerSet in {:?}", p.effects)
    };
    assert_eq!(rel, "cluster:0");
    assert_eq!(data["peer-url"], peer_url(1));
    assert_eq!(data["db-ingress-address"], ip(1));
}

#[test]
fn admitted_unit_joins_with_existing_state() {
    let mut o = fresh(1);
    o.leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::CLUSTER, "etcd0=x")]);
    let cluster = "etcd0=http://10.0.0.10:2380,etcd1=http://10.0.0.11:2380";
    with_joining(&mut o, "etcd/1", 0x101, cluster);
    let p = plan(&o);
    let config = rendered(&p);
    assert!(config.contains(&format!("initial-cluster: {cluster}\n")));
    assert!(config.contains("initial-cluster-state: existing\n"));
    assert!(p.effects.contains(&Effect::Start));
    assert_eq!(p.status, Status::Joining);
}

#[test]
fn removed_member_wipes_and_rejoins_but_a_live_one_never_does() {
    let mut o = running(1, vec![member(0), member(2)], 0);
    o.local.status = None; // etcd exits: "permanently removed"
    let p = plan(&o);
    assert!(p.effects.contains(&Effect::Wipe));
    assert_eq!(p.status, Status::Rejoining);
    // Still answering: never wiped, whatever the list says.
    let o = running(1, vec![member(0), member(2)], 0);
    assert!(!plan(&o).effects.contains(&Effect::Wipe));
    // Unreachable cluster: no decision.
    let mut o = running(1, vec![], 0);
    o.members = None;
    o.local.status = None;
    assert!(!plan(&o).effects.contains(&Effect::Wipe));
}

#[test]
fn invalid_config_blocks_and_applies_nothing() {
    let mut o = running(0, vec![member(0)], 0);
    let e = ConfigError {
        option: "election_timeout".into(),
        value: "5".into(),
        expected: "an integer from 500 to 50000".into(),
    };
    o.config = Err(e.clone());
    o.leadership = Leadership::Leader;
    let p = plan(&o);
    assert_eq!(p.effects, []);
    assert_eq!(p.status.state(), "blocked");
    assert_eq!(p.status, Status::InvalidConfig(e));
    assert!(p.status.message().contains("election_timeout"));
}

#[test]
fn missing_leadership_tools_block_with_upgrade_advice() {
    let mut o = fresh(0);
    o.leadership = Leadership::Unsupported;
    let p = plan(&o);
    assert_eq!(p.effects, []);
    assert_eq!(p.status, Status::NoLeadership);
    assert!(p.status.message().contains("Juju >= 1.23.2"));
}

#[test]
fn active_status_counts_peers_and_notes_even_sizes() {
    let o = running(0, vec![member(0), member(1)], 1);
    assert_eq!(plan(&o).status, Status::Active { peers: 1 });
    assert!(plan(&o).status.message().contains("odd number"));
}

#[test]
fn upgrade_installs_again_and_unknown_hooks_reconcile() {
    let mut o = running(0, vec![member(0)], 0);
    o.hook = Hook::Other("upgrade-charm".into());
    let p = plan(&o);
    assert_eq!(p.effects[0], Effect::Install);
    assert!(!p.effects.iter().any(|e| matches!(e, Effect::SetVersion(_))));
    o.hook = Hook::Other("config-changed".into());
    assert_eq!(plan(&o).effects[0], Effect::SetVersion("3.4.23".into()));
    // A hook the charm has no special case for runs the same path as update-status.
    o.hook = Hook::Other("pre-series-upgrade".into());
    let unknown = plan(&o);
    o.hook = Hook::Other("update-status".into());
    assert_eq!(unknown, plan(&o));
    assert_eq!(unknown.status, Status::Active { peers: 0 });
}

#[test]
fn stop_and_remove_act_on_their_own() {
    let mut o = running(0, vec![member(0)], 0);
    o.hook = Hook::Stop;
    assert_eq!(plan(&o).effects, [Effect::Stop]);
    o.hook = Hook::Remove;
    assert_eq!(plan(&o).effects, [Effect::Stop, Effect::Cleanup]);
}

// Rolling restarts, one unit's side.

fn debug_config() -> CharmConfig {
    CharmConfig {
        log_level: "debug".into(),
        ..CharmConfig::default()
    }
}

fn has(p: &Plan, f: impl Fn(&Effect) -> bool) -> bool {
    p.effects.iter().any(f)
}

fn restarts(p: &Plan) -> bool {
    has(p, |e| matches!(e, Effect::Restart(_)))
}

fn renders(p: &Plan) -> bool {
    has(p, |e| matches!(e, Effect::Render(_)))
}

#[test]
fn settled_member_plans_nothing_on_update_status() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    let first = plan(&o);
    let Some(Effect::PeerSet(_, data)) = first.effects.first() else {
        panic!("{:?}", first.effects)
    };
    o.own_peer_data = data.clone();
    let p = plan(&o);
    assert_eq!(
        p.effects,
        [],
        "nothing changed: nothing written, nothing logged"
    );
    assert_eq!(p.status, Status::Active { peers: 2 });
}

#[test]
fn restart_needing_change_waits_for_its_turn_without_writing() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.config = Ok(debug_config());
    let p = plan(&o);
    assert!(!renders(&p) && !restarts(&p), "{:?}", p.effects);
    assert_eq!(p.status, Status::WaitRestart { behind: None });
    assert_eq!(p.status.state(), "waiting");
    let request = published_request(&p).expect("a restart-request");
    assert_eq!(request.len(), 16);
    // Another unit restarting: the status names it.
    with_grant(&mut o, "etcd/2");
    assert_eq!(
        plan(&o).status,
        Status::WaitRestart {
            behind: Some("etcd/2".into())
        }
    );
}

#[test]
fn granted_unit_restarts_then_confirms_once_healthy() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.config = Ok(debug_config());
    let request = published_request(&plan(&o)).unwrap();
    o.own_peer_data = Settings::from([("restart-request".to_string(), request.clone())]);
    with_grant(&mut o, "etcd/1");
    let p = plan(&o);
    let Some(Effect::Restart(config)) = p.effects.iter().find(|e| matches!(e, Effect::Restart(_)))
    else {
        panic!("no restart: {:?}", p.effects)
    };
    assert!(config.contains("log-level: debug\n"));
    assert_eq!(p.status, Status::Restarting);
    assert!(p.again);
    assert_eq!(
        published_request(&p),
        None,
        "the request stays while restarting"
    );

    // Restarted, not answering yet: still holds its turn, says so.
    runs_with(&mut o, &debug_config());
    o.local.status = None;
    let p = plan(&o);
    assert!(!restarts(&p));
    assert_eq!(p.status, Status::WaitRestarted);
    assert_eq!(published_request(&p), None);

    // Its etcd failed to start again (systemd: inactive): it is started, keeping its turn.
    o.local.service_active = false;
    let p = plan(&o);
    assert!(has(&p, |e| matches!(e, Effect::Start)));
    assert_eq!(published_request(&p), None, "the request stays");
    o.local.service_active = true;

    // Healthy again: the request is removed, which is the confirmation.
    o.local.status = Some(status_of(1, 0));
    let p = plan(&o);
    assert!(!restarts(&p));
    assert_eq!(published_request(&p).as_deref(), Some(""));
    assert_eq!(p.status, Status::Active { peers: 2 });
}

#[test]
fn a_hook_killed_between_writing_and_restarting_restarts_on_the_next_run() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    runs_with(&mut o, &debug_config());
    o.config = Ok(debug_config());
    o.local.restart_pending = true;
    // Files say "debug" already, but etcd never restarted: it still needs its turn.
    let p = plan(&o);
    assert_eq!(p.status, Status::WaitRestart { behind: None });
    o.own_peer_data = Settings::from([(
        "restart-request".to_string(),
        published_request(&p).unwrap(),
    )]);
    with_grant(&mut o, "etcd/1");
    assert!(restarts(&plan(&o)));
}

#[test]
fn a_confirmed_turn_is_not_reused_for_another_restart() {
    // etcd/1 restarted on its grant and confirmed (request removed); the leader has not
    // released the grant yet when another change arrives: it asks again instead of restarting.
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    runs_with(&mut o, &debug_config());
    with_grant(&mut o, "etcd/1");
    o.config = Ok(CharmConfig::default());
    let p = plan(&o);
    assert!(!restarts(&p), "{:?}", p.effects);
    assert_eq!(p.status, Status::WaitRestart { behind: None });
    assert_eq!(published_request(&p).map(|r| r.len()), Some(16));
}

#[test]
fn sole_member_learner_or_silent_etcd_restart_at_once() {
    let mut o = settled(0, vec![member(0)], 0);
    o.config = Ok(debug_config());
    let p = plan(&o);
    assert!(restarts(&p), "{:?}", p.effects);
    assert_eq!(published_request(&p), None, "no turn to ask for");

    let mut learner = member(2);
    learner.is_learner = true;
    let mut o = settled(2, vec![member(0), member(1), learner], 0);
    o.local.status.as_mut().unwrap().is_learner = true;
    o.config = Ok(debug_config());
    assert!(restarts(&plan(&o)));

    // etcd runs but does not answer: nothing to keep up.
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.local.status = None;
    o.config = Ok(debug_config());
    assert!(restarts(&plan(&o)));
}

#[test]
fn settings_etcd_reads_only_at_first_start_never_restart() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    // The config on disk has another initial-cluster (e.g. written at join time).
    let old = o.local.rendered_config.clone().unwrap();
    o.local.rendered_config = Some(old.replace("initial-cluster: ", "initial-cluster: x=y,"));
    let p = plan(&o);
    assert!(!restarts(&p));
    assert_eq!(published_request(&p), None);
    assert_eq!(p.status, Status::Active { peers: 2 });
}

#[test]
fn new_etcd_version_restarts_in_turn() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.local.version = Some("3.5.21".into());
    assert_eq!(plan(&o).status, Status::WaitRestart { behind: None });
    o.local.version = Some("v3.4.23".into());
    assert_eq!(plan(&o).status, Status::Active { peers: 2 });
}

#[test]
fn new_port_is_announced_only_once_etcd_runs_with_it() {
    let cfg = CharmConfig {
        port: 4001,
        management_port: 2480,
        ..CharmConfig::default()
    };
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.config = Ok(cfg.clone());
    let p = plan(&o);
    assert_eq!(p.status, Status::WaitRestart { behind: None });
    let Some(Effect::PeerSet(_, data)) =
        p.effects.iter().find(|e| matches!(e, Effect::PeerSet(..)))
    else {
        panic!("{:?}", p.effects)
    };
    assert_eq!(
        data["peer-url"],
        peer_url(1),
        "still the port etcd listens on"
    );
    assert_eq!(data["client-url"], client_url(1));
    // Restarted with it: announced, so the leader updates the member.
    runs_with(&mut o, &cfg);
    let p = plan(&o);
    let Some(Effect::PeerSet(_, data)) =
        p.effects.iter().find(|e| matches!(e, Effect::PeerSet(..)))
    else {
        panic!("{:?}", p.effects)
    };
    assert_eq!(data["peer-url"], "http://10.0.0.11:2480");
    assert_eq!(data["client-url"], "http://10.0.0.11:4001");
}
