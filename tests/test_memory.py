"""Peak memory per path: n/a on the CPU; on CUDA, the allocator's peak above the baseline
(checked here against a fake allocator, as this machine has no GPU)."""
from __future__ import annotations

import contextlib

import pytest
import torch

from mhabench.measure import compat, memory, passes
from mhabench.measure.config import Point
from mhabench.measure.inputs import build
from mhabench.measure.paths import Path, make_paths
from mhabench.measure.results import Result
from mhabench.measure.protocol import Protocol

from fake_cuda import ALLOCATOR, FakeAllocator, NoRecorder, Session, install  # noqa: E402


def test_cpu_has_no_figure(tiny_point):
    assert memory.peak_memory(make_paths(build(tiny_point)), "cpu") == {}


def test_cuda_peak_is_above_the_baseline_and_resets_per_path(monkeypatch):
    fake = FakeAllocator()
    for fn in ALLOCATOR:
        monkeypatch.setattr(torch.cuda, fn, getattr(fake, fn))
    paths = {"fast": fake.path("fast", 300, 100), "slow": fake.path("slow", 700, 100)}
    got = memory.peak_memory(paths, "cuda:0")
    # the stale peak of 5000 is reset away; each output is freed before the next baseline
    assert got == {"fast": 400.0, "slow": 800.0}
    assert fake.log == ["stats", "reset", "fast", "stats", "stats", "reset", "slow", "stats"], \
        "both readings off the nested statistics, no flattening call"
    assert fake.allocated == 1000


def test_the_bytes_asked_for_are_read_not_the_blocks_handed_out(monkeypatch):
    """A cached block up to a MiB larger than a request is handed out whole: the allocated
    bytes then depend on what the cache held, the requested ones do not."""
    stats = {"allocated_bytes": {"all": {"current": 2 << 20, "peak": 6 << 20}},
             "requested_bytes": {"all": {"current": 1_500_000, "peak": 5_000_000}}}
    monkeypatch.setattr(torch.cuda, "memory_stats_as_nested_dict", lambda dev: stats)
    assert compat.memory_bytes("cuda:0") == (1_500_000, 5_000_000)
    del stats["requested_bytes"]  # torch < 2.1 keeps no requested bytes
    assert compat.memory_bytes("cuda:0") == (2 << 20, 6 << 20)


def test_torch_without_requested_bytes_reads_the_allocated_ones(monkeypatch):
    fake = FakeAllocator()
    fake.stats = ("allocated_bytes",)
    for fn in ALLOCATOR:
        monkeypatch.setattr(torch.cuda, fn, getattr(fake, fn))
    assert memory.peak_memory({"fast": fake.path("fast", 300, 100)}, "cuda:0") == {"fast": 400.0}
    assert "allocated" not in fake.log and "peak" not in fake.log


def test_an_allocator_without_statistics_yet_is_read_by_the_flat_calls(monkeypatch):
    """Before CUDA's first allocation torch gives an empty statistics dict."""
    fake = FakeAllocator()
    for fn in ALLOCATOR:
        monkeypatch.setattr(torch.cuda, fn, getattr(fake, fn))
    monkeypatch.setattr(torch.cuda, "memory_stats_as_nested_dict", lambda dev: {})
    got = memory.peak_memory({"fast": fake.path("fast", 300, 100)}, "cuda:0")
    assert got == {"fast": 400.0}
    assert fake.log == ["allocated", "peak", "reset", "fast", "allocated", "peak"]


# --- the device pass carries the reading ----------------------------------------------------------

@pytest.fixture
def fake_cuda(monkeypatch):
    return install(monkeypatch)


def _cuda_result():
    return Result(Point(2, 8, 32, 4, 1, dtype="fp16", device="cuda"))


def test_device_pass_reads_each_paths_peak_around_its_calls(fake_cuda):
    paths = {"fast": fake_cuda.path("fast", 300, 100), "slow": fake_cuda.path("slow", 700, 100)}
    res = _cuda_result()
    passes.add_device_times(res, paths, Protocol(device_calls=3, host_work=False))
    assert res.peak_mem == {"fast": 400.0, "slow": 800.0}, "per call, not summed over the calls"
    assert fake_cuda.log[:10] == ["stats", "reset", "fast", "fast", "fast", "stats",
                                  "stats", "reset", "slow", "slow"]
    assert fake_cuda.allocated == 1000


