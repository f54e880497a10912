"""``bench/interleave_probe.py``: a point's rounds spread over a chunk, each kept by its own probe,
against its rounds back to back; its figures and its summary, and one sweep on this CPU."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import interleave_probe as ip  # noqa: E402


def test_rounds_probed_slow_are_left_out_and_never_all():
    rounds, probes = [100.0, 180.0, 175.0], [[55.0, 56.0], [104.0, 56.0], [55.0, 110.0]]
    got = ip.figures(rounds, probes, fast_state=55.0, slow_state=1.3)
    assert got == {"spread_all": 175.0, "spread_kept": 100.0, "rounds_kept": 1}
    every_slow = ip.figures(rounds, [[110.0, 110.0]] * 3, fast_state=55.0, slow_state=1.3)
    assert every_slow["spread_kept"] == 175.0 and every_slow["rounds_kept"] == 0


def test_summary_counts_figures_above_the_fastest_round():
    points = {"a": {"back_to_back": 120.0, "spread_all": 114.0, "spread_kept": 100.0,
                    "fastest_round": 100.0},
              "b": {"back_to_back": 100.0, "spread_all": 100.0, "spread_kept": 100.0,
                    "fastest_round": 100.0}}
    s = ip.summary(points)
    assert s["back_to_back"] == {"held_slow": [1, 2], "median_over_fastest": 1.1}
    assert s["spread_all"]["held_slow"] == [0, 2]
    assert s["spread_kept"] == {"held_slow": [0, 2], "median_over_fastest": 1.0}


def test_a_sweep_on_this_cpu_times_every_point_both_ways(tmp_path):
    out = tmp_path / "p.json"
    assert ip.main(["--grid", "smoke/4", "--chunk", "2", "--device", "cpu", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["points"]) == 2 and doc["fast_state_us"] > 0
    for p in doc["points"].values():
        assert 0 < p["fastest_round"] <= min(p["back_to_back"], p["spread_all"], p["spread_kept"])
        assert 0 <= p["rounds_kept"]
    assert set(doc["summary"]) == set(ip.SCHEMES)


@pytest.mark.parametrize("chunk", ["0", "-3"])
def test_a_chunk_below_one_is_refused(chunk, capsys):
    assert ip.main(["--chunk", chunk, "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == f"--chunk must be at least 1, got {chunk}"
