//! The etcd API wrapper against real etcd processes on loopback (no root, no machines): the
//! learner flow, leadership transfer, removal, and bounded failure on a dead endpoint.
//! Skipped when no `etcd` binary is on PATH.

use etcd_charm::core::membership::initial_cluster;
use etcd_charm::etcd::client::EtcdApi;
use etcd_charm::etcd::{retry_not_yet, round_endpoints, Etcd, EtcdError};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One etcd process, killed on drop.
struct Proc {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn spawn(name: &str, client: u16, peer: u16, cluster: &str, state: &str) -> Proc {
    let dir = std::env::temp_dir().join(format!("etcd-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new("etcd")
        .args(["--name", name, "--data-dir"])
        .arg(&dir)
        .args([
            "--listen-client-urls",
            &url(client),
            "--advertise-client-urls",
            &url(client),
        ])
        .args([
            "--listen-peer-urls",
            &url(peer),
            "--initial-advertise-peer-urls",
            &url(peer),
        ])
        .args([
            "--initial-cluster",
            cluster,
            "--initial-cluster-state",
            state,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd starts");
    Proc { child, dir }
}

fn wait_status(api: &EtcdApi, ep: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.status(ep).is_err() {
        assert!(Instant::now() < deadline, "{ep} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn learner_flow_transfer_and_removal() {
    if Command::new("etcd").arg("--version").output().is_err() {
        eprintln!("no etcd on PATH: skipped");
        return;
    }
    let base = 20000 + (std::process::id() % 5000) as u16 * 4;
    let (a_client, a_peer, b_client, b_peer) = (base, base + 1, base + 2, base + 3);
    let api = EtcdApi::new().unwrap();
    let _a = spawn("a", a_client, a_peer, &format!("a={}", url(a_peer)), "new");
    wait_status(&api, &url(a_client));
    let eps = vec![url(a_client)];

    let members = api.member_list(&eps).unwrap();
    assert_eq!(members.len(), 1);
    assert!(members[0].started() && !members[0].is_learner);

    // A status begun ahead is what the status of that member then answers, on a client kept
    // for the calls after it; one never taken holds up no other call; one of a dead endpoint
    // fails as the status itself would.
    let ahead = EtcdApi::new().unwrap();
    ahead.begin_status(&url(a_client));
    assert_eq!(
        ahead.status(&url(a_client)).unwrap().member_id,
        members[0].id
    );
    ahead.begin_status(&url(a_client));
    assert_eq!(ahead.member_list(&eps).unwrap(), members);
    assert_eq!(
        ahead.status(&url(a_client)).unwrap().member_id,
        members[0].id
    );
    let untaken = EtcdApi::new().unwrap();
    untaken.begin_status(&url(a_client));
    assert_eq!(untaken.member_list(&eps).unwrap(), members);
    let dead = EtcdApi::new().unwrap();
    dead.begin_status("http://127.0.0.1:1");
    match dead.status("http://127.0.0.1:1") {
        Err(EtcdError::Unreachable { op, detail, .. }) => {
            assert_eq!(op, "status");
            assert!(detail.starts_with("http://127.0.0.1:1: "), "{detail}");
        }
        other => panic!("{other:?}"),
    }

    let (id, members) = retry_not_yet(Duration::from_secs(15), Duration::from_millis(500), || {
        api.member_add_learner(&eps, &url(b_peer))
    })
    .unwrap();
    let cluster = initial_cluster(&members, id, "b");
    assert_eq!(cluster, format!("a={},b={}", url(a_peer), url(b_peer)));
    // A second learner is refused for now (one at a time).
    let second = api.member_add_learner(&eps, "http://127.0.0.1:1");
    assert!(
        matches!(second, Err(EtcdError::NotYet { .. })),
        "{second:?}"
    );

    let mut b = spawn("b", b_client, b_peer, &cluster, "existing");
    wait_status(&api, &url(b_client));
    assert!(api.status(&url(b_client)).unwrap().is_learner);
    // A learner does not serve the member list: the call moves on to a voting member.
    let both = vec![url(b_client), url(a_client)];
    assert_eq!(api.member_list(&both).unwrap().len(), 2);

    retry_not_yet(Duration::from_secs(30), Duration::from_millis(500), || {
        api.member_promote(&eps, id)
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.status(&url(b_client)).unwrap().is_learner {
        assert!(Instant::now() < deadline, "b never saw its promotion");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A look ahead from a voting member also asks its member list and the other members'
    // status: the calls that ask the same take those answers; other calls ask etcd.
    let ahead = EtcdApi::new().unwrap();
    ahead.begin_status(&url(a_client));
    let a_id = ahead.status(&url(a_client)).unwrap().member_id;
    let listed = ahead.member_list(&eps).unwrap();
    assert_eq!(listed, api.member_list(&eps).unwrap());
    let round = round_endpoints(&listed, Some(a_id));
    assert_eq!(round, [url(b_client)]);
    let answers = ahead.statuses(&round);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].as_ref().unwrap().member_id, id);
    let again = ahead.statuses(&[url(b_client), url(a_client)]);
    let ids: Vec<u64> = again
        .iter()
        .map(|s| s.as_ref().unwrap().member_id)
        .collect();
    assert_eq!(ids, [id, a_id]);
    let other = EtcdApi::new().unwrap();
    other.begin_status(&url(a_client));
    other.status(&url(a_client)).unwrap();
    let reversed = vec![url(b_client), url(a_client)];
    assert_eq!(other.member_list(&reversed).unwrap().len(), 2);
    assert_eq!(other.statuses(&round)[0].as_ref().unwrap().member_id, id);

    let a_status = api.status(&url(a_client)).unwrap();
    assert_eq!(a_status.leader, a_status.member_id);
    api.move_leader(&url(a_client), id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.status(&url(a_client)).unwrap().leader != id {
        assert!(Instant::now() < deadline, "leadership never moved");
        std::thread::sleep(Duration::from_millis(100));
    }

    retry_not_yet(Duration::from_secs(15), Duration::from_millis(500), || {
        api.member_remove(&eps, id)
    })
    .unwrap();
    // Once the remaining member has elected itself, removing again says "not found".
    let again = retry_not_yet(Duration::from_secs(15), Duration::from_millis(500), || {
        api.member_remove(&eps, id)
    });
    assert_eq!(again, Err(EtcdError::MemberNotFound(id)));
    // The removed member stops by itself (status 0 on etcd 3.4).
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = b.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "removed member kept running");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("removed member exited with {exit}");

    // A dead endpoint is an unreachable one, not another kind of failure.
    let dead = api.member_list(&[url(b_client)]);
    assert!(
        matches!(dead, Err(EtcdError::Unreachable { .. })),
        "{dead:?}"
    );
    assert_eq!(api.alarms(&eps).unwrap(), vec![]);
}
