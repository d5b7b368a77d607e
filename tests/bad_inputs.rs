//! Bad inputs (issue 16, point 3; issue 12, point 8 for the maintenance and backup options): one
//! table of wrong config values, garbage relation and leader data, refused action params and
//! unusable resources, each tried on a running 3-unit cluster.
//! For every case: the expected refusal or status, and proof that nothing was applied (every
//! unit's rendered files, etcd's main-process start on every unit and the member list are
//! unchanged) and that nothing was lost (every key written before is still there). Each case
//! sets the bad input, checks, restores the good value and waits for every unit to be active
//! again; the same checks hold after the restore.
//!
//! The `db` cases run with `tests/charms/db-client` related: its own data on the relation is
//! set by hand (it is the consumer's to write), and its access is checked again after the
//! restore; the rest of the cluster must not notice, and no log line may carry a key.
//!
//! A unit whose address changes is its own test, under the fault suite's clients:
//! `tests/address_change.rs`.
//!
//! Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;
use support::{
    built_charm, deploy_consumer, deploy_etcd, etcdctl, run_of, sh, voting_members, workload,
    Sandbox,
};

/// How long a case may take to settle (hooks on every unit).
const SETTLE: &str = "3m";

/// The bad input of a case.
enum Input {
    /// `config etcd k=v…`.
    Config(&'static [(&'static str, &'static str)]),
    /// `attach-resource etcd etcd=<file>`.
    Resource(Tarball),
    /// `run <unit> <action> k=v…` on the leader or a follower.
    Action(Who, &'static str, &'static [&'static str]),
    /// `relation-set` on the peer relation, by a follower on its own data: shell-quoted `k=v`
    /// words (values may be shell expansions).
    PeerData(&'static [(&'static str, &'static str)]),
    /// `leader-set k=v…` by hand on the leader.
    LeaderData(&'static [(&'static str, &'static str)]),
    /// `relation-set` on the `db` relation by the consumer (db-client) on its own data: its
    /// application's databag (`--app`) or its unit's; words as in [`Input::PeerData`].
    DbData(Bag, &'static [(&'static str, &'static str)]),
}

/// Which of the consumer's databags a [`Input::DbData`] case writes.
#[derive(Clone, Copy)]
enum Bag {
    App,
    Unit,
}

/// Which unit an action runs on.
#[derive(Clone, Copy)]
enum Who {
    Leader,
    Follower,
}

/// A resource file made for the test.
#[derive(Clone, Copy)]
enum Tarball {
    /// A path that does not exist.
    Missing,
    /// A zero-byte file (what Juju serves for a resource never uploaded).
    Empty,
    /// The first 64 KiB of the real resource.
    Truncated,
    /// A well-formed .tar.gz of something else.
    Foreign,
    /// A text file named .tar.gz.
    NotGzip,
}

/// What the case must lead to.
enum Expect {
    /// The command itself fails, saying this.
    Refused(&'static str),
    /// Every unit goes `blocked` with a message containing this.
    Blocked(&'static str),
    /// The input is ignored: every unit stays (or comes back) `active`.
    Ignored,
}

struct Case {
    name: &'static str,
    input: Input,
    expect: Expect,
    /// Set when the charm is known not to behave as the case says: the defect.
    known_failure: Option<&'static str>,
}

const fn case(name: &'static str, input: Input, expect: Expect) -> Case {
    Case {
        name,
        input,
        expect,
        known_failure: None,
    }
}

use Expect::{Blocked, Ignored, Refused};
use Input::{Action, Config, DbData, LeaderData, PeerData, Resource};

/// Config, resources and action params.
const CONFIG_AND_ACTIONS: &[Case] = &[
    // Wrong types, refused as `juju config` refuses them.
    case("port not an int", Config(&[("port", "abc")]), Refused("option \"port\" expected int, got \"abc\"")),
    case("heartbeat a float", Config(&[("heartbeat_interval", "1.5")]), Refused("option \"heartbeat_interval\" expected int")),
    case("bind_to_all_interfaces not a boolean", Config(&[("bind_to_all_interfaces", "maybe")]), Refused("option \"bind_to_all_interfaces\" expected boolean")),
    case("tls not a boolean", Config(&[("tls", "yes please")]), Refused("option \"tls\" expected boolean")),
    case("unknown option", Config(&[("data_dir", "/tmp")]), Refused("unknown option \"data_dir\"")),
    // Out of range.
    case("port 0", Config(&[("port", "0")]), Blocked("invalid config port=0: must be an integer from 1 to 65535")),
    case("port 65536", Config(&[("port", "65536")]), Blocked("invalid config port=65536: must be an integer from 1 to 65535")),
    case("port negative", Config(&[("port", "-1")]), Blocked("invalid config port=-1")),
    case("management_port 70000", Config(&[("management_port", "70000")]), Blocked("invalid config management_port=70000")),
    case("management_port equal to port", Config(&[("management_port", "2379")]), Blocked("invalid config management_port=2379: must be different from port")),
    case("port equal to management_port", Config(&[("port", "2380")]), Blocked("invalid config management_port=2380: must be different from port")),
    case("heartbeat too short", Config(&[("heartbeat_interval", "5")]), Blocked("invalid config heartbeat_interval=5: must be an integer from 10 to 5000")),
    case("timeouts out of ratio (heartbeat)", Config(&[("heartbeat_interval", "500")]), Blocked("invalid config election_timeout=1000: must be an integer from 2500 to 50000")),
    case("timeouts out of ratio (election)", Config(&[("election_timeout", "400")]), Blocked("invalid config election_timeout=400: must be an integer from 500 to 50000")),
    case("election timeout too long", Config(&[("election_timeout", "60000")]), Blocked("invalid config election_timeout=60000")),
    case("snapshot_count not a number", Config(&[("snapshot_count", "lots")]), Blocked("invalid config snapshot_count=lots")),
    case("snapshot_count 0", Config(&[("snapshot_count", "0")]), Blocked("invalid config snapshot_count=0")),
    case("quota too small", Config(&[("quota_backend_bytes", "1000")]), Blocked("invalid config quota_backend_bytes=1000: must be 0 (etcd's default, 2 GiB) or")),
    case("quota too large", Config(&[("quota_backend_bytes", "214748364800")]), Blocked("invalid config quota_backend_bytes=214748364800")),
    // Unknown enum values.
    case("unknown log level", Config(&[("log_level", "verbose")]), Blocked("invalid config log_level=verbose: must be one of debug, info, warn, error, panic, fatal")),
    case("unknown compaction mode", Config(&[("auto_compaction_mode", "hourly")]), Blocked("invalid config auto_compaction_mode=hourly: must be one of periodic, revision")),
    case("retention in days", Config(&[("auto_compaction_retention", "1d")]), Blocked("invalid config auto_compaction_retention=1d")),
    case("duration in revision mode", Config(&[("auto_compaction_mode", "revision"), ("auto_compaction_retention", "1h")]), Blocked("invalid config auto_compaction_retention=1h: must be a number of revisions")),
    // Injection attempts: a second YAML key, quotes, shell.
    case("newline in log_level", Config(&[("log_level", "info\nforce-new-cluster: true")]), Blocked("invalid config log_level=info")),
    case("quote and newline in retention", Config(&[("auto_compaction_retention", "1h\"\ninitial-cluster-state: new")]), Blocked("invalid config auto_compaction_retention=1h\"")),
    case("newline in snapshot_count", Config(&[("snapshot_count", "10000\nlistener-metrics-urls: http://0.0.0.0:1")]), Blocked("invalid config snapshot_count=10000")),
    case("shell in log_level", Config(&[("log_level", "info'; touch /tmp/injected; echo '")]), Blocked("invalid config log_level=info'")),
    case("command substitution in retention", Config(&[("auto_compaction_retention", "$(touch /tmp/injected)")]), Blocked("invalid config auto_compaction_retention=$(touch /tmp/injected)")),
    case("spaces around a valid value", Config(&[("log_level", " info ")]), Ignored),
    // Automatic maintenance.
    case("auto_defrag not a boolean", Config(&[("auto_defrag", "sometimes")]), Refused("option \"auto_defrag\" expected boolean")),
    case("auto_nospace_recovery not a boolean", Config(&[("auto_nospace_recovery", "on")]), Refused("option \"auto_nospace_recovery\" expected boolean")),
    case("defrag_free_percent not an int", Config(&[("defrag_free_percent", "half")]), Refused("option \"defrag_free_percent\" expected int")),
    case("defrag_free_percent over 100", Config(&[("defrag_free_percent", "101")]), Blocked("invalid config defrag_free_percent=101: must be an integer from 0 to 100")),
    case("defrag_free_percent negative", Config(&[("defrag_free_percent", "-5")]), Blocked("invalid config defrag_free_percent=-5: must be an integer from 0 to 100")),
    case("defrag_free_bytes a float", Config(&[("defrag_free_bytes", "1.5")]), Refused("option \"defrag_free_bytes\" expected int")),
    case("defrag_free_bytes over 100 GiB", Config(&[("defrag_free_bytes", "214748364800")]), Blocked("invalid config defrag_free_bytes=214748364800: must be an integer from 0 to 107374182400")),
    case("defrag_interval over a week", Config(&[("defrag_interval", "10081")]), Blocked("invalid config defrag_interval=10081: must be an integer from 0 to 10080")),
    case("defrag_interval negative", Config(&[("defrag_interval", "-1")]), Blocked("invalid config defrag_interval=-1: must be an integer from 0 to 10080")),
    // Scheduled backups.
    case("backup_schedule garbage", Config(&[("backup_schedule", "every tuesday")]), Blocked("invalid config backup_schedule=every tuesday: must be empty (no scheduled backups), hourly, daily, weekly, or a period such as 30m, 6h or 1d (5m to 31d)")),
    case("backup_schedule too often", Config(&[("backup_schedule", "1m")]), Blocked("invalid config backup_schedule=1m: must be empty (no scheduled backups)")),
    case("backup_schedule too rare", Config(&[("backup_schedule", "32d")]), Blocked("invalid config backup_schedule=32d: must be empty (no scheduled backups)")),
    case("backup_schedule ending in a multi-byte char", Config(&[("backup_schedule", "30m\u{e9}")]), Blocked("invalid config backup_schedule=30m\u{e9}: must be empty")),
    case("backup_schedule with a newline", Config(&[("backup_schedule", "daily\nOnCalendar=minutely")]), Blocked("invalid config backup_schedule=daily")),
    case("backup_retention_count not an int", Config(&[("backup_retention_count", "ten")]), Refused("option \"backup_retention_count\" expected int")),
    case("backup_retention_count too many", Config(&[("backup_retention_count", "10001")]), Blocked("invalid config backup_retention_count=10001: must be an integer from 0 to 10000")),
    case("backup_retention_count negative", Config(&[("backup_retention_count", "-1")]), Blocked("invalid config backup_retention_count=-1: must be an integer from 0 to 10000")),
    case("backup_retention_days too long", Config(&[("backup_retention_days", "36501")]), Blocked("invalid config backup_retention_days=36501: must be an integer from 0 to 36500")),
    case("backup_retention_days a float", Config(&[("backup_retention_days", "7.5")]), Refused("option \"backup_retention_days\" expected int")),
    // Resources.
    case("resource file missing", Resource(Tarball::Missing), Refused("no-such-etcd.tar.gz: check that the file or directory exists")),
    case("resource empty", Resource(Tarball::Empty), Ignored),
    case("resource truncated", Resource(Tarball::Truncated), Blocked("etcd resource refused: not an etcd release")),
    case("resource of something else", Resource(Tarball::Foreign), Blocked("etcd resource refused: not an etcd release")),
    case("resource not gzip", Resource(Tarball::NotGzip), Blocked("etcd resource refused: not an etcd release")),
    // Action params: unknown, wrong type, out of range, paths outside what an action may touch.
    case("unknown action", Action(Who::Leader, "destroy-cluster", &[]), Refused("action \"destroy-cluster\" not defined")),
    case("unknown param", Action(Who::Leader, "snapshot", &["tagret=/srv"]), Refused("additional property \"tagret\" is not allowed")),
    case("revision not an integer", Action(Who::Leader, "compact", &["revision=abc"]), Refused("revision: expected integer")),
    case("revision 0", Action(Who::Leader, "compact", &["revision=0"]), Refused("revision: must be greater than or equal to 1")),
    case("revision in the future", Action(Who::Leader, "compact", &["revision=999999999"]), Refused("is in the future")),
    case("all not a boolean", Action(Who::Follower, "defrag", &["all=3"]), Refused("all: expected boolean")),
    case("unknown alarm", Action(Who::Follower, "alarm-disarm", &["alarm=everything"]), Refused("alarm: must be one of")),
    case("force missing", Action(Who::Leader, "rebuild-cluster", &[]), Refused("force is required")),
    case("force false", Action(Who::Leader, "rebuild-cluster", &["force=false"]), Refused("run it with force=true")),
    case("snapshot target relative", Action(Who::Follower, "snapshot", &["target=backups"]), Refused("must be an absolute path")),
    case("snapshot target with ..", Action(Who::Follower, "snapshot", &["target=/srv/../var/lib/etcd"]), Refused("must not contain `..`")),
    case("snapshot target in the data dir", Action(Who::Follower, "snapshot", &["target=/var/lib/etcd/data/member"]), Refused("is inside etcd")),
    case("snapshot target not creatable", Action(Who::Follower, "snapshot", &["target=/proc/snapshots"]), Refused("cannot create /proc/snapshots")),
    case("restore on a follower", Action(Who::Follower, "restore", &["path=/tmp/x.db"]), Refused("runs on the leader unit only")),
    case("rotate-ca on a follower", Action(Who::Follower, "rotate-ca", &[]), Refused("runs on the leader unit only")),
    case("restore path relative", Action(Who::Leader, "restore", &["path=x.db"]), Refused("path \"x.db\" must be absolute")),
    case("restore path with ..", Action(Who::Leader, "restore", &["path=/var/lib/etcd-charm/../../../etc/passwd"]), Refused("is not an etcd v3 snapshot")),
    case("restore a system file", Action(Who::Leader, "restore", &["path=/etc/passwd"]), Refused("is not an etcd v3 snapshot")),
    case("restore the live database", Action(Who::Leader, "restore", &["path=/var/lib/etcd/data/member/snap/db"]), Refused("has no integrity hash")),
    case("restore sha256 not hex", Action(Who::Leader, "restore", &["path=/root/good.db", "sha256=xyz"]), Refused("is not a sha256 (64 hex digits)")),
];

/// Peer relation data and leader data edited by hand.
const DATA: &[Case] = &[
    // A follower's own peer data: garbage, missing keys, huge values, another unit's values.
    case(
        "peer-url garbage",
        PeerData(&[("peer-url", "'not a url'")]),
        Ignored,
    ),
    case("peer-url removed", PeerData(&[("peer-url", "")]), Ignored),
    case(
        "peer-url with a newline",
        PeerData(&[(
            "peer-url",
            "\"$(printf 'http://10.0.0.1:2380\\nhttp://10.0.0.2:2380')\"",
        )]),
        Ignored,
    ),
    case(
        "peer-url of another unit",
        PeerData(&[("peer-url", "OTHER_PEER_URL")]),
        Ignored,
    ),
    case(
        "client-url garbage",
        PeerData(&[("client-url", "'http://:'")]),
        Ignored,
    ),
    case(
        "client-url huge",
        PeerData(&[(
            "client-url",
            "\"http://$(head -c 100000 /dev/zero | tr '\\0' a):2379\"",
        )]),
        Ignored,
    ),
    case("started garbage", PeerData(&[("started", "zzz")]), Ignored),
    case(
        "started as another member",
        PeerData(&[("started", "OTHER_MEMBER_ID")]),
        Ignored,
    ),
    case(
        "restart-request garbage",
        PeerData(&[("restart-request", "'\"; rm -rf /'")]),
        Ignored,
    ),
    case(
        "etcd-version garbage",
        PeerData(&[("etcd-version", "0.0.1-evil")]),
        Ignored,
    ),
    case(
        "every key removed",
        PeerData(&[
            ("peer-url", ""),
            ("client-url", ""),
            ("started", ""),
            ("etcd-version", ""),
        ]),
        Ignored,
    ),
    case(
        "huge unknown key",
        PeerData(&[("junk", "\"$(head -c 100000 /dev/zero | tr '\\0' x)\"")]),
        Ignored,
    ),
    // Leader data edited by hand on the leader.
    case(
        "restart granted to a unit that does not exist",
        LeaderData(&[("restart-granted", "etcd/9")]),
        Ignored,
    ),
    case(
        "restart granted to a follower that did not ask",
        LeaderData(&[("restart-granted", "FOLLOWER")]),
        Ignored,
    ),
    case(
        "joining entry garbage",
        LeaderData(&[
            ("joining-unit", "etcd/7"),
            ("joining-member-id", "zz"),
            ("joining-initial-cluster", "garbage"),
        ]),
        Ignored,
    ),
    case(
        "joining entry for a unit that does not exist",
        LeaderData(&[
            ("joining-unit", "etcd/7"),
            ("joining-member-id", "1234abcd"),
            ("joining-initial-cluster", "etcd7=http://10.0.0.7:2380"),
        ]),
        Ignored,
    ),
    case(
        "endpoints garbage",
        LeaderData(&[("endpoints", "'http://evil:1,,'")]),
        Ignored,
    ),
    case(
        "cluster token changed",
        LeaderData(&[("cluster-token", "forged")]),
        Ignored,
    ),
    case(
        "bootstrap unit changed",
        LeaderData(&[("bootstrap-unit", "FOLLOWER")]),
        Ignored,
    ),
    case(
        "etcd-version garbage",
        LeaderData(&[("etcd-version", "not-a-version")]),
        Ignored,
    ),
    case(
        "tls record garbage",
        LeaderData(&[("tls", "maybe")]),
        Ignored,
    ),
    case(
        "tls record flipped",
        LeaderData(&[("tls", "true")]),
        Ignored,
    ),
    case(
        "tls CA garbage",
        LeaderData(&[("tls-ca", "'-----BEGIN garbage'")]),
        Ignored,
    ),
];

/// The consumer's own data on `db`, on a cluster with db-client related (a table of its own:
/// with the consumer in the model, `tls CA garbage` above once ended with the units'
/// certificates signed again, which that case counts as changed leader data).
const DB_DATA: &[Case] = &[
    // The consumer's own data on `db` (the etcd_client interface defines only `prefix`, in
    // the application databag): a prefix etcd cannot grant is logged (its length only) and
    // the consumer gets no access until it asks for a valid one; one it can grant is granted
    // literally (etcd keys are bytes: `..` and quotes mean nothing to it); keys the interface
    // does not define are ignored.
    case(
        "db prefix garbage",
        DbData(Bag::App, &[("prefix", "\"$(printf 'a\\001\\033[2Jb')\"")]),
        Ignored,
    ),
    case(
        "db prefix huge",
        DbData(
            Bag::App,
            &[("prefix", "\"$(head -c 100000 /dev/zero | tr '\\0' p)\"")],
        ),
        Ignored,
    ),
    case(
        "db prefix with a newline",
        DbData(Bag::App, &[("prefix", "\"$(printf 'app/\\nroot')\"")]),
        Ignored,
    ),
    case(
        "db prefix with a quote",
        DbData(Bag::App, &[("prefix", "'app\"/'")]),
        Ignored,
    ),
    case(
        "db prefix with ..",
        DbData(Bag::App, &[("prefix", "../../")]),
        Ignored,
    ),
    case(
        "db prefix as JSON",
        DbData(Bag::App, &[("prefix", "'{\"prefix\": \"a/\"}'")]),
        Ignored,
    ),
    case(
        "db prefix as a JSON list",
        DbData(Bag::App, &[("prefix", "'[\"a/\",\"b/\"]'")]),
        Ignored,
    ),
    case(
        "db keys the interface does not define (app)",
        DbData(
            Bag::App,
            &[
                ("connection_string", "'http://evil:1'"),
                ("client_key", "'-----BEGIN forged'"),
                ("junk", "\"$(head -c 100000 /dev/zero | tr '\\0' x)\""),
            ],
        ),
        Ignored,
    ),
    case(
        "db keys the interface does not define (unit)",
        DbData(
            Bag::Unit,
            &[
                ("prefix", "'{\"a\": 1}'"),
                ("password", "forged"),
                ("private-address", "'$(touch /tmp/injected)'"),
            ],
        ),
        Ignored,
    ),
];

/// What the charm applied on a unit: its rendered files and etcd's main-process start.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Applied {
    files: String,
    started: u64,
}

/// The whole cluster's applied state: every unit's, and the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cluster {
    units: Vec<(String, Applied)>,
    members: String,
}

fn cluster(sb: &Sandbox, units: &[String]) -> Cluster {
    let units = units
        .iter()
        .map(|u| {
            let files = sh(
                sb,
                u,
                "cat /etc/etcd/etcd.conf.yml /etc/systemd/system/etcd.service /etc/etcd/etcdctl.env",
            );
            let started = run_of(sb, u).started;
            (u.clone(), Applied { files, started })
        })
        .collect();
    Cluster {
        units,
        members: support::try_sh(sb, "etcd/0", "etcdctl member list --command-timeout=5s")
            .unwrap_or_else(|e| e),
    }
}

/// Where the case differs from `before`, if anywhere.
fn unchanged(before: &Cluster, now: &Cluster) -> Result<(), String> {
    for ((u, a), (_, b)) in before.units.iter().zip(&now.units) {
        if a.started != b.started {
            return Err(format!(
                "etcd restarted on {u}: {} → {}",
                a.started, b.started
            ));
        }
        if a.files != b.files {
            return Err(format!(
                "rendered files changed on {u}:\n{}\n---\n{}",
                a.files, b.files
            ));
        }
    }
    if before.members != now.members {
        return Err(format!(
            "member list changed:\n{}\n---\n{}",
            before.members, now.members
        ));
    }
    Ok(())
}

/// Keys written so far, by case: each is still on every member (serializable reads).
fn data_kept(sb: &Sandbox, units: &[String], written: usize) -> Result<(), String> {
    for u in units {
        let (code, out, err) = etcdctl(sb, u, "get bad/ --prefix --keys-only --consistency=s");
        let n = out.lines().filter(|l| !l.trim().is_empty()).count();
        if code != 0 || n != written {
            return Err(format!(
                "{u} holds {n} of {written} keys written before: {out}{err}"
            ));
        }
    }
    Ok(())
}

/// `sandbox wait-for` for every unit (`n` in all): Ok once all are idle with `status`.
fn settle(sb: &Sandbox, status: &str, n: usize) -> Result<(), String> {
    let n = n.to_string();
    let out = sb.run(&[
        "wait-for",
        "--status",
        status,
        "--timeout",
        SETTLE,
        "--units",
        &n,
    ]);
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "not every unit {status}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sb.ok(&["status"])
        )),
    }
}

/// The shared cluster of one test function and what the cases refer to.
struct Bench<'a> {
    sb: &'a Sandbox,
    units: Vec<String>,
    leader: String,
    follower: String,
    /// The follower's peer relation id.
    peer_rid: String,
    /// Resource files, in a directory of this test run.
    files: PathBuf,
    /// The consumer's `db` relation id, when db-client is related (its unit is [`CONSUMER`]).
    db_rid: Option<String>,
}

/// The consumer unit of the `db` cases.
const CONSUMER: &str = "db-client/0";

impl Bench<'_> {
    /// [`settle`] for every unit of the model (the consumer's too).
    fn settle(&self, status: &str) -> Result<(), String> {
        settle(
            self.sb,
            status,
            self.units.len() + usize::from(self.db_rid.is_some()),
        )
    }

    /// `-r <db relation>` and, for the application's databag, `--app`.
    fn db_args(&self, bag: Bag) -> String {
        let rid = self
            .db_rid
            .as_deref()
            .expect("a db case needs db-client related");
        match bag {
            Bag::App => format!("-r {rid} --app"),
            Bag::Unit => format!("-r {rid}"),
        }
    }

    /// The consumer's own databag `bag`, as it reads it back.
    fn db_data(&self, bag: Bag) -> Map<String, Value> {
        let who = match bag {
            Bag::App => "db-client",
            Bag::Unit => CONSUMER,
        };
        let args = format!("{} - {who}", self.db_args(bag));
        self.settings(CONSUMER, "relation-get", &args)
    }

    /// The consumer reads and writes through its relation's URLs and credentials again, and
    /// no log line carries key material.
    fn consumer_ok(&self) -> Result<(), String> {
        let put = "cs=$(cat /var/lib/db-client/connection_string) && t=/var/lib/db-client/tls && \
            ETCDCTL_API=3 etcdctl --endpoints=\"$cs\" --cacert=$t/client_ca.pem \
            --cert=$t/client_cert.pem --key=$t/client_key.pem --command-timeout=5s \
            put db-client/probe ok";
        let mut last = String::new();
        let works = (0..40).any(|_| {
            let (code, out, err) = self.sb.ssh(CONSUMER, put);
            last = format!("{out}{err}");
            code == 0 || {
                std::thread::sleep(Duration::from_secs(3));
                false
            }
        });
        if !works {
            return Err(format!(
                "the consumer has no access after the restore: {last}"
            ));
        }
        let log = self.sb.ok(&["debug-log", "--replay", "--no-tail"]);
        match log
            .lines()
            .find(|l| l.contains("PRIVATE KEY") || l.contains("BEGIN forged"))
        {
            Some(l) => Err(format!("a key in the log: {}", &l[..l.len().min(200)])),
            None => Ok(()),
        }
    }

    fn unit(&self, who: Who) -> &str {
        match who {
            Who::Leader => &self.leader,
            Who::Follower => &self.follower,
        }
    }

    /// A value with the placeholders for other units filled in.
    fn fill(&self, v: &str) -> String {
        let other = self
            .units
            .iter()
            .find(|u| **u != self.follower && **u != self.leader);
        let other = other.unwrap_or(&self.leader);
        let member = |name: &str| -> String {
            let list = sh(self.sb, "etcd/0", "etcdctl member list");
            let line = list.lines().find(|l| l.split(", ").nth(2) == Some(name));
            line.and_then(|l| l.split(", ").next())
                .unwrap_or_default()
                .to_string()
        };
        match v {
            "FOLLOWER" => self.follower.clone(),
            "OTHER_PEER_URL" => {
                let get = format!("relation-get -r {} peer-url {other}", self.peer_rid);
                self.sb.exec(&self.follower, &get).1.trim().to_string()
            }
            "OTHER_MEMBER_ID" => member(&other.replace('/', "")),
            _ => v.to_string(),
        }
    }

    /// Sets a case's bad input; the command's failure text when it was refused.
    fn apply(&self, input: &Input) -> Result<(), String> {
        let out = match input {
            Config(kv) => {
                let mut args = vec!["config".to_string(), "etcd".into()];
                args.extend(kv.iter().map(|(k, v)| format!("{k}={v}")));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.sb.run(&args)
            }
            Resource(t) => {
                let path = self.tarball(*t);
                let res = format!("etcd={}", path.display());
                self.sb.run(&["attach-resource", "etcd", &res])
            }
            Action(who, action, params) => {
                let mut args = vec!["run", self.unit(*who), action];
                args.extend_from_slice(params);
                args.extend_from_slice(&["--wait", "2m"]);
                self.sb.run(&args)
            }
            PeerData(kv) => return self.hook_tool(&self.follower, "relation-set", kv),
            LeaderData(kv) => return self.hook_tool(&self.leader, "leader-set", kv),
            DbData(bag, kv) => {
                let tool = format!("relation-set {}", self.db_args(*bag));
                return self.hook_tool(CONSUMER, &tool, kv);
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success().then_some(()).ok_or(text)
    }

    /// Runs `relation-set -r <peer relation>` or `leader-set` with `kv` on `unit`.
    fn hook_tool(&self, unit: &str, tool: &str, kv: &[(&str, &str)]) -> Result<(), String> {
        let words: Vec<String> = kv
            .iter()
            .map(|(k, v)| format!("{k}={}", self.fill(v)))
            .collect();
        // `relation-set` alone is on the peer relation; a tool given with its own `-r` keeps it.
        let rid = match tool {
            "relation-set" => format!(" -r {}", self.peer_rid),
            _ => String::new(),
        };
        let cmd = format!("{tool}{rid} {}", words.join(" "));
        let (code, out, err) = self.sb.exec(unit, &cmd);
        (code == 0).then_some(()).ok_or(format!("{out}{err}"))
    }

    /// The settings `tool --format=json args` reads back on `unit`.
    fn settings(&self, unit: &str, tool: &str, args: &str) -> Map<String, Value> {
        let get = format!("{tool} --format=json {args}");
        let (code, out, err) = self.sb.exec(unit, &get);
        assert_eq!(code, 0, "{get} on {unit}: {err}");
        serde_json::from_str(&out).unwrap_or_default()
    }

    /// Puts the good values back (`db` the consumer's databag of a `db` case, as it was).
    fn restore(
        &self,
        input: &Input,
        peer: &Map<String, Value>,
        leader: &Map<String, Value>,
        db: &Map<String, Value>,
    ) {
        let back = |kv: &[(&str, &str)], was: &Map<String, Value>| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, _)| {
                    let v = was.get(*k).and_then(Value::as_str).unwrap_or("");
                    (k.to_string(), format!("'{v}'"))
                })
                .collect()
        };
        let set = |unit: &str, tool: &str, kv: Vec<(String, String)>| {
            let kv: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            self.hook_tool(unit, tool, &kv)
                .unwrap_or_else(|e| panic!("restoring with {tool}: {e}"));
        };
        match input {
            Config(kv) => {
                let keys: Vec<&str> = kv.iter().map(|(k, _)| *k).collect();
                let _ = self.sb.run(&["config", "etcd", "--reset", &keys.join(",")]);
            }
            Resource(_) => {
                let res = format!("etcd={}", built_charm().1.display());
                self.sb.ok(&["attach-resource", "etcd", &res]);
            }
            Action(..) => {}
            PeerData(kv) => set(&self.follower, "relation-set", back(kv, peer)),
            LeaderData(kv) => set(&self.leader, "leader-set", back(kv, leader)),
            DbData(bag, kv) => {
                let tool = format!("relation-set {}", self.db_args(*bag));
                set(CONSUMER, &tool, back(kv, db))
            }
        }
    }

