/*!
What this unit publishes on `cos-agent` (interface `cos_agent`) for grafana-agent or
opentelemetry-collector: one `config` key in its own unit databag, a JSON object with the five
fields the agents require (`cos/README.md` is the contract). Pure: the alert rules and the
encoded dashboards come ready from the build (`build.rs`); here the rules get the unit's Juju
topology and the scrape jobs its address.
*/

use crate::core::config::{CharmConfig, FACTS_PORT};
use crate::core::effect::Effect;
use crate::core::observed::Observed;
use crate::core::relations::changed;
use crate::juju::Settings;
use serde_json::{json, Map, Value};

/// Every rule file of `cos/prometheus_alert_rules`, as one JSON rule file.
const ALERT_RULES: &str = include_str!(concat!(env!("OUT_DIR"), "/alert_rules.json"));
/// The dashboards of `cos/grafana_dashboards`: a JSON list of `base64(xz(json))` strings.
const DASHBOARDS: &str = include_str!(concat!(env!("OUT_DIR"), "/dashboards.json"));
/// The relation endpoint (metadata.yaml).
pub const ENDPOINT: &str = "cos-agent";
/// The databag key the agents read.
pub const CONFIG_KEY: &str = "config";
/// The charm's name (metadata.yaml), the `juju_charm` label.
const CHARM: &str = "etcd";

/// Where the rules and jobs belong: the model and the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `JUJU_MODEL_NAME`.
    pub model: String,
    /// `JUJU_MODEL_UUID`.
    pub model_uuid: String,
    /// The application, e.g. `etcd`.
    pub app: String,
}

impl Topology {
    /// cosl's rule group name: `<model>_<uuid[:8]>_<app>_<group>_rules`, every character
    /// outside `[a-zA-Z0-9_:]` replaced by `_`.
    pub fn group_name(&self, group: &str) -> String {
        let uuid: String = self.model_uuid.chars().take(8).collect();
        let mut name = format!("{}_{uuid}_{}_{group}", self.model, self.app);
        if !name.ends_with("_rules") {
            name.push_str("_rules");
        }
        let keep = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        name.chars()
            .map(|c| if keep(c) { c } else { '_' })
            .collect()
    }

    /// The labels cosl adds to every rule (where the rule does not set them).
    fn labels(&self) -> [(&'static str, &str); 4] {
        [
            ("juju_model", self.model.as_str()),
            ("juju_model_uuid", self.model_uuid.as_str()),
            ("juju_application", self.app.as_str()),
            ("juju_charm", CHARM),
        ]
    }
}

/// The charm's alert rules with their groups renamed and the topology labels added; `expr` is
/// left as it is (the agent adds topology matchers itself).
pub fn alert_rules(t: &Topology) -> Value {
    // Made by build.rs from the rule files: always a JSON rule file.
    let mut rules: Value = serde_json::from_str(ALERT_RULES).unwrap_or_default();
    let groups = rules["groups"].as_array_mut().map(|g| g.iter_mut());
    for group in groups.into_iter().flatten() {
        let name = group["name"].as_str().unwrap_or_default().to_string();
        group["name"] = json!(t.group_name(&name));
        let each = group["rules"].as_array_mut().map(|r| r.iter_mut());
        for rule in each.into_iter().flatten() {
            let Some(rule) = rule.as_object_mut() else {
                continue;
            };
            let labels = rule.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                for (k, v) in t.labels() {
                    labels.entry(k).or_insert_with(|| json!(v));
                }
            }
        }
    }
    rules
}

/// The encoded dashboards.
pub fn dashboards() -> Vec<String> {
    serde_json::from_str(DASHBOARDS).unwrap_or_default()
}

/// `host:port`, IPv6 addresses in brackets.
fn target(address: &str, port: u16) -> String {
    match address.contains(':') {
        true => format!("[{address}]:{port}"),
        false => format!("{address}:{port}"),
    }
}

/// The facts job's name: `charm_facts_<FNV-1a-32 of the application, hex>`, without `etcd` in
/// it (the mixin counts every job matching `.*etcd.*` as a member).
pub fn facts_job_name(app: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in app.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("charm_facts_{h:08x}")
}

fn job(name: String, target: String) -> Value {
    json!({
        "job_name": name,
        "metrics_path": "/metrics",
        "scheme": "http",
        "static_configs": [{"targets": [target]}],
    })
}

