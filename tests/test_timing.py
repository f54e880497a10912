"""Protocol validation, window arithmetic, interleaved rounds, and device time from event trees."""
from __future__ import annotations

import contextlib
import gc
import math
import time

import pytest
import torch

from mhabench.measure.config import ConfigError
from mhabench.measure.inputs import build
from mhabench.measure.paths import Path, make_paths
from mhabench.measure.protocol import MODES, PRESETS, Protocol, preset
from mhabench.measure.timing import (LABEL, MAX_WINDOW_CALLS, Clock, DeviceTimes,
                                     attribute_device_time, rounds_for, wall_rounds,
                                     warmup_together, window_calls)


# --- Protocol ------------------------------------------------------------------------------

@pytest.mark.parametrize("knobs,needle", [
    ({"min_rounds": 0}, "min_rounds"), ({"min_rounds": -1}, "min_rounds"),
    ({"min_warmup": 0}, "min_warmup"),
    ({"min_rounds": 5, "max_rounds": 4}, "max_rounds"), ({"max_rounds": 0}, "max_rounds"),
    ({"warmup_ms": 0}, "warmup_ms"), ({"warmup_ms": -1.0}, "warmup_ms"),
    ({"warmup_ms": math.nan}, "warmup_ms"),
    ({"target_ms": 0.0}, "target_ms"), ({"target_ms": -5}, "target_ms"),
    ({"target_ms": math.nan}, "target_ms"),
    ({"lead_in": -1}, "lead_in"), ({"lead_in": 1.5}, "lead_in"),
    ({"device_calls": -1}, "device_calls"),
    ({"mode": "blocks"}, "mode"), ({"mode": "long"}, "mode"),
    ({"min_rounds": 2_000_000, "max_rounds": 2_000_000}, "min_rounds"),
    ({"warmup_ms": 10**9}, "warmup_ms"), ({"min_rounds": True}, "min_rounds"),
])
def test_protocol_rejects_bad_knobs(knobs, needle):
    with pytest.raises(ConfigError) as ei:
        Protocol(**knobs)
    assert needle in str(ei.value)
    assert "\n" not in str(ei.value)


def test_protocol_accepts_small_knobs():
    p = Protocol(warmup_ms=0.5, min_rounds=1, max_rounds=1, target_ms=0.1, device_calls=0)
    assert p.min_rounds == p.max_rounds == 1 and p.device_calls == 0


def test_the_one_mode_is_windows_and_the_retired_latency_is_refused():
    assert MODES == ("windows",) and Protocol().mode == "windows"
    with pytest.raises(ConfigError, match="rotation"):
        Protocol(mode="rotation")


def test_a_window_is_the_budget_spread_over_min_rounds_rounds_of_three_paths():
    assert Protocol(target_ms=60.0, min_rounds=10).window_us == pytest.approx(2000.0)
    assert Protocol(target_ms=1.0, min_rounds=2).window_us == pytest.approx(1000 / 6)


# --- presets ---------------------------------------------------------------------------------

def test_presets_are_valid_protocols_ordered_by_budget():
    assert list(PRESETS) == ["check", "fast", "default", "rigorous"]
    assert all(isinstance(p, Protocol) for p in PRESETS.values())
    budgets = [p.target_ms for p in PRESETS.values()]
    assert budgets == sorted(budgets) and len(set(budgets)) == len(budgets)
    assert PRESETS["default"] == Protocol()
    assert PRESETS["rigorous"].target_ms >= 4 * Protocol().target_ms
    assert PRESETS["rigorous"].min_rounds > Protocol().min_rounds


def test_the_check_preset_is_two_rounds_of_a_millisecond():
    check = preset("check")
    assert check.min_rounds == check.max_rounds == 2 and check.target_ms == 1.0
    assert check.device_calls >= 1 and check.host_work, "a check still reaches every figure"


def test_an_unknown_preset_is_one_line_naming_the_choices():
    with pytest.raises(ConfigError) as ei:
        preset("thorough")
    msg = str(ei.value)
    assert "'thorough'" in msg and all(n in msg for n in PRESETS) and "\n" not in msg


# --- rounds_for ------------------------------------------------------------------------------

