//! Subordinate charms and container-scoped relations: one subordinate unit per principal unit,
//! on its machine, with its own hooks, shown under its principal, removed with it or with the
//! relation. Each check names the juju/juju file it follows. Needs root.

mod common;
use common::{probe_charm as probe, repo_root, Sandbox};
use serde_json::Value;
use std::time::Duration;

fn sub_charm() -> String {
    repo_root()
        .join("tests/charms/subordinate-probe")
        .to_string_lossy()
        .into_owned()
}

/// The hooks a unit ran, from the debug log (also after its machine is gone).
fn ran(sb: &Sandbox, unit: &str) -> Vec<String> {
    let tag = format!("unit-{}: ", unit.replace('/', "-"));
    sb.ok(&["debug-log", "--replay", "--no-tail"])
        .lines()
        .filter(|l| l.starts_with(&tag))
        .filter_map(|l| l.split_once(" DEBUG running ").map(|(_, h)| h.to_string()))
        .collect()
}

/// The last hooks a removed subordinate ran: it left the relation, then the model.
fn assert_torn_down(sb: &Sandbox, sub: &str) {
    let hooks = ran(sb, sub);
    assert_eq!(
        hooks[hooks.len().saturating_sub(4)..],
        [
            "host-relation-departed",
            "host-relation-broken",
            "stop",
            "remove"
        ],
        "{sub}: {hooks:?}"
    );
}

/// The subordinate unit of `principal` in `status`.
fn sub_of(status: &Value, principal: &str) -> String {
    let subs = status["applications"]["probe"]["units"][principal]["subordinates"]
        .as_object()
        .unwrap_or_else(|| panic!("no subordinates under {principal}: {status}"));
    assert_eq!(subs.len(), 1, "{status}");
    subs.keys().next().expect("one").clone()
}

