"""How often the gate is right on this CPU: A/A records, planted slowdowns, confirm, the feed, cost.

    python bench/gate_cpu.py [--repeats 3] [--plants 0.1,0.25,0.5] [--plant-kind call]
                             [--work DIR] [--out JSON]

Through a real ``mhabench track`` (asv, smoke grid, one thread): builds ``A``, ``A`` again and
one build per planted fast-path slowdown (tests/plant.py: ``--plant-kind call``,
``Plant(call_frac=F)``, every fast call busy-waits F of its whole duration; ``kernel``,
``Plant(busy_frac=F)``, F of the attention kernel's, which slows the call by less), each recorded ``--repeats`` times, builds interleaved. Then,
with the gate's default rule:

- A/A, leave one out: base = two records of A, head = its third (3 comparisons of builds that
  are the same; the spread comes from records the head is not one of); A vs A again (all
  records); and record pairs judged without replicates (``--noise rounds``: one record's
  standard error plus drift, the rule a single record gets);
- each plant: A (all records) vs the plant (all records; and its first record alone): exit
  status, and points flagged out of the smoke grid's per figure;
- ``mhabench confirm``: every smoke point of A vs A (interpreters alike), and the 10% plant's
  flagged points against an interpreter carrying that plant;
- the regressions feed of ``asv publish``: entries per benchmark at the step of A again (A/A)
  and at the plants;
- cost: the first record of every build, then the remaining ``--repeats - 1``.

Prints counts out of totals; ``--out`` writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import plant  # noqa: E402

from mhabench.track import gate as g  # noqa: E402
from mhabench.track.builds import Build  # noqa: E402
from mhabench.track.track import Settings, asv, prepare, run_builds  # noqa: E402

MACHINE = "bench-cpu"
WALL = ("speedup.FastOverSlow.track_wall", "speedup.FastOverSlow.track_wall_fair")


def summary(verdicts) -> dict:
    """exit status and {figure: [flagged, total]} of the wall ratios."""
    out = {"exit": int(any(v.regressed for v in verdicts))}
    for fig in WALL:
        vs = [v for v in verdicts if v.figure == fig]
        out[fig.rsplit(".", 1)[-1]] = [sum(v.status in g.FLAGGED for v in vs), len(vs)]
    return out


def judge_sets(before_recs, after_recs, rule=g.Rule()):
    return g.compare(g.point_values(before_recs), g.point_values(after_recs), rule)


def plant_of(kind: str, frac: float) -> "plant.Plant":
    return plant.Plant(call_frac=frac) if kind == "call" else plant.Plant(busy_frac=frac)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plants", default="0.1,0.25,0.5", help="busy fractions, one build each")
    ap.add_argument("--plant-kind", choices=("call", "kernel"), default="call",
                    help="slow the whole fast call (call_frac) or its attention kernel (busy_frac)")
    ap.add_argument("--work", default="", help="keep everything here (default: a temp dir)")
    ap.add_argument("--out", default="", help="write the figures as JSON")
    ap.add_argument("--skip-confirm", action="store_true")
    ap.add_argument("--analyse-only", action="store_true",
                    help="judge the records already in --work again (no new measurement)")
    args = ap.parse_args()
    fracs = [float(f) for f in args.plants.split(",") if f]
    work = Path(args.work or tempfile.mkdtemp(prefix="gate-cpu-"))
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1", "OMP_NUM_THREADS": "1"}
    torch_version = __import__("torch").__version__.split("+")[0]
    day, t0 = 86_400, 1_700_000_000
    builds = [Build(torch_version, date=t0), Build(torch_version, date=t0 + day, variant="again")]
    for i, f in enumerate(fracs):
        wheel = plant.build_wheel(work / "wheels" / f"p{f:g}", plant=plant_of(args.plant_kind, f))
        builds.append(Build(torch_version, date=t0 + (2 + i) * day, variant=f"p{f:g}",
                            extra=(str(wheel),)))
    s = Settings(dir=work / "asv", project=REPO, grid="smoke", device="cpu", machine=MACHINE,
                 uninstall=("mhabench-plant",), asv_env=env, repeats=1)
    builds, commits = prepare(s, builds)
    tags = [b.tag for b in builds]
    report: dict = {"builds": tags, "repeats": args.repeats, "work": str(work)}

    if not args.analyse_only:
        report.update(record(s, builds, commits, args.repeats))

    res = s.dir / "results"
    recs = {tag: g.build_records(res, MACHINE, commits[tag]) for tag in tags}
    a, again = tags[0], tags[1]
    aa = []
    for i, head in enumerate(recs[a]):
        base = [r for j, r in enumerate(recs[a]) if j != i]
        aa.append(summary(judge_sets(base, [head])))
    report["aa_leave_one_out"] = aa
    report["aa_build_vs_again"] = summary(judge_sets(recs[a], recs[again]))
    pairs = [(i, j) for i in range(len(recs[a])) for j in range(i + 1, len(recs[a]))]
    report["aa_record_pairs_rounds_rule"] = [
        summary(judge_sets([recs[a][i]], [recs[a][j]], g.Rule(noise="rounds"))) for i, j in pairs]
    planted = {}
    for f, tag in zip(fracs, tags[2:]):
        planted[f"{f:g}"] = {
            "all_records": summary(judge_sets(recs[a], recs[tag])),
            "first_record": summary(judge_sets(recs[a], recs[tag][:1])),
            "single_records_rounds_rule": summary(judge_sets(recs[a][:1], recs[tag][:1],
                                                             g.Rule(noise="rounds")))}
    report["planted"] = planted

    # the feed: entries per benchmark at each build's step
    try:
        feed = json.loads((s.dir / "html" / "regressions.json").read_text())["regressions"]
        index = json.loads((s.dir / "html" / "index.json").read_text())
        rev = {h: int(r) for r, h in index["revision_to_hash"].items()}
        by_step: dict = {}
        for entry in feed:
            name = entry[0].partition("(")[0]
            for step in entry[-1]:
                tag = next((t for t in tags if rev.get(commits[t]) == step[1]), str(step[1]))
                by_step.setdefault(tag, {}).setdefault(name, 0)
                by_step[tag][name] += 1
        report["feed_entries_by_step"] = by_step
    except (OSError, ValueError, KeyError) as exc:
        report["feed_entries_by_step"] = f"unavailable: {exc}"

    if not args.skip_confirm:
        report["confirm"] = run_confirms(work, fracs, recs, tags, args.plant_kind)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def record(s: Settings, builds, commits, repeats: int) -> dict:
    """Every build once, then the remaining records (timed apart), then publish."""
    t = time.perf_counter()
    status = run_builds(s, builds, None, commits)
    first = time.perf_counter() - t
    s = Settings(**{**s.__dict__, "repeats": repeats})
    t = time.perf_counter()
    status = max(status, run_builds(s, builds, None, commits))
    rest = time.perf_counter() - t
    return {"cost_s": {"first_record_of_each_build": round(first, 1),
                       "remaining_records": round(rest, 1),
                       f"repeats_{repeats}_over_one": round((first + rest) / first, 3)},
            "asv_run_status": status, "publish_status": asv(s, "publish", echo=False)}


def run_confirms(work: Path, fracs, recs, tags, kind: str = "call") -> dict:
    """A/A on every smoke point; the first plant's flagged points against that plant."""
    plain = plant.interpreter(work / "plain", REPO)
    out = {}
    points = sorted(g.point_values(recs[tags[0]])[WALL[0]])
    out["aa_all_points"] = confirm(plain, plain, points, work / "confirm-aa.json")
    flagged = [v.point for v in judge_sets(recs[tags[0]], recs[tags[2]])
               if v.figure in WALL and v.status in g.FLAGGED]
    pdir = plant.install_dir(work / "plant-confirm", plant_of(kind, fracs[0]))
    slowed = plant.interpreter(work / "slowed", REPO, pdir)
    out[f"plant_{fracs[0]:g}_flagged"] = confirm(plain, slowed, sorted(set(flagged)),
                                                 work / "confirm-plant.json")
    return out


def confirm(base: str, head: str, points, out: Path) -> dict:
    if not points:
        return {"points": 0}
    proc = subprocess.run([sys.executable, "-m", "mhabench", "confirm", "base", "head",
                           "--points", ",".join(points), "--base-python", base,
                           "--head-python", head, "--json", str(out)],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if not out.exists():
        return {"error": (proc.stderr or proc.stdout)[-500:]}
    found = json.loads(out.read_text())["confirmations"]
    verdicts: dict = {}
    for c in found:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
    return {"exit": proc.returncode, "total": len(found), **verdicts}


if __name__ == "__main__":
    sys.exit(main())
