//! The planner as state transitions, one unit's side: install, bootstrap, joining, rejoining,
//! config, missing tools, status. Arrange facts, plan, assert effects. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::core::config::{CharmConfig, ConfigError};
use etcd_charm::core::effect::{Effect, Plan};
use etcd_charm::core::observed::{
    keys, peer_keys, tls_files_record, CaKeys, ClientRelation, Issued, LeaderData, Leadership,
    Observed, Redacted, TlsRequest, TlsSecrets,
};
use etcd_charm::core::plan::plan;
use etcd_charm::core::status::{Health, Status};
use etcd_charm::core::version::Refusal;
use etcd_charm::juju::context::Hook;
use etcd_charm::juju::Settings;
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
        (keys::TLS.to_string(), "false".to_string()),
    ]);
    assert_eq!(p.effects[0], Effect::LeaderSet(token));
    let config = rendered(&p);
    assert!(config.contains("initial-cluster: etcd0=http://10.0.0.10:2380\n"));
    assert!(config.contains("initial-cluster-state: new\n"));
    assert!(config.contains("initial-cluster-token: f00dcafe\n"));
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
fn the_running_member_says_which_member_this_unit_is() {
    // The recorded id is stale (a data dir replaced, say): the member's own word counts, the
    // same for finding it, publishing it and recording it.
    let mut o = settled(1, vec![member(0), member(1)], 0);
    o.local.member_id = Some(0x999);
    o.peer_relation = Some("cluster:0".into());
    let p = plan(&o);
    assert!(!p.effects.contains(&Effect::Wipe));
    assert!(p.effects.contains(&Effect::RecordMemberId(0x101)));
    assert_eq!(o.member_id(), Some(0x101));
    let started = p.effects.iter().find_map(|e| match e {
        Effect::PeerSet(_, s) => s.get("started").cloned(),
        _ => None,
    });
    assert_eq!(started.as_deref(), Some("101"));
    assert_eq!(p.status, Status::Active(Health::plain(2)));
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
    assert_eq!(plan(&o).status, Status::Active(Health::plain(2)));
    assert!(plan(&o).status.message().contains("odd number"));
}

#[test]
fn status_names_the_member_that_does_not_answer_and_its_return() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 1);
    o.cluster.answers.retain(|s| s.member_id != 0x100);
    let p = plan(&o);
    assert_eq!(p.status.state(), "active");
    assert_eq!(
        p.status.message_for("etcd"),
        plain(
            "2 of 3 members healthy: etcd0 (etcd/0) does not answer",
            "etcd"
        )
    );
    // Back: healthy again.
    let o = settled(1, vec![member(0), member(1), member(2)], 1);
    assert_eq!(
        plan(&o).status.message_for("etcd"),
        plain("3 members healthy", "etcd")
    );
}

#[test]
fn status_lists_learners_alarms_and_full_backends_naming_the_application() {
    let mut members = vec![member(0), member(1), member(2), member(3)];
    members[3].is_learner = true;
    let mut o = settled(1, members, 1);
    let message = plan(&o).status.message_for("etcd-east");
    assert_eq!(
        message,
        plain(
            "3 members healthy; learner etcd3 (etcd/3) not yet promoted",
            "etcd-east"
        )
    );
    // 1.81 GiB of the default 2 GiB quota on db2.
    o.cluster.answers[2].db_size = 1_940_000_000;
    o.cluster.alarms = vec![(0x102, "NOSPACE".into())];
    let p = plan(&o);
    assert_eq!(p.status.state(), "blocked");
    let message = p.status.message_for("etcd-east");
    assert!(
        message.starts_with("3 members healthy; alarm NOSPACE on etcd2 (etcd/2): writes refused")
    );
    assert!(
        message.contains("; etcd2 (etcd/2) uses 90% of the backend quota;"),
        "{message}"
    );
    assert!(
        message.contains("`juju run etcd-east/leader alarm-disarm`"),
        "{message}"
    );
    assert!(!message.contains("<app>"), "{message}");
    // A CORRUPT alarm of no particular member (member id 0).
    o.cluster.alarms = vec![(0, "CORRUPT".into())];
    let message = plan(&o).status.message_for("etcd-east");
    assert!(
        message.contains("alarm CORRUPT on the cluster: writes refused"),
        "{message}"
    );
    assert!(
        message.contains("quota: run `juju run etcd-east/leader compact`"),
        "{message}"
    );
    // A quota of its own: 1.8 GiB of 4 GiB is fine.
    o.cluster.alarms.clear();
    o.config = Ok(CharmConfig {
        quota_backend_bytes: 4 * 1024 * 1024 * 1024,
        ..CharmConfig::plain()
    });
    runs_with(
        &mut o,
        &CharmConfig {
            quota_backend_bytes: 4 * 1024 * 1024 * 1024,
            ..CharmConfig::plain()
        },
    );
    assert!(!plan(&o).status.message().contains("quota"));
}

#[test]
fn invalid_config_names_the_application_in_its_advice() {
    let mut o = running(0, vec![member(0)], 0);
    o.config = Err(ConfigError {
        option: "port".into(),
        value: "0".into(),
        expected: "an integer from 1 to 65535".into(),
    });
    let text = plan(&o).status.message_for("etcd-east");
    assert!(
        text.ends_with("fix it with `juju config etcd-east port=<value>`"),
        "{text}"
    );
}

