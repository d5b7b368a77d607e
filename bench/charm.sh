#!/usr/bin/env bash
# The charm's figures (not asserted anywhere), as one markdown table on stdout and JSON in
# build/bench-charm.json. Run as root: bench/charm.sh [--tls]   (RUNS=15 rounds per figure)
#
# BENCH_ONLY=<part>[,<part>…] runs only those parts (default: all; with --tls, hooks and
# convergence): `hooks` (hook cost, the scheduled update-status and its phases), `convergence`
# (the scale steps and growth), `load` (overhead on etcd, over plain http), `availability`
# (likewise); the footprint is always measured. The 3-unit cluster is deployed for every part,
# the ops peer for `hooks` and `load`.
#
# - hook cost: update-status (on the Juju leader and on a follower) and config-changed (on a
#   follower) of a healthy 3-unit cluster, this charm vs `hookbench`, a bare program making the
#   same hook-tool calls and etcd requests (bench/hookbench); they run in turn inside the
#   unit's machine (one `sandbox exec`, so no hook of the unit runs meanwhile), the charm as
#   Juju runs it (./dispatch, a symlink to the binary), each figure the median of RUNS runs;
#   wall time, CPU time (user + system) and peak RSS from wait4(2);
# - update-status as the sandbox's controller times the unit's scheduled hooks (this includes
#   entering the machine);
# - convergence: deploy -n 3 -> all active, add-unit 3 -> 5, remove-unit 5 -> 3: wall time, hooks
#   run, the charm's CPU time (the sum over the event's etcd hooks, as the sandbox's controller
#   logs each hook's: its whole process tree in the machine, hook tools included) and CPU per
#   hook, restarts of the members that were there before (etcd's start time, from systemd);
# - footprint: stripped size, highest GLIBC symbol version, start-up doing nothing (an unknown
#   invocation, on this host) against /bin/true;
# - where the time of one update-status goes (ETCD_CHARM_TRACE=1, the charm's own timings);
# - the Python peer: tests/charms/ops-peer, a minimal ops charm (ops and its dependencies
#   vendored into venv/ as charmcraft does, from PyPI once per ops version into a cache outside
#   the repo), deployed -n 3 beside etcd on machines whose image adds python3 (a recipe of its
#   own: SANDBOX_EXTRA_PACKAGES); its update-status and config-changed timed the same way, right
#   after the charm's, on its leader and a follower;
# - overhead on etcd: `hookbench load` (a bounded put load: LOAD_PUTS puts, LOAD_CLIENTS clients)
#   from a machine of its own against the charm's cluster and against a bare etcd (default
#   flags but the cluster's names and URLs) on the ops peer's three machines, in turn, LOAD_ROUNDS
#   rounds; put throughput, median and p99 latency;
# - availability: the longest time without a successful put of a paced client (50 puts a
#   second, each put given up after AVAIL_DEADLINE_MS) while two units join, then when the Raft
#   leader's machine is killed, against the election timeout;
# - growth: deploy -n 7 in a new model against the deploy -n 3 above (time, hooks, charm CPU
#   per hook).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-15}
tls=false; [ "${1:-}" = --tls ] && tls=true
# The put load's clients and the bare etcd speak plain http: under TLS they would need the
# cluster's client certificates, and the bare etcd its own, to compare like with like.
parts=hooks,convergence,load,availability
$tls && parts=hooks,convergence
only=${BENCH_ONLY:-$parts}
for p in ${only//,/ }; do
  case $p in hooks | convergence | load | availability) ;;
  *) echo "BENCH_ONLY: unknown part '$p'; give some of hooks,convergence,load,availability" >&2; exit 2 ;;
  esac
done
part() { [[ ",$only," == *",$1,"* ]]; }
if $tls && { part load || part availability; }; then
  echo "BENCH_ONLY: load and availability run over plain http only; leave out --tls for them" >&2
  exit 2
