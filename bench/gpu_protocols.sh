#!/usr/bin/env bash
# On the GPU machine: the host-work counts on a few seed points (what they say and cost), then
# the wall protocols' A/A comparison against the reference; everything tarred into $OUT.
#   bash bench/gpu_protocols.sh [CANDIDATES] [SECONDS]     (reference copied to .ref/reference.py)
set -u
cands=${1:-d,e,a,d100}; limit=${2:-470}
o=${OUT:-out}/protocols; mkdir -p "$o"
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv > "$o/smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, [m for m in dir(torch._C._autograd._KinetoEvent) if 'byte' in m or 'meta' in m])" > "$o/torch.txt" 2>&1
[ -n "${SKIP_PROBE:-}" ] || timeout 90 python3 bench/probe_hostwork.py --stride 128 --json "$o/hostwork.json" > "$o/hostwork.log" 2>&1
timeout "$limit" python3 bench/protocols.py --stride 8 --runs 3 --reference .ref/reference.py \
  --candidates "$cands" --out "$o/runs" > "$o/protocols.log" 2>&1
echo "protocols exit $?" >> "$o/protocols.log"
tar -czf "${OUT:-out}/protocols.tgz" -C "${OUT:-out}" protocols
tail -n 20 "$o/hostwork.log"; tail -n 12 "$o/protocols.log"