#[test]
fn enable_v2_is_refused_on_etcd_3_6_and_applied_before() {
    let v2 = CharmConfig {
        enable_v2: true,
        ..CharmConfig::plain()
    };
    let mut o = settled(0, vec![member(0)], 0);
    o.config = Ok(v2.clone());
    o.local.version = Some("3.6.5".into());
    let p = plan(&o);
    assert_eq!(p.effects, [], "nothing applied");
    assert_eq!(p.status.state(), "blocked");
    assert_eq!(
        p.status.message_for("etcd"),
        "invalid config enable_v2=true: must be false with etcd 3.6.5: etcd 3.6 removed the v2 \
         API (attach etcd 3.5.x for v2 consumers); fix it with `juju config etcd enable_v2=<value>`"
    );
    // On 3.4 the sole member restarts with it at once.
    o.local.version = Some("3.4.23".into());
    let p = plan(&o);
    let Some(Effect::Restart(config)) = p.effects.iter().find(|e| matches!(e, Effect::Restart(_)))
    else {
        panic!("no restart: {:?}", p.effects)
    };
    assert!(config.contains("\nenable-v2: true\n"), "{config}");
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
    assert_eq!(unknown.status, Status::Active(Health::plain(1)));
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
        ..CharmConfig::plain()
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
    assert_eq!(p.status, Status::Active(Health::plain(3)));
}

#[test]
fn corruption_checks_reach_a_running_cluster_through_the_rolling_restart() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    // Rendered by a charm without corruption checks.
    let old = o.local.rendered_config.clone().unwrap();
    let old: String = old
        .lines()
        .filter(|l| !l.contains("corrupt-check"))
        .map(|l| format!("{l}\n"))
        .collect();
    o.local.rendered_config = Some(old);
    let p = plan(&o);
    assert!(!renders(&p) && !restarts(&p), "{:?}", p.effects);
    assert_eq!(p.status, Status::WaitRestart { behind: None });
    // In its turn it restarts with them.
    with_grant(&mut o, "etcd/1");
    o.own_peer_data
        .insert("restart-request".into(), "f1n9e2p".into());
    let p = plan(&o);
    let Some(Effect::Restart(config)) = p.effects.iter().find(|e| matches!(e, Effect::Restart(_)))
    else {
        panic!("no restart: {:?}", p.effects)
    };
    assert!(
        config.contains("\nexperimental-initial-corrupt-check: true\n"),
        "{config}"
    );
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
    assert_eq!(p.status, Status::Active(Health::plain(3)));
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
    o.config = Ok(CharmConfig::plain());
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
    assert_eq!(p.status, Status::Active(Health::plain(3)));
}

#[test]
fn new_etcd_version_restarts_in_turn() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.local.version = Some("3.5.21".into());
    assert_eq!(plan(&o).status, Status::WaitRestart { behind: None });
    o.local.version = Some("v3.4.23".into());
    assert_eq!(plan(&o).status, Status::Active(Health::plain(3)));
}

#[test]
fn a_new_resource_is_observed_again_and_a_refused_one_blocks_until_replaced() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.hook = Hook::Other("upgrade-charm".into());
    let p = plan(&o);
    assert_eq!(p.effects[0], Effect::Install);
    assert!(
        p.again,
        "a new version restarts in its turn (or the refusal shows) in-hook"
    );
    let refusal = Refusal::Downgrade {
        offered: "3.4.23".into(),
        current: "3.5.1".into(),
        attach: "3.5.x or 3.6.x".into(),
    };
    o.local.refused_resource = Some(refusal.clone());
    o.hook = Hook::Other("update-status".into());
    let p = plan(&o);
    assert_eq!(p.status, Status::ResourceRefused(refusal.clone()));
    assert_eq!(p.status.state(), "blocked");
    // Everything else goes on as usual: a new setting still rolls.
    o.config = Ok(debug_config());
    let p = plan(&o);
    assert_eq!(p.status, Status::ResourceRefused(refusal));
    assert!(!restarts(&p) && published_request(&p).is_some());
    // An invalid config says so first.
    o.config = Err(ConfigError {
        option: "port".into(),
        value: "0".into(),
        expected: "1-65535".into(),
    });
    assert!(matches!(plan(&o).status, Status::InvalidConfig(_)));
}

#[test]
fn the_version_shown_is_the_running_one() {
    let mut o = settled(1, vec![member(0), member(1), member(2)], 0);
    o.hook = Hook::Other("config-changed".into());
    o.local.version = Some("3.5.1".into());
    assert_eq!(plan(&o).effects[0], Effect::SetVersion("3.4.23".into()));
    o.local.status = None;
    assert_eq!(plan(&o).effects[0], Effect::SetVersion("3.5.1".into()));
}

