"""``mhabench gate BASE HEAD``: did the fast path lose ground beyond the variation between runs?

Reads asv's stored records of two builds (no new measurement). A build may hold several records
(``track --repeats N``: replicate ``r1`` on machine ``M``, ``rN`` on ``M-rN``); ``BUILD@rN``
names one record of it. For every grid point and every judged figure (the rule table
:data:`FAMILIES`, matched by asv benchmark name) it compares the medians over each build's
records, ``change = after / before - 1``, against a threshold from measured between-run
variation, in this order:

``replicates``
    the point's records of either build (two or more): each build's range gives one record's
    standard deviation (range / d_n, the normal range factor), pooled over both builds and
    shrunk toward the figure's median sigma over its points (worth ``prior_df`` = 4 degrees of
    freedom: a range of 2-3 records alone is off by a factor of several when one record is an
    outlier or the records agree by chance). Allowed: ``k * sigma * sqrt(1/nb + 1/nh)``, k
    standard deviations of the difference of the two builds' means of nb and nh records;
``rounds``
    else, from one record's own rounds: the standard error of each median,
    ``0.93 * rel_iqr / sqrt(n)`` (``speedup.Noise.*`` and ``speedup.Rounds.*``), combined in
    quadrature: ``k * hypot(se_before, se_after) + drift``, the family's stated allowance for
    what the host does between processes, which one run cannot see;
``floor``
    else the family's floor (and drift).

``threshold = min(cap, max(floor, allowed))``, k = 3 by default. The floor ignores changes nobody cares about;
the cap (a doubling) keeps a regression that makes the records erratic from hiding behind the
spread it causes. Exact counts (host work: aten ops, launches, syncs, copies, kernels, bytes)
have no threshold: any change is changed work, an increase a regression. Where a figure's A/A
spread (the median over its points, or the point's own range over either build's records)
exceeds its floor, a flag is *advisory*: the point fails the gate only when the change exceeds
``advisory_k`` times that spread. A point measured before and failed
after is a regression; points n/a in either build are skipped. Every judged figure is
lower-is-better (``FastOverSlow`` = fast time / slow time).

Exit status: 1 if anything regressed, 0 otherwise, 2 on bad input (one line naming it).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .asv_results import Record, records
from ..measure.config import ConfigError
from ..measure.stats import median

PARAM_SHORT = ("B", "S", "E", "H", "b")
REPLICATE = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")
SE_MEDIAN = 1.2533 / 1.349  # SE of a median = 1.2533 sigma / sqrt(n); sigma = IQR / 1.349
DIRECTION = ("every judged figure is lower-is-better: FastOverSlow = fast time / slow time "
             "(below 1 the fast path wins), host counts and instructions per call")


@dataclass(frozen=True)
class Family:
    """Defaults for the figures whose asv name matches ``pattern``."""

    name: str
    pattern: str
    floor: float = 0.05
    drift: float = 0.0          # allowance for between-run drift, added to one record's SE
    exact: bool = False         # integer counts: any change is changed work
    noise: str = ""             # benchmark class holding each figure's relative IQR (same method)
    rounds: str = ""            # benchmark of the sample count behind the figure's median

    def matches(self, name: str) -> bool:
        return re.match(self.pattern, name) is not None


#: The rule table, by asv benchmark name (first match wins). Device ratios move 0.9% between
#: fresh processes at the median point and 2.4% at p90 (range of 6 records, H200), and a few
#: points shift by 2-2.5% between groups of 3: the floor is 3%. Wall ratios on a host move by
#: several percent, on a GPU host by tens of percent; host-work counts are exact; instruction
#: counts move at most 0.13% between fresh processes (smoke grid, CPU): their floor is 0.5%.
FAMILIES = (
    Family("device", r"^speedup\.FastOverSlow\.track_device(_fair)?$", floor=0.03, drift=0.01,
           noise="speedup.Noise.", rounds="speedup.Rounds.track_device"),
    Family("wall", r"^speedup\.FastOverSlow\.track_wall(_fair)?$", floor=0.05, drift=0.03,
           noise="speedup.Noise.", rounds="speedup.Rounds.track_wall"),
    Family("host work", r"^host\.HostWork\.", floor=0.0, exact=True),
    Family("instructions", r"^host\.Instructions\.track_(fast|slow|slow_fair)$", floor=0.005),
)

#: The absolute times shown beside a ratio figure: (fast, slow) benchmarks per method.
TIMES = {"speedup.FastOverSlow.track_wall": ("time_per_call.WallTime.track_fast",
                                             "time_per_call.WallTime.track_slow"),
         "speedup.FastOverSlow.track_wall_fair": ("time_per_call.WallTime.track_fast",
                                                  "time_per_call.WallTime.track_slow_fair"),
         "speedup.FastOverSlow.track_device": ("time_per_call.DeviceTime.track_fast",
                                               "time_per_call.DeviceTime.track_slow"),
         "speedup.FastOverSlow.track_device_fair": ("time_per_call.DeviceTime.track_fast",
                                                    "time_per_call.DeviceTime.track_slow_fair")}


def family_of(name: str, families=FAMILIES) -> Family | None:
    return next((f for f in families if f.matches(name)), None)


@dataclass(frozen=True)
class Rule:
    """threshold = min(cap, max(floor, allowance)) (see :func:`allowance`); ``floor``/``drift``
    None: the family's."""

    k: float = 3.0
    floor: float | None = None
    cap: float = 1.0
    drift: float | None = None
    advisory_k: float = 3.0
    noise: str = "auto"        # auto | rounds (ignore replicates) | floor
    prior_df: float = 4.0      # weight of the figure's sigma in each point's (degrees of freedom)

    def __post_init__(self):
        for name in ("k", "floor", "cap", "drift", "advisory_k", "prior_df"):
            v = getattr(self, name)
            if v is None and name in ("floor", "drift"):
                continue
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, "
                                  f"got {v}")
        if self.floor is not None and self.cap < self.floor:
            raise ConfigError(f"--cap {self.cap} is below --floor {self.floor}")
        if self.noise not in ("auto", "rounds", "floor"):
            raise ConfigError(f"--noise must be auto, rounds or floor, got {self.noise!r}")

    def floor_of(self, fam: Family) -> float:
        return fam.floor if self.floor is None else self.floor

    def drift_of(self, fam: Family) -> float:
        return fam.drift if self.drift is None else self.drift


