"""Several points' device calls in one profiler session pair: each point's figures its own, a
point's failure its own, and a failed shared session measured again point by point (CUDA
faked: this machine has no GPU)."""
from __future__ import annotations

import contextlib

import pytest

from mhabench.measure import compat, passes
from mhabench.measure.config import Point
from mhabench.measure.inputs import build, input_bytes
from mhabench.measure.paths import Path
from mhabench.measure.protocol import Protocol
from mhabench.measure.results import DONE, WALL, Result

from fake_cuda import NoRecorder, Session, install  # noqa: E402


def _walled(b: int, device: str = "cuda", batch: int = 2) -> Result:
    return Result(Point(batch, 8, 32, 4, b, dtype="fp16" if device == "cuda" else "fp32",
                        device=device), stage=WALL, rounds={"fast": [1.0], "slow": [2.0]})


@pytest.fixture
def fake(monkeypatch):
    fake = install(monkeypatch)
    sessions = []

    class Rec(NoRecorder):
        def __init__(self, device, ops=False):
            sessions.append(ops)

    monkeypatch.setattr(compat, "KernelRecorder", Rec)
    fake.sessions = sessions
    paths = {}

    def paths_of(point):
        # each point's own paths, so that a failure can be planted in one of them
        return paths.setdefault(point.beta_b, {"fast": fake.path(f"fast{point.beta_b}", 300, 100),
                                          "slow": fake.path(f"slow{point.beta_b}", 700, 100)})
    monkeypatch.setattr(passes, "build", lambda point: point)
    monkeypatch.setattr(passes, "active_paths", paths_of)
    monkeypatch.setattr(passes, "backend_paths", lambda f: {})
    monkeypatch.setattr(passes.bytecodes, "count_by_function", lambda path, calls=1: {"f": 7})
    fake.paths = paths
    return fake


def test_input_bytes_is_the_padded_batch_twice_and_the_projections():
    p = Point(4, 16, 32, 4, 1, dtype="fp16", device="cpu")
    assert input_bytes(p) == (2 * 4 * 16 * 32 + 4 * 32 * 32 + 4 * 32) * 2
    assert input_bytes(Point(4, 16, 32, 4, 1, dtype="fp32", device="cpu")) == 2 * input_bytes(p)
    inp = build(Point(4, 16, 32, 4, 61, dtype="fp32", device="cpu"))
    held = sum(t.numel() * t.element_size() for t in (inp.padded, *inp.nested.unbind(),
                                                      *inp.mha.parameters()))
    assert held <= input_bytes(inp.point), "an upper bound of what a built point holds"


def test_chunks_stop_at_a_count_at_a_size_and_on_a_cpu(monkeypatch):
    cuda = [_walled(b) for b in range(1, 40)]
    assert [len(c) for c in passes.session_chunks(cuda)] == [16, 16, 7]
    monkeypatch.setattr(passes, "SESSION_BYTES", 3 * input_bytes(cuda[0].point))
    assert [len(c) for c in passes.session_chunks(cuda[:7])] == [3, 3, 1]
    monkeypatch.setattr(passes, "SESSION_BYTES", 1)
    assert [len(c) for c in passes.session_chunks(cuda[:2])] == [1, 1], "a larger point alone"
    cpu = [_walled(b, "cpu") for b in range(1, 4)]
    assert [len(c) for c in passes.session_chunks(cpu)] == [1, 1, 1]
    assert [c[0] for c in passes.session_chunks(cpu)] == cpu


def test_a_chunk_shares_one_session_pair_and_each_point_keeps_its_own_figures(fake, monkeypatch):
    kernels = {f"{i}|{n}": ("gemm", us + i) for i in range(3) for n, us in (("fast", 7.0),
                                                                             ("slow", 20.0))}
    Session(monkeypatch, kernels)
    results = [_walled(b) for b in (1, 5, 9)]
    told = []
    got = list(passes.counts_passes(results, Protocol(device_calls=3), on_point=told.append))
    assert [r for r, _ in got] == results and all(r.stage == DONE for r in results)
    assert fake.sessions == [False, True], "one kernel session and one ops session in all"
    for i, r in enumerate(results):
        assert r.device_calls == {"fast": [7.0 + i] * 3, "slow": [20.0 + i] * 3}, r.message
        assert set(r.host_work) == {"fast", "slow"}
        assert r.host_work["fast"]["bytecodes"] == 7
        assert r.peak_mem == {"fast": 400.0, "slow": 800.0}
    assert set(told) == {r.point.label for r in results}
    assert all(c["device_pass"] > 0 and "counts_build" in c for _, c in got), \
        "the shared session's seconds are shared out"