#[test]
fn new_port_is_announced_only_once_etcd_runs_with_it() {
    let cfg = CharmConfig {
        port: 4001,
        management_port: 2480,
        ..CharmConfig::plain()
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

// TLS: chosen at bootstrap, the CA from leader data, member files planned, never switched later.

fn tls_config() -> CharmConfig {
    CharmConfig {
        tls: true,
        ..CharmConfig::plain()
    }
}

/// Leader data with the CA material (and `pairs`).
fn with_ca(pairs: &[(&str, &str)]) -> LeaderData {
    let mut all = vec![
        (keys::TLS_CA, "CA PEM"),
        (keys::TLS_PEER_CA, "PEER CA PEM"),
        (keys::TLS_CLIENT_CERT, "CLIENT PEM"),
        (keys::TLS_CA_SECRET, "secret:ca"),
        (keys::TLS_CLIENT_SECRET, "secret:client"),
    ];
    all.extend_from_slice(pairs);
    leader_data(&all)
}

/// This unit's published certificate requests (and their keys on its machine).
fn requested(o: &mut Observed) -> TlsRequest {
    let n: u64 = o.unit[5..].parse().unwrap();
    let req = TlsRequest {
        csr: format!("CSR {n}"),
        client_csr: format!("CLIENT CSR {n}"),
    };
    o.own_peer_data
        .insert(peer_keys::TLS_CSR.into(), req.csr.clone());
    o.own_peer_data
        .insert(peer_keys::TLS_CLIENT_CSR.into(), req.client_csr.clone());
    o.local.tls_request_record = Some(req.record(&sans(n)));
    req
}

/// What the leader issues for `req` with the CAs of [`with_ca`].
fn issued_from(req: &TlsRequest) -> String {
    Issued::fingerprint(&req.csr, &req.client_csr, "CA PEM", "PEER CA PEM")
}

/// This unit requested and the leader issued its certificates; with `written`, its files are
/// in place too.
fn certified(o: &mut Observed, written: bool) {
    let req = requested(o);
    let issued = Issued {
        from: issued_from(&req),
        ..Issued::default()
    };
    let mut raw = o.leader_data.raw.clone();
    let value = serde_json::to_string(&issued).unwrap();
    raw.insert(keys::issued_key(&o.unit), value);
    o.leader_data = LeaderData::parse(raw);
    let n: u64 = o.unit[5..].parse().unwrap();
    let record = tls_files_record("CA PEM", "PEER CA PEM", &issued, &sans(n));
    o.local.tls_record = written.then_some(record);
    if written {
        o.external.bundle = Some("CA PEM\n".into());
        o.external.served = Some(issued.server.clone());
    }
}

fn sans(n: u64) -> Vec<String> {
    vec![
        ip(n),
        format!("machine-{n}"),
        "localhost".into(),
        "127.0.0.1".into(),
    ]
}

/// Unit `etcd/<n>` with TLS on, its hostname known.
fn tls_unit(mut o: Observed) -> Observed {
    o.config = Ok(tls_config());
    let n: u64 = o.unit[5..].parse().unwrap();
    o.local.hostname = Some(format!("machine-{n}"));
    o
}

#[test]
fn tls_leader_creates_the_ca_before_bootstrapping() {
    let mut o = tls_unit(fresh(0));
    o.leadership = Leadership::Leader;
    let p = plan(&o);
    assert_eq!(p.effects, [Effect::CreateCa]);
    assert_eq!(p.status, Status::WaitTlsCa);
    assert!(p.again);
    // A follower only waits for it.
    let p = plan(&tls_unit(fresh(1)));
    assert_eq!(p.effects, []);
    assert_eq!(p.status.state(), "waiting");
}

#[test]
fn tls_leader_bootstraps_over_https_with_its_certificate_first() {
    let mut o = tls_unit(fresh(0));
    o.leadership = Leadership::Leader;
    o.leader_data = with_ca(&[]);
    o.secrets.ca_keys = Some(CaKeys::default());
    // Its own request first, then it signs it, like any unit's; nothing else meanwhile.
    let p = plan(&o);
    assert_eq!(p.effects, [Effect::TlsRequest { sans: sans(0) }]);
    assert_eq!(p.status, Status::WaitTlsCert);
    assert!(p.again);
    requested(&mut o);
    let p = plan(&o);
    let issue = Effect::Issue {
        unit: "etcd/0".into(),
    };
    assert_eq!(p.effects, [issue]);
    assert_eq!(p.status, Status::WaitTlsCert);
    assert!(p.again, "its files on the next pass");
    certified(&mut o, false);
    let p = plan(&o);
    assert_eq!(p.effects[0], Effect::TlsFiles { sans: sans(0) });
    let Some(Effect::LeaderSet(set)) = p.effects.iter().find(|e| matches!(e, Effect::LeaderSet(_)))
    else {
        panic!("no LeaderSet in {:?}", p.effects)
    };
    assert_eq!(set[keys::TLS], "true");
    let config = rendered(&p);
    assert!(config.contains("initial-cluster: etcd0=https://10.0.0.10:2380\n"));
    assert!(config.contains("advertise-client-urls: https://10.0.0.10:2379\n"));
    assert!(config.contains("client-transport-security:\n  cert-file: /etc/etcd/tls/server.crt\n"));
    assert!(config.contains("peer-transport-security:\n"));
    assert_eq!(p.status, Status::Bootstrapping);
    // Its peer data announces https URLs.
    let Some(Effect::PeerSet(_, peer)) =
        p.effects.iter().find(|e| matches!(e, Effect::PeerSet(..)))
    else {
        panic!("no PeerSet in {:?}", p.effects)
    };
    assert_eq!(peer["peer-url"], "https://10.0.0.10:2380");
    assert_eq!(peer["client-url"], "https://10.0.0.10:2379");
}

#[test]
fn tls_files_are_made_again_only_when_what_they_come_from_changes() {
    let members = vec![scheme_member(0), scheme_member(1)];
    let mut o = tls_unit(running(1, members, 0));
    o.leader_data = with_ca(&[(keys::TOKEN, "t0k"), (keys::TLS, "true")]);
    runs_with(&mut o, &tls_config());
    certified(&mut o, true);
    let p = plan(&o);
    let files = |p: &Plan| {
        p.effects.iter().any(|e| {
            matches!(
                e,
                Effect::TlsFiles { .. } | Effect::Render(_) | Effect::Restart(_)
            )
        })
    };
    assert!(
        !files(&p),
        "all in place: nothing to write: {:?}",
        p.effects
    );
    assert_eq!(p.status, Status::Active(Health::healthy(2)));
    // A missing file (no record): written again from what was issued; a new address: a new
    // request (the files in use stay); a new CA: the leader's new certificates awaited (the
    // files in use stay). Never a restart.
    let first = |p: &Plan| {
        let mut tls = p
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::TlsFiles { .. } | Effect::TlsRequest { .. }));
        tls.next().cloned()
    };
    for (change, want) in [
        ("missing", Some(Effect::TlsFiles { sans: sans(1) })),
        ("address", Some(Effect::TlsRequest { sans: renamed() })),
        ("ca", None),
    ] {
        let mut o = o.clone();
        match change {
            "missing" => o.local.tls_record = None,
            "address" => o.local.hostname = Some("renamed".into()),
            _ => {
                let mut raw = o.leader_data.raw.clone();
                raw.insert(keys::TLS_CA.into(), "NEW CA PEM".into());
                o.leader_data = LeaderData::parse(raw);
            }
        }
        let p = plan(&o);
        assert_eq!(first(&p), want, "{change}: {:?}", p.effects);
        assert!(!p.effects.iter().any(|e| matches!(e, Effect::Restart(_))));
        assert_eq!(p.status, Status::Active(Health::healthy(2)), "{change}");
    }
}

