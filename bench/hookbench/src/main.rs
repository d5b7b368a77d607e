//! The charm's benchmark peer and timer (`bench/charm.sh` runs it inside a unit's machine).
//!
//! - `hookbench` with `JUJU_DISPATCH_PATH=hooks/<hook>` (as Juju runs a charm): the bare
//!   program. It makes the hook-tool calls and etcd requests the charm makes in `update-status`
//!   and `config-changed` on a healthy member (`is-leader`, `leader-get`, `config-get`,
//!   `relation-ids` of the client endpoints (the peer relation's id read where the charm keeps
//!   it), this unit's peer data, the peers' when it is the leader, the client relations' own
//!   data, `network-get` outside `update-status`; then one connection to the local member: its
//!   status, the member list, the status of every other member at once; outside
//!   `update-status`, `application-version-set` and `open-port` as the charm's config-changed)
//!   and nothing else: no decision, no other file read. In `update-status` it takes, as the
//!   charm does, the answers the hook before kept in the charm directory
//!   (`.etcd-charm-kept-answers.json`) and asks Juju only the others.
//! - `hookbench measure <runs> <hook> <label>=<program>…`: runs each program in turn, `runs`
//!   rounds, with `JUJU_DISPATCH_PATH=hooks/<hook>` (`-`: none, and any exit code), and prints
//!   one JSON line per label with the median wall time, CPU time (user + system) and peak RSS
//!   of its runs.
//! - `hookbench load <endpoints> <puts> <concurrency> [<puts a second> [<deadline ms>]]`: a
//!   bounded put load (`concurrency` clients sharing the count, each on one member, moving to
//!   the next after a failure; each put 256 bytes on its own keys, given up after the deadline,
//!   2 s unless given, as is a connection; paced when a rate is given) and one JSON line: puts
//!   ok and failed, seconds, puts a second, median and p99 latency of the ok puts, and the
//!   longest time in which no put succeeded (from the start to the last success).
#![allow(unsafe_code)] // wait4(2), for a child's own CPU time and peak RSS.

use serde_json::Value;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("measure") => measure(&args[1..]),
        Some("load") => load(&args[1..]),
        _ => bare(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookbench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The answers the charm's hook before kept (`[[tool, args…], stdout]` pairs), read once; only
/// `update-status` takes them.
fn kept(name: &str, args: &[&str]) -> Option<String> {
    static KEPT: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let kept = KEPT.get_or_init(|| {
        let status = std::env::var("JUJU_DISPATCH_PATH").is_ok_and(|d| d == "hooks/update-status");
        let text = std::fs::read(".etcd-charm-kept-answers.json")
            .ok()
            .filter(|_| status);
        text.and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    });
    let key = || std::iter::once(name).chain(args.iter().copied());
    kept.iter()
        .find(|(k, _)| k.iter().map(String::as_str).eq(key()))
        .map(|(_, out)| out.clone())
}

/// One hook tool's stdout.
fn tool(name: &str, args: &[&str]) -> Result<String, String> {
    if let Some(out) = kept(name, args) {
        return Ok(out);
    }
    let out = Command::new(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{name}: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!("{name} {args:?}: {}", out.status)),
    }
}

