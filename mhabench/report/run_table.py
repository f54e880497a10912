"""What ``mhabench run`` prints: the table, the n/a figures, the cost, each within 160 columns.

The table's columns are the catalogue's (:func:`mhabench.catalogue.table_figures`): short
headers that say their unit and which way is better, and only the columns that hold a value
on this device (a figure no row has, such as kernel time on a CPU, is dropped). The CSV keeps
every column and the reference's spelling; this table is for reading.
"""
from __future__ import annotations

import math
import re
import textwrap

from .. import catalogue as cat

WIDTH = 160
UP, DOWN, MU = cat.UP, cat.DOWN, cat.MU

#: Footer: the direction markers and why a row's speedup is not its medians' ratio.
FOOTER = (f"{UP} higher is better, {DOWN} lower is better. speedup = median over rounds of each "
          "round's slow/fast (the two windows of one round are paired), so it can differ from "
          f"slow {MU}s / fast {MU}s, the ratio of the medians; noise = IQR / median of those "
          "per-round ratios. fair: slow_fair (inference mode, fast path off) instead of slow. "
          "dev: kernel time (CUDA). peak: share of the device's matmul peak.")


def _num(fmt: str, scale: float = 1.0, suffix: str = ""):
    def cell(v):
        return "" if not isinstance(v, float) or not math.isfinite(v) else \
            format(v * scale, fmt) + suffix
    return cell


CELLS = {"us": _num(".1f"), "ratio": _num(".3f"), "pct": _num(".1f", 100, "%"),
         "err": _num(".2g"), "mib": _num(".2f", 1 / 2**20), "g3": _num(".3g")}
POINT_HEADERS = ["dtype", "B", "S", "E", "H", "b", "pad"]


def point_cells(r) -> list[str]:
    p = r.point
    return [p.dtype.replace("float", "f"), str(p.batch_size), str(p.seq_len), str(p.embed_dim),
            str(p.num_heads), str(p.beta_b), CELLS["ratio"](r.padding)]


def columns(results) -> tuple[list[str], list[list[str]]]:
    """Headers and rows, without the columns no row has a value in."""
    figs = cat.table_figures()
    headers = POINT_HEADERS + [f.table for f in figs] + ["status"]
    rows = []
    for r in results:
        m = r.metrics()
        rows.append(point_cells(r) + [CELLS[f.fmt](m.get(f.key, math.nan)) for f in figs]
                    + [r.status])
    return drop_empty(headers, rows)


def drop_empty(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Leave out every column that is empty in all rows."""
    keep = [i for i in range(len(headers)) if any(row[i] for row in rows)] if rows \
        else list(range(len(headers)))
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in rows]


def table_text(results) -> str:
    from prettytable import PrettyTable
    headers, rows = columns(results)
    table = PrettyTable(headers)
    table.align = "r"
    table.add_rows(rows)
    return table.get_string()


def footer() -> str:
    return textwrap.fill(FOOTER, 110)


def patterns(keys) -> list[str]:
    """Metric keys folded into patterns: the paths and backends become ``*``
    (``device_fast_us``, ``device_slow_us`` -> ``device_*_us``)."""
    alts = "|".join(sorted(cat.PATHS + cat.BACKENDS, key=len, reverse=True))
    out: list[str] = []
    for k in keys:
        p = re.sub(rf"(?<=_)({alts})(?=_|$)", "*", k)
        p = re.sub(r"\*_\*", "*", p)
        if p not in out:
            out.append(p)
    return out


def wrapped(text: str, indent: str = "  ") -> str:
    """``text`` wrapped at :data:`WIDTH` columns, continuation lines indented."""
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def na_lines(reasons: dict[str, str]) -> list[str]:
    """One wrapped line per reason: which figures are n/a here, folded into patterns."""
    return [wrapped(f"n/a here ({why}): {', '.join(patterns(keys))}")
            for why, keys in cat.grouped(reasons).items()]


#: The cost split's keys, in words, and which of them make up "measuring".
COST_WORDS = {"wall_pass": "wall", "retime": "timed again", "device_pass": "device",
              "host_work_pass": "host work", "bytecodes": "bytecodes", "counts_build": "rebuild",
              "extra_fp32": "fp32 drift", "extra_backends": "backend split",
              "extra_memory": "memory", "instructions": "instructions"}


def cost_line(cost: dict, points: int, measuring_s: float, total_s: float) -> str:
    """``8 points in 12.3 s (measuring 9.1 s: wall 6.0, device 2.1, ...); 14.0 s in all``."""
    parts = [f"{w} {cost[k]:.1f}" for k, w in COST_WORDS.items() if cost.get(k, 0) >= 0.05]
    split = f" ({', '.join(parts)} s)" if parts else ""
    return wrapped(f"{points} points in {measuring_s:.1f} s of measuring{split}; "
                   f"{total_s:.1f} s in all")
