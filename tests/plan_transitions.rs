//! The planner as state transitions, one unit's side: install, bootstrap, joining, rejoining,
//! config, missing tools, status. Arrange facts, plan, assert effects. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::config::ConfigError;
use etcd_charm::context::Hook;
use etcd_charm::hooktools::Settings;
use etcd_charm::observe::{keys, Leadership};
use etcd_charm::plan::{plan, Effect};
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
