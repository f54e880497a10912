#!/usr/bin/env bash
# On the GPU machine, one call: what the worker and the journal cost (bench/supervise_cost.py:
# in-process, supervised with the fsync overlapped, supervised with it inline; fresh processes,
# alternated), after timing fsync where the sweeps write. Output in $OUT/supervise.tgz.
#   bash bench/gpu_supervise.sh [STRIDE] [REPEATS] [LIMIT_S] [KINDS]
set -u
stride=${1:-8}; repeats=${2:-3}; limit=${3:-520}; kinds=${4:-in-process,supervised,inline}
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
o=${OUT:-out}/supervise; mkdir -p "$o"
nproc > "$o/nproc.txt"; df -hT . /tmp > "$o/df.txt" 2>&1
timeout "$limit" python3 bench/supervise_cost.py --stride "$stride" --repeats "$repeats" --kinds "$kinds" > "$o/supervise.log" 2>&1
echo "exit $?" >> "$o/supervise.log"
tar -czf "${OUT:-out}/supervise.tgz" -C "${OUT:-out}" supervise
cat "$o/df.txt" "$o/supervise.log"