fi
scripts/build-charm >/dev/null
venv="${ETCD_CHARM_TOOLS:-/var/cache/etcd-charm-tools}/venv"
PATH="$venv/bin:$PATH" cargo zigbuild --quiet --release --target x86_64-unknown-linux-gnu.2.31 -p hookbench
hookbench=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/hookbench
cargo build --quiet --release -p sandbox
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/sandbox
# The ops peer: ops and its dependencies for the image's Python (Debian 12: 3.11), cached.
ops_version=${OPS_VERSION:-3.9.0}
ops_cache="${ETCD_CHARM_TOOLS:-/var/cache/etcd-charm-tools}/ops-$ops_version"
if [ ! -d "$ops_cache/venv" ]; then
  rm -rf "$ops_cache.new"
  "$venv/bin/pip" install --quiet --target "$ops_cache.new/venv" --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 "ops==$ops_version" >&2
  mv "$ops_cache.new" "$ops_cache"
fi
export SANDBOX_EXTRA_PACKAGES=python3
export SANDBOX_HOME=${TMPDIR:-/tmp}/sandbox-bench-charm
trap '"$bin" destroy >/dev/null 2>&1 || true' EXIT
"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$SANDBOX_HOME"
out=$(mktemp -d); trap '"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
log=$SANDBOX_HOME/logs/model.log
now() { date +%s%N; }
# `event <name> <start ns> <log line before> [restarts]`: one JSON line for a convergence step:
# wall time, the etcd hooks run since that line and their CPU time (bench/hooklog.py).
event() {
  python3 bench/hooklog.py "$log" "$3" "$1" "$(( ($(now) - $2) / 1000000 ))e-3" "${4:-}" >> "$out/events.json"
}
lines() { wc -l < "$log"; }
# etcd's start time on each of the given units (changes when it restarts).
starts() { for u in "$@"; do "$bin" ssh "$u" -- systemctl show etcd -p ExecMainStartTimestampMonotonic --value; done; }
restarts() { diff <(echo "$1") <(echo "$2") | grep -c '^>' || true; }

"$bin" bootstrap >/dev/null
mark=0; t=$(now)
"$bin" deploy build/etcd.charm -n 3 --config tls=$tls --resource etcd=build/etcd.tar.gz >/dev/null
"$bin" wait-for --timeout 10m >/dev/null 2>&1
if part convergence; then
event "deploy -n 3 -> active" "$t" "$mark"
before=$(starts etcd/0 etcd/1 etcd/2); mark=$(lines); t=$(now)
"$bin" add-unit etcd -n 2 >/dev/null
"$bin" wait-for --timeout 10m >/dev/null 2>&1
event "add-unit 3 -> 5 -> active" "$t" "$mark" "$(restarts "$before" "$(starts etcd/0 etcd/1 etcd/2)")"
before=$(starts etcd/0 etcd/1 etcd/2); mark=$(lines); t=$(now)
"$bin" remove-unit etcd/3 etcd/4 >/dev/null
"$bin" wait-for --timeout 10m --units 3 >/dev/null 2>&1
event "remove-unit 5 -> 3 -> active" "$t" "$mark" "$(restarts "$before" "$(starts etcd/0 etcd/1 etcd/2)")"
fi

# update-status as the controller times the scheduled hooks, wall and CPU (before the
# ops peer is there: its hooks would run on the same cores).
if part hooks; then
mark=$(lines)
"$bin" model-config update-status-hook-interval=2s
sleep 30
"$bin" model-config update-status-hook-interval=5m
tail -n +"$(( mark + 1 ))" "$log" | grep -E '^unit-etcd-[0-9]+: ' |
  sed -nE 's/.* ran update-status in ([0-9.]+) ms(, cpu ([0-9.]+) ms)? .*/\1 \3/p' > "$out/scheduled.txt"
fi

