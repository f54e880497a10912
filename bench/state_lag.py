"""How long the host's slow state lasts, read from a sweep's own host probes.

    python bench/state_lag.py DIR/agree-*-[0-9].journal.jsonl ... [--keep probes.json]
    python bench/state_lag.py --probes docs/lab/data/gpu-2026-12-04-round13-probes.json

The points timed again (:mod:`mhabench.measure.retime`) are chosen on the premise that the slow
state comes in episodes: a try whose probe reads slow ends the stretch, since the host is slow
now. This reads each process's first wall pass of every point, in the order measured, and asks
how often two points ``lag`` points apart both read slow (above
:data:`~mhabench.measure.retime.SLOW_STATE` times the sweep's fast state), against the share
``p * p`` that a state drawn afresh at each point would give; and how often a point's two probes
(just before and just after its rounds) both read slow. Episodes many points long make the pair
share near ``p``; a state that holds for less than a point makes it near ``p * p``.
Prints JSON, one row per process.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mhabench.measure.retime import SLOW_STATE, fast_state  # noqa: E402

LAGS = (1, 10, 40, 80)


def first_probes(journal: Path) -> list[list[float]]:
    """Each point's probes ([before, after] its rounds) from its first wall pass, in the order
    the points were measured (:func:`retime_check.walls`' first records, in arrival order)."""
    from retime_check import walls
    return [r["host_probe_us"] for r in walls(journal)[0].values() if r.get("host_probe_us")]


def lag_row(probes: Sequence[Sequence[float]], lags: Sequence[int] = LAGS) -> dict:
    """A process's slow share ``p`` and, per lag, the share of point pairs that far apart which
    both read slow, beside ``p * p``; the share whose own two probes both read slow, beside the
    product of the two probes' shares."""
    fast = fast_state({str(i): pr for i, pr in enumerate(probes)})
    if fast is None:
        return {"points": len(probes)}
    slow = [max(pr) > SLOW_STATE * fast for pr in probes]
    before = [pr[0] > SLOW_STATE * fast for pr in probes]
    after = [pr[-1] > SLOW_STATE * fast for pr in probes]
    n = len(slow)
    p = sum(slow) / n

    def share(xs):
        return round(sum(xs) / len(xs), 3) if xs else None
    return {"points": n, "fast_state_us": round(fast, 1), "slow_share": round(p, 3),
            "both_slow_at_lag": {lag: [share([slow[i] and slow[i + lag] for i in range(n - lag)]),
                                       round(p * p, 3)] for lag in lags if lag < n},
            "before_and_after_slow": [share([b and a for b, a in zip(before, after)]),
                                      round(share(before) * share(after), 3)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("journals", nargs="*", type=Path)
    ap.add_argument("--probes", type=Path, help="a file --keep wrote, instead of journals")
    ap.add_argument("--keep", type=Path, help="write the probes read, per process, to this file")
    args = ap.parse_args(argv)
    if args.probes:
        probes = json.loads(args.probes.read_text())
    else:
        probes = {j.name.split(".journal")[0]: first_probes(j) for j in args.journals}
    if not probes:
        print("no journals given (or --probes FILE)", file=sys.stderr)
        return 2
    if args.keep:
        args.keep.write_text(json.dumps(probes))
    print(json.dumps({name: lag_row(pr) for name, pr in probes.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