@pytest.mark.parametrize("round_us,expected", [
    (1000.0, 80),     # 80 ms of rounds of 1 ms
    (800.0, 100),
    (1500.0, 53),     # 53.3 rounds down
    (700.0, 114),     # 114.3
    (1e6, 15),        # slower than the budget: still min_rounds
    (10.0, 200),      # 8000 wanted, capped at max_rounds
    (0.0, 200),       # no division by zero
])
def test_rounds_for(round_us, expected):
    proto = Protocol(target_ms=80.0, min_rounds=15, max_rounds=200)
    assert rounds_for(round_us, proto) == expected


def test_rounds_for_uses_target_and_bounds():
    assert rounds_for(100.0, Protocol(target_ms=3.0, min_rounds=1, max_rounds=1000)) == 30
    assert rounds_for(100.0, Protocol(target_ms=6.0, min_rounds=1, max_rounds=1000)) == 60
    assert rounds_for(100.0, Protocol(target_ms=6.0, min_rounds=1, max_rounds=7)) == 7
    assert rounds_for(100.0, Protocol(target_ms=0.1, min_rounds=9, max_rounds=20)) == 9


# --- fake paths -------------------------------------------------------------------------------

def _sleepy_path(name, us, log, calls=None):
    """A path whose call busy-waits ``us`` microseconds; each context entry logs ``name``, and
    each call appends ``name`` to ``calls`` (if given)."""
    @contextlib.contextmanager
    def ctx():
        log.append(name)
        yield

    def call():
        if calls is not None:
            calls.append(name)
        end = time.perf_counter_ns() + int(us * 1000)
        while time.perf_counter_ns() < end:
            pass
    return Path(name, ctx, call)


def test_clock_once_measures_one_call_in_microseconds():
    log = []
    us = Clock("cpu").once(_sleepy_path("p", 200.0, log))
    assert us >= 200.0
    assert log == ["p"]


def test_clock_calls_times_each_call_in_order():
    log = []
    a, b = _sleepy_path("a", 50.0, log), _sleepy_path("b", 400.0, log)
    out = Clock("cpu").calls([a, b, a])
    assert log == ["a", "b", "a"], "each call runs in its own context, in the given order"
    assert len(out) == 3
    assert out[0] >= 50.0 and out[2] >= 50.0 and out[1] >= 400.0


def test_clock_window_makes_n_calls_in_one_context_and_gives_us_per_call():
    log, calls = [], []
    us = Clock("cpu").window(_sleepy_path("w", 100.0, log, calls), 7)
    assert log == ["w"], "the context is entered once around the window"
    assert calls == ["w"] * 7
    assert us >= 100.0, "per call, not the window's total divided by anything else"


def _cold_first_path(log, calls, first_us=3000.0, then_us=50.0):
    """A path whose first call in each context entry is slow (a cold start), the rest fast."""
    state = {"n": 0}

    @contextlib.contextmanager
    def ctx():
        log.append("cold")
        state["n"] = 0
        yield

    def call():
        calls.append("cold")
        us = first_us if state["n"] == 0 else then_us
        state["n"] += 1
        end = time.perf_counter_ns() + int(us * 1000)
        while time.perf_counter_ns() < end:
            pass
    return Path("cold", ctx, call)


def test_a_lead_in_call_takes_the_window_s_cold_start_outside_the_clock():
    log, calls = [], []
    cold = _cold_first_path(log, calls)
    with_lead = Clock("cpu").window(cold, 5, lead_in=1)
    assert calls == ["cold"] * 6, "the lead-in call is made in the window's context"
    assert 50.0 <= with_lead < 600.0, "the cold first call is not on the clock"
    calls.clear()
    without = Clock("cpu").window(cold, 5, lead_in=0)
    assert calls == ["cold"] * 5 and without >= (3000.0 + 4 * 50.0) / 5


def test_the_knobs_that_set_a_wall_level_are_all_but_the_counting_ones():
    from dataclasses import asdict
    from mhabench.measure.protocol import wall_timing
    got = wall_timing(asdict(Protocol()))
    assert set(got) == set(asdict(Protocol())) - {"device_calls", "host_work"}
    before = {k: v for k, v in asdict(Protocol()).items() if k != "lead_in"}
    assert wall_timing(before)["lead_in"] == 0, "a record before the lead-in had none"
    assert wall_timing(None) == {} and wall_timing("windows") == {}


