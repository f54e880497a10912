"""The figure catalogue: every figure mhabench reports, declared once.

A :class:`Figure` is one metric of a point (its key in ``Result.metrics()`` and in the run's
JSON) with everything the rest of the project needs to know about it: unit, which way is
better, which path it belongs to and in what role, where asv records it and under which name,
how the gate judges it (its :class:`Family`), what asv's regressions feed may flag, the run
table's column and the CSV's, and where it can exist at all. The asv suite's classes, both asv
configs' feed settings, the gate's families, the run table, the CSV header and the n/a reasons
are all generated from this table; adding a figure is one entry here plus its measurement.

Roles, the words the gate reasons with:

``cost``     a path's own time or instructions per call (lower is better)
``work``     a path's own host work per call, exact integers: any change is changed work
``ratio``    fast time / slow time, between two paths (asv tracks speedups inverted)
``noise``    the relative IQR behind a ratio, one record's own uncertainty
``samples``  how many samples stand behind a record's medians
``context``  figures for reading (host share, efficiency, memory, errors): not judged

Pure data and pure functions: nothing here imports torch or another mhabench module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PATHS = ("fast", "slow", "slow_fair")
#: SDPA backends the fast path is also timed with alone (device time only, on CUDA).
BACKENDS = ("flash", "efficient", "cudnn")
#: Exact host-work counts per call (``host_{path}_{kind}``): from the profiler (aten ops, and on
#: CUDA the runtime calls, device activities and bytes), ``copied_bytes`` derived, and the
#: Python bytecodes (:mod:`mhabench.measure.bytecodes`).
PROFILED_KINDS = ("aten_ops", "runtime_calls", "launches", "memcpy_calls", "syncs",
                  "alloc_calls", "kernels", "copies", "h2d_bytes", "d2h_bytes")
WORK_KINDS = PROFILED_KINDS + ("copied_bytes", "bytecodes")
CUDA_WORK_KINDS = PROFILED_KINDS[1:] + ("copied_bytes",)

MU = "\u00b5"
UP, DOWN = "\u2191", "\u2193"

# asv units: what asv's graph writes along its y axis (a benchmark's identity in users'
# histories is its name and version, not its unit). The graph draws a longer label past the top
# of the plot: at most UNIT_MAX characters.
US, RATIO, BYTES, COUNT = "microseconds", "ratio", "bytes", "count"
FAST_OVER_SLOW = "fast/slow (below 1: fast wins)"
UNIT_MAX = 32

ROLES = ("cost", "work", "ratio", "noise", "samples", "context")
#: The feed's threshold for kernel times: their A/A moves reach 2.1-2.7% at a few points between
#: fresh processes (H200, 72 points, six records), the gate's device floor is 3%.
DEVICE_FEED = 0.03


@dataclass(frozen=True)
class Family:
    """How the gate judges the figures of one kind: the smallest change that counts (``floor``),
    an allowance for what a host does between processes that one record cannot see
    (``drift``), or exact integers (``exact``)."""

    name: str
    floor: float = 0.05
    drift: float = 0.0
    exact: bool = False
    what: str = ""      # the family in words, for the gate's report


#: Device ratios move 0.9% between fresh processes at the median point and 2.4% at p90 (H200);
#: wall figures by several percent on a CPU and tens of percent on a GPU host; host-work counts
#: and bytecodes are exact; instruction counts move at most 0.13% (smoke grid, CPU).
FAMILIES = {
    "wall": Family("wall", floor=0.05, drift=0.03, what="wall time"),
    "device": Family("device", floor=0.03, drift=0.01, what="kernel time"),
    "instructions": Family("instructions", floor=0.005, what="host instructions"),
    "host work": Family("host work", floor=0.0, exact=True, what="host-work counts"),
}


@dataclass(frozen=True)
class Figure:
    """One figure of a point. See the module docstring for ``role``."""

    key: str                    # metric key: Result.metrics(), the JSON's "metrics"
    doc: str                    # one line: what it is
    unit: str = ""              # for people: us, ratio, count, bytes, TFLOP/s...
    role: str = "context"
    path: str = ""              # the path a cost/work/context figure belongs to
    pair: tuple = ()            # a ratio's (fast, slow) paths
    better: str = "lower"       # "lower" or "higher"
    family: str = ""            # gate family (FAMILIES), "" if the gate does not judge it
    asv: str = ""               # asv benchmark name module.Class.method ("": not recorded)
    asv_unit: str = ""          # asv's unit for it (kept as histories have it)
    invert: bool = False        # asv records 1 / value (a speedup becomes fast / slow)
    feed: float | None = None   # rise the regressions feed flags; None: no detection
    on: str = "any"             # where it can exist: any, cpu, cuda
    extra: bool = False         # only with the extras (the full suite, run without --no-extras)
    suites: tuple = ("full", "core")  # asv suites that record it
    table: str = ""             # header in mhabench run's table ("": not shown)
    fmt: str = ""               # table cell: us, ratio, pct, err, mib, g3
    csv: str = ""               # CSV column name ("": the key itself)
    in_csv: bool = True         # a column of the CSV (appended after CSV_LAYOUT if new)
    noise: str = ""             # a ratio's noise figure (asv name)
    samples: str = ""           # the asv name of the sample count behind a ratio's medians
    version: str = "1"          # asv version: bump only when the number's meaning changes
    zero_missing: bool = False  # a 0 cannot be measured (a call runs some bytecode): none taken

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"{self.key}: unknown role {self.role!r}")
        if self.family and self.family not in FAMILIES:
            raise ValueError(f"{self.key}: unknown family {self.family!r}")
        if self.on not in ("any", "cpu", "cuda"):
            raise ValueError(f"{self.key}: on={self.on!r}")

    @property
    def module(self) -> str:
        return self.asv.split(".")[0]

    @property
    def cls(self) -> str:
        return self.asv.split(".")[1]

    @property
    def counts(self) -> str:
        """What a host-work figure counts (``aten_ops``, ``bytecodes``...): its key without the
        ``host_PATH_`` prefix ("" for other figures)."""
        prefix = f"host_{self.path}_"
        work = self.role == "work" and self.key.startswith(prefix)
        return self.key[len(prefix):] if work else ""

    @property
    def method(self) -> str:
        return self.asv.split(".")[2]

    def value(self, metrics: dict) -> float:
        """What asv records for this figure from a point's metrics (NaN where not measured)."""
        v = metrics.get(self.key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or v in (
                float("inf"), float("-inf")):
            return float("nan")
        if self.invert:
            return 1.0 / v if v else float("nan")
        if self.zero_missing and v == 0:
            return float("nan")
        return float(v)

    def measured(self, values: list | None) -> list | None:
        """A point's recorded values, a 0 of a figure that cannot be 0 as NaN (not measured):
        records of Python 3.12 before the tracer was primed hold such 0s."""
        if not self.zero_missing or values is None:
            return values
        return [float("nan") if v == 0 else v for v in values]  # None (failed) stays

    def exists(self, device: str, suite: str = "full", extras: bool = True) -> bool:
        """Whether this figure is recorded for ``device`` by ``suite`` (asv: discovered)."""
        cuda = str(device).startswith("cuda")
        if self.on != "any" and cuda != (self.on == "cuda"):
            return False
        if self.extra and not extras:
            return False
        return suite in self.suites


def _paths(fn) -> list[Figure]:
    return [fn(p) for p in PATHS]


def _wall(p: str) -> Figure:
    return Figure(f"wall_{p}_us", f"{p} path: median wall time per call", "us", "cost", p,
                  family="wall", asv=f"time_per_call.WallTime.track_{p}", asv_unit=US,
                  table={"fast": f"fast {MU}s{DOWN}", "slow": f"slow {MU}s{DOWN}",
                         "slow_fair": f"fair {MU}s{DOWN}"}[p], fmt="us",
                  csv={"fast": f"time_native_mha_fast ({MU}s)",
                       "slow": f"time_native_mha_slow({MU}s)",
                       "slow_fair": f"time_slow_fair({MU}s)"}[p])


def _wall_iqr(p: str) -> Figure:
    return Figure(f"wall_{p}_iqr_us", f"{p} path: IQR of the wall time per call", "us",
                  path=p, csv={"fast": f"fast_iqr({MU}s)", "slow": f"slow_iqr({MU}s)",
                               "slow_fair": f"slow_fair_iqr({MU}s)"}[p])


def _device(p: str) -> Figure:
    return Figure(f"device_{p}_us", f"{p} path: kernel (and copy) time per call", "us", "cost",
                  p, family="device", asv=f"time_per_call.DeviceTime.track_{p}", asv_unit=US,
                  feed=DEVICE_FEED, on="cuda", csv=f"device_{p}({MU}s)",
                  table={"fast": f"dev fast {MU}s{DOWN}", "slow": f"dev slow {MU}s{DOWN}"}.get(
                      p, ""), fmt="us")


def _share(p: str) -> Figure:
    return Figure(f"host_share_{p}", f"{p} path: share of the wall time not spent in kernels",
                  "ratio", path=p, asv=f"time_per_call.HostShare.track_{p}", asv_unit=RATIO,
                  on="cuda", table=f"host share{DOWN}" if p == "fast" else "", fmt="pct")


def _instructions(p: str) -> Figure:
    return Figure(f"instr_{p}", f"{p} path: host instructions per call (callgrind)",
                  "instructions", "cost", p, family="instructions",
                  asv=f"host.Instructions.track_{p}", asv_unit="instructions", feed=0.01,
                  suites=("host",))


#: The host-work counts asv records, per path.
ASV_WORK = {"fast": ("aten_ops", "runtime_calls", "launches", "syncs", "memcpy_calls",
                     "copied_bytes", "bytecodes"),
            "slow": ("aten_ops", "bytecodes"), "slow_fair": ("aten_ops", "bytecodes")}


def _work(p: str, kind: str) -> Figure:
    unit = BYTES if kind.endswith("bytes") else COUNT
    asv = f"host.HostWork.track_{p}_{kind}" if kind in ASV_WORK[p] else ""
    return Figure(f"host_{p}_{kind}", f"{p} path: {WORK_DOCS[kind]} per call", unit, "work", p,
                  family="host work", asv=asv, asv_unit=unit, feed=0.0,
                  on="cuda" if kind in CUDA_WORK_KINDS else "any",
                  suites=("full", "core", "host"), in_csv=kind != "copied_bytes",
                  zero_missing=kind == "bytecodes")


WORK_DOCS = {
    "aten_ops": "aten ops dispatched (nested ones included)",
    "runtime_calls": "CUDA runtime/driver calls",
    "launches": "kernel launches",
    "memcpy_calls": "cudaMemcpy*/cudaMemset* calls",
    "syncs": "host-device synchronisations (cuda*Synchronize)",
    "alloc_calls": "allocator runtime calls",
    "kernels": "kernels run",
    "copies": "device copies and sets",
    "h2d_bytes": "bytes copied host to device",
    "d2h_bytes": "bytes copied device to host",
    "copied_bytes": "bytes copied host to device and back",
    "bytecodes": "Python bytecodes executed",
}


def _ratio(key: str, asv_method: str, pair: tuple, family: str, doc: str, **kw) -> Figure:
    device = family == "device"
    return Figure(key, doc, "ratio", "ratio", pair=pair, better="higher", family=family,
                  asv=f"speedup.FastOverSlow.{asv_method}", asv_unit=FAST_OVER_SLOW, invert=True,
                  feed=DEVICE_FEED if device else 0.05, on="cuda" if device else "any",
                  noise=f"speedup.Noise.{asv_method}",
                  samples="speedup.Rounds.track_device" if device else "speedup.Rounds.track_wall",
                  **kw)


def _noise(key: str, asv_method: str, doc: str, device: bool, table: str = "") -> Figure:
    return Figure(key, doc, "ratio", "noise", asv=f"speedup.Noise.{asv_method}",
                  asv_unit=RATIO, on="cuda" if device else "any", table=table,
                  fmt="pct" if table else "", in_csv=bool(table))


def _rate(base: str, p: str) -> list[Figure]:
    """Useful TFLOP/s of a path and its share of the device's matmul peak (wall or kernel)."""
    on = "cuda" if base == "device" else "any"
    rate = Figure(f"{base}_{p}_tflops", f"{p} path: useful TFLOP/s ({base} time)", "TFLOP/s",
                  path=p, better="higher", on=on)
    frac = Figure(f"{base}_{p}_peak_fraction", f"{p} path: share of the matmul peak ({base})",
                  "ratio", path=p, better="higher", on=on)
    if p == "fast" and base == "device":
        rate = _with(rate, asv="efficiency.Efficiency.track_fast_tflops", asv_unit="TFLOP/s",
                     extra=True, suites=("full",))
        frac = _with(frac, asv="efficiency.Efficiency.track_fast_below_peak", asv_unit=RATIO,
                     invert=True, feed=DEVICE_FEED, extra=True, suites=("full",),
                     table=f"dev peak{UP}", fmt="pct")
    if p == "fast" and base == "wall":
        rate = _with(rate, asv="efficiency.Efficiency.track_fast_wall_tflops",
                     asv_unit="TFLOP/s", on="cpu", extra=True, suites=("full",),
                     table=f"TFLOP/s{UP}", fmt="g3")
        frac = _with(frac, asv="efficiency.Efficiency.track_fast_wall_below_peak",
                     asv_unit="peak/achieved (lower is better)", invert=True, on="cpu",
                     extra=True, suites=("full",), table=f"peak{UP}", fmt="pct")
    return [rate, frac]


def _with(f: Figure, **kw) -> Figure:
    from dataclasses import replace
    return replace(f, **kw)


def _memory(p: str) -> Figure:
    return Figure(f"peak_mem_{p}_bytes", f"{p} path: peak GPU memory one call asked for, above "
                  "what was held before it", "bytes", "context", p, asv=f"memory.GpuMemory.track_{p}",
                  asv_unit=BYTES, feed=0.01, on="cuda", extra=True, suites=("full",),
                  table=f"MiB{DOWN}" if p == "fast" else "", fmt="mib")


def _backend(b: str) -> Figure:
    return Figure(f"device_fast_{b}_us", f"fast path: kernel time with only {b} SDPA allowed",
                  "us", path="fast", asv=f"time_per_call.SdpaBackend.track_{b}", asv_unit=US,
                  feed=DEVICE_FEED, on="cuda", extra=True, suites=("full",), csv=f"device_fast_{b}({MU}s)")


def _build() -> tuple[Figure, ...]:
    figs: list[Figure] = [
        Figure("padding", "share of the padded batch that is padding", "ratio", csv="padding"),
        *_paths(_wall), *_paths(_wall_iqr),
        _ratio("speedup", "track_wall", ("fast", "slow"), "wall",
               "wall speedup: median over rounds of slow/fast", table=f"speedup{UP}",
               fmt="ratio", csv="speedup flash_mha v native_mha"),
        _noise("speedup_rel_iqr", "track_wall", "relative IQR of the per-round slow/fast",
               False, f"noise{DOWN}"),
        _ratio("speedup_fair", "track_wall_fair", ("fast", "slow_fair"), "wall",
               "wall speedup against slow_fair", table=f"fair{UP}", fmt="ratio",
               csv="speedup_fair"),
        _noise("speedup_fair_rel_iqr", "track_wall_fair",
               "relative IQR of the per-round slow_fair/fast", False),
        *_paths(_device),
        _ratio("device_speedup", "track_device", ("fast", "slow"), "device",
               "kernel-time speedup slow/fast", table=f"dev speedup{UP}", fmt="ratio",
               csv="device_speedup"),
        _noise("device_speedup_rel_iqr", "track_device",
               "relative IQR of the per-call kernel-time slow/fast", True, f"dev noise{DOWN}"),
        _ratio("device_speedup_fair", "track_device_fair", ("fast", "slow_fair"), "device",
               "kernel-time speedup slow_fair/fast", csv="device_speedup_fair"),
        _noise("device_speedup_fair_rel_iqr", "track_device_fair",
               "relative IQR of the per-call kernel-time slow_fair/fast", True),
        Figure("wall_rounds", "interleaved wall-time rounds behind the medians", "rounds",
               "samples", asv="speedup.Rounds.track_wall", asv_unit="rounds", in_csv=False),
        Figure("device_rounds", "profiled calls per path behind the device medians", "calls",
               "samples", asv="speedup.Rounds.track_device", asv_unit="calls", on="cuda",
               in_csv=False),
        *_paths(_share),
        Figure("max_abs_err", "largest |fast - slow| over the real tokens", "abs error",
               asv="correctness.MaxAbsError.track_fast_vs_slow", asv_unit="abs error",
               feed=0.05, table=f"err{DOWN}", fmt="err", csv="max_abs_err"),
        Figure("max_abs_err_fp32", "largest |fast - fp32 reference| over the real tokens: the "
               "fast path's own drift", "abs error",
               asv="correctness.MaxAbsError.track_fast_vs_fp32", asv_unit="abs error",
               feed=0.05, extra=True, suites=("full",), table=f"fp32 err{DOWN}", fmt="err"),
        *[_backend(b) for b in BACKENDS],
        Figure("useful_flops", "matmul FLOPs on the real tokens", "FLOP"),
        Figure("padded_flops", "matmul FLOPs of the padded batch", "FLOP"),
        Figure("peak_tflops", "the device's calibrated matmul peak", "TFLOP/s", better="higher"),
        *[f for base in ("wall", "device") for p in PATHS for f in _rate(base, p)],
        *_paths(_memory),
        *[_work(p, k) for p in PATHS for k in WORK_KINDS],
        *_paths(_instructions),
    ]
    return tuple(figs)


FIGURES: tuple[Figure, ...] = _build()
BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}
BY_ASV: dict[str, Figure] = {f.asv: f for f in FIGURES if f.asv}

