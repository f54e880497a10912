#!/usr/bin/env bash
# Wall-clock cost of a full seed-grid sweep: mhabench vs the reference script, same machine.
#   bash bench/cost.sh REFERENCE_SCRIPT OUTDIR
# Both are timed warm: a short sweep first loads the libraries and kernels both use (on a fresh
# machine that cost the first timed run ~8 s); the peak calibration is still paid in the run.
set -euo pipefail
ref=$1; out=$2; mkdir -p "$out"
python3 -m mhabench run --grid seed --stride 40 --no-progress --no-table --no-peak > "$out/warmup.log" 2>&1 || true
t0=$(date +%s.%N)
python3 -m mhabench run --grid seed --no-progress --no-table --json "$out/seed.json" --save-path "$out/seed.csv" \
  --error-save-path "$out/seed-errors.json" > "$out/mhabench.log" 2>&1 || true
t1=$(date +%s.%N)
python3 "$ref" --save-path "$out/reference.csv" --error-save-path "$out/reference-errors.json" > "$out/reference.log" 2>&1
t2=$(date +%s.%N)
tail -n 3 "$out/mhabench.log"
python3 -c "print(f'mhabench seed grid: {$t1-$t0:.1f} s; reference seed grid: {$t2-$t1:.1f} s')" | tee "$out/cost.txt"
