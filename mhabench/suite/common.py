"""What the asv suite measures, chosen by environment variables (the pandas ``*_vb_common`` role).

Nothing here imports torch or touches CUDA: asv imports this module in the process it forks its
workers from, and a CUDA context made before a fork breaks every worker. Only
:mod:`mhabench.measure.config` (pure Python) is used at import time.

Environment variables (read once, at import):

``MHABENCH_GRID``
    ``smoke`` (default: 8 tiny points, fit for a CPU), ``seed`` (the reference's 1280 points; what
    GPU machines should record), ``quick`` (32 of the seed points; the parameter axes stay those
    of ``seed``, the other 1248 combinations show as n/a), or a custom grid
    ``custom:batch=2,4;seq=8;embed=12;heads=3,4;b=1`` (keys ``batch``, ``seq``, ``embed``,
    ``heads``, ``b`` or the parameter names; a key left out keeps the smoke grid's values;
    combinations whose embed dim is not divisible by the head count show as n/a).
    The default is ``smoke`` even on a GPU machine because choosing it from
    ``torch.cuda.is_available()`` would initialise CUDA at import time.
``MHABENCH_DEVICE``
    ``cpu`` (default), ``cuda`` or ``cuda:N``.
``MHABENCH_DTYPE``
    ``fp16``, ``bf16`` or ``fp32``; default fp16 on CUDA, fp32 on the CPU.
``MHABENCH_SETUP_TIMEOUT``
    Seconds allowed for the one sweep of the grid (``setup_cache``); default by grid below.
``MHABENCH_SUITE``
    ``full`` (default): every figure. ``core``: the timing, speedup (with its noise and round
    counts), host-share and fast-vs-slow error figures only (20 methods instead of 29), swept
    without the extras (fp32 drift, peak memory, SDPA backend split, peak calibration). asv pays
    one process per (method x point), several ms each, so on the seed grid the method count, not
    the sweep, sets a run's cost; ``core`` is the per-build profile. Its runs leave the other
    figures unrecorded for that build.
    ``host``: the host-work figures only (``mhabench/suite/host.py``: exact host-work counts and
    callgrind instruction counts per call, :mod:`mhabench.measure.instructions`), on a small host-bound
    grid such as ``smoke``, CPU; needs valgrind (without it the instruction figures are n/a).
    One valgrind process counts the whole grid after a sweep without the extras.
``MHABENCH_THREADS``
    torch's intra-op threads in the sweep; default 1 on a CPU (as ``torch.utils.benchmark``),
    torch's own on CUDA. Set it in the config's ``matrix`` (``env_nobuild``) rather than the
    shell, so that it is one of the environment's parameters asv shows on its graphs (the
    generated ``track`` config does). The threads, cores and load average of each sweep are
    printed with its summary line.

Figures that cannot exist on the selected device (kernel time, host share, GPU memory on a CPU)
are not discovered, as the ``core`` suite does for the extras; on a CPU the efficiency figures
are the wall-time ones instead of the kernel-time ones.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import sys
from dataclasses import dataclass

from mhabench.measure.config import (SEED_AXES, SMOKE_AXES, Axes, ConfigError, Point,
                                     canonical_device, canonical_dtype, named_grid,
                                     parse_int_list)

GRID_ENV = "MHABENCH_GRID"
DEVICE_ENV = "MHABENCH_DEVICE"
DTYPE_ENV = "MHABENCH_DTYPE"
TIMEOUT_ENV = "MHABENCH_SETUP_TIMEOUT"
SUITE_ENV = "MHABENCH_SUITE"
THREADS_ENV = "MHABENCH_THREADS"
SUITES = ("full", "core", "host")

#: asv parameter names, in the order of ``params`` (the reference's loop order).
PARAM_NAMES = ["batch_size", "seq_len", "embed_dim", "num_heads", "beta_b"]

#: Seconds for the whole sweep in ``setup_cache`` per grid (a GPU sweep of ``seed`` takes a few
#: minutes; a CPU one of ``smoke`` a few seconds, of ``quick`` more than ten minutes on 2 cores:
#: its largest points take minutes each there). Custom grids get the seed allowance.
SETUP_TIMEOUTS = {"seed": 3600, "quick": 7200, "smoke": 600, "custom": 3600}
#: Seconds the host suite adds for its valgrind process (smoke: ~2.5 min on 2 idle cores).
HOST_TIMEOUT = 1800

#: ``custom:`` keys -> Axes field.
CUSTOM_KEYS = {
    "batch": "batch_sizes", "batch_size": "batch_sizes",
    "seq": "seq_lens", "seq_len": "seq_lens",
    "embed": "embed_dims", "embed_dim": "embed_dims",
    "heads": "num_heads", "num_heads": "num_heads",
    "b": "beta_bs", "beta_b": "beta_bs",
}


@dataclass(frozen=True)
class Selection:
    """The grid asv records: its parameter axes and the points that are really measured."""

    grid: str                   # "seed", "quick", "smoke" or "custom:..."
    device: str
    dtype: str
    axes: Axes                  # what asv's ``params`` are built from (never changes per grid)
    points: tuple[Point, ...]   # the measured subset of the axes' product
    setup_timeout: float
    suite: str = "full"         # "core": no extras swept, no extra figures discovered
    threads: int | None = None  # MHABENCH_THREADS (None: the device's default)

    @property
    def extras(self) -> bool:
        return self.suite == "full"

    @property
    def params(self) -> list[list[int]]:
        a = self.axes
        return [list(a.batch_sizes), list(a.seq_lens), list(a.embed_dims), list(a.num_heads),
                list(a.beta_bs)]

    def label(self, batch_size, seq_len, embed_dim, num_heads, beta_b) -> str:
        """The :attr:`Point.label` the sweep files a parameter combination under.

        Built by hand (not through :class:`Point`) so that combinations no point exists for
        (embed not divisible by heads) still get a key, which the cache simply lacks.
        """
        return (f"B{batch_size}-S{seq_len}-E{embed_dim}-H{num_heads}"
                f"-b{beta_b}-{self.dtype}-{self.device}")


def parse_custom(spec: str) -> Axes:
    """``batch=2,4;seq=8;heads=3,4`` -> Axes; keys left out keep the smoke grid's values."""
    values: dict[str, tuple[int, ...]] = {}
    for item in (t.strip() for t in spec.split(";")):
        if not item:
            continue
        key, sep, text = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in CUSTOM_KEYS:
            raise ConfigError(f"{GRID_ENV}: bad item {item!r} in custom grid "
                              f"(use key=N,N,... with keys batch, seq, embed, heads, b)")
        field = CUSTOM_KEYS[key]
        if field in values:
            raise ConfigError(f"{GRID_ENV}: {key!r} given twice in custom grid")
        values[field] = parse_int_list(text, f"{GRID_ENV} {key}")
    a = SMOKE_AXES
    return Axes(values.get("batch_sizes", a.batch_sizes), values.get("seq_lens", a.seq_lens),
                values.get("embed_dims", a.embed_dims), values.get("num_heads", a.num_heads),
                values.get("beta_bs", a.beta_bs))


