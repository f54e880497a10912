"""``mhabench gate BASE HEAD``: did the fast path lose ground beyond each point's own noise?

Reads asv's stored results of two builds (no new measurement). For every grid point and every
``speedup.FastOverSlow.<figure>`` (fast time / slow time, lower is better) it takes
``ratio = after / before`` and flags the point when

    ratio - 1 > threshold = min(cap, max(floor, k * sqrt(noise_before**2 + noise_after**2)))

where ``noise_*`` is ``speedup.Noise.<figure>`` of that build at that point: the relative IQR
(IQR / median) of the per-round ratios the figure is the median of. Why this rule: the two
medians are independent, so their relative spreads add in quadrature; the IQR of the rounds is a
deliberately wide yardstick (the median of n >= 15 rounds moves far less, ~0.9 IQR / sqrt(n)),
which leaves room for what one run cannot see (drift of the host between runs). ``floor``
(default 5%, asv's own threshold) keeps a point with very tight rounds from raising alarms on
changes nobody cares about; ``k`` (default 1) scales the noise allowance; ``cap`` (default 1.0:
a doubling always counts) keeps a regression that also makes the rounds erratic (a stall inside
the kernel does) from hiding behind the noise it causes. A point that measured
before and failed after (fast path refused, mismatch, error) is a regression too; points n/a in
either build are skipped.

Exit status: 1 if anything regressed, 0 otherwise, 2 on bad input (one line).
"""
from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .asv_results import file_values
from .config import ConfigError

FIGURE_PREFIX, NOISE_PREFIX = "speedup.FastOverSlow.", "speedup.Noise."
PARAM_SHORT = ("B", "S", "E", "H", "b")


@dataclass(frozen=True)
class Rule:
    """threshold = min(cap, max(floor, k * combined relative noise))."""

    k: float = 1.0
    floor: float = 0.05
    cap: float = 1.0

    def __post_init__(self):
        for name in ("k", "floor", "cap"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"--{name} must be a finite number >= 0, got {v}")
        if self.cap < self.floor:
            raise ConfigError(f"--cap {self.cap} is below --floor {self.floor}")


@dataclass(frozen=True)
class Verdict:
    point: str
    figure: str
    before: float
    after: float
    ratio: float
    threshold: float
    regressed: bool


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def threshold(noise_before, noise_after, rule: Rule) -> float:
    """Relative increase a point may show before it counts; missing noise counts as 0."""
    nb = noise_before if _finite(noise_before) else 0.0
    na = noise_after if _finite(noise_after) else 0.0
    return min(rule.cap, max(rule.floor, rule.k * math.hypot(nb, na)))


def judge(point: str, figure: str, before, after, noise_before, noise_after,
          rule: Rule) -> Verdict | None:
    """One point and figure; None when it cannot be compared (n/a or failed before)."""
    t = threshold(noise_before, noise_after, rule)
    if not _finite(before) or before <= 0:
        return None
    if after is None:  # asv stores a failed value as null: the fast path broke
        return Verdict(point, figure, before, math.nan, math.inf, t, True)
    if not _finite(after):
        return None
    ratio = after / before
    return Verdict(point, figure, before, after, ratio, t, ratio - 1 > t)


# --- asv's stored results ----------------------------------------------------------------------
def result_file(results_dir: Path, machine: str, commit: str) -> Path:
    """The newest result file of ``commit`` on ``machine``."""
    files = [Path(p) for p in glob.glob(str(results_dir / machine / f"{commit[:8]}-*.json"))]
    files = [p for p in files if json.loads(p.read_text()).get("commit_hash") == commit]
    if not files:
        raise ConfigError(f"no results for commit {commit[:8]} on machine {machine!r} "
                          f"in {results_dir}")
    return max(files, key=os.path.getmtime)


def point_values(path: Path) -> dict[str, dict[str, object]]:
    """``{benchmark: {point label: value}}``; value None = failed, NaN = n/a."""
    return {name: {label(c): v for c, v in values.items()}
            for name, values in file_values(json.loads(path.read_text())).items()}


def label(combo) -> str:
    if len(combo) == len(PARAM_SHORT):
        return "-".join(f"{k}{v}" for k, v in zip(PARAM_SHORT, combo))
    return ",".join(str(c) for c in combo) or "-"


def compare(before: dict, after: dict, rule: Rule) -> list[Verdict]:
    """Every comparable (point, figure) of two :func:`point_values`."""
    out = []
    for name in sorted(before):
        if not name.startswith(FIGURE_PREFIX) or name not in after:
            continue
        fig = name[len(FIGURE_PREFIX):]
        nb = before.get(NOISE_PREFIX + fig, {})
        na = after.get(NOISE_PREFIX + fig, {})
        for point, b in before[name].items():
            if point not in after[name]:
                continue
            v = judge(point, fig, b, after[name][point], nb.get(point), na.get(point), rule)
            if v is not None:
                out.append(v)
    return out