fn renamed() -> Vec<String> {
    vec![
        ip(1),
        "renamed".into(),
        "localhost".into(),
        "127.0.0.1".into(),
    ]
}

fn scheme_member(n: u64) -> etcd_charm::etcd::Member {
    let m = member(n);
    etcd_charm::etcd::Member {
        peer_urls: vec![scheme(true, &m.peer_urls[0])],
        client_urls: vec![scheme(true, &m.client_urls[0])],
        ..m
    }
}

#[test]
fn changing_tls_after_bootstrap_switches_in_turn_after_the_peer_url_update() {
    // Bootstrapped without TLS (recorded, or before the option existed), then tls=true: the CA
    // first (leader), then the member's files, then a request for its turn; nothing restarts.
    for recorded in [Some("false"), None] {
        let members = vec![member(0), member(1), member(2)];
        let mut o = tls_unit(settled(1, members, 0));
        let mut pairs = vec![(keys::TOKEN, "t0k")];
        if let Some(v) = recorded {
            pairs.push((keys::TLS, v));
        }
        o.leader_data = leader_data(&pairs);
        assert_eq!(plan(&o).status, Status::WaitTlsCa);
        o.leader_data = with_ca(&pairs);
        // Its request, while it runs on http; then its files once issued.
        let p = plan(&o);
        assert_eq!(p.effects, [Effect::TlsRequest { sans: sans(1) }]);
        assert_eq!(p.status, Status::WaitTlsCert);
        certified(&mut o, false);
        let p = plan(&o);
        assert!(
            matches!(p.effects[0], Effect::TlsFiles { .. }),
            "{:?}",
            p.effects
        );
        assert!(!p
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Restart(_) | Effect::Render(_))));
        let request = published_request(&p).expect("a restart request");
        assert_eq!(p.status.state(), "waiting");
        assert_eq!(
            p.status.message(),
            "switching to TLS: waiting for the next member's turn"
        );
        certified(&mut o, true);
        o.own_peer_data
            .insert("restart-request".to_string(), request);
        // Another unit's turn.
        let mut raw = o.leader_data.raw.clone();
        raw.insert(keys::RESTART_GRANTED.into(), "etcd/0".into());
        o.leader_data = LeaderData::parse(raw);
        assert_eq!(plan(&o).status.message(), "switching to TLS: etcd/0 next");
        // Its turn, the member still on http: it waits for the leader's member update.
        with_grant(&mut o, "etcd/1");
        let p = plan(&o);
        assert!(
            !p.effects.iter().any(|e| matches!(e, Effect::Restart(_))),
            "{:?}",
            p.effects
        );
        assert!(p
            .status
            .message()
            .contains("once the leader has updated its peer URL to https"));
        // Updated (as the member list says, or as the leader says while the list lags): restart.
        for told in [false, true] {
            let mut o = o.clone();
            if told {
                let mut raw = o.leader_data.raw.clone();
                raw.insert(
                    keys::TLS_SWITCHING.into(),
                    format!("etcd/1 https://{}:2380", ip(1)),
                );
                o.leader_data = LeaderData::parse(raw);
            } else {
                o.members.as_mut().unwrap()[1].peer_urls = vec![scheme(true, &peer_url(1))];
            }
            let p = plan(&o);
            let Some(Effect::Restart(config)) =
                p.effects.iter().find(|e| matches!(e, Effect::Restart(_)))
            else {
                panic!("no restart: {:?}", p.effects)
            };
            assert!(
                config.contains("listen-peer-urls: https://10.0.0.11:2380\n"),
                "{config}"
            );
            assert!(config.contains("peer-transport-security:"), "{config}");
            assert_eq!(p.status.state(), "maintenance");
            assert_eq!(
                p.status.message(),
                "switching to TLS: restarting etcd on https"
            );
        }
    }
}

/// The settings of the plan's first `relation-set` on a client relation.
fn first_relation_set(p: &Plan) -> Settings {
    let found = p.effects.iter().find_map(|e| match e {
        Effect::RelationSet(_, s) => Some(s.clone()),
        _ => None,
    });
    found.unwrap_or_else(|| panic!("no RelationSet in {:?}", p.effects))
}

