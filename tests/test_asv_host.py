"""The ``host`` asv suite (and ``MHABENCH_INSTRUCTIONS``): host figures discovered as the
catalogue says, and a real ``asv run`` on the smoke grid on the CPU, callgrind instruction counts
per call included (~2-3 min: valgrind)."""
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

from conftest import ASV_ENV_KEYS, asv_env, asv_run  # noqa: E402
from mhabench.measure.config import SMOKE_AXES  # noqa: E402
from mhabench.run import spec  # noqa: E402
from mhabench.suite import common  # noqa: E402
from mhabench.track.asv_results import load_record  # noqa: E402

INSTRUCTIONS = [f"host.Instructions.track_{p}" for p in ("fast", "slow", "slow_fair")]
#: the exact host-work counts that exist on a CPU: in the host suite and in every other
COUNTS = [f"host.HostWork.track_{p}_{k}" for p in ("fast", "slow", "slow_fair")
          for k in ("aten_ops", "bytecodes")]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ASV_ENV_KEYS}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _discover(**extra) -> dict:
    """{name: [unit, version]} of what asv discovers with the variables ``extra``."""
    code = ("import sys, json; from asv_runner.discovery import disc_benchmarks; "
            "print(json.dumps({b.name: [b.unit, b.version] for b in disc_benchmarks(sys.argv[1])}))")
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "benchmarks")], cwd=REPO,
                         env=_env(**extra), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_host_suite_discovers_host_figures_only_and_instructions_reach_any_suite():
    host = _discover(MHABENCH_SUITE="host")
    assert sorted(host) == sorted(INSTRUCTIONS + COUNTS)
    assert all(host[n][0] == "instructions" and host[n][1] for n in INSTRUCTIONS)
    assert all(host[n][0] == "count" and host[n][1] for n in COUNTS)
    full = _discover(MHABENCH_SUITE="full")
    assert not any(n.startswith("host.Instructions") for n in full)
    assert set(COUNTS) <= set(full)
    counted = _discover(MHABENCH_SUITE="core", MHABENCH_INSTRUCTIONS="1")
    assert set(INSTRUCTIONS) <= set(counted) and set(COUNTS) <= set(counted)


def test_the_host_suite_counts_instructions_and_gives_valgrind_its_time():
    sel = common.selection({spec.SUITE_ENV: "HOST"})
    assert (sel.suite, sel.spec.run.extras, sel.spec.run.instructions) == ("host", False, True)
    plain = common.selection({})
    assert sel.setup_timeout > plain.setup_timeout  # valgrind's minutes on top of the sweep
    counted = common.selection({spec.INSTRUCTIONS_ENV: "1"})
    assert counted.suite == "full" and counted.spec.run.instructions


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_asv_run_host_suite_records_instruction_counts_on_the_smoke_grid(tmp_path, head):
    d = tmp_path / "host"
    env = asv_env(tmp_path, **{spec.GRID_ENV: "smoke", spec.DEVICE_ENV: "cpu",
                               spec.SUITE_ENV: "host"})
    _, proc = asv_run(d, env, "ci-host", head, timeout=1800)  # valgrind: minutes
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (path,) = glob.glob(str(d / "results" / "ci-host" / f"{head[:8]}-*.json"))
    res = load_record(path).values
    assert sorted(res) == sorted(INSTRUCTIONS + COUNTS)
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
