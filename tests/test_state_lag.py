"""``bench/state_lag.py``: whether a sweep's host probes read a slow state that lasts many points
or one drawn afresh at each point, and its reading of the journals a sweep writes."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import state_lag  # noqa: E402

FAST, SLOW = 55.0, 105.0


def _sweep(states):
    return [[SLOW if s else FAST] * 2 for s in states]


def test_episodes_read_near_p_and_fresh_draws_near_p_squared():
    rng = random.Random(13)
    fresh = [rng.random() < 0.5 for _ in range(4000)]
    episodes = [(i // 100) % 2 == 1 for i in range(4000)]   # slow for 100 points, then fast
    f, e = state_lag.lag_row(_sweep(fresh)), state_lag.lag_row(_sweep(episodes))
    assert abs(f["slow_share"] - 0.5) < 0.03 and e["slow_share"] == 0.5
    for lag in (1, 10):
        both, indep = f["both_slow_at_lag"][lag]
        assert abs(both - indep) < 0.03, "a fresh state at each point: p * p"
        both, indep = e["both_slow_at_lag"][lag]
        assert both > 0.44 and indep == 0.25, "episodes of 100 points: near p"
    assert e["both_slow_at_lag"][80][0] < 0.2, "80 points on, half the episodes have turned"


def test_a_point_probed_slow_on_one_side_only_is_slow():
    probes = [[FAST, FAST]] * 20 + [[FAST, SLOW], [SLOW, FAST]] * 5
    row = state_lag.lag_row(probes)
    assert row["slow_share"] == round(10 / 30, 3)
    assert row["before_and_after_slow"] == [0.0, round(5 / 30 * 5 / 30, 3)]


def test_journals_give_each_points_first_wall_pass_in_order(tmp_path, capsys):
    lines = [{"journal": 2},
             {"label": "a", "stage": "wall", "record": {"host_probe_us": [60.0, 61.0]}},
             {"label": "b", "stage": "wall", "record": {"host_probe_us": [100.0, 99.0]}},
             {"label": "b", "stage": "wall", "record": {"host_probe_us": [58.0, 59.0]}},  # a try
             {"label": "a", "stage": "done", "record": {"host_probe_us": [70.0, 70.0]}}]
    j = tmp_path / "lease-agree-seed8-default-0.journal.jsonl"
    j.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert state_lag.first_probes(j) == [[60.0, 61.0], [100.0, 99.0]]
    keep = tmp_path / "probes.json"
    assert state_lag.main([str(j), "--keep", str(keep)]) == 0
    assert json.loads(keep.read_text()) == {"lease-agree-seed8-default-0": [[60.0, 61.0],
                                                                           [100.0, 99.0]]}
    assert json.loads(capsys.readouterr().out)["lease-agree-seed8-default-0"] == {"points": 2}


def test_no_journal_is_refused(capsys):
    assert state_lag.main([]) == 2
    assert "no journals given" in capsys.readouterr().err
