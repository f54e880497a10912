"""Protocol validation, window arithmetic, interleaved rounds, and device time from event trees."""
from __future__ import annotations

import contextlib
import gc
import math
import time

import pytest
import torch

from mhabench.config import ConfigError
from mhabench.inputs import build
from mhabench.paths import Path, make_paths
from mhabench.timing import (LABEL, Clock, DeviceTimes, Protocol, attribute_device_time, iters_for,
                             wall_rounds, warmup)


# --- Protocol ------------------------------------------------------------------------------

@pytest.mark.parametrize("knob,bad", [
    ("rounds", 0), ("rounds", -1), ("min_warmup", 0), ("max_iters", 0),
    ("warmup_ms", 0), ("warmup_ms", -1.0), ("warmup_ms", math.nan),
    ("target_ms", 0.0), ("target_ms", -5), ("target_ms", math.nan),
    ("device_calls", -1), ("device_chunk", 0),
])
def test_protocol_rejects_bad_knobs(knob, bad):
    with pytest.raises(ConfigError) as ei:
        Protocol(**{knob: bad})
    assert knob in str(ei.value)


def test_protocol_accepts_small_knobs():
    p = Protocol(warmup_ms=0.5, rounds=1, target_ms=0.1, max_iters=1, device_calls=0, device_chunk=1)
    assert p.rounds == 1 and p.device_calls == 0


# --- iters_for --------------------------------------------------------------------------------

@pytest.mark.parametrize("per_call_us,expected", [
    (100.0, 15),      # 15 ms / 10 rounds = 1500 us per window -> 15 calls
    (300.0, 5),
    (400.0, 4),       # 3.75 rounds to 4
    (1e6, 1),         # slower than the budget: still one call
    (10.0, 50),       # 150 calls wanted, capped at max_iters
    (0.0, 50),        # no division by zero
])
def test_iters_for(per_call_us, expected):
    proto = Protocol(rounds=10, target_ms=15.0, max_iters=50)
    assert iters_for(per_call_us, proto) == expected


def test_iters_for_uses_rounds_and_target():
    assert iters_for(100.0, Protocol(rounds=5, target_ms=15.0, max_iters=1000)) == 30
    assert iters_for(100.0, Protocol(rounds=10, target_ms=30.0, max_iters=1000)) == 30
    assert iters_for(100.0, Protocol(rounds=10, target_ms=30.0, max_iters=7)) == 7


# --- fake paths -------------------------------------------------------------------------------

def _sleepy_path(name, us, windows):
    """A path whose call busy-waits ``us`` microseconds; each context entry logs ``name``."""
    @contextlib.contextmanager
    def ctx():
        windows.append(name)
        yield

    def call():
        end = time.perf_counter_ns() + int(us * 1000)
        while time.perf_counter_ns() < end:
            pass
    return Path(name, ctx, call)


def test_clock_window_measures_per_call_microseconds():
    windows = []
    path = _sleepy_path("p", 200.0, windows)
    us = Clock("cpu").window(path, 5)
    assert 200.0 <= us < 20_000.0
    assert windows == ["p"], "the context is entered once around the whole window"


def test_warmup_runs_at_least_min_calls_and_for_the_time():
    calls = []
    path = Path("p", contextlib.nullcontext, lambda: calls.append(1))
    per_call = warmup(Clock("cpu"), path, Protocol(warmup_ms=0.001, min_warmup=5))
    assert len(calls) >= 5
    assert per_call > 0
    calls.clear()
    slow = _sleepy_path("s", 100.0, [])
    t0 = time.perf_counter()
    warmup(Clock("cpu"), slow, Protocol(warmup_ms=2.0, min_warmup=1))
    assert time.perf_counter() - t0 >= 0.002


def test_wall_rounds_interleaves_and_records_every_round():
    windows = []
    paths = {n: _sleepy_path(n, 20.0, windows) for n in ("a", "b", "c")}
    proto = Protocol(warmup_ms=0.2, rounds=6, target_ms=1.0)
    out = wall_rounds(paths, proto, "cpu")
    assert list(out) == ["a", "b", "c"]
    assert all(len(v) == 6 for v in out.values())
    assert all(v > 0 for vs in out.values() for v in vs)
    measured = windows[-18:]
    orders = [tuple(measured[i:i + 3]) for i in range(0, 18, 3)]
    assert all(sorted(o) == ["a", "b", "c"] for o in orders)
    assert all(x != y for x, y in zip(orders, orders[1:])), f"order must change: {orders}"
    assert {o[0] for o in orders} == {"a", "b", "c"}, f"every path should go first once: {orders}"


