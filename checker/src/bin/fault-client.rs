//! `fault-client`: bounded clients of an etcd cluster for the fault suite, run on a machine of
//! the model against the endpoints an application gets from the `db` relation.
//!
//! `fault-client run` runs several clients (puts, linearizable gets, compare-and-swap
//! transactions, each on one of a few keys) and a watch, for at most `--max-ops` operations and
//! `--seconds`, or until `--stop-file` appears; it writes the history as JSON.
//! `fault-client verify` reads each member's change log of the run's keys (from the compacted
//! revision when the history below was compacted) and its final values, judges the history
//! (linearizability, revisions, watch, acknowledged writes on every member) and prints the
//! report as JSON; it exits 0 whatever the verdict. `fault-client check` judges a history alone.

use anyhow::{bail, Context};
use checker::history::{Call, Change, History, Log, Op, Outcome};
use checker::report::judge;
use clap::{Parser, Subcommand};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    TlsOptions, Txn, TxnOp, WatchOptions,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Parser)]
#[command(about = "Bounded etcd clients for the fault suite, and the checker of their histories")]
struct Cli {
    /// A directory with `client_ca.pem`, `client_cert.pem` and `client_key.pem` (the `db`
    /// relation's TLS data, as db-client writes it): used for `https://` endpoints.
    #[arg(long, global = true)]
    tls_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The TLS options from `--tls-dir`, set once in `main`.
static TLS: OnceLock<Option<TlsOptions>> = OnceLock::new();

/// The CA and client identity in `dir`.
fn tls_options(dir: &Path) -> anyhow::Result<TlsOptions> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("read {}", path.display()))
    };
    let ca = Certificate::from_pem(read("client_ca.pem")?);
    let identity = Identity::from_pem(read("client_cert.pem")?, read("client_key.pem")?);
    Ok(TlsOptions::new().ca_certificate(ca).identity(identity))
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the clients and the watch; write the history.
    Run(RunArgs),
    /// Read every member's changes and print the report on the history (JSON).
    Verify {
        /// The client URLs of the members to check, comma separated.
        #[arg(long)]
        endpoints: String,
        /// The history `run` wrote.
        #[arg(long)]
        history: PathBuf,
    },
    /// Judge a history alone, without the members (e.g. one copied off a machine); print the
    /// report (JSON).
    Check {
        /// The history `run` wrote.
        #[arg(long)]
        history: PathBuf,
    },
}

/// What `run` runs.
#[derive(clap::Args)]
struct RunArgs {
    /// The cluster's client URLs, comma separated (the db relation's connection_string).
    #[arg(long)]
    endpoints: String,
    /// Where to write the history (JSON), once the run is over.
    #[arg(long)]
    out: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Keys the clients share.
    #[arg(long, default_value_t = 8)]
    keys: u32,
    /// The most operations in all.
    #[arg(long, default_value_t = 3000)]
    max_ops: u64,
    /// The longest the clients run.
    #[arg(long, default_value_t = 90)]
    seconds: u64,
    /// Operations a second, all clients together.
    #[arg(long, default_value_t = 30)]
    rate: u32,
    /// Stop early once this file exists.
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// The prefix of every key the run writes.
    #[arg(long, default_value = "fault/")]
    prefix: String,
}

/// etcd's error for a write refused while a member's database is at its quota.
const NOSPACE: &str = "database space exceeded";
/// How long one operation may take before it is given up on.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run may wait for the cluster (a final revision, a watch catching up).
const SETTLE: Duration = Duration::from_secs(60);

