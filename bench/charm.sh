#!/usr/bin/env bash
# The charm's figures (not asserted anywhere), as one markdown table on stdout and JSON in
# build/bench-charm.json. Run as root: bench/charm.sh [--tls]   (RUNS=15 rounds per figure)
#
# - hook cost: update-status (on the Juju leader and on a follower) and config-changed (on a
#   follower) of a healthy 3-unit cluster, this charm vs `hookbench`, a bare program making the
#   same hook-tool calls and etcd requests (bench/hookbench), and the charm's binary without
#   ./dispatch; they run in turn inside the unit's machine (one `sandbox exec`, so no hook of the unit runs meanwhile), each figure the
#   median of RUNS runs; wall time, CPU time (user + system) and peak RSS from wait4(2);
# - update-status as the sandbox's controller times the unit's scheduled hooks (this includes
#   entering the machine);
# - convergence: deploy -n 3 -> all active, add-unit 3 -> 5, remove-unit 5 -> 3: wall time, hooks
#   run, restarts of the members that were there before (etcd's start time, from systemd);
# - footprint: stripped size, highest GLIBC symbol version, start-up doing nothing (an unknown
#   invocation, on this host) against /bin/true;
# - where the time of one update-status goes (ETCD_CHARM_TRACE=1, the charm's own timings).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-15}
tls=false; [ "${1:-}" = --tls ] && tls=true
scripts/build-charm >/dev/null
venv="${ETCD_CHARM_TOOLS:-/var/cache/etcd-charm-tools}/venv"
PATH="$venv/bin:$PATH" cargo zigbuild --quiet --release --target x86_64-unknown-linux-gnu.2.31 -p hookbench
hookbench=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/hookbench
cargo build --quiet --release -p sandbox
bin=$PWD/target/release/sandbox
export SANDBOX_HOME=${TMPDIR:-/tmp}/sandbox-bench-charm
trap '"$bin" destroy >/dev/null 2>&1 || true' EXIT
"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$SANDBOX_HOME"
out=$(mktemp -d); trap '"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
log=$SANDBOX_HOME/logs/model.log
now() { date +%s%N; }
# `event <name> <start ns> <log line before>`: one JSON line for a convergence step.
event() {
  local hooks
  hooks=$(tail -n +"$(( $3 + 1 ))" "$log" | grep -cE '^unit-etcd-[0-9]+: .* ran .* in [0-9.]+ ms' || true)
  echo "{\"event\": \"$1\", \"wall_s\": $(( ($(now) - $2) / 1000000 ))e-3, \"hooks\": $hooks, \"restarts\": ${4:-null}}" >> "$out/events.json"
}
lines() { wc -l < "$log"; }
# etcd's start time on each of the given units (changes when it restarts).
starts() { for u in "$@"; do "$bin" ssh "$u" -- systemctl show etcd -p ExecMainStartTimestampMonotonic --value; done; }
restarts() { diff <(echo "$1") <(echo "$2") | grep -c '^>' || true; }

"$bin" bootstrap >/dev/null
mark=0; t=$(now)
"$bin" deploy build/etcd.charm -n 3 --config tls=$tls --resource etcd=build/etcd.tar.gz >/dev/null
"$bin" wait-for --timeout 10m >/dev/null 2>&1
event "deploy -n 3 -> active" "$t" "$mark"
before=$(starts etcd/0 etcd/1 etcd/2); mark=$(lines); t=$(now)
"$bin" add-unit etcd -n 2 >/dev/null
"$bin" wait-for --timeout 10m >/dev/null 2>&1
event "add-unit 3 -> 5 -> active" "$t" "$mark" "$(restarts "$before" "$(starts etcd/0 etcd/1 etcd/2)")"
before=$(starts etcd/0 etcd/1 etcd/2); mark=$(lines); t=$(now)
"$bin" remove-unit etcd/3 etcd/4 >/dev/null
"$bin" wait-for --timeout 10m --units 3 >/dev/null 2>&1
event "remove-unit 5 -> 3 -> active" "$t" "$mark" "$(restarts "$before" "$(starts etcd/0 etcd/1 etcd/2)")"

# Hook cost, side by side inside the machine.
leader=$("$bin" status --format json | python3 -c 'import json,sys
units = json.load(sys.stdin)["applications"]["etcd"]["units"]
print(next(u for u, v in units.items() if v.get("leader")))')
follower=$(for u in etcd/0 etcd/1 etcd/2; do [ "$u" != "$leader" ] && echo "$u" && break; done)
for u in "$leader" "$follower"; do
  "$bin" ssh "$u" -- 'cat > /usr/local/bin/hookbench && chmod +x /usr/local/bin/hookbench' < "$hookbench"
done
measure() { # <unit> <role> <hook>
  "$bin" exec --unit "$1" -- "hookbench measure $runs $3 charm=./dispatch charm-binary=./bin/etcd-charm bare=/usr/local/bin/hookbench" |
    python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["role"] = sys.argv[1]; print(json.dumps(r))' "$2" >> "$out/hooks.json"
}
cut -d' ' -f1-3 /proc/loadavg > "$out/load.txt"
measure "$leader" leader update-status
measure "$follower" follower update-status
measure "$follower" follower config-changed
cut -d' ' -f1-3 /proc/loadavg >> "$out/load.txt"

# Where the time of one update-status goes: the charm's own timings, from debug-log.
mark=$(lines)
"$bin" exec --unit "$follower" -- 'ETCD_CHARM_TRACE=1 JUJU_DISPATCH_PATH=hooks/update-status ./dispatch'
sleep 1
tail -n +"$(( mark + 1 ))" "$log" | sed -n '/timings of hook update-status/,$p' | tail -n +2 |
  sed -nE 's/^unit-etcd-[0-9]+: [0-9:]+ DEBUG {3}/  /p' > "$out/phases.txt" || true

# update-status as the controller times the scheduled hooks.
mark=$(lines)
"$bin" model-config update-status-hook-interval=2s
sleep 30
"$bin" model-config update-status-hook-interval=5m
tail -n +"$(( mark + 1 ))" "$log" | grep -o 'ran update-status in [0-9.]* ms' | awk '{print $4}' > "$out/scheduled.txt"

# Footprint, on this host.
charm_bin=build/charm/bin/etcd-charm
glibc=$(objdump -T "$charm_bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
env -i "$hookbench" measure "$runs" - nothing="$PWD/$charm_bin" floor=/bin/true > "$out/start.json"

python3 bench/table.py "$out" "$(stat -c %s "$charm_bin")" "$glibc" "$tls" build/bench-charm.json
