"""Re-measure the gate's flagged points, both builds in turn, in fresh processes.

A flag from stored records says "this moved more than the records of those builds did".
Confirm measures only the flagged points again, alternating the two builds' interpreters
(base, head, head, base, ... ``repeats`` times each: drift of the host hits both alike), each
run a fresh worker through :func:`mhabench.run.execute.execute`, and reports per point and
figure the ratio of the medians head / base, the smallest and largest ratio over every
(head run, base run) pair, and a verdict:

``regressed``       every head run is above every base run (lower bound > 1) and the ratio
                    exceeds the family's floor;
``improved``        the mirror image;
``not confirmed``   anything else.

With 3 runs each, "every head run above every base run" happens by chance with probability
1/20 (Mann-Whitney U = 0); the floor keeps small chance orderings from counting. Figures are
the gate's, as asv records them (lower is better).
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import catalogue as cat
from ..measure.config import ConfigError
from .stats import med, pairs


@dataclass(frozen=True)
class Confirmation:
    point: str
    figure: str
    base: list          # the figure per base run
    head: list
    ratio: float        # median(head) / median(base)
    low: float          # min over (head run, base run) pairs of head / base
    high: float
    verdict: str        # regressed | improved | not confirmed


def decide(base: list, head: list, floor: float) -> tuple[float, float, float, str]:
    """(ratio, low, high, verdict) of one point's runs (pure)."""
    ratio, low, high = pairs(base, head)
    if not math.isfinite(ratio):
        return ratio, low, high, "not confirmed"
    if low > 1 and ratio - 1 > floor:
        return ratio, low, high, "regressed"
    if high < 1 and 1 - ratio > floor:
        return ratio, low, high, "improved"
    return ratio, low, high, "not confirmed"


#: Figures confirm can re-measure: those a run gives without asv (wall and device times and
#: ratios), by asv name.
def measurable(name: str) -> bool:
    f = cat.BY_ASV.get(name)
    return f is not None and f.family in ("wall", "device") and f.role in ("ratio", "cost")


def confirm(base_python: str, head_python: str, targets: list[tuple[str, str]], device: str,
            dtype: str, repeats: int = 3, preset: str = "rigorous", log=print) -> list[Confirmation]:
    """Re-measure ``targets`` ([(point, asv figure)]) ``repeats`` times per build, alternating,
    each run one :func:`mhabench.run.execute.execute` in a fresh worker of that interpreter."""
    from ..run.execute import execute
    from ..run.journal import Outputs
    from ..run.spec import RunSpec
    labels = sorted({f"{p}-{dtype}-{device}" for p, _ in targets})
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory(prefix="mhabench-confirm-") as tmp:
        for i in range(repeats):
            for side in (("base", "head") if i % 2 == 0 else ("head", "base")):
                python = base_python if side == "base" else head_python
                log(f"run {i + 1}/{repeats} {side}: {python} ({len(labels)} points)")
                spec = RunSpec(points=tuple(labels), device=device, dtype=dtype, preset=preset,
                               extras=False, python=python)
                out = execute(spec.resolve(device.startswith("cuda")), Outputs(),
                              Path(tmp) / f"{side}-{i}.jsonl")
                if out.failure or out.stopped:
                    raise ConfigError(f"{python}: the run failed ({out.failure or 'stopped'})")
                runs[side].append({r.point.label: r.metrics() if r.status == "ok" else {}
                                   for r in out.results})
    found = []
    for point, name in targets:
        fig = cat.BY_ASV[name]
        label = f"{point}-{dtype}-{device}"
        vals = {s: [fig.value(r.get(label, {})) for r in runs[s]] for s in runs}
        ratio, low, high, verdict = decide(vals["base"], vals["head"],
                                           cat.FAMILIES[fig.family].floor)
        found.append(Confirmation(point, name, vals["base"], vals["head"], ratio, low, high,
                                  verdict))
    return found


def rows(found: list[Confirmation]) -> list[list[str]]:
    ranked = sorted(found, key=lambda c: -c.ratio if math.isfinite(c.ratio) else 0)
    return [[c.verdict, c.point, c.figure.split(".", 1)[1], f"{c.ratio - 1:+.1%}",
             f"{c.low - 1:+.1%} .. {c.high - 1:+.1%}", f"{med(c.base):.4g} -> {med(c.head):.4g}"]
            for c in ranked]


HEADER = ["verdict", "point", "figure", "head/base", "interval (every run pair)",
          "median base -> head"]
