"""``mhabench confirm``: its verdict rule, the one run path it measures through, and real
re-measurements with planted interpreters.

An "interpreter" here is a small script that execs this Python with ``PYTHONPATH`` naming a
plant directory (tests/plant.py: extra work in every fast-path call) before this project.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plant  # noqa: E402

from mhabench.track import confirm as cf  # noqa: E402
from mhabench.track.confirm import decide  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POINT = "B4-S16-E32-H4-b61"
WALL = "speedup.FastOverSlow.track_wall"


def test_decide_needs_every_pair_ordered_and_the_floor_passed():
    assert decide([1.0, 1.01, 0.99], [1.10, 1.12, 1.09], 0.05)[3] == "regressed"
    assert decide([1.0, 1.01, 0.99], [1.10, 1.12, 1.00], 0.05)[3] == "not confirmed"  # overlap
    assert decide([1.0, 1.01, 0.99], [1.03, 1.04, 1.02], 0.05)[3] == "not confirmed"  # < floor
    assert decide([1.0, 1.01, 0.99], [0.80, 0.82, 0.81], 0.05)[3] == "improved"
    ratio, low, high, _ = decide([1.0, 2.0, 1.5], [3.0, 3.0, 3.0], 0.05)
    assert (ratio, low, high) == (2.0, 1.5, 3.0)
    assert decide([], [1.0], 0.05)[3] == "not confirmed"


def test_confirm_measures_through_the_one_run_path(monkeypatch):
    """Each run of confirm is :func:`mhabench.run.execute.execute` with the build's
    interpreter, base and head alternating."""
    from mhabench.run import execute as ex
    from mhabench.run.execute import Outcome
    from mhabench.measure.results import Result
    from mhabench.measure.config import point_of_label
    seen = []

    def fake(run, outputs, journal, **kw):
        seen.append(run.spec.python)
        r = Result(point_of_label(f"{POINT}-float32-cpu"), rounds={"fast": [1.0], "slow": [2.0]})
        return Outcome([r], {}, Path(journal))
    monkeypatch.setattr(ex, "execute", fake)
    found = cf.confirm(sys.executable, sys.executable, [(POINT, WALL)], "cpu", "float32",
                       repeats=3, log=lambda *_: None)
    assert seen == [sys.executable] * 6
    assert found[0].base == found[0].head == [0.5, 0.5, 0.5]


def _confirm(base: str, head: str, *extra, json_path: Path | None = None):
    args = [sys.executable, "-m", "mhabench", "confirm", "A", "B", "--points", POINT,
            "--base-python", base, "--head-python", head, *extra]
    if json_path:
        args += ["--json", str(json_path)]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def wrappers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("confirm")
    slowed = plant.install_dir(tmp / "plant", plant.Plant(call_frac=0.5))
    return (plant.interpreter(tmp / "plain", REPO),
            plant.interpreter(tmp / "slowed", REPO, slowed))


@pytest.mark.slow
def test_a_planted_slowdown_is_confirmed(wrappers, tmp_path):
    """The fast call made 50% slower: the fast/slow ratio the gate judges is confirmed in
    every (head run, base run) pair. (A/A pairs, which cost as much again, are in the lab.)"""
    plain, slowed = wrappers
    out = tmp_path / "c.json"
    proc = _confirm(plain, slowed, json_path=out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    ratio = next(c for c in doc["confirmations"] if c["figure"] == WALL)
    assert ratio["verdict"] == "regressed" and len(ratio["base"]) == len(ratio["head"]) == 3
    assert ratio["low"] > 1.05, ratio
    assert "CONFIRMED REGRESSION" in proc.stdout