#: Class docstrings of the asv suite, by ``module.Class``.
CLASS_DOCS = {
    "speedup.FastOverSlow": "1 / speedup: below 1 the fast path wins; fair compares against "
                            "slow_fair.",
    "speedup.Noise": "IQR / median of the per-round (device: per-call) ratios behind each "
                     "FastOverSlow figure (same method names).",
    "speedup.Rounds": "How many samples each median of one record stands on.",
    "time_per_call.WallTime": "Median wall time of one call per path.",
    "time_per_call.DeviceTime": "Summed kernel time per call, from the profiler.",
    "time_per_call.HostShare": "1 - device / wall: the share of a call not spent in kernels.",
    "time_per_call.SdpaBackend": "Fast path kernel time with one SDPA backend allowed alone.",
    "correctness.MaxAbsError": "How far the fast path's output is from the slow path's and from "
                               "an fp32 reference.",
    "efficiency.Efficiency": "How close the fast path comes to the device's matmul peak.",
    "memory.GpuMemory": "Peak GPU memory of one call of each path.",
    "host.Instructions": "Host instructions per call (callgrind), counted around a path's "
                         "calls only.",
    "host.HostWork": "Exact host-work counts per call: identical between runs of one build.",
}
#: asv's entry modules, in the order their classes are declared above.
ASV_MODULES = tuple(dict.fromkeys(f.module for f in FIGURES if f.asv))