    /// Makes the file of a resource case.
    fn tarball(&self, t: Tarball) -> PathBuf {
        let f = |name: &str| self.files.join(name);
        let real = built_charm().1;
        match t {
            Tarball::Missing => f("no-such-etcd.tar.gz"),
            Tarball::Empty => write(f("empty.tar.gz"), b""),
            Tarball::Truncated => {
                let bytes = std::fs::read(&real).expect("the etcd resource");
                write(f("truncated.tar.gz"), &bytes[..bytes.len().min(64 * 1024)])
            }
            Tarball::Foreign => {
                let dir = f("foreign");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("README"), "not etcd\n").unwrap();
                let out = f("foreign.tar.gz");
                let ok = std::process::Command::new("tar")
                    .arg("-czf")
                    .arg(&out)
                    .arg("-C")
                    .arg(&dir)
                    .arg("README")
                    .status()
                    .unwrap();
                assert!(ok.success(), "tar");
                out
            }
            Tarball::NotGzip => write(f("text.tar.gz"), b"hello\n"),
        }
    }

    /// Runs one case: bad input, its expected outcome, nothing applied, restore, nothing lost.
    fn run(&self, i: usize, c: &Case) -> Result<(), String> {
        let sb = self.sb;
        sh(sb, "etcd/0", &format!("etcdctl put bad/{i:03} before"));
        let before = cluster(sb, &self.units);
        let own = format!("-r {} - {}", self.peer_rid, self.follower);
        let peer = self.settings(&self.follower, "relation-get", &own);
        let leader = self.settings(&self.leader, "leader-get", "");
        let db = match &c.input {
            DbData(bag, _) => self.db_data(*bag),
            _ => Map::new(),
        };
        let applied = self.apply(&c.input);
        let outcome = match (&c.expect, applied) {
            (Refused(want), Err(text)) if text.contains(want) => {
                let line = text.lines().find(|l| l.contains(want)).unwrap_or_default();
                eprintln!("  refused: {}", line.trim());
                self.settle("active")
            }
            (Refused(want), Err(text)) => Err(format!("refused without {want:?}: {text}")),
            (Refused(_), Ok(())) => Err("accepted".into()),
            (_, Err(text)) => Err(format!("refused: {text}")),
            (Blocked(want), Ok(())) => self.settle("blocked").and_then(|()| {
                for u in &self.units {
                    let (state, message) = workload(sb, u);
                    if state != "blocked" || !message.contains(want) {
                        return Err(format!("{u}: {state}: {message}; want {want:?}"));
                    }
                }
                Ok(())
            }),
            (Ignored, Ok(())) => self.settle("active"),
        };
        let during = outcome.and_then(|()| unchanged(&before, &cluster(sb, &self.units)));
        self.restore(&c.input, &peer, &leader, &db);
        self.settle("active")
            .unwrap_or_else(|e| panic!("{}: after the restore: {e}", c.name));
        let after = unchanged(&before, &cluster(sb, &self.units))
            .and_then(|()| data_kept(sb, &self.units, i + 1))
            .and_then(|()| {
                let now = self.settings(&self.leader, "leader-get", "");
                (now == leader)
                    .then_some(())
                    .ok_or(format!("leader data not back: {leader:?} → {now:?}"))
            })
            .and_then(|()| match &c.input {
                DbData(..) => self.consumer_ok(),
                _ => Ok(()),
            });
        during.and(after)
    }
}

