"""Version shims that can be exercised on the CPU."""
from __future__ import annotations

import time
import warnings

import pytest
import torch

from mhabench.measure import compat


def test_dtype_of():
    assert compat.dtype_of("float16") is torch.float16
    assert compat.dtype_of("bfloat16") is torch.bfloat16
    assert compat.dtype_of("float32") is torch.float32


def test_nested_tensor_is_nested_without_warnings():
    rows = [torch.ones(2, 4), torch.zeros(3, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nt = compat.nested_tensor(rows, device="cpu", dtype=torch.float32)
    assert nt.is_nested
    assert [t.shape[0] for t in nt.unbind()] == [2, 3]


def test_to_padded_pads_nested_and_passes_dense_through():
    nt = compat.nested_tensor([torch.ones(1, 2), torch.ones(3, 2)], device="cpu", dtype=torch.float32)
    p = compat.to_padded(nt, 0.0)
    assert p.shape == (2, 3, 2)
    assert p[0, 1:].abs().sum() == 0 and p[0, 0].sum() == 2
    dense = torch.randn(2, 3)
    assert compat.to_padded(dense) is dense


NO_SWITCH = f"torch {torch.__version__} has no torch.backends.mha (2.3+)"


@pytest.mark.parametrize("initial", [True, False])
def test_fastpath_disabled_restores_previous_setting(initial):
    mha = compat.fastpath_switch()
    if mha is None:
        pytest.skip(NO_SWITCH)
    before = mha.get_fastpath_enabled()
    try:
        mha.set_fastpath_enabled(initial)
        with compat.fastpath_disabled():
            assert mha.get_fastpath_enabled() is False
        assert mha.get_fastpath_enabled() is initial
        with pytest.raises(KeyError):
            with compat.fastpath_disabled():
                raise KeyError("boom")
        assert mha.get_fastpath_enabled() is initial
    finally:
        mha.set_fastpath_enabled(before)


def test_fastpath_switch_exists_exactly_from_torch_2_3():
    assert (compat.fastpath_switch() is not None) == (_version() >= (2, 3))


def _version():
    return tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


def _module(dropout=0.0):
    torch.manual_seed(0)
    return torch.nn.MultiheadAttention(16, 2, dropout=dropout, batch_first=True).eval()


@pytest.mark.parametrize("initial", [True, False])
def test_training_flag_fallback_restores_the_module(initial):
    m = _module()
    m.training = initial
    with compat.fastpath_disabled(m, switch=False):
        assert m.training is True
    assert m.training is initial
    with pytest.raises(KeyError):
        with compat.fastpath_disabled(m, switch=False):
            raise KeyError("boom")
    assert m.training is initial


def test_training_flag_fallback_refuses_dropout_and_no_module():
    with pytest.raises(NotImplementedError, match="dropout 0.1"):
        with compat.fastpath_disabled(_module(dropout=0.1), switch=False):
            pass
    with pytest.raises(NotImplementedError, match="no module"):
        with compat.fastpath_disabled(None, switch=False):
            pass
    assert compat.can_disable_fastpath(_module()) is True
    assert compat.can_disable_fastpath(_module(dropout=0.1)) is (compat.fastpath_switch() is not None)


def _padded_call(m):
    torch.manual_seed(1)
    x = torch.randn(3, 5, 16)
    kpm = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] + [True] * 4])
    return m(x, x, x, key_padding_mask=kpm, need_weights=False)[0]


def test_training_flag_fallback_gives_the_switched_off_call_exactly():
    """The fallback's output is bit for bit the slow path's (the switch's, where torch has one).
    That it is the slow path at all: tests/test_paths.py counts the calls."""
    m = _module()
    with torch.inference_mode(), compat.fastpath_disabled(m, switch=False):
        fallback = _padded_call(m)
    assert fallback.is_inference() and not m.training
    if compat.fastpath_switch() is not None:
        with torch.inference_mode(), compat.fastpath_disabled():
            switched = _padded_call(m)
        assert torch.equal(fallback, switched)
    with torch.no_grad():
        functional = _padded_call(m.train())  # grad off, training on: the functional path
    m.eval()
    assert torch.equal(fallback, functional)


def test_can_disable_fastpath_on_this_torch():
    assert compat.can_disable_fastpath(_module()) is True


# --- SDPA backend selection: both APIs set the same global flags, readable on a CPU ----------

_FLAGS = {"flash": "flash_sdp_enabled", "efficient": "mem_efficient_sdp_enabled",
          "cudnn": "cudnn_sdp_enabled", "math": "math_sdp_enabled"}


def _flags():
    return {b: getattr(torch.backends.cuda, f)() for b, f in _FLAGS.items()
            if hasattr(torch.backends.cuda, f)}


def _apis():
    """This torch's selection API, and the legacy one too where this torch still has it."""
    out = [pytest.param(None, id="default")]
    legacy = getattr(torch.backends.cuda, "sdp_kernel", None)
    out.append(pytest.param(False, id="sdp_kernel", marks=() if legacy else pytest.mark.skip(
        reason=f"torch {torch.__version__} has no torch.backends.cuda.sdp_kernel")))
    return out


