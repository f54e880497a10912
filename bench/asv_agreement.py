"""How far asv's recorded speedups are from a `mhabench run` of the same points.

    python bench/asv_agreement.py ASV_RUN_LOG RESULTS.json [RESULTS.json ...]

Reads the tables `asv run` prints (``speedup.FastOverSlow.track_*``: fast/slow per point) and
compares 1/value with each run's speedups: per point, |asv / run - 1|; prints the median and
p90 over points, next to the same figure between the runs themselves.
"""
from __future__ import annotations

import itertools
import json
import re
import sys

import numpy as np

FIGURES = {"track_wall": "speedup", "track_wall_fair": "speedup_fair",
           "track_device": "device_speedup", "track_device_fair": "device_speedup_fair"}
ROW = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.eE+-]+|n/a|failed)\s*$")


def asv_tables(log: str) -> dict[str, dict[tuple, float]]:
    out, current = {}, None
    for line in log.splitlines():
        m = re.search(r"··· (\S+\.track_\w+)\s", line)
        if m:
            name = m.group(1)
            prefix = "speedup.FastOverSlow."
            current = out.setdefault(name[len(prefix):], {}) if name.startswith(prefix) else None
            continue
        if current is not None:
            r = ROW.match(line)
            if r and r.group(6) not in ("n/a", "failed"):
                current[tuple(int(x) for x in r.groups()[:5])] = float(r.group(6))
    return out


def run_values(path: str, metric: str) -> dict[tuple, float]:
    doc = json.load(open(path))
    return {(p["batch_size"], p["seq_len"], p["embed_dim"], p["num_heads"], p["beta_b"]):
            r["metrics"][metric] for r in doc["results"] for p in [r["point"]]
            if r["metrics"].get(metric)}


def summary(devs: list[float]) -> str:
    return (f"median {100 * np.median(devs):.2f}% p90 {100 * np.quantile(devs, 0.9):.2f}% "
            f"({len(devs)} points)")


def main() -> int:
    tables = asv_tables(open(sys.argv[1]).read())
    runs = sys.argv[2:]
    for name, metric in FIGURES.items():
        asv = {k: 1.0 / v for k, v in tables.get(name, {}).items() if v}
        vals = [run_values(p, metric) for p in runs]
        for path, run in zip(runs, vals):
            devs = [abs(asv[k] / run[k] - 1) for k in asv if k in run]
            print(f"{name}: asv vs {path}: {summary(devs)}")
        for (pa, a), (pb, b) in itertools.combinations(zip(runs, vals), 2):
            devs = [abs(a[k] / b[k] - 1) for k in a if k in b]
            print(f"{name}: run vs run ({pa} / {pb}): {summary(devs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
