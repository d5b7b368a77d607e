#!/usr/bin/env bash
# The fault suite's figures (tests/faults*.rs, not asserted anywhere): for each scenario the
# longest time no client operation completed ok, the operations by outcome, whether the history
# is linearizable, acknowledged writes lost (summed over the members) and the end state. Runs the
# suite (its tests in parallel, as nextest does) and prints one table. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-charm >/dev/null
cargo build --quiet -p sandbox -p checker
export SANDBOX_BIN=$PWD/target/debug/sandbox
export FAULT_CLIENT_BIN=$PWD/target/debug/fault-client
FAULTS_TABLE_DIR=$(mktemp -d)
export FAULTS_TABLE_DIR
trap 'rm -rf "$FAULTS_TABLE_DIR"' EXIT
status=0
cargo nextest run --run-ignored all --no-fail-fast --test faults --test faults_membership \
  --test faults_process >&2 || status=$?

python3 - "$FAULTS_TABLE_DIR" <<'PY'
import json, pathlib, sys
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))]
fmt = "| {:<27} | {:>9} | {:>5} | {:>6} | {:>13} | {:>12} | {:>10} | {:<30} |"
print(fmt.format("scenario", "unavail s", "ok", "failed", "indeterminate", "linearizable",
                 "lost acked", "end state"))
print("|" + "|".join("-" * w for w in (29, 11, 7, 8, 15, 14, 12, 32)) + "|")
for r in rows:
    m = r["report"]
    print(fmt.format(r["scenario"], f'{m["longest_unavailability_s"]:.1f}', m["ok"], m["failed"],
                     m["indeterminate"], m["linearizable"], m["lost_writes"], r["end_state"]))
if not rows:
    print("no scenario reported: see the test output above")
PY
exit "$status"
