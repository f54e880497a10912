"""Points timed in the host's slow state are timed again, the probe deciding which timing stays."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mhabench.measure.config import ConfigError, named_grid
from mhabench.measure.protocol import RETIME_SHARE, Protocol, wall_timing
from mhabench.measure.results import DONE, ERROR, WALL, Result
from mhabench.measure.retime import (FAST_QUANTILE, MIN_POINTS, SLOW_STATE, Retimer,
                                     fast_state, read_slow)

POINTS = named_grid("smoke", "fp32", "cpu")


def _probes(n: int = 12, slow: dict | None = None) -> dict:
    out = {f"p{i}": [100.0, 101.0] for i in range(n)}
    out.update(slow or {})
    return out


def test_a_probe_well_above_the_sweeps_fast_state_is_slow():
    got = read_slow(_probes(slow={"p3": [100.0, 180.0], "p7": [250.0, 90.0]}))
    assert got == ["p7", "p3"], "slowest first, the slower of the two probes counting"


def test_a_probe_at_the_threshold_is_not_slow():
    edge = SLOW_STATE * 101.0
    assert read_slow(_probes(slow={"p1": [edge, edge]})) == []
    assert read_slow(_probes(slow={"p1": [edge * 1.01, 1.0]})) == ["p1"]


def test_the_fast_state_is_the_low_tail_of_the_probes():
    probes = {f"p{i}": [60.0 + i, 50.0] for i in range(20)}
    assert fast_state(probes) == pytest.approx(np.quantile([60.0 + i for i in range(20)],
                                                           FAST_QUANTILE))
    assert fast_state(dict(list(probes.items())[:MIN_POINTS - 1])) is None


def test_too_few_points_give_no_fast_state_to_judge_against():
    assert read_slow(_probes(MIN_POINTS - 1, {"p0": [900.0, 900.0]})) == []
    assert read_slow(_probes(MIN_POINTS, {"p0": [900.0, 900.0]})) == ["p0"]


def test_points_without_a_probe_are_left_out():
    probes = _probes(MIN_POINTS - 1, {"p0": [900.0, 900.0]})
    probes.update({"old": [], "nan": [math.nan, 100.0]})
    assert read_slow(probes) == [], "neither counts toward the points needed"


def test_every_slow_point_is_read_slowest_first():
    slow = {f"p{i}": [300.0 + i, 300.0] for i in range(12)}
    assert read_slow(_probes(20, slow)) == [f"p{i}" for i in range(11, -1, -1)], \
        "12 slow of 20: the share timed again is the Retimer's to keep"


def test_a_host_slow_for_most_of_the_sweep_still_shows_its_fast_state():
    """Seven of twelve points slow: the median is the slow state, the low tail is not."""
    probes = {f"p{i}": [200.0 if i < 7 else 100.0] * 2 for i in range(12)}
    assert read_slow(probes) == [f"p{i}" for i in range(7)], \
        "the seven slow points, ties in sweep order"


def test_a_host_fast_for_under_a_tenth_of_the_sweep_is_at_its_level():
    probes = {f"p{i}": [200.0 if i else 100.0] * 2 for i in range(20)}
    assert read_slow(probes) == [], "one fast point of twenty: the slow state is the level"


def retime(measured: dict, times: int, time_again):
    """A Retimer over a sweep already measured, at its end: ``measured`` takes the timings kept."""
    timer = Retimer(times, time_again)
    timer.measured = measured
    for label, result in measured.items():
        timer.ranked.set(label, result.host_probe_us)
    return timer.finish()


def _result(probe: float, stage: str = WALL, status: str = "ok") -> Result:
    r = Result(POINTS[0], stage=stage, status=status)
    r.rounds = {"fast": [probe]}  # the figure follows the probe in these fakes
    r.host_probe_us = [100.0, probe] if stage == WALL else []
    return r


def _measured(slow_probe: float = 300.0) -> dict:
    out = {f"p{i}": _result(100.0) for i in range(10)}
    out["p4"] = _result(slow_probe)
    return out


def test_a_slow_point_is_timed_again_and_the_faster_probe_kept():
    measured, calls = _measured(), []

    def again(before):
        calls.append(before)
        return _result(110.0)

    kept = list(retime(measured, 1, again))
    assert len(calls) == 1 and calls[0].host_probe_us == [100.0, 300.0]
    assert [k.host_probe_us for k in kept] == [[100.0, 110.0]]
    assert kept[0].retimed == 1 and measured["p4"] is kept[0]
    assert all(r.retimed == 0 for k, r in measured.items() if k != "p4")


def test_a_try_that_reads_slower_keeps_the_timing_before():
    measured = _measured()
    kept = list(retime(measured, 1, lambda before: _result(500.0)))
    assert kept[0].host_probe_us == [100.0, 300.0] and kept[0].retimed == 1
    assert kept[0].rounds == {"fast": [300.0]}


def test_a_failed_try_keeps_the_timing_before():
    measured = _measured()
    kept = list(retime(measured, 2, lambda before: _result(0.0, stage=DONE, status=ERROR)))
    assert kept[0].status == "ok" and kept[0].host_probe_us == [100.0, 300.0]
    assert kept[0].retimed == 2


def test_retime_zero_times_nothing_again():
    measured = _measured()
    assert list(retime(measured, 0, lambda before: pytest.fail("timed again"))) == []


def _sweep(probes: list[float], again_probe=100.0, times: int = 1, share: float = RETIME_SHARE,
           costs: list[float] | None = None, time_share: float = 1.0):
    """Feed a Retimer the sweep's results in order (``again_probe``: what every try's probe
    reads, or an iterator of readings; ``costs``: what each point's pass cost, seconds); per
    point added, the labels timed again right after it; and the labels timed again at the
    end."""
    calls: list[str] = []
    readings = again_probe if hasattr(again_probe, "__next__") else None

    def again(before):
        calls.append(before.point_label)
        r = _result(next(readings) if readings else again_probe)
        r.point_label = before.point_label
        return r

    timer = Retimer(times, again, planned=len(probes), share=share, time_share=time_share)
    after = []
    for i, p in enumerate(probes):
        r = _result(p)
        r.point_label = f"p{i}"
        list(timer.add(f"p{i}", r, costs[i] if costs else 0.0))
        after.append(list(calls))
        calls.clear()
    list(timer.finish())
    return timer, after, calls


def test_a_slow_point_is_timed_again_at_the_first_point_that_reads_fast():
    probes = [100.0] * 8 + [300.0, 300.0, 100.0, 100.0]
    timer, after, at_end = _sweep(probes)
    assert after[10] == ["p8", "p9"], "slowest first, ties in sweep order"
    assert all(not a for i, a in enumerate(after) if i != 10) and at_end == []
    assert timer.measured["p8"].host_probe_us == [100.0, 100.0]
    assert timer.measured["p8"].retimed == 1 and timer.measured["p0"].retimed == 0


def test_no_point_is_timed_again_while_the_host_reads_slow():
    """A sweep that ends in the slow state: its slow points wait for the end of its wall
    passes, not timed again after each slow point."""
    probes = [100.0] * 8 + [300.0] * 4
    timer, after, at_end = _sweep(probes)
    assert not any(after), "never timed again after a point that read slow"
    assert at_end == [f"p{i}" for i in range(8, 8 + int(RETIME_SHARE * 12))], \
        "at the end, ties in sweep order, within the share"


def test_the_share_timed_again_counts_the_whole_sweep():
    """Half of the twenty planned points at most, those timed again mid-sweep included."""
    probes = [100.0] * 8 + [300.0] * 8 + [100.0] + [300.0] * 3
    timer, after, at_end = _sweep(probes)
    room = int(RETIME_SHARE * 20)
    assert len(after[16]) == min(8, room) and len(at_end) == room - min(8, room)
    assert sum(r.retimed for r in timer.measured.values()) == room


@pytest.mark.parametrize("share, timed", [(0.0, 0), (0.25, 5), (0.5, 10), (1.0, 12)])
def test_the_protocol_sets_the_share_timed_again(share, timed):
    """Twelve of twenty points read slow: the share caps how many are timed again."""
    timer, after, at_end = _sweep([100.0] * 8 + [300.0] * 12, share=share)
    assert len(at_end) == timed and not any(after)
    assert sum(r.retimed for r in timer.measured.values()) == timed


def test_a_try_that_reads_slow_ends_the_stretch():
    """The host went slow again: the other points due wait for its next fast reading, and
    the point tried keeps its due tries for then."""
    probes = [100.0] * 8 + [300.0, 290.0, 100.0, 280.0, 100.0]
    readings = iter([400.0, 105.0, 110.0, 100.0])
    timer, after, at_end = _sweep(probes, readings, times=2)
    assert after[10] == ["p8"], "one try, read slow: the stretch ends"
    assert after[12] == ["p8", "p9", "p11"], "the next fast point: p8's second try, then the rest"
    assert at_end == []
    assert [timer.measured[k].retimed for k in ("p8", "p9", "p11")] == [2, 1, 1]
    assert [max(timer.measured[k].host_probe_us) for k in ("p8", "p9", "p11")] == \
        [105.0, 110.0, 100.0]


def test_tries_stop_at_the_share_and_the_tries_a_point_is_given():
    probes = [100.0] * 8 + [300.0, 100.0, 100.0]
    timer, after, at_end = _sweep(probes, iter([400.0, 450.0] + [999.0] * 5), times=2)
    assert after[9] == ["p8"] and after[10] == ["p8"] and at_end == []
    assert timer.measured["p8"].retimed == 2 and max(timer.measured["p8"].host_probe_us) == 300.0


def test_a_point_dearer_than_the_time_share_is_not_timed_again():
    """A CPU sweep: twelve points of 1 s, the slowest-probed one of 40 s (a quarter of the
    sweep's 51 s is 12.75 s): it is passed over, and the cheaper slow points are timed again
    within both shares."""
    probes = [100.0] * 8 + [400.0, 300.0, 300.0, 100.0]
    costs = [1.0] * 8 + [40.0, 1.0, 1.0, 1.0]
    timer, after, at_end = _sweep(probes, costs=costs, time_share=0.25)
    assert after[11] == ["p9", "p10"] and at_end == []
    assert timer.measured["p8"].retimed == 0 and timer.spent == 2.0
    timer, after, _ = _sweep(probes, costs=costs, time_share=1.0)
    assert after[11] == ["p8", "p9", "p10"], "1: no cap on the time"


def test_the_time_share_counts_the_whole_sweep_so_a_dear_point_may_fit_at_the_end():
    """Mid-sweep the sweep's time is its mean pass so far times its points: a slow point of 6 s
    after eight of 1 s is too dear while the quarter reads 4.8 s and 4.9 s, and fits at the end,
    once the last point's 12 s have raised the whole to 28 s (7 s); that last point, slow too,
    is dearer than what is left."""
    probes = [100.0] * 8 + [300.0, 100.0, 100.0, 300.0]
    costs = [1.0] * 8 + [6.0, 2.0, 2.0, 12.0]
    timer, after, at_end = _sweep(probes, costs=costs, time_share=0.25)
    assert not any(after) and at_end == ["p8"]
    assert timer.measured["p8"].retimed == 1 and timer.measured["p11"].retimed == 0


def test_the_time_share_is_a_fraction_that_sets_the_wall_level_and_is_capped_on_a_cpu():
    from mhabench.measure.protocol import RETIME_TIME_SHARE, for_device
    assert Protocol().retime_time_share == RETIME_TIME_SHARE == 1.0
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=f"retime_time_share must be a number from 0 to 1, "
                                              f"got {bad}"):
            Protocol(retime_time_share=bad)
    assert wall_timing({"lead_in": 1})["retime_time_share"] == 1.0, "a record made before it"
    assert for_device(Protocol(), "cpu").retime_time_share == RETIME_SHARE
    assert for_device(Protocol(), "cuda").retime_time_share == 1.0


def test_retime_is_a_whole_number_knob_that_sets_the_wall_level():
    assert Protocol().retime == 1
    with pytest.raises(ConfigError, match="retime must be a whole number from 0 to 100, got 1.5"):
        Protocol(retime=1.5)
    assert wall_timing({"lead_in": 1})["retime"] == 0, "a record made before it: none timed again"
    assert wall_timing({"lead_in": 1, "retime": 1})["retime"] == 1


def test_retime_share_is_a_fraction_that_sets_the_wall_level():
    assert Protocol().retime_share == RETIME_SHARE and Protocol(retime_share=0.5).retime_share == 0.5
    for bad in (1.5, -0.1, float("nan"), True):
        with pytest.raises(ConfigError, match=f"retime_share must be a number from 0 to 1, "
                                              f"got {bad}"):
            Protocol(retime_share=bad)
    assert wall_timing({"lead_in": 1})["retime_share"] == 0.25, "a record made before it: a quarter"
    assert wall_timing({"retime_share": 0.5})["retime_share"] == 0.5


SLOW_PROBE = textwrap.dedent("""
    # Test-only: the host probe reads the slow state around the third point's first rounds (a
    # CPU sweep: each point's rounds back to back, between two probes).
    import mhabench.measure.machine as machine
    calls = [0]
    def host_probe():
        calls[0] += 1
        return 1000.0 if calls[0] in (5, 6) else 100.0
    machine.host_probe = host_probe
""")


@pytest.mark.slow
def test_a_run_times_again_the_point_the_slow_state_took(tmp_path):
    """A real sweep, its worker's probe planted: the third point reads slow, is timed again
    and keeps the second timing; the journal holds both, the outputs one record per point."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_PROBE)
    env = dict(os.environ, PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "mhabench", "run", "--grid", "smoke",
                           "--preset", "check", "--json", "a.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "a.json").read_text())
    results = {r["label"]: r for r in doc["results"]}
    third = POINTS[2].label
    assert len(results) == len(POINTS)
    assert results[third]["retimed"] == 1 and results[third]["host_probe_us"] == [100.0, 100.0]
    assert all(r["retimed"] == 0 for k, r in results.items() if k != third)
    assert results[third]["metrics"]["host_fast_bytecodes"] > 0, "its counts pass was made"
    assert results[third]["metrics"]["max_abs_err_fp32"] is not None, "the drift carried over"
    journal = [json.loads(line) for line in next(tmp_path.glob("*.journal.jsonl")).open()][1:]
    walls = [e for e in journal if e["label"] == third and e["stage"] == WALL]
    assert [e["record"]["host_probe_us"] for e in walls] == [[1000.0, 1000.0], [100.0, 100.0]]
    assert walls[1]["record"]["max_abs_err_fp32"] == walls[0]["record"]["max_abs_err_fp32"]
    assert doc["meta"]["cost_s"]["retime"] > 0
    assert "1 point(s) timed again" in proc.stdout


DEAR = ["B2-S8-E32-H4-b1", "B2-S8-E32-H4-b61", "B2-S8-E512-H4-b1", "B2-S8-E512-H4-b61",
        "B2-S256-E32-H4-b1", "B2-S256-E32-H4-b61", "B16-S8-E32-H4-b1", "B16-S8-E32-H4-b61",
        "B16-S256-E512-H4-b1"]


@pytest.mark.slow
def test_a_cpu_run_does_not_time_again_a_point_dearer_than_a_quarter_of_its_time(tmp_path):
    """Eight points of milliseconds, then one whose calls take about a tenth of a second, its
    probe planted slow: a try would cost more than a quarter of the sweep's wall passes, so a
    CPU run keeps its timing and names it (a cheap point is still timed again: the test
    above)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        SLOW_PROBE.replace("in (5, 6)", "in (17, 18)"))
    env = dict(os.environ, PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]))
    labels = [f"{x}-float32-cpu" for x in DEAR]
    proc = subprocess.run([sys.executable, "-m", "mhabench", "run", "--grid",
                           "smoke;seq=8,256;embed=32,512;batch=2,16", "--points", ",".join(labels),
                           "--preset", "check", "--json", "a.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["meta"]["protocol"]["retime_time_share"] == RETIME_SHARE
    results = {r["label"]: r for r in doc["results"]}
    assert results[labels[-1]]["host_probe_us"] == [1000.0, 1000.0]
    assert all(r["retimed"] == 0 for r in results.values())
    assert "retime" not in doc["meta"]["cost_s"]
    assert f"read the slow state; their wall figures may read high: {labels[-1]}" in proc.stdout


def test_the_running_ranking_agrees_with_the_sweep_wide_functions():
    """The Retimer ranks probes as they come; a kept timing replaces its point's probe. At
    every step its fast state and slow points are those of the same probes ranked afresh."""
    from mhabench.measure.retime import _Ranked, _ranked
    rng = np.random.default_rng(7)
    ranked, probes = _Ranked(), {}
    for i in range(300):
        label = f"p{rng.integers(0, 120)}" if i > 150 and i % 3 == 0 else f"p{i}"
        probe = [float(rng.choice([60.0, 61.0, 110.0])) * float(rng.uniform(0.95, 1.05)),
                 float(rng.uniform(55.0, 60.0))]
        if i % 37 == 0:
            probe = [math.nan, 60.0]
        ranked.set(label, probe)
        probes[label] = probe  # a kept timing replaces its point's probe
        fast = fast_state(probes)
        assert (ranked.fast() is None) == (fast is None)
        if fast is not None:
            assert ranked.fast() == pytest.approx(fast)
        assert list(ranked.slow()) == list(_ranked(probes).slow())


def test_the_run_names_the_points_whose_kept_timing_read_slow():
    """Past the share, or every try slow too: the user learns which wall figures may be high."""
    from mhabench.commands.run import NAMED, retime_lines
    results = []
    for i in range(20):
        r = _result(300.0 if i >= 12 else 100.0)
        r.point = dataclasses.replace(POINTS[0], batch_size=i + 1)
        r.retimed = 1 if i in (12, 13) else 0
        results.append(r)
    lines = retime_lines(results)
    assert lines[0].startswith("2 point(s) timed again")
    assert lines[1].startswith("8 point(s) kept a timing whose host probe read the slow state")
    assert lines[1].endswith(f"and {8 - NAMED} more")
    assert results[12].point.label in lines[1]
    assert retime_lines(results[:12]) == [], "a calm sweep: nothing to say"



def test_the_run_says_how_many_interleaved_rounds_were_left_out():
    from mhabench.commands.run import retime_lines
    results = []
    for i in range(12):
        r = _result(100.0)
        r.point = dataclasses.replace(POINTS[0], batch_size=i + 1)
        r.rounds_left_out = 2 if i in (3, 7) else 1 if i == 9 else 0
        results.append(r)
    assert retime_lines(results) == ["5 round(s) at 3 point(s) left out: the host probe read "
                                      "its slow state around them"]
