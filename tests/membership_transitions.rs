//! The planner as state transitions, the Juju leader's side (admission one at a time,
//! promotion, removal, leadership moves) and the departing unit's. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::core::config::CharmConfig;
use etcd_charm::core::effect::{AuthChange, Effect, Plan};
use etcd_charm::core::observed::{
    keys, peer_keys, tls_files_record, CaKeys, ClientRelation, Goal, Issued, LeaderData,
    Leadership, Observed, TlsRequest,
};
use etcd_charm::core::plan::plan;
use etcd_charm::core::status::{Health, Status};
use etcd_charm::juju::context::Hook;
use etcd_charm::juju::Settings;
use fixtures::*;

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
    assert_eq!(p.status, Status::Active(Health::plain(1)));
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
fn leader_change_mid_join_promotes_without_bootstrap_or_restart() {
    // etcd/2 became Juju leader while etcd/1 was joining; etcd/1 has started as a learner.
    let mut learner = member(1);
    learner.is_learner = true;
    let mut o = running(2, vec![member(0), learner, member(2)], 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(0), peer(1)];
    with_joining(&mut o, "etcd/1", 0x101, "…");
    o.local.rendered_config = Some(etcd_charm::core::render::etcd_config(
        &CharmConfig::plain(),
        "3.4.23",
        "etcd2",
        &ip(2),
        &etcd_charm::core::render::InitialCluster {
            state: etcd_charm::core::render::ClusterState::Existing,
            cluster: "old".into(),
            token: "t0k".into(),
        },
        &[],
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

fn removals(o: &Observed) -> Vec<Effect> {
    let p = plan(o);
    let removes = membership_effects(&p).into_iter().cloned();
    removes
        .filter(|e| matches!(e, Effect::Remove { .. }))
        .collect()
}

fn staying(units: &[&str]) -> Goal {
    Goal::Staying(units.iter().map(|u| u.to_string()).collect())
}

#[test]
fn a_new_leader_keeps_the_members_of_units_not_yet_in_its_relation_list() {
    // etcd/3, just added, became the leader before its -joined hooks for etcd/0..2 ran: its
    // relation-list is still empty while etcd lists their members.
    let mut o = fresh(3);
    o.leadership = Leadership::Leader;
    o.leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::BOOTSTRAP_UNIT, "etcd/0")]);
    o.members = Some(vec![member(0), member(1), member(2)]);
    // Before goal-state is asked, the plan says it would remove one (then goal-state is asked).
    let etcd0 = Effect::Remove {
        name: "etcd0".into(),
        id: 0x100,
    };
    assert_eq!(removals(&o), std::slice::from_ref(&etcd0));
    o.goal = staying(&["etcd/0", "etcd/1", "etcd/2", "etcd/3"]);
    assert_eq!(removals(&o), []);
    // etcd/0 is being removed (dying): its member goes, the others stay.
    o.goal = staying(&["etcd/1", "etcd/2", "etcd/3"]);
    assert_eq!(removals(&o), [etcd0]);
    // goal-state failed: no started voter is removed, an unstarted learner is.
    o.goal = Goal::Unknown;
    assert_eq!(removals(&o), []);
    o.members = Some(vec![member(0), member(1), unstarted_learner(2)]);
    assert_eq!(
        removals(&o),
        [Effect::Remove {
            name: peer_url(2),
            id: 0x102
        }]
    );
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
fn proxy_and_db_data_identical_on_every_unit_and_sorted() {
    let members = vec![member(2), member(0), member(1)];
    let mut lead = running(1, members.clone(), 0);
    lead.leadership = Leadership::Leader;
    lead.peers = vec![peer(0), peer(2)];
    let clients = vec![
        ClientRelation {
            id: "db:5".into(),
            endpoint: "db".into(),
            app: None,
            prefix: None,
            published: Settings::new(),
        },
        ClientRelation {
            id: "proxy:6".into(),
            endpoint: "proxy".into(),
            app: None,
            prefix: None,
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

/// The default config with the peer (management) port moved from 2380 to 2480.
fn peer_port_2480() -> CharmConfig {
    CharmConfig {
        management_port: 2480,
        ..CharmConfig::plain()
    }
}

/// Asserts that the plan's only membership change moves etcd0's peer URL to port 2480.
fn assert_updates_etcd0_to_port_2480(p: &Plan) {
    assert_eq!(
        membership_effects(p),
        [&Effect::UpdatePeerUrl {
            name: "etcd0".into(),
            id: 0x100,
            peer_url: "http://10.0.0.10:2480".into()
        }]
    );
}

#[test]
fn changed_peer_port_is_updated_by_the_leader_while_the_old_port_stays_open() {
    let cfg = peer_port_2480();
    // The leader's own member is still registered on 2380.
    let mut o = running(0, vec![member(0), member(1)], 0);
    o.leadership = Leadership::Leader;
    o.config = Ok(cfg);
    o.peers = vec![peer(1)];
    let p = plan(&o);
    assert!(
        rendered(&p).contains("listen-peer-urls: http://10.0.0.10:2480,http://10.0.0.10:2380\n")
    );
    assert_updates_etcd0_to_port_2480(&p);
}

#[test]
fn departing_unit_already_removed_only_stops() {
    // A later departed hook on the leaving unit: its member is gone, etcd no longer answers.
    let mut o = running(2, vec![member(0), member(1)], 0);
    o.departing = true;
    o.local.status = None;
    let p = plan(&o);
    assert_eq!(p.effects, [Effect::MarkDeparting, Effect::Stop]);
    assert_eq!(p.status, Status::Leaving);
}

// Rolling restarts, the leader's side; and a joiner that left.

fn three() -> Vec<etcd_charm::etcd::Member> {
    vec![member(0), member(1), member(2)]
}

fn leader_of(members: Vec<etcd_charm::etcd::Member>) -> etcd_charm::core::observed::Observed {
    let mut o = settled(0, members, 0);
    o.leadership = Leadership::Leader;
    o
}

#[test]
fn leader_grants_one_restart_at_a_time_in_unit_order() {
    let mut o = leader_of(three());
    o.peers = vec![requesting_peer(2), requesting_peer(1)];
    assert_eq!(grants(&plan(&o)), ["grant etcd/1"]);
    assert!(plan(&o).again);

    // etcd/1 restarting (its request still there): nobody else goes.
    with_grant(&mut o, "etcd/1");
    assert_eq!(grants(&plan(&o)), Vec::<String>::new());

    // etcd/1 confirmed (request removed): its turn ends, etcd/2's begins.
    o.peers[1].restart_request = None;
    assert_eq!(grants(&plan(&o)), ["set \"\"", "grant etcd/2"]);

    // etcd/2 confirmed too: the turn is released, nothing left to grant.
    with_grant(&mut o, "etcd/2");
    o.peers[0].restart_request = None;
    assert_eq!(grants(&plan(&o)), ["set \"\""]);
}

#[test]
fn the_leader_grants_no_turn_while_it_restarts_itself() {
    use etcd_charm::core::membership::{leader, OwnTurn};
    let mut o = leader_of(three());
    o.peers = vec![requesting_peer(1), requesting_peer(2)];
    let turn = |restarting| OwnTurn {
        requesting: false,
        restarting,
    };
    let mut p = Plan::only(Status::Starting);
    leader(&o, &mut p, turn(false));
    assert_eq!(grants(&p), ["grant etcd/1"]);
    // The same facts, its own restart planned in this pass: busy, whatever came before.
    let mut p = Plan::only(Status::Starting);
    leader(&o, &mut p, turn(true));
    assert_eq!(grants(&p), Vec::<String>::new());
}

#[test]
fn leader_restarts_itself_in_its_turn() {
    let debug = CharmConfig {
        log_level: "debug".into(),
        ..CharmConfig::plain()
    };
    let mut o = leader_of(three());
    o.config = Ok(debug.clone());
    o.peers = vec![requesting_peer(1), requesting_peer(2)];
    // Unit-number order: etcd/0 (the leader) first; it waits for its own grant.
    let p = plan(&o);
    assert_eq!(grants(&p), ["grant etcd/0"]);
    assert!(!p.effects.iter().any(|e| matches!(e, Effect::Restart(_))));
    // Its request is published in that pass (seen in-hook), the grant applied: next pass.
    let request = published_request(&p).expect("its own request");
    o.own_peer_data = Settings::from([("restart-request".to_string(), request)]);
    with_grant(&mut o, "etcd/0");
    let p = plan(&o);
    assert!(p.effects.iter().any(|e| matches!(e, Effect::Restart(_))));
    assert_eq!(grants(&p), Vec::<String>::new(), "no other grant meanwhile");
    // Restarted and healthy: its turn ends and the next one's begins.
    runs_with(&mut o, &debug);
    assert_eq!(grants(&plan(&o)), ["set \"\"", "grant etcd/1"]);
}

#[test]
fn the_cluster_version_is_the_lowest_a_started_member_runs() {
    let version = |o: &etcd_charm::core::observed::Observed| {
        plan(o).effects.iter().find_map(|e| match e {
            Effect::LeaderSet(s) => s.get(keys::VERSION).cloned(),
            _ => None,
        })
    };
    let mut o = leader_of(three());
    o.peers = vec![peer(1), peer(2)];
    for p in &mut o.peers {
        p.started = Some(0x100 + unit_of(&p.unit));
        p.version = Some("3.5.1".into());
    }
    // The leader's member still runs 3.4.23: that is the cluster's version.
    assert_eq!(version(&o).as_deref(), Some("3.4.23"));
    o.local.status.as_mut().unwrap().version = "3.5.1".into();
    o.peers[1].version = Some("3.4.23".into());
    assert_eq!(version(&o).as_deref(), Some("3.4.23"));
    // A peer not started (or publishing nothing) does not count.
    o.peers[1].started = None;
    assert_eq!(version(&o).as_deref(), Some("3.5.1"));
}

fn unit_of(unit: &str) -> u64 {
    unit.rsplit('/').next().unwrap().parse().unwrap()
}

#[test]
fn grant_of_a_unit_that_left_is_reclaimed() {
    // etcd/2 was granted its restart, then its unit was removed (e.g. its machine died).
    let mut o = leader_of(vec![member(0), member(1)]);
    with_grant(&mut o, "etcd/2");
    o.peers = vec![requesting_peer(1)];
    assert_eq!(grants(&plan(&o)), ["set \"\"", "grant etcd/1"]);
    // Still in the relation (machine down, unit not removed): its turn is kept, as restarting
    // another member could cost the quorum.
    let mut o = leader_of(three());
    with_grant(&mut o, "etcd/2");
    o.peers = vec![requesting_peer(1), requesting_peer(2)];
    assert_eq!(grants(&plan(&o)), Vec::<String>::new());
}

#[test]
fn restarts_and_joins_never_overlap() {
    // A unit joining: no restart is granted.
    let mut o = leader_of(vec![member(0), member(1), unstarted_learner(3)]);
    o.peers = vec![requesting_peer(1), peer(3)];
    with_joining(&mut o, "etcd/3", 0x103, "…");
    assert_eq!(grants(&plan(&o)), Vec::<String>::new());
    // A unit restarting: nobody is admitted.
    let mut o = leader_of(vec![member(0), member(1), member(2)]);
    o.peers = vec![requesting_peer(1), peer(2), peer(3)];
    o.peers[1].started = Some(0x102);
    with_grant(&mut o, "etcd/1");
    assert_eq!(membership_effects(&plan(&o)), Vec::<&Effect>::new());
    // A membership change this pass: the grant waits for the next pass.
    let mut o = leader_of(vec![member(0), member(1), member(4)]);
    o.peers = vec![requesting_peer(1)];
    let p = plan(&o);
    assert!(matches!(
        membership_effects(&p)[..],
        [Effect::Remove { id: 0x104, .. }]
    ));
    assert_eq!(grants(&p), Vec::<String>::new());
}

#[test]
fn leader_updates_its_own_peer_url_only_after_its_restart() {
    let cfg = peer_port_2480();
    let mut o = leader_of(vec![member(0), member(1)]);
    o.config = Ok(cfg.clone());
    o.peers = vec![peer(1)];
    let p = plan(&o);
    assert_eq!(membership_effects(&p), Vec::<&Effect>::new());
    assert_eq!(grants(&p), ["grant etcd/0"]);
    // Restarted listening on both ports, advertising the new one: now the member is updated.
    o.own_peer_data = Settings::from([("restart-request".to_string(), "1".to_string())]);
    with_grant(&mut o, "etcd/0");
    let old = [peer_url(0)];
    let init = etcd_charm::core::render::InitialCluster {
        state: etcd_charm::core::render::ClusterState::Existing,
        cluster: "etcd0=x".into(),
        token: "t0k".into(),
    };
    o.local.rendered_config = Some(etcd_charm::core::render::etcd_config(
        &cfg,
        "3.4.23",
        "etcd0",
        &ip(0),
        &init,
        &old,
    ));
    let p = plan(&o);
    assert_updates_etcd0_to_port_2480(&p);
}

#[test]
fn joiner_that_left_the_relation_is_given_up_and_the_next_unit_joins() {
    // etcd/3 was admitted as a learner, then lost its machine and was removed before starting.
    let mut o = leader_of(vec![member(0), member(1), member(2), unstarted_learner(3)]);
    o.peers = vec![peer(1), peer(2), peer(4)];
    with_joining(&mut o, "etcd/3", 0x103, "…");
    let p = plan(&o);
    assert!(
        matches!(
            membership_effects(&p)[..],
            [Effect::Remove { id: 0x103, .. }]
        ),
        "{:?}",
        p.effects
    );
    let freed = p.effects.iter().any(|e| {
        matches!(e, Effect::LeaderSet(s) if s.get(keys::JOINING_UNIT).is_some_and(|u| u.is_empty()))
    });
    assert!(
        freed,
        "the joining slot is freed in the same pass: {:?}",
        p.effects
    );
    assert!(p.again);
    // Next pass: the learner is gone, the slot free: etcd/4 is admitted.
    o.members = Some(three());
    o.leader_data = LeaderData::parse(
        o.leader_data
            .raw
            .clone()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("joining"))
            .collect(),
    );
    assert_eq!(
        membership_effects(&plan(&o)),
        [&Effect::Admit {
            unit: "etcd/4".into(),
            peer_url: peer_url(4)
        }]
    );
    // While its unit is still in the relation (machine down, not removed), the slot is kept.
    let mut o = leader_of(vec![member(0), member(1), member(2), unstarted_learner(3)]);
    o.peers = vec![peer(1), peer(2), peer(3), peer(4)];
    with_joining(&mut o, "etcd/3", 0x103, "…");
    assert_eq!(membership_effects(&plan(&o)), Vec::<&Effect>::new());
    // Nor while goal-state lists it, not yet in a new leader's relation-list.
    o.peers = vec![peer(1), peer(2), peer(4)];
    o.goal = staying(&["etcd/0", "etcd/1", "etcd/2", "etcd/3", "etcd/4"]);
    assert_eq!(membership_effects(&plan(&o)), Vec::<&Effect>::new());
}

// Certificates: only the leader signs, each request once, for the CAs it has now.

#[test]
fn the_leader_signs_each_request_once_and_forgets_units_that_left() {
    let request = |n: u64| TlsRequest {
        csr: format!("CSR {n}"),
        client_csr: format!("CLIENT CSR {n}"),
    };
    let mut o = leader_of(three());
    o.config = Ok(CharmConfig {
        tls: true,
        ..CharmConfig::plain()
    });
    let mut raw = o.leader_data.raw.clone();
    for k in [keys::TLS_CA, keys::TLS_PEER_CA, keys::TLS_CLIENT_CERT] {
        raw.insert(k.into(), format!("{k} PEM"));
    }
    raw.insert(keys::issued_key("etcd/7"), "{}".into());
    o.leader_data = LeaderData::parse(raw);
    o.peers = vec![peer(1), peer(2)];
    o.peers[0].tls_request = Some(request(1));
    let issues = |o: &etcd_charm::core::observed::Observed| -> Vec<Effect> {
        let p = plan(o);
        let tls = p.effects.into_iter().filter(|e| match e {
            Effect::Issue { .. } => true,
            Effect::LeaderSet(s) => s.keys().any(|k| k.starts_with(keys::TLS_ISSUED_PREFIX)),
            _ => false,
        });
        tls.collect()
    };
    // The CA keys unread: nothing is signed.
    assert_eq!(issues(&o), []);
    o.secrets.ca_keys = Some(CaKeys::default());
    let gone = Settings::from([(keys::issued_key("etcd/7"), String::new())]);
    assert_eq!(
        issues(&o),
        [
            Effect::Issue {
                unit: "etcd/1".into()
            },
            Effect::LeaderSet(gone.clone())
        ]
    );
    // Issued from this request and these CAs: not again; a new CA: again.
    let from = Issued::fingerprint("CSR 1", "CLIENT CSR 1", "tls-ca PEM", "tls-peer-ca PEM");
    let issued = Issued {
        from,
        ..Issued::default()
    };
    let mut raw = o.leader_data.raw.clone();
    raw.insert(
        keys::issued_key("etcd/1"),
        serde_json::to_string(&issued).unwrap(),
    );
    o.leader_data = LeaderData::parse(raw.clone());
    assert_eq!(issues(&o), [Effect::LeaderSet(gone)]);
    raw.insert(keys::TLS_CA.into(), "NEW CA PEM".into());
    raw.remove(&keys::issued_key("etcd/7"));
    o.leader_data = LeaderData::parse(raw);
    assert_eq!(
        issues(&o),
        [Effect::Issue {
            unit: "etcd/1".into()
        }]
    );
    // A follower never signs.
    o.leadership = Leadership::Follower;
    assert_eq!(issues(&o), []);
}

// Switching TLS on a running cluster: the whole sequence, one member at a time.

/// A pure model of three units running their plans against a shared member list, leader data
/// and peer data; effects are applied as the real ones would change the facts.
#[derive(Clone)]
struct World {
    members: Vec<etcd_charm::etcd::Member>,
    leader_data: Settings,
    leader: u64,
    tls: bool,
    units: Vec<etcd_charm::core::observed::Observed>,
    /// (unit, what happened), in order: "update" (its member's peer URL), "restart".
    log: Vec<(u64, String)>,
}

impl World {
    fn new() -> World {
        let units = (0..3).map(|n| settled(n, three(), 0)).collect();
        let leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::TLS, "false")]).raw;
        let mut w = World {
            members: three(),
            leader_data,
            leader: 0,
            tls: false,
            units,
            log: vec![],
        };
        for n in 0..3 {
            w.pass(n, usize::MAX);
        }
        w.log.clear();
        w
    }

    fn observed(&self, n: u64) -> etcd_charm::core::observed::Observed {
        let mut o = self.units[n as usize].clone();
        o.config = Ok(CharmConfig {
            tls: self.tls,
            ..CharmConfig::plain()
        });
        o.leadership = match n == self.leader {
            true => Leadership::Leader,
            false => Leadership::Follower,
        };
        o.leader_data = LeaderData::parse(self.leader_data.clone());
        o.members = Some(self.members.clone());
        o.peers = (0..3)
            .filter(|m| *m != n)
            .map(|m| {
                let d = &self.units[m as usize].own_peer_data;
                let get = |k: &str| d.get(k).filter(|v| !v.is_empty()).cloned();
                etcd_charm::core::observed::Peer {
                    peer_url: get("peer-url"),
                    client_url: get("client-url"),
                    started: get("started").and_then(|s| u64::from_str_radix(&s, 16).ok()),
                    restart_request: get("restart-request"),
                    tls_request: TlsRequest::from_data(d),
                    tls_files: get("tls-files"),
                    ..peer(m)
                }
            })
            .collect();
        // The leader reads the CA keys from their secret.
        let has_ca = self.leader_data.contains_key(keys::TLS_CA_SECRET);
        if n == self.leader && has_ca {
            o.secrets.ca_keys = Some(CaKeys::default());
        }
        o
    }

    /// One hook of unit `n` (observe, plan, apply, again while asked), cut short after `cut`
    /// effects (a killed hook). Returns whether anything was applied.
    fn pass(&mut self, n: u64, cut: usize) -> bool {
        let mut applied = 0;
        for _ in 0..10 {
            let p = plan(&self.observed(n));
            for e in &p.effects {
                if applied == cut {
                    return true;
                }
                applied += 1;
                self.apply(n, e);
            }
            if !p.again {
                break;
            }
        }
        applied > 0
    }

    fn apply(&mut self, n: u64, e: &Effect) {
        let merge = |into: &mut Settings, s: &Settings| {
            for (k, v) in s {
                match v.is_empty() {
                    true => into.remove(k),
                    false => into.insert(k.clone(), v.clone()),
                };
            }
        };
        let u = &mut self.units[n as usize];
        match e {
            Effect::PeerSet(_, s) => merge(&mut u.own_peer_data, s),
            Effect::LeaderSet(s) => merge(&mut self.leader_data, s),
            Effect::GrantRestart { unit } => {
                self.leader_data
                    .insert(keys::RESTART_GRANTED.into(), unit.clone());
            }
            Effect::CreateCa => {
                for k in [
                    keys::TLS_CA,
                    keys::TLS_PEER_CA,
                    keys::TLS_CLIENT_CERT,
                    keys::TLS_CA_SECRET,
                    keys::TLS_CLIENT_SECRET,
                ] {
                    self.leader_data.insert(k.into(), format!("{k} value"));
                }
            }
            Effect::TlsRequest { sans } => {
                let req = TlsRequest {
                    csr: format!("CSR {n} {}", sans.join(",")),
                    client_csr: format!("CLIENT CSR {n}"),
                };
                u.local.tls_request_record = Some(req.record(sans));
                u.own_peer_data.insert(peer_keys::TLS_CSR.into(), req.csr);
                u.own_peer_data
                    .insert(peer_keys::TLS_CLIENT_CSR.into(), req.client_csr);
            }
            Effect::Issue { unit } => {
                let number: usize = unit[5..].parse().unwrap();
                let req = TlsRequest::from_data(&self.units[number].own_peer_data).unwrap();
                let issued = Issued {
                    from: ca_fingerprint(&self.leader_data, &req),
                    ..Issued::default()
                };
                let value = serde_json::to_string(&issued).unwrap();
                self.leader_data.insert(keys::issued_key(unit), value);
            }
            Effect::TlsFiles { sans } => {
                let req = TlsRequest::from_data(&u.own_peer_data).unwrap();
                let issued = Issued {
                    from: ca_fingerprint(&self.leader_data, &req),
                    ..Issued::default()
                };
                let ca = &self.leader_data[keys::TLS_CA];
                let peer_ca = &self.leader_data[keys::TLS_PEER_CA];
                u.local.tls_record = Some(tls_files_record(ca, peer_ca, &issued, sans));
                u.external.served = Some(issued.server.clone());
            }
            Effect::TrustBundle(bundle) => u.external.bundle = Some(bundle.clone()),
            Effect::ServeCert(pem) => u.external.served = Some(pem.clone()),
            Effect::UpdatePeerUrl { id, peer_url, .. } => {
                let m = self.members.iter_mut().find(|m| m.id == *id).unwrap();
                m.peer_urls = vec![peer_url.clone()];
                self.log.push((id - 0x100, "update".into()));
            }
            Effect::Render(config) => u.local.rendered_config = Some(config.clone()),
            Effect::Restart(config) => {
                u.local.rendered_config = Some(config.clone());
                let (peer, client) = etcd_charm::core::render::advertised_urls(config).unwrap();
                let m = self.members.iter_mut().find(|m| m.id == 0x100 + n).unwrap();
                // Restarting on a scheme its member is not listed with would cut it off.
                assert_eq!(m.peer_urls, [peer], "etcd/{n} restarted before its update");
                m.client_urls = vec![client];
                self.log.push((n, "restart".into()));
            }
            Effect::RecordMemberId(_) | Effect::SetVersion(_) | Effect::OpenPorts(_) => {}
            Effect::RelationSet(..) => {}
            Effect::Auth(change) => {
                let (key, value) = match change {
                    AuthChange::SetUser { name, grant, .. } => {
                        (format!("{}{name}", keys::AUTH_USER_PREFIX), grant.record())
                    }
                    AuthChange::DeleteUser { name } => {
                        (format!("{}{name}", keys::AUTH_USER_PREFIX), String::new())
                    }
                    AuthChange::Enable => (keys::AUTH.to_string(), "on".to_string()),
                    AuthChange::Disable => (keys::AUTH.to_string(), String::new()),
                };
                self.leader_data.insert(key, value);
            }
            other => panic!("unexpected effect {other:?}"),
        }
    }

    /// Runs every unit's hooks, round after round, until `unit` holds the restart turn.
    fn until_turn_of(&mut self, unit: &str) {
        for _ in 0..10 {
            for n in 0..3 {
                self.pass(n, usize::MAX);
            }
            if self
                .leader_data
                .get(keys::RESTART_GRANTED)
                .map(String::as_str)
                == Some(unit)
            {
                return;
            }
        }
    }

    /// The `tls` value the leader has recorded.
    fn recorded_tls(&self) -> Option<&str> {
        self.leader_data.get(keys::TLS).map(String::as_str)
    }

    /// Runs every unit's hooks, round after round, until nothing changes any more.
    fn settle(&mut self) {
        for _ in 0..30 {
            let before = (
                self.members.clone(),
                self.leader_data.clone(),
                self.log.len(),
            );
            let peer_data: Vec<Settings> =
                self.units.iter().map(|u| u.own_peer_data.clone()).collect();
            for n in 0..3 {
                self.pass(n, usize::MAX);
            }
            let after: Vec<Settings> = self.units.iter().map(|u| u.own_peer_data.clone()).collect();
            if before
                == (
                    self.members.clone(),
                    self.leader_data.clone(),
                    self.log.len(),
                )
                && peer_data == after
            {
                return;
            }
        }
        panic!("no fixed point: {:?}", self.log);
    }

    fn statuses(&self) -> Vec<String> {
        (0..3)
            .map(|n| plan(&self.observed(n)).status.message())
            .collect()
    }

    fn all_on(&self, tls: bool) -> bool {
        let s = if tls { "https://" } else { "http://" };
        self.members
            .iter()
            .all(|m| m.peer_urls[0].starts_with(s) && m.client_urls[0].starts_with(s))
    }
}

