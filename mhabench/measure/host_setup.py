"""Per-process host setup before measuring: torch's thread count and the CPU cores used.

One function, :func:`apply`, so that every process that measures (``mhabench run``, asv's
sweep, a worker process running the sweep) sets itself up the same way.

Why one thread by default on a CPU (as ``torch.utils.benchmark.Timer`` does): the points are
small, and with several intra-op threads one descheduled thread stalls every call. On a busy
2-core machine a 128-cube matmul took 8 ms with 2 threads against 36 µs with one.
"""
from __future__ import annotations

import os

from .config import ConfigError

THREADS_ENV = "MHABENCH_THREADS"
#: Noise (relative IQR of the per-round ratios) above this many times the usual for a
#: quiet host is worth a warning: the usual on a quiet CPU is a few percent.
USUAL_REL_IQR, NOISY_FACTOR = 0.05, 4.0


def parse_threads(text, what: str = "--threads") -> int | None:
    """``None``/``""`` -> None (the default for the device); else a positive integer."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        n = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {text!r} is not an integer") from None
    if n < 1:
        raise ConfigError(f"{what} must be >= 1, got {n}")
    return n


def parse_cores(text) -> tuple[int, ...] | None:
    """``--pin-cpu`` value: ``3`` or ``0,1`` -> (cores,); None stays None."""
    if text is None:
        return None
    if isinstance(text, int):
        return (text,)
    try:
        cores = tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--pin-cpu: {text!r} is not a core number or a list of them") from None
    if not cores or min(cores) < 0:
        raise ConfigError(f"--pin-cpu: {text!r} is not a core number or a list of them")
    return cores


def default_threads(device: str) -> int | None:
    """1 on a CPU; on CUDA torch's own default (None: left as it is)."""
    return None if str(device).startswith("cuda") else 1


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


def apply(threads: int | None, pin_cpu=None) -> dict:
    """Set torch's intra-op threads and (``pin_cpu``: a core or cores) this process's cores.

    ``threads`` None keeps torch's default, except that pinning to fewer cores than that
    lowers it to the pinned count (more threads than cores only wait for each other); asking
    for more threads than pinned cores is an error. Returns :func:`host_meta`.
    """
    import torch
    cores = parse_cores(pin_cpu)
    if cores is not None:
        if not hasattr(os, "sched_setaffinity"):
            raise ConfigError("--pin-cpu is not supported on this platform")
        missing = sorted(set(cores) - set(affinity()))
        if missing:
            raise ConfigError(f"CPU core {missing[0]} is not available to this process "
                              f"(available: {','.join(map(str, affinity()))})")
        if threads is not None and threads > len(cores):
            raise ConfigError(f"--threads {threads} needs as many cores in --pin-cpu "
                              f"(got {len(cores)}: {','.join(map(str, cores))})")
        os.sched_setaffinity(0, set(cores))
        if threads is None:
            threads = min(torch.get_num_threads(), len(cores))
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