fn write(path: PathBuf, bytes: &[u8]) -> PathBuf {
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Deploys 3 units (and with `consumer` db-client, related on `db`) and runs `cases` on them,
/// then `more` (given how many `bad/` keys were written); panics listing every case that did
/// not behave as its row says (known failures are reported, not counted).
fn run_table(test: &str, cases: &[Case], consumer: bool, more: impl FnOnce(&Bench, usize)) {
    let sb = Sandbox::new(test);
    deploy_etcd(&sb, 3, &[]);
    let db_rid = consumer.then(|| {
        deploy_consumer(&sb, "db-client", "etcdctl");
        sb.ok(&["integrate", "db-client:db", "etcd:db"]);
        sb.wait_active(4);
        let (code, rid, err) = sb.exec(CONSUMER, "relation-ids db");
        assert_eq!(code, 0, "relation-ids db: {err}");
        rid.trim().to_string()
    });
    sb.wait_active(3 + usize::from(consumer));
    let units = sb.units("etcd");
    let leader = sb.leader("etcd").expect("a leader");
    let follower = units.iter().find(|u| **u != leader).unwrap().clone();
    let (code, rid, err) = sb.exec(&follower, "relation-ids cluster");
    assert_eq!(code, 0, "relation-ids: {err}");
    // A good snapshot, for the cases whose params are bad but whose file is not.
    sh(
        &sb,
        &leader,
        "etcdctl snapshot save /root/good.db >/dev/null",
    );
    let files = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    let bench = Bench {
        sb: &sb,
        units,
        leader,
        follower,
        peer_rid: rid.trim().to_string(),
        files,
        db_rid,
    };
    // `BAD_INPUTS_CASES=<text>,<text>…` runs only the cases whose name contains one of them.
    let only = std::env::var("BAD_INPUTS_CASES").unwrap_or_default();
    let mut failed = vec![];
    for (i, c) in cases.iter().enumerate() {
        if !only.split(',').any(|w| c.name.contains(w)) {
            // Its key still, as the later cases count them.
            sh(&sb, "etcd/0", &format!("etcdctl put bad/{i:03} before"));
            continue;
        }
        let result = bench.run(i, c);
        match (&result, c.known_failure) {
            (Ok(()), None) => eprintln!("ok: {}", c.name),
            (Ok(()), Some(defect)) => eprintln!("known failure now passes: {} ({defect})", c.name),
            (Err(e), Some(defect)) => eprintln!("known failure: {} ({defect}): {e}", c.name),
            (Err(e), None) => {
                eprintln!("FAILED: {}: {e}", c.name);
                failed.push(format!("{}: {e}", c.name));
            }
        }
    }
    more(&bench, cases.len());
    for u in &bench.units {
        assert_eq!(
            sb.ssh(u, "test -e /tmp/injected").0,
            1,
            "an injected command ran on {u}"
        );
    }
    let _ = std::fs::remove_dir_all(&bench.files);
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let voters = voting_members(&sh(&sb, "etcd/0", "etcdctl member list"));
    assert_eq!(voters.len(), 3, "{voters:?}");
}

#[test]
fn bad_config_resources_and_actions() {
    run_table("bad_inputs_config", CONFIG_AND_ACTIONS, false, |_, _| {});
}

#[test]
fn bad_relation_and_leader_data() {
    run_table("bad_inputs_data", DATA, false, removed_member_data_dir);
}

#[test]
fn bad_db_relation_data() {
    run_table("bad_inputs_db", DB_DATA, true, |_, _| {});
}

/// A data directory left by a removed member: the follower's member is removed from the cluster
/// behind the charm's back (its data dir stays). The charm must notice, move the old data dir
/// aside (never delete it) and rejoin as a new member, with every key written before readable
/// on it.
fn removed_member_data_dir(b: &Bench, written: usize) {
    let sb = b.sb;
    let name = b.follower.replace('/', "");
    let member_id = |list: &str| -> Option<String> {
        let line = list
            .lines()
            .find(|l| l.split(", ").nth(2) == Some(name.as_str()))?;
        line.split(", ").next().map(String::from)
    };
    let old = member_id(&sh(sb, &b.leader, "etcdctl member list")).expect("the follower's member");
    sh(sb, &b.leader, &format!("etcdctl member remove {old}"));
    sb.eventually(
        "the removed member back as a new one",
        Duration::from_secs(300),
        || {
            let list = sh(sb, &b.leader, "etcdctl member list");
            let new = member_id(&list)?;
            (new != old && voting_members(&list).len() == 3).then_some(())
        },
    );
    b.settle("active")
        .unwrap_or_else(|e| panic!("after the rejoin: {e}"));
    // Set aside beside the data dir: on the `data` volume when the unit has one (the default),
    // else on the root disk.
    let aside = sh(
        sb,
        &b.follower,
        "ls -d /var/lib/etcd/storage/data.removed-*/member /var/lib/etcd/data.removed-*/member 2>/dev/null || true",
    );
    assert!(!aside.is_empty(), "the old data dir was not kept aside");
    data_kept(sb, &b.units, written).unwrap_or_else(|e| panic!("after the rejoin: {e}"));
    eprintln!("ok: data dir of a removed member");
}