/// What the leader issues certificates from: the request and both CAs.
fn ca_fingerprint(leader_data: &Settings, req: &TlsRequest) -> String {
    let (ca, peer_ca) = (&leader_data[keys::TLS_CA], &leader_data[keys::TLS_PEER_CA]);
    Issued::fingerprint(&req.csr, &req.client_csr, ca, peer_ca)
}

fn in_order(log: &[(u64, String)]) -> Vec<String> {
    log.iter()
        .map(|(n, what)| format!("{what} etcd/{n}"))
        .collect()
}

const ONE_AT_A_TIME: [&str; 6] = [
    "update etcd/0",
    "restart etcd/0",
    "update etcd/1",
    "restart etcd/1",
    "update etcd/2",
    "restart etcd/2",
];

#[test]
fn tls_switch_updates_then_restarts_one_member_at_a_time_and_back() {
    let mut w = World::new();
    w.tls = true;
    // The first round: the CA, then requests; etcd/0 (the leader) goes first.
    w.pass(0, usize::MAX);
    assert!(w.leader_data.contains_key(keys::TLS_CA));
    w.settle();
    assert_eq!(in_order(&w.log), ONE_AT_A_TIME);
    assert!(w.all_on(true));
    assert_eq!(w.recorded_tls(), Some("true"));
    assert!(!w.leader_data.contains_key(keys::RESTART_GRANTED));
    assert!(!w.leader_data.contains_key(keys::TLS_SWITCHING));
    assert_eq!(w.statuses(), vec!["3 members healthy"; 3]);
    // Once every unit runs its root certificate: the root user, then etcd auth.
    assert_eq!(w.leader_data[keys::AUTH], "on");
    assert_eq!(w.leader_data["auth-user-root"], "root");

    // And back to http, the same way, auth off first.
    w.log.clear();
    w.tls = false;
    w.settle();
    assert_eq!(in_order(&w.log), ONE_AT_A_TIME);
    assert!(w.all_on(false));
    assert_eq!(w.recorded_tls(), Some("false"));
    assert_eq!(w.statuses(), vec![plain("3 members healthy", "<app>"); 3]);
    assert_eq!(w.leader_data[keys::AUTH], "");
}