def figure(key: str) -> Figure:
    return BY_KEY[key]


def asv_figure(name: str) -> Figure | None:
    return BY_ASV.get(name)


def asv_classes(module: str) -> dict[str, list[Figure]]:
    """``{class name: [figures]}`` of one asv entry module, in declaration order."""
    out: dict[str, list[Figure]] = {}
    for f in FIGURES:
        if f.asv and f.module == module:
            out.setdefault(f.cls, []).append(f)
    return out


def family_of(name: str) -> Family | None:
    """The gate family of an asv benchmark name (None: not judged)."""
    f = BY_ASV.get(name)
    return FAMILIES[f.family] if f is not None and f.family else None


def cost_figure(family: str, path: str) -> Figure | None:
    """The asv-recorded cost figure of ``path`` in ``family`` (its time for a ratio's row)."""
    for f in FIGURES:
        if f.asv and f.role == "cost" and f.family == family and f.path == path:
            return f
    return None


# --- generated settings --------------------------------------------------------------------
def _exact(name: str) -> str:
    """A regex matching the benchmark, with or without its parameters (asv matches the feed's
    patterns against ``name(params...)``)."""
    return "^" + re.escape(name) + r"(\(|@|$)"


def feed_settings(wall_threshold: float | None = 0.05) -> dict:
    """asv's regressions feed: a threshold per figure that may be flagged, detection off for the
    others (``regressions_first_commits: null``). ``wall_threshold`` replaces the wall ratios'
    (None: no detection for them)."""
    thresholds, off = {}, {}
    for f in FIGURES:
        if not f.asv:
            continue
        t = wall_threshold if (f.role == "ratio" and f.family == "wall") else f.feed
        if t is None:
            off[_exact(f.asv)] = None
        else:
            thresholds[_exact(f.asv)] = t
    return {"regressions_thresholds": thresholds, "regressions_first_commits": off,
            "project_url": PROJECT_URL, "build_cache_size": BUILD_CACHE_SIZE}


