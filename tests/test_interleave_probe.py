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


def test_chunks_are_counted_by_the_way_that_held_more_points_slow():
    pt = {"fastest_round": 100.0, "spread_all": 100.0}
    slow_b2b = {**pt, "back_to_back": 130.0, "spread_kept": 101.0}
    slow_kept = {**pt, "back_to_back": 101.0, "spread_kept": 130.0}
    calm = {**pt, "back_to_back": 101.0, "spread_kept": 101.0}
    points = dict(zip("abcdef", [slow_b2b, slow_b2b, slow_kept, calm, calm, calm]))
    assert ip.chunk_tally(points, 2) == {"back_to_back": 1, "spread_kept": 1, "tied": 1}
    assert ip.chunk_tally(points, 3) == {"back_to_back": 1, "spread_kept": 0, "tied": 1}


def test_round_13s_four_processes_tally_as_the_lab_notebook_says():
    data = json.loads((REPO / "docs/lab/data/gpu-2026-12-04-round13-interleave.json").read_text())
    total = {"back_to_back": 0, "spread_kept": 0, "tied": 0}
    for doc in data.values():
        for k, v in ip.chunk_tally(doc["points"], doc["chunk"]).items():
            total[k] += v
    assert total == {"back_to_back": 21, "spread_kept": 9, "tied": 30}
    held = {s: sum(ip.summary(d["points"])[s]["held_slow"][0] for d in data.values())
            for s in ip.SCHEMES}
    assert held == {"back_to_back": 193, "spread_all": 159, "spread_kept": 121}


def test_alternate_gives_each_way_its_own_stretch_of_the_chunk():
    b2b_first = ip.schedule([3, 3], "alternate", True)
    assert b2b_first[:2] == [("back_to_back", 0), ("back_to_back", 1)]
    assert b2b_first[2:] == [("spread", r, i) for r in range(3) for i in range(2)]
    assert ip.schedule([3, 3], "alternate", False) == b2b_first[2:] + b2b_first[:2]


@pytest.mark.parametrize("rounds", [[3] * 8, [3] * 16, [3, 3, 2], [5, 1]])
def test_mixed_spreads_the_back_to_back_points_over_the_chunks_time(rounds):
    order = ip.schedule(rounds, "mixed", True)
    spread = [a for a in order if a[0] == "spread"]
    assert sorted(a for a in order if a[0] == "back_to_back") == [
        ("back_to_back", i) for i in range(len(rounds))]
    assert spread == [("spread", r, i) for r in range(max(rounds))
                      for i, n in enumerate(rounds) if r < n], "spread rounds keep their order"
    at = [k for k, a in enumerate(order) if a[0] == "back_to_back"]
    stride = len(spread) / len(rounds)
    assert at[0] <= stride and len(order) - 1 - at[-1] <= stride, "both ends of the chunk"
    assert max(b - a for a, b in zip(at, at[1:])) <= stride + 2, "evenly between"


def test_a_mixed_sweep_on_this_cpu(tmp_path):
    out = tmp_path / "m.json"
    assert ip.main(["--grid", "smoke/4", "--chunk", "2", "--device", "cpu", "--design", "mixed",
                    "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["design"] == "mixed" and len(doc["points"]) == 2
    assert all(len(p) for p in doc["points"].values())
    assert doc["seconds"]["back_to_back"] > 0 and doc["seconds"]["spread"] > 0


@pytest.mark.parametrize("chunk", ["0", "-3"])
def test_a_chunk_below_one_is_refused(chunk, capsys):
    assert ip.main(["--chunk", chunk, "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == f"--chunk must be at least 1, got {chunk}"
