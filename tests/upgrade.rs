//! Upgrading etcd by attaching a new `etcd` resource, on real machines: 3.4 → 3.5 rolls through
//! the members one at a time while a client keeps writing without a failed write; a downgrade
//! back to 3.4, or a tarball that is not etcd, is refused (every unit `blocked`, etcd untouched)
//! until 3.5 is attached again.
//! Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{
    deploy_etcd, get, main_pid, repo_root, restarted_one_at_a_time, run_of, sh, workload,
    writer_script, writer_summary, Sandbox,
};

/// The etcd version every member reports (`etcdctl endpoint status --cluster`), sorted.
fn member_versions(sb: &Sandbox) -> Result<Vec<String>, String> {
    let out = support::try_sh(sb, "etcd/0", "etcdctl endpoint status --cluster -w json")?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    let mut versions: Vec<String> = v
        .as_array()
        .ok_or_else(|| format!("not a list: {out}"))?
        .iter()
        .map(|e| e["Status"]["version"].as_str().unwrap_or("?").to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

fn attach(sb: &Sandbox, tarball: &str) {
    let path = repo_root().join("build").join(tarball);
    assert!(path.exists(), "run scripts/build-charm first ({tarball})");
    sb.ok(&[
        "attach-resource",
        "etcd",
        &format!("etcd={}", path.display()),
    ]);
}

#[test]
fn attach_resource_upgrades_one_member_at_a_time_and_refuses_a_downgrade() {
    let sb = Sandbox::new("etcd_upgrade");
    deploy_etcd(&sb, 3, &[]);
    sb.wait_active(3);
    let units = sb.units("etcd");
    assert_eq!(member_versions(&sb).unwrap(), ["3.4.23"; 3]);
    sh(&sb, "etcd/0", "etcdctl put before-upgrade 3.4");
    let (code, endpoints, err) = sb.exec("etcd/0", "leader-get endpoints");
    assert_eq!(code, 0, "{err}");
    let endpoints = endpoints.trim().to_string();
    let before: Vec<u64> = units.iter().map(|u| run_of(&sb, u).started).collect();

    // 3.4 → 3.5 under writes.
    let writer = std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/0", &writer_script(&endpoints, 6000)));
        sb.eventually("the writer to start", Duration::from_secs(60), || {
            (get(&sb, "etcd/0", "w3").as_deref() == Ok("3")).then_some(())
        });
        attach(&sb, "etcd-3.5.tar.gz");
        sb.eventually("every member on 3.5.1", Duration::from_secs(240), || {
            (member_versions(&sb).ok()? == ["3.5.1"; 3]).then_some(())
        });
        sb.wait_active(3);
        sb.ssh("etcd/0", "touch /tmp/stop-writer");
        writer.join().expect("writer thread")
    });
    let (writes, summary) = writer_summary(writer);
    // Each member restarted once on 3.5.1, one at a time.
    let runs = restarted_one_at_a_time(&sb, &units);
    for (u, r) in &runs {
        let i = units.iter().position(|x| x == u).unwrap();
        assert_ne!(r.started, before[i], "{u} never restarted");
    }
    let order: Vec<&String> = runs.iter().map(|(u, _)| u).collect();
    eprintln!("writer: {summary}; restarted in this order: {order:?}");
    for u in &units {
        assert_eq!(get(&sb, u, "before-upgrade").as_deref(), Ok("3.4"), "{u}");
        assert_eq!(get(&sb, u, "w1").as_deref(), Ok("1"), "{u}");
        assert_eq!(
            get(&sb, u, &format!("w{writes}")),
            Ok(writes.to_string()),
            "{u}"
        );
        assert_eq!(support::written(&sb, u), writes, "keys read on {u}");
        assert!(sh(&sb, u, "etcdutl version").contains("3.5.1"), "{u}");
        assert!(sh(&sb, u, "etcdctl version").contains("3.5.1"), "{u}");
    }
    let leader = sb.leader("etcd").expect("a leader");
    sb.eventually(
        "the cluster's version published",
        Duration::from_secs(60),
        || {
            let (_, v, _) = sb.exec(&leader, "leader-get etcd-version");
            let app = sb.status()["applications"]["etcd"]["version"].clone();
            (v.trim() == "3.5.1" && app == "3.5.1").then_some(())
        },
    );

    // A downgrade is refused: blocked, nothing changed.
    let pids: Vec<String> = units.iter().map(|u| main_pid(&sb, u)).collect();
    attach(&sb, "etcd.tar.gz");
    sb.eventually("every unit blocked", Duration::from_secs(120), || {
        let all = units.iter().all(|u| {
            let (state, message) = workload(&sb, u);
            state == "blocked" && message.contains("3.4.23") && message.contains("3.5.1")
        });
        all.then_some(())
    });
    let (_, message) = workload(&sb, "etcd/1");
    eprintln!("refused: {message}");
    assert!(message.contains("downgrade") && message.contains("attach etcd 3.5.x"));
    assert_eq!(member_versions(&sb).unwrap(), ["3.5.1"; 3]);
    for (u, pid) in units.iter().zip(&pids) {
        assert_eq!(&main_pid(&sb, u), pid, "etcd restarted on {u}");
        assert!(sh(&sb, u, "etcd --version").contains("3.5.1"), "{u}");
    }

    // Not etcd at all: refused the same way.
    let dir = std::env::temp_dir().join(format!("etcd-upgrade-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("etcd"), "#!/bin/sh\necho not etcd\n").unwrap();
    std::fs::write(dir.join("etcdctl"), "").unwrap();
    let bogus = dir.join("not-etcd.tar.gz");
    let tar = std::process::Command::new("tar")
        .args([
            "-czf",
            bogus.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            "etcd",
            "etcdctl",
        ])
        .status()
        .unwrap();
    assert!(tar.success());
    sb.ok(&[
        "attach-resource",
        "etcd",
        &format!("etcd={}", bogus.display()),
    ]);
    sb.eventually("every unit refusing it", Duration::from_secs(120), || {
        let all = units.iter().all(|u| {
            let (state, message) = workload(&sb, u);
            state == "blocked" && message.contains("not an etcd release")
        });
        all.then_some(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(member_versions(&sb).unwrap(), ["3.5.1"; 3]);

    // 3.5 again: active, and no restart (same version).
    attach(&sb, "etcd-3.5.tar.gz");
    sb.wait_active(3);
    for (u, pid) in units.iter().zip(&pids) {
        assert_eq!(&main_pid(&sb, u), pid, "etcd restarted on {u}");
    }
}