#[test]
fn client_relations_carry_the_tls_credentials_only_with_tls() {
    let relations = |published: Settings| {
        vec![
            ClientRelation {
                id: "db:5".into(),
                endpoint: "db".into(),
                app: Some("kube".into()),
                prefix: None,
                published: published.clone(),
            },
            ClientRelation {
                id: "proxy:6".into(),
                endpoint: "proxy".into(),
                app: None,
                prefix: None,
                published,
            },
        ]
    };
    let mut o = tls_unit(running(1, vec![scheme_member(0), scheme_member(1)], 0));
    o.leader_data = with_ca(&[
        (keys::TOKEN, "t0k"),
        (keys::TLS, "true"),
        (
            keys::ENDPOINTS,
            "https://10.0.0.10:2379,https://10.0.0.11:2379",
        ),
        (
            keys::CLUSTER,
            "etcd0=https://10.0.0.10:2380,etcd1=https://10.0.0.11:2380",
        ),
        ("consumer-cert-kube", "KUBE PEM"),
        ("consumer-secret-kube", "secret:kube"),
    ]);
    o.clients = relations(Settings::new());
    certified(&mut o, true);
    // While this unit cannot read the consumers' key, the credentials are left alone.
    let p = plan(&o);
    let sets = p.effects.iter().filter_map(|e| match e {
        Effect::RelationSet(_, s) => Some(s),
        _ => None,
    });
    // (The CA is no secret: it is published all the same.)
    assert!(sets.clone().count() == 2 && sets.clone().all(|s| !s.contains_key("client_key")));
    o.secrets.available = true;
    o.secrets.client_key = Some(Redacted("CLIENT KEY PEM".into()));
    let kube_key = Redacted("KUBE KEY PEM".into());
    o.secrets.consumer_keys.insert("kube".into(), kube_key);
    let p = plan(&o);
    let sets: Vec<&Settings> = p
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::RelationSet(_, s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 2);
    // The db consumer gets its application's own certificate, the proxy the shared one.
    let own = [
        ("KUBE PEM", "KUBE KEY PEM", "secret:kube"),
        ("CLIENT PEM", "CLIENT KEY PEM", "secret:client"),
    ];
    for (s, (cert, key, secret)) in sets.iter().zip(own) {
        assert_eq!(s["client_ca"], "CA PEM");
        assert_eq!(s["client_cert"], cert);
        assert_eq!(s["client_key"], key);
        assert_eq!(s["client_key_secret"], secret);
        assert!(
            !s.contains_key("password"),
            "the password is in the secret: {s:?}"
        );
    }
    // For clients that cannot use a certificate with a common name: the shared one without
    // and the etcd user name (the password in the relation's secret).
    assert_eq!(sets[0]["username"], "kube");
    assert_eq!(sets[0]["cnless_client_cert"], "CLIENT PEM");
    assert_eq!(sets[0]["cnless_client_key"], "CLIENT KEY PEM");
    assert!(!sets[1].contains_key("username"), "{:?}", sets[1]);
    // Only the leader grants the secret, to each relation that does not name it yet.
    let grants = |o: &Observed| -> Vec<Effect> {
        let p = plan(o);
        let grants = p.effects.into_iter();
        grants
            .filter(|e| matches!(e, Effect::GrantSecret { .. }))
            .collect()
    };
    assert_eq!(grants(&o), []);
    o.leadership = Leadership::Leader;
    o.secrets.ca_keys = Some(CaKeys::default());
    let grant = |id: &str, relation: &str| Effect::GrantSecret {
        id: id.into(),
        relation: relation.into(),
    };
    let want = [
        grant("secret:kube", "db:5"),
        grant("secret:client", "proxy:6"),
    ];
    assert_eq!(grants(&o), want);
    let mut named = o.clone();
    let key = |id: &str| Settings::from([("client_key_secret".into(), id.into())]);
    named.clients = relations(key("secret:client"));
    named.clients[0].published = key("secret:kube");
    let own = ("credentials_secret".to_string(), "secret:kube".to_string());
    named.clients[0].published.extend([own]);
    assert_eq!(grants(&named), []);
    // Juju 2.9: the key from leader data, no secret named.
    let mut old = o.clone();
    old.leadership = Leadership::Follower;
    old.secrets = TlsSecrets::default();
    let mut raw = old.leader_data.raw.clone();
    raw.insert(keys::TLS_CLIENT_KEY.into(), "KEY IN LEADER DATA".into());
    raw.insert("consumer-key-kube".into(), "KUBE KEY IN LEADER DATA".into());
    raw.insert("consumer-password-kube".into(), "KUBE PASSWORD".into());
    old.leader_data = LeaderData::parse(raw);
    let s = first_relation_set(&plan(&old));
    assert_eq!(s["client_key"], "KUBE KEY IN LEADER DATA");
    assert_eq!(s["password"], "KUBE PASSWORD");
    assert!(!s.contains_key("client_key_secret"), "{s:?}");
    assert_eq!(
        sets[0]["connection_string"],
        "https://10.0.0.10:2379,https://10.0.0.11:2379"
    );
    assert_eq!(
        sets[1]["cluster"],
        "etcd0=https://10.0.0.10:2380,etcd1=https://10.0.0.11:2380"
    );
    // Without TLS, credentials left over are removed (empty values delete keys).
    let mut o = settled(1, vec![member(0), member(1)], 0);
    let stale = Settings::from([("client_key".to_string(), "OLD".to_string())]);
    o.clients = relations(stale);
    let s = first_relation_set(&plan(&o));
    assert_eq!(s["client_key"], "");
    assert!(
        !s.contains_key("client_ca"),
        "absent keys are not touched: {s:?}"
    );
}

