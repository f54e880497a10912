"""The device's measured matmul peak, in TFLOP/s, cached on disk.

``calibrate`` times a ``size x size x size`` ``torch.matmul`` on random data (``2 * size**3``
FLOPs): warm-up calls first, then ``reps`` timed calls (CUDA events on a GPU,
``perf_counter_ns`` on the CPU); the figure is ``2 * size**3`` over the median time.

Results are cached in ``peak.json`` under ``$MHABENCH_CACHE_DIR`` if set, else the user cache
dir (``platformdirs.user_cache_dir("mhabench")``, or ``~/.cache/mhabench`` without platformdirs),
keyed by host, device name, dtype, torch version and matmul size. ``force=True`` measures again.

A peak is checked before it is cached and again when it is read (:func:`problem`): a CPU
calibration that never left its smallest size was most likely descheduled (a quiet CPU runs a
128-cube fp32 matmul in tens of microseconds), and a run whose rates exceed the peak proves the
peak wrong (:func:`recheck`). Either recalibrates, with a :class:`PeakWarning`; a share of the
peak above 1 is never stored (:func:`fraction`).

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
import warnings
from pathlib import Path

from .config import ConfigError, canonical_device, canonical_dtype

ENV_CACHE_DIR = "MHABENCH_CACHE_DIR"
CACHE_FILE = "peak.json"
CUDA_SIZE, CPU_SIZE = 8192, 1024
CUDA_REPS, CPU_REPS = 20, 10
WARMUP = 3
CPU_PROBE, CPU_CALL_S = 128, 0.05
#: Probes of the CPU size taken before a calibration that stays at the smallest size is kept.
PROBE_TRIES = 3


class PeakWarning(UserWarning):
    """A cached or measured peak was not credible and was measured again."""


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


def cache_key(device_name: str, dtype: str, torch_version: str, size: int,
              host: str | None = None) -> str:
    """One entry per host too: a shared home directory must not hand one host's peak to another."""
    return f"{platform.node() if host is None else host}|{device_name}|{dtype}|torch {torch_version}|{size}"


