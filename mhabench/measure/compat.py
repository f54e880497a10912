"""Every difference between torch versions lives here.

Nothing in this module touches CUDA at import time: asv forks workers from a process that
imports it, and a CUDA context made before a fork breaks them.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from typing import NamedTuple

import torch

TORCH_VERSION = str(torch.__version__)
TORCH_GIT = getattr(torch.version, "git_version", "unknown")


def cuda_version() -> str | None:
    """The CUDA version this torch wheel was built against (None for a CPU-only wheel)."""
    return getattr(torch.version, "cuda", None)


def dtype_of(name: str) -> torch.dtype:
    return getattr(torch, name)


def cuda_available() -> bool:
    """Initialises CUDA: call it only where measuring is about to happen, never at import."""
    return torch.cuda.is_available()


#: The allocator statistic a peak is read from: the bytes the calls asked for (torch >= 2.1).
#: Allocated bytes count whole cached blocks, and a cached block larger than a request by up
#: to a MiB is handed out unsplit: the same call then reads more or less as what earlier points
#: left in the cache differs (H200: 74 of 320 points moved by -7..+12% when several points'
#: inputs stayed alive together). Below 2.1, allocated bytes stand in.
MEMORY_STAT = "requested_bytes"


def memory_bytes(device) -> tuple[int, int]:
    """The caching allocator's ``(current, peak)`` bytes on ``device`` (:data:`MEMORY_STAT`),
    read off its nested statistics: ``memory_allocated`` and ``max_memory_allocated`` each
    flatten every statistic into a sorted dict first (1,204 reads: 0.4 s of 80 points under
    cProfile, H200)."""
    nested = getattr(torch.cuda, "memory_stats_as_nested_dict", None)
    stats = nested(device) if nested else {}
    for key in (MEMORY_STAT, "allocated_bytes"):
        kept = stats.get(key, {}).get("all")
        if kept and "current" in kept:
            return int(kept["current"]), int(kept["peak"])
    # no statistics yet: nothing allocated
    return torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device)


def nested_tensor(tensors, device, dtype):
    """A strided nested tensor (the layout the MHA fast path takes), without the prototype warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nested tensors is in prototype.*")
        return torch.nested.nested_tensor(tensors, device=device, dtype=dtype)


def to_padded(t, value=0.0):
    return torch.nested.to_padded_tensor(t, value) if t.is_nested else t


#: SDPA backend names: ours -> torch.nn.attention.SDPBackend's, and -> the keyword that
#: switches it in torch.backends.cuda.sdp_kernel (the only API below torch 2.3).
_SDPA_ENUM = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
              "cudnn": "CUDNN_ATTENTION", "math": "MATH"}
_SDP_KERNEL_ARG = {"flash": "enable_flash", "efficient": "enable_mem_efficient",
                   "cudnn": "enable_cudnn", "math": "enable_math"}
FUSED = ("flash", "efficient", "cudnn")