#[test]
fn the_leader_issues_each_db_application_its_own_certificate_and_retires_the_gone() {
    let members = vec![scheme_member(0), scheme_member(1)];
    let mut o = tls_unit(running(0, members, 0));
    o.leader_data = with_ca(&[
        (keys::TOKEN, "t0k"),
        (keys::TLS, "true"),
        ("consumer-cert-gone", "GONE PEM"),
        ("consumer-cert-kept", "KEPT PEM"),
    ]);
    certified(&mut o, true);
    let rel = |id: &str, endpoint: &str, app: Option<&str>| ClientRelation {
        id: id.into(),
        endpoint: endpoint.into(),
        app: app.map(String::from),
        prefix: None,
        published: Settings::new(),
    };
    o.clients = vec![
        rel("db:1", "db", Some("kube")),
        rel("db:2", "db", Some("kept")),
        rel("db:3", "db", None),
        rel("proxy:4", "proxy", None),
    ];
    let duties = |o: &Observed| -> Vec<Effect> {
        let p = plan(o);
        let effects = p.effects.into_iter();
        effects
            .filter(|e| {
                matches!(
                    e,
                    Effect::IssueConsumer { .. } | Effect::RetireConsumer { .. }
                )
            })
            .collect()
    };
    // A follower neither issues nor retires; nor does a leader that cannot read the CA keys.
    assert_eq!(duties(&o), []);
    o.leadership = Leadership::Leader;
    assert_eq!(duties(&o), []);
    o.secrets.ca_keys = Some(CaKeys::default());
    assert_eq!(
        duties(&o),
        [
            Effect::IssueConsumer { app: "kube".into() },
            Effect::RetireConsumer { app: "gone".into() },
        ]
    );
    // Until the leader has issued it, a db consumer's credentials are left as they are.
    let untouched = plan(&o).effects.into_iter().all(|e| match e {
        Effect::RelationSet(id, s) if id == "db:1" => !s.contains_key("client_cert"),
        _ => true,
    });
    assert!(untouched);
}

#[test]
fn keys_an_older_charm_left_in_leader_data_move_to_secrets_under_juju_3() {
    let members = vec![scheme_member(0), scheme_member(1)];
    let mut o = tls_unit(running(0, members, 0));
    o.leadership = Leadership::Leader;
    o.leader_data = leader_data(&[
        (keys::TOKEN, "t0k"),
        (keys::TLS, "true"),
        (keys::TLS_CA, "CA PEM"),
        (keys::TLS_CA_KEY, "CA KEY"),
        (keys::TLS_CLIENT_CERT, "CLIENT PEM"),
        (keys::TLS_CLIENT_KEY, "CLIENT KEY"),
    ]);
    o.secrets.ca_keys = Some(CaKeys::default());
    let moves = |o: &Observed| plan(o).effects.contains(&Effect::MoveKeysToSecrets);
    assert!(!moves(&o), "Juju 2.9: they stay");
    o.secrets.available = true;
    assert!(moves(&o));
    let mut raw = o.leader_data.raw.clone();
    raw.insert(keys::TLS_CA_SECRET.into(), "secret:ca".into());
    o.leader_data = LeaderData::parse(raw);
    assert!(!moves(&o), "moved already");
}

/// The effects that would change the transport: the CA, certificate requests and files, a
/// rendered config or a restart, a restart request.
fn switches(p: &Plan) -> Vec<&Effect> {
    let asks = published_request(p).is_some();
    let effects = p.effects.iter().filter(|e| {
        matches!(
            e,
            Effect::CreateCa
                | Effect::TlsRequest { .. }
                | Effect::TlsFiles { .. }
                | Effect::Render(_)
                | Effect::Restart(_)
        )
    });
    let mut all: Vec<&Effect> = effects.collect();
    if asks {
        all.extend(
            p.effects
                .iter()
                .filter(|e| matches!(e, Effect::PeerSet(..))),
        );
    }
    all
}

/// The plan's `tls-kept` leader-data change, if any.
fn kept_record(p: &Plan) -> Option<String> {
    p.effects.iter().find_map(|e| match e {
        Effect::LeaderSet(s) => s.get(keys::TLS_KEPT).cloned(),
        _ => None,
    })
}

fn with_kept(o: &mut Observed, value: &str) {
    let mut raw = o.leader_data.raw.clone();
    raw.insert(keys::TLS_KEPT.into(), value.into());
    o.leader_data = LeaderData::parse(raw);
}

