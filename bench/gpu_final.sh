#!/usr/bin/env bash
# On the GPU machine, one call: the gate's A/A records and planted regressions, the cost of
# `mhabench run` against the reference script on the same points, and what supervision and the
# journal cost; everything tarred into $OUT/final.tgz.
#   bash bench/gpu_final.sh [STRIDE_COST] [STRIDE_SUPERVISE]     (.ref/reference.py and .whl carried)
set -u
sc=${1:-4}; ss=${2:-32}
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
o=${OUT:-out}/final; mkdir -p "$o"
timeout 270 python3 bench/gate_gpu.py --target-ms 30 --out "$o" > "$o/gate.log" 2>&1; echo "gate exit $?" >> "$o/gate.log"
t0=$(date +%s.%N)
timeout 150 python3 -m mhabench run --grid seed --stride "$sc" --no-progress --no-table \
  --json "$o/seed.json" > "$o/run.log" 2>&1; echo "run exit $?" >> "$o/run.log"
t1=$(date +%s.%N)
timeout 150 python3 bench/protocols.py --worker --reference .ref/reference.py --stride "$sc" \
  --out "$o/reference.json" > "$o/reference.log" 2>&1; echo "reference exit $?" >> "$o/reference.log"
t2=$(date +%s.%N)
python3 -c "a=$t1-$t0; b=$t2-$t1; print(f'cost, seed grid / $sc: mhabench run {a:.1f} s, reference {b:.1f} s, ratio {a/b:.3f}')" | tee "$o/cost.txt"
timeout 100 python3 bench/supervise_cost.py --stride "$ss" --repeats 2 > "$o/supervise.log" 2>&1; echo "supervise exit $?" >> "$o/supervise.log"
tar -czf "${OUT:-out}/final.tgz" -C "${OUT:-out}" final
tail -n 25 "$o/gate.log"; tail -n 3 "$o/run.log"; tail -n 6 "$o/supervise.log"
