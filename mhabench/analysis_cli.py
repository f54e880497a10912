"""``mhabench plot`` and ``mhabench breakeven``: read a results JSON written by ``run --json``.

Parsing imports nothing heavy; matplotlib and prettytable load inside the handlers. Bad input
raises ConfigError, which ``cli.main`` prints as one line and exits 2 on.
"""
from __future__ import annotations

import math

from .measure.config import ConfigError

METRIC_HELP = "figure to use: speedup (default), speedup_fair, device_speedup, device_speedup_fair"


def _over_results(sub, name: str, func, option: tuple[str, dict], **kw) -> None:
    """A command over one ``run --json`` file: RESULTS.json, its own ``option``, ``--metric``."""
    p = sub.add_parser(name, **kw)
    p.add_argument("results", metavar="RESULTS.json", help="file written by 'mhabench run --json'")
    p.add_argument(option[0], **option[1])
    p.add_argument("--metric", default="speedup", help=METRIC_HELP)
    p.set_defaults(func=func)


def register_plot(sub) -> None:
    _over_results(sub, "plot", cmd_plot, ("--out", dict(
                      default=None, metavar="DIR",
                      help="folder for the PNG files (default: NAME_plots beside RESULTS.json)")),
                  help="draw speedup (higher is better) vs padding from a results JSON",
                  description="Draw, per (embed dim, heads), the speedup (slow/fast, higher "
                              "is better) against the padding fraction, a line per (batch, "
                              "seq), with IQR error bars and the break-even marked.")


def register_breakeven(sub) -> None:
    _over_results(sub, "breakeven", cmd_breakeven, ("--csv", dict(
                      default=None, metavar="PATH", help="also write the table as CSV")),
                  help="padding fraction at which speedup (slow/fast) crosses 1, per shape",
                  description="Per shape, the padding fraction at which the speedup crosses 1 "
                              "(linear interpolation between beta points, first crossing).")


def register_plot_asv(sub) -> None:
    p = sub.add_parser("plot-asv", help="draw one asv benchmark across builds (torch versions)",
                       description="Draw, per asv machine, one benchmark's value per recorded build, "
                                   "a line per grid point; tagged commits are named by their tag.")
    p.add_argument("results_dir", metavar="ASV_RESULTS_DIR", help="asv's results_dir (.asv/results)")
    p.add_argument("--benchmark", default="speedup.FastOverSlow.track_wall",
                   help="asv benchmark name, or its unique tail (default %(default)s)")
    p.add_argument("--html", default=None, metavar="DIR",
                   help="asv's html_dir (.asv/html), for the tags 'asv publish' recorded")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for the PNG files (default: plots/ beside ASV_RESULTS_DIR)")
    p.set_defaults(func=cmd_plot_asv)


def register(sub) -> None:
    """Every analysis sub-command."""
    register_plot(sub)
    register_breakeven(sub)
    register_plot_asv(sub)


def cmd_plot_asv(args) -> int:
    from .report.plot import asv_tags, plot_asv_history
    tags = asv_tags(args.html) if args.html else None
    from pathlib import Path
    out = args.out or Path(args.results_dir).resolve().parent / "plots"
    for path in plot_asv_history(args.results_dir, out, args.benchmark, tags=tags):
        print(path)
    return 0


def _check_metric(doc: dict, metric: str) -> None:
    known = {k for r in doc["results"] for k in r["metrics"]}
    if known and metric not in known:
        raise ConfigError(f"unknown metric {metric!r} (choose from {', '.join(sorted(known))})")


def cmd_plot(args) -> int:
    from .figures.breakeven import load_doc
    from .report.plot import plot_results
    doc = load_doc(args.results)
    _check_metric(doc, args.metric)
    out = args.out or default_plot_dir(args.results)
    for path in plot_results(doc, out, metric=args.metric):
        print(path)
    return 0


def default_plot_dir(results_path) -> str:
    """``NAME_plots`` beside ``NAME.json``."""
    from pathlib import Path
    p = Path(results_path)
    return str(p.with_name(p.stem + "_plots"))


def _cell(v, fmt: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt) if isinstance(v, float) else str(v)


def table_text(rows: list[dict], keys=None) -> str:
    from prettytable import PrettyTable
    from .figures.breakeven import TABLE_KEYS
    keys = list(keys or TABLE_KEYS)
    table = PrettyTable(keys)
    for r in rows:
        table.add_row([_cell(r[k]) for k in keys])
    return table.get_string()


def cmd_breakeven(args) -> int:
    from .figures.breakeven import break_even_table, load_doc
    if args.csv:
        from .measure.fileio import check_output
        check_output(args.csv, "--csv")
    doc = load_doc(args.results)
    _check_metric(doc, args.metric)
    rows = break_even_table(doc, args.metric)
    if not rows:
        raise ConfigError(f"{args.results}: holds no result")
    print(table_text(rows))
    print(f"{args.metric} = slow/fast, higher is better (> 1: fast path wins); "
          f"break_even_padding '-': no crossing of 1 (see min/max)")
    if args.csv:
        from .figures.breakeven import csv_text
        from .measure.fileio import atomic_write
        try:
            atomic_write(args.csv, csv_text(rows))
        except OSError as exc:
            raise ConfigError(f"cannot write {args.csv}: {exc.strerror or exc}") from None
        print(f"wrote {args.csv}")
    return 0