def test_the_default_protocol_opens_each_window_with_one_untimed_call():
    assert Protocol().lead_in == 1
    assert all(p.lead_in == 1 for p in PRESETS.values())


# --- the warm-up -----------------------------------------------------------------------------

@pytest.fixture
def once_times(monkeypatch):
    """Every time Clock.once measures, in order (µs)."""
    seen = []
    real = Clock.once

    def spy(self, path):
        seen.append(real(self, path))
        return seen[-1]
    monkeypatch.setattr(Clock, "once", spy)
    return seen


def test_a_shared_warmup_takes_the_paths_in_turn_and_its_time_for_all_of_them(once_times):
    log = []
    paths = {n: _sleepy_path(n, 200.0, log) for n in ("a", "b", "c")}
    est = warmup_together(Clock("cpu"), paths, Protocol(warmup_ms=3.0, min_warmup=2))
    assert log[:6] == ["a", "b", "c"] * 2
    assert len(log) % 3 == 0, "every path as often"
    # one budget for the three paths: it stops in the first turn that reaches 3 ms in all
    assert sum(once_times[:-3]) < 3000.0 <= sum(once_times)
    assert set(est) == set(paths) and all(v >= 200.0 for v in est.values())


def test_a_warmup_makes_min_warmup_calls_of_each_path_past_its_budget():
    few = []
    slow = {n: _sleepy_path(n, 2000.0, few) for n in ("a", "b")}
    warmup_together(Clock("cpu"), slow, Protocol(warmup_ms=0.5, min_warmup=3))
    assert few == ["a", "b"] * 3


def test_the_warmup_estimate_is_its_second_half():
    """A first call that pays a one-off set-up does not reach the estimate."""
    made = []

    def call():
        us = 50.0 if made else 20_000.0
        made.append(us)
        end = time.perf_counter_ns() + int(us * 1000)
        while time.perf_counter_ns() < end:
            pass
    est = warmup_together(Clock("cpu"), {"p": Path("p", contextlib.nullcontext, call)},
                          Protocol(warmup_ms=1.0, min_warmup=4))
    assert 50.0 <= est["p"] < 20_000.0


def test_wall_rounds_warms_up_in_turn():
    log = []
    paths = {n: _sleepy_path(n, 50.0, log) for n in ("a", "b")}
    wall_rounds(paths, Protocol(warmup_ms=1.0, min_warmup=2, min_rounds=2, max_rounds=2,
                                target_ms=0.1), "cpu")
    warm = log[:-4]  # the rounds' own windows are the last four
    assert warm[:4] == ["a", "b", "a", "b"] and warm.count("a") == warm.count("b")


# --- windows ---------------------------------------------------------------------------------

def test_window_calls_fill_the_window_within_bounds():
    proto = Protocol(target_ms=6.0, min_rounds=2)  # windows of 1000 µs
    got = window_calls({"a": 10.0, "b": 300.0, "c": 5000.0, "d": 1e-9, "e": 0.0}, proto)
    assert got == {"a": 100, "b": 3, "c": 1, "d": MAX_WINDOW_CALLS, "e": MAX_WINDOW_CALLS}


def test_wall_rounds_times_windows_of_the_calls_it_reports():
    log, calls = [], []
    paths = {"fast": _sleepy_path("fast", 20.0, log, calls),
             "slow": _sleepy_path("slow", 400.0, log, calls)}
    # 9 warm-up calls each: the estimate is the median of 5, which one preemption cannot move
    proto = Protocol(warmup_ms=0.5, min_warmup=9, min_rounds=3, max_rounds=3, target_ms=6.0)
    out, per = wall_rounds(paths, proto, "cpu")
    assert set(per) == {"fast", "slow"} and per["fast"] > per["slow"] >= 1
    windows = log[-6:]  # one context entry per window
    assert sorted(windows) == ["fast"] * 3 + ["slow"] * 3
    lead = proto.lead_in
    timed = calls[len(calls) - 3 * (per["fast"] + per["slow"] + 2 * lead):]
    assert timed.count("fast") == 3 * (per["fast"] + lead)
    assert timed.count("slow") == 3 * (per["slow"] + lead)
    assert min(out["slow"]) >= 400.0 and min(out["fast"]) >= 20.0
    assert min(out["fast"]) < 400.0, "the fast list holds the fast path's windows"


