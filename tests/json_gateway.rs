//! etcd's HTTP/JSON gateway (`/v3/...`), which Patroni, OpenStack's etcd3gw and curl scripts
//! use (issue 12): put, range and watch through every member with curl, a real HTTP client,
//! run in a consumer's machine network with the endpoints and credentials of its `db`
//! relation; over http, and over https with the relation's client certificate without a common
//! name and a token for its etcd user (auth is on with TLS). etcd 3.4 turns
//! the gateway off under `--config-file` unless the file enables it, so each call answered
//! `404 page not found` before the charm did. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, netns_of, Sandbox};

const CLIENT: &str = "db-client/0";

/// What the consumer reads from the first etcd unit on its `db` relation.
fn db_setting(sb: &Sandbox, key: &str) -> String {
    let (code, out, err) = sb.exec(
        CLIENT,
        &format!("relation-get -r $(relation-ids db | head -1) {key} etcd/0"),
    );
    assert_eq!(code, 0, "relation-get {key}: {err}");
    out.trim().to_string()
}

/// curl, in the consumer machine's network, with the relation's TLS files when there are any.
struct Curl {
    netns: String,
    tls: Vec<String>,
}

impl Curl {
    fn command(&self, url: &str, body: &Value) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.netns,
            "curl",
            "-sS",
            "--fail-with-body",
        ])
        .args(&self.tls)
        .args(["-X", "POST", url, "-d", &body.to_string()]);
        c
    }

    /// POSTs `body` to `url`; the JSON answer, or panics with curl's error.
    fn post(&self, url: &str, body: Value) -> Value {
        let out = self
            .command(url, &body)
            .args(["--max-time", "10"])
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "POST {url} {body}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
    }
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

fn unb64(v: &Value) -> String {
    String::from_utf8(B64.decode(v.as_str().unwrap_or_default()).unwrap()).unwrap()
}

/// Puts a key through every member, reads them all back through every member, and sees a put
/// made through one member on a watch opened through another.
fn exercise(curl: &Curl, endpoints: &[&str]) {
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    let mut last_rev = 0;
    for (i, ep) in endpoints.iter().enumerate() {
        let r = curl.post(
            &format!("{ep}/v3/kv/put"),
            json!({"key": b64(&format!("json/{i}")), "value": b64(&format!("v{i} via {ep}"))}),
        );
        let rev: u64 = r["header"]["revision"].as_str().unwrap().parse().unwrap();
        assert!(rev > last_rev, "revisions only grow: {r}");
        last_rev = rev;
    }
    for ep in endpoints {
        let r = curl.post(
            &format!("{ep}/v3/kv/range"),
            json!({"key": b64("json/"), "range_end": b64("json0")}),
        );
        let kvs: Vec<(String, String)> = r["kvs"]
            .as_array()
            .unwrap_or_else(|| panic!("range through {ep}: {r}"))
            .iter()
            .map(|kv| (unb64(&kv["key"]), unb64(&kv["value"])))
            .collect();
        let want: Vec<(String, String)> = (0..3)
            .map(|i| (format!("json/{i}"), format!("v{i} via {}", endpoints[i])))
            .collect();
        assert_eq!(kvs, want, "range through {ep}");
    }

    // A watch through the first member sees a put through the last one. The gateway streams
    // one JSON object per line: first the watch's creation, then its events.
    let mut watch = curl
        .command(
            &format!("{}/v3/watch", endpoints[0]),
            &json!({"create_request": {"key": b64("json/watched")}}),
        )
        .args(["-N", "--max-time", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl runs");
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let created = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watch created");
    assert!(created.contains("\"created\":true"), "{created}");
    curl.post(
        &format!("{}/v3/kv/put", endpoints[2]),
        json!({"key": b64("json/watched"), "value": b64("seen")}),
    );
    let event: Value = serde_json::from_str(
        &rx.recv_timeout(Duration::from_secs(30))
            .expect("a watch event"),
    )
    .unwrap();
    let kv = &event["result"]["events"][0]["kv"];
    assert_eq!(
        (unb64(&kv["key"]), unb64(&kv["value"])),
        ("json/watched".into(), "seen".into()),
        "{event}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

/// Deploys etcd ×3 (with `extra` deploy arguments) and the db-client consumer; returns the
/// consumer's `connection_string`.
fn deploy(sb: &Sandbox, extra: &[&str]) -> String {
    deploy_etcd(sb, 3, extra);
    deploy_consumer(sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    sb.eventually(
        "connection_string with 3 members",
        Duration::from_secs(120),
        || {
            let cs = db_setting(sb, "connection_string");
            (cs.split(',').count() == 3).then_some(cs)
        },
    )
}

#[test]
fn json_gateway_serves_put_range_and_watch_over_http() {
    let sb = Sandbox::new("etcd_json_http");
    let cs = deploy(&sb, &["--config", "tls=false"]);
    let endpoints: Vec<&str> = cs.split(',').collect();
    assert!(endpoints.iter().all(|e| e.starts_with("http://")), "{cs}");
    let curl = Curl {
        netns: netns_of(&sb, CLIENT),
        tls: vec![],
    };
    exercise(&curl, &endpoints);
}

/// Writes `content` to a new file readable only by its owner.
fn private_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, content.as_bytes()).unwrap();
    path
}

#[test]
fn json_gateway_serves_put_range_and_watch_over_https_with_the_relation_credentials() {
    let sb = Sandbox::new("etcd_json_https");
    let cs = deploy(&sb, &[]);
    let endpoints: Vec<&str> = cs.split(',').collect();
    assert!(endpoints.iter().all(|e| e.starts_with("https://")), "{cs}");
    let dir = sb.home.join("json-client");
    std::fs::create_dir_all(&dir).unwrap();
    // etcd refuses a certificate with a common name on the gateway once auth is on: an HTTP
    // client presents the relation's certificate without one and authenticates with its user
    // name and password (from the relation's secret) for a token.
    let mut tls = vec![];
    for (key, flag) in [
        ("client_ca", "--cacert"),
        ("cnless_client_cert", "--cert"),
        ("cnless_client_key", "--key"),
    ] {
        let pem = db_setting(&sb, key);
        assert!(pem.starts_with("-----BEGIN"), "{key} is no PEM");
        tls.push(flag.to_string());
        tls.push(private_file(&dir, key, &pem).display().to_string());
    }
    let user = db_setting(&sb, "username");
    assert_eq!(user, "db-client");
    let (code, password, err) = sb.exec(
        CLIENT,
        "secret-get $(relation-get -r $(relation-ids db | head -1) client_key_secret etcd/0) password",
    );
    assert_eq!(code, 0, "the password in the relation's secret: {err}");
    let login = Curl {
        netns: netns_of(&sb, CLIENT),
        tls: tls.clone(),
    };
    let token = sb.eventually("a token (auth on)", Duration::from_secs(180), || {
        let body = json!({"name": user, "password": password.trim()});
        let out = login
            .command(&format!("{}/v3/auth/authenticate", endpoints[0]), &body)
            .args(["--max-time", "10"])
            .output()
            .ok()?;
        let answer: Value = serde_json::from_slice(&out.stdout).ok()?;
        answer["token"].as_str().map(String::from)
    });
    tls.extend(["-H".to_string(), format!("Authorization: {token}")]);
    let curl = Curl {
        netns: netns_of(&sb, CLIENT),
        tls,
    };
    exercise(&curl, &endpoints);
}
