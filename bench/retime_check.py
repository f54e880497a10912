"""What timing points again did in an ``agree`` sitting (``bench/gpu_round.py agree``'s folder):
per process of ours, from its journal, the points timed again, those whose second probe read
faster (the timing kept), and ours / the reference's fast time at those points before and
after; then how well the probe tells a point's figure, on the records as kept.

    python bench/retime_check.py DIR [--set seed8] [--variant default]

A point's figure counts as slow where its fast or slow wall time is above 1.3x the lowest of
our processes' at that point; its probe as slow where it read above 1.3x the process's fast
state (:func:`mhabench.measure.retime.fast_state`). Prints JSON: per process the counts
(``probe_slow``: points whose timing kept still read slow; ``rounds_left_out``: interleaved rounds
left out, of all rounds), and ``missed`` (figure slow, probe fast) and ``idle`` (probe slow,
figure fine) out of their totals.
"""
from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure.retime import SLOW_STATE, fast_state  # noqa: E402

SLOW_FIGURE = 1.3


def short(label: str) -> str:
    return "-".join(label.split("-")[:5])


def walls(journal: Path) -> tuple[dict, dict]:
    """(first wall-pass record, last wall-pass record) per point, from a run's journal."""
    first, last = {}, {}
    for line in journal.open():
        e = json.loads(line)
        if e.get("stage") == "wall":
            first.setdefault(short(e["label"]), e["record"])
            last[short(e["label"])] = e["record"]
    return first, last


def fast_us(record: dict) -> float:
    return statistics.median(record["rounds"]["fast"])


def check(folder: Path, sset: str, variant: str) -> dict:
    refs = [json.loads(Path(f).read_text())["points"]
            for f in sorted(glob.glob(str(folder / f"agree-{sset}-ref-*.json")))]
    ref = {k: statistics.median(r[k]["wall_fast_us"] for r in refs) for k in refs[0]} if refs else {}
    docs = [json.loads(Path(f).read_text()) for f in
            sorted(glob.glob(str(folder / f"agree-{sset}-{variant}-[0-9].json")))]
    runs = [{short(r["label"]): r for r in d["results"] if r["status"] == "ok"} for d in docs]
    best = {path: {k: min(r[k]["metrics"][path] for r in runs if k in r) for k in runs[0]}
            for path in ("wall_fast_us", "wall_slow_us")} if runs else {}
    out = []
    for i, run in enumerate(runs):
        journal = folder / f"agree-{sset}-{variant}-{i}.journal.jsonl"
        first, last = walls(journal)
        again = [k for k in first if last[k] is not first[k]]
        kept = [k for k in again if max(last[k]["host_probe_us"]) < max(first[k]["host_probe_us"])]
        fast = fast_state({k: r["host_probe_us"] for k, r in run.items()})
        probe_slow = {k for k, r in run.items() if fast is not None and r["host_probe_us"]
                      and max(r["host_probe_us"]) > SLOW_STATE * fast}
        fig_slow = {k for k, r in run.items() if any(
            r["metrics"][p] > SLOW_FIGURE * best[p][k] for p in best)}
        row = {"points": len(run), "timed_again": len(again), "kept": len(kept),
               "probe_fast_state_us": round(fast, 1) if fast is not None else None,
               "probe_slow": len(probe_slow),
               "rounds_left_out": [sum(r.get("rounds_left_out", 0) for r in run.values()),
                                   sum(len(r.get("rounds_us", {}).get("fast", [])) + r.get("rounds_left_out", 0)
                                       for r in run.values())]}
        if ref and kept:
            row["fast_over_reference_kept_before_after"] = [
                round(statistics.median(fast_us(first[k]) / ref[k] for k in kept), 3),
                round(statistics.median(fast_us(last[k]) / ref[k] for k in kept), 3)]
        row["missed"] = [len(fig_slow - probe_slow), len(run) - len(probe_slow)]
        row["idle"] = [len(probe_slow - fig_slow), len(probe_slow)]
        out.append(row)
    return {"set": sset, "variant": variant, "processes": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--set", default="seed8", dest="sset")
    ap.add_argument("--variant", default="default")
    args = ap.parse_args()
    print(json.dumps(check(args.folder, args.sset, args.variant), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