def _points_of(axes: Axes, dtype: str, device: str) -> list[Point]:
    """The product, leaving out shapes MultiheadAttention cannot be built with (E % H != 0)."""
    return [Point(B, S, E, H, b, dtype=dtype, device=device)
            for B, S, E, H, b in itertools.product(axes.batch_sizes, axes.seq_lens,
                                                   axes.embed_dims, axes.num_heads, axes.beta_bs)
            if E % H == 0]


def selection(environ=None) -> Selection:
    """Read the environment variables above; raise ConfigError (one line) on a bad value."""
    env = os.environ if environ is None else environ
    device = canonical_device(env.get(DEVICE_ENV) or "cpu")
    dtype = canonical_dtype(env.get(DTYPE_ENV) or ("fp16" if device.startswith("cuda") else "fp32"))
    grid = (env.get(GRID_ENV) or "smoke").strip()
    if grid.lower().startswith("custom:"):
        axes = parse_custom(grid.split(":", 1)[1])
        points = _points_of(axes, dtype, device)
        if not points:
            raise ConfigError(f"{GRID_ENV}: custom grid {grid!r} has no valid point "
                              "(embed_dim must be divisible by num_heads)")
        kind = "custom"
    else:
        grid = grid.lower()
        points = named_grid(grid, dtype, device)  # raises ConfigError on an unknown name
        axes = SMOKE_AXES if grid == "smoke" else SEED_AXES
        kind = grid
    timeout_text = env.get(TIMEOUT_ENV)
    if timeout_text:
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(f"{TIMEOUT_ENV}: {timeout_text!r} is not a number") from None
        if not timeout > 0:
            raise ConfigError(f"{TIMEOUT_ENV} must be > 0, got {timeout_text!r}")
    else:
        timeout = SETUP_TIMEOUTS[kind]
    suite = (env.get(SUITE_ENV) or "full").strip().lower()
    if suite not in SUITES:
        raise ConfigError(f"{SUITE_ENV}: unknown suite {env.get(SUITE_ENV)!r} "
                          f"(use {' or '.join(SUITES)})")
    if suite == "host" and not timeout_text:
        timeout += HOST_TIMEOUT
    from mhabench.measure.host_setup import parse_threads
    threads = parse_threads(env.get(THREADS_ENV), THREADS_ENV)
    return Selection(grid, device, dtype, axes, tuple(points), timeout, suite, threads)


