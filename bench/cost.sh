#!/usr/bin/env bash
# Wall-clock cost of a full seed-grid sweep: mhabench vs the reference script, same machine.
#   [REFERENCE_FIRST=1] bash bench/cost.sh REFERENCE_SCRIPT OUTDIR
# (REFERENCE_FIRST=1 times the reference before mhabench: a second pair in the other order.)
# Both are timed warm: a short sweep first loads the libraries and kernels both use (on a fresh
# machine that cost the first timed run ~8 s); the peak calibration is still paid in the run.
set -euo pipefail
ref=$1; out=$2; mkdir -p "$out"
python3 -m mhabench run --grid seed --stride 40 --no-progress --no-table --no-peak > "$out/warmup.log" 2>&1 || true
ours() {
  python3 -m mhabench run --grid seed --no-progress --no-table --json "$out/seed.json" \
    --save-path "$out/seed.csv" --error-save-path "$out/seed-errors.json" > "$out/mhabench.log" 2>&1 || true
}
theirs() {
  python3 "$ref" --save-path "$out/reference.csv" --error-save-path "$out/reference-errors.json" \
    > "$out/reference.log" 2>&1
}
timed() { local t0; t0=$(date +%s.%N); "$1"; python3 -c "print($(date +%s.%N) - $t0)"; }
if [ -n "${REFERENCE_FIRST:-}" ]; then r=$(timed theirs); m=$(timed ours); else m=$(timed ours); r=$(timed theirs); fi
tail -n 3 "$out/mhabench.log"
python3 -c "print(f'mhabench seed grid: {$m:.1f} s; reference seed grid: {$r:.1f} s')" | tee "$out/cost.txt"
