//! goal-state, and Juju 3.x secrets end to end with the probe charm: an application-owned secret added by the
//! leader from a file, granted over a relation, read by a peer and by the other application,
//! updated (each reader gets `secret-changed` and follows; the owner then gets `secret-remove`
//! for the revision nobody reads), expired, revoked and removed; its values never in the log.
//! Needs root.

mod common;
use common::{probe_charm as probe, Sandbox};
use std::time::Duration;

/// A hook's saved environment on a unit: `JUJU_SECRET_*` only.
fn secret_env(sb: &Sandbox, unit: &str, hook: &str) -> Vec<String> {
    sb.probe_log(unit, &format!("env-{hook}"))
        .into_iter()
        .filter(|l| l.starts_with("JUJU_SECRET_"))
        .collect()
}

fn wait_hook(sb: &Sandbox, unit: &str, hook: &str) {
    sb.eventually(
        &format!("{hook} on {unit}"),
        Duration::from_secs(60),
        || {
            sb.probe_log(unit, "hooks.log")
                .iter()
                .any(|l| l.starts_with(&format!("{hook}|")))
                .then_some(())
        },
    );
}

#[test]
fn secrets_across_units_and_applications() {
    let sb = Sandbox::new("secrets");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    sb.ok(&["deploy", &probe(), "reader"]);
    sb.ok(&["integrate", "probe:info", "reader:other"]);
    sb.wait_active(3);
    // goal-state (apiserver uniter `oneGoalState`): own units, and per local endpoint the remote
    // application's relation status and its units; no peer relation.
    let (_, out, err) = sb.exec("reader/0", "goal-state --format json");
    let gs: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(gs["units"]["reader/0"]["status"], "active", "{gs}");
    let other = gs["relations"]["other"].as_object().expect("other");
    let keys: Vec<&String> = other.keys().collect();
    assert_eq!(keys, ["probe", "probe/0", "probe/1"], "{gs}");
    assert_eq!(other["probe"]["status"], "joined", "{gs}");
    assert_eq!(
        gs["relations"].as_object().map(|r| r.len()),
        Some(1),
        "{gs}"
    );
    assert!(
        other["probe/0"]["since"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{gs}"
    );

    let leader = sb.leader("probe").expect("a leader");
    let peer = if leader == "probe/0" {
        "probe/1"
    } else {
        "probe/0"
    };
    let uuid = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(sb.home.join("model.json")).expect("model"),
    )
    .expect("json")["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();

    // The value comes from a file, never from the command line; the id as Juju ≥ 3.1.3 prints it.
    let (code, out, err) = sb.exec(
        &leader,
        "umask 077; printf hunter22 > /root/pw && secret-add --label creds password#file=/root/pw",
    );
    assert_eq!(code, 0, "{err}");
    let id = out
        .trim()
        .strip_prefix(&format!("secret://{uuid}/"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_eq!(id.len(), 20, "{id}");
    let (code, _, err) = sb.exec(peer, "secret-add token=abcdef");
    assert_eq!(
        (code, err.as_str()),
        (1, "ERROR this unit is not the leader\n")
    );

    // A consumer reads only once the grant is committed; every unit of the owner reads it.
    let get = |unit: &str| sb.exec(unit, &format!("secret-get {id} password"));
    assert_eq!(get("reader/0").2, "ERROR permission denied\n");
    let (code, _, err) = sb.exec(
        &leader,
        &format!("secret-grant {id} -r $(relation-ids info)"),
    );
    assert_eq!(code, 0, "{err}");
    for unit in ["reader/0", peer] {
        assert_eq!(
            get(unit),
            (0, "hunter22\n".to_string(), String::new()),
            "{unit}"
        );
    }

    // A new revision: each reader is told, refreshes (the probe does), and revision 1, read by
    // nobody any more, is the owner's to remove.
    let (code, _, err) = sb.exec(&leader, &format!("secret-set {id} password=hunter33"));
    assert_eq!(code, 0, "{err}");
    for unit in ["reader/0", peer] {
        wait_hook(&sb, unit, "secret-changed");
        let want_label = if unit == peer { "creds" } else { "" };
        assert_eq!(
            secret_env(&sb, unit, "secret-changed"),
            [
                format!("JUJU_SECRET_ID=secret:{id}"),
                format!("JUJU_SECRET_LABEL={want_label}")
            ],
            "{unit}"
        );
        assert_eq!(
            sb.probe_log(unit, "secret-changed.json"),
            ["{\"password\":\"hunter33\"}"]
        );
    }
    wait_hook(&sb, &leader, "secret-remove");
    assert_eq!(
        secret_env(&sb, &leader, "secret-remove"),
        [
            format!("JUJU_SECRET_ID=secret:{id}"),
            "JUJU_SECRET_LABEL=creds".to_string(),
            "JUJU_SECRET_REVISION=1".to_string()
        ]
    );
    let (_, info, _) = sb.exec(&leader, "secret-info-get --label creds --format json");
    let info: serde_json::Value = serde_json::from_str(&info).expect(&info);
    assert_eq!(info[&id]["revision"], 2, "{info}");

    // Expiry reaches the owner's leader with the revision.
    let (code, _, err) = sb.exec(&leader, "secret-add --label short --expire 2s token=abcdef");
    assert_eq!(code, 0, "{err}");
    wait_hook(&sb, &leader, "secret-expired");
    let env = secret_env(&sb, &leader, "secret-expired");
    assert!(
        env.contains(&"JUJU_SECRET_LABEL=short".to_string())
            && env.contains(&"JUJU_SECRET_REVISION=1".to_string()),
        "{env:?}"
    );

    // Revoked, the consumer is refused; removed, nobody finds it.
    sb.exec(&leader, &format!("secret-revoke {id} --app reader"));
    assert_eq!(get("reader/0").2, "ERROR permission denied\n");
    sb.exec(&leader, &format!("secret-remove {id}"));
    let (code, _, err) = get(peer);
    assert!(code == 1 && err.contains("not found"), "{err}");

    // A charm that logs a value, or prints it, leaves no trace of it in the log.
    let (code, _, err) = sb.exec(
        &leader,
        "juju-log \"short: $(secret-get --label short)\"; secret-get --label short >&2",
    );
    assert_eq!(code, 0, "{err}");
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    assert!(log.contains("short: token: <redacted>"), "{log}");
    for value in ["hunter22", "hunter33", "abcdef"] {
        assert!(!log.contains(value), "{value} in the log");
    }
}
