"""A point's rounds timed back to back, against its rounds spread over a chunk of points and
each kept by its own probe: which holds the host's slow state out of the figure, in one process.

    python bench/interleave_probe.py --grid seed/8 --chunk 8 --device cuda --out FILE.json
    python bench/interleave_probe.py ... --design mixed    # both ways across the chunk's time

Where the host's slow state is drawn afresh within a few points (``bench/state_lag.py``), a
point whose rounds run back to back (some 50 ms) sits in one state, and timing it again costs
its rounds again. Spread over a chunk of points, a point's rounds land some hundreds of ms apart,
in states drawn apart; a round whose two probes (just before and after it) read the fast state
can be kept and the others left out, at the cost of the probes alone. Both schemes time every
point of a chunk with the same inputs, paths, windows and rounds (:func:`schedule`): in turn,
the scheme that goes first alternating from chunk to chunk (``alternate``), or the back-to-back
points placed among the spread rounds (``mixed``), so that an episode as long as a scheme's pass
over the chunk does not fall on one scheme alone. Per point and scheme, the fast path's figure against the
fastest round either scheme timed at that point tells whether the figure held the slow state.
Prints (and writes) JSON: per scheme the share of points held slow (figure above
:data:`HELD_SLOW` times that fastest round), the median of figure / fastest round, and the
seconds spent.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: A figure this far above the point's fastest round held the slow state (the probe reads the
#: slow state at 1.3x its fast state; a host-bound fast call moves by some 1.3-2x with it).
HELD_SLOW = 1.15
SCHEMES = ("back_to_back", "spread_all", "spread_kept")


def figures(rounds: list[float], probes: list[list[float]], fast_state: float,
            slow_state: float) -> dict:
    """One point's fast-path figures from its spread rounds: the median of every round, and the
    median of the rounds whose probes both read under ``slow_state`` times ``fast_state`` (all of
    them where none did: a point is never left without a figure)."""
    kept = [r for r, pr in zip(rounds, probes) if max(pr) <= slow_state * fast_state]
    return {"spread_all": statistics.median(rounds),
            "spread_kept": statistics.median(kept or rounds), "rounds_kept": len(kept)}


def summary(points: dict[str, dict]) -> dict:
    """Per scheme: points held slow (figure above :data:`HELD_SLOW` times the point's fastest
    round of either scheme), out of the points, and the median figure / fastest round."""
    out = {}
    for s in SCHEMES:
        ratios = [p[s] / p["fastest_round"] for p in points.values()]
        out[s] = {"held_slow": [sum(r > HELD_SLOW for r in ratios), len(ratios)],
                  "median_over_fastest": round(statistics.median(ratios), 3) if ratios else None}
    return out


DESIGNS = ("alternate", "mixed")


def schedule(rounds: list[int], design: str, back_to_back_first: bool) -> list[tuple]:
    """The order of a chunk's work: ``("back_to_back", i)`` times point ``i``'s rounds in one
    stretch, ``("spread", r, i)`` its round ``r`` alone. ``alternate``: every back-to-back point,
    then every spread round, round by round (or the other way round); each way then takes its own
    stretch of the chunk's time, and an episode as long as a stretch takes one way only.
    ``mixed``: the back-to-back points placed evenly among the spread rounds, so that both ways
    span the chunk's time and meet its episodes alike."""
    b2b = [("back_to_back", i) for i in range(len(rounds))]
    spread = [("spread", r, i) for r in range(max(rounds, default=0))
              for i, n in enumerate(rounds) if r < n]
    if design == "alternate":
        return b2b + spread if back_to_back_first else spread + b2b
    out = list(spread)
    for k in reversed(range(len(b2b))):
        out.insert(int((k + 0.5) * len(spread) / len(b2b)), b2b[k])
    return out


def chunk_tally(points: dict[str, dict], chunk: int) -> dict:
    """Chunk by chunk (the points in the order measured), which way held more points slow:
    back to back, or spread with the rounds kept; the chunks where they held as many are ties.
    A chunk is one draw of the host's episodes, so this is what a sign test counts."""
    labels = list(points)
    out = {"back_to_back": 0, "spread_kept": 0, "tied": 0}
    for c in range(0, len(labels), chunk):
        held = {s: sum(points[k][s] > HELD_SLOW * points[k]["fastest_round"]
                       for k in labels[c:c + chunk]) for s in ("back_to_back", "spread_kept")}
        if held["back_to_back"] == held["spread_kept"]:
            out["tied"] += 1
        else:
            out[max(held, key=held.get)] += 1
    return out


