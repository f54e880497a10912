"""mhabench.measure.passes: a point's two passes (wall, then counts), each failure kept to that
point; and the device helpers of mhabench.measure.machine."""
from __future__ import annotations

import copy
import math
import sys

import pytest
import torch

from mhabench.measure import compat, machine, passes
from mhabench.measure.config import ConfigError, Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import Path
from mhabench.measure.protocol import PRESETS, Protocol
from mhabench.measure.results import DONE, ERROR, MISMATCH, NO_FASTPATH, OK, WALL, Result

PATH_NAMES = {"fast", "slow", "slow_fair"}


def _points():
    return [Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu"),
            Point(3, 8, 32, 4, 61, dtype="fp32", device="cpu"),
            Point(4, 16, 32, 4, 21, dtype="fp32", device="cpu")]


def _assert_untimed(r: Result):
    assert r.rounds == {}
    assert not r.timed
    assert r.stage == DONE, "a point that failed its wall pass has no counts pass to wait for"
    m = r.metrics()
    for k in ("speedup", "speedup_fair", "wall_fast_us", "wall_slow_us", "wall_slow_fair_us"):
        assert math.isnan(m[k]), k


# --- the wall pass ---------------------------------------------------------------------------

def test_the_wall_pass_checks_and_times_and_counts_nothing(padded_point, small_proto):
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == OK, r.message
    assert r.stage == WALL and r.fast_path and r.timed
    assert set(r.rounds) == set(r.window_calls) == PATH_NAMES
    assert all(len(v) == small_proto.min_rounds and min(v) > 0 for v in r.rounds.values())
    assert all(n >= 1 for n in r.window_calls.values())
    assert r.padding == pytest.approx(build(padded_point).padding) and r.padding > 0
    assert 0 <= r.max_abs_err < 1e-4
    assert r.host_work == {} and r.device_calls == {} and r.peak_mem == {}
    assert r.metrics()["speedup"] > 0


def test_no_profiler_and_no_tracer_run_in_the_wall_pass(padded_point, small_proto, monkeypatch):
    """Whatever a profiler session or sys.settrace leaves behind cannot reach a wall figure."""
    def refuse(*a, **k):
        raise AssertionError("a profiler session in the wall pass")
    monkeypatch.setattr(compat, "KernelRecorder", refuse)
    monkeypatch.setattr(passes.bytecodes, "count", refuse)
    traced = []
    real = sys.settrace
    monkeypatch.setattr(sys, "settrace", lambda f: (traced.append(f), real(f)))
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == OK and r.stage == WALL, r.message
    assert traced == []


def test_the_wall_pass_runs_before_rounds_once_the_point_is_checked(padded_point, small_proto,
                                                                     monkeypatch):
    events = []
    real_rounds = passes.wall_rounds
    real_compare = passes.compare
    monkeypatch.setattr(passes, "compare", lambda *a: (events.append("check"),
                                                       real_compare(*a))[1])
    monkeypatch.setattr(passes, "wall_rounds", lambda *a: (events.append("rounds"),
                                                           real_rounds(*a))[1])
    cost = {}
    r = passes.wall_pass(padded_point, small_proto, cost,
                         before_rounds=lambda: events.append("before"))
    assert r.status == OK and events == ["check", "before", "rounds"]
    assert {"wall_pass", "wall_build_check", "journal_wait", "extra_fp32"} <= set(cost)


def test_before_rounds_is_skipped_where_the_point_fails_first(tiny_point, small_proto,
                                                             monkeypatch):
    def boom(point):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(passes, "build", boom)
    called = []
    r = passes.wall_pass(tiny_point, small_proto, before_rounds=lambda: called.append(1))
    assert r.status == ERROR and called == []


def test_disabled_fast_path_is_no_fastpath(tiny_point, small_proto, fastpath_off):
    r = passes.measure(tiny_point, small_proto)
    assert r.status == NO_FASTPATH
    assert "get_fastpath_enabled" in r.message
    assert not r.fast_path
    _assert_untimed(r)


def test_training_module_is_no_fastpath(tiny_point, small_proto, monkeypatch):
    def training_build(point):
        inp = build(point)
        inp.mha.train()
        return inp
    monkeypatch.setattr(passes, "build", training_build)
    r = passes.wall_pass(tiny_point, small_proto)
    assert r.status == NO_FASTPATH
    assert "training" in r.message
    _assert_untimed(r)