PROJECT_URL = "https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html"
BUILD_CACHE_SIZE = 8


def table_figures() -> list[Figure]:
    """The figures ``mhabench run``'s table shows, in their column order."""
    order = ["wall_slow_us", "wall_fast_us", "wall_slow_fair_us", "device_slow_us",
             "device_fast_us", "speedup", "speedup_rel_iqr", "speedup_fair", "device_speedup",
             "device_speedup_rel_iqr", "host_share_fast", "max_abs_err", "max_abs_err_fp32",
             "wall_fast_tflops", "wall_fast_peak_fraction", "device_fast_peak_fraction",
             "peak_mem_fast_bytes"]
    rest = [f.key for f in FIGURES if f.table and f.key not in order]
    return [BY_KEY[k] for k in order + rest]


#: The CSV's columns: the reference's nine first, spelled as it spells them, then ours. A
#: column is a metric key, or one of the point's or result's own fields (``@...``). The layout is
#: a file format, kept as it was; a figure added to the catalogue later is appended.
CSV_LAYOUT = (
    "@dtype", "@batch_size", "@seq_len", "@num_heads", "@embed_dim",
    "wall_slow_us", "wall_fast_us", "speedup", "padding",
    "wall_slow_iqr_us", "wall_fast_iqr_us", "wall_slow_fair_us", "wall_slow_fair_iqr_us",
    "speedup_fair", "device_slow_us", "device_fast_us", "device_slow_fair_us",
    "device_speedup", "device_speedup_fair", "speedup_rel_iqr", "device_speedup_rel_iqr",
    "host_share_slow", "host_share_fast", "host_share_slow_fair", "max_abs_err",
    "@fast_path", "@sdpa_backend", *(f"device_fast_{b}_us" for b in BACKENDS), "@beta_b",
    "@status", "useful_flops", "padded_flops", "peak_tflops",
    *(f"{base}_{p}_tflops" for base in ("wall", "device") for p in PATHS),
    *(f"{base}_{p}_peak_fraction" for base in ("wall", "device") for p in PATHS),
    *(f"peak_mem_{p}_bytes" for p in PATHS), "max_abs_err_fp32",
    *(f"host_{p}_{k}" for p in PATHS for k in PROFILED_KINDS),
    *(f"instr_{p}" for p in PATHS),
)
CSV_FIELDS = {"@dtype": "dtype", "@batch_size": "batch_size", "@seq_len": "sequence_length",
              "@num_heads": "n_heads", "@embed_dim": "embed_dim", "@fast_path": "fast_path",
              "@sdpa_backend": "sdpa_backend", "@beta_b": "beta_b", "@status": "status"}
