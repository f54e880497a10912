"""The window probe's arithmetic, and what it found on an H200 (docs/lab/2026-12-03.md, round 5):
a window's first call costs about twice a call in the stream, and one untimed call before the
clock starts takes most of that cost away. The kept data is the probe's own output."""
from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import window_probe  # noqa: E402

DATA = REPO / "docs" / "lab" / "data" / "gpu-2026-12-03-round5-windows.json.gz"


def test_the_fit_recovers_a_cost_per_window_and_a_cost_per_call():
    calls = [1, 3, 10, 30, 100]
    us = [(200.0 + 50.0 * n) / n for n in calls]  # 200 us once a window, 50 us a call
    got = window_probe.fit(calls, us)
    assert got["fixed_us"] == pytest.approx(200.0)
    assert got["per_call_us"] == pytest.approx(50.0)


@pytest.fixture(scope="module")
def probe():
    with gzip.open(DATA, "rt") as fh:
        return json.load(fh)


def test_the_kept_probe_is_24_points_of_three_repetitions(probe):
    assert len(probe["points"]) == 24 and probe["calls"] == [1, 3, 10, 30, 100]
    assert all(len(p["reference"]) == 3 for p in probe["points"])


def test_on_the_h200_a_lead_in_lowers_the_window_s_fixed_cost_and_its_gap_to_the_reference(probe):
    summary = json.loads(json.dumps(window_probe.summarise(probe["points"], probe["calls"])))
    assert summary == probe["summary"], "the summary is recomputed from the kept points"
    for path in ("fast", "slow"):
        rot, lead = summary[path]["rotation"], summary[path]["lead_in"]
        assert lead["fixed_us_per_window_median"] < rot["fixed_us_per_window_median"]
        for n in ("3", "10", "30"):
            assert lead["ours_over_reference_by_calls"][n] <= rot["ours_over_reference_by_calls"][n]
        assert summary[path]["per_call_host_first_over_rest"] > 1.5, "a cold first call"
    lower = sum(statistics.median(p["lead_in"]["fast"]["10"])
                < statistics.median(p["rotation"]["fast"]["10"]) for p in probe["points"])
    assert lower >= 18, lower