@dataclass(frozen=True)
class Verdict:
    point: str
    figure: str           # asv benchmark name
    family: str
    before: float
    after: float
    ratio: float
    threshold: float
    source: str           # replicates | rounds | floor | exact
    status: str           # regressed | advisory | changed | improved | ok
    times: dict = field(default_factory=dict)   # {"fast": [before, after], "slow": [...]} µs
    ops: str = ""         # op names that appeared / vanished (host-work counts)

    @property
    def regressed(self) -> bool:
        return self.status == "regressed"

    @property
    def effect(self) -> float:
        return self.ratio - 1


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --- the pure rule -------------------------------------------------------------------------------
#: E[range of n normal samples] / sigma: a range of n records -> one record's standard deviation
D_N = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}


def rel_range(values) -> float:
    """(max - min) / median of one point's records; NaN below two finite records."""
    xs = [v for v in values if _finite(v)]
    m = median(xs) if len(xs) >= 2 else math.nan
    return (max(xs) - min(xs)) / abs(m) if m and math.isfinite(m) else math.nan


def rel_sigma(values) -> float:
    """One record's relative standard deviation, from the range of the point's records."""
    n = len([v for v in values if _finite(v)])
    return rel_range(values) / D_N[min(n, 10)] if n >= 2 else math.nan