def test_wall_rounds_interleaves_and_records_every_round():
    log = []
    paths = {n: _sleepy_path(n, 20.0, log) for n in ("a", "b", "c")}
    proto = Protocol(warmup_ms=0.2, min_rounds=6, max_rounds=6, target_ms=1.0)
    out, _ = wall_rounds(paths, proto, "cpu")
    assert list(out) == ["a", "b", "c"]
    assert all(len(v) == 6 for v in out.values())
    assert all(v >= 20.0 for vs in out.values() for v in vs)
    measured = log[-18:]
    orders = [tuple(measured[i:i + 3]) for i in range(0, 18, 3)]
    assert len(set(orders)) == 6, f"six rounds, each in its own order of the three: {orders}"


def test_two_paths_alternate_which_goes_first():
    log = []
    paths = {n: _sleepy_path(n, 20.0, log) for n in ("a", "b")}
    wall_rounds(paths, Protocol(warmup_ms=0.2, min_rounds=4, max_rounds=4, target_ms=1.0), "cpu")
    assert log[-8:] == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_three_paths_make_min_rounds_rounds_and_a_larger_budget_longer_windows():
    """Each window lasts about window_us, so three paths fill the budget in min_rounds rounds;
    a larger budget lengthens the windows, not the count of rounds."""
    paths = {n: _sleepy_path(n, 10.0, []) for n in ("a", "b", "c")}
    short_out, short = wall_rounds(paths, Protocol(warmup_ms=0.2, min_warmup=9, min_rounds=4,
                                                   max_rounds=100, target_ms=3.0), "cpu")
    long_out, long = wall_rounds(paths, Protocol(warmup_ms=0.2, min_warmup=9, min_rounds=4,
                                                 max_rounds=100, target_ms=12.0), "cpu")
    assert all(len(v) == 4 for v in short_out.values())
    assert all(len(v) == 4 for v in long_out.values())
    assert all(long[n] > short[n] for n in paths), (short, long)


def test_a_path_slower_than_its_window_makes_one_call_per_window_and_min_rounds():
    paths = {"a": _sleepy_path("a", 1000.0, [])}
    out, calls = wall_rounds(paths, Protocol(warmup_ms=0.1, min_rounds=2, max_rounds=500,
                                             target_ms=0.1), "cpu")
    assert calls == {"a": 1} and len(out["a"]) == 2


# --- the order of the paths ----------------------------------------------------------------------

def test_windows_rotate_the_order_of_three_paths():
    log = []
    paths = {n: _sleepy_path(n, 20.0, log) for n in ("a", "b", "c")}
    out, calls = wall_rounds(paths, Protocol(warmup_ms=0.2, min_rounds=6, max_rounds=6,
                                             target_ms=0.1), "cpu")
    assert calls == {"a": 1, "b": 1, "c": 1} and all(len(v) == 6 for v in out.values())
    orders = [tuple(log[-18:][i:i + 3]) for i in range(0, 18, 3)]
    assert len(set(orders)) == 6, orders


@pytest.mark.parametrize("mode", MODES)
def test_wall_rounds_restores_gc(mode):
    paths = {"a": _sleepy_path("a", 5.0, [])}
    proto = Protocol(warmup_ms=0.1, min_rounds=2, max_rounds=2, target_ms=0.1, mode=mode)
    assert gc.isenabled()
    wall_rounds(paths, proto, "cpu")
    assert gc.isenabled()
    gc.disable()
    try:
        wall_rounds(paths, proto, "cpu")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_rounds_run_with_the_collector_off_and_it_is_back_after_a_failure():
    states = []

    def call():
        states.append(gc.isenabled())
        if states.count(False) == 3:
            raise RuntimeError("boom")
    paths = {"a": Path("a", contextlib.nullcontext, call)}
    with pytest.raises(RuntimeError, match="boom"):
        wall_rounds(paths, Protocol(warmup_ms=0.01, min_warmup=2, min_rounds=50,
                                    max_rounds=50, target_ms=0.1), "cpu")
    first_off = states.index(False)
    assert first_off >= 2 and all(states[:first_off]), "the warm-up runs as the caller had it"
    assert not any(states[first_off:]), "no collection inside the timed rounds"
    assert gc.isenabled()


