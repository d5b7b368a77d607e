//! `sandbox status`: the model in the shape of `juju status` (tabular, YAML and JSON).

use crate::controller::model::{app_of, unit_number, Agent, Model, Unit};
use serde_json::{json, Map, Value};

pub(crate) fn since(t: f64) -> String {
    let secs = t as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}Z",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since the epoch to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The workload status a user sees: `error` while a hook failed, `unknown` when lost.
pub fn shown_workload(u: &Unit) -> (String, String) {
    match u.agent {
        Agent::Error => ("error".into(), u.agent_message.clone()),
        Agent::Lost => (
            "unknown".into(),
            "agent lost, see 'sandbox debug-log'".to_string(),
        ),
        _ => (u.workload.status.clone(), u.workload.message.clone()),
    }
}

fn agent_word(u: &Unit) -> &'static str {
    match u.agent {
        Agent::Allocating => "allocating",
        Agent::Idle => "idle",
        Agent::Executing => "executing",
        Agent::Error => "error",
        Agent::Lost => "lost",
    }
}

/// The model as `juju status --format yaml` shapes it.
pub fn to_value(m: &Model) -> Value {
    let mut machines = Map::new();
    for (id, rec) in &m.machines {
        let state = rec.state.as_str();
        machines.insert(
            id.to_string(),
            json!({
                "juju-status": {"current": state},
                "hostname": rec.hostname,
                "dns-name": rec.address,
                "ip-addresses": [rec.address],
                "instance-id": rec.hostname,
                "machine-status": {"current": if state == "started" { "running" } else { state }},
                "base": {"name": "debian", "channel": "12"},
                "network-interfaces": {"eth0": {"ip-addresses": [rec.address], "mac-address": rec.mac, "is-up": !rec.partitioned}},
            }),
        );
    }
    let mut apps = Map::new();
    for (name, a) in &m.apps {
        let mut units = Map::new();
        for un in m.units_of(name) {
            let u = &m.units[&un];
            let (ws, wm) = shown_workload(u);
            let addr = m
                .machines
                .get(&u.machine)
                .map(|r| r.address.clone())
                .unwrap_or_default();
            let mut e = json!({
                "workload-status": {"current": ws, "message": wm, "since": since(u.workload_since)},
                "juju-status": {"current": agent_word(u), "message": u.agent_message, "since": since(u.agent_since), "version": m.agent_version},
                "machine": u.machine.to_string(),
                "public-address": addr,
            });
            if a.leader.as_deref() == Some(un.as_str()) {
                e["leader"] = json!(true);
            }
            if !u.ports.is_empty() {
                e["open-ports"] = json!(u.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            }
            units.insert(un.clone(), e);
        }
        let mut relations = Map::new();
        for r in m.relations.values().filter(|r| r.involves(name)) {
            let Some(end) = r.end_of(name) else { continue };
            let remote = r.remote_app(name).unwrap_or_default();
            let entry = relations
                .entry(end.endpoint.clone())
                .or_insert_with(|| json!([]));
            // Juju 2.9 lists the remote application's name only.
            entry.as_array_mut().expect("array").push(if m.is_juju29() {
                json!(remote)
            } else {
                json!({"related-application": remote, "interface": r.interface, "scope": if r.container { "container" } else { "global" }})
            });
        }
        let (app_status, app_msg) = app_status(m, name);
        apps.insert(
            name.clone(),
            json!({
                "charm": format!("local:{}-{}", a.meta.name, a.charm_rev),
                "charm-origin": "local",
                "charm-name": a.meta.name,
                "charm-rev": a.charm_rev,
                "exposed": false,
                "base": {"name": "debian", "channel": "12"},
                "application-status": {"current": app_status, "message": app_msg},
                "relations": relations,
                "units": units,
                "version": a.version,
            }),
        );
    }
    nest_subordinates(m, &mut apps);
    if m.is_juju29() {
        in_series_shape(&mut machines, &mut apps);
    }
    json!({
        "model": {"name": m.name, "type": "iaas", "controller": "sandbox", "cloud": "localhost", "region": "localhost", "version": m.agent_version, "model-status": {"current": "available"}},
        "machines": machines,
        "applications": apps,
    })
}

/// Subordinate units appear under their principal unit's `subordinates` (without a machine of
/// their own), and a subordinate application lists `subordinate-to` instead of `units`, in 2.9
/// and 3.x alike (cmd/juju/status/formatter.go `formatApplication`, `formatUnit`).
fn nest_subordinates(m: &Model, apps: &mut Map<String, Value>) {
    for u in m.units.values() {
        let Some(p) = &u.principal else { continue };
        let Some(mut entry) = apps[&u.app]["units"]
            .as_object_mut()
            .and_then(|us| us.remove(&u.name))
        else {
            continue;
        };
        entry.as_object_mut().map(|e| e.remove("machine"));
        let principal = &mut apps[app_of(p)]["units"][p];
        if principal.is_object() {
            principal["subordinates"][&u.name] = entry;
        }
    }
    for (name, a) in &m.apps {
        if !a.meta.subordinate {
            continue;
        }
        let mut to: Vec<String> = m
            .relations
            .values()
            .filter(|r| r.container && r.involves(name))
            .filter_map(|r| r.remote_app(name))
            .collect();
        to.sort();
        to.dedup();
        if let Some(o) = apps[name].as_object_mut() {
            o.remove("units");
            o.insert("subordinate-to".into(), json!(to));
        }
    }
}

/// Juju 2.9 shows a machine's and an application's OS as `series` (and an application's `os`)
/// where 3.x shows `base` (cmd/juju/status/formatted.go).
fn in_series_shape(machines: &mut Map<String, Value>, apps: &mut Map<String, Value>) {
    for m in machines.values_mut() {
        if let Some(o) = m.as_object_mut() {
            o.remove("base");
            o.insert("series".into(), json!(SERIES));
        }
    }
    for a in apps.values_mut() {
        if let Some(o) = a.as_object_mut() {
            o.remove("base");
            o.insert("series".into(), json!(SERIES));
            o.insert("os".into(), json!("debian"));
        }
    }
}

/// The series name of the machines' Debian 12.
const SERIES: &str = "bookworm";

/// The application status: what the leader set, else the most severe unit status.
fn app_status(m: &Model, app: &str) -> (String, String) {
    let a = &m.apps[app];
    if !a.status.status.is_empty() {
        return (a.status.status.clone(), a.status.message.clone());
    }
    let rank = |s: &str| match s {
        "error" => 0,
        "blocked" => 1,
        "maintenance" => 2,
        "waiting" => 3,
        "active" => 4,
        _ => 5,
    };
    m.units_of(app)
        .iter()
        .map(|u| shown_workload(&m.units[u]))
        .min_by_key(|(s, _)| rank(s))
        .unwrap_or(("unknown".into(), String::new()))
}

pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The tabular `juju status` layout, leader marked with `*`.
pub fn tabular(m: &Model) -> String {
    let now = since(crate::controller::model::now());
    let mut out = table(&[
        vec![
            "Model".into(),
            "Controller".into(),
            "Cloud/Region".into(),
            "Version".into(),
            "Timestamp".into(),
        ],
        vec![
            m.name.clone(),
            "sandbox".into(),
            "localhost/localhost".into(),
            m.agent_version.clone(),
            now[12..].to_string(),
        ],
    ]);
    let mut rows = vec![[
        "App", "Version", "Status", "Scale", "Charm", "Rev", "Exposed", "Message",
    ]
    .map(String::from)
    .to_vec()];
    for (name, a) in &m.apps {
        let (s, msg) = app_status(m, name);
        rows.push(vec![
            name.clone(),
            a.version.clone(),
            s,
            m.units_of(name).len().to_string(),
            a.meta.name.clone(),
            a.charm_rev.to_string(),
            "no".into(),
            msg,
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    let mut rows = vec![[
        "Unit",
        "Workload",
        "Agent",
        "Machine",
        "Public address",
        "Ports",
        "Message",
    ]
    .map(String::from)
    .to_vec()];
    // Each subordinate unit follows its principal, indented, without a machine.
    let mut units: Vec<&Unit> = m.units.values().collect();
    units.sort_by_key(|u| {
        let p = u.principal.as_deref().unwrap_or(&u.name);
        let own = u
            .principal
            .as_ref()
            .map(|_| (u.app.clone(), unit_number(&u.name)));
        (app_of(p).to_string(), unit_number(p), own)
    });
    for u in units {
        let indent = if u.principal.is_some() { "  " } else { "" };
        let (ws, wm) = shown_workload(u);
        let star = if m.apps.get(&u.app).and_then(|a| a.leader.as_deref()) == Some(u.name.as_str())
        {
            "*"
        } else {
            ""
        };
        let addr = m
            .machines
            .get(&u.machine)
            .map(|r| r.address.clone())
            .unwrap_or_default();
        let ports: Vec<String> = u.ports.iter().map(|p| p.to_string()).collect();
        rows.push(vec![
            format!("{indent}{}{star}", u.name),
            ws,
            agent_word(u).into(),
            if indent.is_empty() {
                u.machine.to_string()
            } else {
                String::new()
            },
            addr,
            ports.join(","),
            wm,
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    let mut rows = vec![[
        "Machine", "State", "Address", "Inst id", "Base", "AZ", "Message",
    ]
    .map(String::from)
    .to_vec()];
    for (id, r) in &m.machines {
        rows.push(vec![
            id.to_string(),
            r.state.as_str().into(),
            r.address.clone(),
            r.hostname.clone(),
            "debian@12".into(),
            String::new(),
            String::new(),
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    if !m.relations.is_empty() {
        let mut rows = vec![["Integration provider", "Requirer", "Interface", "Type"]
            .map(String::from)
            .to_vec()];
        for r in m.relations.values() {
            // The provider's end first, as Juju lists it.
            let mut ends: Vec<&crate::controller::model::RelEnd> = r.ends.iter().collect();
            ends.sort_by_key(|e| {
                let role = m
                    .apps
                    .get(&e.app)
                    .and_then(|a| a.meta.endpoints.get(&e.endpoint))
                    .map(|x| x.role.as_str());
                role != Some("provides")
            });
            let ends: Vec<String> = ends
                .iter()
                .map(|e| format!("{}:{}", e.app, e.endpoint))
                .collect();
            let (p, q) = if r.is_peer() {
                (ends[0].clone(), ends[0].clone())
            } else {
                (ends[0].clone(), ends[1].clone())
            };
            rows.push(vec![
                p,
                q,
                r.interface.clone(),
                if r.is_peer() {
                    "peer"
                } else if r.container {
                    "subordinate"
                } else {
                    "regular"
                }
                .into(),
            ]);
        }
        out.push('\n');
        out.push_str(&table(&rows));
    }
    out
}
