"""The gate's rule and its reading of asv result files (no asv run: files written here)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mhabench.config import ConfigError
from mhabench.gate import Rule, compare, gate, judge, label, threshold

REPO = Path(__file__).resolve().parents[1]


def test_threshold_is_combined_noise_between_floor_and_cap():
    rule = Rule(k=1.0, floor=0.05, cap=1.0)
    assert threshold(0.03, 0.04, rule) == pytest.approx(0.05)   # hypot = 0.05
    assert threshold(0.3, 0.4, rule) == pytest.approx(0.5)
    assert threshold(0.01, 0.01, rule) == 0.05                   # floor
    assert threshold(3.0, 4.0, rule) == 1.0                      # cap
    assert threshold(0.3, 0.4, Rule(k=2.0)) == pytest.approx(1.0)
    assert threshold(None, math.nan, rule) == 0.05               # noise unknown: floor


def test_judge_flags_only_increases_beyond_the_threshold():
    rule = Rule()
    assert not judge("p", "f", 1.0, 1.09, 0.1, 0.0, rule).regressed   # +9% < 10% noise
    v = judge("p", "f", 1.0, 1.11, 0.1, 0.0, rule)
    assert v.regressed and v.ratio == pytest.approx(1.11) and v.threshold == pytest.approx(0.1)
    assert not judge("p", "f", 1.0, 0.5, 0.0, 0.0, rule).regressed    # faster: never flagged
    assert judge("p", "f", 1.0, 2.5, 5.0, 5.0, rule).regressed        # noisy, but over the cap


def test_judge_failed_after_is_a_regression_and_n_a_is_skipped():
    rule = Rule()
    v = judge("p", "f", 1.0, None, 0.1, None, rule)
    assert v.regressed and math.isinf(v.ratio)
    assert judge("p", "f", math.nan, 1.0, 0.1, 0.1, rule) is None    # n/a before
    assert judge("p", "f", None, 1.0, 0.1, 0.1, rule) is None        # failed before
    assert judge("p", "f", 1.0, math.nan, 0.1, 0.1, rule) is None    # n/a after


@pytest.mark.parametrize("kw", [{"k": -1}, {"floor": math.nan}, {"cap": math.inf},
                                {"floor": 0.5, "cap": 0.1}])
def test_bad_rule_raises(kw):
    with pytest.raises(ConfigError):
        Rule(**kw)


def test_compare_pairs_each_figure_with_its_noise():
    before = {"speedup.FastOverSlow.track_wall": {"a": 1.0, "b": 1.0},
              "speedup.Noise.track_wall": {"a": 0.5, "b": 0.01},
              "time_per_call.WallTime.track_fast": {"a": 1.0}}
    after = {"speedup.FastOverSlow.track_wall": {"a": 1.3, "b": 1.3},
             "speedup.Noise.track_wall": {"a": 0.5, "b": 0.01},
             "time_per_call.WallTime.track_fast": {"a": 9.0}}
    got = {v.point: v.regressed for v in compare(before, after, Rule())}
    assert got == {"a": False, "b": True}  # +30%: within a's noise, beyond b's


def _write_result(d: Path, machine: str, commit: str, wall: list, noise: list) -> None:
    params = [["2"], ["8"], ["32"], ["4"], ["1", "61"]]
    doc = {"commit_hash": commit, "result_columns": ["result", "params"],
           "results": {"speedup.FastOverSlow.track_wall": [wall, params],
                       "speedup.Noise.track_wall": [noise, params]}}
    (d / machine).mkdir(parents=True, exist_ok=True)
    (d / machine / f"{commit[:8]}-virtualenv-py3.11.json").write_text(json.dumps(doc))


@pytest.fixture
def stored(tmp_path):
    res = tmp_path / "results"
    a, b = "a" * 40, "b" * 40
    _write_result(res, "m", a, [1.0, 1.0], [0.02, 0.02])
    _write_result(res, "m", b, [1.5, 1.01], [0.02, 0.02])
    (tmp_path / "builds.json").write_text(json.dumps(
        {"commits": {"torch-2.13.0": a, "torch-2.14.1": b}}))
    return tmp_path


def test_gate_reads_stored_results_by_version_tag_or_commit(stored):
    for base, head in (("2.13.0", "2.14.1"), ("torch-2.13.0", "bbbbbbbb")):
        verdicts, ctx = gate(stored, base, head)
        assert ctx["machine"] == "m"
        assert {label_: v.regressed for v in verdicts for label_ in [v.point]} == {
            "B2-S8-E32-H4-b1": True, "B2-S8-E32-H4-b61": False}
    assert label(("2", "8", "32", "4", "1")) == "B2-S8-E32-H4-b1"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mhabench", "gate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_gate_cli_exit_codes(stored):
    bad = _cli("--dir", str(stored), "2.13.0", "2.14.1")
    assert bad.returncode == 1 and "B2-S8-E32-H4-b1" in bad.stdout
    assert "B2-S8-E32-H4-b61" not in bad.stdout
    good = _cli("--dir", str(stored), "2.14.1", "2.13.0")
    assert good.returncode == 0, good.stdout
    for args, named in ((["--dir", str(stored), "2.13.0", "2.99"], "'2.99'"),
                        (["--dir", str(stored), "--machine", "x", "2.13.0", "2.14.1"], "'x'"),
                        (["--dir", str(stored / "nope"), "2.13.0", "2.14.1"], "nope"),
                        (["--dir", str(stored), "--k", "-1", "2.13.0", "2.14.1"], "--k")):
        proc = _cli(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert named in proc.stderr, proc.stderr