@pytest.mark.parametrize("mode", MODES)
def test_wall_rounds_on_real_paths_positive(tiny_point, small_proto, mode):
    paths = make_paths(build(tiny_point))
    out, calls = wall_rounds(paths, Protocol(**{**small_proto.__dict__, "mode": mode}), "cpu")
    assert set(out) == set(calls) == {"fast", "slow", "slow_fair"}
    for name, rounds in out.items():
        assert len(rounds) == small_proto.min_rounds, name
        assert all(r > 0 and math.isfinite(r) for r in rounds), (name, rounds)
        assert calls[name] >= 1


def test_clock_on_real_paths_positive(tiny_point):
    paths = list(make_paths(build(tiny_point)).values())
    assert all(t > 0 for t in Clock("cpu").calls(paths))
    assert Clock("cpu").once(paths[0]) > 0
    assert Clock("cpu").window(paths[0], 3) > 0


# --- DeviceTimes on the CPU ------------------------------------------------------------------

def test_device_times_records_nothing_on_cpu(tiny_point):
    paths = make_paths(build(tiny_point))
    with DeviceTimes("cpu") as dt:
        dt.record("0/fast", paths["fast"], 2)
    assert dt.per_call == {}


# --- attribute_device_time on synthetic records -------------------------------------------------
# ranges: (start_ns, end_ns, label); ops: {op id: start_ns};
# kernels: (launching op id, device start_ns, duration_ns)

def _k(op_id, dur_ns, dev_start=None):
    """A device record; distinct device start times unless given."""
    _k.n += 1
    return (op_id, _k.n * 10_000_000 if dev_start is None else dev_start, dur_ns)


_k.n = 0


def test_kernels_are_summed_per_range_in_microseconds():
    ranges = [(1000, 2000, "0/fast")]
    ops = {1: 1100, 2: 1500}
    kernels = [_k(1, 3000), _k(1, 500), _k(2, 14000)]
    assert attribute_device_time(ranges, ops, kernels) == {"0/fast": [17.5]}


def test_one_value_per_range_in_time_order():
    # given out of order: the result follows the ranges' start times
    ranges = [(3000, 3900, "0/slow"), (1000, 1900, "0/slow"), (2000, 2900, "0/slow"),
              (5000, 5900, "1/fast")]
    ops = {1: 1500, 2: 2500, 3: 3500, 4: 5100, 5: 5800}
    kernels = [_k(1, 3000), _k(2, 5000), _k(3, 4000), _k(4, 7000), _k(5, 1000)]
    out = attribute_device_time(ranges, ops, kernels)
    assert out == {"0/slow": [3.0, 5.0, 4.0], "1/fast": [8.0]}


def test_kernels_launched_outside_every_range_are_ignored():
    ranges = [(1000, 2000, "a"), (3000, 4000, "b")]
    ops = {1: 500, 2: 2500, 3: 4500, 4: 1000, 5: 2000, 6: 3000, 7: 4000}
    kernels = [_k(1, 1e6), _k(2, 1e6), _k(3, 1e6),              # before, between, after
               _k(4, 1000), _k(5, 2000), _k(6, 4000), _k(7, 8000),  # on the range edges: inside
               _k(99, 1e6)]                                     # unknown launching op
    assert attribute_device_time(ranges, ops, kernels) == {"a": [3.0], "b": [12.0]}


def test_each_kernel_counted_once():
    ranges = [(0, 100, "x"), (200, 300, "y"), (400, 500, "x")]
    ops = {i: t for i, t in enumerate([10, 50, 250, 420, 600])}
    kernels = [_k(i, 1000.0 * (i + 1)) for i in range(5)]
    out = attribute_device_time(ranges, ops, kernels)
    assert out == {"x": [3.0, 4.0], "y": [3.0]}
    inside = sum(d for i, _, d in kernels if i != 4) / 1000.0
    assert sum(sum(v) for v in out.values()) == pytest.approx(inside)


def test_a_record_listed_twice_counts_once_but_distinct_kernels_add():
    ranges = [(0, 100, "x")]
    ops = {1: 10}
    twice = (1, 5000, 2000)
    assert attribute_device_time(ranges, ops, [twice, twice]) == {"x": [2.0]}
    # two kernels of the same op and length, at different device times, are two kernels
    assert attribute_device_time(ranges, ops, [(1, 5000, 2000), (1, 9000, 2000)]) == {"x": [4.0]}


