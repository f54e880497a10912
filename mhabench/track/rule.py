"""The gate's rule, pure: judge each figure at each point against the variation between
records, then say, path by path, what moved and why.

``judge``: one point of one figure. ``change = after / before - 1`` of the medians over each
build's records, against ``threshold = min(cap, max(floor, allowed))``: ``allowed`` from the
records' own spread (:func:`mhabench.track.stats.allowance`), the floor and drift from the
figure's family (:data:`mhabench.catalogue.FAMILIES`); with several records on each side the
change must also separate them (every record after beyond every record before, by half the
threshold). Exact figures (host-work counts and
bytecodes) have no threshold: any change is changed work. A point measured before and failed
after is a regression. Every judged figure is lower-is-better (a ratio is fast / slow).

``findings``: the judged points read by path (:mod:`mhabench.catalogue` says each figure's path
and role). The fast path's own cost and work are what the exit status answers for (more host
work -- an op, a launch, a bytecode, instructions -- fails unless the path got measurably
cheaper at that point: its wall time shorter, or, for a count, its instructions fewer; it is
then reported as "more host work, yet faster". A count that rose where another of the same path
fell (fewer ops, more bytecodes) is "work shifted": the path's instructions and time, judged at
the point on their own, say whether it got worse); the slow paths' own figures
are reported apart; a fast/slow ratio that rose is explained by the two
paths' own changes: the fast path got worse, or the slow path caught up (it got cheaper, or its
work changed, and the fast path is not worse), or the fast path no longer pays (the ratio
crossed 1). A ratio that rose with nothing on the slow side to explain it is the fast path's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import catalogue as cat
from .stats import allowance, finite, med, point_sigma, pooled_sigma, rel_range, se_of_median

PARAM_SHORT = ("B", "S", "E", "H", "b")
#: What a failing figure can be, by section: ``fast`` always fails the gate; the others only
#: when asked (``--fail-on slow,ratio``).
FAIL_ON = ("slow", "ratio")


@dataclass(frozen=True)
class Rule:
    """threshold = min(cap, max(floor, allowance)); ``floor``/``drift`` None: the family's.
    ``noise``: ``auto`` (replicate spread, else one record's rounds), ``rounds`` (ignore
    replicates), ``floor`` (floor and drift only) -- for the measuring scripts."""

    k: float = 3.0
    floor: float | None = None
    cap: float = 1.0
    drift: float | None = None
    noise: str = "auto"
    prior_df: float = 4.0      # weight of the figure's sigma in each point's (degrees of freedom)

    def floor_of(self, fam: cat.Family) -> float:
        return fam.floor if self.floor is None else self.floor

    def drift_of(self, fam: cat.Family) -> float:
        return fam.drift if self.drift is None else self.drift


@dataclass(frozen=True)
class Judged:
    """One figure at one point: medians before and after, the change and its threshold."""

    point: str
    figure: str           # asv benchmark name
    before: float
    after: float
    change: float         # after / before - 1 (inf: failed after)
    threshold: float
    source: str           # replicates | rounds | floor | exact | failed
    status: str           # regressed | improved | ok | failed

    @property
    def fig(self) -> cat.Figure:
        return cat.BY_ASV[self.figure]

    @property
    def worse(self) -> bool:
        return self.status in ("regressed", "failed")


def judge(before: list, after: list, fam: cat.Family, rule: Rule, ses=(math.nan, math.nan),
          spread_before: list | None = None, figure_sigma: float = math.nan):
    """(status, before, after, change, threshold, source) of one point, or None if not
    comparable. ``before``/``after``: the point's value in each record of either build (None:
    failed); ``spread_before``: the base build's records the spread is read from, where
    ``before`` is one of them; ``figure_sigma``: the figure's typical sigma over its points."""
    b = [v for v in before if finite(v)]
    if not b or (med(b) <= 0 and not fam.exact):
        return None
    mb = med(b)
    a = [v for v in after if finite(v)]
    if not a:
        if any(v is None for v in after):  # asv stores a failed value as null: it broke
            return "failed", mb, math.nan, math.inf, 0.0, "failed"
        return None
    ma = med(a)
    if fam.exact:
        change = ma / mb - 1 if mb else (0.0 if ma == mb else math.inf)
        status = "ok" if ma == mb else ("regressed" if ma > mb else "improved")
        return status, mb, ma, change, 0.0, "exact"
    sigma = pooled_sigma([spread_before or before, after], figure_sigma, rule.prior_df) \
        if rule.noise == "auto" else math.nan
    allowed, source = allowance(sigma, len(b), len(a), ses if rule.noise != "floor" else (),
                                rule.drift_of(fam), rule.k)
    t = min(rule.cap, max(rule.floor_of(fam), allowed))
    change = ma / mb - 1
    # with records on both sides, a change must also separate them by half the threshold: every
    # record after beyond every record before. A host that flips between states from process to
    # process moves the median of three records by chance; a regression moves every record.
    one = source != "replicates" or len(b) < 2 or len(a) < 2
    status = ("regressed" if change > t and (one or min(a) / max(b) - 1 > t / 2) else
              "improved" if -change > t and (one or 1 - max(a) / min(b) > t / 2) else "ok")
    return status, mb, ma, change, t, source