#[test]
fn a_refresh_keeps_a_plaintext_cluster_plaintext_until_tls_really_changes() {
    // An older revision's plain cluster (no `tls` in leader data), refreshed: `tls` now reads
    // the new default, true.
    let three = || vec![member(0), member(1), member(2)];
    let mut leader = tls_unit(settled(0, three(), 0));
    leader.leadership = Leadership::Leader;
    assert_eq!(
        leader.tls_in_force(),
        Some(false),
        "derived from the peer URLs"
    );
    leader.hook = Hook::Other("upgrade-charm".into());
    let p = plan(&leader);
    assert_eq!(kept_record(&p).as_deref(), Some("true"));
    assert_eq!(switches(&p), Vec::<&Effect>::new());
    // Then config-changed, and every later hook: nothing switches, status says how to go on.
    with_kept(&mut leader, "true");
    let mut follower = tls_unit(settled(1, three(), 0));
    with_kept(&mut follower, "true");
    let kept = "3 members healthy; kept on plain http across the refresh although tls now \
                reads true, unencrypted and unauthenticated (anyone who reaches the client port \
                reads and writes every key): keep http with `juju config etcd-east tls=false`, \
                or switch to TLS with `juju config etcd-east tls=false` then `juju config \
                etcd-east tls=true`";
    for hook in ["config-changed", "update-status", "leader-elected"] {
        for o in [&mut leader, &mut follower] {
            o.hook = Hook::Other(hook.into());
            let p = plan(o);
            assert_eq!(kept_record(&p), None, "{hook}");
            assert_eq!(switches(&p), Vec::<&Effect>::new(), "{hook}");
            assert_eq!(p.status.state(), "active");
            assert_eq!(p.status.message_for("etcd-east"), kept, "{hook}");
        }
    }
    // A follower whose upgrade-charm runs before the leader's: waits, switches nothing.
    let mut early = tls_unit(settled(2, three(), 0));
    early.hook = Hook::Other("upgrade-charm".into());
    let p = plan(&early);
    assert!(
        !p.effects
            .iter()
            .any(|e| matches!(e, Effect::Render(_) | Effect::Restart(_))),
        "{:?}",
        p.effects
    );
    // `tls=false` acknowledges: the record is cleared, plain http stays, and says so.
    leader.config = Ok(CharmConfig::plain());
    leader.hook = Hook::Other("config-changed".into());
    let p = plan(&leader);
    assert_eq!(kept_record(&p).as_deref(), Some(""));
    assert_eq!(switches(&p), Vec::<&Effect>::new());
    assert_eq!(
        p.status.message_for("etcd-east"),
        plain("3 members healthy", "etcd-east")
    );
    follower.config = Ok(CharmConfig::plain());
    assert_eq!(
        kept_record(&plan(&follower)),
        None,
        "only the leader clears it"
    );
    assert_eq!(switches(&plan(&follower)), Vec::<&Effect>::new());
    // Then `tls=true` switches through the rolling switch: the leader makes the CA first.
    leader.leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::TLS, "false")]);
    leader.config = Ok(tls_config());
    let p = plan(&leader);
    assert_eq!(kept_record(&p), None);
    assert!(p.effects.contains(&Effect::CreateCa), "{:?}", p.effects);
    assert_eq!(p.status, Status::WaitTlsCa);
}

#[test]
fn a_refresh_keeps_no_transport_it_was_told_to_leave_nor_one_the_option_agrees_with() {
    let three = || vec![member(0), member(1), member(2)];
    let mut o = tls_unit(settled(0, three(), 0));
    o.leadership = Leadership::Leader;
    o.hook = Hook::Other("upgrade-charm".into());
    o.leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::TLS, "false")]);
    // A switch under way (a member moved, or the leader's word out): it goes on.
    let mut moved = o.clone();
    moved.members.as_mut().unwrap()[2].peer_urls = vec![scheme(true, &peer_url(2))];
    let mut told = o.clone();
    let mut raw = told.leader_data.raw.clone();
    raw.insert(
        keys::TLS_SWITCHING.into(),
        "etcd/2 https://10.0.0.12:2380".into(),
    );
    told.leader_data = LeaderData::parse(raw);
    for o in [moved, told] {
        assert_eq!(kept_record(&plan(&o)), None);
    }
    // The option agrees with what runs (plain, or TLS with `tls` missing from leader data).
    let mut plain_cluster = o.clone();
    plain_cluster.config = Ok(CharmConfig::plain());
    let mut tls_cluster = tls_unit(running(0, vec![scheme_member(0), scheme_member(1)], 0));
    tls_cluster.leadership = Leadership::Leader;
    tls_cluster.hook = Hook::Other("upgrade-charm".into());
    runs_with(&mut tls_cluster, &tls_config());
    assert_eq!(
        tls_cluster.tls_in_force(),
        Some(true),
        "derived from the peer URLs"
    );
    for o in [plain_cluster, tls_cluster] {
        assert_eq!(kept_record(&plan(&o)), None);
    }
    // Only in upgrade-charm: a config-changed to tls=true is the operator's.
    o.hook = Hook::Other("config-changed".into());
    let p = plan(&o);
    assert_eq!(kept_record(&p), None);
    assert!(p.effects.contains(&Effect::CreateCa), "{:?}", p.effects);
}

#[test]
fn a_refresh_keeps_tls_on_when_the_option_now_reads_false() {
    let members = vec![scheme_member(0), scheme_member(1), scheme_member(2)];
    let mut o = tls_unit(running(1, members, 0));
    o.leader_data = with_ca(&[(keys::TOKEN, "t0k"), (keys::TLS, "true")]);
    runs_with(&mut o, &tls_config());
    certified(&mut o, true);
    o.config = Ok(CharmConfig::plain());
    with_kept(&mut o, "false");
    let p = plan(&o);
    assert_eq!(switches(&p), Vec::<&Effect>::new());
    assert_eq!(p.status.state(), "active");
    assert!(
        p.status.message_for("etcd").ends_with(
            "kept on TLS across the refresh although tls now reads false: keep TLS with \
             `juju config etcd tls=true`, or switch to plain http with `juju config etcd \
             tls=true` then `juju config etcd tls=false`"
        ),
        "{}",
        p.status.message_for("etcd")
    );
}