def test_range_without_kernels_is_zero_and_no_ranges_is_empty():
    assert attribute_device_time([(0, 10, "z")], {}, []) == {"z": [0.0]}
    assert attribute_device_time([], {1: 5}, [_k(1, 100)]) == {}


def test_attribution_over_a_real_cpu_session():
    """The host half comes from a real session: only the labels are recorded (no aten ops).
    Device work is planted on launches placed inside and outside those ranges, as a CUDA
    session ties them: a kernel carries the correlation id of the runtime call that launched it."""
    from torch.autograd.profiler import record_function

    from mhabench.measure import compat
    from mhabench.measure.timing import kernel_names
    x = torch.randn(8, 8)
    with compat.KernelRecorder("cpu") as rec:
        x + 1  # an op outside any range
        for _ in range(2):
            with record_function(LABEL + "0/fast"):
                (x @ x).relu()
    ranges, launches, kernels, host, _ = compat.raw_profile(rec.events(), LABEL)
    assert kernels == [] and launches == {}  # no device, no runtime calls here
    assert host == [], "a session without ops records only the labels"
    assert [r[2] for r in ranges] == ["0/fast", "0/fast"]
    assert all(s <= e for s, e, _ in ranges)
    (s0, e0, _), (s1, e1, _) = sorted(ranges)
    launches = {10: s0, 11: e0, 12: s1, 13: e1 + 1}
    planted = [(10, 0, 2000.0, "flash_fwd_kernel"), (11, 1, 1000.0, "gemm"),
               (12, 2, 5000.0, "gemm"), (13, 3, 1e9, "after"), (99, 4, 1e9, "unknown")]
    out = attribute_device_time(ranges, launches, planted)
    assert out == {"0/fast": [pytest.approx(3.0), pytest.approx(5.0)]}
    assert kernel_names(ranges, launches, planted) == {"0/fast": {"flash_fwd_kernel", "gemm"}}


class _Rec:
    """A stand-in for one kineto record (the methods raw_profile reads)."""

    def __init__(self, dev, name, corr, start, dur=0):
        self.dev, self.n, self.corr, self.start, self.dur = dev, name, corr, start, dur

    def device_type(self):
        return self.dev

    def name(self):
        return self.n

    def correlation_id(self):
        return self.corr

    def start_ns(self):
        return self.start

    def end_ns(self):
        return self.start + self.dur

    def duration_ns(self):
        return self.dur


def test_raw_profile_ties_device_work_to_launches_and_skips_label_records():
    """A label's device-side annotation may share its id with a launch: it must not count."""
    from torch.autograd import DeviceType

    from mhabench.measure import compat
    cpu, gpu = DeviceType.CPU, DeviceType.CUDA
    events = [_Rec(cpu, LABEL + "fast", 7, 100, 50), _Rec(cpu, "cudaLaunchKernel", 7, 110),
              _Rec(cpu, "cuLaunchKernelEx", 8, 120), _Rec(cpu, "aten::mm", 9, 115),
              _Rec(gpu, "gemm", 7, 1000, 3000), _Rec(gpu, "flash_fwd", 8, 4000, 2000),
              _Rec(gpu, LABEL + "fast", 7, 1000, 9000)]
    ranges, launches, kernels, host, copies = compat.raw_profile(events, LABEL)
    assert ranges == [(100, 150, "fast")]
    assert host == [(110, "cudaLaunchKernel"), (120, "cuLaunchKernelEx"), (115, "aten::mm")]
    assert launches == {7: 110, 8: 120}
    assert sorted(k[3] for k in kernels) == ["flash_fwd", "gemm"]
    assert attribute_device_time(ranges, launches, kernels) == {"fast": [pytest.approx(5.0)]}


@pytest.mark.parametrize("names, backend", [
    (["void pytorch_flash::flash_fwd_kernel<...>", "gemm"], "flash"),
    (["fmha_cutlassF_f16_aligned_64x64_rf_sm80"], "efficient"),
    (["cudnn_generated_fort_native_sdpa_sm90_flash_fprop"], "cudnn"),
    (["ampere_fp16_s16816gemm", "softmax_warp_forward"], ""),
])
def test_sdpa_backend_from_kernel_names(names, backend):
    from mhabench.measure import compat
    assert compat.sdpa_backend_of(names) == backend
