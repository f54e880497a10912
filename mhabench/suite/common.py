"""The asv suite's machinery: the grid asv records, one sweep per ``asv run`` shared by every
benchmark class, and the ``track_`` methods that read it (the pandas ``*_vb_common`` role).

The classes themselves are generated from :mod:`mhabench.catalogue` (:func:`classes`). What is
measured comes from the ``MHABENCH_*`` variables, parsed as ``mhabench run`` parses its flags
(:func:`mhabench.run.spec.suite_of_env`). Importing this module reads nothing and never exits;
asv's entry modules (``benchmarks/``) call :func:`mhabench.suite.entry`, which ends asv's
discovery in one line on a bad variable.

Nothing here imports torch or touches CUDA at import time: asv imports the suite in the process
it forks its workers from, and a CUDA context made before a fork breaks every worker. The
sweep runs in ``setup_cache``'s own process, through :func:`mhabench.run.execute.execute`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import catalogue as cat
from ..measure.config import SEED_AXES, Axes, ConfigError, Point
from ..run.spec import SuiteSpec, suite_of_env

#: asv parameter names, in the order of ``params`` (the reference's loop order).
PARAM_NAMES = ["batch_size", "seq_len", "embed_dim", "num_heads", "beta_b"]
#: Seconds per point a sweep may take, and at least, for ``setup_cache``'s timeout: a GPU seed
#: point takes well under a second; a CPU quick point minutes on 2 cores (its largest shapes).
SECONDS_PER_POINT = {"cpu": 300.0, "cuda": 10.0}
MIN_SETUP_TIMEOUT = 600.0
#: Seconds the instruction counts add, per point, to the sweep's timeout (callgrind, CPU).
INSTRUCTION_SECONDS = 60.0


@dataclass(frozen=True)
class Selection:
    """The grid asv records: its parameter axes and the points that are really measured."""

    spec: SuiteSpec
    axes: Axes                  # what asv's ``params`` are built from
    points: tuple[Point, ...]   # the measured subset of the axes' product
    dtype: str
    error: str = ""             # why the variables were refused (classes then have no params)

    @property
    def device(self) -> str:
        return self.spec.run.device

    @property
    def suite(self) -> str:
        return self.spec.suite

    @property
    def grid(self) -> str:
        return self.spec.run.grid or "default"

    @property
    def params(self) -> list[list[int]]:
        a = self.axes
        return [list(a.batch_sizes), list(a.seq_lens), list(a.embed_dims), list(a.num_heads),
                list(a.beta_bs)]

    @property
    def setup_timeout(self) -> float:
        per = SECONDS_PER_POINT["cuda" if self.device.startswith("cuda") else "cpu"]
        if self.spec.run.instructions:
            per += INSTRUCTION_SECONDS
        return max(MIN_SETUP_TIMEOUT, per * len(self.points))

    def label(self, batch_size, seq_len, embed_dim, num_heads, beta_b) -> str:
        """The :attr:`Point.label` the sweep files a parameter combination under (built by hand,
        so that combinations no point exists for still get a key the cache simply lacks)."""
        return (f"B{batch_size}-S{seq_len}-E{embed_dim}-H{num_heads}"
                f"-b{beta_b}-{self.dtype}-{self.device}")


def selection(environ=None) -> Selection:
    """The variables read into a Selection; ConfigError (one line) on a bad value."""
    s = suite_of_env(environ)
    run = s.run.resolve(cuda_available=False)  # the device is explicit here: cpu by default
    return Selection(s, run.grid.axes, run.points, run.spec.dtype)


def lenient_selection(environ=None) -> Selection:
    """:func:`selection`, or one that measures nothing and says why: what importing the suite
    builds its classes from, so that an import never fails."""
    try:
        return selection(environ)
    except ConfigError as exc:
        from ..run.spec import RunSpec
        return Selection(SuiteSpec(RunSpec(device="cpu")), SEED_AXES, (), "float32", str(exc))


def gpu_present() -> bool:
    """Whether this host has an NVIDIA GPU, read from the driver's device files: asking torch
    would initialise CUDA in the process asv forks its workers from."""
    import glob
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/proc/driver/nvidia/gpus/*"))


def config_of(benchmark_dir: Path) -> Path | None:
    """The asv config whose benchmarks these are: the one beside the benchmark folder whose
    ``benchmark_dir`` is that folder (asv runs discovery in a folder of its own and passes no
    ``ASV_*`` variable to it, so this is where it can be found)."""
    conf = benchmark_dir.resolve().parent / "asv.conf.json"
    try:
        with open(conf, encoding="utf-8") as fh:
            text = "\n".join(line for line in fh if not line.lstrip().startswith("//"))
        doc = json.loads(text)
        mine = (conf.parent / doc.get("benchmark_dir", "benchmarks")).resolve()
    except (OSError, ValueError, AttributeError):
        return None
    return conf if mine == benchmark_dir.resolve() else None


def check_results_dir(sel: Selection, benchmark_dir: Path) -> None:
    """At asv's discovery, refuse (ConfigError) a grid whose parameters differ from those the
    results dir's ``benchmarks.json`` holds: asv would replace them, and its report would then
    draw only the new grid's points. ``mhabench track`` checks its own dir (its runs file their
    records, ``MHABENCH_RECORD_DIR``), so this check is for asv runs of a config beside the
    benchmarks."""
    conf = None if sel.spec.record_dir else config_of(benchmark_dir)
    if conf is None:
        return
    try:
        with open(conf, encoding="utf-8") as fh:
            text = "\n".join(line for line in fh if not line.lstrip().startswith("//"))
        results_dir = conf.parent / (json.loads(text).get("results_dir") or "results")
        with open(results_dir / "benchmarks.json", encoding="utf-8") as fh:
            known = json.load(fh)
    except (OSError, ValueError, AttributeError):
        return  # no results yet (or not asv's layout): nothing to mix with
    want = [[repr(v) for v in axis] for axis in sel.params]
    for name, info in known.items():
        if isinstance(info, dict) and info.get("param_names") == PARAM_NAMES \
                and info.get("params") != want:
            raise ConfigError(
                f"{results_dir} holds results of another grid ({name} has other parameters "
                f"than {sel.grid!r}); use a results dir per grid family (asv would draw only "
                f"this grid's points)")


# --- the one sweep every benchmark reads -----------------------------------------------------
#: Where ``setup_cache`` files one JSON per point, under asv's cache directory (its working
#: directory, shared with the workers). Each worker reads only its own point's file.
POINTS_DIR = "mhabench-points"


def record_path(sel: Selection, environ=None) -> str | None:
    """Where the sweep files its full results (``mhabench run --json``'s layout), when
    ``MHABENCH_RECORD_DIR`` asks: ``<commit>-<environment>.json`` as asv names its own result
    file. An ``existing`` environment gets no commit from asv: ``existing-<environment>.json``,
    which ``mhabench track`` renames once asv is done."""
    env = os.environ if environ is None else environ
    if not sel.spec.record_dir:
        return None
    commit = env.get("ASV_COMMIT") or "existing"
    name = env.get("ASV_ENV_NAME") or "env"
    return os.path.join(sel.spec.record_dir, f"{commit}-{name}.json")


def journal_path(sel: Selection, environ=None) -> str:
    """Where the sweep journals: a path a rerun of the same asv run finds (the same config,
    environment, commit, record folder and selection), so that an interrupted ``asv run``
    resumes its finished points. Removed once a sweep ends well."""
    env = os.environ if environ is None else environ
    from ..measure.peak import cache_dir
    key = json.dumps([env.get("ASV_CONF_DIR"), env.get("ASV_ENV_NAME") or sys.executable,
                      env.get("ASV_COMMIT"),
                      sel.spec.record_dir, sel.suite, sel.spec.run.grid, sel.device, sel.dtype,
                      sel.spec.run.threads, sel.spec.run.instructions])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return str(cache_dir() / "journals" / f"asv-{digest}.jsonl")


class _Log:
    """What the sweep says, on stderr (``asv run --show-stderr`` shows it)."""

    def note(self, text: str) -> None:
        print(f"mhabench asv sweep: {text}", file=sys.stderr, flush=True)

    def started(self, meta, run, journal, todo) -> None:
        self.note(f"{len(run.points)} points of grid {run.grid.spec} on {run.spec.device} "
                  f"({todo} passes to measure); journal {journal}")

    def advanced(self, label, stage) -> None:
        pass


def run_sweep(sel: Selection) -> dict:
    """Measure every point of ``sel`` once; return plain Python types only.

    ``{"points": {label: {"status", "message", "metrics"}}, "unavailable": str, "meta"}``;
    ``unavailable`` is non-empty (and ``points`` empty) when the device cannot be used here
    (CUDA asked for, none present): every benchmark then fails, with that reason. No torch
    object may leak into the return value: unpickling one would import torch in each of asv's
    per-benchmark worker processes.
    """
    from ..measure.machine import require_device
    from ..run.execute import execute
    from ..run.journal import Outputs
    try:
        require_device(sel.device)
        run = sel.spec.run.resolve(cuda_available=sel.device.startswith("cuda"))
    except ConfigError as exc:
        return {"points": {}, "unavailable": str(exc), "meta": {"grid": sel.grid}}
    record = record_path(sel)
    outputs = Outputs(json=record)
    journal = journal_path(sel)
    log = _Log()
    try:
        out = execute(run, outputs, journal, resume=os.path.isfile(journal), reporter=log,
                      extra_meta={"suite": sel.suite})
    except ConfigError as exc:  # a stale journal of another run: start afresh
        log.note(f"journal not resumed ({exc})")
        out = execute(run, outputs, journal, reporter=log, extra_meta={"suite": sel.suite})
    if out.stopped:
        raise KeyboardInterrupt(f"sweep stopped by signal {out.stopped}; {journal} keeps its "
                                "finished points for the next asv run")
    if out.failure:
        raise RuntimeError(out.failure)
    try:
        os.unlink(journal)
    except OSError:
        pass
    points = {}
    for r in out.results:
        points[r.point.label] = {"status": r.status, "message": r.message,
                                 "metrics": {k: float(v) for k, v in r.metrics().items()}}
    meta = {k: out.meta.get(k) for k in ("torch", "torch_git", "variant", "mhabench_source",
                                          "device", "mhabench_grid", "seconds", "cost_s")}
    meta.update(dtype=sel.dtype, suite=sel.suite, points=len(points),
                host=out.meta.get("host_setup"))
    return {"points": points, "unavailable": "", "meta": json.loads(json.dumps(meta))}


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
        raise RuntimeError(cache["unavailable"])
    try:
        with open(os.path.join(cache["dir"], label + ".json")) as f:
            entry = json.load(f)
    except FileNotFoundError:
        raise NotImplementedError(f"{label} is not in the grid") from None
    if entry["status"] != "ok":
        raise RuntimeError(f"{label}: {entry['status']}: {entry['message']}")
    return entry["metrics"]


def sweep_to_files(sel: Selection, directory: str) -> dict:
    """``setup_cache``'s body, kept out of it: asv re-reads and tokenizes the source of
    ``setup_cache``, ``setup`` and the method in every one of its (method x point) workers."""
    if sel.error:
        raise ConfigError(sel.error)
    out = run_sweep(sel)
    bad = sum(v["status"] != "ok" for v in out["points"].values())
    print(f"mhabench asv sweep: grid {sel.grid}, {sel.device} {sel.dtype}: "
          f"{len(out['points'])} points, {bad} not ok; {out['meta']}"
          + (f"; unavailable: {out['unavailable']}" if out["unavailable"] else ""),
          file=sys.stderr)
    return write_points(out, directory)


def track_method(fig: cat.Figure):
    """The ``track_`` method of one catalogued figure: its value at the point (NaN, shown n/a,
    where not measured)."""
    def track(self, cache, *params):
        return fig.value(self.metrics)
    track.unit, track.version, track.__doc__ = fig.asv_unit, fig.version, fig.doc
    track.metric = fig.key
    return track


def make_base(sel: Selection) -> type:
    """The base of every benchmark class: the grid's parameters and one shared sweep.

    asv keys ``setup_cache`` by where it is defined, so defining it here, once, makes every
    class share a single sweep per ``asv run``: one CUDA context, one pass over the grid.
    """
    class SweptPoint:
        params = sel.params
        param_names = PARAM_NAMES
        timeout = 300  # a worker reads one small file and returns one number

        def setup_cache(self):
            return sweep_to_files(sel, POINTS_DIR)

        setup_cache.timeout = sel.setup_timeout

        def setup(self, cache, *params):
            self.metrics = read_point(cache, sel.label(*params))

    return SweptPoint


def classes(module: str, sel: Selection, base: type) -> dict[str, type]:
    """The benchmark classes of asv entry module ``module`` for ``sel``: each catalogued figure
    of that module that exists for the selection's device and suite, as a ``track_`` method."""
    out = {}
    for name, figs in cat.asv_classes(module).items():
        body = {"__doc__": cat.CLASS_DOCS.get(f"{module}.{name}", ""),
                "__module__": f"benchmarks.{module}"}
        for f in figs:
            present = f.exists(sel.device, sel.suite, sel.spec.run.extras) or (
                f.family == "instructions" and sel.spec.run.instructions)
            if present:
                body[f.method] = track_method(f)
        out[name] = type(name, (base,), body)
    return out

