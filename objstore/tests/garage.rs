//! The client against a real Garage (a self-hosted S3-compatible store), one single-node server
//! per test on 127.0.0.1, started and stopped by the test. The binary comes from `$GARAGE_BIN`
//! or `scripts/build-garage`'s cache.

#[path = "common/garage_bin.rs"]
mod garage_bin;
use garage_bin::garage_bin;
use objstore::{Config, Error, Store, UrlStyle};
use rusty_s3::{Bucket, Credentials, S3Action};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A single-node Garage with bucket `backups` and a key allowed on it.
struct Garage {
    child: Child,
    dir: PathBuf,
    bin: PathBuf,
    conf: PathBuf,
    endpoint: String,
    key_id: String,
    secret: String,
}

impl Garage {
    fn start(test: &str) -> Garage {
        let bin = garage_bin();
        let dir = std::env::temp_dir().join(format!("objstore-garage-{test}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let conf = dir.join("garage.toml");
        std::fs::write(
            &conf,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.display(),
                secret = random_hex(32)
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .arg("server")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage server starts");
        let mut g = Garage {
            child,
            dir,
            bin,
            conf,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
        };
        g.eventually("garage status", || g.garage(&["status"]).ok());
        let node = g.garage(&["node", "id", "-q"]).unwrap();
        let node = node.trim().split('@').next().unwrap().to_string();
        g.garage(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])
            .unwrap();
        g.garage(&["layout", "apply", "--version", "1"]).unwrap();
        g.garage(&["bucket", "create", "backups"]).unwrap();
        // The secret is read from the tool's output, never passed on a command line.
        let key = g.garage(&["key", "create", "test-key"]).unwrap();
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no `{name}` in `garage key create` output"))
        };
        g.key_id = field("Key ID:");
        g.secret = field("Secret key:");
        g.garage(&[
            "bucket", "allow", "--read", "--write", "--owner", "backups", "--key", "test-key",
        ])
        .unwrap();
        let store = g.store();
        g.eventually("the S3 API", || tokio_run(store.check()).ok());
        g
    }

    fn garage(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn eventually<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "Garage: timed out waiting for {what}; server log:\n{}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn config(&self) -> Config {
        Config {
            endpoint: self.endpoint.clone(),
            bucket: "backups".into(),
            region: "garage".into(),
            url_style: UrlStyle::Path,
            access_key: self.key_id.clone(),
            secret_key: self.secret.clone(),
            ca_chain: vec![],
        }
    }

    fn store(&self) -> Store {
        Store::new(&self.config()).unwrap()
    }

    /// A raw `PUT` that bypasses the client's metadata: an object some other tool wrote.
    fn raw_put(&self, key: &str, body: &[u8], headers: &[(&str, &str)]) -> u16 {
        let bucket = Bucket::new(
            self.endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "backups",
            "garage",
        )
        .unwrap();
        let creds = Credentials::new(self.key_id.clone(), self.secret.clone());
        let mut put = bucket.put_object(Some(&creds), key);
        for (k, v) in headers {
            put.headers_mut().insert(*k, *v);
        }
        let url = put.sign(Duration::from_secs(60));
        // reqwest is built without a default crypto provider; plain http needs none but asks.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut req = reqwest::Client::new().put(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        tokio_run(async { req.send().await.unwrap().status().as_u16() })
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn tokio_run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A file of `len` bytes whose content depends on `seed`.
fn file_of(dir: &Path, name: &str, len: usize, seed: u8) -> PathBuf {
    let path = dir.join(name);
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn objects_round_trip_with_their_metadata_and_list_over_pages() {
    let g = Garage::start("round_trip");
    let store = g.store().with_list_page(2);
    let src = file_of(&g.dir, "small", 3000, 7);
    tokio_run(async {
        let t = store
            .put_file(
                "etcd/snap-1",
                &src,
                &[("etcd-version", "3.4.23"), ("Revision", "42")],
            )
            .await
            .unwrap();
        assert_eq!((t.size, t.parts), (3000, 1));
        assert_eq!(t.sha256, objstore::sha256_file(&src).unwrap());

        let head = store
            .head("etcd/snap-1")
            .await
            .unwrap()
            .expect("the object");
        assert_eq!(head.size, 3000);
        assert_eq!(head.metadata["etcd-version"], "3.4.23");
        assert_eq!(head.metadata["revision"], "42");
        assert_eq!(head.metadata["sha256"], t.sha256);
        assert_eq!(store.head("etcd/none").await.unwrap(), None);

        let dest = g.dir.join("back");
        let got = store.get_file("etcd/snap-1", &dest).await.unwrap();
        assert_eq!(got.sha256, t.sha256);
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());

        for i in 2..=5 {
            store
                .put_file(&format!("etcd/snap-{i}"), &src, &[])
                .await
                .unwrap();
        }
        store.put_file("other/snap-1", &src, &[]).await.unwrap();
        let keys: Vec<String> = store
            .list("etcd/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(
            keys,
            (1..=5)
                .map(|i| format!("etcd/snap-{i}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(store.list("").await.unwrap().len(), 6);

        store.delete("etcd/snap-3").await.unwrap();
        store.delete("etcd/snap-3").await.unwrap();
        assert_eq!(store.list("etcd/").await.unwrap().len(), 4);
        let e = store.get_file("etcd/snap-3", &dest).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    });
}

#[test]
fn a_large_file_goes_up_in_parts_and_comes_back_whole() {
    let g = Garage::start("multipart");
    let store = g.store().with_part_size(objstore::MIN_PART_SIZE);
    let src = file_of(&g.dir, "big", 12 * 1024 * 1024 + 123, 3);
    tokio_run(async {
        let t = store.put_file("big", &src, &[]).await.unwrap();
        assert_eq!(t.parts, 3);
        assert_eq!(t.sha256, objstore::sha256_file(&src).unwrap());
        let dest = g.dir.join("big.back");
        let got = store.get_file("big", &dest).await.unwrap();
        assert_eq!((got.size, got.sha256), (t.size, t.sha256));
    });
}

#[test]
fn wrong_credentials_a_missing_bucket_and_no_store_are_named() {
    let g = Garage::start("errors");
    let src = file_of(&g.dir, "f", 10, 1);
    let err = |cfg: Config| {
        let store = Store::new(&cfg).unwrap();
        tokio_run(async { store.put_file("k", &src, &[]).await.unwrap_err() })
    };
    let secret = g.secret.clone();
    let no_secret = |e: &Error| {
        let m = e.to_string();
        assert!(
            !m.contains(&secret) && !m.contains(&g.key_id),
            "a credential in: {m}"
        );
        m
    };

    let e = err(Config {
        secret_key: "not-the-secret".into(),
        ..g.config()
    });
    let m = no_secret(&e);
    assert!(matches!(e, Error::Credentials { .. }), "{m}");
    assert!(m.contains("check access-key and secret-key"), "{m}");

    let e = err(Config {
        access_key: "GK0000000000000000deadbeef".into(),
        ..g.config()
    });
    assert!(matches!(e, Error::Credentials { .. }), "{}", no_secret(&e));

    let e = err(Config {
        bucket: "no-such-bucket".into(),
        ..g.config()
    });
    let m = no_secret(&e);
    assert!(matches!(e, Error::NoSuchBucket { .. }), "{m}");
    assert!(m.contains("bucket `no-such-bucket` does not exist"), "{m}");
    let store = Store::new(&Config {
        bucket: "no-such-bucket".into(),
        ..g.config()
    })
    .unwrap();
    let e = tokio_run(store.check()).unwrap_err();
    assert!(matches!(e, Error::NoSuchBucket { .. }), "{e}");

    let closed = format!("http://127.0.0.1:{}", free_port());
    let e = err(Config {
        endpoint: closed.clone(),
        ..g.config()
    });
    let m = no_secret(&e);
    assert!(matches!(e, Error::Unreachable { .. }), "{m}");
    assert!(m.contains(&closed) && m.contains("unreachable"), "{m}");
    assert!(!m.contains("X-Amz"), "a signed URL in: {m}");

    // https to a plain-http port: the TLS handshake fails, and the error says where to look.
    let https = g.endpoint.replace("http://", "https://");
    let e = err(Config {
        endpoint: https,
        ..g.config()
    });
    let m = no_secret(&e);
    assert!(matches!(e, Error::Tls { .. }), "{m}");
    assert!(m.contains("tls-ca-chain"), "{m}");

    let e = err(Config {
        region: "us-west-2".into(),
        ..g.config()
    });
    no_secret(&e);
    assert!(
        matches!(e, Error::Region { .. } | Error::Credentials { .. }),
        "{e}"
    );
}

#[test]
fn corrupt_and_foreign_objects_are_refused_and_nothing_is_left_behind() {
    let g = Garage::start("corrupt");
    let store = g.store();
    let dest = g.dir.join("restored");

    // Written by another tool: no SHA-256 metadata.
    assert_eq!(g.raw_put("foreign", b"not a snapshot", &[]), 200);
    let e = tokio_run(store.get_file("foreign", &dest)).unwrap_err();
    assert!(e.to_string().contains("not written by this charm"), "{e}");

    // Content that does not match its SHA-256 (e.g. overwritten in the bucket).
    let wrong = "0".repeat(64);
    assert_eq!(
        g.raw_put("tampered", b"other bytes", &[("x-amz-meta-sha256", &wrong)]),
        200
    );
    let e = tokio_run(store.get_file("tampered", &dest)).unwrap_err();
    assert!(matches!(e, Error::Verify { .. }), "{e}");
    assert!(e.to_string().contains("failed its integrity check"), "{e}");
    assert!(!dest.exists() && !g.dir.join("restored.part").exists());

    // What the upload's Content-MD5 buys: Garage refuses a body that changed on the way.
    let md5_of_other = "1B2M2Y8AsgTpgAmY7PhCfg=="; // MD5 of the empty body
    let status = g.raw_put("garbled", b"garbled", &[("content-md5", md5_of_other)]);
    assert_eq!(
        status, 400,
        "Garage accepted a body whose Content-MD5 differs"
    );
    assert_eq!(tokio_run(store.head("garbled")).unwrap(), None);
}

#[test]
fn virtual_host_addressing_puts_the_bucket_in_the_host_name() {
    let g = Garage::start("virtual_host");
    let port = g.endpoint.rsplit(':').next().unwrap();
    let store = Store::new(&Config {
        endpoint: format!("http://s3.garage.localhost:{port}"),
        url_style: UrlStyle::VirtualHost,
        ..g.config()
    })
    .unwrap()
    .resolve(
        "backups.s3.garage.localhost",
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let src = file_of(&g.dir, "v", 100, 9);
    tokio_run(async {
        store.put_file("v/1", &src, &[]).await.unwrap();
        let keys: Vec<String> = store
            .list("v/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["v/1"]);
    });
    // The same object, seen path-style: the bucket really was taken from the host name.
    assert!(tokio_run(g.store().head("v/1")).unwrap().is_some());
}
