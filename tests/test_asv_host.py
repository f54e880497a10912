"""The ``host`` asv suite: only host.* figures discovered, and a real ``asv run`` of it on the
smoke grid on the CPU, callgrind instruction counts per call included (~2-3 min: valgrind)."""
from __future__ import annotations

import glob
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mhabench.suite import common  # noqa: E402
from conftest import ASV_ENV_KEYS, asv_env, asv_run  # noqa: E402
from mhabench.track.asv_results import file_values  # noqa: E402
from mhabench.measure.config import SMOKE_AXES  # noqa: E402

INSTRUCTIONS = [f"host.Instructions.track_{p}" for p in ("fast", "slow", "slow_fair")]
#: the exact host-work counts that exist on a CPU: in the host suite and in every other
COUNTS = [f"host.HostWork.track_{p}_aten_ops" for p in ("fast", "slow", "slow_fair")]


def _env(suite: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    return {**env, common.SUITE_ENV: suite, "PYTHONPATH": str(REPO)}


def _discover(suite: str) -> dict:
    """{name: [unit, version]} of what asv discovers with ``MHABENCH_SUITE=suite``."""
    code = ("import sys, json; from asv_runner.discovery import disc_benchmarks; "
            "print(json.dumps({b.name: [b.unit, b.version] for b in disc_benchmarks(sys.argv[1])}))")
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "benchmarks")], cwd=REPO,
                         env=_env(suite), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_host_suite_discovers_host_figures_only_and_others_none_of_them():
    host = _discover("host")
    assert sorted(host) == sorted(INSTRUCTIONS + COUNTS)
    assert all(host[n][0] == "instructions" and host[n][1] for n in INSTRUCTIONS)
    assert all(host[n][0] == "count" and host[n][1] for n in COUNTS)
    full = _discover("full")
    assert not any(n.startswith("host.Instructions") for n in full)
    assert set(COUNTS) <= set(full)
    code = ("from benchmarks import host; from mhabench.measure.config import Point; "
            "from mhabench.measure.results import Result; "
            "keys = Result(Point(2, 8, 32, 4, 1, dtype='fp32', device='cpu')).metrics(); "
            "print(all(getattr(host.Instructions, f'track_{p}').metric in keys "
            "for p in ('fast', 'slow', 'slow_fair')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env=_env("host"), timeout=120)
    assert out.stdout.strip() == "True", out.stderr  # every figure reads a metric Result makes
    sel = common.selection({common.SUITE_ENV: "HOST"})
    assert (sel.suite, sel.extras) == ("host", False)
    assert sel.setup_timeout == common.SETUP_TIMEOUTS["smoke"] + common.HOST_TIMEOUT  # valgrind
    assert common.selection({common.SUITE_ENV: "host", common.TIMEOUT_ENV: "5"}).setup_timeout == 5


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_asv_run_host_suite_records_instruction_counts_on_the_smoke_grid(tmp_path, head):
    d = tmp_path / "host"
    env = asv_env(tmp_path, **{common.GRID_ENV: "smoke", common.DEVICE_ENV: "cpu",
                               common.SUITE_ENV: "host"})
    _, proc = asv_run(d, env, "ci-host", head, timeout=common.HOST_TIMEOUT)  # valgrind: minutes
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (path,) = glob.glob(str(d / "results" / "ci-host" / f"{head[:8]}-*.json"))
    res = file_values(json.loads(Path(path).read_text()))
    assert sorted(k for k in res if not k.startswith("<")) == sorted(INSTRUCTIONS + COUNTS)
    for name in COUNTS:  # exact: whole numbers
        assert all(v == int(v) and v > 0 for v in res[name].values()), (name, res[name])
    combos = {tuple(str(v) for v in c) for c in itertools.product(
        SMOKE_AXES.batch_sizes, SMOKE_AXES.seq_lens, SMOKE_AXES.embed_dims, SMOKE_AXES.num_heads,
        SMOKE_AXES.beta_bs)}
    counts = {n: res[n] for n in INSTRUCTIONS}
    for name, values in counts.items():
        assert set(values) == combos, name
        for combo, v in values.items():
            # a tiny MultiheadAttention call is some 10^5..10^6 host instructions
            assert isinstance(v, float) and math.isfinite(v) and 1e5 < v < 1e8, (name, combo, v)
    _, slow, fair = (counts[n] for n in INSTRUCTIONS)
    for combo in combos:
        # the reference's slow call records autograd history that slow_fair does not
        assert slow[combo] > fair[combo], combo
