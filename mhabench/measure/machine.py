"""What a run records about where it ran: the device, the build it measured, and how calm the
host was.

A record must prove its build (:func:`build_identity`: torch version and git hash, CPU or CUDA
variant, mhabench's version and source digest) and say when its machine was noisy
(:func:`host_calibration`: a fixed pure-Python workload timed in the measuring process; its
spread within the process and its level against the other records of a comparison tell a
noisy or slowed host from a changed build).
"""
from __future__ import annotations

import datetime
import hashlib
import math
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from . import compat, host_setup
from .config import ConfigError
from .protocol import Protocol
from .stats import iqr, median


def require_device(device: str) -> None:
    """Fail early, with one line, when the device cannot be used."""
    if device.startswith("cuda"):
        import torch
        if not compat.cuda_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPUs)")


def default_device() -> str:
    return "cuda" if compat.cuda_available() else "cpu"


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model (run metadata)."""
    from .peak import model_name
    return model_name(device)


def source_digest(root: Path | None = None) -> str:
    """A short hash of mhabench's own code: which measuring code wrote a record."""
    root = root or Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        if "__pycache__" not in f.parts:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def variant() -> str:
    """``cpu`` for a CPU-only torch wheel, ``cuXY`` for a CUDA one (what a wheel was built for,
    whatever the machine has)."""
    import torch
    cuda = getattr(torch.version, "cuda", None)
    return f"cu{cuda.replace('.', '')}" if cuda else "cpu"


def build_identity() -> dict:
    """What this process measures with: the record's proof of its build."""
    from .. import __version__
    return {"torch": compat.TORCH_VERSION, "torch_git": compat.TORCH_GIT, "variant": variant(),
            "python": sys.version.split()[0], "mhabench": __version__,
            "mhabench_source": source_digest()}


#: The calibration: a fixed pure-Python loop, timed this many times.
CALIBRATION_LOOP, CALIBRATION_REPS = 20_000, 31


def host_calibration(reps: int = CALIBRATION_REPS, loop: int = CALIBRATION_LOOP) -> dict:
    """Median µs of a fixed pure-Python loop and its relative IQR over ``reps`` runs in this
    process: interpreter speed, which no torch build changes. Taken before and after a sweep's
    rounds; the gate compares its level between records and reads its spread as the host's
    noise at the time."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        acc = 0
        for i in range(loop):
            acc += i
        times.append((time.perf_counter_ns() - t0) / 1000.0)
    m = median(times)
    return {"median_us": round(m, 2), "rel_iqr": round(iqr(times) / m, 4) if m else math.nan,
            "reps": reps, "loop": loop}


#: The per-point probe: a tenth of the calibration's loop (55-110 µs on the H200 leases' hosts).
PROBE_LOOP, PROBE_REPS = 2_000, 3


def host_probe() -> float:
    """Median µs of a short run of the calibration's loop: the host's speed just before or
    after one point's rounds. A lease's host switches between a fast state and one about 1.7x
    slower, for a second or more at a time on some leases, long enough to take whole points
    (docs/lab/2026-12-03.md); a calibration at the sweep's ends cannot say which points, this
    can."""
    return host_calibration(PROBE_REPS, PROBE_LOOP)["median_us"]


def run_meta(device: str, proto: Protocol, grid: str, instructions: bool = False) -> dict:
    """What a result file needs to be read later: the build, the device, the protocol, and the
    figures that are n/a here (the instruction counts unless ``instructions``)."""
    from ..catalogue import unavailable
    return {
        "mhabench_grid": grid,
        "device": device,
        "device_name": device_name(device),
        **build_identity(),
        "cuda": compat.cuda_version(),
        "host": platform.node(),
        "protocol": asdict(proto),
        "host_setup": host_setup.host_meta(),  # threads, cores, load average
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "n/a": unavailable(device, instructions, backends=compat.sdpa_backend_names()),
        "how_measured": how_measured(device),
    }


def how_measured(device: str) -> list[str]:
    """One line per way this torch gives a figure differently from the newest releases."""
    out = []
    if compat.fastpath_switch() is None:
        out.append("slow_fair: the fast path is kept off by the module's training flag (dropout "
                   "0), torch < 2.3 having no torch.backends.mha switch")
    if device.startswith("cuda") and compat.profiler_resolution_ns() > 1:
        out.append("device times: kineto gives whole microseconds per record on torch < 2.4 "
                   "(each kernel's duration truncated)")
    return out