def point_sigma(groups) -> tuple[float, int]:
    """(pooled sigma, degrees of freedom) of one point over the builds' record groups: the
    builds' variances (each from its range) averaged with weights n - 1."""
    num, df = 0.0, 0
    for values in groups:
        n = len([v for v in values or [] if _finite(v)])
        sd = rel_sigma(values or [])
        if n >= 2 and _finite(sd):
            num, df = num + (n - 1) * sd * sd, df + n - 1
    return (math.sqrt(num / df), df) if df else (math.nan, 0)


def pooled_sigma(groups, figure_sigma: float, prior_df: float) -> float:
    """A point's sigma shrunk toward its figure's: ``(df s^2 + prior_df S^2) / (df + prior_df)``.

    Two or three records give a point's own sigma with 1-4 degrees of freedom: one outlier
    record (or records that agree by chance) moves it by a factor of several. The figure's
    sigma (median over its points) is the prior worth ``prior_df`` degrees of freedom.
    """
    s, df = point_sigma(groups)
    if not df:
        return math.nan
    if not _finite(figure_sigma) or prior_df <= 0:
        return s
    return math.sqrt((df * s * s + prior_df * figure_sigma ** 2) / (df + prior_df))


def se_of_median(rel_iqr, n) -> float:
    """Relative standard error of the median of ``n`` samples whose relative IQR is ``rel_iqr``."""
    if not (_finite(rel_iqr) and _finite(n) and n >= 1):
        return math.nan
    return SE_MEDIAN * rel_iqr / math.sqrt(n)


def allowance(sigma: float, nb: int, nh: int, ses, drift: float, rule: Rule) -> tuple[float, str]:
    """(allowed relative change before floor and cap, source).

    Replicates: ``k * sigma * sqrt(1/nb + 1/nh)``, the spread of a difference of two means of
    nb and nh records. Else one record's rounds: ``k * hypot(se_before, se_after) + drift``.
    Else the drift alone.
    """
    if _finite(sigma) and rule.noise == "auto":
        return rule.k * sigma * math.sqrt(1 / nb + 1 / nh), "replicates"
    ses = [x for x in ses if _finite(x)]
    if len(ses) == 2 and rule.noise != "floor":
        return rule.k * math.hypot(*ses) + drift, "rounds"
    return drift, "floor"


def advisory_spread(figure_spread: float, base_records, head_records, floor: float) -> float:
    """The spread that makes a flagged point advisory, or 0 where none does.

    The figure's (median over its points) and the point's own (the range of either build's
    records) each count once above the floor. Between fresh processes on a GPU host the wall
    ratio's range over 6 records is 5% at p10 of the points and 66% at p90 (H200), and some
    points are bimodal: a process lands in a slow state now and then. Three records of one
    build can all miss that state, so the head's own range counts too: a regression moves the
    head's records together, while records that disagree among themselves by X are no evidence
    of a change below ``advisory_k * X``.
    """
    spreads = [s for s in (figure_spread, rel_range(base_records or []),
                           rel_range(head_records or [])) if _finite(s) and s > floor]
    return max(spreads, default=0.0)


def threshold(allowed: float, floor: float, rule: Rule) -> float:
    return min(rule.cap, max(floor, allowed))


