"""Figures: speedup against padding from an mhabench JSON, and a metric across asv builds.

matplotlib is imported lazily, with the Agg backend, inside the functions that draw. The
``*_figures`` functions build and return the figures (for inspection); the ``plot_*`` functions
write them as PNGs, close them, and return the written paths.

Artists carry a ``gid`` so that tests and callers can tell them apart: ``"series"`` (one
measured line), ``"unity"`` (the horizontal line at speedup 1, or fast/slow 1), ``"break_even"``
(a shape's break-even marker), ``"iqr"`` (a line's IQR error bars).
"""
from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

from ..catalogue import asv_figure
from ..figures.breakeven import break_even, group_by_shape, load_doc
from ..measure.config import ConfigError

#: Per-round (per-call for kernel time) samples behind each metric: (samples key, slow path).
METRIC_SAMPLES = {"speedup": ("rounds_us", "slow"), "speedup_fair": ("rounds_us", "slow_fair"),
                  "device_speedup": ("device_calls_us", "slow"),
                  "device_speedup_fair": ("device_calls_us", "slow_fair")}

METRIC_LABELS = {
    "speedup": "speedup: slow / fast wall time",
    "speedup_fair": "speedup: slow (inference mode, fast path off) / fast wall time",
    "device_speedup": "speedup: slow / fast kernel time",
    "device_speedup_fair": "speedup: slow_fair / fast kernel time",
}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plotting needs matplotlib (pip install 'mhabench[plot]')") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_") or "x"


def _save(figures: dict, out_dir) -> list[str]:
    plt = _pyplot()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out}: {exc.strerror or exc}") from None
    written = []
    try:
        for name, fig in figures.items():
            path = out / name
            fig.savefig(path, dpi=120)
            written.append(str(path))
    finally:
        for fig in figures.values():
            plt.close(fig)
    return written


# --- speedup vs padding ----------------------------------------------------------------------
def quartiles(result: dict, metric: str) -> tuple[float, float]:
    """First and third quartile of the per-round ratios behind ``metric`` at one point (NaN
    where the JSON holds no samples for it): the IQR error bar of a plotted median."""
    import numpy as np
    key, slow = METRIC_SAMPLES.get(metric, ("", ""))
    samples = result.get(key) or {}
    if slow not in samples or "fast" not in samples:
        return math.nan, math.nan
    r = [a / b for a, b in zip(samples[slow], samples["fast"]) if b]
    if not r:
        return math.nan, math.nan
    q1, q3 = np.percentile(r, [25, 75])
    return float(q1), float(q3)


def _error_bars(results: list, metric: str) -> dict:
    """``{(shape, padding, value): (q1, q3)}`` over the document's results."""
    from ..figures.breakeven import shape_of
    bars = {}
    for r in results:
        m = r.get("metrics", {})
        pad, value = m.get("padding"), m.get(metric)
        if isinstance(pad, (int, float)) and isinstance(value, (int, float)):
            bars[shape_of(r), float(pad), float(value)] = quartiles(r, metric)
    return bars


