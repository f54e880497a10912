#!/usr/bin/env bash
# On the GPU machine: bench/gpu_round.py's parts, each within its time, results tarred into $OUT.
#   bash bench/gpu_round.sh "probe agree"   (carry .whl and .ref: the reference script)
set -u
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
export PYTHONUNBUFFERED=1 MHABENCH_CACHE_DIR=/tmp/mhabench-cache
o=${OUT:-out}/round; mkdir -p "$o"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv > "$o/gpu.txt" 2>&1
for part in $1; do
  timeout "${2:-540}" python3 bench/gpu_round.py "$part" --reference .ref/better_transformer_vs_mha_functional.py \
    --out "$o" ${SETS:+--sets "$SETS"} ${PLANTS:+--plants "$PLANTS"} ${VARIANTS:+--variants "$VARIANTS"} ${PAIRS:+--pairs "$PAIRS"} ${GRID:+--grid "$GRID"} ${WARM:+--warm} ${PROTOCOL:+--protocol "$PROTOCOL"} > "$o/$part.log" 2>&1; echo "$part exit $?" >> "$o/$part.log"
  tail -n 3 "$o/$part.log"
done
tar -czf "${OUT:-out}/round.tgz" -C "$o" --exclude='*.tgz' .
ls -la "${OUT:-out}"