def test_planted_wrong_fast_output_is_mismatch_and_still_timed(padded_point, small_proto,
                                                               monkeypatch):
    real = passes.run_fast_checked

    def wrong(path):
        out = compat.to_padded(real(path), 0.0).clone()
        out[0, 0, 0] += 1.0  # token 0 of every row is real
        return out
    monkeypatch.setattr(passes, "run_fast_checked", wrong)
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == MISMATCH
    assert r.max_abs_err == pytest.approx(1.0, rel=1e-3)
    assert r.message
    assert r.timed and r.stage == WALL, "a mismatch is still timed, and counted"
    r = passes.counts_pass(r, small_proto)
    assert r.status == MISMATCH and r.stage == DONE and set(r.host_work) == PATH_NAMES


@pytest.mark.parametrize("exc", [RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore"),
                                 ValueError("bad"), torch.cuda.OutOfMemoryError("CUDA out of memory")])
def test_exceptions_become_an_error_point(tiny_point, small_proto, monkeypatch, exc):
    def boom(point):
        raise exc
    monkeypatch.setattr(passes, "build", boom)
    r = passes.measure(tiny_point, small_proto)
    assert r.status == ERROR
    assert type(exc).__name__ in r.message
    assert str(exc).splitlines()[0] in r.message
    assert "\n" not in r.message
    _assert_untimed(r)


def test_an_error_during_timing_drops_partial_rounds(tiny_point, small_proto, monkeypatch):
    def broken_rounds(paths, proto, device):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(passes, "wall_rounds", broken_rounds)
    r = passes.wall_pass(tiny_point, small_proto)
    assert r.status == ERROR and "out of memory" in r.message
    _assert_untimed(r)


def test_the_fp32_drift_is_measured_outside_the_timed_rounds(padded_point, small_proto,
                                                               monkeypatch):
    """The extras add calls, but none inside the timed rounds: there, one window of each path
    per round, and nothing else."""
    from mhabench.measure import timing
    calls, windows, in_rounds = [], [], []
    real_paths, real_window = passes.active_paths, timing.Clock.window

    def counting_paths(inp):
        paths = real_paths(inp)
        return {n: Path(p.name, p.context, (lambda p=p, n=n: (calls.append(n), p.call())[1]))
                for n, p in paths.items()}

    def spy_window(self, path, n, lead_in=0):
        before = len(calls)
        out = real_window(self, path, n, lead_in)
        windows.append((path.name, n, len(calls) - before - lead_in))
        return out

    real_rounds = passes.wall_rounds

    def spy_rounds(paths, proto, device):
        in_rounds.append(True)
        try:
            return real_rounds(paths, proto, device)
        finally:
            in_rounds.pop()

    extras_inside = []
    real_ref = passes.fp32_reference
    monkeypatch.setattr(passes, "fp32_reference",
                        lambda *a: (extras_inside.append(bool(in_rounds)), real_ref(*a))[1])
    monkeypatch.setattr(passes, "active_paths", counting_paths)
    monkeypatch.setattr(timing.Clock, "window", spy_window)
    monkeypatch.setattr(passes, "wall_rounds", spy_rounds)
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == OK, r.message
    assert extras_inside == [False], "the fp32 reference ran, outside the timed rounds"
    assert len(windows) == 3 * small_proto.min_rounds
    assert all(made == n == r.window_calls[name] for name, n, made in windows), \
        "each window makes exactly its calls and its lead-in, no extra one"
    assert all(len(v) == small_proto.min_rounds for v in r.rounds.values())


def test_a_failing_extra_leaves_the_point_measured(padded_point, small_proto, monkeypatch):
    def oom(inp):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4 GiB")
    monkeypatch.setattr(passes, "fp32_reference", oom)
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == OK and r.timed and r.stage == WALL
    assert math.isnan(r.max_abs_err_fp32)
    assert r.message.startswith("fp32 reference: OutOfMemoryError: CUDA out of memory")


def test_no_extras_measures_only_what_the_reference_does(padded_point, small_proto, monkeypatch):
    def refuse(*a):
        raise AssertionError("an extra ran")
    monkeypatch.setattr(passes, "fp32_reference", refuse)
    monkeypatch.setattr(passes, "peak_memory", refuse)
    cost = {}
    r = passes.measure(padded_point, small_proto, cost, extras=False)
    assert r.status == OK and r.timed and r.message == ""
    assert math.isnan(r.max_abs_err_fp32) and r.peak_mem == {}
    assert not [k for k in cost if k.startswith("extra")], cost


def test_lengths_drift_and_no_memory_on_cpu(padded_point, small_proto):
    cost = {}
    r = passes.measure(padded_point, small_proto, cost)
    assert r.status == OK, r.message
    assert r.lengths == build(padded_point).lengths
    assert 0 <= r.max_abs_err_fp32 < 1e-4
    assert r.peak_mem == {}
    m = r.metrics()
    assert m["useful_flops"] < m["padded_flops"]  # the point has padding
    assert m["wall_fast_tflops"] > 0 and math.isnan(m["device_fast_tflops"])
    assert cost["extra_fp32"] > 0 and "extra_memory" not in cost  # no allocator statistics on a CPU


