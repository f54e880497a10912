#!/usr/bin/env bash
# asv on a GPU machine with an existing environment: run a grid, publish, report the time split.
#   MHABENCH_GRID=seed bash bench/asv_gpu.sh OUTDIR [MACHINE]
# Works in a copy of the tree without git history too (it makes a throwaway commit).
# ASV_TIMEOUT=SECONDS stops asv run early and reports how far it got; ASV_BENCH=REGEX runs only
# the matching benchmarks (e.g. '^speedup\.' : the figures the regression gate reads).
set -uo pipefail
out=$1; machine=${2:-gpu}; mkdir -p "$out"
py=$(python3 -c 'import sys; print(sys.executable)')
git rev-parse HEAD >/dev/null 2>&1 || { git init -q -b main && git add -A && \
  git -c user.name=mhabench -c user.email=mhabench@localhost commit -qm snapshot; }
export HOME=${ASV_HOME:-$HOME} MHABENCH_DEVICE=${MHABENCH_DEVICE:-cuda}
asv machine --yes --machine "$machine" >/dev/null
t0=$(date +%s.%N)
timeout "${ASV_TIMEOUT:-0}" asv run -E "existing:$py" --set-commit-hash "$(git rev-parse HEAD)" \
  --machine "$machine" --launch-method forkserver ${ASV_BENCH:+--bench "$ASV_BENCH"} \
  > "$out/asv-run.log" 2>&1; rc=$?
t1=$(date +%s.%N)
if [ "$rc" = 124 ]; then
  python3 - "$out/asv-run.log" "$t0" "$t1" <<'PY'
import re, sys
log, t0, t1 = open(sys.argv[1]).read(), float(sys.argv[2]), float(sys.argv[3])
done = re.findall(r"\[\s*([0-9.]+)%\]", log)
names = re.findall(r"··· (\S+\.track_\w+)\s", log)
print(f"asv run stopped after {t1 - t0:.0f} s at {done[-1] if done else 0}%: "
      f"{len(set(names))} benchmark methods finished")
PY
  exit 1
fi
asv publish > "$out/asv-publish.log" 2>&1
tail -n 5 "$out/asv-run.log"
python3 - "$machine" "$t0" "$t1" "$rc" <<'PY'
import glob, json, sys
machine, t0, t1, rc = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
files = [f for f in glob.glob(f".asv/results/{machine}/*.json") if not f.endswith("machine.json")]
d = json.load(open(files[0]))
cache = {k: v for k, v in d.get("durations", {}).items() if "setup_cache" in k}
sweep = sum(cache.values())
total = t1 - t0
vals = d["results"]
n = sum(len([x for x in v[0] if x is not None]) for v in vals.values() if isinstance(v, list) and v and isinstance(v[0], list))
print(f"asv run exit {rc}: {total:.1f} s total; sweep (setup_cache) {sweep:.1f} s; "
      f"asv overhead {total - sweep:.1f} s; {n} values recorded")
PY
cp -r .asv/results "$out/" 2>/dev/null; ls .asv/html >/dev/null 2>&1 && echo "html published"