def judge(before: list, after: list, fam: Family, rule: Rule, ses=(math.nan, math.nan),
          figure_spread: float = math.nan, spread_before: list | None = None,
          figure_sigma: float = math.nan):
    """(status, before, after, ratio, threshold, source) of one point, or None if not comparable.

    ``before``/``after``: the point's value in each record of either build (None: failed);
    ``spread_before``: the base build's records the spread is read from, where ``before`` is
    one of them; ``figure_sigma``: the figure's typical sigma over its points (a point's own
    range of a few records can be small by chance; the larger of the two counts).
    """
    b = [v for v in before if _finite(v)]
    if not b or (median(b) <= 0 and not fam.exact):
        return None
    mb = median(b)
    a = [v for v in after if _finite(v)]
    if not a:
        if any(v is None for v in after):  # asv stores a failed value as null: it broke
            return "regressed", mb, math.nan, math.inf, 0.0, "failed"
        return None
    ma = median(a)
    if fam.exact:
        ratio = ma / mb if mb else (1.0 if ma == mb else math.inf)
        status = "ok" if ma == mb else ("regressed" if ma > mb else "changed")
        return status, mb, ma, ratio, 0.0, "exact"
    floor = rule.floor_of(fam)
    sigma = pooled_sigma([spread_before or before, after], figure_sigma, rule.prior_df)
    allowed, source = allowance(sigma, len(b), len(a), ses, rule.drift_of(fam), rule)
    t = threshold(allowed, floor, rule)
    ratio = ma / mb
    if ratio - 1 > t:
        spread = advisory_spread(figure_spread, spread_before or before, after, floor)
        status = "advisory" if ratio - 1 <= rule.advisory_k * spread else "regressed"
    elif 1 - ratio > t:
        status = "improved"
    else:
        status = "ok"
    return status, mb, ma, ratio, t, source


# --- records of a build --------------------------------------------------------------------------
def label(combo) -> str:
    if len(combo) == len(PARAM_SHORT):
        return "-".join(f"{k}{v}" for k, v in zip(PARAM_SHORT, combo))
    return ",".join(str(c) for c in combo) or "-"


def replicate_machines(results_dir: Path, machine: str) -> list[tuple[int, str]]:
    """``[(1, M), (2, M-r2), ...]``: the machines holding replicates of ``machine``'s records."""
    out = [(1, machine)] if (results_dir / machine).is_dir() else []
    for p in results_dir.iterdir() if results_dir.is_dir() else []:
        m = REPLICATE.match(p.name)
        if p.is_dir() and m and m["base"] == machine and int(m["n"]) >= 2:
            out.append((int(m["n"]), p.name))
    return sorted(out)


def build_records(results_dir: Path, machine: str, commit: str, env: str = "",
                  replicate: int = 0) -> list[Record]:
    """Every record of ``commit`` over ``machine``'s replicates (only ``replicate`` if given)."""
    found, envs = [], set()
    for n, m in replicate_machines(results_dir, machine):
        if replicate and n != replicate:
            continue
        for rec in records(results_dir, m, commit, env):
            found.append(rec)
            envs.add(rec.env_name)
    if len(envs) > 1:
        raise ConfigError(f"commit {commit[:8]} has records of {len(envs)} environments over "
                          f"{machine!r}'s replicates ({', '.join(sorted(envs))}): pick one with "
                          "--env")
    return found


def point_values(recs: list[Record]) -> dict[str, dict[str, list]]:
    """``{benchmark: {point label: [value per record]}}``; None failed, NaN n/a."""
    out: dict[str, dict[str, list]] = {}
    for rec in recs:
        for name, values in rec.values.items():
            row = out.setdefault(name, {})
            for combo, v in values.items():
                row.setdefault(label(combo), []).append(v)
    return out


def _med(values) -> float:
    xs = [v for v in values or [] if _finite(v)]
    return median(xs) if xs else math.nan


def _times(name: str, point: str, before: dict, after: dict) -> dict:
    fast, slow = TIMES.get(name, (None, None))
    if fast is None and "fast" in name:
        fast, slow = name, name.replace("fast", "slow", 1)
    out = {}
    for path, bench in (("fast", fast), ("slow", slow)):
        if bench and bench in before and bench in after:
            out[path] = [_med(before[bench].get(point)), _med(after[bench].get(point))]
    return out