def load_cache() -> dict:
    """The cache's entries; an absent or unreadable file is an empty cache."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(key: str, entry: dict) -> None:
    from .fileio import atomic_write
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


def model_name(device: str) -> str:
    """The GPU's name, or the CPU's model."""
    import torch
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_name()


def device_name(device: str) -> str:
    """A name that tells devices apart: the GPU's name, or the CPU model and torch's thread count."""
    import torch
    if device.startswith("cuda"):
        return model_name(device)
    return f"{model_name(device)} ({torch.get_num_threads()} threads)"


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


def checked_cpu_size(dtype: str) -> tuple[int, bool]:
    """:func:`cpu_size`, probed again (up to ``PROBE_TRIES`` times, the largest kept) while it
    stays at the smallest size, with a warning; returns (size, whether it stayed there)."""
    size = cpu_size(dtype)
    for _ in range(PROBE_TRIES - 1):
        if size > CPU_PROBE or CPU_PROBE >= CPU_SIZE:
            break
        warnings.warn(f"peak: the {CPU_PROBE}-cube probe matmul was too slow to grow the "
                      f"calibration (a busy host?): probing again", PeakWarning, stacklevel=2)
        size = max(size, cpu_size(dtype))
    return size, size == CPU_PROBE < CPU_SIZE


def problem(entry: dict, cuda: bool = False) -> str | None:
    """Why a peak entry (cached or just measured) is not credible, or None. An entry at the
    smallest CPU size is credible only if it was stored after :func:`checked_cpu_size` (older
    entries lack ``checked``)."""
    value = entry.get("tflops")
    if not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        return f"peak {value!r} TFLOP/s is not a positive number"
    if not cuda and entry.get("size") == CPU_PROBE < CPU_SIZE and not entry.get("checked"):
        return (f"the calibration never left its smallest size ({CPU_PROBE}-cube matmul, "
                f"{value:.4g} TFLOP/s)")
    return None


def fraction(rate: float, peak_tflops: float) -> float:
    """Share of the peak; NaN where unknown or above 1 (a rate above the peak proves the peak
    wrong, not the rate right: :func:`recheck` measures it again)."""
    if not (peak_tflops and math.isfinite(rate) and math.isfinite(peak_tflops)):
        return math.nan
    share = rate / peak_tflops
    return share if share <= 1.0 else math.nan


def device_peak(device: str, dtype: str, force: bool = False) -> dict:
    """The peak a run uses: ``{"tflops", "matmul_size", "cached"}``; raises as :func:`calibrate`.

    On a CPU the size is probed (:func:`checked_cpu_size`); a cached entry of this host,
    device, dtype and torch at a larger size is used as it is, so a busy moment in a later
    run's probe does not fall back to a small, slow calibration.
    """
    device, dtype = canonical_device(device), canonical_dtype(dtype)
    if device.startswith("cuda"):
        size, smallest = CUDA_SIZE, False
    else:
        size = 0 if force else _best_cached_size(device, dtype)
        smallest = False
        if not size:
            size, smallest = checked_cpu_size(dtype)
    cached = not force and is_cached(device, dtype, size)
    value = calibrate(device, dtype, size=size, force=force)
    return {"tflops": value, "matmul_size": size, "cached": cached, "smallest": smallest}


def _best_cached_size(device: str, dtype: str) -> int:
    import torch
    prefix = cache_key(device_name(device), dtype, str(torch.__version__), 0)[:-1]
    sizes = [e.get("size") for k, e in load_cache().items()
             if k.startswith(prefix) and isinstance(e, dict) and problem(e) is None]
    sizes = [s for s in sizes if isinstance(s, int) and s > CPU_PROBE]
    return max(sizes, default=0)


def recheck(rates, entry: dict, device: str, dtype: str) -> dict:
    """``entry`` (from :func:`device_peak`), measured again if any of ``rates`` (TFLOP/s the run
    reached) exceeds it; the new entry says ``rechecked``. A peak still below a rate stays
    (its shares above 1 are dropped by :func:`fraction`), with a warning."""
    peak_tflops = entry.get("tflops", math.nan)
    top = max((r for r in rates if isinstance(r, float) and math.isfinite(r)), default=math.nan)
    if not (math.isfinite(peak_tflops) and top > peak_tflops):
        return entry
    warnings.warn(f"peak: a rate of {top:.4g} TFLOP/s exceeds the peak {peak_tflops:.4g}: "
                  f"measuring the peak again", PeakWarning, stacklevel=2)
    try:
        new = {**entry, **device_peak(device, dtype, force=True), "rechecked": True}
    except Exception as exc:  # keep the old one: its shares above 1 are dropped anyway
        warnings.warn(f"peak: recalibration failed: {exc}", PeakWarning, stacklevel=2)
        return entry
    if top > new["tflops"]:
        warnings.warn(f"peak: still below a measured rate ({new['tflops']:.4g} < {top:.4g} "
                      f"TFLOP/s): shares above 1 are left blank", PeakWarning, stacklevel=2)
    return new


def is_cached(device: str, dtype: str, size: int) -> bool:
    """Whether :func:`calibrate` would read this peak from the cache."""
    import torch
    key = cache_key(device_name(device), canonical_dtype(dtype), str(torch.__version__), size)
    return isinstance(load_cache().get(key), dict)


def calibrate(device: str = "cuda", dtype: str = "float16", size: int | None = None,
              reps: int | None = None, force: bool = False) -> float:
    """Matmul peak of ``device`` in ``dtype``, TFLOP/s; from the cache unless ``force`` or the
    cached entry fails :func:`problem` (then measured again, with a warning).

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
            why = problem(entry, cuda)
            if why is None:
                return float(entry["tflops"])
            if "tflops" in entry:
                warnings.warn(f"peak: cached peak rejected ({why}): measuring again",
                              PeakWarning, stacklevel=2)
    seconds = _measure(device, dtype, size, reps)
    value = 2.0 * size ** 3 / seconds / 1e12 if seconds > 0 else math.inf
    entry = {"tflops": value, "device_name": name, "dtype": dtype, "torch": version,
             "host": platform.node(), "size": size, "reps": reps, "median_s": seconds,
             "checked": True,
             "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    why = problem(entry, cuda)
    if why is not None:  # never cached
        raise RuntimeError(f"matmul peak measurement not credible: {why}")
    _store(key, entry)
    return value


def _warned(on_warning, fn, *args, **kw):
    """``fn(*args, **kw)`` with each :class:`PeakWarning` handed to ``on_warning`` as a line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PeakWarning)
        out = fn(*args, **kw)
    for w in caught:
        if issubclass(w.category, PeakWarning) and on_warning:
            on_warning(f"warning: {w.message}")
    return out


def peak_entry(device: str, dtype: str, force: bool = False, on_warning=None) -> dict:
    """The peak as run metadata: :func:`device_peak`'s entry, or NaN and the reason where it
    could not be measured; warnings go to ``on_warning``."""
    import time
    t0 = time.perf_counter()
    entry = {"dtype": dtype, "cache": str(cache_path())}
    try:
        entry.update(_warned(on_warning, device_peak, device, dtype, force))
    except Exception as exc:
        text = str(exc).strip().splitlines()
        entry.update(tflops=math.nan, error=f"{type(exc).__name__}: {text[0] if text else ''}")
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    return entry


def recheck_entry(rates, entry: dict, device: str, dtype: str, on_warning=None) -> dict:
    """:func:`recheck`, its warnings handed to ``on_warning``."""
    return _warned(on_warning, recheck, rates, entry, device, dtype)
