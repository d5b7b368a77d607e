//! The COS assets under `cos/` (issue 15), checked with Prometheus' own tool: every rule file
//! passes `promtool check rules`, the promtool unit tests in `cos/tests` pass, every alert has
//! a case in which it fires and one in which it does not, and every dashboard is JSON with the
//! `${prometheusds}` datasource COS expects and queries that PromQL parses. No machines.
//!
//! promtool is `$PROMTOOL` if set, else the one `scripts/install-deps` unpacked into
//! `${ETCD_CHARM_TOOLS:-/var/cache/etcd-charm-tools}/prometheus/current/usr/bin/promtool`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cos_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("cos")
        .join(sub)
}

/// The files directly in `cos/<sub>` whose name ends with one of `exts`, sorted.
fn files(sub: &str, exts: &[&str]) -> Vec<PathBuf> {
    let dir = cos_dir(sub);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| exts.iter().any(|x| p.to_string_lossy().ends_with(x)))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {exts:?} files in {}", dir.display());
    out
}

fn rule_files() -> Vec<PathBuf> {
    files(
        "prometheus_alert_rules",
        &[".rules", ".rule", ".yaml", ".yml"],
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("ETCD_CHARM_TOOLS")
                .unwrap_or_else(|| "/var/cache/etcd-charm-tools".into());
            Path::new(&tools).join("prometheus/current/usr/bin/promtool")
        });
    assert!(
        path.is_file(),
        "promtool not found at {}: run scripts/install-deps, or set PROMTOOL to a promtool binary",
        path.display()
    );
    path
}

/// Runs promtool with `args`, failing the test with its output unless it exits 0.
fn run_promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new(promtool())
        .args(args)
        .args(files)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_rule_file_passes_promtool_check() {
    run_promtool(&["check", "rules"], &rule_files());
}

#[test]
fn promtool_unit_tests_pass() {
    run_promtool(&["test", "rules"], &files("tests", &[".yaml"]));
}

/// Alert names of a rule file: the `- alert: <name>` lines.
fn alert_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// For each alert a unit test evaluates: (has a firing case, has a non-firing case). A case is
/// an `alertname: <name>` line (a list item or not); it is non-firing when the next line is
/// `exp_alerts: []`.
fn test_cases(text: &str) -> BTreeMap<String, (bool, bool)> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .collect();
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname:") else {
            continue;
        };
        let entry = cases.entry(name.trim().to_string()).or_default();
        if lines.get(i + 1) == Some(&"exp_alerts: []") {
            entry.1 = true;
        } else {
            entry.0 = true;
        }
    }
    cases
}

#[test]
fn every_alert_has_a_firing_and_a_non_firing_unit_test() {
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for file in files("tests", &[".yaml"]) {
        for (name, (fires, quiet)) in test_cases(&read(&file)) {
            let entry = cases.entry(name).or_default();
            entry.0 |= fires;
            entry.1 |= quiet;
        }
    }
    let mut missing = Vec::new();
    for file in rule_files() {
        for name in alert_names(&read(&file)) {
            match cases.get(&name) {
                Some((true, true)) => {}
                Some((fires, _)) => missing.push(format!(
                    "{name}: no case where it {}",
                    if *fires { "stays quiet" } else { "fires" }
                )),
                None => missing.push(format!("{name}: no unit test")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add promtool unit tests to cos/tests:\n{}",
        missing.join("\n")
    );
}

#[test]
fn test_case_scanner_tells_firing_from_quiet_cases() {
    let text = "- alertname: A\n  exp_alerts: []\n- alertname: A\n  exp_alerts:\n- alertname: B\n";
    let cases = test_cases(text);
    assert_eq!(cases["A"], (true, true));
    assert_eq!(cases["B"], (true, false));
    assert_eq!(alert_names("  - alert: X\n  - record: y\n"), ["X"]);
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut todo: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(p) = todo.pop() {
        todo.extend(p["panels"].as_array().into_iter().flatten());
        out.push(p);
    }
    out
}

/// A query with Grafana's variables replaced, so that PromQL can parse it.
fn as_promql(expr: &str) -> String {
    let mut s = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    while let Some(i) = s.find('$') {
        let end = s[i + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(s.len(), |n| i + 1 + n);
        s.replace_range(i..end, ".*");
    }
    s
}

#[test]
fn dashboards_are_json_on_the_cos_datasource_with_valid_queries() {
    let mut rules = Vec::new();
    for file in files("grafana_dashboards", &[".json"]) {
        let name = file.display().to_string();
        let d: Value = serde_json::from_str(&read(&file))
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: no title"
        );
        let vars = d["templating"]["list"].as_array().expect("templating.list");
        assert!(
            vars.iter()
                .any(|v| v["name"] == "prometheusds" && v["type"] == "datasource"),
            "{name}: no datasource variable `prometheusds`"
        );
        let mut ids = std::collections::BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(p["id"].as_u64()),
                "{name}: panel id of {title:?} repeats"
            );
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(
                    t["datasource"]["uid"], "${prometheusds}",
                    "{name}: a query of panel {title:?} is not on ${{prometheusds}}"
                );
                let expr = t["expr"].as_str().expect("a target has expr");
                let record = format!("dashboard:panel_{}_{}", p["id"], rules.len());
                rules.push(json!({"record": record, "expr": as_promql(expr)}));
            }
        }
    }
    // PromQL is checked by promtool, as recording rules in a file of their own (JSON is YAML).
    let dir = std::env::temp_dir().join(format!("etcd-cos-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("dashboard_queries.rules");
    let doc = json!({"groups": [{"name": "dashboard_queries", "rules": rules}]});
    std::fs::write(&file, doc.to_string()).expect("write the queries");
    run_promtool(
        &["check", "rules", "--lint=none"],
        std::slice::from_ref(&file),
    );
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}

#[test]
fn grafana_variables_become_promql() {
    assert_eq!(
        as_promql(r#"rate(x{juju_unit=~"$juju_unit"}[$__rate_interval])"#),
        r#"rate(x{juju_unit=~".*"}[5m])"#
    );
}

/// The `etcd_charm_*` metric names in `text`: words with that prefix ending in a unit suffix
/// (`_seconds`, `_bytes`, `_total`), which leaves out group names and `etcd_charm_*` itself.
fn charm_metrics(text: &str) -> std::collections::BTreeSet<&str> {
    text.match_indices("etcd_charm_")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| {
            name.ends_with("_seconds") || name.ends_with("_bytes") || name.ends_with("_total")
        })
        .collect()
}

#[test]
fn every_charm_metric_the_rules_and_dashboard_use_is_documented() {
    let readme = read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cos/README.md"));
    let documented = charm_metrics(&readme);
    let mut used = Vec::new();
    for file in rule_files()
        .into_iter()
        .chain(files("grafana_dashboards", &[".json"]))
    {
        let text = read(&file);
        used.extend(charm_metrics(&text).into_iter().map(String::from));
    }
    assert!(
        !used.is_empty(),
        "no etcd_charm_* metric found in the rules"
    );
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| !documented.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "document these metrics in cos/README.md (\"Metrics the charm exports\"): {missing:?}"
    );
}