def label(combo) -> str:
    """asv's parameter combination -> the gate's point label ``B2-S8-E32-H4-b1``."""
    if len(combo) == len(PARAM_SHORT):
        return "-".join(f"{k}{v}" for k, v in zip(PARAM_SHORT, combo))
    return ",".join(str(c) for c in combo) or "-"


def compare(before: dict, after: dict, rule: Rule = Rule(),
            spread_from: dict | None = None) -> list[Judged]:
    """Every comparable (point, judged figure) of two ``{benchmark: {point: [values]}}``.

    ``spread_from``: the base build's values whose replicate spread sets the thresholds, where
    ``before`` is one record of it.
    """
    spread_from = spread_from or before
    out = []
    for name in sorted(before):
        fig = cat.BY_ASV.get(name)
        if fig is None or not fig.family or name not in after:
            continue
        fam = cat.FAMILIES[fig.family]
        got_before = {pt: fig.measured(v) for pt, v in before[name].items()}
        got_after = {pt: fig.measured(v) for pt, v in after[name].items()}
        spread = {pt: fig.measured(v) for pt, v in spread_from.get(name, {}).items()}
        sigmas = [point_sigma([spread.get(pt), got_after.get(pt)])[0] for pt in got_before]
        sigmas = [x for x in sigmas if finite(x)]
        fig_sigma = med(sigmas) if sigmas and rule.noise == "auto" else math.nan
        for point, b in got_before.items():
            if point not in got_after:
                continue
            ses = (math.nan, math.nan)
            if fig.noise:
                ses = tuple(se_of_median(med(d.get(fig.noise, {}).get(point)),
                                         med(d.get(fig.samples, {}).get(point)))
                            for d in (before, after))
            got = judge(b, got_after[point], fam, rule, ses, spread.get(point), fig_sigma)
            if got is not None:
                out.append(Judged(point, name, *_order(got)))
    return out


def _order(got):
    status, mb, ma, change, t, source = got
    return mb, ma, change, t, source, status


def figure_spread(values: dict[str, list]) -> float:
    """A figure's A/A spread: the median over its points of the range of their records."""
    spreads = [x for x in map(rel_range, values.values()) if finite(x)]
    return med(spreads)


# --- reading the judged points by path ---------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """What one judged point says, with the reason, in the section it belongs to."""

    section: str          # fast | slow | ratio
    verdict: str          # regressed, improved, "slow path caught up", ...
    judged: Judged
    fails: bool           # counts toward exit status 1
    why: str = ""         # the two paths' own changes, the work that changed
    times: dict = field(default_factory=dict)   # {"fast": (before, after), "slow": (...)} µs

    @property
    def point(self) -> str:
        return self.judged.point

    @property
    def figure(self) -> str:
        return self.judged.figure


CAUGHT_UP, NO_LONGER_PAYS = "the slow path caught up", "the fast path no longer pays"
FAST_WORSE = "the fast path got worse"
MORE_WORK_YET_FASTER = "more host work, yet faster"
WORK_SHIFTED = "work shifted"
#: Families whose rise is more host work, which time cannot resolve: such a rise fails unless
#: the path's own time got measurably shorter at the point.
EXACT_WORK = ("host work", "instructions")


def findings(judged: list[Judged], fail_on: tuple = (), work: dict | None = None) -> list[Finding]:
    """Each judged point read by path (see the module docstring). ``work``: ``{(point, path):
    "op diff"}`` where a path's dispatched work changed (from the records' op maps), attached
    as the reason. ``fail_on``: sections beyond the fast path that fail the gate."""
    from .records import work_part
    work = work or {}
    at = {(j.point, j.figure): j for j in judged}
    fewer: dict[tuple[str, str], list[str]] = {}
    for j in judged:
        if j.fig.role == "work" and j.status == "improved":
            fewer.setdefault((j.point, j.fig.path), []).append(j.fig.counts)
    out = []
    for j in judged:
        f = j.fig
        if f.role in ("cost", "work"):
            section = "fast" if f.path == "fast" else "slow"
            if j.status == "ok":
                continue
            fails = j.worse and (section == "fast" or "slow" in fail_on)
            changed = work.get((j.point, f.path), "")
            why = work_part(changed, f.counts) if f.role == "work" else \
                changed if f.family == "instructions" else ""
            verdict = "regressed" if j.worse else "improved"
            if j.worse and f.family in EXACT_WORK:
                cheaper = _cheaper(at, j.point, f)
                shifted = fewer.get((j.point, f.path)) if f.role == "work" else None
                if cheaper:
                    # more host work, yet the path got measurably cheaper: reported, not failed
                    verdict, fails = MORE_WORK_YET_FASTER, False
                    why = "; ".join(filter(None, [why, cheaper]))
                elif shifted:
                    # one count rose as another fell: whether the path got worse is for its
                    # cost to say (instructions, time), each judged at the point on its own
                    verdict, fails = WORK_SHIFTED, False
                    why = "; ".join(filter(None, [why, f"fewer {', '.join(shifted)}"]))
            out.append(Finding(section, verdict, j, fails, why))
        elif f.role == "ratio":
            out.append(_ratio(j, at, fail_on, work))
    return [x for x in out if x is not None]


