"""Do instruction counts hold still, and do they see small host regressions? A/A and planted runs.

    python bench/instructions_aa.py [--runs 3] [--grid smoke] [--out FILE] [--jobs 2]
        [--points LABEL,...] [--no-plants]

Every run is one host sweep (:func:`mhabench.measure.instructions.sweep`: one fresh valgrind process
over the grid), in this order: ``--runs`` of the unchanged build; one with about 210 extra
Python bytecodes per fast call (``Plant(py_loop=30)`` from tests/plant.py, put on
``PYTHONPATH`` through its ``sitecustomize``); one with one extra tiny aten op per fast call
(``Plant(aten_ops=1)``). Prints per point and path the A/A spread ((max - min) / median of the
unchanged runs), each planted build's change of the fast count against the A/A median, and
whether it is flagged: a change beyond the point's A/A spread (and beyond 0.3%, the target
spread). Then the counts out of totals: points within the 0.3% target, points flagged, and the
seconds each sweep took (the host suite's cost). ``--jobs`` runs sweeps side by side (counts
do not depend on the host's load; the seconds do).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mhabench.measure import instructions as ins  # noqa: E402
from mhabench.measure.config import named_grid  # noqa: E402
from mhabench.measure.paths import PATHS  # noqa: E402
from mhabench.measure.stats import spread  # noqa: E402
from plant import Plant, install_dir  # noqa: E402

TARGET = 0.003
PLANTS = {"py_loop=30": Plant(py_loop=30), "aten_ops=1": Plant(aten_ops=1)}


def run(points, plant: Plant | None, tmp: Path, name: str, plan: ins.Plan) -> dict:
    env = None
    if plant is not None:
        import os
        d = install_dir(tmp / name, plant)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(d)] + [p for p in env.get("PYTHONPATH", "")
                                                         .split(os.pathsep) if p])
    out = ins.sweep(points, plan, env=env)
    meta = out.pop("")
    bad = {k: v["message"] for k, v in out.items() if v["status"] != "ok"}
    print(f"{name}: {meta['seconds']:.0f} s, {len(out) - len(bad)}/{len(out)} points ok"
          + (f"; failed: {bad}" if bad else ""), flush=True)
    return {"meta": meta, "points": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grid", default="smoke")
    ap.add_argument("--out", default=None, help="JSON of every run's counts")
    ap.add_argument("--from-json", default=None, help="analyse a saved --out file, run nothing")
    ap.add_argument("--points", default=None, metavar="LABEL,...", help="only these grid points")
    ap.add_argument("--jobs", type=int, default=1, help="sweeps run side by side (1)")
    ap.add_argument("--no-plants", action="store_true", help="A/A runs only")
    args = ap.parse_args()
    if args.from_json:
        runs = json.loads(Path(args.from_json).read_text())
    else:
        points = named_grid(args.grid, "fp32", "cpu")
        if args.points:
            want = args.points.split(",")
            points = [p for p in points if p.label in want]
            if len(points) != len(want):
                ap.error(f"--points {args.points}: not all on the {args.grid} grid")
        plan = ins.Plan()
        jobs = [(f"aa{i + 1}", None) for i in range(args.runs)]
        jobs += [] if args.no_plants else list(PLANTS.items())
        from concurrent.futures import ThreadPoolExecutor
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max(1, args.jobs)) as pool:
            done = {name: pool.submit(run, points, plant, Path(tmp), name, plan)
                    for name, plant in jobs}
            runs = {name: f.result() for name, f in done.items()}
        if args.out:
            Path(args.out).write_text(json.dumps(runs, indent=1))
    report(runs)
    return 0


def report(runs: dict) -> None:
    aa = [r["points"] for k, r in runs.items() if k.startswith("aa")]
    labels = [k for k in aa[0] if all(p.get(k, {}).get("status") == "ok" for p in aa)]
    header = (["point"] + [f"aa_{p}" for p in PATHS] + ["fast M/call"]
              + [f"{n} fast" for n in PLANTS] + ["flagged"])
    print("\nA/A spread per path, planted change of the fast count vs the A/A median:")
    print("  ".join(f"{h:>14}" for h in header))
    within, flagged, changes = 0, {n: 0 for n in PLANTS}, {n: [] for n in PLANTS}
    worst = 0.0
    for label in labels:
        sp = {p: spread([r[label]["instructions"][p] for r in aa]) for p in PATHS}
        worst = max(worst, *sp.values())
        within += all(v <= TARGET for v in sp.values())
        med = statistics.median(r[label]["instructions"]["fast"] for r in aa)
        cells = [label[:14]] + [f"{100 * sp[p]:.3f}%" for p in PATHS] + [f"{med / 1e6:.4f}"]
        marks = []
        for n in PLANTS:
            pt = runs.get(n, {}).get("points", {}).get(label, {})
            if pt.get("status") != "ok":
                cells.append("-")
                continue
            ch = pt["instructions"]["fast"] / med - 1
            changes[n].append(ch)
            hit = abs(ch) > max(sp["fast"], TARGET)
            flagged[n] += hit
            cells.append(f"{100 * ch:+.3f}%")
            marks.append(n if hit else "")
        cells.append(",".join(m for m in marks if m) or "none")
        print("  ".join(f"{c:>14}" for c in cells))
    n = len(labels)
    print(f"\npoints measured in every A/A run: {n} of {len(aa[0])}")
    print(f"A/A spread <= {100 * TARGET:.1f}% on every path: {within} of {n} points "
          f"(worst {100 * worst:.3f}%)")
    for name in PLANTS:
        if changes[name]:
            print(f"{name}: flagged at {flagged[name]} of {n} points; fast count change median "
                  f"{100 * statistics.median(changes[name]):+.3f}%, range "
                  f"{100 * min(changes[name]):+.3f}% .. {100 * max(changes[name]):+.3f}%")
    print("sweep cost (one valgrind process each), wall (CPU) seconds: "
          + ", ".join(f"{k} {r['meta']['seconds']:.0f} ({r['meta'].get('cpu_s', math.nan):.0f}) s"
                      for k, r in runs.items()))
    import_s = [_stage_s(r["meta"]["stages"], "imported torch") for r in runs.values()]
    print("  of which torch import under valgrind: "
          + ", ".join(f"{s:.0f} s" for s in import_s if s is not None))


def _stage_s(stages: list[str], what: str):
    for line in stages:
        if what in line:
            return float(line.split(": ")[1].split()[0])
    return None


if __name__ == "__main__":
    sys.exit(main())