def one_round(clock, paths: dict, calls: dict, r: int, lead_in: int) -> float:
    """Round ``r`` of a point: a window of each path in the round's order
    (``timing.wall_rounds``'s rounds, one at a time); the fast path's µs per call."""
    from mhabench.measure.timing import round_order
    fast = None
    for k in round_order(r, list(paths)):
        w = clock.window(paths[k], calls[k], lead_in)
        if k == "fast":
            fast = w
    return fast


def run(grid: str, chunk: int, device: str, design: str = "alternate") -> dict:
    import torch

    from mhabench.measure.config import parse_grid
    from mhabench.measure.host_setup import collector_off
    from mhabench.measure.inputs import build
    from mhabench.measure.machine import host_probe
    from mhabench.measure.passes import active_paths
    from mhabench.measure.paths import run_fast_checked
    from mhabench.measure.protocol import Protocol
    from mhabench.measure.retime import SLOW_STATE, fast_state
    from mhabench.measure.timing import Clock, plan_rounds, warmup_together
    proto = Protocol()
    clock = Clock(device)
    pts = parse_grid(grid, "float16", device).points
    points, probes_all, spent = {}, {}, {s: 0.0 for s in ("back_to_back", "spread")}
    for c in range(0, len(pts), chunk):
        live = []
        for p in pts[c:c + chunk]:
            inp = build(p)
            paths = active_paths(inp)
            run_fast_checked(paths["fast"])
            calls, n = plan_rounds(clock, paths, proto)
            live.append((p.label, paths, calls, n))
        got = {label: {"b2b": [], "spread": [], "b2b_probe": [], "spread_probe": []}
               for label, *_ in live}
        warm = False
        with collector_off():  # as during the rounds of ``mhabench run``
            for action in schedule([n for *_, n in live], design, (c // chunk) % 2 == 0):
                t0 = time.perf_counter()
                if action[0] == "back_to_back":
                    label, paths, calls, n = live[action[1]]
                    warmup_together(clock, paths, proto)
                    before = host_probe()
                    got[label]["b2b"] = [one_round(clock, paths, calls, r, proto.lead_in)
                                         for r in range(n)]
                    got[label]["b2b_probe"] = [before, host_probe()]
                else:
                    if not warm:  # every point of the chunk, before its first spread round
                        for _, paths, *_ in live:
                            warmup_together(clock, paths, proto)
                        warm = True
                    r, (label, paths, calls, n) = action[1], live[action[2]]
                    before = host_probe()
                    got[label]["spread"].append(one_round(clock, paths, calls, r, proto.lead_in))
                    got[label]["spread_probe"].append([before, host_probe()])
                spent[action[0]] += time.perf_counter() - t0
        for label, g in got.items():
            points[label] = g
            probes_all[label] = g["b2b_probe"]
            probes_all.update({f"{label}/{i}": pr for i, pr in enumerate(g["spread_probe"])})
        del live
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    # the sweep's fast state from every probe either scheme took (a few points give enough)
    fast = fast_state(probes_all) or min(min(pr) for pr in probes_all.values())
    out = {}
    for label, g in points.items():
        row = {"back_to_back": statistics.median(g["b2b"]),
               **figures(g["spread"], g["spread_probe"], fast, SLOW_STATE),
               "fastest_round": min(g["b2b"] + g["spread"]),
               "b2b_probe_slow": max(g["b2b_probe"]) > SLOW_STATE * fast}
        out[label] = row
    return {"grid": grid, "chunk": chunk, "design": design, "fast_state_us": fast, "seconds": spent,
            "summary": summary(out), "chunks_worse": chunk_tally(out, chunk), "points": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="seed/8")
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--design", default="alternate", choices=DESIGNS,
                    help="alternate: each way its own stretch of a chunk; mixed: interleaved")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.chunk < 1:
        print(f"--chunk must be at least 1, got {args.chunk}", file=sys.stderr)
        return 2
    doc = run(args.grid, args.chunk, args.device, args.design)
    if args.out:
        args.out.write_text(json.dumps(doc))
    print(json.dumps({k: doc[k] for k in ("grid", "chunk", "design", "fast_state_us", "seconds",
                                          "summary", "chunks_worse")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
