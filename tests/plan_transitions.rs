//! The planner as state transitions: arrange facts, plan, assert effects and status.
//! Pure: no Juju, no etcd, no root.

use etcd_charm::config::{CharmConfig, ConfigError};
use etcd_charm::context::Hook;
use etcd_charm::etcd::{Member, MemberStatus};
use etcd_charm::hooktools::Settings;
use etcd_charm::observe::{keys, ClientRelation, LeaderData, Leadership, Local, Observed, Peer};
use etcd_charm::plan::{plan, Effect, Plan};
use etcd_charm::status::Status;

fn ip(n: u64) -> String {
    format!("10.0.0.{}", n + 10)
}

fn peer_url(n: u64) -> String {
    format!("http://{}:2380", ip(n))
}

fn client_url(n: u64) -> String {
    format!("http://{}:2379", ip(n))
}

/// A started member of unit `etcd/<n>` with id `0x100 + n`.
fn member(n: u64) -> Member {
    Member {
        id: 0x100 + n,
        name: format!("etcd{n}"),
        peer_urls: vec![peer_url(n)],
        client_urls: vec![client_url(n)],
        is_learner: false,
    }
}

/// An added learner of unit `etcd/<n>`, not started yet.
fn unstarted_learner(n: u64) -> Member {
    Member {
        name: String::new(),
        client_urls: vec![],
        is_learner: true,
        ..member(n)
    }
}

fn peer(n: u64) -> Peer {
    Peer {
        unit: format!("etcd/{n}"),
        name: format!("etcd{n}"),
        peer_url: Some(peer_url(n)),
        client_url: Some(client_url(n)),
        started: None,
    }
}

fn status_of(n: u64, leader: u64) -> MemberStatus {
    MemberStatus {
        member_id: 0x100 + n,
        leader: 0x100 + leader,
        version: "3.4.23".into(),
        ..Default::default()
    }
}

/// Unit `etcd/<n>`, installed, with an address, nothing started, no peers.
fn fresh(n: u64) -> Observed {
    Observed {
        unit: format!("etcd/{n}"),
        hook: Hook::Other("update-status".into()),
        departing: false,
        leadership: Leadership::Follower,
        config: Ok(CharmConfig::default()),
        leader_data: LeaderData::default(),
        peer_relation: Some("cluster:0".into()),
        peers: vec![],
        own_peer_data: Settings::new(),
        clients: vec![],
        local: Local {
            version: Some("3.4.23".into()),
            etcdctl: "/opt/etcd/bin/etcdctl".into(),
            address: Some(ip(n)),
            ..Default::default()
        },
        endpoints: vec![],
        members: None,
        fresh_token: "f00dcafe".into(),
    }
}

/// Unit `etcd/<n>` running a started voting member of `members` (Raft leader: etcd/`leader`).
fn running(n: u64, members: Vec<Member>, leader: u64) -> Observed {
    let mut o = fresh(n);
    o.local.has_data = true;
    o.local.member_id = Some(0x100 + n);
    o.local.service_active = true;
    o.local.status = Some(status_of(n, leader));
    o.leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::BOOTSTRAP_UNIT, "etcd/0")]);
    o.endpoints = vec!["http://127.0.0.1:2379".into()];
    o.members = Some(members);
    o
}

fn leader_data(pairs: &[(&str, &str)]) -> LeaderData {
    LeaderData::parse(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn with_joining(o: &mut Observed, unit: &str, id: u64, cluster: &str) {
    let mut raw = o.leader_data.raw.clone();
    raw.insert(keys::JOINING_UNIT.into(), unit.into());
    raw.insert(keys::JOINING_ID.into(), format!("{id:x}"));
    raw.insert(keys::JOINING_CLUSTER.into(), cluster.into());
    o.leader_data = LeaderData::parse(raw);
}

fn membership_effects(p: &Plan) -> Vec<&Effect> {
    p.effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Admit { .. }
                    | Effect::Promote { .. }
                    | Effect::Remove { .. }
                    | Effect::Leave { .. }
            )
        })
        .collect()
}

