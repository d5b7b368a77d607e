//! The object store the backup tests run on (issue 14): the `s3-integrator` test charm runs
//! Garage on its own machine and provides `s3-credentials` as the real s3-integrator does; the
//! `s3-consumer` test charm requires it. The consumer gets the plain-key form of the interface,
//! and with those credentials the `objstore` client, run in the consumer machine's network,
//! puts, lists and gets an object; wrong credentials and a missing bucket fail with errors that
//! name the cause. Needs root (it boots machines), Garage (`scripts/build-garage`) and the
//! `objstore` binary (`cargo build -p objstore`).

#[path = "support/mod.rs"]
mod support;
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;
use support::{garage_bin, netns_of, objstore_bin, repo_root, sh, Sandbox};

const CONSUMER: &str = "s3-consumer/0";
const PROVIDER: &str = "s3-integrator/0";

/// The consumer's `S3_*` variables, as its charm wrote them from the relation.
fn consumer_env(sb: &Sandbox) -> BTreeMap<String, String> {
    sh(sb, CONSUMER, "cat /var/lib/s3-consumer/s3.env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `objstore <args>` in the consumer machine's network with `env` (credentials in the
/// environment, never in argv).
fn objstore(netns: &str, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(objstore_bin())
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("ip netns exec objstore runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "objstore failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The error of a failing `objstore` call; asserts that no credential is in it.
fn failure(out: Output, env: &BTreeMap<String, String>) -> String {
    assert_eq!(out.status.code(), Some(1), "objstore should have failed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for k in ["S3_SECRET_KEY", "S3_ACCESS_KEY"] {
        assert!(!err.contains(&env[k]), "{k} in an error: {err}");
    }
    err
}

#[test]
fn a_consumer_gets_s3_credentials_and_uses_the_store_from_its_machine() {
    let sb = Sandbox::new("s3_store");
    let charms = repo_root().join("tests/charms");
    let garage = format!("garage={}", garage_bin().display());
    sb.ok(&[
        "deploy",
        charms.join("s3-integrator").to_str().unwrap(),
        "--resource",
        &garage,
        "--config",
        "path=etcd/backups",
    ]);
    sb.ok(&["deploy", charms.join("s3-consumer").to_str().unwrap()]);
    sb.ok(&[
        "integrate",
        "s3-consumer:s3-credentials",
        "s3-integrator:s3-credentials",
    ]);
    sb.wait_active(2);

    // The plain-key form, in the provider's application databag, exactly these keys.
    let (code, out, err) = sb.exec(
        CONSUMER,
        "relation-get -r $(relation-ids s3-credentials) --app --format json - s3-integrator",
    );
    assert_eq!(code, 0, "{err}");
    let data: BTreeMap<String, String> = serde_json::from_str(&out).expect("relation data");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "access-key",
            "bucket",
            "endpoint",
            "path",
            "region",
            "s3-uri-style",
            "secret-key"
        ]
    );
    let rid = sb.exec(CONSUMER, "relation-ids s3-credentials").1;
    let asked = format!("relation-{}", rid.trim().rsplit(':').next().unwrap());
    assert_eq!(
        data["bucket"], asked,
        "the bucket the v0 requirer asked for"
    );
    let (_, addr, _) = sb.exec(PROVIDER, "unit-get private-address");
    assert_eq!(data["endpoint"], format!("http://{}:3900", addr.trim()));
    assert_eq!(
        (
            data["region"].as_str(),
            data["s3-uri-style"].as_str(),
            data["path"].as_str()
        ),
        ("garage", "path", "etcd/backups")
    );

    // Secrets only in files with final modes.
    assert_eq!(
        sh(&sb, CONSUMER, "stat -c %a /var/lib/s3-consumer/s3.env"),
        "600"
    );
    assert_eq!(
        sh(
            &sb,
            PROVIDER,
            "stat -c %a /var/lib/s3-integrator/key /etc/garage.toml"
        ),
        "600\n600"
    );

    // Put, list and get from the consumer's machine.
    let env = consumer_env(&sb);
    assert_eq!(env["S3_SECRET_KEY"], data["secret-key"]);
    let netns = netns_of(&sb, CONSUMER);
    let dir = sb.home.join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("snapshot.db");
    std::fs::write(&src, b"etcd snapshot stand-in\n".repeat(1000)).unwrap();
    let key = format!("{}/first", env["S3_PATH"]);
    let put = ok(objstore(
        &netns,
        &env,
        &["put", &key, src.to_str().unwrap()],
    ));
    assert!(put.starts_with("23000 "), "{put}");
    let listed = ok(objstore(&netns, &env, &["list", "etcd/"]));
    assert_eq!(listed.trim(), format!("{key} 23000"));
    let back = dir.join("back.db");
    ok(objstore(
        &netns,
        &env,
        &["get", &key, back.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());

    // Wrong credentials, a missing bucket: errors that say what to fix.
    let mut wrong = env.clone();
    wrong.insert("S3_SECRET_KEY".into(), "0".repeat(64));
    let err = failure(
        objstore(&netns, &wrong, &["put", &key, src.to_str().unwrap()]),
        &env,
    );
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(err.contains("check access-key and secret-key"), "{err}");
    let mut missing = env.clone();
    missing.insert("S3_BUCKET".into(), "no-such-bucket".into());
    let err = failure(objstore(&netns, &missing, &["check"]), &env);
    assert!(
        err.contains("bucket `no-such-bucket` does not exist"),
        "{err}"
    );

    // The `bucket` option overrides what the requirer asked for; the store has it at once.
    sb.ok(&["config", "s3-integrator", "bucket=etcd-backups"]);
    let env = sb.eventually(
        "the consumer to see bucket etcd-backups",
        Duration::from_secs(120),
        || {
            let env = consumer_env(&sb);
            (env["S3_BUCKET"] == "etcd-backups").then_some(env)
        },
    );
    ok(objstore(
        &netns,
        &env,
        &["put", &key, src.to_str().unwrap()],
    ));
    let listed = ok(objstore(&netns, &env, &["list", ""]));
    assert_eq!(listed.trim(), format!("{key} 23000"));
}