#[test]
fn the_leader_makes_a_user_per_db_application_then_enables_auth() {
    use etcd_charm::core::effect::AuthChange;
    use etcd_charm::etcd::Grant;
    let members = vec![scheme_member(0), scheme_member(1)];
    let mut o = tls_unit(running(0, members, 0));
    o.leadership = Leadership::Leader;
    o.secrets.ca_keys = Some(CaKeys::default());
    o.leader_data = with_ca(&[
        (keys::TOKEN, "t0k"),
        (keys::TLS, "true"),
        ("consumer-cert-kube", "KUBE PEM"),
        ("consumer-cert-app", "APP PEM"),
        ("consumer-cert-bad", "BAD PEM"),
        ("auth-user-gone", "*"),
        ("auth-user-app", "*"),
    ]);
    certified(&mut o, true);
    let rel = |id: &str, endpoint: &str, app: Option<&str>, prefix: Option<&str>| ClientRelation {
        id: id.into(),
        endpoint: endpoint.into(),
        app: app.map(String::from),
        prefix: prefix.map(String::from),
        published: Settings::new(),
    };
    o.clients = vec![
        rel("db:1", "db", Some("kube"), None),
        rel("db:2", "db", Some("app"), Some("/app/")),
        rel("db:3", "db", Some("bad"), Some(" x")),
        rel("db:4", "db", Some("new"), None),
        rel("proxy:5", "proxy", None, None),
    ];
    let auth = |o: &Observed| -> Vec<AuthChange> {
        let p = plan(o);
        let effects = p.effects.into_iter();
        effects
            .filter_map(|e| match e {
                Effect::Auth(c) => Some(c),
                _ => None,
            })
            .collect()
    };
    let set = |name: &str, grant: Grant, old: Option<Grant>| AuthChange::SetUser {
        name: name.into(),
        grant,
        old,
    };
    // Users for what has a certificate ("new" has none yet), a prefix changed, a bad prefix
    // gets nothing, a gone application's user deleted; no auth yet.
    assert_eq!(
        auth(&o),
        [
            set("root", Grant::Root, None),
            set("app", Grant::Prefix("/app/".into()), Some(Grant::All)),
            set("bad", Grant::Nothing, None),
            set("kube", Grant::All, None),
            AuthChange::DeleteUser {
                name: "gone".into()
            },
        ]
    );
    // Every user made: no auth before this unit's files hold its root certificate.
    let mut raw = o.leader_data.raw.clone();
    raw.extend(
        [
            ("auth-user-root", "root"),
            ("auth-user-app", "prefix:/app/"),
            ("auth-user-bad", "none"),
            ("auth-user-kube", "*"),
            ("auth-user-gone", ""),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    o.leader_data = LeaderData::parse(raw);
    assert_eq!(auth(&o), []);
    let issued = o.leader_data.get(&keys::issued_key(&o.unit)).unwrap();
    let from = Issued::parse(issued).unwrap().from;
    o.own_peer_data.insert(peer_keys::TLS_FILES.into(), from);
    assert_eq!(auth(&o), [AuthChange::Enable]);
    // A follower changes nothing; with tls=false the leader turns auth off.
    let mut follower = o.clone();
    follower.leadership = Leadership::Follower;
    assert_eq!(auth(&follower), []);
    let mut raw = o.leader_data.raw.clone();
    raw.insert(keys::AUTH.into(), "on".into());
    o.leader_data = LeaderData::parse(raw);
    assert_eq!(auth(&o), []);
    o.config = Ok(CharmConfig {
        tls: false,
        ..CharmConfig::default()
    });
    assert_eq!(auth(&o), [AuthChange::Disable]);
}

#[test]
fn a_refreshed_tls_cluster_without_auth_gets_root_certificates_then_auth_without_a_restart() {
    use etcd_charm::core::effect::AuthChange;
    use etcd_charm::core::render;
    let members = vec![scheme_member(0), scheme_member(1)];
    let mut o = tls_unit(running(0, members, 0));
    o.leadership = Leadership::Leader;
    o.hook = Hook::Other("upgrade-charm".into());
    o.secrets.ca_keys = Some(CaKeys::default());
    o.leader_data = with_ca(&[
        (keys::TOKEN, "t0k"),
        (keys::TLS, "true"),
        ("auth-user-root", "root"),
    ]);
    runs_with(&mut o, &tls_config());
    // What an older charm issued: the same requests, a client certificate without `CN=root`.
    certified(&mut o, true);
    let req = TlsRequest::from_data(&o.own_peer_data).unwrap();
    let old_from = render::tls_record(&req.csr, &req.client_csr, "CA PEMPEER CA PEM", &[]);
    let old = Issued {
        from: old_from.trim().to_string(),
        ..Issued::default()
    };
    let mut raw = o.leader_data.raw.clone();
    raw.insert(
        keys::issued_key(&o.unit),
        serde_json::to_string(&old).unwrap(),
    );
    o.leader_data = LeaderData::parse(raw);
    o.own_peer_data
        .insert(peer_keys::TLS_FILES.into(), old.from.clone());
    let restarts = |p: &Plan| {
        p.effects
            .iter()
            .any(|e| matches!(e, Effect::Restart(_) | Effect::Render(_)))
    };
    let enables = |p: &Plan| p.effects.contains(&Effect::Auth(AuthChange::Enable));
    // The leader issues the root certificates again, with no restart and no auth yet.
    let p = plan(&o);
    let own = Effect::Issue {
        unit: o.unit.clone(),
    };
    assert!(p.effects.contains(&own), "{:?}", p.effects);
    assert!(!restarts(&p) && !enables(&p), "{:?}", p.effects);
    // Issued: the unit writes its files (etcd reads them per connection: no restart).
    certified(&mut o, false);
    let p = plan(&o);
    assert!(
        p.effects
            .iter()
            .any(|e| matches!(e, Effect::TlsFiles { .. })),
        "{:?}",
        p.effects
    );
    assert!(!restarts(&p) && !enables(&p), "{:?}", p.effects);
    // Written and said so in its peer data: auth goes on.
    certified(&mut o, true);
    let from = issued_from(&req);
    o.own_peer_data.insert(peer_keys::TLS_FILES.into(), from);
    let p = plan(&o);
    assert!(enables(&p) && !restarts(&p), "{:?}", p.effects);
}