def _sdpa_api():
    """``(SDPBackend, sdpa_kernel)`` from ``torch.nn.attention``; None on torch < 2.3."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return None
    return SDPBackend, sdpa_kernel


def _legacy_backends() -> list[str]:
    """The backends ``torch.backends.cuda.sdp_kernel`` can switch (its keywords)."""
    legacy = getattr(torch.backends.cuda, "sdp_kernel", None)
    if legacy is None:
        return []
    params = inspect.signature(legacy).parameters
    return [b for b, arg in _SDP_KERNEL_ARG.items() if arg in params]


@contextlib.contextmanager
def _legacy_allow(backends):
    """Allow exactly ``backends`` through ``torch.backends.cuda.sdp_kernel`` (deprecated where
    ``torch.nn.attention`` exists: used only where it does not)."""
    kwargs = {_SDP_KERNEL_ARG[b]: b in backends for b in _legacy_backends()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ctx = torch.backends.cuda.sdp_kernel(**kwargs)
        ctx.__enter__()
    try:
        yield
    finally:
        ctx.__exit__(None, None, None)


def _allow(backends, api=None):
    """A context allowing exactly ``backends`` (our names), by whichever API this torch has."""
    api = _sdpa_api() if api is None else api
    if not api:
        return _legacy_allow(set(backends))
    SDPBackend, sdpa_kernel = api
    return sdpa_kernel([getattr(SDPBackend, _SDPA_ENUM[b]) for b in backends])


def _has_backend(backend: str, api=None) -> bool:
    api = _sdpa_api() if api is None else api
    return hasattr(api[0], _SDPA_ENUM[backend]) if api else backend in _legacy_backends()


def sdpa_backend_names(api=None) -> list[str]:
    """The fused SDPA backends (``flash``, ``efficient``, ``cudnn``) this torch can select.

    ``api`` (tests): ``False`` forces the ``torch.backends.cuda.sdp_kernel`` reading."""
    return [b for b in FUSED if _has_backend(b, api)]


def sdpa_without_math(api=None):
    """SDPA backends as the reference sets them: math off, every fused kernel left allowed.

    Uses ``torch.nn.attention.sdpa_kernel`` where it exists; the deprecated
    ``torch.backends.cuda.sdp_kernel`` only on versions that lack it.
    """
    return _allow(sdpa_backend_names(api), api)


def sdpa_only(backend: str, api=None):
    """Allow a single SDPA backend (``flash``, ``efficient``, ``cudnn``, ``math``)."""
    if backend not in _SDPA_ENUM:
        raise ValueError(f"unknown SDPA backend {backend!r}")
    if not _has_backend(backend, api):
        raise NotImplementedError(f"this torch has no SDPA backend {backend}")
    return _allow([backend], api)


# --- the MultiheadAttention fast path --------------------------------------------------------

def fastpath_switch():
    """``torch.backends.mha``, the global fast-path switch (torch >= 2.3); None where absent."""
    mha = getattr(torch.backends, "mha", None)
    return mha if mha is not None and hasattr(mha, "set_fastpath_enabled") else None


@contextlib.contextmanager
def fastpath_disabled(module=None, switch=True):
    """Keep the MultiheadAttention fast path off (restored on exit).

    With torch's global switch (``torch.backends.mha``, 2.3+) where it exists. Below 2.3,
    ``module``'s own ``training`` flag, set for the duration: ``MultiheadAttention.forward``
    checks it among the fast path's conditions and, refused, makes the very call it makes with
    the switch off (``F.multi_head_attention_forward`` with the module's weights and the same
    arguments). ``training`` reaches that call only as dropout, so the module's dropout must be
    0 (it is for every module mhabench builds); the output stays an inference tensor under
    ``inference_mode``. ``switch=False`` (tests) takes that way on any torch.
    """
    mha = fastpath_switch() if switch else None
    if mha is not None:
        before = mha.get_fastpath_enabled()
        mha.set_fastpath_enabled(False)
        try:
            yield
        finally:
            mha.set_fastpath_enabled(before)
        return
    reason = _no_training_fallback(module)
    if reason:
        raise NotImplementedError(f"this torch cannot switch the MHA fast path off: {reason}")
    before = module.training
    module.training = True
    try:
        yield
    finally:
        module.training = before


def _no_training_fallback(module) -> str:
    """Why ``module``'s training flag cannot stand in for the switch; ``""`` when it can."""
    if not isinstance(module, torch.nn.MultiheadAttention):
        return "torch < 2.3 has no torch.backends.mha, and no module was given"
    if module.dropout:
        return f"the module's dropout {module.dropout} would apply in training mode"
    return ""


def can_disable_fastpath(module=None) -> bool:
    """Whether :func:`fastpath_disabled` works here (for ``module``, below torch 2.3)."""
    return fastpath_switch() is not None or not _no_training_fallback(module)


# --- profiler -----------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_stderr():
    """Some builds' kineto prints a line to the process's stderr at every profiler start and
    stop (``USDT: ... profiler_start``): one session per point would flood a sweep's output."""
    import os
    import sys
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class KernelRecorder:
    """A profiler session recording device activity, the labelled (user-scope) host ranges and,
    with ``ops``, every dispatched aten op.

    Without ``ops`` only ``record_function`` ranges are recorded on the host: op records are
    most of what stopping the profiler and reading it costs. Device activity is tied to a label
    through the runtime call that launched it (same correlation id), which is recorded either
    way. On a CPU only host records exist (``ops`` is what such a session is for).
    Where torch lacks the private entry points this needs, the public profiler (every op
    recorded) stands in; the reading is the same.
    """

    def __init__(self, device: str, ops: bool = False):
        self.cuda = device.startswith("cuda")
        self.ops = ops
        self._result = None
        self._public = None

    def _acts(self):
        from torch.profiler import ProfilerActivity
        return {ProfilerActivity.CPU, ProfilerActivity.CUDA} if self.cuda else {ProfilerActivity.CPU}

    def __enter__(self):
        with _quiet_stderr():
            try:
                from torch._C._autograd import _enable_profiler, _prepare_profiler
                from torch._C._profiler import (ProfilerConfig, ProfilerState, RecordScope,
                                                _ExperimentalConfig)
                config = ProfilerConfig(ProfilerState.KINETO, False, False, False, False, False,
                                        _ExperimentalConfig())
                scopes = {RecordScope.USER_SCOPE}
                if self.ops:
                    scopes.add(RecordScope.FUNCTION)
                _prepare_profiler(config, self._acts())
                _enable_profiler(config, self._acts(), scopes)
            except (ImportError, TypeError, AttributeError):
                from torch.profiler import profile
                self._public = profile(activities=list(self._acts()))
                self._public.__enter__()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
        with _quiet_stderr():
            if self._public is not None:
                self._public.__exit__(*exc)
                self._result = self._public.profiler.kineto_results
            else:
                from torch._C._autograd import _disable_profiler
                self._result = _disable_profiler()
        return False

    def events(self):
        return self._result.events() if self._result is not None else []


