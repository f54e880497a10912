"""``mhabench confirm``: its verdict rule, and real re-measurements with planted interpreters.

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

from mhabench.track.confirm import decide, full_label  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POINT = "B4-S16-E32-H4-b61"


def test_decide_needs_every_pair_ordered_and_the_floor_passed():
    assert decide([1.0, 1.01, 0.99], [1.10, 1.12, 1.09], 0.05)[3] == "regressed"
    assert decide([1.0, 1.01, 0.99], [1.10, 1.12, 1.00], 0.05)[3] == "not confirmed"  # overlap
    assert decide([1.0, 1.01, 0.99], [1.03, 1.04, 1.02], 0.05)[3] == "not confirmed"  # < floor
    assert decide([1.0, 1.01, 0.99], [0.80, 0.82, 0.81], 0.05)[3] == "improved"
    ratio, low, high, _ = decide([1.0, 2.0, 1.5], [3.0, 3.0, 3.0], 0.05)
    assert (ratio, low, high) == (2.0, 1.5, 3.0)
    assert decide([], [1.0], 0.05)[3] == "not confirmed"
    assert full_label("B2-S8-E32-H4-b1", "float32", "cpu") == "B2-S8-E32-H4-b1-float32-cpu"


def _confirm(base: str, head: str, *extra, json_path: Path | None = None):
    args = [sys.executable, "-m", "mhabench", "confirm", "A", "B", "--points", POINT,
            "--base-python", base, "--head-python", head, "--target-ms", "30", *extra]
    if json_path:
        args += ["--json", str(json_path)]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def wrappers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("confirm")
    slowed = plant.install_dir(tmp / "plant", plant.Plant(busy_frac=0.5))
    return (plant.interpreter(tmp / "plain", REPO),
            plant.interpreter(tmp / "slowed", REPO, slowed))


def test_a_planted_slowdown_is_confirmed(wrappers, tmp_path):
    """(A/A pairs, which cost as much again, are measured by bench/gate_cpu.py.)"""
    plain, slowed = wrappers
    out = tmp_path / "c.json"
    proc = _confirm(plain, slowed, json_path=out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    got = {c["figure"]: c for c in doc["confirmations"]}
    assert set(got) == {"speedup.FastOverSlow.track_wall", "speedup.FastOverSlow.track_wall_fair"}
    for c in got.values():
        assert c["verdict"] == "regressed" and len(c["base"]) == len(c["head"]) == 3, c
        assert c["low"] > 1.05 and c["fast_us"][1] > c["fast_us"][0], c
    assert "CONFIRMED REGRESSION: 2 of 2" in proc.stdout


def test_confirm_bad_input_is_one_line_exit_2(wrappers, tmp_path):
    plain, _ = wrappers
    for extra, named in ((["--repeats", "2"], "--repeats"),
                         (["--figures", "speedup.Noise.track_wall"], "speedup.Noise.track_wall")):
        proc = _confirm(plain, plain, *extra)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert named in proc.stderr
    proc = _confirm(plain, str(tmp_path / "nope"))
    assert proc.returncode == 2 and "nope" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "mhabench", "confirm", "A", "B", "--dir",
                           str(tmp_path), "--points", POINT], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--base-python needed" in proc.stderr, proc.stderr