# The ops peer (for the hook cost and the bare etcd), once the convergence steps are done.
units=3
cp -r tests/charms/ops-peer "$out/ops-peer"; cp -r "$ops_cache/venv" "$out/ops-peer/venv"
if part hooks || part load; then
  "$bin" deploy "$out/ops-peer" -n 3 >/dev/null; units=$((units + 3))
fi
if part load || part availability; then
  "$bin" deploy "$out/ops-peer" load-client >/dev/null; units=$((units + 1))
fi
"$bin" wait-for --timeout 10m --units "$units" >/dev/null 2>&1

# Hook cost, side by side inside the machine.
if part hooks; then
# <app>: its Juju leader, then a follower.
roles() {
  local leader
  leader=$("$bin" status --format json | python3 -c 'import json,sys
units = json.load(sys.stdin)["applications"][sys.argv[1]]["units"]
print(next(u for u, v in units.items() if v.get("leader")))' "$1")
  echo "$leader"
  for u in "$1/0" "$1/1" "$1/2"; do [ "$u" != "$leader" ] && echo "$u" && break; done
}
read -r -d '' leader follower < <(roles etcd) || true
read -r -d '' ops_leader ops_follower < <(roles ops-peer) || true
for u in "$leader" "$follower" "$ops_leader" "$ops_follower"; do
  "$bin" ssh "$u" -- 'cat > /usr/local/bin/hookbench && chmod +x /usr/local/bin/hookbench' < "$hookbench"
done
measure() { # <unit> <role> <hook> <label>=<program>...
  local unit=$1 role=$2 hook=$3; shift 3
  "$bin" exec --unit "$unit" -- "hookbench measure $runs $hook $*" |
    python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["role"] = sys.argv[1]; print(json.dumps(r))' "$role" >> "$out/hooks.json"
}
ours="charm=./dispatch bare=/usr/local/bin/hookbench"
cut -d' ' -f1-3 /proc/loadavg > "$out/load.txt"
measure "$leader" leader update-status $ours
measure "$ops_leader" leader update-status ops=./dispatch
measure "$follower" follower update-status $ours
measure "$ops_follower" follower update-status ops=./dispatch
measure "$follower" follower config-changed $ours
measure "$ops_follower" follower config-changed ops=./dispatch
cut -d' ' -f1-3 /proc/loadavg >> "$out/load.txt"

# Where the time of one update-status goes: the charm's own timings, from debug-log.
mark=$(lines)
"$bin" exec --unit "$follower" -- 'ETCD_CHARM_TRACE=1 JUJU_DISPATCH_PATH=hooks/update-status ./dispatch'
sleep 1
tail -n +"$(( mark + 1 ))" "$log" | sed -n '/timings of hook update-status/,$p' | tail -n +2 |
  sed -nE 's/^unit-etcd-[0-9]+: [0-9:]+ DEBUG {3}/  /p' > "$out/phases.txt" || true
fi

# Overhead on etcd: a bounded put load from load-client/0 against the charm's cluster, then
# against a bare etcd (default flags but the cluster's own: names, URLs, initial cluster) on the
# ops peer's three machines, the same kind of machine; LOAD_ROUNDS rounds each, in turn.
load() { # <label> <endpoints> <puts> <clients> [<rate> [<deadline ms>]]
  local label=$1; shift
  "$bin" exec --unit load-client/0 -- "hookbench load $*" |
    python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["label"] = sys.argv[1]; print(json.dumps(r))' "$label"
}
addr() { "$bin" ssh "$1" -- ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1; }
if part load || part availability; then
  "$bin" ssh load-client/0 -- 'cat > /usr/local/bin/hookbench && chmod +x /usr/local/bin/hookbench' < "$hookbench"
  charm_eps=$(for u in etcd/0 etcd/1 etcd/2; do printf 'http://%s:2379,' "$(addr "$u")"; done)
  charm_eps=${charm_eps%,}
fi
if part load; then
puts=${LOAD_PUTS:-20000}; conc=${LOAD_CLIENTS:-16}
cluster=""; bare_eps=""
for i in 0 1 2; do
  a=$(addr "ops-peer/$i"); cluster+="bare$i=http://$a:2380,"; bare_eps+="http://$a:2379,"
done
cluster=${cluster%,}; bare_eps=${bare_eps%,}
for i in 0 1 2; do
  u=ops-peer/$i; a=$(addr "$u")
  "$bin" ssh "$u" -- 'cat > /usr/local/bin/etcd && chmod +x /usr/local/bin/etcd' < /usr/bin/etcd
  "$bin" ssh "$u" -- systemd-run --unit bare-etcd /usr/local/bin/etcd --name "bare$i" \
    --data-dir /var/lib/bare-etcd --listen-peer-urls "http://$a:2380" \
    --initial-advertise-peer-urls "http://$a:2380" --listen-client-urls "http://$a:2379" \
    --advertise-client-urls "http://$a:2379" --initial-cluster "$cluster" >/dev/null
done
sleep 5
load warm-up "$bare_eps" 500 "$conc" >/dev/null
for _ in $(seq "${LOAD_ROUNDS:-3}"); do
  load charm "$charm_eps" "$puts" "$conc" >> "$out/load.json"
  load bare "$bare_eps" "$puts" "$conc" >> "$out/load.json"
done
fi

# Availability: the longest time without a successful put of a paced client (4 clients, 50
# puts a second in all), while two units join, then when the Raft leader's machine dies. Each
# put (and connection) is given up after AVAIL_DEADLINE_MS (500: some 40 times a healthy
# cluster's p99 under the full load above), and its client moves to the next member: a client
# that waits longer on a dead member measures its own patience, not the cluster's election.
if part availability; then
rate=50; window=${AVAIL_SECONDS:-40}; deadline=${AVAIL_DEADLINE_MS:-500}
load "scale-out" "$charm_eps" $((rate * window)) 4 "$rate" "$deadline" >> "$out/avail.json" & loader=$!
sleep 3; "$bin" add-unit etcd -n 2 >/dev/null
"$bin" wait-for --timeout 10m >/dev/null 2>&1 || true
wait "$loader"
raft_leader=""
for u in etcd/0 etcd/1 etcd/2; do
  got=$("$bin" ssh "$u" -- etcdctl endpoint status -w json | python3 -c 'import json,sys
s = json.load(sys.stdin)[0]["Status"]; print(s["header"]["member_id"] == s["leader"])')
  [ "$got" = True ] && raft_leader=$u
done
election=$("$bin" config etcd election_timeout 2>/dev/null || echo 1000)
load "leader machine killed" "$charm_eps" $((rate * 20)) 4 "$rate" "$deadline" >> "$out/avail.json" & loader=$!
sleep 5; [ -n "$raft_leader" ] && "$bin" kill-machine "$raft_leader"
wait "$loader"
echo "{\"election_timeout_ms\": ${election:-1000}}" > "$out/election.json"
fi

# Growth: deploy -n 7 in a new model, against the deploy -n 3 above.
if part convergence; then
"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$SANDBOX_HOME"
"$bin" bootstrap >/dev/null
mark=0; t=$(now)
"$bin" deploy build/etcd.charm -n 7 --config tls=$tls --resource etcd=build/etcd.tar.gz >/dev/null
"$bin" wait-for --timeout 15m >/dev/null 2>&1
event "deploy -n 7 -> active" "$t" "$mark"
fi

# Footprint, on this host.
charm_bin=build/charm/bin/etcd-charm
glibc=$(objdump -T "$charm_bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
env -i "$hookbench" measure "$runs" - nothing="$PWD/$charm_bin" floor=/bin/true > "$out/start.json"

python3 bench/table.py "$out" "$(stat -c %s "$charm_bin")" "$glibc" "$tls" build/bench-charm.json "$only"
