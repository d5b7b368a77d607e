"""Renders bench/charm.sh's measurements as one markdown table (stdout) and one JSON file.

usage: table.py <dir> <binary bytes> <highest GLIBC> <tls> <json out> [<parts run>]
"""
import json
import os
import pathlib
import platform
import statistics
import sys

out, size, glibc, tls, json_out = sys.argv[1:6]
parts = sys.argv[6] if len(sys.argv) > 6 else "hooks,convergence,load,availability"
d = pathlib.Path(out)


def lines(name):
    p = d / name
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


hooks, events, start = lines("hooks.json"), lines("events.json"), lines("start.json")
load, avail, election = lines("load.json"), lines("avail.json"), lines("election.json")
# The scheduled update-status hooks: "<wall ms> [<cpu ms>]" a line.
scheduled_lines = [x.split() for x in (d / "scheduled.txt").read_text().splitlines()] if (d / "scheduled.txt").exists() else []
scheduled = [float(x[0]) for x in scheduled_lines if x]
scheduled_cpu = [float(x[1]) for x in scheduled_lines if len(x) > 1]
phases = (d / "phases.txt").read_text().rstrip() if (d / "phases.txt").exists() else ""

rows = []


def row(figure, charm, peer, peer_name, unit):
    ratio = f"{charm / peer:.2f}" if peer else ""
    rows.append((figure, f"{charm:g} {unit}", f"{peer:g} {unit}" if peer is not None else "", peer_name, ratio))


for role, hook in (("leader", "update-status"), ("follower", "update-status"), ("follower", "config-changed")):
    got = {r["label"]: r for r in hooks if r["role"] == role and r["hook"] == hook}
    if not {"charm", "bare"} <= got.keys():
        continue
    c, b = got["charm"], got["bare"]
    n = c["runs"]
    row(f"{hook} on the {role}: wall (median of {n})", c["wall_ms"], b["wall_ms"], "bare program", "ms")
    if "charm-binary" in got:
        row(f"{hook} on the {role}: wall without ./dispatch", got["charm-binary"]["wall_ms"], b["wall_ms"], "bare program", "ms")
    row(f"{hook} on the {role}: CPU (median of {n})", c["cpu_ms"], b["cpu_ms"], "bare program", "ms")
    row(f"{hook} on the {role}: peak RSS (median of {n})", round(c["rss_kib"] / 1024, 1), round(b["rss_kib"] / 1024, 1), "bare program", "MiB")
    o = next((r for r in hooks if r["role"] == role and r["hook"] == hook and r["label"] == "ops"), None)
    if o:
        row(f"{hook} on the {role}: wall, vs the ops charm", c["wall_ms"], o["wall_ms"], "ops charm", "ms")
        row(f"{hook} on the {role}: CPU, vs the ops charm", c["cpu_ms"], o["cpu_ms"], "ops charm", "ms")
        row(f"{hook} on the {role}: peak RSS, vs the ops charm", round(c["rss_kib"] / 1024, 1), round(o["rss_kib"] / 1024, 1), "ops charm", "MiB")
if scheduled:
    rows.append((f"update-status as the controller times it (median of {len(scheduled)}, 3 units)",
                 f"{statistics.median(scheduled):g} ms", "", "", ""))
if scheduled_cpu:
    rows.append((f"update-status CPU as the controller measures it (median of {len(scheduled_cpu)}, 3 units)",
                 f"{statistics.median(scheduled_cpu):g} ms", "", "", ""))
for e in events:
    rows.append((f"{e['event']}: wall time", f"{e['wall_s']:.1f} s", "", "", ""))
    rows.append((f"{e['event']}: hooks run", str(e["hooks"]), "", "", ""))
    if e.get("cpu_per_hook_ms") is not None:
        rows.append((f"{e['event']}: charm CPU (sum over its hooks)", f"{e['cpu_ms'] / 1000:.2f} s", "", "", ""))
        rows.append((f"{e['event']}: charm CPU per hook", f"{e['cpu_per_hook_ms']:g} ms", "", "", ""))
    if e.get("restarts") is not None:
        rows.append((f"{e['event']}: restarts of the members there before", str(e["restarts"]), "", "", ""))