/// The scrape jobs: etcd's metrics listener at the unit's address, and the charm's facts on
/// loopback (the agent runs on the same machine).
pub fn scrape_jobs(app: &str, address: &str, metrics_port: u16) -> Value {
    json!([
        job(format!("{app}_etcd"), target(address, metrics_port)),
        job(facts_job_name(app), target("127.0.0.1", FACTS_PORT)),
    ])
}

/// The `config` value: the five fields every agent requires.
pub fn payload(t: &Topology, address: &str, metrics_port: u16) -> String {
    let mut p = Map::new();
    p.insert("metrics_alert_rules".into(), alert_rules(t));
    p.insert("log_alert_rules".into(), json!({}));
    p.insert("dashboards".into(), json!(dashboards()));
    p.insert(
        "metrics_scrape_jobs".into(),
        scrape_jobs(&t.app, address, metrics_port),
    );
    p.insert("log_slots".into(), json!([]));
    Value::Object(p).to_string()
}

/// This unit's `cos-agent` data, when it differs from what it published.
pub fn agent_data(o: &Observed, cfg: &CharmConfig, address: &str) -> Option<Effect> {
    let rel = o.cos_agent.as_ref()?;
    let t = Topology {
        model: rel.model.clone(),
        model_uuid: rel.model_uuid.clone(),
        app: o.app().to_string(),
    };
    let want = Settings::from([(
        CONFIG_KEY.to_string(),
        payload(&t, address, cfg.metrics_port),
    )]);
    changed(&rel.published, want).map(|s| Effect::RelationSet(rel.relation.clone(), s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology {
            model: "test".into(),
            model_uuid: "1a2b3c4d-0000-4000-8000-000000000000".into(),
            app: "etcd".into(),
        }
    }

    #[test]
    fn groups_are_renamed_and_rules_labelled() {
        let t = topology();
        assert_eq!(
            t.group_name("etcd_charm"),
            "test_1a2b3c4d_etcd_etcd_charm_rules"
        );
        let odd = Topology {
            model: "my-model".into(),
            app: "etcd.main".into(),
            ..topology()
        };
        assert_eq!(
            odd.group_name("x_rules"),
            "my_model_1a2b3c4d_etcd_main_x_rules"
        );
        let rules = alert_rules(&t);
        let groups = rules["groups"].as_array().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "test_1a2b3c4d_etcd_etcd_charm_rules",
                "test_1a2b3c4d_etcd_etcd_rules"
            ]
        );
        let all: Vec<&Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        assert_eq!(all.len(), 7 + 15);
        for rule in all {
            let l = &rule["labels"];
            assert_eq!(l["juju_model"], "test");
            assert_eq!(l["juju_model_uuid"], t.model_uuid.as_str());
            assert_eq!(l["juju_application"], "etcd");
            assert_eq!(l["juju_charm"], "etcd");
            assert!(l["severity"].is_string(), "{rule}");
            assert!(rule["expr"]
                .as_str()
                .is_some_and(|e| !e.contains("juju_unit=")));
        }
    }

    #[test]
    fn payload_has_every_required_field_and_both_jobs() {
        let p: Value = serde_json::from_str(&payload(&topology(), "10.0.0.7", 2381)).unwrap();
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "dashboards",
                "log_alert_rules",
                "log_slots",
                "metrics_alert_rules",
                "metrics_scrape_jobs"
            ]
        );
        assert_eq!(p["log_alert_rules"], json!({}));
        assert_eq!(p["log_slots"], json!([]));
        let jobs = p["metrics_scrape_jobs"].as_array().unwrap();
        assert_eq!(jobs[0]["job_name"], "etcd_etcd");
        assert_eq!(
            jobs[0]["static_configs"][0]["targets"],
            json!(["10.0.0.7:2381"])
        );
        let facts = jobs[1]["job_name"].as_str().unwrap();
        assert_eq!(facts, "charm_facts_15ccec8b");
        assert!(!facts.contains("etcd"));
        assert_eq!(
            jobs[1]["static_configs"][0]["targets"],
            json!(["127.0.0.1:9379"])
        );
        assert_eq!(
            scrape_jobs("e", "fd00::1", 1)[0]["static_configs"][0]["targets"],
            json!(["[fd00::1]:1"])
        );
    }
}
