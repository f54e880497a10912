"""What a run measures and how: one frozen specification, built from ``mhabench run``'s flags or
from the asv suite's ``MHABENCH_*`` variables by the same parsers, with the same grid syntax and
one default grid per device.

Nothing here imports torch: ``device`` may stay ``""`` (CUDA where available) until
:meth:`RunSpec.resolve` is given the answer.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace

from ..measure.config import (ConfigError, Grid, canonical_device, canonical_dtype, parse_grid,
                              point_of_label)
from ..measure.protocol import PRESETS, Protocol, for_device, preset

#: Seconds a point may run before its worker is killed as hung.
POINT_TIMEOUT = 900.0
#: torch threads at most: more than this only reaches allocator aborts (libgomp's per-thread
#: pools), never a faster run.
MAX_THREADS = 1024
SUITES = ("full", "core", "host")


@dataclass(frozen=True)
class RunSpec:
    """A run, as asked for: validated on construction (ConfigError, one line, exit 2)."""

    grid: str = ""                 # grid spec (config.parse_grid); "": the device's default
    points: tuple = ()             # point labels instead of a grid (confirm, re-measuring)
    device: str = ""               # cpu, cuda or cuda:N; "": cuda where available
    dtype: str = ""                # fp16, bf16, fp32; "": fp16 on CUDA, fp32 on a CPU
    preset: str = "default"        # measure.protocol.PRESETS
    threads: int | None = None     # torch intra-op threads; None: 1 on a CPU, torch's on CUDA
    extras: bool = True            # fp32 drift, peak memory, SDPA backend split, matmul peak
    instructions: bool = False     # callgrind host instructions per call (one valgrind process)
    point_timeout: float = POINT_TIMEOUT
    python: str = ""               # the measuring interpreter ("": this one)

    def __post_init__(self):
        if self.device:
            object.__setattr__(self, "device", canonical_device(self.device))
        if self.dtype:
            object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        preset(self.preset)
        object.__setattr__(self, "points", tuple(self.points))
        if self.threads is not None:
            object.__setattr__(self, "threads", parse_threads(self.threads))
        t = self.point_timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"--point-timeout must be a finite number of seconds > 0, got {t}")
        if self.python and not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise ConfigError(f"{self.python}: no such interpreter")

    @property
    def protocol(self) -> Protocol:
        """The preset's protocol as this run's device runs it (:func:`for_device`)."""
        return for_device(PRESETS[self.preset], self.device)

    def resolve(self, cuda_available: bool) -> "Resolved":
        """The run with its defaults filled in: device, dtype, grid and points (ConfigError on a
        grid or label that does not parse)."""
        device = self.device or ("cuda" if cuda_available else "cpu")
        cuda = device.startswith("cuda")
        dtype = self.dtype or ("float16" if cuda else "float32")
        if self.points:
            pts = tuple(point_of_label(t) for t in self.points)
            if any((p.device, p.dtype) != (device, dtype) for p in pts):
                raise ConfigError(f"--points: give labels of {dtype} on {device}")
            grid = Grid("points", "points", parse_grid(self.grid, dtype, device).axes, pts)
        else:
            grid = parse_grid(self.grid, dtype, device)
        threads = self.threads if self.threads is not None else (None if cuda else 1)
        return Resolved(replace(self, device=device, dtype=dtype, threads=threads), grid)


@dataclass(frozen=True)
class Resolved:
    """A :class:`RunSpec` with its device and dtype decided and its grid parsed."""

    spec: RunSpec
    grid: Grid

    @property
    def points(self):
        return self.grid.points

    @property
    def peak(self) -> bool:
        """The matmul peak is calibrated for the extras' share-of-peak figures, not for a check."""
        return self.spec.extras and self.spec.preset != "check"