#: CSV cell formats of metric columns (default: 3 decimals).
CSV_FORMATS = {"speedup_rel_iqr": ".4f", "device_speedup_rel_iqr": ".4f", "max_abs_err": ".3g",
               "useful_flops": ".0f", "padded_flops": ".0f", "peak_tflops": ".4g",
               "max_abs_err_fp32": ".3g"}


def csv_columns() -> list[str]:
    """Column ids in CSV order: :data:`CSV_LAYOUT`, then any catalogued metric it lacks."""
    known = set(CSV_LAYOUT)
    return list(CSV_LAYOUT) + [f.key for f in FIGURES if f.key not in known and f.in_csv]


def csv_header(column: str) -> str:
    if column.startswith("@"):
        return CSV_FIELDS[column]
    return BY_KEY[column].csv or column


def csv_format(column: str) -> str:
    if column in CSV_FORMATS:
        return CSV_FORMATS[column]
    if column.endswith(("_tflops", "_peak_fraction")):
        return ".4g"
    if column.startswith(("peak_mem_", "host_", "instr_")) and not column.startswith("host_share"):
        return ".0f"
    return ".3f"


# --- where figures cannot exist --------------------------------------------------------------
NO_DEVICE = "a CPU has no device kernels or GPU memory to measure"
NOT_COUNTED = "counted only with run --instructions or MHABENCH_SUITE=host (callgrind)"


