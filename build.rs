//! Build step: the COS assets in `cos/` made ready for the `cos-agent` relation, so hooks neither
//! parse YAML nor compress anything (see `cos/README.md`).
//!
//! - `alert_rules.json`: the groups of every `cos/prometheus_alert_rules/*.rules` file, sorted by
//!   file name, as one JSON rule file `{"groups": [...]}` (topology is added at run time).
//! - `dashboards.json`: a JSON list with one `base64(xz(json))` string per dashboard in
//!   `cos/grafana_dashboards/`, its `uid` and `charm: etcd` tag set as cosl's provider sets them.

use base64::Engine;
use serde_json::{json, Value};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use std::io::Write;
use std::path::Path;
use std::{env, fs};

/// The charm's name, as in metadata.yaml.
const CHARM: &str = "etcd";

fn files(dir: &str, suffix: &str) -> Vec<String> {
    println!("cargo:rerun-if-changed={dir}");
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    names.sort();
    for n in &names {
        println!("cargo:rerun-if-changed={n}");
    }
    names
}

/// cosl's `DashboardPath40UID`: `shake_256("<charm>-<path>")`, 20 bytes, hex.
fn dashboard_uid(path: &str) -> String {
    let mut h = sha3::Shake256::default();
    h.update(format!("{CHARM}-{path}").as_bytes());
    let mut out = [0u8; 20];
    h.finalize_xof().read(&mut out);
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn dashboard(path: &str) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut d: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    d["uid"] = json!(dashboard_uid(path));
    let tag = format!("charm: {CHARM}");
    let tags = d["tags"].as_array().cloned().unwrap_or_default();
    let tagged = tags
        .iter()
        .any(|t| t.as_str().is_some_and(|t| t.starts_with("charm: ")));
    if !tagged {
        let mut tags = tags;
        tags.push(json!(tag));
        d["tags"] = Value::Array(tags);
    }
    let plain = serde_json::to_vec(&d).expect("a JSON value serialises");
    let options = lzma_rust2::XzOptions::with_preset(9);
    let mut w = lzma_rust2::XzWriter::new(Vec::new(), options).expect("an xz writer");
    w.write_all(&plain).expect("xz into memory");
    let xz = w.finish().expect("xz into memory");
    base64::engine::general_purpose::STANDARD.encode(xz)
}

fn main() {
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut groups = Vec::new();
    for path in files("cos/prometheus_alert_rules", ".rules") {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let file: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let file_groups = file["groups"].as_array().cloned();
        groups.extend(file_groups.unwrap_or_else(|| panic!("{path}: no groups")));
    }
    let rules = json!({ "groups": groups }).to_string();
    fs::write(Path::new(&out).join("alert_rules.json"), rules).expect("write OUT_DIR");
    let dashboards: Vec<String> = files("cos/grafana_dashboards", ".json")
        .iter()
        .map(|p| dashboard(p))
        .collect();
    let dashboards = serde_json::to_string(&dashboards).expect("strings serialise");
    fs::write(Path::new(&out).join("dashboards.json"), dashboards).expect("write OUT_DIR");
}