def test_device_pass_without_extras_leaves_memory_and_backends_out(fake_cuda):
    paths = {"fast": fake_cuda.path("fast", 300, 100), "slow": fake_cuda.path("slow", 700, 100)}
    res = _cuda_result()
    passes.add_device_times(res, paths, Protocol(device_calls=2, host_work=False), extras=False)
    assert res.peak_mem == {}
    assert [e for e in fake_cuda.log if e in ("fast", "slow")] == ["fast"] * 2 + ["slow"] * 2, \
        "no call of the fast path per SDPA backend"


def test_a_backend_that_refuses_is_skipped_and_its_launches_not_counted(fake_cuda, monkeypatch):
    """The split makes one call per backend with no warm-up; a refusal (raised after the
    in-projection was launched) drops that backend's figure, and the point goes on."""
    fast = fake_cuda.path("fast", 300, 100)

    def refuse():
        raise RuntimeError("No available kernel. Aborting execution.")
    monkeypatch.setattr(passes, "backend_paths", lambda f: {
        "fast@cudnn": Path("fast@cudnn", contextlib.nullcontext, refuse),
        "fast@flash": Path("fast@flash", contextlib.nullcontext, f.call)})
    ranges = [(0, 10, "0|fast"), (20, 30, "0|fast@cudnn"), (40, 50, "0|fast@flash")]
    launches = {1: 5, 2: 25, 3: 45}
    kernels = [(1, 100, 7000, "flash_fwd"), (2, 200, 3000, "gemm"), (3, 300, 7000, "flash_fwd")]
    monkeypatch.setattr(compat, "raw_profile", lambda events, prefix: compat.Profile(ranges, launches, kernels, [], {}))
    res = _cuda_result()
    passes.add_device_times(res, {"fast": fast}, Protocol(device_calls=1, host_work=False))
    assert res.device_calls == {"fast": [7.0], "fast@flash": [7.0]}
    assert res.peak_mem == {"fast": 400.0}


SPLIT_KERNELS = {"fast": ("flash_fwd_kernel", 7.0), "fast@flash": ("flash_fwd_kernel", 7.0),
                 "fast@efficient": ("fmha_cutlassF_f16", 9.0), "slow": ("gemm", 20.0)}


def _split_paths(fake):
    return {"fast": fake.path("fast", 300, 100), "slow": fake.path("slow", 700, 100)}


def _backends_only(monkeypatch):
    """flash and efficient, whatever this torch's list: the test pins what the split sees."""
    real = passes.backend_paths
    monkeypatch.setattr(passes, "backend_paths", lambda f: {
        k: v for k, v in real(f).items() if k in ("fast@flash", "fast@efficient")})


def test_split_skips_the_backend_that_served_the_default_call(fake_cuda, monkeypatch):
    _backends_only(monkeypatch)
    session = Session(monkeypatch, SPLIT_KERNELS)
    first, second = _cuda_result(), _cuda_result()
    passes.add_device_times(first, _split_paths(fake_cuda), Protocol(device_calls=2, host_work=False))
    assert first.sdpa_backend == "flash"
    assert first.device_calls["fast@flash"] == [7.0] and first.device_calls["fast@efficient"] == [9.0]
    fake_cuda.log.clear()
    passes.add_device_times(second, _split_paths(fake_cuda), Protocol(device_calls=2, host_work=False))
    assert [e for e in fake_cuda.log if e == "fast"] == ["fast"] * 3, \
        "two default calls and efficient's; flash's own call skipped"
    assert second.device_calls["fast@flash"] == second.device_calls["fast"] == [7.0, 7.0]
    assert second.device_calls["fast@efficient"] == [9.0]
    assert session.sessions == 2


