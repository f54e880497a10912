"""The gate as a library: the builds' records loaded (:mod:`.records`), each step BASE -> HEAD
judged (:mod:`.rule`) into a :class:`Step`, which ``mhabench gate`` prints and
``mhabench track`` tells as the history's story."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..measure.config import ConfigError
from . import records as rc
from .rule import Finding, Rule, compare, findings, vouch

#: A build whose records' host calibrations (a fixed pure-Python loop timed in the measuring
#: process before and after its sweep) moved by more than this at the median (spread within a
#: calibration, or change between the two) ran on a noisy host: its steps judge no wall figure.
NOISY_CALIBRATION = 0.10
#: What a step judges where it judges no wall figure.
STILL_JUDGED = "kernel times, host-work counts and instructions are"


@dataclass
class Step:
    """One comparison BASE -> HEAD, judged."""

    base: str
    head: str
    context: dict                         # commits, records, machine, env, variants
    judged: list                          # [Judged]
    findings: list                        # [Finding]
    work: dict = field(default_factory=dict)     # {(point, path): op diff}
    vouch: dict = field(default_factory=dict)    # {family: smallest change seen}
    notes: list = field(default_factory=list)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]


def steps(directory: Path, names: list[str], machine: str = "", env: str = "",
          rule: Rule | None = None, fails: tuple = ()) -> list[Step]:
    """The judged steps between consecutive builds of ``names`` (ConfigError on bad input)."""
    rule = rule or Rule()
    results_dir = directory / "results"
    if not results_dir.is_dir():
        raise ConfigError(f"{results_dir}: no asv results there")
    commits, manifest = rc.read_manifest_commits(directory)
    known = rc.known_commits(results_dir)
    targets = [rc.resolve(rc.split_replicate(b)[0], commits, *known) for b in names]
    if not machine:
        found = rc.machines_with(results_dir, targets)
        if len(found) != 1:
            raise ConfigError(f"--machine needed: results for every build on "
                              f"{', '.join(found) or 'no machine'}")
        machine = found[0]
    builds = [rc.load_build(directory, results_dir, machine, name, commits, manifest, known,
                            env) for name in names]
    for b in builds:
        if not b.records:
            why = f" ({'; '.join(b.refused)})" if b.refused else ""
            where = f" in environment {env!r}" if env else ""
            raise ConfigError(f"no usable results for {b.name} on machine {machine!r}{where} in "
                              f"{results_dir}{why}")
    steps = []
    for base, head in zip(builds, builds[1:]):
        before, after = rc.point_values(base.records), rc.point_values(head.records)
        spread = None
        if rc.split_replicate(base.name)[1]:
            full = rc.load_build(directory, results_dir, machine, rc.split_replicate(base.name)[0],
                                 commits, manifest, known, env)
            spread = rc.point_values(full.records)
        notes = [n for b in (base, head) for n in b.notes + [f"left out: {r}" for r in b.refused]]
        pythons = other_pythons([base.meta, head.meta])
        unjudged, differ = host_checks([base.meta, head.meta], [base.probes, head.probes],
                                       pythons)
        notes.extend([pythons] if pythons else [])
        unjudged += [why for why in (timed_differently([base, head]),) if why]
        before, after, spread = withheld([before, after, spread], unjudged, differ)
        if unjudged:
            notes.extend(unjudged)
        elif differ:
            notes.append(states_note(differ, len({p for row in before.values() for p in row})))
        judged = compare(before, after, rule, spread_from=spread)
        if not judged:
            raise ConfigError(f"{base.name} and {head.name} share no judged figure at a point "
                              f"on {machine!r}")
        work = rc.work_changes(directory, base, head)
        if base.variant and head.variant and base.variant != head.variant:
            notes.append(f"the builds differ in variant: {base.name} is {base.variant}, "
                         f"{head.name} is {head.variant}")
        context = {"base": base.commit, "head": head.commit, "machine": machine,
                   "base_records": len(base.records), "head_records": len(head.records),
                   "env": base.records[0].env_name, "variants": [base.variant, head.variant],
                   "wall_judged": not unjudged, "wall_unjudged_points": sorted(differ)}
        steps.append(Step(base.name, head.name, context, judged,
                          findings(judged, fails, work), work, vouch(judged), notes))
    return steps


def host_checks(metas: list[list[dict]], probes: list[list[dict]], pythons: str | None = None
                ) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Why the step judges no wall figure (empty where it may), and the points where it judges
    none (:func:`states_differ`). CUDA records that carry a host probe at every point they timed
    (:func:`probed_on_cuda`) are judged point by point by their probes alone; others by their
    calibrations (:func:`host_unjudged`) and then by their probes where they have them. On
    CUDA the probes also give each record's host level (:func:`mhabench.track.records.
    probe_levels`): builds whose levels are apart withhold every wall figure, as the
    calibrations' levels do elsewhere (:func:`uneven_hosts`)."""
    if probed_on_cuda(metas, probes):
        why = uneven_hosts(rc.probe_levels(probes), PROBES_READ)
        return ([why], {}) if why else ([], states_differ(probes))
    why = host_unjudged(metas, pythons)
    return why, {} if why else states_differ(probes)