def run_sweep(sel: Selection, journal: str | None = None) -> dict:
    """Measure every point of ``sel`` once; return plain Python types only.

    ``{"points": {label: {"status", "message", "metrics": {name: float}}}, "unavailable": str,
    "meta": {...}}``. ``unavailable`` is non-empty (and ``points`` empty) when the device cannot be
    used here (CUDA asked for, none present): every benchmark then shows n/a.
    No torch object may leak into the return value: unpickling one would import torch in each of
    asv's per-benchmark worker processes.
    """
    import time

    from mhabench.measure import sweep as sw  # imports torch: only here, in setup_cache's own process
    from mhabench.measure.availability import how_measured, not_available
    from mhabench.measure.protocol import Protocol

    from mhabench.measure import host_setup

    t0 = time.perf_counter()
    try:
        sw.require_device(sel.device)  # may initialise CUDA: fine in setup_cache's process
        host = host_setup.apply(sel.threads or host_setup.default_threads(sel.device))
    except ConfigError as exc:
        return {"points": {}, "unavailable": str(exc), "meta": {"grid": sel.grid}}
    proto = Protocol()
    # The peak is cached per device, dtype and torch; only the extras' efficiency figures use it.
    peak = sw.calibrate_peak(sel.device, sel.dtype) if sel.extras else {"tflops": math.nan}
    entries, cost = supervised_sweep(sel, proto, peak, journal, threads=host["threads"])
    instructions = _count_instructions(entries, cost) if sel.suite == "host" else {}
    points = {}
    for e in entries:
        doc = e["doc"]
        metrics = {str(k): math.nan if v is None else float(v)
                   for k, v in (doc.get("metrics") or {}).items()}
        metrics.update(instructions.get(e["label"], {}))
        points[e["label"]] = {"status": str(doc["status"]), "message": str(doc["message"]),
                              "metrics": metrics}
    meta = {"grid": sel.grid, "device": sel.device, "dtype": sel.dtype, "suite": sel.suite,
            "points": len(entries),
            "seconds": round(time.perf_counter() - t0, 3),
            "cost_s": {str(k): float(v) for k, v in cost.items()},
            "peak": {str(k): v if isinstance(v, (str, bool)) else float(v) for k, v in peak.items()},
            "n/a": not_available(sel.device, instructions=sel.suite == "host"),
            "how_measured": how_measured(sel.device),
            "host": {"threads": host["threads"], "affinity": list(host["affinity"]),
                     "load_avg": list(host_setup.load_average())}}
    return {"points": points, "unavailable": "", "meta": meta}