@functools.lru_cache(maxsize=None)
def _times_reader(cls):
    """How to read (start_ns, end_ns, duration_ns) off one kind of kineto record.

    torch >= 2.5 has ``start_ns``/``end_ns``/``duration_ns``; 2.4 lacks ``end_ns``; below 2.4
    there are only ``start_us``/``duration_us``, whole microseconds (a kernel's duration comes
    out truncated to the microsecond there).
    """
    if hasattr(cls, "end_ns"):
        return lambda e: (e.start_ns(), e.end_ns(), e.duration_ns())
    if hasattr(cls, "start_ns"):
        def ns(e):
            start, dur = e.start_ns(), e.duration_ns()
            return start, start + dur, dur
        return ns

    def us(e):
        start, dur = e.start_us() * 1000, e.duration_us() * 1000
        return start, start + dur, dur
    return us


def profiler_resolution_ns() -> int:
    """How finely kineto's records give times on this torch: 1 ns, or 1000 below 2.4."""
    try:
        from torch._C._autograd import _KinetoEvent
    except ImportError:
        return 1
    return 1 if hasattr(_KinetoEvent, "start_ns") else 1000


def event_ns(e) -> tuple[int, int, int]:
    """``(start_ns, end_ns, duration_ns)`` of a kineto record, on every torch."""
    return _times_reader(type(e))(e)


@functools.lru_cache(maxsize=None)
def _start_reader(cls):
    """How to read start_ns alone (one call per record: a session with ops holds hundreds of
    host records per call, and only their start is read)."""
    if hasattr(cls, "start_ns"):
        return cls.start_ns
    return lambda e: e.start_us() * 1000


#: Host-side records of the runtime / driver calls that launch device work.
LAUNCH_PREFIXES = ("cuda", "cu", "hip")


class Profile(NamedTuple):
    """A finished session's records, split for attribution (see :func:`raw_profile`)."""

    ranges: list      # (start_ns, end_ns, label) of the labelled calls
    launches: dict    # correlation id -> host start_ns of the runtime call that launched work
    kernels: list     # (correlation id, device start_ns, duration_ns, name) device activities
    host: list        # (start_ns, name) of every other host record: aten ops, runtime calls
    copy_bytes: dict  # (correlation id, device start_ns) -> bytes, for device memory copies


def _copy_bytes(e) -> int:
    """Bytes a device memcpy record moved: its ``nbytes`` where torch reports it, else the
    ``bytes`` kineto puts in its metadata; -1 where neither says."""
    try:
        n = int(e.nbytes())
        if n > 0:
            return n
    except (AttributeError, RuntimeError, TypeError, ValueError):
        pass
    try:
        import re
        m = re.search(r'"bytes"\s*:\s*(\d+)', e.metadata_json())
        return int(m.group(1)) if m else -1
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return -1


def raw_profile(events, label_prefix: str) -> Profile:
    """Split a finished session's records into a :class:`Profile`.

    Reads kineto's raw records rather than building the FunctionEvent tree, which costs
    seconds on a long session. Launches are the runtime calls (``cudaLaunchKernel``,
    ``cudaMemcpyAsync``...); a device activity's id is that of the runtime call that launched
    it.
    """
    from torch.autograd import DeviceType
    device_types = {getattr(DeviceType, n) for n in ("CUDA", "PrivateUse1") if hasattr(DeviceType, n)}
    ranges, launches, kernels, host, copies = [], {}, [], [], {}
    cpu = DeviceType.CPU
    for e in events:
        dt = e.device_type()
        if dt == cpu:
            name = e.name()
            if name.startswith(label_prefix):
                start, end, _ = event_ns(e)
                ranges.append((start, end, name[len(label_prefix):]))
                continue
            start = _start_reader(type(e))(e)
            if name.startswith(LAUNCH_PREFIXES):
                launches[e.correlation_id()] = start
            host.append((start, name))
        elif dt in device_types and not e.name().startswith(label_prefix):
            # (a label's own device-side record spans the whole call, and its id is not a
            # launch's: counting it would add the call's duration to whatever shares the id)
            name = e.name()
            start, _, dur = event_ns(e)
            kernels.append((e.correlation_id(), start, dur, name))
            if name.startswith("Memcpy"):
                copies[(e.correlation_id(), start)] = _copy_bytes(e)
    return Profile(ranges, launches, kernels, host, copies)


#: Substrings of kernel names that tell which SDPA backend ran (names vary across torch
#: versions and GPUs; checked on torch 2.11, H100). First match wins.
SDPA_KERNEL_MARKS = (("cudnn", ("cudnn",)),
                     ("flash", ("flash_fwd", "flash::", "flash_attn")),
                     ("efficient", ("fmha", "efficient_attention", "mem_efficient")))


def sdpa_backend_of(kernel_names) -> str:
    """The SDPA backend whose kernels appear in ``kernel_names``; ``""`` when none does."""
    for backend, marks in SDPA_KERNEL_MARKS:
        if any(m in n.lower() for n in kernel_names for m in marks):
            return backend
    return ""
