"""The device's measured matmul peak, in TFLOP/s, cached on disk.

``calibrate`` times a ``size x size x size`` ``torch.matmul`` on random data (``2 * size**3``
FLOPs): warm-up calls first, then ``reps`` timed calls (CUDA events on a GPU,
``perf_counter_ns`` on the CPU); the figure is ``2 * size**3`` over the median time.

Results are cached in ``peak.json`` under ``$MHABENCH_CACHE_DIR`` if set, else the user cache
dir (``platformdirs.user_cache_dir("mhabench")``, or ``~/.cache/mhabench`` without platformdirs),
keyed by device name, dtype, torch version and matmul size. ``force=True`` measures again.

Nothing here imports torch or touches CUDA at import time.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

from .config import ConfigError, canonical_device, canonical_dtype

ENV_CACHE_DIR = "MHABENCH_CACHE_DIR"
CACHE_FILE = "peak.json"
CUDA_SIZE, CPU_SIZE = 8192, 1024
CUDA_REPS, CPU_REPS = 20, 10
WARMUP = 3
CPU_PROBE, CPU_CALL_S = 128, 0.05


# --- cache -----------------------------------------------------------------------------------
def cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env)
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "mhabench"
    return Path(platformdirs.user_cache_dir("mhabench"))


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def cache_key(device_name: str, dtype: str, torch_version: str, size: int) -> str:
    return f"{device_name}|{dtype}|torch {torch_version}|{size}"


def load_cache() -> dict:
    """The cache's entries; an absent or unreadable file is an empty cache."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(key: str, entry: dict) -> None:
    from .results import atomic_write
    data = load_cache()
    data[key] = entry
    atomic_write(cache_path(), json.dumps(data, indent=1, sort_keys=True))


# --- device ----------------------------------------------------------------------------------
def _cpu_name() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "cpu"


def device_name(device: str) -> str:
    """A name that tells devices apart: the GPU's name, or the CPU model and torch's thread count."""
    import torch
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{_cpu_name()} ({torch.get_num_threads()} threads)"


# --- measurement -----------------------------------------------------------------------------
def _measure(device: str, dtype: str, size: int, reps: int) -> float:
    """Median seconds of one ``size``-cube matmul on ``device`` in ``dtype``."""
    import torch
    dt = getattr(torch, dtype)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dt)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dt)
    c = torch.empty(size, size, device=device, dtype=dt)
    cuda = device.startswith("cuda")
    with torch.inference_mode():
        for _ in range(WARMUP):
            torch.matmul(a, b, out=c)
        times = []
        if cuda:
            with torch.cuda.device(torch.device(device)):  # events on the measured device's stream
                torch.cuda.synchronize()
                for _ in range(reps):
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    torch.matmul(a, b, out=c)
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end) / 1e3)
        else:
            for _ in range(reps):
                t0 = time.perf_counter_ns()
                torch.matmul(a, b, out=c)
                times.append((time.perf_counter_ns() - t0) / 1e9)
    return statistics.median(times)


def cpu_size(dtype: str) -> int:
    """The largest power-of-two size up to ``CPU_SIZE`` whose matmul should take at most
    ``CPU_CALL_S``, from one timed ``CPU_PROBE`` matmul (time grows as size cubed).

    CPUs without native half-precision units run fp16 matmuls up to a thousand times slower
    than fp32: a fixed 1024 cube then takes minutes to calibrate.
    """
    seconds = _measure("cpu", canonical_dtype(dtype), CPU_PROBE, 3)
    size = CPU_PROBE
    while size * 2 <= CPU_SIZE and seconds * 8 <= CPU_CALL_S:
        size, seconds = size * 2, seconds * 8
    return size


def is_cached(device: str, dtype: str, size: int) -> bool:
    """Whether :func:`calibrate` would read this peak from the cache."""
    import torch
    key = cache_key(device_name(device), canonical_dtype(dtype), str(torch.__version__), size)
    return isinstance(load_cache().get(key), dict)


def calibrate(device: str = "cuda", dtype: str = "float16", size: int | None = None,
              reps: int | None = None, force: bool = False) -> float:
    """Matmul peak of ``device`` in ``dtype``, TFLOP/s; from the cache unless ``force``.

    ``size`` defaults to 8192 on CUDA and 1024 on the CPU; ``reps`` to 20 on CUDA, 10 on the CPU.
    Raises ConfigError for a bad device / dtype / size / reps, or CUDA asked for but absent.
    """
    import torch
    device, dtype = canonical_device(device), canonical_dtype(dtype)
    cuda = device.startswith("cuda")
    size = (CUDA_SIZE if cuda else CPU_SIZE) if size is None else size
    reps = (CUDA_REPS if cuda else CPU_REPS) if reps is None else reps
    for name, v in (("size", size), ("reps", reps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    name, version = device_name(device), str(torch.__version__)
    key = cache_key(name, dtype, version, size)
    if not force:
        entry = load_cache().get(key)
        if isinstance(entry, dict):
            value = entry.get("tflops")
            if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
                return float(value)
    seconds = _measure(device, dtype, size, reps)
    value = 2.0 * size ** 3 / seconds / 1e12 if seconds > 0 else math.inf
    if not (math.isfinite(value) and value > 0):
        raise RuntimeError(f"matmul peak measurement gave {value!r} TFLOP/s")
    _store(key, {"tflops": value, "device_name": name, "dtype": dtype, "torch": version,
                 "size": size, "reps": reps, "median_s": seconds,
                 "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    return value