def parse_threads(text, what: str = "--threads") -> int | None:
    """``None``/``""`` -> None (the device's default); else an integer from 1 to MAX_THREADS."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        n = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {text!r} is not an integer") from None
    if not 1 <= n <= MAX_THREADS:
        raise ConfigError(f"{what} must be from 1 to {MAX_THREADS}, got {n}")
    return n


def parse_bool(text: str, what: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{what}: {text!r} is not 1 or 0")


# --- the asv suite's variables --------------------------------------------------------------
GRID_ENV, DEVICE_ENV, DTYPE_ENV = "MHABENCH_GRID", "MHABENCH_DEVICE", "MHABENCH_DTYPE"
SUITE_ENV, THREADS_ENV, INSTRUCTIONS_ENV = "MHABENCH_SUITE", "MHABENCH_THREADS", \
    "MHABENCH_INSTRUCTIONS"
RECORD_ENV = "MHABENCH_RECORD_DIR"
ENV_VARS = (GRID_ENV, DEVICE_ENV, DTYPE_ENV, SUITE_ENV, THREADS_ENV, INSTRUCTIONS_ENV, RECORD_ENV)


@dataclass(frozen=True)
class SuiteSpec:
    """What the asv suite records: a run, the suite (which figures are discovered) and where
    the sweep's full results go (``MHABENCH_RECORD_DIR``)."""

    run: RunSpec
    suite: str = "full"
    record_dir: str = ""


def suite_of_env(environ=None) -> SuiteSpec:
    """The ``MHABENCH_*`` variables, parsed as ``mhabench run`` parses its flags; ConfigError
    (one line) naming the variable. The device defaults to the CPU here: asking torch whether
    CUDA exists would initialise it in the process asv forks its workers from."""
    env = os.environ if environ is None else environ
    suite = (env.get(SUITE_ENV) or "full").strip().lower()
    if suite not in SUITES:
        raise ConfigError(f"{SUITE_ENV}: unknown suite {env.get(SUITE_ENV)!r} "
                          f"(use {' or '.join(SUITES)})")
    try:
        device = canonical_device(env.get(DEVICE_ENV) or "cpu")
    except ConfigError as exc:
        raise ConfigError(f"{DEVICE_ENV}: {exc}") from None
    try:
        dtype = canonical_dtype(env.get(DTYPE_ENV)) if env.get(DTYPE_ENV) else ""
    except ConfigError as exc:
        raise ConfigError(f"{DTYPE_ENV}: {exc}") from None
    run = RunSpec(grid=(env.get(GRID_ENV) or "").strip(), device=device, dtype=dtype,
                  threads=parse_threads(env.get(THREADS_ENV), THREADS_ENV),
                  extras=suite == "full",
                  instructions=suite == "host" or parse_bool(env.get(INSTRUCTIONS_ENV, ""),
                                                             INSTRUCTIONS_ENV))
    record = env.get(RECORD_ENV) or ""
    if record and os.path.exists(record) and not os.path.isdir(record):
        raise ConfigError(f"{RECORD_ENV}: {record} is not a folder")
    # the grid's syntax is checked now, in the variable's name
    parse_grid(run.grid, run.dtype or ("float16" if device.startswith("cuda") else "float32"),
               device, what=GRID_ENV)
    return SuiteSpec(run, suite, record)


def env_of(s: SuiteSpec) -> dict[str, str]:
    """The variables that make the asv suite record ``s`` (what ``mhabench track`` sets)."""
    out = {GRID_ENV: s.run.grid, DEVICE_ENV: s.run.device or "cpu", SUITE_ENV: s.suite}
    if s.run.dtype:
        out[DTYPE_ENV] = s.run.dtype
    if s.run.threads:
        out[THREADS_ENV] = str(s.run.threads)
    if s.run.instructions and s.suite != "host":
        out[INSTRUCTIONS_ENV] = "1"
    if s.record_dir:
        out[RECORD_ENV] = s.record_dir
    return {k: v for k, v in out.items() if v}


SPEC_FIELDS = tuple(f.name for f in fields(RunSpec))
