"""Break-even padding: the padding fraction at which the fast path starts (or stops) paying off.

For one shape (batch, seq, embed, heads, dtype) the beta values give points
``(padding fraction, speedup)`` with speedup = slow / fast (above 1: the fast path wins).
The break-even padding is where the speedup crosses 1, by linear interpolation between
neighbours in padding order. Pure functions, no torch.
"""
from __future__ import annotations

import csv
import io
import math
import os
from typing import Iterable, Mapping, Sequence

from ..measure.config import ConfigError

SHAPE_KEYS = ("batch_size", "seq_len", "embed_dim", "num_heads", "dtype")
TABLE_KEYS = SHAPE_KEYS + ("n_points", "break_even_padding", "min_speedup", "max_speedup")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def merge_duplicates(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sort by padding, drop non-finite points, and average the speedups at equal padding."""
    groups: dict[float, list[float]] = {}
    for padding, speedup in points:
        if _finite(padding) and _finite(speedup):
            groups.setdefault(float(padding), []).append(float(speedup))
    return [(p, sum(s) / len(s)) for p, s in sorted(groups.items())]


def break_even(points: Iterable[tuple[float, float]], level: float = 1.0) -> float | None:
    """The padding at which the speedup first reaches ``level`` (1.0), walking up in padding.

    Points at the same padding are averaged first; NaN/None points are ignored. A point exactly
    at ``level`` is returned as is; a sign change between neighbours is interpolated linearly.
    None when every point is above ``level`` or every point is below it (or there are none).
    The crossing may go either way: up (fast path wins beyond it) or down.
    """
    pts = merge_duplicates(points)
    for i, (p, s) in enumerate(pts):
        if s == level:
            return p
        if i + 1 < len(pts):
            p2, s2 = pts[i + 1]
            if (s - level) * (s2 - level) < 0:
                return p + (level - s) * (p2 - p) / (s2 - s)
    return None


# --- result documents --------------------------------------------------------------------------
def load_doc(source: str | os.PathLike | Mapping) -> dict:
    """An mhabench results document (``{"meta", "errors", "results"}``) from a path or a dict.

    Raises ConfigError (one line) for a missing file, bad JSON, or a JSON that is not mhabench's.
    """
    if isinstance(source, Mapping):
        doc, name = dict(source), "document"
    else:
        from ..measure.fileio import read_json
        name = os.fspath(source)
        doc = read_json(name, "results JSON")
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list) or not all(
            isinstance(r, dict) and isinstance(r.get("point"), dict) and isinstance(r.get("metrics"), dict)
            for r in results):
        raise ConfigError(f"{name}: not an mhabench results JSON (need a 'results' list of "
                          f"entries with 'point' and 'metrics', as `mhabench run --json` writes)")
    missing = [k for k in SHAPE_KEYS for r in results if k not in r["point"]]
    if missing:
        raise ConfigError(f"{name}: not an mhabench results JSON (a point lacks {missing[0]!r})")
    if not isinstance(doc.get("meta", {}), dict):
        raise ConfigError(f"{name}: not an mhabench results JSON ('meta' is not an object)")
    for i, r in enumerate(results):
        for k in SHAPE_KEYS:
            v = r["point"][k]
            if isinstance(v, bool) or not isinstance(v, str if k == "dtype" else int):
                raise ConfigError(f"{name}: result {i}: point {k} is {v!r}, not "
                                  f"{'a string' if k == 'dtype' else 'an integer'}")
        for k, v in r["metrics"].items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError(f"{name}: result {i}: metric {k} is {v!r}, not a number")
    return doc


def _results_of(results: Sequence[Mapping] | Mapping) -> list:
    if isinstance(results, Mapping):
        return load_doc(results)["results"]
    return list(results)


def shape_of(result: Mapping) -> tuple:
    p = result["point"]
    return tuple(p[k] for k in SHAPE_KEYS)


def group_by_shape(results: Sequence[Mapping] | Mapping, metric: str = "speedup") -> dict[tuple, list]:
    """``{shape: [(padding, metric), ...]}`` in order of first appearance; every shape is kept,
    with its finite points only (a shape whose points all failed gets an empty list)."""
    groups: dict[tuple, list] = {}
    for r in _results_of(results):
        pts = groups.setdefault(shape_of(r), [])
        m = r.get("metrics", {})
        padding, value = m.get("padding"), m.get(metric)
        if _finite(padding) and _finite(value):
            pts.append((float(padding), float(value)))
    return groups


def break_even_table(results: Sequence[Mapping] | Mapping, metric: str = "speedup") -> list[dict]:
    """One row per shape: the shape's keys, ``n_points`` (finite ones), ``break_even_padding``
    (None if no crossing), ``min_speedup`` / ``max_speedup`` (None if no points).

    ``results``: the ``results`` list of an mhabench JSON, or the whole document. ``metric``
    picks the figure (``speedup``, ``speedup_fair``, ``device_speedup``...); the row's keys keep
    the ``speedup`` names whatever the metric.
    """
    table = []
    for shape, pts in group_by_shape(results, metric).items():
        values = [s for _, s in pts]
        table.append({**dict(zip(SHAPE_KEYS, shape)), "n_points": len(pts),
                      "break_even_padding": break_even(pts),
                      "min_speedup": min(values) if values else None,
                      "max_speedup": max(values) if values else None})
    return table


#: ``mhabench run``'s summary: a break-even padding per speedup figure, column -> metric.
SUMMARY_METRICS = {"break_even_padding": "speedup", "break_even_padding_fair": "speedup_fair",
                   "break_even_padding_device": "device_speedup",
                   "break_even_padding_device_fair": "device_speedup_fair"}
SUMMARY_KEYS = SHAPE_KEYS + ("n_points",) + tuple(SUMMARY_METRICS) + ("min_speedup", "max_speedup")


def summary_table(results: Sequence[Mapping] | Mapping) -> list[dict]:
    """One row per shape: break-even padding of the wall speedup (against ``slow`` and
    ``slow_fair``) and of the kernel-time speedup (both; None where not measured or no
    crossing), with ``n_points`` and the min / max wall speedup of :func:`break_even_table`."""
    rows = {shape_of_row(r): dict(r) for r in break_even_table(results, "speedup")}
    for column, metric in SUMMARY_METRICS.items():
        for r in break_even_table(results, metric):
            rows[shape_of_row(r)][column] = r["break_even_padding"]
    return [{k: r[k] for k in SUMMARY_KEYS} for r in rows.values()]


def shape_of_row(row: Mapping) -> tuple:
    return tuple(row[k] for k in SHAPE_KEYS)


def csv_text(rows: list[dict], keys=None) -> str:
    """CSV of the table; an absent value (no crossing, no points) is an empty cell."""
    keys = list(keys or TABLE_KEYS)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r[k] is None else r[k] for k in keys])
    return buf.getvalue()
