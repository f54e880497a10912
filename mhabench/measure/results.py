"""One point's result: the record it is kept as, and the figures, JSON entry and CSV row read
off that record.

A point flows down the layers once: the worker measures a :class:`Result`, which travels and is
journaled as its record (:meth:`Result.record`, versioned); the run's JSON entry
(:meth:`Result.doc`), its CSV row (:func:`csv_row`), its table row and the values asv stores
are all derived from it, with the figures' names and formats taken from
:mod:`mhabench.catalogue`.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field, fields

from .. import catalogue as cat
from . import flops as fl
from .config import Point
from .peak import fraction as peak_fraction
from .stats import iqr, median, ratios

BACKENDS, PATHS = cat.BACKENDS, cat.PATHS
#: The record's format: a journal line, the JSON's entry and the CSV row are all read off it.
RECORD_VERSION = 2
OK, MISMATCH, NO_FASTPATH, ERROR = "ok", "mismatch", "no_fastpath", "error"
#: Stages of a point: ``wall`` once its wall pass is done (correctness, wall rounds, fp32
#: drift); ``done`` once its counts pass is too (device time, host work, memory).
WALL, DONE = "wall", "done"


@dataclass
class Result:
    """Everything measured at one point. ``rounds`` holds the raw per-round µs per call."""

    point: Point
    status: str = OK
    message: str = ""
    stage: str = DONE
    padding: float = math.nan
    max_abs_err: float = math.nan
    fast_path: bool = False
    sdpa_backend: str = ""  # the SDPA backend whose kernels the fast path ran (CUDA only)
    rounds: dict[str, list[float]] = field(default_factory=dict)
    window_calls: dict[str, int] = field(default_factory=dict)  # calls behind each round's sample
    #: host speed before and after the rounds (interleaved: before and after each round kept)
    host_probe_us: list[float] = field(default_factory=list)
    retimed: int = 0  # times the point was timed again, its probe having read the slow state
    rounds_left_out: int = 0  # interleaved rounds whose probes read the host's slow state
    device_calls: dict[str, list[float]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)   # real tokens per row: the useful FLOPs
    peak_tflops: float = math.nan                        # the device's calibrated matmul peak
    peak_mem: dict[str, float] = field(default_factory=dict)  # bytes per call above the baseline
    max_abs_err_fp32: float = math.nan                   # fast vs the fp32 math reference
    #: per path, exact host-work counts per call (mhabench.measure.hostwork.summary): kinds, ``ops``
    host_work: dict[str, dict] = field(default_factory=dict)
    instructions: dict[str, float] = field(default_factory=dict)  # host instructions per call

    # --- derived figures -------------------------------------------------------------------
    @property
    def timed(self) -> bool:
        return self.status in (OK, MISMATCH) and bool(self.rounds)

    def wall_us(self, path: str) -> float:
        return median(self.rounds.get(path, []))

    def wall_iqr_us(self, path: str) -> float:
        return iqr(self.rounds.get(path, []))

    def speedup(self, slow: str = "slow") -> float:
        """Median over rounds of slow/fast: pairs a round's fast window with its own slow window."""
        if slow not in self.rounds or "fast" not in self.rounds:
            return math.nan
        return median(ratios(self.rounds[slow], self.rounds["fast"]))

    def speedup_rel_iqr(self, slow: str = "slow", device: bool = False) -> float:
        """IQR / median of the paired per-round (per-call, for device) ratios slow/fast.

        The noise of one point's speedup as this run saw it: what a regression gate must exceed.
        """
        samples = self.device_calls if device else self.rounds
        if slow not in samples or "fast" not in samples:
            return math.nan
        r = ratios(samples[slow], samples["fast"])
        return _div(iqr(r), median(r))

    def device_us(self, path: str) -> float:
        return median(self.device_calls.get(path, []))

    def device_speedup(self, slow: str = "slow") -> float:
        return _div(self.device_us(slow), self.device_us("fast")) if self.device_calls else math.nan

    def host_share(self, path: str) -> float:
        """Share of the wall time not spent in kernels: 1 - device / wall."""
        return 1.0 - _div(self.device_us(path), self.wall_us(path)) if self.device_calls else math.nan

    def useful_flops(self) -> float:
        """FLOPs on the real tokens (NaN until the lengths are known)."""
        p = self.point
        return float(fl.useful_flops(self.lengths, p.embed_dim, p.num_heads)) if self.lengths else math.nan

    def tflops(self, path: str, device: bool = False, useful: float | None = None) -> float:
        """Useful TFLOP/s of ``path``: useful FLOPs (``useful``, if the caller has them) over
        its median wall (or kernel) time.

        Every path is credited with the useful FLOPs only, so the figures compare directly:
        the padded paths' wasted work shows as a lower rate.
        """
        us = self.device_us(path) if device else self.wall_us(path)
        return fl.tflops(self.useful_flops() if useful is None else useful, us)

    def metrics(self) -> dict[str, float]:
        """Every catalogued figure as a float (NaN where not measured): what asv tracks, the
        table shows and the JSON's ``metrics`` holds.

        Cached: the key, the repr of everything the figures are computed from, changes with any
        in-place change (a sample, a count), and costs a fraction of a tuple built in Python.
        """
        key = repr((self.point, self.status, self.padding, self.max_abs_err, self.rounds,
                    self.device_calls, self.lengths, self.peak_tflops, self.peak_mem,
                    self.max_abs_err_fp32, self.host_work, self.instructions))
        if getattr(self, "_metrics_key", None) != key:
            self._metrics, self._metrics_key = self._compute_metrics(), key
        return dict(self._metrics)

    def _compute_metrics(self) -> dict[str, float]:
        m = {"padding": self.padding, "max_abs_err": self.max_abs_err}
        for p in PATHS:
            m[f"wall_{p}_us"] = self.wall_us(p)
            m[f"wall_{p}_iqr_us"] = self.wall_iqr_us(p)
            m[f"device_{p}_us"] = self.device_us(p)
            m[f"host_share_{p}"] = self.host_share(p)
        for b in BACKENDS:  # the fast call with one SDPA backend allowed alone
            m[f"device_fast_{b}_us"] = self.device_us(f"fast@{b}")
        m["speedup"] = self.speedup("slow")
        m["speedup_fair"] = self.speedup("slow_fair")
        m["device_speedup"] = self.device_speedup("slow")
        m["device_speedup_fair"] = self.device_speedup("slow_fair")
        for name, slow in (("speedup", "slow"), ("speedup_fair", "slow_fair")):
            m[f"{name}_rel_iqr"] = self.speedup_rel_iqr(slow)
            m[f"device_{name}_rel_iqr"] = self.speedup_rel_iqr(slow, device=True)
        # the sample counts behind the medians: what a standard error of one record needs
        m["wall_rounds"] = float(len(self.rounds.get("fast", [])))
        m["device_rounds"] = float(len(self.device_calls.get("fast", []))) or math.nan
        m.update(self._efficiency_metrics())
        m.update(self._host_work_metrics())
        m.update({f"instr_{p}": float(self.instructions.get(p, math.nan)) for p in PATHS})
        return {k: float(m[k]) for k in cat.BY_KEY}

    def _efficiency_metrics(self) -> dict[str, float]:
        """FLOPs, useful TFLOP/s and share of the peak per path (wall- and kernel-time based),
        peak memory per path, and the error against the fp32 reference."""
        p = self.point
        useful = self.useful_flops()  # once: every rate below divides it
        m = {"useful_flops": useful,
             "padded_flops": float(fl.padded_flops(p.batch_size, p.seq_len, p.embed_dim, p.num_heads)),
             "peak_tflops": self.peak_tflops, "max_abs_err_fp32": self.max_abs_err_fp32}
        for path in PATHS:
            for base, device in (("wall", False), ("device", True)):
                rate = self.tflops(path, device, useful)
                m[f"{base}_{path}_tflops"] = rate
                m[f"{base}_{path}_peak_fraction"] = peak_fraction(rate, self.peak_tflops)
            m[f"peak_mem_{path}_bytes"] = float(self.peak_mem.get(path, math.nan))
        return m

    def _host_work_metrics(self) -> dict[str, float]:
        """``host_{path}_{kind}``: exact counts per call (NaN where not counted, or a byte count
        the profiler did not report)."""
        m = {}
        for p in PATHS:
            counts = self.host_work.get(p, {})
            for k in cat.PROFILED_KINDS + ("bytecodes",):
                v = counts.get(k)
                m[f"host_{p}_{k}"] = float(v) if v is not None and v >= 0 else math.nan
            m[f"host_{p}_copied_bytes"] = m[f"host_{p}_h2d_bytes"] + m[f"host_{p}_d2h_bytes"]
        return m

    # --- the record and what is read off it ---------------------------------------------------
    def record(self) -> dict:
        """Every field as plain JSON types, versioned: what a journal line and a worker's
        message carry, and what :meth:`of_record` reads back."""
        out = {f.name: (asdict(self.point) if f.name == "point" else getattr(self, f.name))
               for f in fields(self)}
        out["v"] = RECORD_VERSION
        return out

    @classmethod
    def of_record(cls, doc: dict) -> "Result":
        """A Result from :meth:`record` (or from a run JSON's entry, :meth:`doc`, whose samples
        are ``rounds_us`` and ``device_calls_us``): every field present is taken, the others keep
        their defaults; a float field stored as null is NaN again."""
        doc = dict(doc)
        for alias, name in (("rounds_us", "rounds"), ("device_calls_us", "device_calls")):
            if alias in doc and name not in doc:
                doc[name] = doc[alias]
        kwargs = {}
        for f in fields(cls):
            if f.name == "point" or f.name not in doc:
                continue
            v = doc[f.name]
            kwargs[f.name] = math.nan if v is None and isinstance(f.default, float) else v
        return cls(Point(**doc["point"]), **kwargs)

    def doc(self) -> dict:
        """The run JSON's entry for this point (``mhabench run --json``)."""
        return {"point": asdict(self.point), "label": self.point.label, "status": self.status,
                "message": self.message, "fast_path": self.fast_path,
                "sdpa_backend": self.sdpa_backend,
                "metrics": {k: _json_num(v) for k, v in self.metrics().items()},
                "lengths": list(self.lengths), "rounds_us": self.rounds,
                "window_calls": self.window_calls, "host_probe_us": self.host_probe_us,
                "retimed": self.retimed, "rounds_left_out": self.rounds_left_out,
                "device_calls_us": self.device_calls,
                "host_work": self.host_work, "instructions": self.instructions}


