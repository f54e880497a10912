#!/usr/bin/env bash
# A newcomer's first steps, scripted: a fresh clone and a fresh virtualenv set up with the
# README's own commands, then `mhabench run`, `plot`, `serve` (fetched once over 127.0.0.1) and
# `gate` on the smoke grid, with their exit codes and outputs checked. The virtualenv sees the
# system's packages (--system-site-packages), so torch is not downloaded again.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "newcomer: FAILED: $*" >&2; exit 1; }
step() { echo "newcomer: $*"; }

export HOME="$work/home" MHABENCH_CACHE_DIR="$work/cache"  # nothing of the caller's is used
mkdir -p "$HOME"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
git checkout -q -B main  # asv plots the commits of its branch, main
git config user.email newcomer@localhost && git config user.name newcomer

step "virtualenv and the README's install line"
python3 -m venv --system-site-packages "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
install_line="$(grep -m1 -o "pip install torch==[^&]*'\.\[asv,plot\]'" README.md)" \
  || fail "README has no 'pip install torch==... -e .[asv,plot]' line"
eval "python3 -m $install_line" >/dev/null
where="$(python3 -c 'import mhabench; print(mhabench.__file__)')"
case "$where" in "$work/clone/"*) ;; *) fail "mhabench imported from $where, not the clone" ;; esac

step "the README's main job: asv run + publish (smoke grid), for two commits"
main_job="$(grep -m1 -o 'asv machine --yes --machine local && asv run .*asv publish' README.md)" \
  || fail "README has no main-job line"
eval "$main_job" >"$work/asv1.log" 2>&1 || { tail -40 "$work/asv1.log"; fail "main job"; }
git commit -q --allow-empty -m "a second commit"
eval "$main_job" >"$work/asv2.log" 2>&1 || { tail -40 "$work/asv2.log"; fail "main job again"; }
[ -f .asv/html/index.json ] || fail "no .asv/html/index.json"

step "mhabench run (the defaults: smoke grid, CPU, one thread)"
mhabench run --json "$work/out/run.json" >"$work/run.log" 2>"$work/run.err" \
  || { cat "$work/run.log" "$work/run.err"; fail "run exited $?"; }
grep -q "1 thread(s)" "$work/run.log" || fail "run does not say its thread count"
grep -q "speedup↑" "$work/run.log" || fail "run's table lacks the speedup column"
grep -q "wrote $work/out/run_breakeven.csv, $work/out/run.json" "$work/run.log" \
  || fail "run does not name the files it wrote"
python3 -c 'import sys; sys.exit(any(len(ln.rstrip("\n")) > 160 for ln in open(sys.argv[1],
    encoding="utf-8")))' "$work/run.log" || fail "run prints lines wider than 160 characters"

step "mhabench plot (default --out beside the input)"
mhabench plot "$work/out/run.json" >"$work/plot.log"
png="$(head -1 "$work/plot.log")"
[ "$(dirname "$png")" = "$work/out/run_plots" ] && [ -s "$png" ] || fail "plot wrote '$png'"

step "mhabench serve, fetched once over 127.0.0.1"
serve_args=(--port 0)
mhabench serve .asv/html "${serve_args[@]}" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do grep -q '^serving ' "$work/serve.log" && break; sleep 0.1; done
url="$(grep -o 'http://127.0.0.1:[0-9]*/' "$work/serve.log" | head -1)"
[ -n "$url" ] || { cat "$work/serve.log"; fail "serve did not start"; }
python3 - "$url" <<'EOF' || fail "serve"
import sys, urllib.request
url = sys.argv[1]
page = urllib.request.urlopen(url, timeout=30).read().decode()
assert "asv" in page.lower(), "not asv's page"
assert "/_cdn/" in page and "https://code.jquery.com" not in page, "CDN addresses left"
local = page.split('"/_cdn/', 1)[1].split('"', 1)[0]
assert urllib.request.urlopen(url + "_cdn/" + local, timeout=30).read(), local
assert urllib.request.urlopen(url + "index.json", timeout=30).read().startswith(b"{")
EOF
kill "$server" && wait "$server" || true
server=""

step "mhabench gate: the second commit against the first (same code, one record each)"
base="$(git rev-parse HEAD~1)" head="$(git rev-parse HEAD)"
rc=0
mhabench gate "$base" "$head" --dir .asv --machine local >"$work/gate.log" 2>&1 || rc=$?
# 0 or 1 is a verdict (one record each on a shared host: the wall figures may move); 2 or 3 is not
[ "$rc" -le 1 ] || { cat "$work/gate.log"; fail "gate exited $rc"; }
grep -q "points" "$work/gate.log" || { cat "$work/gate.log"; fail "gate said nothing"; }
step "all steps passed"