#[test]
fn subordinates_live_and_die_with_their_principal() {
    let sb = Sandbox::new("subordinates");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    // cmd/juju/application/deploy.go: a subordinate is deployed without units.
    let out = sb.run(&["deploy", &sub_charm(), "-n", "2"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot use --num-units or --to with subordinate application"),
        "{out:?}"
    );
    sb.ok(&["deploy", &sub_charm()]);
    sb.wait_active(2);
    // state/state.go `InferEndpoints`: through the principal's implicit juju-info; the
    // relation is container-scoped because the subordinate's end is.
    sb.ok(&["integrate", "probe", "subordinate-probe"]);
    sb.wait_active(4);

    let status = sb.status();
    let sub_app = &status["applications"]["subordinate-probe"];
    assert_eq!(
        sub_app["subordinate-to"],
        serde_json::json!(["probe"]),
        "{status}"
    );
    assert!(sub_app.get("units").is_none(), "{status}");
    assert_eq!(
        status["applications"]["probe"]["relations"]["juju-info"][0]["scope"],
        "container"
    );
    let subs: Vec<String> = ["probe/0", "probe/1"]
        .iter()
        .map(|p| sub_of(&status, p))
        .collect();
    assert_ne!(subs[0], subs[1]);

    for (principal, sub) in ["probe/0", "probe/1"].iter().zip(&subs) {
        // Its own hook queue, on the principal's machine, relating only to its own principal.
        let hooks: Vec<String> = sb
            .probe_log(principal, "../subordinate-probe/hooks.log")
            .into_iter()
            .map(|l| l.split('|').take(2).collect::<Vec<_>>().join("|"))
            .collect();
        let leader = if hooks.contains(&"leader-elected|".to_string()) {
            "leader-elected|"
        } else {
            "leader-settings-changed|"
        };
        assert_eq!(
            hooks[..7],
            [
                "install|",
                "host-relation-created|",
                leader,
                "config-changed|",
                "start|",
                &format!("host-relation-joined|{principal}"),
                &format!("host-relation-changed|{principal}"),
            ],
            "{hooks:?}"
        );
        let members = sb.probe_log(principal, "../subordinate-probe/members.log");
        assert_eq!(
            members,
            [format!("host-relation-joined|{principal}|{principal} ")]
        );
        let seen = sb.probe_log(principal, "members.log");
        assert!(
            seen.contains(&format!("juju-info-relation-joined|{sub}|{sub} ")),
            "{seen:?}"
        );
        let env = sb.probe_log(principal, "../subordinate-probe/env-start");
        assert!(
            env.contains(&format!("JUJU_PRINCIPAL_UNIT={principal}")),
            "{env:?}"
        );

        // cmd/jujud/run/run.go: two units on the machine now, so juju-exec needs the name.
        let (code, _, err) = sb.ssh(principal, "juju-exec hostname");
        assert_eq!(
            (code, err.as_str()),
            (2, "ERROR \"hostname\" is not a valid tag\n")
        );
        let (code, out, err) = sb.ssh(
            principal,
            &format!("juju-exec {sub} 'echo $JUJU_PRINCIPAL_UNIT; relation-list -r $(relation-ids host)'"),
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("{principal}\n{principal}\n"));
    }

    // apiserver/facades/agent/uniter/uniter.go `goalStateUnits`: a subordinate sees itself
    // (not its siblings) and every principal unit; a principal sees no subordinate units.
    let (_, out, _) = sb.exec(&subs[0], "goal-state --format json");
    let gs: Value = serde_json::from_str(&out).expect("goal-state");
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&gs["units"]), [subs[0].clone()]);
    assert_eq!(
        keys(&gs["relations"]["host"]),
        ["probe", "probe/0", "probe/1"]
    );
    let (_, out, _) = sb.exec("probe/0", "goal-state --format json");
    let gs: Value = serde_json::from_str(&out).expect("goal-state");
    assert_eq!(keys(&gs["relations"]["juju-info"]), ["subordinate-probe"]);

    // worker/uniter/resolver.go: after a reboot every unit on the machine runs start again,
    // its subordinate too; a subordinate's machine is its principal's.
    sb.ok(&["kill-machine", &subs[0]]);
    assert_eq!(
        sb.status()["applications"]["probe"]["units"]["probe/0"]["subordinates"][&subs[0]]
            ["juju-status"]["current"],
        "lost"
    );
    sb.ok(&["restart-machine", &subs[0]]);
    sb.wait_active(4);
    let starts = sb
        .probe_log("probe/0", "../subordinate-probe/hooks.log")
        .iter()
        .filter(|l| l.starts_with("start|"))
        .count();
    assert_eq!(starts, 2);

    // state/application.go `AddUnit`, apiserver application `DestroyUnit`.
    let out = sb.run(&["add-unit", "subordinate-probe"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "cannot add unit to application \"subordinate-probe\": application is a subordinate"
        ),
        "{out:?}"
    );
    let out = sb.run(&["remove-unit", &subs[0]]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is a subordinate, to remove use remove-relation"),
        "{out:?}"
    );

    // A new principal unit gets its own subordinate; removing it removes that one first
    // (state/unit.go `destroyOps`, `EnsureDead`).
    sb.ok(&["add-unit", "probe"]);
    sb.wait_active(6);
    let sub2 = sub_of(&sb.status(), "probe/2");
    sb.ok(&["remove-unit", "probe/2"]);
    sb.wait_active(4);
    assert_torn_down(&sb, &sub2);
    assert!(!sb.status()["applications"]["probe"]["units"]
        .as_object()
        .expect("units")
        .contains_key("probe/2"));

    // state/relationunit.go `LeaveScope`: removing the relation removes the subordinates; the
    // principals stay.
    sb.ok(&["remove-relation", "probe", "subordinate-probe"]);
    sb.eventually("subordinates gone", Duration::from_secs(120), || {
        let s = sb.status();
        let units = s["applications"]["probe"]["units"].as_object()?.clone();
        units
            .values()
            .all(|u| u.get("subordinates").is_none())
            .then_some(())
    });
    sb.wait_active(2);
    for (principal, sub) in ["probe/0", "probe/1"].iter().zip(&subs) {
        assert_torn_down(&sb, sub);
        let tag = format!("unit-{}", sub.replace('/', "-"));
        let (code, _, _) = sb.ssh(principal, &format!("test ! -e /var/lib/juju/agents/{tag}"));
        assert_eq!(code, 0);
    }
}

#[test]
fn subordinates_in_juju_2_9_status() {
    let sb = Sandbox::with_agent_version("subordinates29", Some("2.9.44"));
    sb.ok(&["deploy", &probe()]);
    sb.ok(&["deploy", &sub_charm()]);
    sb.ok(&["add-relation", "probe", "subordinate-probe"]);
    sb.wait_active(2);
    // cmd/juju/status/formatter.go @2.9: nested under the principal, relations by name.
    let status = sb.status();
    let probe = &status["applications"]["probe"];
    assert_eq!(sub_of(&status, "probe/0"), "subordinate-probe/0");
    assert_eq!(
        probe["relations"]["juju-info"],
        serde_json::json!(["subordinate-probe"])
    );
    assert_eq!(
        status["applications"]["subordinate-probe"]["subordinate-to"],
        serde_json::json!(["probe"])
    );
    let table = sb.ok(&["status"]);
    assert!(table.contains("\n  subordinate-probe/0*"), "{table}");
}
