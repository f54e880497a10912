"""Summarise a `mhabench run --json` result: the figures quoted in docs/measurements.md.

    python bench/seed_summary.py RESULTS.json
"""
from __future__ import annotations

import collections
import json
import sys

import numpy as np


def main() -> int:
    doc = json.load(open(sys.argv[1]))
    rs = [r for r in doc["results"] if r["status"] == "ok"]
    m = lambda k: np.array([r["metrics"].get(k) if r["metrics"].get(k) is not None else np.nan
                            for r in rs], dtype=float)
    meta = doc["meta"]
    print("points", len(doc["results"]), "ok", len(rs), "seconds", meta.get("seconds"),
          "cost", meta.get("cost_s"), "peak", meta.get("peak"))
    for k in ("speedup", "speedup_fair", "device_speedup", "device_speedup_fair",
              "host_share_fast", "max_abs_err", "max_abs_err_fp32", "device_fast_peak_fraction",
              "device_fast_tflops", "wall_fast_peak_fraction", "speedup_rel_iqr",
              "device_speedup_rel_iqr"):
        v = m(k)
        v = v[np.isfinite(v)]
        if len(v):
            print(f"{k}: median {np.median(v):.4g} min {v.min():.4g} max {v.max():.4g} n {len(v)}")
    sp = m("speedup")
    print("wall speedup < 1 at %.1f%% of points" % (100 * np.mean(sp < 1)))
    print("sdpa_backend", collections.Counter(r.get("sdpa_backend") for r in rs))
    big = max(rs, key=lambda r: r["metrics"].get("padded_flops") or 0)
    keys = [k for k in big["metrics"] if k.startswith(("peak_mem", "device_fast", "device_slow"))]
    print("largest point", big["label"], {k: big["metrics"][k] for k in keys})
    for b in ("flash", "efficient", "cudnn"):
        v = m(f"device_fast_{b}_us")
        print(f"device_fast_{b}_us measured at {int(np.isfinite(v).sum())} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
