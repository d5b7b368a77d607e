#!/usr/bin/env bash
# Sandbox figures (not asserted anywhere): cold and cached bootstrap, machine start to
# `running`, overhead of one no-op hook, memory of an idle machine. Run as root.
# Usage: bench/sandbox.sh [--cold]   (--cold rebuilds the rootfs cache first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p sandbox
bin=$PWD/target/release/sandbox
export SANDBOX_HOME=${TMPDIR:-/tmp}/sandbox-bench
trap '"$bin" destroy >/dev/null 2>&1 || true' EXIT
"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$SANDBOX_HOME"
cache=${SANDBOX_CACHE:-/var/cache/etcd-sandbox}
if [ "${1:-}" = "--cold" ]; then rm -rf "$cache"/rootfs-*; fi
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

t=$(date +%s%N); "$bin" bootstrap >/dev/null 2>&1; boot_ms=$(ms "$t")
"$bin" model-config update-status-hook-interval=1s
t=$(date +%s%N)
"$bin" deploy tests/charms/noop -n 1 >/dev/null
until grep -q "machine 0 is running" "$SANDBOX_HOME/logs/model.log"; do sleep 0.1; done
machine_ms=$(ms "$t")
sleep 12
hooks=$(grep -o 'ran update-status in [0-9.]* ms' "$SANDBOX_HOME/logs/model.log" | awk '{print $4}' | sort -n)
n=$(echo "$hooks" | wc -l)
median=$(echo "$hooks" | awk -v n="$n" 'NR==int((n+1)/2){print}')
# Memory: PSS of every process inside the machine (its own PID namespace).
nspawn=$(python3 -c "import json;m=json.load(open('$SANDBOX_HOME/model.json'));print(m['machines']['0']['handle']['nspawn_pid'])")
inner=$(pgrep -P "$nspawn" | head -1)
ns=$(readlink "/proc/$inner/ns/pid")
pss_kb=0
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
  k=$(awk '/^Pss:/{print $2}' "$p/smaps_rollup" 2>/dev/null || echo 0)
  pss_kb=$((pss_kb + ${k:-0}))
done
printf '%-44s %10s\n' "figure" "value"
printf '%-44s %10s\n' "bootstrap (rootfs $( [ "${1:-}" = --cold ] && echo cold || echo cached)), ms" "$boot_ms"
printf '%-44s %10s\n' "deploy -> machine running, ms" "$machine_ms"
printf '%-44s %10s\n' "no-op hook wall time (median of $n), ms" "$median"
printf '%-44s %10s\n' "idle machine memory (PSS of its processes), MiB" "$((pss_kb / 1024))"