def test_wall_rounds_restores_gc():
    paths = {"a": _sleepy_path("a", 5.0, [])}
    assert gc.isenabled()
    wall_rounds(paths, Protocol(warmup_ms=0.1, rounds=2, target_ms=0.1), "cpu")
    assert gc.isenabled()
    gc.disable()
    try:
        wall_rounds(paths, Protocol(warmup_ms=0.1, rounds=2, target_ms=0.1), "cpu")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_wall_rounds_on_real_paths_positive(tiny_point, small_proto):
    paths = make_paths(build(tiny_point))
    out = wall_rounds(paths, small_proto, "cpu")
    assert set(out) == {"fast", "slow", "slow_fair"}
    for name, rounds in out.items():
        assert len(rounds) == small_proto.rounds, name
        assert all(r > 0 and math.isfinite(r) for r in rounds), (name, rounds)


def test_clock_window_on_real_path_positive(tiny_point):
    paths = make_paths(build(tiny_point))
    for p in paths.values():
        assert Clock("cpu").window(p, 2) > 0


# --- DeviceTimes on the CPU ------------------------------------------------------------------

def test_device_times_records_nothing_on_cpu(tiny_point):
    paths = make_paths(build(tiny_point))
    with DeviceTimes("cpu") as dt:
        dt.record("0/fast", paths["fast"], 2)
    assert dt.per_call == {}


# --- attribute_device_time on synthetic records -------------------------------------------------
# ranges: (start_ns, end_ns, label); ops: {op id: start_ns}; kernels: (launching op id, duration_ns)

def test_kernels_are_summed_per_range_in_microseconds():
    ranges = [(1000, 2000, "0/fast")]
    ops = {1: 1100, 2: 1500}
    kernels = [(1, 3000), (1, 500), (2, 14000)]
    assert attribute_device_time(ranges, ops, kernels) == {"0/fast": [17.5]}


def test_one_value_per_range_in_time_order():
    # given out of order: the result follows the ranges' start times
    ranges = [(3000, 3900, "0/slow"), (1000, 1900, "0/slow"), (2000, 2900, "0/slow"),
              (5000, 5900, "1/fast")]
    ops = {1: 1500, 2: 2500, 3: 3500, 4: 5100, 5: 5800}
    kernels = [(1, 3000), (2, 5000), (3, 4000), (4, 7000), (5, 1000)]
    out = attribute_device_time(ranges, ops, kernels)
    assert out == {"0/slow": [3.0, 5.0, 4.0], "1/fast": [8.0]}


def test_kernels_launched_outside_every_range_are_ignored():
    ranges = [(1000, 2000, "a"), (3000, 4000, "b")]
    ops = {1: 500, 2: 2500, 3: 4500, 4: 1000, 5: 2000, 6: 3000, 7: 4000}
    kernels = [(1, 1e6), (2, 1e6), (3, 1e6),          # before, between, after the ranges
               (4, 1000), (5, 2000), (6, 4000), (7, 8000),  # on the range edges: inside
               (99, 1e6)]                              # unknown launching op
    assert attribute_device_time(ranges, ops, kernels) == {"a": [3.0], "b": [12.0]}


def test_each_kernel_counted_once():
    ranges = [(0, 100, "x"), (200, 300, "y"), (400, 500, "x")]
    ops = {i: t for i, t in enumerate([10, 50, 250, 420, 600])}
    kernels = [(i, 1000.0 * (i + 1)) for i in range(5)]
    out = attribute_device_time(ranges, ops, kernels)
    assert out == {"x": [3.0, 4.0], "y": [3.0]}
    inside = sum(d for i, d in kernels if i != 4) / 1000.0
    assert sum(sum(v) for v in out.values()) == pytest.approx(inside)


def test_range_without_kernels_is_zero_and_no_ranges_is_empty():
    assert attribute_device_time([(0, 10, "z")], {}, []) == {"z": [0.0]}
    assert attribute_device_time([], {1: 5}, [(1, 100)]) == {}


def test_attribution_over_a_real_cpu_profile():
    """The CPU half of the records comes from a real profiler session; kernels are planted
    on the ops launched inside each labelled range."""
    from torch.autograd.profiler import record_function

    from mhabench import compat
    x = torch.randn(8, 8)
    with compat.profiler("cpu") as prof:
        x + 1  # an op outside any range
        for _ in range(2):
            with record_function(LABEL + "0/fast"):
                (x @ x).relu()
    ranges, ops, kernels = compat.raw_profile(prof, LABEL)
    assert kernels == []  # no device here
    assert [r[2] for r in ranges] == ["0/fast", "0/fast"]
    assert all(s <= e for s, e, _ in ranges)
    inside = [[oid for oid, t in ops.items() if s <= t <= e] for s, e, _ in ranges]
    outside = [oid for oid, t in ops.items() if not any(s <= t <= e for s, e, _ in ranges)]
    assert all(inside) and outside
    planted = [(oid, 2000.0) for oid in inside[0]] + [(inside[1][0], 5000.0)] + \
              [(oid, 1e9) for oid in outside]
    out = attribute_device_time(ranges, ops, planted)
    assert out == {"0/fast": [pytest.approx(2.0 * len(inside[0])), pytest.approx(5.0)]}