def unavailable(device: str, instructions: bool = False, backends=BACKENDS) -> dict[str, str]:
    """``{metric key: reason}`` of the figures that cannot exist on ``device`` with a torch
    whose SDPA backends are ``backends`` (and the instruction counts, unless counted)."""
    out: dict[str, str] = {}
    cuda = str(device).startswith("cuda")
    for f in FIGURES:
        if f.on == "cuda" and not cuda:
            out[f.key] = NO_DEVICE
        elif f.family == "instructions" and not instructions:
            out[f.key] = NOT_COUNTED
    if cuda:
        for b in BACKENDS:
            if b not in backends:
                out[f"device_fast_{b}_us"] = f"this torch has no {b} SDPA backend"
    return out


def grouped(reasons: dict[str, str]) -> dict[str, list[str]]:
    """``{reason: [keys]}``, for printing a line per reason."""
    out: dict[str, list[str]] = {}
    for key, why in reasons.items():
        out.setdefault(why, []).append(key)
    return out


def markdown() -> str:
    """The catalogue as a Markdown table (docs/reference.md holds it; ``python -m
    mhabench.catalogue`` prints it)."""
    head = ("| figure | unit | better | path | role | gate family | asv benchmark | feed | "
            "where |\n|---|---|---|---|---|---|---|---|---|")
    rows = []
    for f in FIGURES:
        path = "/".join(f.pair) if f.pair else f.path or "-"
        feed = "-" if not f.asv else ("off" if f.feed is None else f"{f.feed:.0%}")
        where = {"any": "CPU, CUDA", "cpu": "CPU", "cuda": "CUDA"}[f.on] + (
            ", extras" if f.extra else "") + ("" if set(f.suites) >= {"full", "core"} else
                                              f", suite {'/'.join(f.suites)}")
        rows.append(f"| `{f.key}` | {f.unit} | {f.better} | {path} | {f.role} | "
                    f"{f.family or '-'} | {f'`{f.asv}`' if f.asv else '-'} | {feed} | {where} |")
    return head + "\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