RECORD_ENV = "MHABENCH_RECORD_DIR"
JOURNAL = "mhabench-journal.jsonl"


def supervised_sweep(sel: Selection, proto, peak: dict, journal: str | None = None,
                     threads: int | None = None) -> tuple[list[dict], dict]:
    """The grid measured in worker processes (:mod:`mhabench.run.supervise`), each finished point
    journaled (at ``journal``, else in a temporary folder): a crash or hang at one point fails that point only.
    With ``MHABENCH_RECORD_DIR`` set, the full results (``mhabench run --json``'s layout) are
    written there as :func:`record_name` says. Returns (entries, cost split)."""
    from mhabench.run import durable
    from mhabench.measure import sweep as sw
    from mhabench.run.journal import Outputs
    from mhabench.run.supervise import WorkerSpec
    meta = sw.run_meta(sel.device, proto, sel.grid)
    meta.update(extras=sel.extras, suite=sel.suite, peak=peak, cost_s={})
    record = os.environ.get(RECORD_ENV)
    out = Outputs(json=os.path.join(record, record_name()) if record else None)
    spec = WorkerSpec(proto, extras=sel.extras, peak_tflops=peak["tflops"], threads=threads)
    if journal is None:
        import tempfile
        with tempfile.TemporaryDirectory(prefix="mhabench-") as tmp:
            done = durable.run(sel.points, spec, meta, sel.dtype, out, os.path.join(tmp, JOURNAL))
    else:
        done = durable.run(sel.points, spec, meta, sel.dtype, out, journal)
    if done.stopped:
        raise KeyboardInterrupt(f"sweep stopped by signal {done.stopped}")
    return done.entries, meta["cost_s"]