def compare(before: dict, after: dict, rule: Rule, families=FAMILIES,
            spread_from: dict | None = None) -> list[Verdict]:
    """Every comparable (point, figure) of two :func:`point_values`.

    ``spread_from``: the base build's values whose replicate spread sets the thresholds, where
    ``before`` is one record of it.
    """
    spread_from = spread_from or before
    out = []
    for name in sorted(before):
        fam = family_of(name, families)
        if fam is None or name not in after:
            continue
        spreads = [x for x in map(rel_range, spread_from.get(name, {}).values()) if _finite(x)]
        sigmas = [point_sigma([spread_from.get(name, {}).get(pt), after[name].get(pt)])[0]
                  for pt in before[name]]
        sigmas = [x for x in sigmas if _finite(x)]
        auto = rule.noise == "auto"
        fig_spread = median(spreads) if spreads and auto else math.nan
        fig_sigma = median(sigmas) if sigmas and auto else math.nan
        method = name.rsplit(".", 1)[-1]
        for point, b in before[name].items():
            if point not in after[name]:
                continue
            ses = tuple(se_of_median(_med(d.get(fam.noise + method, {}).get(point)),
                                     _med(d.get(fam.rounds, {}).get(point)))
                        for d in (before, after)) if fam.noise else (math.nan, math.nan)
            got = judge(b, after[name][point], fam, rule, ses, fig_spread,
                        spread_from.get(name, {}).get(point), fig_sigma)
            if got is not None:
                status, mb, ma, ratio, t, source = got
                out.append(Verdict(point, name, fam.name, mb, ma, ratio, t, source, status,
                                   _times(name, point, before, after)))
    return out


# --- the host-work op diff -----------------------------------------------------------------------
def _record_file(directory: Path, recs: list[Record]) -> Path | None:
    for rec in recs:
        p = directory / "records" / rec.machine / f"{rec.commit}-{rec.env_name}.json"
        if p.is_file():
            return p
    return None


