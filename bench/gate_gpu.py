"""The gate on a GPU: A/A records and three planted fast-path regressions, without asv.

    PYTHONPATH=$PWD python3 bench/gate_gpu.py --out "$OUT"              # H200: seed grid / 8
    PYTHONPATH=$PWD python3 bench/gate_gpu.py --out /tmp/g --dry-run    # CPU, 4 tiny points

Records, each a fresh ``mhabench run --json`` process, interleaved: A, kernel, A, aten, A, host,
then the remaining A records (A = this torch as installed; the plants are tests/plant.py's, on
``PYTHONPATH``):

- ``kernel``: ``Plant(kernel_us=10)``, one extra ~10 µs GPU kernel per fast call;
- ``aten``: ``Plant(aten_ops=1)``, one extra tiny aten op per fast call;
- ``host``: ``Plant(busy_s=20e-6)``, 20 µs of host busy-wait per fast call.

The records are read as asv would have recorded them (:mod:`mhabench.figures.run_figures`) and judged
by :func:`mhabench.track.gate.compare` with the default rule. Printed, per comparison and figure,
``[failing, flagged, compared]`` points (failing: regressed; flagged: also advisory and changed):

- A/A, replicated as ``track --repeats 3`` records builds: three disjoint splits of six A
  records into 3 base + 3 head;
- A/A, leave one out (base: the other A records, head: one), one comparison per A record;
- A/A, single records (no replicates: the rounds' standard error and the drift allowance);
- each plant (one record) against the first three A records; for ``kernel``, flagged among the
  points where the extra kernel adds >= 3% of the fast path's device time; for ``host``,
  among the points where 20 µs exceed 3x the wall ratio's A/A spread over the A records (that
  count too); for ``aten``, by the host-work counts where the records carry ``host_work``.

Everything (records, report.json, log) goes into ``OUT/gate_gpu.tar.gz``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import plant  # noqa: E402

from mhabench.track import gate as g  # noqa: E402
from mhabench.figures.run_figures import stack  # noqa: E402
from mhabench.measure.stats import median  # noqa: E402

PLANTS = {"kernel": plant.Plant(kernel_us=10), "aten": plant.Plant(aten_ops=1),
          "host": plant.Plant(busy_s=20e-6)}
DEVICE_RATIOS = ("speedup.FastOverSlow.track_device", "speedup.FastOverSlow.track_device_fair")
WALL_RATIOS = ("speedup.FastOverSlow.track_wall", "speedup.FastOverSlow.track_wall_fair")


def record(name: str, plant_dir: Path | None, grid_args: list[str], work: Path, log) -> dict:
    out = work / "records" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    pp = [str(plant_dir)] if plant_dir else []
    env = {**os.environ, "PYTHONPATH": ":".join(pp + [str(REPO)] +
                                                 [os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "mhabench", "run", *grid_args, "--no-extras", "--no-peak",
           "--no-table", "--no-progress", "--json", str(out)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log(f"{name}: exit {proc.returncode} in {time.perf_counter() - t:.1f} s"
        + (f"; {proc.stderr.strip().splitlines()[-1]}" if proc.returncode and proc.stderr.strip()
           else ""))
    (work / "records" / f"{name}.log").write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
    return json.loads(out.read_text())


def counts(verdicts, only: set | None = None) -> dict:
    """{figure: [failing, flagged, compared]} (``only``: restricted to these points)."""
    out: dict = {}
    for v in verdicts:
        if only is not None and v.point not in only:
            continue
        c = out.setdefault(v.figure, [0, 0, 0])
        c[0] += v.regressed
        c[1] += v.status in g.FLAGGED
        c[2] += 1
    return out


def flagged_points(verdicts, figures, only) -> list:
    """[failing, flagged, eligible] points among ``only``."""
    fail = {v.point for v in verdicts if v.figure in figures and v.regressed}
    hit = {v.point for v in verdicts if v.figure in figures and v.status in g.FLAGGED}
    return [len(fail & only), len(hit & only), len(only)]


#: Disjoint 3 + 3 splits of six A records (base, head): each build replicated three times.
SPLITS = (((0, 2, 4), (1, 3, 5)), ((0, 1, 2), (3, 4, 5)), ((3, 4, 5), (0, 1, 2)))


def verdict_entry(v) -> dict:
    return {"exit": int(any(x.regressed for x in v)), "flagged": counts(v)}


def med(values, point):
    xs = [v for v in (values or {}).get(point, []) if isinstance(v, float) and math.isfinite(v)]
    return median(xs) if xs else math.nan


def analyse(a_docs: list[dict], planted: dict[str, dict]) -> dict:
    rep: dict = {"aa_replicated_3v3": [], "aa_leave_one_out": [], "aa_single_records": []}
    if len(a_docs) >= 6:
        for base, head in SPLITS:
            v = g.compare(stack([a_docs[i] for i in base]), stack([a_docs[i] for i in head]),
                          g.Rule())
            rep["aa_replicated_3v3"].append({"base": [f"A{i + 1}" for i in base],
                                             **verdict_entry(v)})
    for i in range(len(a_docs)):
        base = stack([d for j, d in enumerate(a_docs) if j != i])
        rep["aa_leave_one_out"].append(verdict_entry(g.compare(base, stack([a_docs[i]]),
                                                               g.Rule())))
    for i in range(0, len(a_docs) - 1, 2):
        rep["aa_single_records"].append(verdict_entry(g.compare(
            stack([a_docs[i]]), stack([a_docs[i + 1]]), g.Rule())))
    a = stack(a_docs[:3])
    spread = stack(a_docs)
    for name, doc in planted.items():
        p = stack([doc])
        v = g.compare(a, p, g.Rule())
        entry = verdict_entry(v)
        points = set(a.get(WALL_RATIOS[0], {}))
        if name == "kernel":
            dev_a, dev_p = a.get("time_per_call.DeviceTime.track_fast"), p.get(
                "time_per_call.DeviceTime.track_fast")
            eligible = {pt for pt in points if med(dev_p, pt) / med(dev_a, pt) - 1 >= 0.03}
            entry["flagged_where_device_time_rose_3pct"] = flagged_points(v, DEVICE_RATIOS,
                                                                          eligible)
            nominal = {pt for pt in points if 10.0 / med(dev_a, pt) >= 0.03}
            entry["flagged_where_10us_is_3pct_of_device_time"] = flagged_points(
                v, DEVICE_RATIOS, nominal)
        if name == "host":
            wall = a.get("time_per_call.WallTime.track_fast")
            eligible = {pt for pt in points
                        if 20.0 / med(wall, pt) > 3 * g.rel_range(spread[WALL_RATIOS[0]][pt])}
            entry["flagged_where_20us_exceeds_3x_aa_spread"] = flagged_points(v, WALL_RATIOS,
                                                                              eligible)
        if name == "aten":
            host = [f for f in p if f.startswith("host.HostWork.")]
            entry["host_work_figures"] = host or "none recorded (no host_work in the results)"
            entry["flagged_by_host_work"] = flagged_points(v, set(host), points)
        rep[name] = entry
    return rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", ""), help="where the tar goes ($OUT)")
    ap.add_argument("--stride", type=int, default=8, help="seed grid stride (8: 160 points)")
    ap.add_argument("--records", type=int, default=6, help="A records (6: three 3 + 3 splits)")
    ap.add_argument("--target-ms", type=float, default=None, help="mhabench run's --target-ms")
    ap.add_argument("--plants", default=",".join(PLANTS),
                    help="which planted builds to record (comma-separated; default: all)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, 4 tiny points, one thread")
    args = ap.parse_args()
    if not args.out:
        ap.error("--out DIR (or $OUT) is needed")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gate-gpu-"))
    lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    if args.dry_run:
        os.environ["OMP_NUM_THREADS"] = "1"
        grid = ["--device", "cpu", "--batch-sizes", "2", "--seq-lens", "8,16", "--embed-dims",
                "32", "--heads", "4", "--betas", "1,61"]
    else:
        grid = ["--device", "cuda", "--grid", "seed", "--stride", str(args.stride)]
    if args.target_ms:
        grid += ["--target-ms", str(args.target_ms)]
    names = [n for n in args.plants.split(",") if n]
    unknown = sorted(set(names) - set(PLANTS))
    if unknown:
        ap.error(f"unknown plant {unknown[0]!r} (choose from {', '.join(PLANTS)})")
    dirs = {n: plant.install_dir(work / f"plant-{n}", PLANTS[n]) for n in names}
    t0 = time.perf_counter()
    a_docs, planted = [], {}
    for i in range(max(args.records, len(names))):
        if i < args.records:
            a_docs.append(record(f"A{i + 1}", None, grid, work, log))
        if i < len(names):
            planted[names[i]] = record(names[i], dirs[names[i]], grid, work, log)
    rep = {"points": len(a_docs[0]["results"]), "records_s": round(time.perf_counter() - t0, 1),
           "torch": a_docs[0]["meta"].get("torch"), "device": a_docs[0]["meta"].get("device"),
           **analyse(a_docs, planted)}
    text = json.dumps(rep, indent=1)
    log(text)
    (work / "report.json").write_text(text + "\n")
    (work / "log.txt").write_text("\n".join(lines) + "\n")
    tar = out / "gate_gpu.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for p in sorted(work.rglob("*")):
            if p.is_file() and "plant-" not in p.relative_to(work).parts[0]:
                t.add(p, arcname=str(Path("gate_gpu") / p.relative_to(work)))
    print(f"wrote {tar}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
