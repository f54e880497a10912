"""The table ``mhabench run`` prints: short headers that say their unit and which way is better,
and only the columns that hold a value on this device (data-driven: a figure no row has, such
as kernel time on a CPU, is dropped, whatever columns are added later).

The CSV (:mod:`mhabench.measure.results`) keeps every column and the reference's spelling; this table
is for reading.
"""
from __future__ import annotations

import math
import textwrap

UP, DOWN = "\u2191", "\u2193"
MU = "\u00b5"

#: Footer: the direction markers and why a row's speedup is not its medians' ratio.
FOOTER = (f"{UP} higher is better, {DOWN} lower is better. speedup = median over rounds of each "
          "round's slow/fast (the two calls of one round are paired), so it can differ from "
          f"slow {MU}s / fast {MU}s, the ratio of the medians, when a path's time varies across "
          "rounds; noise = IQR / median of those per-round ratios. fair: slow_fair (inference "
          "mode, fast path off) instead of slow. dev: kernel time (CUDA). peak: share of the "
          "device's matmul peak.")


def _num(fmt: str, scale: float = 1.0, suffix: str = ""):
    def cell(v):
        return "" if not isinstance(v, float) or not math.isfinite(v) else \
            format(v * scale, fmt) + suffix
    return cell


US, RATIO, PCT = _num(".1f"), _num(".3f"), _num(".1f", 100, "%")
ERR, MIB = _num(".2g"), _num(".2f", 1 / 2**20)

#: (header, metric key, cell). Point columns come first, from the point itself.
METRIC_COLUMNS = (
    [(f"{p} {MU}s{DOWN}", f"wall_{p}_us", US) for p in ("slow", "fast")]
    + [(f"fair {MU}s{DOWN}", "wall_slow_fair_us", US)]
    + [(f"dev {p} {MU}s{DOWN}", f"device_{p}_us", US) for p in ("slow", "fast")]
    + [(f"speedup{UP}", "speedup", RATIO), (f"noise{DOWN}", "speedup_rel_iqr", PCT),
       (f"fair{UP}", "speedup_fair", RATIO), (f"dev speedup{UP}", "device_speedup", RATIO),
       (f"dev noise{DOWN}", "device_speedup_rel_iqr", PCT),
       (f"host share{DOWN}", "host_share_fast", PCT),
       (f"err{DOWN}", "max_abs_err", ERR), (f"fp32 err{DOWN}", "max_abs_err_fp32", ERR),
       (f"TFLOP/s{UP}", "wall_fast_tflops", _num(".3g")), (f"peak{UP}", "wall_fast_peak_fraction", PCT),
       (f"dev peak{UP}", "device_fast_peak_fraction", PCT),
       (f"MiB{DOWN}", "peak_mem_fast_bytes", MIB)])


def point_cells(r) -> list[str]:
    p = r.point
    return [p.dtype, str(p.batch_size), str(p.seq_len), str(p.embed_dim), str(p.num_heads),
            str(p.beta_b), RATIO(r.padding)]


POINT_HEADERS = ["dtype", "B", "S", "E", "H", "b", "pad"]


def columns(results) -> tuple[list[str], list[list[str]]]:
    """Headers and rows, without the columns no row has a value in."""
    headers = POINT_HEADERS + [h for h, _, _ in METRIC_COLUMNS] + ["status"]
    rows = []
    for r in results:
        m = r.metrics()
        rows.append(point_cells(r) + [cell(m.get(k, math.nan)) for _, k, cell in METRIC_COLUMNS]
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


def print_table(results) -> None:
    print(table_text(results))
    print(textwrap.fill(FOOTER, 110))