def _asv_parent() -> tuple[list[str], str] | None:
    """(argv, working directory) of the ``asv`` process that started this one (Linux
    ``/proc``): an ``existing`` environment passes none of asv's ``ASV_*`` variables."""
    parent = f"/proc/{os.getppid()}"
    try:
        with open(f"{parent}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
        cwd = os.readlink(f"{parent}/cwd")
    except OSError:
        return None
    return (argv, cwd) if any(a == "asv" or a.endswith("/asv") for a in argv) else None


def _option(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _asv_config_path(env) -> str | None:
    """The asv config of the run: ``ASV_CONF_DIR`` (set in asv's own environments), else the
    asv process's ``--config`` and directory. None where neither is known."""
    if env.get("ASV_CONF_DIR"):
        return os.path.join(env["ASV_CONF_DIR"], "asv.conf.json")
    parent = _asv_parent()
    if parent is None:
        return None
    argv, cwd = parent
    return os.path.join(cwd, _option(argv, "--config") or "asv.conf.json")


def record_name(env=None) -> str:
    """``<commit>-<environment>.json``, as asv names its result file: ``ASV_COMMIT`` and
    ``ASV_ENV_NAME``, else (an ``existing`` environment) the asv process's
    ``--set-commit-hash`` and asv's name for this interpreter; ``unknown``/``env`` if neither."""
    env = os.environ if env is None else env
    commit, name = env.get("ASV_COMMIT"), env.get("ASV_ENV_NAME")
    parent = None if commit and name else _asv_parent()
    if parent is not None:
        commit = commit or _option(parent[0], "--set-commit-hash")
        name = name or "existing-py" + sys.executable.replace(os.sep, "_")
    return f"{commit or 'unknown'}-{name or 'env'}.json"


def check_results_dir(sel: Selection, environ=None, conf: str | None = None) -> None:
    """At asv's discovery, refuse (ConfigError) a grid whose parameters differ from those the
    results dir's ``benchmarks.json`` holds: asv would replace them, and its report would then
    draw only the new grid's points. Only discovery checks (it runs before asv rewrites
    ``benchmarks.json``; asv's later processes see the new one)."""
    env = os.environ if environ is None else environ
    if conf is None:
        if sys.argv[1:2] != ["discover"]:
            return
        conf = _asv_config_path(env)
    if not conf:
        return
    try:
        with open(conf, encoding="utf-8") as fh:
            text = "\n".join(line for line in fh if not line.lstrip().startswith("//"))
        results_dir = os.path.join(os.path.dirname(conf),
                                   json.loads(text).get("results_dir") or "results")
        with open(os.path.join(results_dir, "benchmarks.json"), encoding="utf-8") as fh:
            known = json.load(fh)
    except (OSError, ValueError, AttributeError):
        return  # no results yet (or not asv's layout): nothing to mix with
    want = [[repr(v) for v in axis] for axis in sel.params]
    for name, info in known.items():
        if isinstance(info, dict) and info.get("param_names") == PARAM_NAMES \
                and info.get("params") != want:
            raise ConfigError(
                f"{results_dir} holds results of another grid ({name} has other parameters "
                f"than {GRID_ENV}={sel.grid!r}); use a results dir per grid family (asv would "
                f"draw only this grid's points)")


def _selection_or_exit() -> Selection:
    """The selection, checked against the results dir; a bad one ends discovery in one line."""
    try:
        sel = selection()
        check_results_dir(sel)
    except ConfigError as exc:
        print(f"mhabench: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return sel


def _count_instructions(entries: list[dict], cost: dict) -> dict[str, dict[str, float]]:
    """The host suite's instruction counts, one valgrind process for the grid (after the
    supervised sweep): ``{label: {"instr_<path>": count}}``. Where valgrind or the device
    rules them out, every point says why and the figures are n/a."""
    from mhabench.measure import instructions as ins
    from mhabench.run.journal import results_of
    results = results_of(entries)
    try:
        cost["instructions"] = ins.add_counts(results)["seconds"]
    except ConfigError as exc:
        for e in entries:
            e["doc"]["message"] = f"{e['doc']['message']}; instructions: {exc}".lstrip("; ")
        return {}
    return {r.point.label: {k: v for k, v in r.metrics().items() if k.startswith("instr_")}
            for r in results}


# --- the one sweep every benchmark class reads ----------------------------------------------------
SELECTION = _selection_or_exit()

#: Where ``setup_cache`` files one JSON per point, under asv's cache directory (its working
#: directory, shared with the workers). Each worker reads only its own point's file: unpickling
#: the whole sweep in every one of the (method x point) workers cost ~8 ms each.
POINTS_DIR = "mhabench-points"


US = "microseconds"
RATIO = "ratio"
BYTES = "bytes"
COUNT = "count"


def figure(key: str, unit: str, doc: str, invert: bool = False, version: str = "1",
           extra: bool = False, on: str = "any", host: str = "no"):
    """A track_ method returning one metric of :meth:`mhabench.measure.results.Result.metrics`.

    ``invert`` tracks 1 / the metric (a speedup becomes fast / slow, lower is better). The
    explicit ``version`` keeps a metric's history when this code changes; bump it only when the
    meaning of the number changes. An ``extra`` figure is None (not a benchmark asv discovers)
    in the ``core`` suite. ``on="cuda"`` (``"cpu"``): a figure that exists only on that kind of
    device, not discovered on the other.
    ``host="only"``: a figure of the ``host`` suite only; ``host="also"``: of every suite, the
    ``host`` suite included; ``"no"``: not of the ``host`` suite.
    """
    if extra and not SELECTION.extras:
        return None
    if (host == "only" and SELECTION.suite != "host") or (host == "no" and SELECTION.suite == "host"):
        return None
    if on not in ("any", "cpu", "cuda"):
        raise ValueError(f"on={on!r}")
    if on != "any" and SELECTION.device.startswith("cuda") != (on == "cuda"):
        return None

    def track(self, cache, *params):
        return self.inverse(key) if invert else self.value(key)
    track.unit, track.version, track.__doc__ = unit, version, doc
    track.metric = key
    return track


def write_points(out: dict, directory: str) -> dict:
    """File each point of a :func:`run_sweep` result; return the small value asv pickles."""
    os.makedirs(directory, exist_ok=True)
    for label, entry in out["points"].items():
        with open(os.path.join(directory, label + ".json"), "w") as f:
            json.dump(entry, f)
    return {"dir": os.path.abspath(directory), "unavailable": out["unavailable"],
            "meta": out["meta"]}


def read_point(cache: dict, label: str) -> dict:
    """One point's metrics, or the asv outcome for it: n/a (NotImplementedError) or failed."""
    if cache["unavailable"]:
        raise NotImplementedError(cache["unavailable"])
    try:
        with open(os.path.join(cache["dir"], label + ".json")) as f:
            entry = json.load(f)
    except FileNotFoundError:
        raise NotImplementedError(f"{label} is not in grid {SELECTION.grid}") from None
    if entry["status"] != "ok":
        raise RuntimeError(f"{label}: {entry['status']}: {entry['message']}")
    return entry["metrics"]


def sweep_to_files(sel: Selection, directory: str) -> dict:
    """``setup_cache``'s body, kept out of it: asv re-reads and tokenizes the source of
    ``setup_cache``, ``setup`` and the method in every one of its (method x point) workers."""
    out = run_sweep(sel, JOURNAL)
    bad = [f"{k}: {v['status']}" for k, v in out["points"].items() if v["status"] != "ok"]
    from mhabench.measure.host_setup import busy_warning, noise_warning
    for line in filter(None, [busy_warning({**out["meta"].get("host", {}),
                                            "cpu_count": os.cpu_count() or 1}),
                              noise_warning([p["metrics"].get("speedup_rel_iqr")
                                             for p in out["points"].values()])]):
        print(f"mhabench asv sweep: {line}", file=sys.stderr)
    print(f"mhabench asv sweep: grid {sel.grid}, {sel.device} {sel.dtype}: "
          f"{len(out['points'])} points, {len(bad)} not ok; {out['meta']}"
          + (f"; unavailable: {out['unavailable']}" if out["unavailable"] else ""),
          file=sys.stderr)
    return write_points(out, directory)


class SweptPoint:
    """Base of every benchmark class: the grid's parameters and one shared sweep.

    asv keys ``setup_cache`` by where it is defined, so defining it here, once, makes every
    subclass (in any module) share a single sweep per ``asv run``: one CUDA context, one pass
    over the grid. Subclasses only add ``track_`` methods that read :meth:`value`.
    """

    params = SELECTION.params
    param_names = PARAM_NAMES
    timeout = 300  # a worker reads one small file and returns one number

    def setup_cache(self):
        return sweep_to_files(SELECTION, POINTS_DIR)

    setup_cache.timeout = SELECTION.setup_timeout

    def setup(self, cache, *params):
        self.metrics = read_point(cache, SELECTION.label(*params))

    def value(self, name: str) -> float:
        """The figure, or NaN where it was not measured (asv shows NaN as n/a, not failed)."""
        return float(self.metrics.get(name, math.nan))

    def inverse(self, name: str) -> float:
        """1 / a speedup: the fast path's time over the slow path's (lower is better)."""
        v = self.value(name)
        return 1.0 / v if v and math.isfinite(v) else math.nan