def probed_on_cuda(metas: list[list[dict]], probes: list[list[dict]]) -> bool:
    """Whether every record of both builds measured CUDA and kept a host probe at its points.
    There the probe, not the calibrations, says where the host was slow: on six H200 gate
    rounds (6, 7, 15-18; the calibrations withheld every wall figure of 6 and 7), the probes'
    checks failed none of 18 A/A splits and flagged none of 3,955 wall comparisons, and the
    100 us wait was caught by wall figures at 13-69 of 72 points besides the bytecodes' 72
    (docs/lab/2026-12-03.md, rounds 15-18). Nothing measured a CPU host's states this way, so
    a CPU step keeps the calibrations."""
    if len(metas) != 2 or len(probes) != 2:
        return False
    return all(side and all(str(m.get("device", "")).startswith("cuda") for m in side)
               for side in metas) \
        and all(side and all(side) for side in probes)


def host_unjudged(metas: list[list[dict]], pythons: str | None = None) -> list[str]:
    """Why the builds' hosts cannot have their wall figures judged (none where they can), from
    each build's records' meta: a host that moved within its records (:func:`noisy_host`), or
    builds whose hosts ran at different speeds (:func:`uneven_hosts`), where they ran one
    Python (:func:`other_pythons`; ``pythons``, where the caller has it already)."""
    why = [noisy_host([[rc.unsteadiness(m.get("host_calibration")) for m in side]
                       for side in metas])]
    if not (other_pythons(metas) if pythons is None else pythons):
        why.append(uneven_hosts([rc.host_levels(side) for side in metas]))
    return [w for w in why if w]


def other_pythons(metas: list[list[dict]]) -> str:
    """"" where the builds' records ran one Python (or do not say), else a note naming them.
    The calibration loop is the interpreter's own work (its fastest reading on one host was
    728 us under Python 3.11 and 1176 under 3.12; docs/tracking.md), so levels under different
    Pythons say nothing of the host, and :func:`uneven_hosts` is not asked."""
    sides = [sorted({".".join(str(m["python"]).split(".")[:2]) for m in side if m.get("python")})
             for side in metas]
    if all(sides) and len({tuple(s) for s in sides}) > 1:
        named = " and ".join("/".join(s) for s in sides)
        return (f"the builds ran under different Pythons ({named}): their hosts' speeds are not "
                f"compared, as the calibration loop is the interpreter's own work")
    return ""


def noisy_host(calibrations: list[list[float]]) -> str:
    """"" where the records' hosts were calm enough to judge wall figures by, else why not: a
    build whose records' hosts moved (:func:`mhabench.track.records.unsteadiness`) by more than
    :data:`NOISY_CALIBRATION` at the median ran on a host that changes state between or within
    processes, which three records cannot tell from a regression (docs/lab/2026-12-03.md)."""
    import statistics
    worst = 0.0
    for spreads in calibrations:
        xs = [x for x in spreads if x == x]
        if xs:
            worst = max(worst, statistics.median(xs))
    if worst <= NOISY_CALIBRATION:
        return ""
    return (f"wall figures not judged: the host was noisy (its calibration moved {worst:.0%} "
            f"at the median over a build's records, above {NOISY_CALIBRATION:.0%}); {STILL_JUDGED}")


#: How :func:`uneven_hosts` names the levels it compares.
CALIBRATIONS_READ = "the builds' calibrations read"
PROBES_READ = "the builds' host probes read"


