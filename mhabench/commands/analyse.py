"""``mhabench plot`` and ``mhabench breakeven``: read what ``run --json`` or asv wrote.

``plot RESULTS.json`` draws the speedup against padding per shape; ``plot ASV_RESULTS_DIR``
draws one asv benchmark across the recorded builds. Parsing imports nothing heavy; matplotlib
and prettytable load inside the handlers.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..measure.config import ConfigError

METRIC_HELP = ("run JSON: speedup (default), speedup_fair, device_speedup, device_speedup_fair; "
               "asv results: a benchmark name or its unique tail (default "
               "speedup.FastOverSlow.track_wall)")


def register(sub) -> None:
    p = sub.add_parser("plot", help="draw a run's speedup vs padding, or an asv benchmark "
                                    "across builds",
                       description="RESULTS.json (run --json): per (embed dim, heads), the "
                                   "speedup (slow/fast, higher is better) against padding, a "
                                   "line per (batch, seq), IQR error bars, break-even marked. "
                                   "An asv results dir: one benchmark's value per build, a "
                                   "line per point.")
    p.add_argument("source", metavar="RESULTS.json|ASV_RESULTS_DIR")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for the PNGs (default NAME_plots beside RESULTS.json, plots/ "
                        "beside an asv results dir)")
    p.add_argument("--metric", default="", help=METRIC_HELP)
    p.set_defaults(func=cmd_plot)
    b = sub.add_parser("breakeven", help="padding fraction at which speedup (slow/fast) crosses "
                                         "1, per shape",
                       description="Per shape, the padding fraction at which the speedup "
                                   "crosses 1 (linear interpolation between beta points, "
                                   "first crossing).")
    b.add_argument("source", metavar="RESULTS.json", help="file written by 'mhabench run --json'")
    b.add_argument("--csv", default=None, metavar="PATH", help="also write the table as CSV")
    b.add_argument("--metric", default="speedup", help="speedup (default), speedup_fair, "
                                                       "device_speedup, device_speedup_fair")
    b.set_defaults(func=cmd_breakeven)


def _check_metric(doc: dict, metric: str) -> None:
    known = {k for r in doc["results"] for k in r["metrics"]}
    if known and metric not in known:
        raise ConfigError(f"unknown metric {metric!r} (choose from {', '.join(sorted(known))})")


def _check_out(out: Path) -> None:
    """The plots' folder, before any drawing: a folder or nothing yet, under a writable one."""
    from ..measure.fileio import check_output
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: not a folder")
    probe = out / "x.png"
    check_output(probe, "--out")


def cmd_plot(args) -> int:
    source = Path(args.source)
    if source.is_dir():
        return _plot_asv(source, args)
    from ..figures.breakeven import load_doc
    from ..report.plot import plot_results
    metric = args.metric or "speedup"
    doc = load_doc(source)
    _check_metric(doc, metric)
    out = Path(args.out) if args.out else source.with_name(source.stem + "_plots")
    _check_out(out)
    for path in plot_results(doc, out, metric=metric):
        print(path)
    return 0


def _plot_asv(results_dir: Path, args) -> int:
    from ..report.plot import asv_tags, plot_asv_history
    html = results_dir.parent / "html"
    tags = asv_tags(html) if (html / "index.json").is_file() else None
    out = Path(args.out) if args.out else results_dir.resolve().parent / "plots"
    _check_out(out)
    for path in plot_asv_history(results_dir, out, args.metric or
                                 "speedup.FastOverSlow.track_wall", tags=tags):
        print(path)
    return 0


def _cell(v, fmt: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt) if isinstance(v, float) else str(v)


def table_text(rows: list[dict], keys=None) -> str:
    from prettytable import PrettyTable
    from ..figures.breakeven import TABLE_KEYS
    keys = list(keys or TABLE_KEYS)
    table = PrettyTable(keys)
    for r in rows:
        table.add_row([_cell(r[k]) for k in keys])
    return table.get_string()


def cmd_breakeven(args) -> int:
    from ..figures.breakeven import break_even_table, load_doc
    from ..measure.fileio import check_output
    if args.csv:
        check_output(args.csv, "--csv")
        if Path(args.csv).resolve() == Path(args.source).resolve():
            raise ConfigError(f"--csv {args.csv} is the input itself")
    doc = load_doc(args.source)
    _check_metric(doc, args.metric)
    rows = break_even_table(doc, args.metric)
    if not rows:
        raise ConfigError(f"{args.source}: holds no result")
    if all(r["n_points"] == 0 for r in rows):
        raise ConfigError(f"{args.source}: no point has a finite padding and {args.metric}")
    print(table_text(rows))
    print(f"{args.metric} = slow/fast, higher is better (> 1: fast path wins); "
          f"break_even_padding '-': no crossing of 1 (see min/max)")
    if args.csv:
        from ..figures.breakeven import csv_text
        from ..measure.fileio import atomic_write
        try:
            atomic_write(args.csv, csv_text(rows))
        except OSError as exc:
            raise ConfigError(f"cannot write {args.csv}: {exc.strerror or exc}") from None
        print(f"wrote {args.csv}")
    return 0
