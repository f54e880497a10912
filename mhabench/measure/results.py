"""One point's result, its table row, and atomic CSV / JSON writers."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields

from . import flops as fl
from . import hostwork
from .peak import fraction as peak_fraction
from .config import Point
from .fileio import atomic_write  # noqa: F401  (the project's one writer, re-exported)
from .paths import BACKENDS, PATHS
from .stats import iqr, median, ratios

OK, MISMATCH, NO_FASTPATH, ERROR = "ok", "mismatch", "no_fastpath", "error"


@dataclass
class Result:
    """Everything measured at one point. ``rounds`` holds the raw per-round µs per call."""

    point: Point
    status: str = OK
    message: str = ""
    padding: float = math.nan
    max_abs_err: float = math.nan
    fast_path: bool = False
    sdpa_backend: str = ""  # the SDPA backend whose kernels the fast path ran (CUDA only)
    rounds: dict[str, list[float]] = field(default_factory=dict)
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

    def tflops(self, path: str, device: bool = False) -> float:
        """Useful TFLOP/s of ``path``: useful FLOPs over its median wall (or kernel) time.

        Every path is credited with the useful FLOPs only, so the figures compare directly:
        the padded paths' wasted work shows as a lower rate.
        """
        us = self.device_us(path) if device else self.wall_us(path)
        return fl.tflops(self.useful_flops(), us)

    def metrics(self) -> dict[str, float]:
        """Flat float figures (NaN where not measured): what asv tracks and tables show.

        Cached: a sweep rewrites its files after every point, and recomputing every earlier
        point's statistics each time would make that quadratic.
        """
        key = (self.status, self.padding, self.max_abs_err,
               tuple(map(len, self.rounds.values())), tuple(map(len, self.device_calls.values())),
               tuple(self.lengths), self.peak_tflops, tuple(self.peak_mem.items()),
               self.max_abs_err_fp32, tuple(sorted(self.host_work)),
               tuple(self.instructions.items()))
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
        return {k: float(v) for k, v in m.items()}

    def _efficiency_metrics(self) -> dict[str, float]:
        """FLOPs, useful TFLOP/s and share of the peak per path (wall- and kernel-time based),
        peak memory per path, and the error against the fp32 reference."""
        p = self.point
        m = {"useful_flops": self.useful_flops(),
             "padded_flops": float(fl.padded_flops(p.batch_size, p.seq_len, p.embed_dim, p.num_heads)),
             "peak_tflops": self.peak_tflops, "max_abs_err_fp32": self.max_abs_err_fp32}
        for path in PATHS:
            for base, device in (("wall", False), ("device", True)):
                rate = self.tflops(path, device)
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
            for k in hostwork.KINDS:
                v = counts.get(k)
                m[f"host_{p}_{k}"] = float(v) if v is not None and v >= 0 else math.nan
            m[f"host_{p}_copied_bytes"] = m[f"host_{p}_h2d_bytes"] + m[f"host_{p}_d2h_bytes"]
        return m

    def to_json(self) -> dict:
        d = {"point": asdict(self.point), "label": self.point.label, "status": self.status,
             "message": self.message, "fast_path": self.fast_path,
             "sdpa_backend": self.sdpa_backend,
             "metrics": {k: _json_num(v) for k, v in self.metrics().items()},
             "lengths": list(self.lengths),
             "rounds_us": self.rounds, "device_calls_us": self.device_calls,
             "host_work": self.host_work, "instructions": self.instructions}
        return d

    def to_record(self) -> dict:
        """Every dataclass field as plain JSON types (the point as a dict): what
        :meth:`from_json` reads back, whatever fields the class has."""
        return {f.name: (asdict(self.point) if f.name == "point" else getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_json(cls, doc: dict) -> "Result":
        """A Result from :meth:`to_record` (or :meth:`to_json`: its ``rounds_us`` and
        ``device_calls_us``): every field present in ``doc`` is taken, the others keep their
        defaults; a float field stored as null is NaN again."""
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


def _div(a: float, b: float) -> float:
    """a / b, NaN where b is zero or either is missing (a point without kernels, say)."""
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def _json_num(v: float):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


# --- table -----------------------------------------------------------------------------------
MU = "\u00b5"
#: The reference's columns, spelled as it spells them, then ours.
REFERENCE_COLUMNS = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim",
                     f"time_native_mha_slow({MU}s)", f"time_native_mha_fast ({MU}s)",
                     "speedup flash_mha v native_mha", "padding"]
EXTRA_COLUMNS = [f"slow_iqr({MU}s)", f"fast_iqr({MU}s)", f"time_slow_fair({MU}s)",
                 f"slow_fair_iqr({MU}s)", "speedup_fair",
                 f"device_slow({MU}s)", f"device_fast({MU}s)", f"device_slow_fair({MU}s)",
                 "device_speedup", "device_speedup_fair", "speedup_rel_iqr", "device_speedup_rel_iqr",
                 "host_share_slow", "host_share_fast", "host_share_slow_fair",
                 "max_abs_err", "fast_path", "sdpa_backend",
                 *(f"device_fast_{b}({MU}s)" for b in BACKENDS), "beta_b", "status"]
#: Efficiency, memory and drift columns: named as their metric keys, with their formats.
EFFICIENCY_COLUMNS = (
    [("useful_flops", ".0f"), ("padded_flops", ".0f"), ("peak_tflops", ".4g")]
    + [(f"{base}_{p}_tflops", ".4g") for base in ("wall", "device") for p in PATHS]
    + [(f"{base}_{p}_peak_fraction", ".4g") for base in ("wall", "device") for p in PATHS]
    + [(f"peak_mem_{p}_bytes", ".0f") for p in PATHS]
    + [("max_abs_err_fp32", ".3g")]
    + [(f"host_{p}_{k}", ".0f") for p in PATHS for k in hostwork.KINDS])
#: Host instructions per call (callgrind), named as their metric keys.
INSTRUCTION_COLUMNS = [f"instr_{p}" for p in PATHS]
COLUMNS = (REFERENCE_COLUMNS + EXTRA_COLUMNS + [k for k, _ in EFFICIENCY_COLUMNS]
           + INSTRUCTION_COLUMNS)


def _f(v: float, fmt: str = ".3f") -> str:
    return "" if not math.isfinite(v) else format(v, fmt)


def row(r: Result) -> list[str]:
    p, m = r.point, r.metrics()
    return [f"torch.{p.dtype}", str(p.batch_size), str(p.seq_len), str(p.num_heads), str(p.embed_dim),
            _f(m["wall_slow_us"]), _f(m["wall_fast_us"]), _f(m["speedup"]), _f(m["padding"]),
            _f(m["wall_slow_iqr_us"]), _f(m["wall_fast_iqr_us"]), _f(m["wall_slow_fair_us"]),
            _f(m["wall_slow_fair_iqr_us"]), _f(m["speedup_fair"]),
            _f(m["device_slow_us"]), _f(m["device_fast_us"]), _f(m["device_slow_fair_us"]),
            _f(m["device_speedup"]), _f(m["device_speedup_fair"]),
            _f(m["speedup_rel_iqr"], ".4f"), _f(m["device_speedup_rel_iqr"], ".4f"),
            _f(m["host_share_slow"]), _f(m["host_share_fast"]), _f(m["host_share_slow_fair"]),
            _f(m["max_abs_err"], ".3g"), "yes" if r.fast_path else "no", r.sdpa_backend,
            *(_f(m[f"device_fast_{b}_us"]) for b in BACKENDS), str(p.beta_b), r.status,
            *(_f(m[k], fmt) for k, fmt in EFFICIENCY_COLUMNS),
            *(_f(m[k], ".0f") for k in INSTRUCTION_COLUMNS)]


# --- files -----------------------------------------------------------------------------------
def csv_text(results: list[Result]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(row(r) for r in results)
    return buf.getvalue()


def errors_of(results: list[Result]) -> dict[str, int]:
    """Failures counted per reference key (a key covers every beta point of a shape)."""
    errs: dict[str, int] = {}
    for r in results:
        if r.status != OK:
            errs[r.point.key] = errs.get(r.point.key, 0) + 1
    return errs


def json_doc(results: list[Result], meta: dict) -> dict:
    return {"meta": meta, "errors": errors_of(results), "results": [r.to_json() for r in results]}


class ResultFiles:
    """The requested files (CSV, errors JSON, full JSON), rewritten as a sweep goes on.

    A finished point's figures do not change, so each is serialised once and every rewrite
    only joins the pieces: serialising every point again at each of a seed-grid run's 20
    rewrites cost ~7 s of its wall time. ``results`` must grow by appending.
    """

    def __init__(self, csv_path=None, error_path=None, json_path=None):
        self.csv_path, self.error_path, self.json_path = csv_path, error_path, json_path
        self._rows: list[str] = []
        self._docs: list[str] = []

    def write(self, results: list[Result], meta: dict) -> None:
        new = results[len(self._docs):]
        if self.csv_path:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(row(r) for r in new)
            self._rows.append(buf.getvalue())
        self._docs.extend(json.dumps(r.to_json()) if self.json_path else "" for r in new)
        if self.csv_path:
            atomic_write(self.csv_path, csv_text([]) + "".join(self._rows))
        if self.error_path:
            atomic_write(self.error_path, json.dumps(errors_of(results)))
        if self.json_path:
            head = json.dumps({"meta": meta, "errors": errors_of(results)}, indent=1)[:-2]
            atomic_write(self.json_path, head + ',\n "results": [\n  '
                         + ",\n  ".join(self._docs) + "\n ]\n}\n")


def write_all(results: list[Result], meta: dict, csv_path=None, error_path=None, json_path=None) -> None:
    """Rewrite every requested file atomically (pass ``json_path=None`` to skip the large one)."""
    ResultFiles(csv_path, error_path, json_path).write(results, meta)
