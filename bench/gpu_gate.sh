#!/usr/bin/env bash
# On the GPU machine, one call: what the host-work session costs (bench/hostwork_cost.py), the
# gate's A/A records and planted regressions (bench/gate_gpu.py), and what supervision and the
# journal cost (bench/supervise_cost.py, A B B A). Everything goes into $OUT/gate.tgz.
#   bash bench/gpu_gate.sh [GATE_TARGET_MS] [SUPERVISE_STRIDE] [PLANTS] [PROBE]   (.whl carried)
set -u
tm=${1:-30}; ss=${2:-8}; plants=${3:-kernel,aten,host}; probe=${4:-1}
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
o=${OUT:-out}/gate; mkdir -p "$o"
[ "$probe" = 1 ] && timeout 60 python3 bench/hostwork_cost.py --stride 8 --out "$o/hostwork_cost.json" > "$o/hostwork_cost.log" 2>&1
timeout 320 python3 bench/gate_gpu.py --target-ms "$tm" --plants "$plants" --out "$o" > "$o/gate.log" 2>&1; echo "gate exit $?" >> "$o/gate.log"
timeout 180 python3 bench/supervise_cost.py --stride "$ss" --repeats 2 > "$o/supervise.log" 2>&1; echo "supervise exit $?" >> "$o/supervise.log"
tar -czf "${OUT:-out}/gate.tgz" -C "${OUT:-out}" gate
cat "$o/hostwork_cost.json" 2>/dev/null; grep -E "exit|A[0-9]|kernel|aten|host:" "$o/gate.log" | head -12; tail -n 6 "$o/supervise.log"