def _cheaper(at: dict, point: str, f) -> str:
    """Where a path's host work or instructions rose, what says the path still got cheaper at
    the point: its wall time, measurably shorter; for a count (an op, a bytecode), also its
    instructions, measurably fewer (on a CPU they are the whole call's work, the count's
    included). "" where nothing does."""
    families = ("wall", "instructions") if f.family == "host work" else ("wall",)
    for family in families:
        cost = _cost(at, point, family, f.path)
        if cost is not None and cost.status == "improved":
            return f"{cat.FAMILIES[family].what} {cost.change:+.1%}"
    return ""


def _cost(at: dict, point: str, family: str, path: str) -> Judged | None:
    f = cat.cost_figure(family, path)
    return at.get((point, f.asv)) if f is not None else None


def _slow_changed(at: dict, point: str, path: str, work: dict) -> list[str]:
    """The evidence that ``path`` itself changed at ``point``: its time got shorter beyond its
    threshold, its exact work or instructions changed."""
    why = []
    for (pt, name), j in at.items():
        if pt != point or j.status == "ok":
            continue
        f = j.fig
        if f.path != path or f.role not in ("cost", "work"):
            continue
        if f.role == "work" or f.family == "instructions":
            why.append(f"{f.counts or 'instructions ' + f.path} {j.change:+.1%}")
        elif j.status == "improved":
            why.append(f"{cat.FAMILIES[f.family].what} {j.change:+.1%}")
    if work.get((point, path)):
        why.append(work[(point, path)])
    return why


def _ratio(j: Judged, at: dict, fail_on: tuple, work: dict) -> Finding | None:
    f = j.fig
    fast_path, slow_path = f.pair
    fast = _cost(at, j.point, f.family, fast_path)
    slow = _cost(at, j.point, f.family, slow_path)
    times = {p: (c.before, c.after) for p, c in (("fast", fast), (slow_path, slow)) if c}
    parts = [f"{p} {c.change:+.1%}" for p, c in ((fast_path, fast), (slow_path, slow))
             if c is not None and finite(c.change)]
    if j.status == "failed":
        return Finding("ratio", FAST_WORSE, j, True, "the point failed", times)
    if j.status == "improved":
        return Finding("ratio", "improved", j, False, ", ".join(parts), times)
    if j.status != "regressed":
        return None
    if fast is not None and fast.worse:
        return Finding("ratio", FAST_WORSE, j, True, ", ".join(parts), times)
    fast_worse = [x for (pt, _), x in at.items() if pt == j.point and x.worse
                  and x.fig.path == fast_path and x.fig.role in ("cost", "work")]
    slow_why = _slow_changed(at, j.point, slow_path, work) or \
        ([] if fast_worse else _explains(j, fast, slow))
    if slow_why:
        verdict = NO_LONGER_PAYS if j.before < 1 <= j.after else CAUGHT_UP
        return Finding("ratio", verdict, j, "ratio" in fail_on,
                       ", ".join(parts + [f"{slow_path}: {'; '.join(slow_why)}"]), times)
    return Finding("ratio", FAST_WORSE, j, True,
                   ", ".join(parts + [f"{slow_path} unchanged (time, work)"]), times)


def _explains(ratio: Judged, fast: Judged | None, slow: Judged | None) -> list[str]:
    """Where the fast path shows no other sign of getting worse, and the slow path's own time,
    though within its noise, accounts for most of a ratio's rise and the fast path's for little
    (the ratio is paired within each process, the paths' own times are not: a slow path 25%
    faster may not clear its own threshold while its ratio does): the slow path's change, as
    the ratio's explanation. Both halves are in log terms:
    the ratio's change is the fast path's over the slow path's."""
    if fast is None or slow is None or not all(finite(x) for x in (ratio.change, fast.change,
                                                                     slow.change)):
        return []
    rise = math.log1p(ratio.change)
    if rise <= 0 or slow.change <= -1:
        return []
    slow_share, fast_share = -math.log1p(slow.change), math.log1p(fast.change)
    if slow_share >= rise / 2 and fast_share < rise / 2:
        return [f"wall {slow.change:+.1%} explains the ratio" if slow.fig.family == "wall"
                else f"{cat.FAMILIES[slow.fig.family].what} {slow.change:+.1%} explains it"]
    return []


def vouch(judged: list[Judged]) -> dict[str, float]:
    """Per family of the fast path's figures, the median threshold over its points: the
    smallest change the verdict could have seen (0 for exact counts: any change)."""
    out: dict[str, list] = {}
    for j in judged:
        f = j.fig
        if f.path == "fast" or f.role == "ratio":
            key = f"{f.family} ratio" if f.role == "ratio" else f.family
            out.setdefault(key, []).append(j.threshold)
    return {k: med(v) for k, v in out.items()}