#[test]
fn tls_switch_shows_who_is_next_and_resumes_after_killed_hooks() {
    let mut w = World::new();
    w.tls = true;
    // The first round: requests; the second: the leader signs them, the units write their files.
    for n in (0..3).chain(0..3) {
        w.pass(n, usize::MAX);
    }
    let statuses = w.statuses();
    assert!(
        statuses.iter().all(|s| s.starts_with("switching to TLS")),
        "{statuses:?}"
    );
    // Every hook killed after each possible number of effects: still converges, in order.
    for cut in 0..6 {
        let mut w = World::new();
        w.tls = true;
        for round in 0..40 {
            let n = round % 3;
            w.pass(n, cut);
            w.pass(n, cut);
        }
        w.settle();
        assert_eq!(
            in_order(&w.log),
            ONE_AT_A_TIME,
            "killed after {cut} effects"
        );
        assert_eq!(w.recorded_tls(), Some("true"));
    }
}

#[test]
fn tls_switch_goes_on_under_a_new_leader() {
    let mut w = World::new();
    w.tls = true;
    // etcd/0 leads until etcd/1 holds the turn, then etcd/2 takes over.
    w.until_turn_of("etcd/1");
    assert_eq!(
        w.leader_data.get(keys::RESTART_GRANTED).map(String::as_str),
        Some("etcd/1")
    );
    w.leader = 2;
    w.settle();
    assert_eq!(in_order(&w.log), ONE_AT_A_TIME);
    assert!(w.all_on(true));
    assert_eq!(w.recorded_tls(), Some("true"));
}

#[test]
fn tls_switch_called_off_midway_goes_back_member_by_member() {
    let mut w = World::new();
    w.tls = true;
    w.until_turn_of("etcd/1");
    // etcd/0 on https, etcd/1's turn: the option is set back.
    w.tls = false;
    w.log.clear();
    w.settle();
    assert!(w.all_on(false), "{:?}", w.members);
    assert_eq!(in_order(&w.log)[..2], ["update etcd/0", "restart etcd/0"]);
    assert_eq!(w.recorded_tls(), Some("false"));
    assert!(!w.leader_data.contains_key(keys::TLS_SWITCHING));
    assert!(!w.leader_data.contains_key(keys::RESTART_GRANTED));
    assert_eq!(w.statuses(), vec![plain("3 members healthy", "<app>"); 3]);
}

#[test]
fn a_unit_publishing_another_members_peer_url_is_not_moved_there() {
    let mut o = running(0, three(), 0);
    o.leadership = Leadership::Leader;
    o.peers = vec![peer(1), peer(2)];
    o.peers[0].peer_url = o.peers[1].peer_url.clone();
    assert_eq!(membership_effects(&plan(&o)), Vec::<&Effect>::new());
}
