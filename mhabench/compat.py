"""Every difference between torch versions lives here.

Nothing in this module touches CUDA at import time: asv forks workers from a process that
imports it, and a CUDA context made before a fork breaks them.
"""
from __future__ import annotations

import contextlib
import warnings

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


def sdpa_math():
    """Only SDPA's math backend (the unfused reference computation), on any torch >= 2.1."""
    try:
        from torch.nn.attention import sdpa_kernel  # noqa: F401
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_math=True, enable_flash=False,
                                              enable_mem_efficient=False)
    return sdpa_only("math")


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

def profiler(device: str):
    """A profiler recording host ops (for the labels) and, on CUDA, device activity."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        acts.append(ProfilerActivity.CUDA)
    return profile(activities=acts)


def raw_profile(prof, label_prefix: str):
    """Split a finished profile into (labelled ranges, host-op start times, device activities).

    Reads kineto's raw records rather than building the FunctionEvent tree, which costs
    seconds on a long session. Ranges: ``(start_ns, end_ns, label)``; ops: ``{op id: start_ns}``;
    device activities: ``(op id that launched it, start_ns, duration_ns)``.
    """
    from torch.autograd import DeviceType
    device_types = {getattr(DeviceType, n) for n in ("CUDA", "PrivateUse1") if hasattr(DeviceType, n)}
    ranges, ops, kernels = [], {}, []
    for e in prof.profiler.kineto_results.events():
        dt = e.device_type()
        if dt == DeviceType.CPU:
            name = e.name()
            if name.startswith(label_prefix):
                ranges.append((e.start_ns(), e.end_ns(), name[len(label_prefix):]))
            elif e.linked_correlation_id() == 0:
                ops[e.correlation_id()] = e.start_ns()
        elif dt in device_types:
            kernels.append((e.linked_correlation_id(), e.start_ns(), e.duration_ns()))
    return ranges, ops, kernels