@pytest.mark.parametrize("api", _apis())
def test_sdpa_only_allows_exactly_one_backend_and_restores(api):
    before = _flags()
    names = compat.sdpa_backend_names(api)
    assert {"flash", "efficient"} <= set(names) <= {"flash", "efficient", "cudnn"}
    for backend in names + ["math"]:
        with compat.sdpa_only(backend, api):
            assert {b for b, on in _flags().items() if on} == {backend}
        assert _flags() == before


@pytest.mark.parametrize("api", _apis())
def test_sdpa_without_math_allows_every_fused_backend(api):
    before = _flags()
    with compat.sdpa_without_math(api):
        on = {b for b, v in _flags().items() if v}
    assert on == set(compat.sdpa_backend_names(api))
    assert _flags() == before


def test_sdpa_names_agree_between_apis_where_both_exist():
    if compat._sdpa_api() is None or getattr(torch.backends.cuda, "sdp_kernel", None) is None:
        pytest.skip(f"torch {torch.__version__} has only one SDPA selection API")
    assert compat.sdpa_backend_names() == compat.sdpa_backend_names(False)


def test_sdpa_only_rejects_unknown_and_missing_backends():
    with pytest.raises(ValueError, match="nope"):
        compat.sdpa_only("nope")
    if "cudnn" not in compat.sdpa_backend_names():
        with pytest.raises(NotImplementedError, match="cudnn"):
            compat.sdpa_only("cudnn")


# --- profiler records: each generation's accessors -------------------------------------------

class _NsNoEnd:
    """torch 2.4: start_ns and duration_ns, no end_ns."""

    def __init__(self, start, dur):
        self._s, self._d = start, dur

    def start_ns(self):
        return self._s

    def duration_ns(self):
        return self._d


class _Ns(_NsNoEnd):
    """torch >= 2.5: start_ns, end_ns, duration_ns."""

    def end_ns(self):
        return self._s + self._d + 1  # distinct from start + duration: end_ns must be read


class _Us:
    """torch < 2.4: whole microseconds only."""

    def __init__(self, start, dur):
        self._s, self._d = start, dur

    def start_us(self):
        return self._s // 1000

    def duration_us(self):
        return self._d // 1000


@pytest.mark.parametrize("cls, expected", [(_Ns, (5000, 8501, 3500)),
                                           (_NsNoEnd, (5000, 8500, 3500)),
                                           (_Us, (5000, 8000, 3000))])
def test_event_ns_reads_every_generation(cls, expected):
    assert compat.event_ns(cls(5000, 3500)) == expected


def _fake(cls, dev, name, corr, start, dur=0):
    e = cls(start, dur)
    e.device_type, e.name, e.correlation_id = (lambda: dev), (lambda: name), (lambda: corr)
    return e


@pytest.mark.parametrize("cls", [_NsNoEnd, _Us])
def test_raw_profile_on_older_records(cls):
    """What raw_profile makes of the records of torch 2.4 and of torch < 2.4."""
    from torch.autograd import DeviceType
    label = "mhabench::"
    cpu, gpu = DeviceType.CPU, DeviceType.CUDA
    events = [_fake(cls, cpu, label + "fast", 7, 100_000, 50_000),
              _fake(cls, cpu, "cudaLaunchKernel", 7, 110_000),
              _fake(cls, gpu, "gemm", 7, 1_000_000, 3_000),
              _fake(cls, gpu, label + "fast", 7, 1_000_000, 9_000)]
    ranges, launches, kernels, _, _ = compat.raw_profile(events, label)
    assert ranges == [(100_000, 150_000, "fast")]
    assert launches == {7: 110_000}
    assert kernels == [(7, 1_000_000, 3_000, "gemm")]


def test_raw_profile_reads_a_real_session_on_this_torch():
    """A CPU session of this torch: labelled ranges come back with their real times."""
    from torch.autograd.profiler import record_function
    label = "mhabench::"
    t0 = time.perf_counter_ns()
    with compat.KernelRecorder("cpu") as rec:
        for name in ("a", "b"):
            with record_function(label + name):
                end = time.perf_counter_ns() + 3_000_000
                while time.perf_counter_ns() < end:
                    pass
    wall = time.perf_counter_ns() - t0
    ranges, launches, kernels, _, _ = compat.raw_profile(rec.events(), label)
    assert [r[2] for r in sorted(ranges)] == ["a", "b"]
    for start, stop, _ in ranges:
        assert 2_900_000 <= stop - start <= wall
    (a0, a1, _), (b0, b1, _) = sorted(ranges)
    assert a1 <= b0
    assert kernels == []


def test_the_cuda_version_is_the_wheels_and_names_its_variant():
    from mhabench.measure import machine
    v = compat.cuda_version()
    assert v == getattr(torch.version, "cuda", None)
    assert machine.variant() == ("cpu" if v is None else "cu" + v.replace(".", ""))
