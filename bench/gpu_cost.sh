#!/usr/bin/env bash
# On the GPU machine, one call: the cost of a full `mhabench run --grid seed` against the
# reference script (bench/cost.sh, same lease), then how far callgrind gets with torch on CUDA
# (bench/instructions_cuda.py; valgrind carried in .vg: bin/ and lib/ as VALGRIND_LIB wants).
# Everything goes into $OUT/cost.tgz.
#   [COST_LIMIT=S] bash bench/gpu_cost.sh [INSTRUCTIONS_LIMIT_S]   (.ref/reference.py, .whl and .vg carried)
set -u
limit=${1:-120}
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
o=${OUT:-out}/cost; mkdir -p "$o"
nvidia-smi > "$o/smi.txt" 2>&1; nproc > "$o/nproc.txt"
timeout ${COST_LIMIT:-430} bash bench/cost.sh .ref/reference.py "$o/c" > "$o/cost.log" 2>&1; echo "cost exit $?" >> "$o/cost.log"
rm -f "$o/c/reference.csv"
if [ -d .vg ]; then
  export PATH=$PWD/.vg/bin:$PATH VALGRIND_LIB=$PWD/.vg/lib
  timeout $((limit + 30)) python3 bench/instructions_cuda.py --limit "$limit" --points 1 \
    --out "$o/instructions_cuda.json" > "$o/instructions_cuda.log" 2>&1
  echo "instructions exit $?" >> "$o/instructions_cuda.log"
fi
tar -czf "${OUT:-out}/cost.tgz" -C "${OUT:-out}" cost
cat "$o/cost.log"; tail -n 5 "$o/c/mhabench.log"; tail -n 15 "$o/instructions_cuda.log"
