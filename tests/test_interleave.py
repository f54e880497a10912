"""Interleaved wall passes (``Protocol.interleave``): a chunk's rounds taken point by point, each
kept by its own probes (mhabench.measure.passes.wall_passes, retime.RoundKeeper)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from mhabench.measure import passes
from mhabench.measure.config import ConfigError, Point
from mhabench.measure.protocol import BEFORE_KNOB, Protocol, wall_timing
from mhabench.measure.results import DONE, ERROR, WALL, Result
from mhabench.measure.retime import SLOW_STATE, RoundKeeper

ROUNDS = 3


def _points(n: int = 4) -> list[Point]:
    return [Point(2 + i, 8, 32, 4, 61, dtype="fp32", device="cpu") for i in range(n)]


def _proto(interleave: int) -> Protocol:
    return Protocol(warmup_ms=0.5, min_rounds=ROUNDS, max_rounds=ROUNDS, target_ms=1.0,
                    interleave=interleave)


def _run(points, proto, **kw) -> tuple[list[Result], list[str]]:
    told: list[str] = []
    out = [r for r, _ in passes.wall_passes(points, proto, extras=False,
                                            on_point=told.append, **kw)]
    return out, told


# --- the keeper -----------------------------------------------------------------------------

def test_the_keeper_leaves_out_rounds_whose_probes_read_slow():
    k = RoundKeeper()
    for i in range(4):
        k.add(f"p{i}", [[100.0, 101.0], [100.0, 99.0], [100.0, 100.0]])
    probes = [[100.0, 100.0], [100.0, 100.0 * SLOW_STATE * 1.05], [170.0, 100.0]]
    k.add("x", probes)
    assert k.kept(probes) == [0]


def test_the_keeper_keeps_every_round_where_none_reads_fast_or_too_few_are_known():
    k = RoundKeeper()
    probes = [[100.0, 100.0], [300.0, 300.0]]
    k.add("first", probes)
    assert k.kept(probes) == [0, 1], "two rounds give no fast state: nothing left out"
    for i in range(4):
        k.add(f"p{i}", [[100.0, 100.0]] * 3)
    slow = [[250.0, 260.0], [300.0, 300.0]]
    k.add("slow", slow)
    assert k.kept(slow) == [0, 1], "a point keeps a figure where every round read slow"
    assert k.kept([[100.0, 100.0], [300.0, 300.0]]) == [0]


# --- the protocol knob ----------------------------------------------------------------------

def test_interleave_is_a_whole_number_of_points_that_sets_the_wall_level():
    assert Protocol().interleave == 8
    for bad in (0, 1.5, -2, True):
        with pytest.raises(ConfigError, match="interleave must be a whole number from 1"):
            Protocol(interleave=bad)
    assert wall_timing(dataclasses.asdict(Protocol()))["interleave"] == 8
    before = {k: v for k, v in dataclasses.asdict(Protocol()).items() if k != "interleave"}
    assert wall_timing(before)["interleave"] == BEFORE_KNOB["interleave"] == 1, \
        "a record made before the knob timed each point's rounds back to back"


def test_a_cpu_sweep_keeps_each_point_s_rounds_back_to_back_a_cuda_sweep_interleaves():
    from mhabench.measure.protocol import PRESETS, for_device
    from mhabench.run.spec import RunSpec
    assert for_device(Protocol(), "cpu").interleave == 1
    assert for_device(Protocol(), "cuda:1") == Protocol()
    cpu = {"interleave": 1, "retime_time_share": 0.25}
    assert for_device(Protocol(interleave=1), "cpu") == Protocol(**cpu)
    assert for_device(Protocol(**cpu), "cpu") == Protocol(**cpu)
    assert for_device(Protocol(retime_time_share=0.1), "cpu").retime_time_share == 0.1, \
        "a lower cap stays"
    assert for_device(Protocol(), "") == Protocol(), "a device not yet resolved: as the preset"
    assert RunSpec(device="cpu").protocol == dataclasses.replace(PRESETS["default"], **cpu)
    assert RunSpec(device="cuda", preset="fast").protocol == PRESETS["fast"], \
        "the record's protocol is what its sweep ran: on CUDA, interleaved"


# --- chunks -----------------------------------------------------------------------------------

def test_wall_chunks_hold_at_most_n_points_of_one_device_within_the_byte_cap(monkeypatch):
    pts = _points(5)
    assert [len(c) for c in passes.wall_chunks(pts, 2)] == [2, 2, 1]
    assert [len(c) for c in passes.wall_chunks(pts, 8)] == [5]
    mixed = pts[:2] + [dataclasses.replace(pts[2], device="cuda")] + pts[3:]
    assert [len(c) for c in passes.wall_chunks(mixed, 8)] == [2, 1, 2]
    monkeypatch.setattr(passes, "input_bytes", lambda p: passes.SESSION_BYTES // 2)
    assert [len(c) for c in passes.wall_chunks(pts, 8)] == [2, 2, 1]


# --- the interleaved pass ---------------------------------------------------------------------

def test_a_chunk_s_rounds_are_taken_point_by_point_each_with_its_probes():
    pts = _points(4)
    results, told = _run(pts, _proto(3))
    assert [r.point for r in results] == pts, "results come in the grid's order"
    # each chunk: every point prepared, warmed, then round by round, point by point
    first = [p.label for p in pts[:3]]
    assert told[:3 * (2 + ROUNDS)] == first + first + first * ROUNDS
    for r in results:
        assert r.stage == WALL and r.timed
        kept = len(r.rounds["fast"])
        assert kept + r.rounds_left_out == ROUNDS and kept >= 1
        assert all(len(v) == kept for v in r.rounds.values()), "a round is kept whole"
        assert len(r.host_probe_us) == 2 * kept
        assert set(r.window_calls) == set(r.rounds)


def test_a_round_whose_probe_reads_slow_is_left_out(monkeypatch):
    pts = _points(4)
    slow_label = pts[2].label
    told: dict[str, int] = {}
    now = {"label": ""}

    def tell(label):  # once to prepare, once to warm up, then once per round
        told[label] = told.get(label, 0) + 1
        now["label"] = label

    def probe():  # the slow point's second round reads the slow state
        return 500.0 if now["label"] == slow_label and told[slow_label] == 4 else 100.0
    monkeypatch.setattr(passes, "host_probe", probe)
    out = [r for r, _ in passes.wall_passes(pts, _proto(4), extras=False, on_point=tell)]
    by = {r.point.label: r for r in out}
    assert by[slow_label].rounds_left_out == 1
    assert len(by[slow_label].rounds["fast"]) == ROUNDS - 1
    assert max(by[slow_label].host_probe_us) == 100.0, "only the rounds kept are in the record"
    assert all(by[p.label].rounds_left_out == 0 for p in pts if p.label != slow_label)


def test_interleave_one_times_each_point_back_to_back_as_before():
    pts = _points(3)
    results, told = _run(pts, _proto(1))
    assert told == [p.label for p in pts]
    for r in results:
        assert len(r.rounds["fast"]) == ROUNDS and r.rounds_left_out == 0
        assert len(r.host_probe_us) == 2, "one probe before the rounds, one after"


def test_a_point_failing_before_its_rounds_comes_at_once_and_the_others_are_timed(monkeypatch):
    pts = _points(3)
    real_build = passes.build

    def build(point):
        if point == pts[1]:
            raise getattr(torch, "OutOfMemoryError", RuntimeError)("planted")
        return real_build(point)
    monkeypatch.setattr(passes, "build", build)
    waited = []
    results, _ = _run(pts, _proto(8), before_rounds=lambda: waited.append(1))
    assert [r.point for r in results] == [pts[1], pts[0], pts[2]], \
        "the failure is delivered before the chunk's rounds, the timed points after"
    assert results[0].status == ERROR and results[0].stage == DONE and not results[0].timed
    assert all(r.timed for r in results[1:])
    assert waited == [1], "one journal wait, before the chunk's rounds"


def test_a_point_failing_in_its_rounds_fails_alone(monkeypatch):
    pts = _points(3)
    bad = {"label": ""}
    real_window = passes.Clock.window

    def window(self, path, n, lead_in=0):
        if bad["label"] == pts[1].label:
            raise RuntimeError("planted: a kernel refused")
        return real_window(self, path, n, lead_in)
    monkeypatch.setattr(passes.Clock, "window", window)
    out = [r for r, _ in passes.wall_passes(pts, _proto(8), extras=False,
                                            on_point=lambda label: bad.update(label=label))]
    assert [r.point for r in out] == pts
    assert out[1].status == ERROR and "planted" in out[1].message and out[1].rounds == {}
    assert out[1].stage == DONE
    assert out[0].timed and out[2].timed and len(out[2].rounds["fast"]) >= 1


def test_an_interleaved_record_reads_back_with_its_rounds_left_out():
    r = next(iter(passes.wall_passes(_points(1), _proto(8), extras=False)))[0]
    r.rounds_left_out = 2
    back = Result.of_record(r.record())
    assert back.rounds_left_out == 2 and back.rounds == r.rounds
    assert r.doc()["rounds_left_out"] == 2


# --- the lab's figures, from its data ---------------------------------------------------------

def test_round_14_s_figures_are_those_of_its_data():
    """The protocol's reasons (``INTERLEAVE``'s comment, the notebook's round 14) add up from the
    stored GPU data: the probe's held-slow and chunk counts, and the runs' points still slow."""
    import json
    from pathlib import Path
    data = Path(__file__).resolve().parents[1] / "docs" / "lab" / "data"
    probe = json.loads((data / "gpu-2026-12-04-round14-interleave.json").read_text())
    procs = probe["processes"].values()
    held = {s: sum(p["summary"][s]["held_slow"][0] for p in procs)
            for s in ("back_to_back", "spread_all", "spread_kept")}
    assert held == {"back_to_back": 207, "spread_all": 198, "spread_kept": 140}
    chunks = {k: sum(p["chunks_worse"][k] for p in procs)
              for k in ("back_to_back", "spread_kept", "tied")}
    assert chunks == {"back_to_back": 51, "spread_kept": 20, "tied": 49}
    agree = json.loads((data / "gpu-2026-12-04-round14-agree.json").read_text())
    slow = {"default": [0, 0], "back_to_back": [0, 0]}
    for lease in agree["leases"].values():
        for part in lease.values():
            for v, tally in slow.items():
                for row in part["seed8"][v]["retime_check"]:
                    tally[0] += row["probe_slow"]
                    tally[1] += row["points"]
    assert slow == {"default": [130, 1280], "back_to_back": [325, 960]}