fn endpoints(s: &str) -> Vec<String> {
    s.split(',')
        .map(|e| e.trim().trim_end_matches('/').to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

/// A client of the cluster; with `require_leader`, a member that has lost its leader refuses
/// requests at once ("no leader") instead of letting them time out, as etcd's own clients ask
/// for with `WithRequireLeader`.
async fn connect(eps: &[String], require_leader: bool) -> Result<Client, etcd_client::Error> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(OP_TIMEOUT)
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(require_leader);
    let opts = match TLS.get().cloned().flatten() {
        Some(tls) if eps.iter().any(|e| e.starts_with("https://")) => opts.with_tls(tls),
        _ => opts,
    };
    Client::connect(eps, Some(opts)).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs one call; a read that did not complete failed, a write that did not may have happened.
async fn invoke(client: &mut Client, call: &Call) -> Outcome {
    let res = tokio::time::timeout(OP_TIMEOUT, async {
        match call {
            Call::Put { key, value } => {
                let r = client.put(key.as_str(), value.as_str(), None).await?;
                Ok((r.header().map_or(0, |h| h.revision()), None, false))
            }
            Call::Get { key } => {
                let r = client.get(key.as_str(), None).await?;
                let value = r.kvs().first().map(|kv| text(kv.value()));
                Ok((r.header().map_or(0, |h| h.revision()), value, false))
            }
            Call::Cas { key, expected, new } => {
                let cmp = match expected {
                    Some(v) => Compare::value(key.as_str(), CompareOp::Equal, v.as_str()),
                    None => Compare::version(key.as_str(), CompareOp::Equal, 0),
                };
                let txn =
                    Txn::new()
                        .when([cmp])
                        .and_then([TxnOp::put(key.as_str(), new.as_str(), None)]);
                let r = client.txn(txn).await?;
                Ok((r.header().map_or(0, |h| h.revision()), None, r.succeeded()))
            }
        }
    })
    .await;
    let res: Result<_, etcd_client::Error> = match res {
        Ok(r) => r,
        Err(_) => {
            return if matches!(call, Call::Get { .. }) {
                Outcome::Failed {
                    error: "timed out".into(),
                }
            } else {
                Outcome::Indeterminate {
                    error: "timed out".into(),
                }
            }
        }
    };
    match res {
        Ok((revision, value, succeeded)) => Outcome::Ok {
            revision,
            value,
            succeeded,
        },
        // A write refused for the quota (NOSPACE) is refused before it takes effect.
        Err(e) if matches!(call, Call::Get { .. }) || e.to_string().contains(NOSPACE) => {
            Outcome::Failed {
                error: e.to_string(),
            }
        }
        Err(e) => Outcome::Indeterminate {
            error: e.to_string(),
        },
    }
}

/// A small deterministic generator (xorshift64*), one per client.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What one client does until the run is over: its operations.
struct Worker {
    id: u32,
    keys: u32,
    prefix: String,
    period: Duration,
    budget: Arc<AtomicU64>,
    max_ops: u64,
    start: Instant,
}

impl Worker {
    async fn run(self, eps: Vec<String>, mut stop: watch::Receiver<bool>) -> Vec<Op> {
        let mut ops = vec![];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((u64::from(self.id) + 1) * 0x1000_0001));
        let mut known: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut client = None;
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for seq in 0.. {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() || self.budget.fetch_add(1, Ordering::SeqCst) >= self.max_ops {
                break;
            }
            let key = format!("{}k{}", self.prefix, rng.next(u64::from(self.keys)));
            let value = format!("c{}-{seq}", self.id);
            let call = match rng.next(10) {
                0..=3 => Call::Put { key, value },
                4..=6 => Call::Get { key },
                _ => Call::Cas {
                    expected: known.get(&key).cloned().flatten(),
                    key,
                    new: value,
                },
            };
            let invoked = self.start.elapsed();
            let outcome = match &mut client {
                Some(c) => invoke(c, &call).await,
                None => match connect(&eps, true).await {
                    Ok(mut c) => {
                        let o = invoke(&mut c, &call).await;
                        client = Some(c);
                        o
                    }
                    Err(e) => Outcome::Failed {
                        error: format!("cannot connect: {e}"),
                    },
                },
            };
            if let Outcome::Ok {
                value, succeeded, ..
            } = &outcome
            {
                match &call {
                    Call::Get { key } => {
                        known.insert(key.clone(), value.clone());
                    }
                    Call::Put { key, value } => {
                        known.insert(key.clone(), Some(value.clone()));
                    }
                    Call::Cas { key, new, .. } if *succeeded => {
                        known.insert(key.clone(), Some(new.clone()));
                    }
                    Call::Cas { key, .. } => {
                        known.remove(key);
                    }
                }
            }
            ops.push(Op {
                client: self.id,
                invoked_ns: invoked.as_nanos() as u64,
                completed_ns: self.start.elapsed().as_nanos() as u64,
                call,
                outcome,
            });
        }
        ops
    }
}

/// A change log being followed: the changes so far and the errors that broke the stream.
#[derive(Default)]
struct Followed {
    changes: Vec<Change>,
    errors: Vec<String>,
    synced_to: i64,
    /// The compacted revision it had to go on from (0: none).
    compacted: i64,
}

/// Follows every change under `prefix` after revision `after`, re-watching from where it
/// stopped whenever the stream breaks, until it is known to have seen everything up to the
/// revision `target` holds (0: not yet known), or `deadline`. When where it stopped was
/// compacted away, it goes on from the compacted revision and records that one.
async fn follow(
    eps: Vec<String>,
    require_leader: bool,
    prefix: String,
    after: i64,
    mut target: watch::Receiver<i64>,
    deadline: impl Fn() -> bool,
    log: Arc<Mutex<Followed>>,
) {
    let mut next = after + 1;
    while !deadline() {
        let mut client = match connect(&eps, require_leader).await {
            Ok(c) => c,
            Err(e) => {
                log.lock().unwrap().errors.push(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let opts = WatchOptions::new().with_prefix().with_start_revision(next);
        let mut stream = match client.watch(prefix.as_str(), Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                log.lock().unwrap().errors.push(format!("watch: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            if deadline() {
                return;
            }
            let msg = tokio::select! {
                m = tokio::time::timeout(Duration::from_millis(500), stream.message()) => m,
                _ = target.changed() => continue,
            };
            let goal = *target.borrow();
            let resp = match msg {
                Err(_) => {
                    if goal > 0 {
                        let _ = stream.request_progress().await;
                    }
                    continue;
                }
                Ok(Ok(Some(r))) => r,
                Ok(Ok(None)) => {
                    log.lock().unwrap().errors.push("watch stream ended".into());
                    break;
                }
                Ok(Err(e)) => {
                    log.lock()
                        .unwrap()
                        .errors
                        .push(format!("watch stream: {e}"));
                    break;
                }
            };
            let mut l = log.lock().unwrap();
            if resp.canceled() {
                let compacted = resp.compact_revision();
                l.errors
                    .push(format!("watch canceled (compacted to {compacted})"));
                if compacted > next {
                    next = compacted;
                    l.compacted = compacted;
                }
                break;
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                next = kv.mod_revision() + 1;
                l.changes.push(Change {
                    key: text(kv.key()),
                    value: (ev.event_type() == EventType::Put).then(|| text(kv.value())),
                    mod_revision: kv.mod_revision(),
                });
            }
            let header = resp.header().map_or(0, |h| h.revision());
            let progress = resp.events().is_empty() && !resp.created();
            let seen = if progress { header } else { next - 1 };
            if goal > 0 && seen >= goal {
                l.synced_to = seen;
                return;
            }
        }
        drop(stream);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The cluster's current revision, retried until `SETTLE` runs out.
async fn current_revision(eps: &[String]) -> anyhow::Result<i64> {
    settled("the cluster gave no revision", eps, |mut c| async move {
        let r = c.get("fault-client/revision", None).await?;
        Ok(r.header().map_or(0, |h| h.revision()))
    })
    .await
}

/// How many keys exist under `prefix`, retried until `SETTLE` runs out.
async fn keys_under(eps: &[String], prefix: &str) -> anyhow::Result<i64> {
    settled("the cluster gave no key count", eps, |mut c| async move {
        let opts = GetOptions::new().with_prefix().with_count_only();
        Ok(c.get(prefix, Some(opts)).await?.count())
    })
    .await
}

/// `op` on a new client, tried again every half second (a member restarting, an election)
/// until `SETTLE` runs out; then the error, after `what`.
async fn settled<T, F, Fut>(what: &str, eps: &[String], op: F) -> anyhow::Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let until = Instant::now() + SETTLE;
    loop {
        let attempt = async { op(connect(eps, false).await?).await };
        match tokio::time::timeout(OP_TIMEOUT, attempt).await {
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) if Instant::now() > until => bail!("{what}: {e}"),
            Err(_) if Instant::now() > until => bail!("{what}: no answer within {OP_TIMEOUT:?}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let RunArgs {
        endpoints: e,
        out,
        clients,
        keys,
        max_ops,
        seconds,
        rate,
        stop_file,
        prefix,
    } = args;
    let eps = endpoints(&e);
    let out = out.as_path();
    let start = Instant::now();
    let start_revision = current_revision(&eps).await?;
    // The checker takes every key to start absent.
    let taken = keys_under(&eps, &prefix).await?;
    if taken > 0 {
        bail!("{taken} keys under {prefix} exist already: give each run a prefix of its own");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (target_tx, target_rx) = watch::channel(0i64);
    let watched = Arc::new(Mutex::new(Followed::default()));
    let watcher = tokio::spawn(follow(
        eps.clone(),
        true,
        prefix.clone(),
        start_revision,
        target_rx,
        move || start.elapsed() > Duration::from_secs(seconds) + SETTLE,
        watched.clone(),
    ));
    let budget = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(f64::from(clients) / f64::from(rate.max(1)));
    let workers: Vec<_> = (0..clients)
        .map(|id| {
            let w = Worker {
                id,
                keys,
                prefix: prefix.clone(),
                period,
                budget: budget.clone(),
                max_ops,
                start,
            };
            tokio::spawn(w.run(eps.clone(), stop_rx.clone()))
        })
        .collect();
    // Stop at the time limit or when the stop file appears.
    let limit = start + Duration::from_secs(seconds);
    while Instant::now() < limit
        && !stop_file.as_deref().is_some_and(Path::exists)
        && budget.load(Ordering::SeqCst) < max_ops
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    let mut ops = vec![];
    for w in workers {
        ops.extend(w.await.context("a client panicked")?);
    }
    let end_revision = current_revision(&eps).await?;
    let _ = target_tx.send(end_revision);
    watcher.await.context("the watch panicked")?;
    let w = std::mem::take(&mut *watched.lock().unwrap());
    let h = History {
        prefix,
        start_revision,
        ops,
        watch: w.changes,
        watch_errors: w.errors,
        watch_synced_to: w.synced_to,
        watch_compacted: w.compacted,
    };
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, serde_json::to_vec(&h)?)?;
    std::fs::rename(&tmp, out)?;
    let (ok, failed, indeterminate) = checker::history::counts(&h.ops);
    eprintln!(
        "ran {} operations (ok {ok}, failed {failed}, indeterminate {indeterminate}), \
         watched {} changes",
        h.ops.len(),
        h.watch.len()
    );
    Ok(())
}

fn read_history(path: &Path) -> anyhow::Result<History> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
}

fn print(report: &checker::report::Report) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

async fn verify(eps: Vec<String>, history: &Path) -> anyhow::Result<()> {
    if eps.is_empty() {
        bail!("no endpoint to verify: pass --endpoints with every member's client URL");
    }
    let h = read_history(history)?;
    let end = current_revision(&eps).await?;
    let mut members = BTreeMap::new();
    let mut unread = vec![];
    for ep in &eps {
        let (_tx, target) = watch::channel(end);
        let log = Arc::new(Mutex::new(Followed::default()));
        let until = Instant::now() + SETTLE;
        follow(
            vec![ep.clone()],
            false,
            h.prefix.clone(),
            h.start_revision,
            target,
            move || Instant::now() > until,
            log.clone(),
        )
        .await;
        let l = std::mem::take(&mut *log.lock().unwrap());
        if l.synced_to == 0 {
            unread.push(format!(
                "member {ep} could not be read up to revision {end}: {:?}",
                l.errors.last()
            ));
        }
        let finals = final_values(ep, &h.prefix).await;
        let finals = finals.unwrap_or_else(|e| {
            unread.push(format!(
                "member {ep}: its final values could not be read: {e}"
            ));
            vec![]
        });
        let log = Log {
            changes: l.changes,
            synced_to: l.synced_to,
            compacted: l.compacted,
            finals,
        };
        members.insert(ep.clone(), log);
    }
    let mut report = judge(&h, &members);
    report.problems.extend(unread);
    print(&report)
}

/// Every key under `prefix` with its value and revision, as the member at `ep` holds them (a
/// serializable read of that member alone, retried while it does not answer).
async fn final_values(ep: &str, prefix: &str) -> anyhow::Result<Vec<Change>> {
    let resp = settled("no final values", &[ep.to_string()], |mut c| async move {
        let opts = GetOptions::new().with_prefix().with_serializable();
        c.get(prefix, Some(opts)).await
    })
    .await?;
    Ok(resp
        .kvs()
        .iter()
        .map(|kv| Change {
            key: text(kv.key()),
            value: Some(text(kv.value())),
            mod_revision: kv.mod_revision(),
        })
        .collect())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let tls = cli.tls_dir.as_deref().map(tls_options).transpose()?;
    TLS.set(tls).ok();
    match cli.cmd {
        Cmd::Run(args) => run(args).await,
        Cmd::Verify {
            endpoints: e,
            history,
        } => verify(endpoints(&e), &history).await,
        Cmd::Check { history } => print(&judge(&read_history(&history)?, &BTreeMap::new())),
    }
}
