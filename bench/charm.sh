#!/usr/bin/env bash
# Charm figures (not asserted anywhere): update-status hook wall time, deploy -n 3 → all
# active, add-unit 3 → 5 → all active, binary size, peak RSS of one hook. Run as root.
# `bench/charm.sh --tls` measures the same with the charm's `tls=true`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
scripts/build-charm >/dev/null
cargo build --quiet --release -p sandbox
bin=$PWD/target/release/sandbox
export SANDBOX_HOME=${TMPDIR:-/tmp}/sandbox-bench-charm
trap '"$bin" destroy >/dev/null 2>&1 || true' EXIT
"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$SANDBOX_HOME"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

"$bin" bootstrap >/dev/null
t=$(date +%s%N)
config=(); [ "${1:-}" = --tls ] && config=(--config tls=true)
"$bin" deploy build/etcd.charm -n 3 "${config[@]}" --resource etcd=build/etcd.tar.gz >/dev/null
"$bin" wait-for --timeout 10m 2>/dev/null
deploy_ms=$(ms "$t")
t=$(date +%s%N)
"$bin" add-unit etcd -n 2 >/dev/null
"$bin" wait-for --timeout 10m 2>/dev/null
scale_ms=$(ms "$t")

# update-status every 2 s for a while; the controller logs each hook's wall time.
"$bin" model-config update-status-hook-interval=2s
sleep 30
times=$(grep -o 'ran update-status in [0-9.]* ms' "$SANDBOX_HOME/logs/model.log" | awk '{print $4}' | sort -n)
n=$(echo "$times" | wc -l)
median=$(echo "$times" | awk -v n="$n" 'NR==int((n+1)/2){print}')
"$bin" model-config update-status-hook-interval=5m

# Peak RSS of one update-status hook, with GNU time copied into the machine.
"$bin" ssh etcd/0 -- 'cat > /usr/local/bin/gnutime && chmod +x /usr/local/bin/gnutime' < /usr/bin/time
rss_kb=$("$bin" exec --unit etcd/0 -- 'JUJU_DISPATCH_PATH=hooks/update-status gnutime -f %M ./dispatch 2>&1 | tail -1')
size=$(stat -c %s build/charm/bin/etcd-charm)

printf '%-48s %10s\n' "figure${1:+ ($1)}" "value"
printf '%-48s %10s\n' "update-status hook wall time (median of $n), ms" "$median"
printf '%-48s %10s\n' "deploy -n 3 -> all active, s" "$(awk -v m="$deploy_ms" 'BEGIN{printf "%.1f", m/1000}')"
printf '%-48s %10s\n' "add-unit 3 -> 5 -> all active, s" "$(awk -v m="$scale_ms" 'BEGIN{printf "%.1f", m/1000}')"
printf '%-48s %10s\n' "charm binary size, bytes" "$size"
printf '%-48s %10s\n' "peak RSS of one update-status hook, KiB" "$rss_kb"