def test_a_point_whose_calls_fail_gets_a_note_and_the_others_their_figures(fake, monkeypatch):
    Session(monkeypatch, {"fast": ("gemm", 7.0), "slow": ("gemm", 20.0)})
    results = [_walled(b) for b in (1, 5, 9)]
    passes.active_paths(results[1].point)

    def oom():
        raise RuntimeError("CUDA out of memory\nmore")
    fake.paths[5]["slow"] = Path("slow5", contextlib.nullcontext, oom)
    list(passes.counts_passes(results, Protocol(device_calls=2, host_work=False)))
    assert results[1].message.startswith("device time: RuntimeError: CUDA out of memory; ")
    assert results[1].device_calls == {} and results[1].stage == DONE
    for r in (results[0], results[2]):
        assert r.message == "" and r.device_calls == {"fast": [7.0] * 2, "slow": [20.0] * 2}
    assert fake.sessions == [False]


def test_a_failed_shared_session_measures_each_point_alone(fake, monkeypatch):
    session = Session(monkeypatch, {"fast": ("gemm", 7.0), "slow": ("gemm", 20.0)})
    real = session._profile

    def profile(events, prefix):
        if len({label.partition("|")[0] for label in session.opened}) > 1:
            session.opened = []
            raise RuntimeError("CUPTI_ERROR_UNKNOWN")  # only a session of several points
        return real(events, prefix)
    monkeypatch.setattr(compat, "raw_profile", profile)
    results = [_walled(b) for b in (1, 5)]
    list(passes.counts_passes(results, Protocol(device_calls=2, host_work=False)))
    assert fake.sessions == [False, False, False], "the shared one, then one per point"
    for r in results:
        assert r.message == "" and r.device_calls == {"fast": [7.0] * 2, "slow": [20.0] * 2}


def test_each_point_failing_alone_keeps_its_note(fake, monkeypatch):
    def broken(events, prefix):
        raise RuntimeError("CUPTI_ERROR_NOT_INITIALIZED")
    monkeypatch.setattr(compat, "raw_profile", broken)
    results = [_walled(b) for b in (1, 5)]
    list(passes.counts_passes(results, Protocol(device_calls=2, host_work=False)))
    for r in results:
        assert r.message == "device time: RuntimeError: CUPTI_ERROR_NOT_INITIALIZED"
        assert r.peak_mem == {"fast": 400.0, "slow": 800.0}, "memory left to the extra"
        assert r.rounds == {"fast": [1.0], "slow": [2.0]}


def test_done_and_unbuildable_points_keep_their_place(fake, monkeypatch):
    Session(monkeypatch, {"fast": ("gemm", 7.0), "slow": ("gemm", 20.0)})
    failed = Result(Point(2, 8, 32, 4, 3, dtype="fp16", device="cuda"), status="error")
    results = [_walled(1), failed, _walled(5), _walled(9)]

    def build_or_oom(point):
        if point.beta_b == 9:
            raise RuntimeError("CUDA out of memory")
        return point
    monkeypatch.setattr(passes, "build", build_or_oom)
    got = [r for r, _ in passes.counts_passes(results, Protocol(device_calls=2, host_work=False))]
    assert got == results
    assert failed.stage == DONE and failed.device_calls == {}
    assert results[3].message == "counts: RuntimeError: CUDA out of memory"
    assert results[0].device_calls and results[2].device_calls


def test_the_backend_guess_comes_from_the_chunks_before(fake, monkeypatch):
    """Within a chunk no point's backend is known before the session is read: every backend is
    called. The chunk after skips the one that served."""
    monkeypatch.setattr(passes, "backend_paths", lambda f: {
        n: Path(n, contextlib.nullcontext, f.call) for n in ("fast@flash", "fast@efficient")})
    Session(monkeypatch, {"fast": ("flash_fwd_kernel", 7.0), "fast@flash": ("flash_fwd_kernel", 7.0),
                          "fast@efficient": ("fmha_cutlassF_f16", 9.0), "slow": ("gemm", 20.0)})
    monkeypatch.setattr(passes, "SESSION_POINTS", 2)
    results = [_walled(b) for b in (1, 5, 9, 13)]
    list(passes.counts_passes(results, Protocol(device_calls=2, host_work=False)))
    calls = [fake.log.count(f"fast{b}") for b in (1, 5, 9, 13)]
    assert calls == [4, 4, 3, 3], "two default calls, then both backends; flash skipped after"
    for r in results:
        assert r.sdpa_backend == "flash"
        assert r.device_calls["fast@flash"] == [7.0] * (2 if r in results[2:] else 1)
        assert r.device_calls["fast@efficient"] == [9.0]


def test_counts_pass_is_counts_passes_for_one_point(fake, monkeypatch):
    Session(monkeypatch, {"fast": ("gemm", 7.0), "slow": ("gemm", 20.0)})
    cost = {}
    res = passes.counts_pass(_walled(1), Protocol(device_calls=2, host_work=False), cost)
    assert res.device_calls == {"fast": [7.0] * 2, "slow": [20.0] * 2}
    assert cost["device_pass"] > 0 and fake.sessions == [False]
