"""One JSON line for a convergence event of bench/charm.sh, from the sandbox's model log.

usage: hooklog.py <model.log> <lines before> <event> <wall s> [<restarts>]

The sandbox's controller logs each hook it runs as
`unit-<app>-<n>: <time> DEBUG ran <hook> in <ms> ms, cpu <ms> ms (exit <code>)`, the CPU time
being the hook's whole process tree's inside the machine (its tools' included). The etcd units'
hooks after the first <lines before> lines are the event's: their count, their summed CPU time
and wall time, the CPU per hook, and the same per hook name.
"""
import json
import re
import sys

log, before, event, wall_s = sys.argv[1:5]
restarts = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else None
ran = re.compile(
    r"^unit-etcd-\d+: \S+ DEBUG ran (\S+) in ([\d.]+) ms(?:, cpu ([\d.]+) ms)? \(exit (-?\d+)\)$"
)
hooks, cpu, wall, unmeasured, by_hook = 0, 0.0, 0.0, 0, {}
with open(log, errors="replace") as f:
    for i, line in enumerate(f):
        if i < int(before):
            continue
        m = ran.match(line.rstrip("\n"))
        if not m:
            continue
        name, ms, cpu_ms = m.group(1), float(m.group(2)), m.group(3)
        hooks += 1
        wall += ms
        h = by_hook.setdefault(name, {"hooks": 0, "cpu_ms": 0.0})
        h["hooks"] += 1
        if cpu_ms is None:
            unmeasured += 1
        else:
            cpu += float(cpu_ms)
            h["cpu_ms"] = round(h["cpu_ms"] + float(cpu_ms), 1)
print(json.dumps({
    "event": event, "wall_s": float(wall_s), "hooks": hooks,
    "cpu_ms": round(cpu, 1),
    "cpu_per_hook_ms": round(cpu / (hooks - unmeasured), 2) if hooks > unmeasured else None,
    "hook_wall_ms": round(wall, 1), "hooks_without_cpu": unmeasured,
    "by_hook": dict(sorted(by_hook.items())), "restarts": restarts,
}))
