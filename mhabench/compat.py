"""Every difference between torch versions lives here.

Nothing in this module touches CUDA at import time: asv forks workers from a process that
imports it, and a CUDA context made before a fork breaks them.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import torch

TORCH_VERSION = str(torch.__version__)
TORCH_GIT = getattr(torch.version, "git_version", "unknown")


def dtype_of(name: str) -> torch.dtype:
    return getattr(torch, name)


def cuda_available() -> bool:
    """Initialises CUDA: call it only where measuring is about to happen, never at import."""
    return torch.cuda.is_available()


def nested_tensor(tensors, device, dtype):
    """A strided nested tensor (the layout the MHA fast path takes), without the prototype warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nested tensors is in prototype.*")
        return torch.nested.nested_tensor(tensors, device=device, dtype=dtype)


def to_padded(t, value=0.0):
    return torch.nested.to_padded_tensor(t, value) if t.is_nested else t


def _sdpa_backends_without_math():
    from torch.nn.attention import SDPBackend
    names = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")
    return [getattr(SDPBackend, n) for n in names if hasattr(SDPBackend, n)]


def sdpa_without_math():
    """SDPA backends as the reference sets them: math off, every fused kernel left allowed.

    Uses ``torch.nn.attention.sdpa_kernel`` where it exists; the deprecated
    ``torch.backends.cuda.sdp_kernel`` only on versions that lack it.
    """
    try:
        from torch.nn.attention import sdpa_kernel
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_math=False, enable_flash=True)
    return sdpa_kernel(_sdpa_backends_without_math())


def sdpa_only(backend: str):
    """Allow a single SDPA backend (``flash``, ``efficient``, ``cudnn``, ``math``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    name = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
            "cudnn": "CUDNN_ATTENTION", "math": "MATH"}[backend]
    if not hasattr(SDPBackend, name):
        raise NotImplementedError(f"this torch has no SDPA backend {backend}")
    return sdpa_kernel([getattr(SDPBackend, name)])


def sdpa_backend_names() -> list[str]:
    from torch.nn.attention import SDPBackend
    known = {"FLASH_ATTENTION": "flash", "EFFICIENT_ATTENTION": "efficient",
             "CUDNN_ATTENTION": "cudnn"}
    return [short for name, short in known.items() if hasattr(SDPBackend, name)]


@contextlib.contextmanager
def fastpath_disabled():
    """Switch the MultiheadAttention fast path off (restored on exit)."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        raise NotImplementedError("this torch cannot switch the MHA fast path off")
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def can_disable_fastpath() -> bool:
    mha = getattr(torch.backends, "mha", None)
    return mha is not None and hasattr(mha, "set_fastpath_enabled")


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
        import json
        meta = json.loads("{" + e.metadata_json() + "}")
        return int(meta.get("bytes", -1))
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
    for e in events:
        dt = e.device_type()
        if dt == DeviceType.CPU:
            name = e.name()
            if name.startswith(label_prefix):
                ranges.append((e.start_ns(), e.end_ns(), name[len(label_prefix):]))
                continue
            if name.startswith(LAUNCH_PREFIXES):
                launches[e.correlation_id()] = e.start_ns()
            host.append((e.start_ns(), name))
        elif dt in device_types and not e.name().startswith(label_prefix):
            # (a label's own device-side record spans the whole call, and its id is not a
            # launch's: counting it would add the call's duration to whatever shares the id)
            name = e.name()
            kernels.append((e.correlation_id(), e.start_ns(), e.duration_ns(), name))
            if name.startswith("Memcpy"):
                copies[(e.correlation_id(), e.start_ns())] = _copy_bytes(e)
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