def results_figures(json_path_or_doc, metric: str = "speedup") -> dict:
    """``{file name: Figure}``: per (embed_dim, num_heads, dtype), ``metric`` against padding,
    one line per (batch, seq) sorted by padding, a line at 1 and each line's break-even padding.

    Raises ConfigError if the document is not mhabench's or holds no finite point to draw.
    """
    doc = load_doc(json_path_or_doc)
    meta = doc.get("meta") or {}
    groups = group_by_shape(doc["results"], metric)
    bars = _error_bars(doc["results"], metric)
    panels: dict[tuple, dict] = {}
    shapes: dict[tuple, tuple] = {}
    for shape, pts in groups.items():
        B, S, E, H, dtype = shape
        if pts:
            panels.setdefault((E, H, dtype), {})[(B, S)] = sorted(pts)
            shapes[(E, H, dtype, B, S)] = shape
    if not panels:
        raise ConfigError(f"no result has a finite padding and {metric!r} to plot")
    plt = _pyplot()
    device = meta.get("device_name") or meta.get("device") or "unknown device"
    where = f"{device}, torch {meta.get('torch', '?')}"
    figures = {}
    for (E, H, dtype), lines in panels.items():
        fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
        ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, gid="unity", label="_nolegend_")
        handles, marked, barred = [], False, False
        for (B, S), pts in sorted(lines.items()):
            xs, ys = [p for p, _ in pts], [s for _, s in pts]
            (line,) = ax.plot(xs, ys, marker="o", markersize=4, label=f"batch {B}, seq {S}",
                              gid="series")
            handles.append(line)
            qs = [bars.get((shapes[(E, H, dtype, B, S)], x, y), (math.nan, math.nan))
                  for x, y in pts]
            if any(math.isfinite(q1) for q1, _ in qs):
                lo = [y - q1 if math.isfinite(q1) else 0.0 for (q1, _), y in zip(qs, ys)]
                hi = [q3 - y if math.isfinite(q3) else 0.0 for (_, q3), y in zip(qs, ys)]
                bar = ax.errorbar(xs, ys, yerr=[[max(v, 0.0) for v in lo],
                                                [max(v, 0.0) for v in hi]],
                                  fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=3,
                                  alpha=0.7, label="_nolegend_")
                for art in bar.get_children():
                    art.set_gid("iqr")
                barred = True
            be = break_even(pts)
            if be is not None:
                ax.plot([be], [1.0], linestyle="none", marker="D", markersize=8,
                        markerfacecolor="none", markeredgecolor=line.get_color(),
                        markeredgewidth=1.5, gid="break_even", label="_nolegend_")
                marked = True
        from matplotlib.lines import Line2D
        if marked:
            handles.append(Line2D([], [], linestyle="none", marker="D", markersize=8,
                                  markerfacecolor="none", markeredgecolor="0.3",
                                  label="break-even (speedup = 1)"))
        if barred:
            handles.append(Line2D([], [], color="0.3", marker="|", markersize=10, linestyle="none",
                                  label="bars: IQR of the per-round ratios"))
        ax.set_xlabel("padding fraction (share of the padded batch that is padding)")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric)
                      + "\nhigher is better (> 1: fast path wins)")
        ax.set_title(f"MultiheadAttention fast vs slow path: embed {E}, {H} heads, {dtype}\n{where}",
                     fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(handles=handles, fontsize=8, loc="best")
        figures[f"{_safe(metric)}_E{E}_H{H}_{_safe(dtype)}.png"] = fig
    return figures


def plot_results(json_path_or_doc, out_dir, metric: str = "speedup") -> list[str]:
    """Write :func:`results_figures` as PNGs in ``out_dir``; return the written paths."""
    return _save(results_figures(json_path_or_doc, metric), out_dir)


# --- asv history -----------------------------------------------------------------------------
def read_asv_results(asv_results_dir) -> list:
    """Every asv result file under ``results/<machine>/*.json``, read through ``asv.results``
    (:func:`mhabench.track.asv_results.load_record`), sorted by date then file name."""
    from ..track.asv_results import load_record
    root = Path(asv_results_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory")
    runs = [load_record(path) for path in sorted(root.glob("*/*.json"))
            if path.name != "machine.json"]
    if not runs:
        raise ConfigError(f"{root}: no asv result files (results/<machine>/<commit>-<env>.json)")
    runs.sort(key=lambda r: (r.date, r.path))
    return runs


def _resolve_name(runs: list[dict], name: str) -> str:
    names = {b for r in runs for b in r.values}
    if name in names:
        return name
    tails = sorted(b for b in names if b.endswith("." + name))
    if len(tails) == 1:
        return tails[0]
    hint = f" (matches: {', '.join(tails)})" if tails else ""
    raise ConfigError(f"benchmark {name!r} not found in the asv results{hint}")


def _bench_info(asv_results_dir, name: str) -> dict:
    """The benchmark's entry in ``benchmarks.json`` beside the machine folders ({} if none)."""
    from ..measure.fileio import read_json
    path = Path(asv_results_dir) / "benchmarks.json"
    if not path.exists():
        return {}
    data = read_json(path, "asv benchmarks.json")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not asv's benchmarks.json (not an object)")
    entry = data.get(name)
    if entry is not None and not isinstance(entry, dict):
        raise ConfigError(f"{path}: not asv's benchmarks.json ({name!r} is not an object)")
    return entry or {}


def _as_float(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _unquote(value) -> str:
    """asv stores parameter values as their repr: ``"'fp16'"`` reads better as ``fp16``."""
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def asv_tags(asv_html_dir) -> dict[str, str]:
    """``{commit hash: tag}`` from ``asv publish``'s ``index.json`` (its ``tags``, tag -> revision,
    and ``revision_to_hash``); empty when there is no such file or it has no tags."""
    from ..measure.fileio import read_json
    path = Path(asv_html_dir) / "index.json"
    if not path.exists():
        return {}
    index = read_json(path, "asv index.json")
    tags = index.get("tags") or {} if isinstance(index, dict) else None
    revs = index.get("revision_to_hash") or {} if isinstance(index, dict) else None
    if not isinstance(tags, dict) or not isinstance(revs, dict):
        raise ConfigError(f"{path}: not asv's index.json (needs 'tags' and 'revision_to_hash' "
                          f"objects)")
    return {revs[str(rev)]: tag for tag, rev in tags.items() if str(rev) in revs}


def build_label(commit_hash: str, tags: dict[str, str] | None = None) -> str:
    """``v1.2 (abcdef12)`` for a tagged commit, else the hash's first 8 characters."""
    tag = (tags or {}).get(commit_hash)
    return f"{tag} ({commit_hash[:8]})" if tag else commit_hash[:8]


def asv_history(asv_results_dir, benchmark_name: str,
                tags: dict[str, str] | None = None) -> dict[str, dict]:
    """``{machine: {"builds": [label, ...], "series": {param label: [value per build]}}}``.

    Builds are labelled by commit (``tags``, as :func:`asv_tags` reads them, name tagged ones),
    and by environment too where a machine has several (e.g. one interpreter per torch build).

    A parameterised benchmark's ``result`` list follows ``itertools.product(*params)``; a plain
    one has ``params == []`` and one value. Failed, skipped or missing values are NaN; a
    parameter combination with no value in any build (not in the measured grid) is left out.
    Series are labelled ``name=value, ...`` when ``benchmarks.json`` gives the param names.
    """
    runs = read_asv_results(asv_results_dir)
    name = _resolve_name(runs, benchmark_name)
    names = _bench_info(asv_results_dir, name).get("param_names") or []
    out: dict[str, dict] = {}
    for machine, mruns in itertools.groupby(sorted(runs, key=lambda r: r.machine),
                                            key=lambda r: r.machine):
        mruns = [r for r in mruns if name in r.values]  # groupby keeps the date order
        if not mruns:
            continue
        envs = {r.env_name for r in mruns}
        builds, series = [], {}
        for i, r in enumerate(mruns):
            builds.append(build_label(r.commit, tags)
                          + (f"\n{r.env_name}" if len(envs) > 1 else ""))
            for combo, v in r.values[name].items():
                label = ", ".join(
                    (f"{names[j]}={_unquote(c)}" if j < len(names) else _unquote(c))
                    for j, c in enumerate(combo)) or name.rsplit(".", 1)[-1]
                series.setdefault(label, [math.nan] * len(mruns))[i] = _as_float(v)
        series = {k: ys for k, ys in series.items() if not all(math.isnan(y) for y in ys)}
        out[machine] = {"builds": builds, "series": series, "benchmark": name}
    return out


def asv_figures(asv_results_dir, benchmark_name: str, max_legend: int = 20,
                tags: dict[str, str] | None = None) -> dict:
    """``{file name: Figure}``: per machine, the benchmark's value per build, a line per point."""
    history = asv_history(asv_results_dir, benchmark_name, tags)
    plt = _pyplot()
    figures = {}
    for machine, h in history.items():
        name, builds = h["benchmark"], h["builds"]
        unit = str(_bench_info(asv_results_dir, name).get("unit") or "")
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(builds) + 3), 5), layout="constrained")
        xs = list(range(len(builds)))
        legend, constant = varying_labels(list(h["series"]))
        fig_of = asv_figure(name)
        if fig_of is not None and fig_of.role == "ratio":
            ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, gid="unity",
                       label="_nolegend_")
        for label, ys in h["series"].items():
            ax.plot(xs, ys, marker="o", markersize=4, label=legend[label], gid="series")
        ax.set_xticks(xs, builds, rotation=45 if len(builds) > 6 else 0, fontsize=8)
        ax.set_xlabel("build (commit, oldest first)")
        ax.set_ylabel(name.rsplit(".", 1)[-1] + (f" ({unit})" if unit else "")
                      + f"\n{direction(name, unit)}")
        ax.set_title(f"{name} on {machine}" + (f"\n{constant}" if constant else ""), fontsize=10)
        ax.grid(True, alpha=0.3)
        if 0 < len(h["series"]) <= max_legend:
            ax.legend(fontsize=7, loc="best")
        figures[f"asv_{_safe(name)}_{_safe(machine)}.png"] = fig
    return figures


