"""measure / sweep: each point's failure stays with that point."""
from __future__ import annotations

import math

import pytest
import torch

from mhabench.measure import compat, sweep
from mhabench.measure.config import ConfigError, Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import Path
from mhabench.measure.results import ERROR, MISMATCH, NO_FASTPATH, OK, Result
from mhabench.measure.protocol import Protocol

PATH_NAMES = {"fast", "slow", "slow_fair"}


def _points():
    return [Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu"),
            Point(3, 8, 32, 4, 61, dtype="fp32", device="cpu"),
            Point(4, 16, 32, 4, 21, dtype="fp32", device="cpu")]


def _assert_untimed(r: Result):
    assert r.rounds == {}
    assert not r.timed
    m = r.metrics()
    for k in ("speedup", "speedup_fair", "wall_fast_us", "wall_slow_us", "wall_slow_fair_us"):
        assert math.isnan(m[k]), k


# --- measure ----------------------------------------------------------------------------------

def test_measure_ok_point(padded_point, small_proto):
    r = sweep.measure(padded_point, small_proto)
    assert r.status == OK, r.message
    assert r.fast_path
    assert r.timed
    assert set(r.rounds) == PATH_NAMES
    assert all(len(v) == small_proto.min_rounds and min(v) > 0 for v in r.rounds.values())
    assert r.padding == pytest.approx(build(padded_point).padding)
    assert r.padding > 0
    assert 0 <= r.max_abs_err < 1e-4
    assert r.metrics()["speedup"] > 0


def test_measure_disabled_fast_path_is_no_fastpath(tiny_point, small_proto, fastpath_off):
    r = sweep.measure(tiny_point, small_proto)
    assert r.status == NO_FASTPATH
    assert "get_fastpath_enabled" in r.message
    assert not r.fast_path
    _assert_untimed(r)


def test_measure_training_module_is_no_fastpath(tiny_point, small_proto, monkeypatch):
    def training_build(point):
        inp = build(point)
        inp.mha.train()
        return inp
    monkeypatch.setattr(sweep, "build", training_build)
    r = sweep.measure(tiny_point, small_proto)
    assert r.status == NO_FASTPATH
    assert "training" in r.message
    _assert_untimed(r)


def test_measure_planted_wrong_fast_output_is_mismatch(padded_point, small_proto, monkeypatch):
    real = sweep.run_fast_checked

    def wrong(path):
        out = compat.to_padded(real(path), 0.0).clone()
        out[0, 0, 0] += 1.0  # token 0 of every row is real
        return out
    monkeypatch.setattr(sweep, "run_fast_checked", wrong)
    r = sweep.measure(padded_point, small_proto)
    assert r.status == MISMATCH
    assert r.max_abs_err == pytest.approx(1.0, rel=1e-3)
    assert r.message
    assert r.timed, "a mismatch is still timed"


@pytest.mark.parametrize("exc", [RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore"),
                                 ValueError("bad"), torch.cuda.OutOfMemoryError("CUDA out of memory")])
def test_measure_turns_exceptions_into_error(tiny_point, small_proto, monkeypatch, exc):
    def boom(point):
        raise exc
    monkeypatch.setattr(sweep, "build", boom)
    r = sweep.measure(tiny_point, small_proto)
    assert r.status == ERROR
    assert type(exc).__name__ in r.message
    assert str(exc).splitlines()[0] in r.message
    assert "\n" not in r.message
    _assert_untimed(r)


def test_measure_error_during_timing_drops_partial_rounds(tiny_point, small_proto, monkeypatch):
    def broken_rounds(paths, proto, device):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(sweep, "wall_rounds", broken_rounds)
    r = sweep.measure(tiny_point, small_proto)
    assert r.status == ERROR and "out of memory" in r.message
    _assert_untimed(r)


# --- sweep ------------------------------------------------------------------------------------

def test_sweep_keeps_going_after_a_failing_point(small_proto, monkeypatch):
    pts = _points()
    bad = pts[1]

    def flaky_build(point):
        if point == bad:
            raise RuntimeError("CUDA out of memory")
        return build(point)
    monkeypatch.setattr(sweep, "build", flaky_build)
    seen = []
    results = sweep.sweep(pts, small_proto, on_point=seen.append)
    assert [r.point for r in results] == pts
    assert seen == results, "on_point fires once per point, in order"
    assert results[1].status == ERROR and "out of memory" in results[1].message
    _assert_untimed(results[1])
    for r in (results[0], results[2]):
        assert r.status == OK, r.message
        assert set(r.rounds) == PATH_NAMES


def test_sweep_on_chunk_sees_growing_results(monkeypatch):
    proto = Protocol(warmup_ms=0.5, min_rounds=2, max_rounds=2, target_ms=0.5)
    pts = _points()
    chunks = []
    results = sweep.sweep(pts, proto, on_chunk=lambda rs: chunks.append([r.point for r in rs]),
                          chunk=2)
    assert chunks == [pts[:2], pts]
    assert all(r.status == OK for r in results)


def test_sweep_accumulates_its_cost(small_proto):
    cost = {}
    sweep.sweep(_points()[:2], small_proto, cost=cost)
    assert cost["wall_pass"] > 0
    assert cost.get("device_pass", 0.0) >= 0.0
    before = cost["wall_pass"]
    sweep.sweep(_points()[:1], small_proto, cost=cost)
    assert cost["wall_pass"] > before, "a second sweep adds to the same dictionary"


def test_sweep_of_nothing():
    assert sweep.sweep([], Protocol()) == []