def uneven_hosts(levels: list[list[float]], read: str = CALIBRATIONS_READ) -> str:
    """"" where the builds' hosts ran at one speed, else why not: each build's level is the
    median over its records of their levels (the calibrations',
    :func:`mhabench.track.records.host_levels`, or on CUDA the probes',
    :func:`mhabench.track.records.probe_levels`), and levels more than
    :data:`NOISY_CALIBRATION` apart withhold the wall figures. A process slow for its whole
    sweep calibrates steadily, so :func:`noisy_host` cannot see it; one such record of three is
    outvoted by the median, as the replicates' median outvotes its figures. On one H200 lease
    (round 16) the processes ran at two levels, probes 44-51 and 53-54 us with fast paths at
    204-226 and 252-255 us (fast/slow ratios at 0.74-0.75 over the points): two A/A splits of
    three, their probe levels 12% apart, failed by wall times and ratios at 19 and 2 points."""
    import statistics
    meds = [statistics.median(xs) for side in levels if (xs := [x for x in side if x == x])]
    if len(meds) < 2 or max(meds) <= (1 + NOISY_CALIBRATION) * min(meds):
        return ""
    return (f"wall figures not judged: the hosts ran at different speeds ({read} "
            f"{min(meds):.0f} and {max(meds):.0f} us at the median over their "
            f"records, {max(meds) / min(meds) - 1:.0%} apart, above {NOISY_CALIBRATION:.0%}); "
            f"{STILL_JUDGED}")


def timed_differently(builds: list) -> str:
    """"" where every record that says how it timed its wall figures timed them alike
    (:func:`mhabench.measure.protocol.wall_timing`), else the first knob that differs and its
    values, per build. A record that names no protocol is taken as it comes."""
    from ..measure.protocol import wall_timing
    seen: dict[str, dict] = {}
    for b in builds:
        for meta in b.meta:
            for knob, v in wall_timing(meta.get("protocol")).items():
                seen.setdefault(knob, {}).setdefault(v, set()).add(b.name)
    for knob, values in seen.items():
        if len(values) > 1:
            where = "; ".join(f"{v} in {', '.join(sorted(names))}"
                              for v, names in sorted(values.items(), key=lambda kv: str(kv[0])))
            return (f"wall figures not judged: the records timed them differently ({knob} "
                    f"{where}); {STILL_JUDGED}")
    return ""


def states_differ(probes: list[list[dict]]) -> dict[str, tuple[float, float]]:
    """``{point: (base us, head us)}``: the points where the two builds' records caught the
    host in different states. Per point and build, the median over its records of the point's
    host probe (:func:`mhabench.track.records.point_probes`); two medians more than
    :data:`mhabench.measure.retime.SLOW_STATE` apart differ. The probe is a fixed Python loop
    that no torch build changes. On H200 leases it read 60 us in one record and 125 in the next
    where the sweep-end calibrations moved 5-11%, and a fast path that is mostly host time
    moved with it, ratio and all (the slow path's kernels outlast its host work): in one A/A
    round that made a false regression the calibrations could not see (docs/lab/2026-12-03.md,
    round 15). Points without probes on either side are left to the other checks."""
    import statistics
    from ..measure.retime import SLOW_STATE
    if len(probes) != 2:
        return {}
    sides = []
    for records in probes:
        got: dict[str, list] = {}
        for rec in records:
            for point, us in rec.items():
                got.setdefault(point, []).append(us)
        sides.append({p: statistics.median(v) for p, v in got.items()})
    base, head = sides
    return {p: (base[p], head[p]) for p in sorted(base) if p in head
            and max(base[p], head[p]) > SLOW_STATE * min(base[p], head[p])}


def states_note(differ: dict[str, tuple[float, float]], points: int) -> str:
    """The step's note on the points whose wall figures :func:`states_differ` withheld."""
    worst = max(differ, key=lambda p: max(differ[p]) / min(differ[p]))
    b, h = differ[worst]
    return (f"wall figures not judged at {len(differ)} of {points} points, where the host's "
            f"probe read another state on each side (widest: {worst}, {b:.0f} -> {h:.0f} us); "
            f"{STILL_JUDGED}")


def withheld(values: list, unjudged: list[str], differ: dict) -> list:
    """Each of ``values`` (a build's ``{benchmark: {point: [values]}}``, or None) without the
    wall figures the host checks withhold (:func:`host_checks`, :func:`timed_differently`):
    all of them where ``unjudged`` says why, else at the ``differ`` points."""
    if not unjudged and not differ:
        return list(values)
    points = None if unjudged else differ
    return [without_wall(v, points) if v else v for v in values]


def without_wall(values: dict, points=None) -> dict:
    """``values`` without the wall family's figures (times and fast/slow wall ratios): all of
    them, or only at ``points``."""
    from .. import catalogue as cat

    def wall(k):
        return bool(cat.BY_ASV.get(k) and cat.BY_ASV[k].family == "wall")
    if points is None:
        return {k: v for k, v in values.items() if not wall(k)}
    return {k: ({p: x for p, x in v.items() if p not in points} if wall(k) else v)
            for k, v in values.items()}