def _host_ops(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``{point label prefix: {path: {op: count per call}}}`` of a sweep's full result file."""
    doc = json.loads(path.read_text())
    out = {}
    for r in doc["results"]:
        lbl = str(r["label"])
        prefix = "-".join(lbl.split("-")[:5])
        out[prefix] = {p: dict(w.get("ops") or {}) for p, w in (r.get("host_work") or {}).items()}
    return out


def op_diff(before: dict, after: dict) -> str:
    """``+aten::neg x1, -aten::copy_, aten::add 2->3``: ops that appeared, vanished, changed."""
    parts = []
    for op in sorted(set(before) | set(after)):
        b, a = before.get(op, 0), after.get(op, 0)
        if b == a:
            continue
        if not b:
            parts.append(f"+{op} x{a:g}")
        elif not a:
            parts.append(f"-{op} x{b:g}")
        else:
            parts.append(f"{op} {b:g}->{a:g}")
    return ", ".join(parts) or "same ops"


def _path_of(figure: str) -> list[str]:
    method = figure.rsplit(".", 1)[-1]
    for p in ("slow_fair", "fast", "slow"):
        if p in method:
            return [p]
    return []


def attach_ops(verdicts: list[Verdict], directory: Path, base_recs, head_recs) -> list[Verdict]:
    """Name the ops behind each changed host-work count, from the sweeps' full result files."""
    changed = [v for v in verdicts if v.source == "exact" and v.status != "ok"]
    if not changed:
        return verdicts
    files = (_record_file(directory, base_recs), _record_file(directory, head_recs))
    why = ""
    if None in files:
        why = "op diff unavailable (no sweep record file for " + (
            "either build" if files == (None, None) else
            "the base build" if files[0] is None else "the head build") + ")"
    else:
        try:
            ops = [_host_ops(f) for f in files]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            why, ops = f"op diff unavailable ({type(exc).__name__} reading a record file)", None
    out = []
    for v in verdicts:
        if v in changed:
            if why:
                text = why
            else:
                b, a = (o.get(v.point, {}) for o in ops)
                paths = [p for p in _path_of(v.figure) if p in b or p in a] or sorted(set(b) | set(a))
                text = "; ".join(f"{p}: {op_diff(b.get(p, {}), a.get(p, {}))}" for p in paths
                                 ) or "op diff unavailable (point not in the record files)"
            v = replace(v, ops=text)
        out.append(v)
    return out


# --- resolving builds ----------------------------------------------------------------------------
def read_commits(directory: Path) -> dict[str, str]:
    """``{tag: commit}`` of track's builds.json ({} without one); ConfigError if corrupt."""
    manifest = directory / "builds.json"
    if not manifest.exists():
        return {}
    try:
        commits = json.loads(manifest.read_text()).get("commits", {})
        if not isinstance(commits, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in commits.items()):
            raise ValueError("commits is not a {tag: hash} map")
        return dict(commits)
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{manifest}: not a builds manifest ({exc})") from None


def known_commits(results_dir: Path) -> set[str]:
    """Full hashes asv filed results under (read from the file names' owners)."""
    known = set()
    for p in results_dir.glob("*/*.json"):
        if p.name in ("machine.json", "benchmarks.json"):
            continue
        try:
            known.add(json.loads(p.read_text()).get("commit_hash") or "")
        except (ValueError, AttributeError, OSError, UnicodeDecodeError):
            pass  # read (and rejected, naming it) only if it is a file of a compared build
    return known


def split_replicate(name: str) -> tuple[str, int]:
    """``2.13.0@r2`` -> ("2.13.0", 2); ``2.13.0`` -> ("2.13.0", 0)."""
    m = re.fullmatch(r"(.+)@r(\d+)", name)
    if not m:
        return name, 0
    if int(m[2]) < 1:
        raise ConfigError(f"{name!r}: replicates count from r1")
    return m[1], int(m[2])


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
    """Machines (replicate machines ``M-rN`` folded into ``M``) with results of every commit."""
    names = {p.name for p in results_dir.iterdir() if p.is_dir()}
    out = []
    for name in sorted(names):
        m = REPLICATE.match(name)
        if m and m["base"] in names:
            continue
        if all(any((results_dir / mm).glob(f"{c[:8]}-*.json")
                   for _, mm in replicate_machines(results_dir, name)) for c in commits):
            out.append(name)
    return out


def gate(directory: Path, base: str, head: str, machine: str = "", rule: Rule = Rule(),
         results_dir: Path | None = None, env: str = "") -> tuple[list[Verdict], dict]:
    """(verdicts, context) for BASE -> HEAD; raises ConfigError on bad input."""
    results_dir = results_dir or directory / "results"
    if not results_dir.is_dir():
        raise ConfigError(f"{results_dir}: no asv results there")
    commits, known = read_commits(directory), known_commits(results_dir)
    (bname, brep), (hname, hrep) = split_replicate(base), split_replicate(head)
    b, h = resolve(bname, commits, known), resolve(hname, commits, known)
    if not machine:
        found = machines_with(results_dir, [b, h])
        if len(found) != 1:
            raise ConfigError(f"--machine needed: results for both builds on "
                              f"{', '.join(found) or 'no machine'}")
        machine = found[0]
    base_all = build_records(results_dir, machine, b, env)
    base_recs = [r for r in base_all if not brep or r.machine == _machine(machine, brep)]
    head_recs = build_records(results_dir, machine, h, env, hrep)
    for recs, name in ((base_recs, base), (head_recs, head)):
        if not recs:
            raise ConfigError(f"no results for {name} on machine {machine!r} in {results_dir}")
    before, after = point_values(base_recs), point_values(head_recs)
    if not any(family_of(n) for n in before):
        raise ConfigError(f"no judged figure (speedup.FastOverSlow.*, host.*) in the results of "
                          f"{base} on {machine!r}")
    spread_from = point_values(base_all) if brep and rule.noise == "auto" else None
    verdicts = compare(before, after, rule, spread_from=spread_from)
    if not verdicts:
        raise ConfigError(f"{base} and {head} share no measured point on {machine!r}")
    verdicts = attach_ops(verdicts, directory, base_recs, head_recs)
    return verdicts, {"machine": machine, "base": b, "head": h, "base_records": len(base_recs),
                      "head_records": len(head_recs), "env": base_recs[0].env_name}


def _machine(machine: str, n: int) -> str:
    return machine if n == 1 else f"{machine}-r{n}"


# --- output --------------------------------------------------------------------------------------
FLAGGED = ("regressed", "advisory", "changed")


def ranked(verdicts: list[Verdict]) -> list[Verdict]:
    """Flagged verdicts, largest effect first (failed points on top)."""
    bad = [v for v in verdicts if v.status in FLAGGED]
    return sorted(bad, key=lambda v: (-(v.effect if not math.isnan(v.effect) else math.inf),
                                      v.figure, v.point))


def _num(v: float) -> str:
    if not _finite(v):
        return "failed" if isinstance(v, float) and math.isnan(v) else "inf"
    return f"{v:.4g}"


def _abs_change(pair) -> str:
    if not pair:
        return "-"
    b, a = pair
    if not (_finite(a) and _finite(b)):
        return f"{_num(b)} -> {_num(a)}"
    return f"{b:.4g} -> {a:.4g} ({a - b:+.3g})"


def rows(verdicts: list[Verdict]) -> list[list[str]]:
    out = []
    for v in ranked(verdicts):
        change = "failed" if math.isinf(v.ratio) else f"{v.effect:+.1%}"
        thr = "any change" if v.source == "exact" else f"+{v.threshold:.1%} ({v.source})"
        out.append([v.status, v.point, v.figure, _num(v.before), _num(v.after), change, thr,
                    _abs_change(v.times.get("fast")), _abs_change(v.times.get("slow")),
                    v.ops or ""])
    return out


HEADER = ["verdict", "point", "figure", "before", "after", "change", "threshold",
          "fast us before -> after", "slow us before -> after", "ops"]


def _shown(verdicts: list[Verdict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows; the ops column only where a host-work count changed."""
    body = rows(verdicts)
    if any(r[-1] for r in body):
        return HEADER, body
    return HEADER[:-1], [r[:-1] for r in body]


def table(verdicts: list[Verdict]) -> str:
    from prettytable import PrettyTable
    header, body = _shown(verdicts)
    t = PrettyTable(header)
    t.align = "l"
    for r in body:
        t.add_row(r)
    return t.get_string()


def counts(verdicts: list[Verdict]) -> dict[str, dict[str, int]]:
    """``{figure: {"total": n, status: n, ...}}``."""
    out: dict[str, dict[str, int]] = {}
    for v in verdicts:
        c = out.setdefault(v.figure, {"total": 0})
        c["total"] += 1
        c[v.status] = c.get(v.status, 0) + 1
    return out


def markdown(verdicts: list[Verdict], head_line: str) -> str:
    lines = [f"**mhabench gate**: {head_line}", "", f"_{DIRECTION}; change = after / before - 1_",
             ""]
    header, bad = _shown(verdicts)
    if not bad:
        lines.append("No regression beyond the measured between-run variation.")
        return "\n".join(lines) + "\n"
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in bad:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines) + "\n"


def json_doc(verdicts: list[Verdict], ctx: dict, rule: Rule, status: int) -> dict:
    return {"base": ctx["base"], "head": ctx["head"], "machine": ctx["machine"],
            "records": {"base": ctx["base_records"], "head": ctx["head_records"]},
            "env": ctx["env"], "rule": asdict(rule), "direction": DIRECTION, "exit": status,
            "counts": counts(verdicts),
            "flagged": [_jsonable(asdict(v)) for v in ranked(verdicts)],
            "verdicts": [_jsonable(asdict(v)) for v in verdicts]}


def _jsonable(d):
    if isinstance(d, float):
        return d if math.isfinite(d) else None
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


# --- command line --------------------------------------------------------------------------------
def add_rule_args(p) -> None:
    p.add_argument("--k", type=float, default=Rule.k,
                   help="standard deviations of between-run noise a change must exceed (3)")
    p.add_argument("--floor", type=float, default=None,
                   help="smallest relative increase that counts (default per family: device "
                        "0.03, wall 0.05, instructions 0.005)")
    p.add_argument("--cap", type=float, default=Rule.cap,
                   help="relative increase that counts however noisy the point (1.0: doubling)")
    p.add_argument("--drift", type=float, default=None,
                   help="between-run drift allowed on top of one record's standard error "
                        "(default per family: device 0.01, wall 0.03)")
    p.add_argument("--advisory-k", type=float, default=Rule.advisory_k,
                   help="an advisory figure (A/A spread above its floor) fails only beyond this "
                        "many times its spread (3)")
    p.add_argument("--noise", default="auto", choices=("auto", "rounds", "floor"),
                   help="auto: replicate spread, else rounds' standard error; rounds: ignore "
                        "replicates; floor: floor and drift only")


def add_build_args(p) -> None:
    p.add_argument("base", metavar="BASE", help="build: tag, version or commit; @rN: one record")
    p.add_argument("head", metavar="HEAD", help="build: tag, version or commit; @rN: one record")
    p.add_argument("--dir", default=".asv/torch", help="mhabench track's dir (.asv/torch)")
    p.add_argument("--results", default="", metavar="DIR",
                   help="an asv results dir elsewhere (default DIR/results)")
    p.add_argument("--machine", default="", help="asv machine (default: the only one with both)")
    p.add_argument("--env", default="", metavar="ENV_NAME",
                   help="asv environment name, where a commit has results of several")


def add_output_args(p, what: str) -> None:
    p.add_argument("--json", default="", metavar="PATH", help=f"write the {what} as JSON")
    p.add_argument("--markdown", default="", metavar="PATH",
                   help="write the ranked table as Markdown (a CI comment)")


def rule_of(args) -> Rule:
    return Rule(args.k, args.floor, args.cap, args.drift, args.advisory_k, args.noise)


def register_gate(sub) -> None:
    p = sub.add_parser("gate", help="exit 1 if HEAD's fast/slow ratios or host work rose "
                                    "beyond the between-run variation",
                       description=__doc__.split("\n\n")[0])
    add_build_args(p)
    add_rule_args(p)
    add_output_args(p, "verdicts")
    p.set_defaults(func=cmd_gate)


def run_gate(args) -> tuple[list[Verdict], dict, Rule]:
    rule = rule_of(args)
    verdicts, ctx = gate(Path(args.dir), args.base, args.head, args.machine, rule,
                         Path(args.results) if args.results else None, args.env)
    return verdicts, ctx, rule


def cmd_gate(args) -> int:
    verdicts, ctx, rule = run_gate(args)
    bad = [v for v in verdicts if v.regressed]
    status = 1 if bad else 0
    head_line = (f"{args.base} ({ctx['base'][:8]}, {ctx['base_records']} record(s)) -> "
                 f"{args.head} ({ctx['head'][:8]}, {ctx['head_records']} record(s)) on "
                 f"{ctx['machine']} [{ctx['env']}]: {len(verdicts)} comparisons")
    print(head_line)
    print(f"{DIRECTION}; change = after / before - 1; threshold = min(cap {rule.cap:g}, "
          f"max(floor, {rule.k:g} sd of the between-run noise)); host-work counts: any change")
    flagged = ranked(verdicts)
    if flagged:
        print(table(verdicts))
    for fig, c in sorted(counts(verdicts).items()):
        shown = ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if k not in ("total", "ok"))
        print(f"  {fig}: {c['total']} points" + (f"; {shown}" if shown else ""))
    print(f"REGRESSED: {len(bad)} of {len(verdicts)}" if bad else
          "no regression beyond the between-run variation")
    if args.json:
        _write(args.json, json.dumps(json_doc(verdicts, ctx, rule, status), indent=1) + "\n")
    if args.markdown:
        _write(args.markdown, markdown(verdicts, head_line))
    return status


def _write(path: str, text: str) -> None:
    from ..measure.fileio import atomic_write
    atomic_write(path, text)