def resolve(name: str, commits: dict[str, str], known: set[str]) -> str:
    """A build by tag (``torch-2.13.0``), version (``2.13.0``) or commit (a prefix of 4+)."""
    for tag in (name, "torch-" + name):
        if tag in commits:
            return commits[tag]
    hits = {c for c in set(commits.values()) | known if len(name) >= 4 and c.startswith(name)}
    if len(hits) == 1:
        return hits.pop()
    raise ConfigError(f"unknown build {name!r}" + (" (ambiguous commit prefix)" if hits else
                      f" (tags: {', '.join(sorted(commits)) or 'none'})"))


def machines_with(results_dir: Path, commits: list[str]) -> list[str]:
    return sorted(p.name for p in results_dir.iterdir() if p.is_dir()
                  and all(glob.glob(str(p / f"{c[:8]}-*.json")) for c in commits))


def gate(directory: Path, base: str, head: str, machine: str = "", rule: Rule = Rule(),
         results_dir: Path | None = None) -> tuple[list[Verdict], dict]:
    """(verdicts, context) for BASE -> HEAD; raises ConfigError on bad input."""
    results_dir = results_dir or directory / "results"
    if not results_dir.is_dir():
        raise ConfigError(f"{results_dir}: no asv results there")
    commits = {}
    manifest = directory / "builds.json"
    if manifest.exists():
        commits = dict(json.loads(manifest.read_text()).get("commits", {}))
    known = set()
    for p in glob.glob(str(results_dir / "*" / "*.json")):
        if not p.endswith("machine.json"):
            try:
                known.add(json.loads(Path(p).read_text()).get("commit_hash") or "")
            except ValueError:
                pass
    b, h = resolve(base, commits, known), resolve(head, commits, known)
    if not machine:
        found = machines_with(results_dir, [b, h])
        if len(found) != 1:
            raise ConfigError(f"--machine needed: results for both builds on "
                              f"{', '.join(found) or 'no machine'}")
        machine = found[0]
    before = point_values(result_file(results_dir, machine, b))
    after = point_values(result_file(results_dir, machine, h))
    if not any(n.startswith(FIGURE_PREFIX) for n in before):
        raise ConfigError(f"no {FIGURE_PREFIX}* results for {base} on {machine!r}")
    verdicts = compare(before, after, rule)
    if not verdicts:
        raise ConfigError(f"{base} and {head} share no measured point on {machine!r}")
    return verdicts, {"machine": machine, "base": b, "head": h}


def table(verdicts: list[Verdict]) -> str:
    from prettytable import PrettyTable
    t = PrettyTable(["point", "figure", "before", "after", "ratio", "threshold"])
    for v in verdicts:
        t.add_row([v.point, v.figure, f"{v.before:.4f}",
                   "failed" if math.isnan(v.after) else f"{v.after:.4f}",
                   "inf" if math.isinf(v.ratio) else f"{v.ratio:.3f}", f"+{v.threshold:.1%}"])
    return t.get_string()


def register_gate(sub) -> None:
    p = sub.add_parser("gate", help="exit 1 if HEAD's fast/slow ratios rose beyond the noise",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("base", metavar="BASE", help="build: tag, version or commit")
    p.add_argument("head", metavar="HEAD", help="build: tag, version or commit")
    p.add_argument("--dir", default=".asv/torch", help="mhabench track's dir (.asv/torch)")
    p.add_argument("--results", default="", metavar="DIR",
                   help="an asv results dir elsewhere (default DIR/results)")
    p.add_argument("--machine", default="", help="asv machine (default: the only one with both)")
    p.add_argument("--k", type=float, default=Rule.k, help="noise multiplier (1.0)")
    p.add_argument("--floor", type=float, default=Rule.floor,
                   help="smallest relative increase that counts (0.05)")
    p.add_argument("--cap", type=float, default=Rule.cap,
                   help="relative increase that counts however noisy the point (1.0: doubling)")
    p.set_defaults(func=cmd_gate)


def cmd_gate(args) -> int:
    rule = Rule(args.k, args.floor, args.cap)
    verdicts, ctx = gate(Path(args.dir), args.base, args.head, args.machine, rule,
                         Path(args.results) if args.results else None)
    bad = [v for v in verdicts if v.regressed]
    print(f"{args.base} ({ctx['base'][:8]}) -> {args.head} ({ctx['head'][:8]}) on "
          f"{ctx['machine']}: {len(verdicts)} comparisons; flagged when after/before - 1 > "
          f"min({rule.cap:g}, max({rule.floor:g}, {rule.k:g} x combined noise))")
    if bad:
        print(table(bad))
        print(f"REGRESSED: {len(bad)} of {len(verdicts)}")
        return 1
    print("no regression beyond the noise")
    return 0