# --- the counts pass -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def _walled():
    p = Point(2, 8, 32, 4, 1, dtype="fp32", device="cpu")
    r = passes.wall_pass(p, PRESETS["check"])
    assert r.stage == WALL, r.message
    return r.record()


@pytest.fixture
def walled(_walled):
    """One wall pass of a tiny CPU point, as its record: what a journal's ``wall`` line holds
    (a copy per test: a Result read from a record shares its lists and dicts)."""
    return copy.deepcopy(_walled)


def test_the_counts_pass_adds_the_counts_and_keeps_the_wall_figures(walled):
    r = Result.of_record(walled)
    rounds = {k: list(v) for k, v in r.rounds.items()}
    cost = {}
    out = passes.counts_pass(r, PRESETS["check"], cost)
    assert out is r and r.stage == DONE and r.status == OK and r.message == ""
    assert r.rounds == rounds and r.window_calls == walled["window_calls"]
    assert set(r.host_work) == PATH_NAMES
    for name, counts in r.host_work.items():
        assert counts["aten_ops"] > 0 and counts["bytecodes"] > 0, name
        assert sum(counts["ops"].values()) == counts["aten_ops"]
    assert r.device_calls == {}, "no device time on a CPU"
    assert {"counts_build", "host_work_pass", "bytecodes"} <= set(cost)
    assert "wall_pass" not in cost


def test_the_counts_pass_gives_the_same_counts_every_time(walled):
    a = passes.counts_pass(Result.of_record(walled), PRESETS["check"])
    b = passes.counts_pass(Result.of_record(walled), PRESETS["default"])
    assert a.host_work == b.host_work


def test_a_counts_pass_on_a_done_or_failed_point_does_nothing(walled, monkeypatch):
    monkeypatch.setattr(passes, "build", lambda p: pytest.fail("built"))
    done = Result.of_record({**walled, "stage": DONE})
    assert passes.counts_pass(done, PRESETS["check"]).host_work == {}
    failed = Result(done.point, status=ERROR, message="boom", stage=WALL)
    out = passes.counts_pass(failed, PRESETS["check"])
    assert out.stage == DONE and out.host_work == {} and out.message == "boom"


def test_a_counts_pass_that_cannot_build_keeps_the_wall_figures_with_a_note(walled, monkeypatch):
    def oom(point):
        raise RuntimeError("CUDA out of memory\nsecond line")
    monkeypatch.setattr(passes, "build", oom)
    r = passes.counts_pass(Result.of_record(walled), PRESETS["check"])
    assert r.status == OK and r.stage == DONE and r.timed
    assert r.rounds == walled["rounds"]
    assert r.message == "counts: RuntimeError: CUDA out of memory"
    assert r.host_work == {}


