#!/usr/bin/env bash
# What the figures beyond the reference cost: the seed grid without them, then with them.
#   bash bench/extras_cost.sh OUTDIR [RUN ARGS...]
# The second run's own split (extra_fp32, extra_backends, extra_memory) is printed too.
set -euo pipefail
out=$1; shift; mkdir -p "$out"
run() {
  local name=$1; shift
  local t0 t1; t0=$(date +%s.%N)
  python3 -m mhabench run --grid seed --no-progress --no-table --json "$out/$name.json" "$@" \
    > "$out/$name.log" 2>&1 || true
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.1f}')"
}
bare=$(run bare --no-extras --no-peak "$@")
full=$(run full "$@")
tail -n 1 "$out/bare.log"; tail -n 1 "$out/full.log"
python3 -c "print(f'seed grid without extras: {$bare} s; with them: {$full} s; overhead {$full / $bare - 1:+.1%}')" \
  | tee "$out/extras-cost.txt"
