"""Per-process host setup before measuring: torch's thread count and the CPU cores used.

One function, :func:`apply`, so that every process that measures (the worker processes of
``mhabench run``, asv's sweep and ``confirm``) sets itself up the same way.

Why one thread by default on a CPU (as ``torch.utils.benchmark.Timer`` does): the points are
small, and with several intra-op threads one descheduled thread stalls every call. On a busy
2-core machine a 128-cube matmul took 8 ms with 2 threads against 36 µs with one.
"""
from __future__ import annotations

import contextlib
import gc
import os

#: Noise (relative IQR of the per-round ratios) above this many times the usual for a
#: quiet host is worth a warning: the usual on a quiet CPU is a few percent.
USUAL_REL_IQR, NOISY_FACTOR = 0.05, 4.0


@contextlib.contextmanager
def collector_off():
    """The garbage collector off while a block runs (timed rounds, traced or counted calls): a
    collection inside a timed window or a tally is work of the process, not of the path; its
    state as before afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``): a
    measuring process must not outlive the command that started it."""
    import ctypes
    import signal
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def affinity() -> list[int]:
    """The cores this process may run on (all of them where the platform cannot tell)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages ([] where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def apply(threads: int | None) -> dict:
    """Set torch's intra-op threads (None keeps torch's default); returns :func:`host_meta`.
    To run on given cores, start the command under ``taskset -c CORES``: the worker processes
    inherit the affinity."""
    import torch
    if threads is not None:
        torch.set_num_threads(threads)
    return host_meta()


def host_meta() -> dict:
    """What a result file records about the host's state: threads, cores, load."""
    import torch
    return {"threads": torch.get_num_threads(), "affinity": affinity(),
            "cpu_count": os.cpu_count() or 1, "load_avg": load_average()}


def busy_warning(meta: dict) -> str | None:
    """One line when the host was busy: the 1-minute load above the cores it has."""
    load, cores = meta.get("load_avg") or [], meta.get("cpu_count") or 1
    if load and load[0] > cores:
        return (f"warning: the host is busy (load {load[0]:.2f} on {cores} cores): "
                f"timings may be noisy")
    return None


def noise_warning(rel_iqrs) -> str | None:
    """One line when the median noise (relative IQR of the per-round speedups) of a run is
    far above the usual for a quiet host."""
    import math
    import statistics
    xs = [x for x in rel_iqrs if isinstance(x, float) and math.isfinite(x)]
    if not xs:
        return None
    med = statistics.median(xs)
    if med > NOISY_FACTOR * USUAL_REL_IQR:
        return (f"warning: noisy run: median speedup noise (IQR/median) {med:.2f}, "
                f"{med / USUAL_REL_IQR:.0f}x the usual {USUAL_REL_IQR:.2f} of a quiet host")
    return None
