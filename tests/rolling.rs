//! Rolling restarts on real machines: a config change that etcd must be restarted for restarts
//! one member at a time, each back in the cluster before the next goes, while a client keeps
//! writing without a single failed write. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{
    deploy_etcd, get, restarted_one_at_a_time, run_of, sh, writer_script, writer_summary, Run,
    Sandbox,
};

#[test]
fn config_change_restarts_one_member_at_a_time_without_failed_writes() {
    let sb = Sandbox::new("etcd_roll_writes");
    deploy_etcd(&sb, 3, &[]);
    sb.wait_active(3);
    let units = sb.units("etcd");
    assert_eq!(units.len(), 3);
    let before: Vec<Run> = units.iter().map(|u| run_of(&sb, u)).collect();
    let (code, endpoints, err) = sb.exec("etcd/0", "leader-get endpoints");
    assert_eq!(code, 0, "{err}");
    let endpoints = endpoints.trim().to_string();
    assert_eq!(endpoints.split(',').count(), 3, "{endpoints}");
    let log_lines = sb
        .ok(&["debug-log", "--replay", "--no-tail"])
        .lines()
        .count();

    let writer = std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/0", &writer_script(&endpoints, 3000)));
        sb.eventually("the writer to start", Duration::from_secs(60), || {
            (get(&sb, "etcd/0", "w3").as_deref() == Ok("3")).then_some(())
        });
        sb.ok(&[
            "config",
            "etcd",
            "log_level=debug",
            "heartbeat_interval=150",
        ]);
        sb.eventually("every member restarted", Duration::from_secs(240), || {
            let now: Vec<Run> = units.iter().map(|u| run_of(&sb, u)).collect();
            let all = now
                .iter()
                .zip(&before)
                .all(|(n, b)| n.started != b.started && n.ready > n.started);
            all.then_some(())
        });
        sb.wait_active(3);
        // A few more writes on the restarted cluster, then stop.
        support::wait_for_more_writes(&sb, 20, "writes after the restarts");
        sb.ssh("etcd/0", "touch /tmp/stop-writer");
        writer.join().expect("writer thread")
    });

    // No write failed, and the writer kept writing across the restarts.
    let (writes, summary) = writer_summary(writer);
    for u in &units {
        assert_eq!(
            get(&sb, u, &format!("w{writes}")),
            Ok(writes.to_string()),
            "last write read on {u}"
        );
    }

    // Each member restarted once, one at a time: each stopped only after the previous one was
    // ready again (systemd's monotonic timestamps), and the writer ran before and after.
    let after = restarted_one_at_a_time(&sb, &units);
    eprintln!("writer: {summary}; etcd runs (monotonic µs) by stop time: {after:?}");
    for u in &units {
        let (_, conf, _) = sb.ssh(u, "cat /etc/etcd/etcd.conf.yml");
        assert!(
            conf.contains("log-level: debug\n") && conf.contains("heartbeat-interval: 150\n"),
            "{u} runs {conf}"
        );
    }

    // The charm's own account agrees: restart and healthy lines alternate, unit by unit, and
    // every unit said it waited for its turn or restarted on its grant.
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let events: Vec<(String, &str)> = log
        .lines()
        .skip(log_lines)
        .filter_map(|l| {
            let unit = l.split(": ").next()?.strip_prefix("unit-")?;
            let unit = unit.rsplit_once('-').map(|(a, n)| format!("{a}/{n}"))?;
            if l.contains("restarting etcd with the new settings") {
                Some((unit, "begin"))
            } else if l.contains("restarted etcd: member") {
                Some((unit, "healthy"))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(events.len(), 6, "{events:?}");
    for pair in events.chunks(2) {
        assert_eq!(pair[0].1, "begin", "{events:?}");
        assert_eq!(pair[1], (pair[0].0.clone(), "healthy"), "{events:?}");
    }
    let mut restarted: Vec<&String> = events.iter().map(|(u, _)| u).collect();
    restarted.sort();
    restarted.dedup();
    assert_eq!(restarted, units.iter().collect::<Vec<_>>());
    let (_, granted, _) = sb.exec("etcd/0", "leader-get restart-granted");
    assert_eq!(granted.trim(), "", "the last turn was released");
}

/// A unit that dies holding its turn does not block the others: its restart never gets healthy
/// (its etcd binary is broken), the next unit waits behind it, and once the dead unit is
/// removed the leader takes the turn back and the roll goes on.
#[test]
fn turn_of_a_unit_that_died_is_taken_back() {
    let sb = Sandbox::new("etcd_roll_reclaim");
    deploy_etcd(&sb, 3, &[]);
    sb.wait_active(3);
    assert_eq!(sb.leader("etcd").as_deref(), Some("etcd/0"));
    let before2 = run_of(&sb, "etcd/2");
    // etcd/1's etcd keeps running, but will not start again.
    sh(&sb, "etcd/1", "ln -sfn /bin/false /usr/local/bin/etcd");
    sb.ok(&["config", "etcd", "log_level=debug"]);

    let message = |s: &serde_json::Value, u: &str| {
        let w = &s["applications"]["etcd"]["units"][u]["workload-status"];
        format!(
            "{}: {}",
            w["current"].as_str().unwrap_or(""),
            w["message"].as_str().unwrap_or("")
        )
    };
    // etcd/1 holds its turn, its etcd down (restarted, or being started again).
    sb.eventually("etcd/1 stuck in its turn, etcd/2 behind it", Duration::from_secs(180), || {
        let s = sb.status();
        let (m1, m2) = (message(&s, "etcd/1"), message(&s, "etcd/2"));
        (!m1.starts_with("active")
            && m2 == "waiting: waiting for its turn to restart etcd with the new settings (etcd/1 restarts first)")
            .then_some(())
    });
    // Still so a while later (the leader does not give the turn away while etcd/1 is there).
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(
        run_of(&sb, "etcd/2").started,
        before2.started,
        "etcd/2 restarted out of turn"
    );
    let (_, granted, _) = sb.exec("etcd/0", "leader-get restart-granted");
    assert_eq!(granted.trim(), "etcd/1");

    sb.ok(&["kill-machine", "etcd/1"]);
    sb.ok(&["remove-machine", "--force", "etcd/1"]);
    sb.eventually("etcd/1 gone", Duration::from_secs(60), || {
        (sb.units("etcd").len() == 2).then_some(())
    });
    sb.wait_active(2);
    let after2 = run_of(&sb, "etcd/2");
    assert_ne!(after2.started, before2.started, "etcd/2 never restarted");
    let (_, conf, _) = sb.ssh("etcd/2", "cat /etc/etcd/etcd.conf.yml");
    assert!(conf.contains("log-level: debug\n"), "{conf}");
    let members = sh(&sb, "etcd/2", "etcdctl member list");
    assert_eq!(members.lines().count(), 2, "{members}");
    let (_, granted, _) = sb.exec("etcd/0", "leader-get restart-granted");
    assert_eq!(granted.trim(), "", "the turn was released");
}
