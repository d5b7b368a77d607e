//! Where the charm can tell Juju from the sandbox: removal timing, relation-list in departed,
//! the automatic address keys, exec through bash, and attach-resource's hooks. Each check names
//! the juju/juju file it follows. Needs root.

mod common;
use common::{probe_charm as probe, Sandbox};
use serde_json::Value;
use std::time::Duration;

#[test]
fn removal_timing_relation_data_exec_and_resources() {
    let sb = Sandbox::new("behaviour");
    sb.ok(&["deploy", &probe(), "-n", "3"]);
    sb.wait_active(3);

    // apiserver uniter `EnterScope`: every unit's databag has its address keys.
    let addr = |u: &str| sb.exec(u, "unit-get private-address").1.trim().to_string();
    for (reader, writer) in [("probe/0", "probe/1"), ("probe/1", "probe/0")] {
        let (_, out, err) = sb.exec(
            reader,
            &format!("relation-get -r peer:0 --format json - {writer}"),
        );
        let bag: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        let a = addr(writer);
        assert_eq!(bag["private-address"], a.as_str(), "{bag}");
        assert_eq!(bag["ingress-address"], a.as_str(), "{bag}");
        assert_eq!(bag["egress-subnets"], format!("{a}/32").as_str(), "{bag}");
    }

    // juju/utils exec `RunParams.Run`, contextfactory.go `CommandContext`: bash runs a script
    // of the command line in the charm dir, no dispatch path, no hook name.
    let (code, out, err) = sb.exec(
        "probe/0",
        "[[ -n $BASH_VERSION ]] && echo \"${JUJU_DISPATCH_PATH-unset} [$JUJU_HOOK_NAME] $PWD\"; \
         echo \"$JUJU_CONTEXT_ID\"",
    );
    assert_eq!(code, 0, "{err}");
    let out: Vec<&str> = out.lines().collect();
    assert_eq!(out[0], "unset [] /var/lib/juju/agents/unit-probe-0/charm");
    let id = out[1].strip_prefix("probe/0-run-commands-").expect(out[1]);
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // state/relationunit.go `PrepareLeaveScope`: the remaining units run departed for a removed
    // unit at once, while it is still in its own first departed hook (held here), before its
    // stop; contextfactory.go `HookContext`: relation-list there no longer lists it.
    sb.ssh(
        "probe/2",
        "touch /var/lib/probe/hold-peer-relation-departed",
    );
    sb.ok(&["remove-unit", "probe/2"]);
    for (u, other) in [("probe/0", "probe/1"), ("probe/1", "probe/0")] {
        let line = sb.eventually("departed on the others", Duration::from_secs(60), || {
            sb.probe_log(u, "members.log")
                .into_iter()
                .find(|l| l.starts_with("peer-relation-departed|probe/2|"))
        });
        assert_eq!(line, format!("peer-relation-departed|probe/2|{other} "));
    }
    let h2 = sb.probe_log("probe/2", "hooks.log");
    assert!(
        h2.last()
            .is_some_and(|l| l.starts_with("peer-relation-departed|"))
            && !h2.iter().any(|l| l.starts_with("stop|")),
        "{h2:?}"
    );
    sb.ssh("probe/2", "rm /var/lib/probe/hold-peer-relation-departed");
    sb.wait_active(2);

    // worker/uniter/resolver.go: a new resource is a charm change: upgrade-charm, then
    // config-changed.
    let file = sb.home.join("r.txt");
    std::fs::write(&file, "one\n").expect("resource");
    sb.ok(&["attach-resource", "probe", &format!("r={}", file.display())]);
    sb.eventually(
        "upgrade-charm, config-changed",
        Duration::from_secs(60),
        || {
            let h = sb.probe_log("probe/0", "hooks.log");
            let i = h.iter().rposition(|l| l.starts_with("upgrade-charm|"))?;
            h.get(i + 1)
                .filter(|l| l.starts_with("config-changed|"))
                .cloned()
        },
    );
}
