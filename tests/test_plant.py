"""The test-only plant: ``call_frac`` slows exactly the calls that took the fast path, by a
busy wait of that fraction of the whole ``MultiheadAttention.forward`` call."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import plant

REPO = Path(__file__).resolve().parents[1]

CODE = r"""
import json, torch
from mhabench.measure.config import Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import make_paths
inp = build(Point(2, 8, 32, 4, 1, dtype="float32", device="cpu"))
paths = make_paths(inp)
state = torch._mhabench_plant
out = {}
for name in ("slow", "fast", "fast", "slow_fair"):
    before = len(state.get("spun", []))
    with paths[name].context():
        paths[name].call()
    out.setdefault(name, []).append(state.get("spun", [])[before:])
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh process importing torch
def test_call_frac_waits_that_fraction_of_each_fast_call_only(tmp_path):
    d = plant.install_dir(tmp_path / "plant", plant.Plant(call_frac=0.5))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(d), str(REPO)]),
           "OMP_NUM_THREADS": "1"}
    got = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    out = json.loads(got.stdout.strip().splitlines()[-1])
    assert out["slow"] == [[]] and out["slow_fair"] == [[]], "slow calls are left alone"
    for spun in out["fast"]:
        assert len(spun) == 1, "one wait per fast call"
        took, total = spun[0]
        assert total >= 1.5 * took, "the call took half as long again"