def _div(a: float, b: float) -> float:
    """a / b, NaN where b is zero or either is missing (a point without kernels, say)."""
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def _json_num(v: float):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


# --- the CSV ---------------------------------------------------------------------------------
def _cell(v, fmt: str) -> str:
    return "" if not isinstance(v, (int, float)) or not math.isfinite(v) else format(v, fmt)


def csv_row(r: Result) -> list[str]:
    """The point's CSV cells, in :func:`mhabench.catalogue.csv_columns` order."""
    p, m = r.point, r.metrics()
    own = {"@dtype": f"torch.{p.dtype}", "@batch_size": str(p.batch_size),
           "@seq_len": str(p.seq_len), "@num_heads": str(p.num_heads),
           "@embed_dim": str(p.embed_dim), "@fast_path": "yes" if r.fast_path else "no",
           "@sdpa_backend": r.sdpa_backend, "@beta_b": str(p.beta_b), "@status": r.status}
    return [own[c] if c.startswith("@") else _cell(m[c], cat.csv_format(c))
            for c in cat.csv_columns()]


def csv_text(results: list[Result]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([cat.csv_header(c) for c in cat.csv_columns()])
    w.writerows(csv_row(r) for r in results)
    return buf.getvalue()


def errors_of(results: list[Result]) -> dict[str, int]:
    """Failures counted per reference key (a key covers every beta point of a shape)."""
    errs: dict[str, int] = {}
    for r in results:
        if r.status != OK:
            errs[r.point.key] = errs.get(r.point.key, 0) + 1
    return errs
