"""Renders bench/charm.sh's measurements as one markdown table (stdout) and one JSON file.

usage: table.py <dir> <binary bytes> <highest GLIBC> <tls> <json out>
"""
import json
import os
import pathlib
import platform
import statistics
import sys

out, size, glibc, tls, json_out = sys.argv[1:6]
d = pathlib.Path(out)


def lines(name):
    p = d / name
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


hooks, events, start = lines("hooks.json"), lines("events.json"), lines("start.json")
scheduled = [float(x) for x in (d / "scheduled.txt").read_text().split()] if (d / "scheduled.txt").exists() else []
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
if scheduled:
    rows.append((f"update-status as the controller times it (median of {len(scheduled)}, 3 units)",
                 f"{statistics.median(scheduled):g} ms", "", "", ""))
for e in events:
    rows.append((f"{e['event']}: wall time", f"{e['wall_s']:.1f} s", "", "", ""))
    rows.append((f"{e['event']}: hooks run", str(e["hooks"]), "", "", ""))
    if e.get("restarts") is not None:
        rows.append((f"{e['event']}: restarts of the members there before", str(e["restarts"]), "", "", ""))
rows.append(("stripped binary size", f"{int(size) / 1048576:.2f} MiB", "", "", ""))
rows.append(("highest GLIBC symbol version", glibc, "", "", ""))
got = {r["label"]: r for r in start}
if {"nothing", "floor"} <= got.keys():
    n, f = got["nothing"], got["floor"]
    row(f"start-up doing nothing: wall (median of {n['runs']})", n["wall_ms"], f["wall_ms"], "/bin/true", "ms")
    row(f"start-up doing nothing: peak RSS (median of {n['runs']})", round(n["rss_kib"] / 1024, 1), round(f["rss_kib"] / 1024, 1), "/bin/true", "MiB")

load = (d / "load.txt").read_text().split("\n") if (d / "load.txt").exists() else []
load = " then ".join(x for x in load if x.strip())
print(f"tls={tls}; {platform.system()} {platform.release()}, {len(os.sched_getaffinity(0))} cores; "
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
    "tls": tls == "true", "hooks": hooks, "scheduled_update_status_ms": scheduled,
    "events": events, "binary_bytes": int(size), "glibc": glibc, "start": start,
    "phases": phases.splitlines(),
}, indent=1) + "\n")
