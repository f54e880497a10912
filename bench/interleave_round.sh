#!/usr/bin/env bash
# On the GPU machine: bench/interleave_probe.py in N fresh processes (default 2), results under $OUT.
#   bash bench/interleave_round.sh [N] [GRID] [CHUNK] [DESIGN: alternate or mixed]
set -u
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
o=${OUT:-out}/interleave; mkdir -p "$o"
for i in $(seq 0 $((${1:-2} - 1))); do
  timeout 100 python3 bench/interleave_probe.py --grid "${2:-seed/8}" --chunk "${3:-8}" --device cuda --design "${4:-alternate}" \
    --out "$o/process-$i.json" > "$o/process-$i.log" 2>&1; echo "exit $?" >> "$o/process-$i.log"
  tail -n 30 "$o/process-$i.log"
done
tar -czf "${OUT:-out}/interleave.tgz" -C "$o" .