by_event = {e["event"]: e for e in events}
three, seven = by_event.get("deploy -n 3 -> active"), by_event.get("deploy -n 7 -> active")
if three and seven:
    row("growth, deploy -n 7 vs -n 3: wall time", seven["wall_s"], three["wall_s"], "-n 3", "s")
    row("growth, deploy -n 7 vs -n 3: hooks run", seven["hooks"], three["hooks"], "-n 3", "hooks")
    row("growth, deploy -n 7 vs -n 3: hooks per unit", round(seven["hooks"] / 7, 1), round(three["hooks"] / 3, 1), "-n 3", "hooks")
    if seven.get("cpu_per_hook_ms") and three.get("cpu_per_hook_ms"):
        row("growth, deploy -n 7 vs -n 3: charm CPU", round(seven["cpu_ms"] / 1000, 2), round(three["cpu_ms"] / 1000, 2), "-n 3", "s")
        row("growth, deploy -n 7 vs -n 3: charm CPU per hook", seven["cpu_per_hook_ms"], three["cpu_per_hook_ms"], "-n 3", "ms")
runs = {label: [r for r in load if r["label"] == label] for label in ("charm", "bare")}
if runs["charm"] and runs["bare"]:
    def med(label, key):
        return statistics.median(r[key] for r in runs[label] if r[key] is not None)
    n, c = len(runs["charm"]), runs["charm"][0]
    what = f"{c['ok'] + c['failed']} puts, {c['clients']} clients, median of {n}"
    row(f"put throughput ({what})", med("charm", "per_s"), med("bare", "per_s"), "bare etcd", "puts/s")
    row(f"put latency p99 ({what})", med("charm", "p99_ms"), med("bare", "p99_ms"), "bare etcd", "ms")
    row(f"put latency median ({what})", med("charm", "p50_ms"), med("bare", "p50_ms"), "bare etcd", "ms")
timeout_s = election[0]["election_timeout_ms"] / 1000 if election else None
for a in avail:
    deadline = f", {a['deadline_ms'] / 1000:g} s deadline" if "deadline_ms" in a else ""
    what = f"{a['ok']} ok, {a['failed']} failed{deadline}"
    row(f"longest write gap, {a['label']} ({what})", a["longest_gap_s"], timeout_s, "election timeout", "s")
rows.append(("stripped binary size", f"{int(size) / 1048576:.2f} MiB", "", "", ""))
rows.append(("highest GLIBC symbol version", glibc, "", "", ""))
got = {r["label"]: r for r in start}
if {"nothing", "floor"} <= got.keys():
    n, f = got["nothing"], got["floor"]
    row(f"start-up doing nothing: wall (median of {n['runs']})", n["wall_ms"], f["wall_ms"], "/bin/true", "ms")
    row(f"start-up doing nothing: peak RSS (median of {n['runs']})", round(n["rss_kib"] / 1024, 1), round(f["rss_kib"] / 1024, 1), "/bin/true", "MiB")

load = (d / "load.txt").read_text().split("\n") if (d / "load.txt").exists() else []
load = " then ".join(x for x in load if x.strip())
print(f"tls={tls}; parts: {parts}; {platform.system()} {platform.release()}, {len(os.sched_getaffinity(0))} cores; "
      f"load average (1, 5, 15 min) before and after the hook runs: {load or 'not read'}")
print()
print("| figure | this charm | peer | peer is | ratio |")
print("|---|---:|---:|---|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
if phases:
    print()
    print("Where one update-status's time goes (`ETCD_CHARM_TRACE=1`; phase, calls, total ms):")
    print()
    print("```")
    print(phases)
    print("```")
pathlib.Path(json_out).parent.mkdir(parents=True, exist_ok=True)
pathlib.Path(json_out).write_text(json.dumps({
    "tls": tls == "true", "parts": parts.split(","), "hooks": hooks,
    "scheduled_update_status_ms": scheduled, "scheduled_update_status_cpu_ms": scheduled_cpu,
    "events": events, "binary_bytes": int(size), "glibc": glibc, "start": start,
    "load": load, "availability": avail, "election": election,
    "phases": phases.splitlines(),
}, indent=1) + "\n")