def direction(name: str, unit: str) -> str:
    """Which way is better for an asv figure, as recorded (a speedup is recorded as fast/slow:
    lower is better, below 1 the fast path wins)."""
    f = asv_figure(name)
    if f is None:
        return "higher is better" if "TFLOP/s" in unit else "lower is better"
    if f.role == "ratio":
        return "lower is better (below 1: fast path wins)"
    return "higher is better" if f.better == "higher" and not f.invert else "lower is better"


def varying_labels(labels: list[str]) -> tuple[dict[str, str], str]:
    """``({series label: its varying part}, "the constant part")`` for ``k=v, k=v`` labels:
    a legend repeats only what tells the lines apart."""
    parts = {lb: [p.strip() for p in lb.split(",")] for lb in labels}
    lengths = {len(p) for p in parts.values()}
    if len(lengths) != 1 or not all("=" in q for p in parts.values() for q in p):
        return {lb: lb for lb in labels}, ""
    n = lengths.pop()
    vary = [i for i in range(n) if len({p[i] for p in parts.values()}) > 1]
    same = [i for i in range(n) if i not in vary]
    constant = ", ".join(next(iter(parts.values()))[i] for i in same) if parts else ""
    return {lb: ", ".join(p[i] for i in vary) or lb for lb, p in parts.items()}, constant


def plot_asv_history(asv_results_dir, out_dir, benchmark_name: str,
                     tags: dict[str, str] | None = None) -> list[str]:
    """Write :func:`asv_figures` as PNGs in ``out_dir``; return the written paths."""
    return _save(asv_figures(asv_results_dir, benchmark_name, tags=tags), out_dir)