fn json(name: &str, args: &[&str]) -> Result<Value, String> {
    let out = tool(name, args)?;
    serde_json::from_str(&out).map_err(|e| format!("{name}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    let all = v.as_array().into_iter().flatten();
    all.filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// The bare program: the charm's calls for this hook on a healthy member.
fn bare() -> Result<(), String> {
    let dispatch = std::env::var("JUJU_DISPATCH_PATH").unwrap_or_default();
    let hook = dispatch.strip_prefix("hooks/").unwrap_or(&dispatch);
    let unit = std::env::var("JUJU_UNIT_NAME").map_err(|_| "no JUJU_UNIT_NAME")?;
    let leader = json("is-leader", &["--format=json"])? == Value::Bool(true);
    json("leader-get", &["--format=json"])?;
    let config = json("config-get", &["--all", "--format=json"])?;
    let port = config.get("port").and_then(Value::as_u64).unwrap_or(2379);
    let tls = config.get("tls").and_then(Value::as_bool).unwrap_or(false);
    // The peer relation's id as the charm keeps it between hooks (in the charm directory).
    let kept = std::fs::read_to_string(".etcd-charm-peer-relation").ok();
    let peers = match kept {
        Some(id) => vec![id.trim().to_string()],
        None => strings(&json("relation-ids", &["--format=json", "cluster"])?),
    };
    for rel in peers {
        json("relation-get", &["--format=json", "-r", &rel, "-", &unit])?;
        if leader {
            for peer in strings(&json("relation-list", &["--format=json", "-r", &rel])?) {
                json("relation-get", &["--format=json", "-r", &rel, "-", &peer])?;
            }
        }
    }
    for endpoint in ["db", "proxy", "cos-agent"] {
        for rel in strings(&json("relation-ids", &["--format=json", endpoint])?) {
            json("relation-get", &["--format=json", "-r", &rel, "-", &unit])?;
        }
    }
    if hook != "update-status" {
        json("network-get", &["cluster", "--format=json"])?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let scheme = if tls { "https" } else { "http" };
    let local = format!("{scheme}://127.0.0.1:{port}");
    let version = rt.block_on(etcd_round(&local, tls))?;
    if hook != "update-status" {
        tool("application-version-set", &[&version])?;
        tool("open-port", &[&format!("{port}/tcp")])?;
    }
    Ok(())
}

/// The charm's etcd requests of a pass: the local member's status, the member list, every
/// other member's status at once (their answers list the alarms); the local member's version.
async fn etcd_round(local: &str, tls: bool) -> Result<String, String> {
    use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
    // With TLS, the CA and client certificate the charm writes (as the charm reads them).
    let read = |f: &str| std::fs::read(format!("/etc/etcd/tls/{f}")).map_err(|e| e.to_string());
    let certs = match tls {
        true => Some((read("ca.crt")?, read("client.crt")?, read("client.key")?)),
        false => None,
    };
    let opts = || {
        let o = ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
        let o = o.with_timeout(Duration::from_secs(4));
        let Some((ca, cert, key)) = &certs else {
            return Some(o);
        };
        let t = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
        Some(o.with_tls(t.identity(Identity::from_pem(cert, key))))
    };
    let err = |e: etcd_client::Error| e.to_string();
    let mut c = Client::connect([local], opts()).await.map_err(err)?;
    let own = c.status().await.map_err(err)?;
    let own_id = own.header().map_or(0, |h| h.member_id());
    let members = c.member_list().await.map_err(err)?;
    let others = members.members().iter().filter(|m| m.id() != own_id);
    let urls = others.filter_map(|m| m.client_urls().first().cloned());
    let calls: Vec<_> = urls
        .map(|url| {
            let opts = opts();
            tokio::spawn(async move {
                let mut c = Client::connect([url], opts).await?;
                c.status().await.map(drop)
            })
        })
        .collect();
    for call in calls {
        let answered = call.await.map_err(|e| e.to_string())?;
        answered.map_err(err)?;
    }
    Ok(own.version().to_string())
}

/// One run of a program: wall time, CPU time (user + system), peak RSS.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
    rss_kib: i64,
}

/// Starts `program` with `JUJU_DISPATCH_PATH=hooks/<hook>` (none, and no stderr, when the hook
/// is `-`) and waits for it with wait4(2).
fn run_once(program: &str, hook: &str) -> Result<Run, String> {
    let mut command = Command::new(program);
    command.stdin(Stdio::null()).stdout(Stdio::null());
    match hook {
        "-" => command.stderr(Stdio::null()),
        _ => command.env("JUJU_DISPATCH_PATH", format!("hooks/{hook}")),
    };
    let started = Instant::now();
    let child = command.spawn().map_err(|e| format!("{program}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes through the two pointers,
    // which live for the call, and reaps `pid`, our own child, which `child` never waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if got != pid {
        return Err(format!("{program}: wait4 failed"));
    }
    if hook != "-" && !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("{program} failed (wait status {status})"));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    Ok(Run {
        wall,
        cpu,
        rss_kib: usage.ru_maxrss,
    })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// `measure <runs> <hook> <label>=<program>…`: the programs in turn, one JSON line per label.
fn measure(args: &[String]) -> Result<(), String> {
    let usage = "usage: hookbench measure <runs> <hook> <label>=<program>...";
    let [runs, hook, programs @ ..] = args else {
        return Err(usage.into());
    };
    let runs: usize = runs.parse().map_err(|_| usage)?;
    let programs: Vec<(&str, &str)> = programs.iter().filter_map(|p| p.split_once('=')).collect();
    if runs == 0 || programs.is_empty() {
        return Err(usage.into());
    }
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); programs.len()];
    for _ in 0..runs {
        for ((_, program), out) in programs.iter().zip(results.iter_mut()) {
            out.push(run_once(program, hook)?);
        }
    }
    for ((label, _), runs) in programs.iter().zip(results) {
        let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
        let line = serde_json::json!({
            "label": label,
            "hook": hook,
            "runs": runs.len(),
            "wall_ms": ms(median(runs.iter().map(|r| r.wall).collect())),
            "cpu_ms": ms(median(runs.iter().map(|r| r.cpu).collect())),
            "rss_kib": median(runs.iter().map(|r| r.rss_kib).collect()),
        });
        println!("{line}");
    }
    Ok(())
}

/// What one load client saw: each ok put's latency and the time it completed.
#[derive(Default)]
struct Seen {
    ok: Vec<(Duration, Instant)>,
    failed: u64,
}

/// How one load client puts: its share of the count, its pace, how long it waits for a put.
#[derive(Clone, Copy)]
struct Pace {
    puts: u64,
    /// A put every `gap` (none: back to back).
    gap: Option<Duration>,
    /// Given up after this, as is a connection.
    deadline: Duration,
}

/// One load client: `pace.puts` puts on keys of its own.
async fn load_client(eps: Vec<String>, id: u64, pace: Pace) -> Seen {
    use etcd_client::{Client, ConnectOptions};
    let Pace {
        puts,
        gap,
        deadline,
    } = pace;
    let opts = ConnectOptions::new()
        .with_connect_timeout(deadline)
        .with_timeout(deadline);
    let mut seen = Seen::default();
    let mut client = None;
    let value = vec![b'x'; 256];
    let start = Instant::now();
    for n in 0..puts {
        if let Some(gap) = gap {
            let due = start + gap * n as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        if client.is_none() {
            // One member at a time, the next one after a failure (as etcd's own clients fail
            // over): a lost member costs its clients one timeout, not every few requests.
            let ep = eps[(id + seen.failed) as usize % eps.len()].clone();
            client = Client::connect([ep], Some(opts.clone())).await.ok();
        }
        let Some(c) = client.as_mut() else {
            seen.failed += 1;
            continue;
        };
        let began = Instant::now();
        match c
            .put(format!("bench/{id}/{}", n % 64), value.clone(), None)
            .await
        {
            Ok(_) => seen.ok.push((began.elapsed(), Instant::now())),
            Err(_) => {
                seen.failed += 1;
                client = None;
            }
        }
    }
    seen
}

/// `load <endpoints> <puts> <concurrency> [<rate> [<deadline ms>]]`: see the crate's doc.
fn load(args: &[String]) -> Result<(), String> {
    let usage =
        "usage: hookbench load <endpoints> <puts> <concurrency> [<puts a second> [<deadline ms>]]";
    let (eps, puts, clients, rate, deadline) = match args {
        [e, p, c] => (e, p, c, None, None),
        [e, p, c, r] => (e, p, c, Some(r), None),
        [e, p, c, r, d] => (e, p, c, Some(r), Some(d)),
        _ => return Err(usage.into()),
    };
    let eps: Vec<String> = eps.split(',').map(str::to_string).collect();
    let puts: u64 = puts.parse().map_err(|_| usage)?;
    let clients: u64 = clients.parse().map_err(|_| usage)?;
    let rate: Option<f64> = rate.map(|r| r.parse()).transpose().map_err(|_| usage)?;
    let deadline_ms: u64 = deadline
        .map_or(Ok(2000), |d| d.parse())
        .map_err(|_| usage)?;
    if clients == 0 || puts < clients || rate.is_some_and(|r| r <= 0.0) || deadline_ms == 0 {
        return Err(usage.into());
    }
    let deadline = Duration::from_millis(deadline_ms);
    let gap = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let seen: Vec<Seen> = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|id| {
                let share = puts / clients + u64::from(id < puts % clients);
                let pace = Pace {
                    puts: share,
                    gap,
                    deadline,
                };
                tokio::spawn(load_client(eps.clone(), id, pace))
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap_or_default());
        }
        seen
    });
    let seconds = start.elapsed().as_secs_f64();
    let failed: u64 = seen.iter().map(|s| s.failed).sum();
    let mut latencies: Vec<Duration> = seen.iter().flat_map(|s| s.ok.iter().map(|o| o.0)).collect();
    let mut done: Vec<Instant> = seen.iter().flat_map(|s| s.ok.iter().map(|o| o.1)).collect();
    latencies.sort();
    done.sort();
    let before = std::iter::once(start).chain(done.iter().copied());
    let longest = before.zip(done.iter()).map(|(a, b)| *b - a).max();
    let ms = |d: Option<&Duration>| d.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0);
    let p99 = latencies.len().saturating_sub(1) * 99 / 100;
    let line = serde_json::json!({
        "clients": clients,
        "deadline_ms": deadline_ms,
        "ok": latencies.len(),
        "failed": failed,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "per_s": (latencies.len() as f64 / seconds).round(),
        "p50_ms": ms(latencies.get(latencies.len() / 2)),
        "p99_ms": ms(latencies.get(p99)),
        "longest_gap_s": longest.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
    });
    println!("{line}");
    Ok(())
}