def test_split_measures_the_skipped_backend_when_the_guess_was_wrong(fake_cuda, monkeypatch):
    _backends_only(monkeypatch)
    session = Session(monkeypatch, {**SPLIT_KERNELS, "fast": ("fmha_cutlassF_f16", 9.0)})
    monkeypatch.setitem(passes._SERVED, ("cuda", "float16", 8), "flash")
    res = _cuda_result()
    passes.add_device_times(res, _split_paths(fake_cuda), Protocol(device_calls=2, host_work=False))
    assert res.sdpa_backend == "efficient"
    assert res.device_calls["fast@flash"] == [7.0], "measured in a session of its own"
    assert session.sessions == 2
    assert passes._SERVED[("cuda", "float16", 8)] == "efficient"


def test_host_work_rides_on_one_call_per_path_in_a_session_of_its_own(fake_cuda, monkeypatch):
    """device_calls=3 with host-work counts: 2 calls per path in the first session, 1 in a
    second one that records the ops; the device figures keep all 3 calls."""
    from mhabench.measure import timing
    sessions = []

    class Rec(NoRecorder):
        def __init__(self, device, ops=False):
            sessions.append(ops)

    monkeypatch.setattr(compat, "KernelRecorder", Rec)
    paths = {"fast": fake_cuda.path("fast", 300, 100), "slow": fake_cuda.path("slow", 700, 100)}
    res = _cuda_result()
    passes.add_device_times(res, paths, Protocol(device_calls=3), extras=False)
    assert sessions == [False, True]
    assert [e for e in fake_cuda.log if e in ("fast", "slow")] == \
        ["fast", "fast", "slow", "slow", "fast", "slow"]
    assert timing.DeviceTimes("cuda", ops=True).ops


# --- the counts pass on CUDA ------------------------------------------------------------------------

def _walled_cuda():
    from mhabench.measure.results import WALL
    return Result(Point(2, 8, 32, 4, 1, dtype="fp16", device="cuda"), stage=WALL,
                  rounds={"fast": [1.0], "slow": [2.0]})


def _fake_counts_pass(fake, monkeypatch):
    paths = {"fast": fake.path("fast", 300, 100), "slow": fake.path("slow", 700, 100)}
    monkeypatch.setattr(passes, "build", lambda point: None)
    monkeypatch.setattr(passes, "active_paths", lambda inp: paths)
    monkeypatch.setattr(passes, "backend_paths", lambda f: {})
    monkeypatch.setattr(passes.bytecodes, "count_by_function", lambda path, calls=2: {"f": 7})


def test_the_counts_pass_reads_memory_in_the_device_pass_only(fake_cuda, monkeypatch):
    _fake_counts_pass(fake_cuda, monkeypatch)
    cost = {}
    res = passes.counts_pass(_walled_cuda(), Protocol(device_calls=2, host_work=False), cost)
    assert res.stage == "done" and res.message == ""
    assert res.peak_mem == {"fast": 400.0, "slow": 800.0}
    assert fake_cuda.log.count("reset") == 2, "no second reading by the memory extra"
    assert "extra_memory" not in cost and "device_pass" in cost


def test_a_failed_device_pass_leaves_memory_to_the_extra_and_a_note(fake_cuda, monkeypatch):
    _fake_counts_pass(fake_cuda, monkeypatch)

    def broken(*a, **k):
        raise RuntimeError("CUPTI_ERROR_NOT_INITIALIZED")
    monkeypatch.setattr(passes, "add_device_times_many", broken)
    cost = {}
    res = passes.counts_pass(_walled_cuda(), Protocol(device_calls=2), cost)
    assert res.message == "device time: RuntimeError: CUPTI_ERROR_NOT_INITIALIZED"
    assert res.device_calls == {} and res.rounds == {"fast": [1.0], "slow": [2.0]}
    assert res.peak_mem == {"fast": 400.0, "slow": 800.0} and cost["extra_memory"] >= 0
    assert {p: c["bytecodes"] for p, c in res.host_work.items()} == {"fast": 7, "slow": 7}


def test_without_extras_the_counts_pass_reads_no_memory(fake_cuda, monkeypatch):
    _fake_counts_pass(fake_cuda, monkeypatch)
    res = passes.counts_pass(_walled_cuda(), Protocol(device_calls=2, host_work=False),
                             extras=False)
    assert res.peak_mem == {} and res.stage == "done"
    assert fake_cuda.log.count("reset") == 2, "only the device pass's own reading, not kept"