fn rendered(p: &Plan) -> &str {
    p.effects
        .iter()
        .find_map(|e| match e {
            Effect::Render(c) => Some(c.as_str()),
            _ => None,
        })
        .expect("a Render effect")
}

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
fn second_pass_of_bootstrap_publishes_the_cluster() {
    let mut o = running(0, vec![member(0)], 0);
    o.leadership = Leadership::Leader;
    let p = plan(&o);
    let Some(Effect::LeaderSet(s)) = p.effects.iter().find(|e| matches!(e, Effect::LeaderSet(_)))
    else {
        panic!("no LeaderSet in {:?}", p.effects)
    };
    assert_eq!(s[keys::CLUSTER], "etcd0=http://10.0.0.10:2380");
    assert_eq!(s[keys::ENDPOINTS], "http://10.0.0.10:2379");
    assert_eq!(s[keys::VERSION], "3.4.23");
    assert_eq!(p.status, Status::Active { peers: 0 });
    assert!(
        !p.effects.contains(&Effect::Start),
        "a running member is not started again"
    );
}

#[test]
fn two_units_waiting_only_one_is_admitted() {
    let mut o = running(0, vec![member(0)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(2), peer(1)];
    let p = plan(&o);
    assert_eq!(
        membership_effects(&p),
        [&Effect::Admit {
            unit: "etcd/1".into(),
            peer_url: peer_url(1)
        }]
    );

    // Next pass: etcd/1 is a learner not started yet: nobody else is admitted.
    let mut o = running(0, vec![member(0), unstarted_learner(1)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(1), peer(2)];
    with_joining(&mut o, "etcd/1", 0x101, "etcd0=…,etcd1=…");
    assert_eq!(membership_effects(&plan(&o)), Vec::<&Effect>::new());

    // And etcd/2 waits, saying for whom.
    let mut o2 = fresh(2);
    o2.leader_data = o.leader_data.clone();
    assert_eq!(
        plan(&o2).status,
        Status::WaitAdmission {
            behind: Some("etcd/1".into())
        }
    );
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
fn leader_change_mid_join_promotes_without_bootstrap_or_restart() {
    // etcd/2 became Juju leader while etcd/1 was joining; etcd/1 has started as a learner.
    let mut learner = member(1);
    learner.is_learner = true;
    let mut o = running(2, vec![member(0), learner, member(2)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(0), peer(1)];
    with_joining(&mut o, "etcd/1", 0x101, "…");
    o.local.rendered_config = Some(etcd_charm::render::etcd_config(
        &CharmConfig::default(),
        "etcd2",
        &ip(2),
        &etcd_charm::render::InitialCluster {
            state: "existing",
            cluster: "old".into(),
            token: "t0k".into(),
        },
    ));
    let p = plan(&o);
    assert_eq!(
        membership_effects(&p),
        [&Effect::Promote {
            unit: "etcd/1".into(),
            id: 0x101
        }]
    );
    assert!(!p
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Start | Effect::Wipe)));
    assert!(!p
        .effects
        .iter()
        .any(|e| matches!(e, Effect::LeaderSet(s) if s.contains_key(keys::TOKEN))));
    // The initial settings it started with are kept: nothing etcd reads changed.
    assert!(rendered(&p).contains("initial-cluster: old\n"));
    // Learners are left out of what clients see.
    let Some(Effect::LeaderSet(s)) = p.effects.iter().find(|e| matches!(e, Effect::LeaderSet(_)))
    else {
        panic!("{:?}", p.effects)
    };
    assert_eq!(
        s[keys::CLUSTER],
        "etcd0=http://10.0.0.10:2380,etcd2=http://10.0.0.12:2380"
    );
}

#[test]
fn learner_hidden_from_leader_data_is_adopted() {
    let mut o = running(0, vec![member(0), unstarted_learner(1)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(1)];
    let p = plan(&o);
    let adopted = p.effects.iter().any(|e| matches!(e,
        Effect::LeaderSet(s) if s.get(keys::JOINING_UNIT).map(String::as_str) == Some("etcd/1")
            && s[keys::JOINING_CLUSTER] == "etcd0=http://10.0.0.10:2380,etcd1=http://10.0.0.11:2380"));
    assert!(adopted, "{:?}", p.effects);
}

#[test]
fn member_of_a_gone_unit_is_removed() {
    let mut o = running(0, vec![member(0), member(1), member(2)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(1)];
    let p = plan(&o);
    assert_eq!(
        membership_effects(&p),
        [&Effect::Remove {
            name: "etcd2".into(),
            id: 0x102
        }]
    );
    // Followers never change membership.
    let mut f = running(1, vec![member(0), member(1), member(2)], 0);
    f.peers = vec![peer(0)];
    assert!(membership_effects(&plan(&f)).is_empty());
}

#[test]
fn departing_raft_leader_moves_leadership_then_leaves() {
    let mut o = running(0, vec![member(2), member(0), member(1)], 0);
    o.departing = true;
    o.hook = Hook::Other("cluster-relation-departed".into());
    o.own_peer_data = Settings::from([("started".to_string(), "100".to_string())]);
    let p = plan(&o);
    assert_eq!(p.effects[0], Effect::MarkDeparting);
    assert_eq!(
        p.effects[1],
        Effect::Leave {
            id: 0x100,
            transfer_to: Some(0x101)
        }
    );
    assert_eq!(p.effects[2], Effect::Stop);
    assert_eq!(
        p.effects[3],
        Effect::PeerSet(
            "cluster:0".into(),
            Settings::from([("started".into(), String::new())])
        )
    );
    assert_eq!(p.status, Status::Leaving);
    // Not the Raft leader: no transfer.
    let mut o = running(1, vec![member(0), member(1)], 0);
    o.departing = true;
    assert_eq!(
        plan(&o).effects[1],
        Effect::Leave {
            id: 0x101,
            transfer_to: None
        }
    );
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
fn proxy_and_db_data_identical_on_every_unit_and_sorted() {
    let members = vec![member(2), member(0), member(1)];
    let mut lead = running(1, members.clone(), 0);
    lead.leadership = Leadership::Leader;
    lead.peers = vec![peer(0), peer(2)];
    let clients = vec![
        ClientRelation {
            id: "db:5".into(),
            endpoint: "db".into(),
            published: Settings::new(),
        },
        ClientRelation {
            id: "proxy:6".into(),
            endpoint: "proxy".into(),
            published: Settings::new(),
        },
    ];
    lead.clients = clients.clone();
    let lp = plan(&lead);
    let Some(Effect::LeaderSet(published)) = lp
        .effects
        .iter()
        .find(|e| matches!(e, Effect::LeaderSet(_)))
    else {
        panic!("{:?}", lp.effects)
    };

    // A follower that reads what the leader published writes the same bytes.
    let mut follower = running(2, members, 0);
    follower.leader_data = LeaderData::parse(published.clone());
    follower.clients = clients;
    let relation_sets = |p: &Plan| -> Vec<Effect> {
        p.effects
            .iter()
            .filter(|e| matches!(e, Effect::RelationSet(..)))
            .cloned()
            .collect()
    };
    assert_eq!(relation_sets(&lp), relation_sets(&plan(&follower)));
    let expected = [
        Effect::RelationSet("db:5".into(), Settings::from([
            ("connection_string".into(), "http://10.0.0.10:2379,http://10.0.0.11:2379,http://10.0.0.12:2379".into()),
            ("version".into(), "3.4.23".into()),
        ])),
        Effect::RelationSet("proxy:6".into(), Settings::from([
            ("cluster".into(), "etcd0=http://10.0.0.10:2380,etcd1=http://10.0.0.11:2380,etcd2=http://10.0.0.12:2380".into()),
            ("endpoints".into(), "http://10.0.0.10:2379,http://10.0.0.11:2379,http://10.0.0.12:2379".into()),
        ])),
    ];
    assert_eq!(relation_sets(&lp), expected);
    // Already published: nothing to write.
    let Effect::RelationSet(_, db) = &expected[0] else {
        unreachable!()
    };
    follower.clients[0].published = db.clone();
    assert_eq!(relation_sets(&plan(&follower)).len(), 1);
}

#[test]
fn active_status_counts_peers_and_notes_even_sizes() {
    let o = running(0, vec![member(0), member(1)], 1);
    assert_eq!(plan(&o).status, Status::Active { peers: 1 });
    assert!(plan(&o).status.message().contains("odd number"));
}