def test_add_device_times_is_a_no_op_on_cpu(small_proto):
    p = _points()[0]
    r = Result(p, rounds={"fast": [1.0], "slow": [2.0]})
    overhead = sweep.add_device_times(r, sweep.active_paths(build(p)), Protocol(device_calls=3))
    assert r.device_calls == {} and r.sdpa_backend == ""
    assert overhead == {"start": 0.0, "stop": 0.0, "parse": 0.0, "backends": 0.0}


# --- device helpers -----------------------------------------------------------------------------

def test_default_device_is_cpu_without_cuda():
    assert sweep.default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", "cuda:3"])
def test_require_device_without_cuda(dev):
    with pytest.raises(ConfigError) as ei:
        sweep.require_device(dev)
    assert repr(dev) in str(ei.value)


def test_require_device_cpu_is_fine():
    sweep.require_device("cpu")


def test_run_meta(small_proto):
    meta = sweep.run_meta("cpu", small_proto, "smoke")
    assert meta["mhabench_grid"] == "smoke" and meta["device"] == "cpu"
    assert meta["torch"] == torch.__version__
    assert meta["protocol"]["min_rounds"] == small_proto.min_rounds
    assert meta["protocol"]["target_ms"] == small_proto.target_ms
    assert meta["started"]


# --- untimed extras: drift reference, peak memory, FLOPs ------------------------------------------

def test_measure_records_lengths_drift_and_no_memory_on_cpu(padded_point, small_proto):
    cost = {}
    r = sweep.measure(padded_point, small_proto, cost)
    assert r.status == OK, r.message
    assert r.lengths == build(padded_point).lengths
    assert 0 <= r.max_abs_err_fp32 < 1e-4
    assert r.peak_mem == {}
    m = r.metrics()
    assert m["useful_flops"] < m["padded_flops"]  # the point has padding
    assert m["wall_fast_tflops"] > 0 and math.isnan(m["device_fast_tflops"])
    assert cost["extra_fp32"] > 0 and "extra_memory" not in cost  # no allocator statistics on a CPU


def test_extras_stay_out_of_the_timed_rounds(padded_point, small_proto, monkeypatch):
    """The extras add calls, but none inside the timed rounds: there, exactly one call per path
    per round, as before, and one batch of timed calls."""
    from mhabench.measure import timing
    calls, timed, in_rounds = [], [], []
    real_paths, real_calls = sweep.active_paths, timing.Clock.calls

    def counting_paths(inp):
        paths = real_paths(inp)
        return {n: Path(p.name, p.context, (lambda p=p, n=n: (calls.append(n), p.call())[1]))
                for n, p in paths.items()}

    def spy_calls(self, seq):
        before = len(calls)
        out = real_calls(self, seq)
        timed.append((len(seq), len(calls) - before))
        return out

    def spy_rounds(paths, proto, device):
        in_rounds.append(True)
        try:
            return real_rounds(paths, proto, device)
        finally:
            in_rounds.pop()

    real_rounds = sweep.wall_rounds
    extras_inside = []
    for name in ("fp32_reference", "peak_memory"):
        real = getattr(sweep, name)
        monkeypatch.setattr(sweep, name, lambda *a, real=real: (extras_inside.append(bool(in_rounds)),
                                                                real(*a))[1])
    monkeypatch.setattr(sweep, "active_paths", counting_paths)
    monkeypatch.setattr(timing.Clock, "calls", spy_calls)
    monkeypatch.setattr(sweep, "wall_rounds", spy_rounds)
    r = sweep.measure(padded_point, small_proto)
    assert r.status == OK, r.message
    assert extras_inside == [False], \
        "the fp32 reference ran, outside the timed rounds (a CPU has no peak memory to read)"
    rounds = [t for t in timed if t[0] > 1]
    assert rounds == [(3 * small_proto.min_rounds, 3 * small_proto.min_rounds)]
    assert all(t == (1, 1) for t in timed if t[0] == 1), "warm-up: one call per timing"
    assert all(len(v) == small_proto.min_rounds for v in r.rounds.values())


def test_a_failing_extra_leaves_the_point_measured(padded_point, small_proto, monkeypatch):
    def oom(inp):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4 GiB")
    monkeypatch.setattr(sweep, "fp32_reference", oom)
    r = sweep.measure(padded_point, small_proto)
    assert r.status == OK and r.timed
    assert math.isnan(r.max_abs_err_fp32)
    assert r.message.startswith("fp32 reference: OutOfMemoryError: CUDA out of memory")


def test_sweep_gives_every_result_the_peak(small_proto):
    results = sweep.sweep(_points()[:2], small_proto, peak_tflops=0.25)
    assert [r.peak_tflops for r in results] == [0.25, 0.25]
    m = results[0].metrics()
    assert m["wall_fast_peak_fraction"] == pytest.approx(m["wall_fast_tflops"] / 0.25)


def test_calibrate_peak_reports_failure_without_raising(monkeypatch):
    from mhabench.measure import peak

    def broken(*a, **k):
        raise RuntimeError("no matmul today")
    monkeypatch.setattr(peak, "calibrate", broken)
    entry = sweep.calibrate_peak("cpu", "float32")
    assert math.isnan(entry["tflops"]) and "no matmul today" in entry["error"]


def test_no_extras_measures_only_what_the_reference_does(padded_point, small_proto, monkeypatch):
    def refuse(*a):
        raise AssertionError("an extra ran")
    monkeypatch.setattr(sweep, "fp32_reference", refuse)
    monkeypatch.setattr(sweep, "peak_memory", refuse)
    cost = {}
    r = sweep.measure(padded_point, small_proto, cost, extras=False)
    assert r.status == OK and r.timed and r.message == ""
    assert math.isnan(r.max_abs_err_fp32) and r.peak_mem == {}
    assert not [k for k in cost if k.startswith("extra")], cost