def test_a_failing_count_leaves_the_others_and_a_note(walled, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("profiler broke")
    monkeypatch.setattr(passes, "add_host_work", broken)
    r = passes.counts_pass(Result.of_record(walled), PRESETS["check"])
    assert r.status == OK and r.message == "host work: RuntimeError: profiler broke"
    assert all(set(c) == {"bytecodes", "functions"} for c in r.host_work.values()), \
        "the bytecode counts stand"
    monkeypatch.setattr(passes.bytecodes, "count_by_function", broken)
    r = passes.counts_pass(Result.of_record(walled), PRESETS["check"])
    assert r.message == "host work: RuntimeError: profiler broke; bytecodes: RuntimeError: " \
                        "profiler broke"


def test_no_counts_when_switched_off(walled, monkeypatch):
    for proto in (Protocol(host_work=False), Protocol(device_calls=0)):
        r = passes.counts_pass(Result.of_record(walled), proto)
        assert r.host_work == {} and r.stage == DONE and r.status == OK


def test_measure_is_both_passes(padded_point, small_proto):
    r = passes.measure(padded_point, small_proto)
    assert r.status == OK and r.stage == DONE and r.timed
    assert set(r.host_work) == PATH_NAMES and set(r.rounds) == PATH_NAMES


def test_each_point_of_a_sequence_keeps_its_own_failure(small_proto, monkeypatch):
    pts = _points()
    bad = pts[1]

    def flaky_build(point):
        if point == bad:
            raise RuntimeError("CUDA out of memory")
        return build(point)
    monkeypatch.setattr(passes, "build", flaky_build)
    walls = [passes.wall_pass(p, small_proto) for p in pts]
    results = [passes.counts_pass(r, small_proto) for r in walls]
    assert [r.point for r in results] == pts
    assert results[1].status == ERROR and "out of memory" in results[1].message
    _assert_untimed(results[1])
    for r in (results[0], results[2]):
        assert r.status == OK and r.stage == DONE, r.message
        assert set(r.rounds) == set(r.host_work) == PATH_NAMES


def test_the_cost_accumulates_over_points(small_proto):
    cost = {}
    passes.measure(_points()[0], small_proto, cost)
    before = dict(cost)
    assert before["wall_pass"] > 0 and before["host_work_pass"] > 0
    passes.measure(_points()[1], small_proto, cost)
    assert cost["wall_pass"] > before["wall_pass"], "a second point adds to the same dictionary"
    assert cost["counts_build"] > before["counts_build"]


def test_add_device_times_is_a_no_op_on_cpu():
    p = _points()[0]
    r = Result(p, rounds={"fast": [1.0], "slow": [2.0]})
    overhead = passes.add_device_times(r, passes.active_paths(build(p)), Protocol(device_calls=3))
    assert r.device_calls == {} and r.sdpa_backend == ""
    assert overhead == {"start": 0.0, "stop": 0.0, "parse": 0.0, "backends": 0.0}


def test_add_host_work_counts_one_call_per_path():
    p = _points()[0]
    made = []
    paths = {n: Path(n, q.context, (lambda q=q, n=n: (made.append(n), q.call())[1]))
             for n, q in passes.active_paths(build(p)).items()}
    r = Result(p)
    passes.add_host_work(r, paths)
    assert made == list(paths) and passes.HOST_WORK_CALLS == 1
    assert set(r.host_work) == PATH_NAMES
    assert all(set(c) == {"aten_ops", "ops", "varies"} for c in r.host_work.values())


def test_one_line_keeps_the_type_and_the_first_line():
    assert passes.one_line(ValueError("a\nb")) == "ValueError: a"
    assert passes.one_line(RuntimeError()) == "RuntimeError: "
    assert len(passes.one_line(RuntimeError("x" * 1000))) == 300


# --- device helpers (mhabench.measure.machine) ----------------------------------------------------

def test_default_device_is_cpu_without_cuda():
    assert machine.default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", "cuda:3"])
def test_require_device_without_cuda(dev):
    with pytest.raises(ConfigError) as ei:
        machine.require_device(dev)
    assert repr(dev) in str(ei.value)


def test_require_device_cpu_is_fine():
    machine.require_device("cpu")


def test_run_meta(small_proto):
    meta = machine.run_meta("cpu", small_proto, "smoke")
    assert meta["mhabench_grid"] == "smoke" and meta["device"] == "cpu"
    assert meta["torch"] == torch.__version__
    assert meta["protocol"]["min_rounds"] == small_proto.min_rounds
    assert meta["protocol"]["target_ms"] == small_proto.target_ms
    assert meta["started"] and meta["device_name"]
    assert "device_fast_us" in meta["n/a"] and "wall_fast_us" not in meta["n/a"]
    assert set(machine.build_identity()) <= set(meta)


def test_the_build_identity_proves_the_build():
    ident = machine.build_identity()
    assert ident["torch"] == torch.__version__ and ident["variant"] in ("cpu",) + tuple(
        f"cu{v}" for v in range(100, 200))
    assert len(ident["mhabench_source"]) == 16
    assert ident["mhabench_source"] == machine.source_digest()


def test_the_source_digest_changes_with_the_code(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = machine.source_digest(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert machine.source_digest(tmp_path) != first
    (tmp_path / "__pycache__").mkdir()
    second = machine.source_digest(tmp_path)
    (tmp_path / "__pycache__" / "a.py").write_text("cached")
    assert machine.source_digest(tmp_path) == second, "compiled files are not the code"


def test_the_host_calibration_is_a_median_and_a_spread():
    cal = machine.host_calibration(reps=5, loop=1000)
    assert cal["median_us"] > 0 and cal["rel_iqr"] >= 0 and (cal["reps"], cal["loop"]) == (5, 1000)


def test_the_host_is_probed_just_before_and_just_after_a_points_rounds(padded_point, small_proto,
                                                                      monkeypatch):
    order = []
    real_rounds, real_probe = passes.wall_rounds, passes.host_probe
    monkeypatch.setattr(passes, "wall_rounds",
                        lambda *a: (order.append("rounds"), real_rounds(*a))[1])
    monkeypatch.setattr(passes, "host_probe", lambda: (order.append("probe"), real_probe())[1])
    r = passes.wall_pass(padded_point, small_proto)
    assert r.status == OK and order == ["probe", "rounds", "probe"]
    assert len(r.host_probe_us) == 2 and all(us > 0 for us in r.host_probe_us)
    assert r.doc()["host_probe_us"] == r.host_probe_us
