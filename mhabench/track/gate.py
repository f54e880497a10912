"""The gate as a library: the builds' records loaded (:mod:`.records`), each step BASE -> HEAD
judged (:mod:`.rule`) into a :class:`Step`, which ``mhabench gate`` prints and
``mhabench track`` tells as the history's story."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..measure.config import ConfigError
from . import records as rc
from .rule import Finding, Rule, compare, findings, vouch

#: A record whose host calibration spread (relative IQR of a fixed pure-Python loop, timed in
#: its own process before and after its sweep) is above this ran on a noisy host: its wall
#: figures are left out where its build has other records.
NOISY_CALIBRATION = 0.10


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
        before, after, notes = _values(base), _values(head), []
        spread = None
        if rc.split_replicate(base.name)[1]:
            full = rc.load_build(directory, results_dir, machine, rc.split_replicate(base.name)[0],
                                 commits, manifest, known, env)
            spread = _values(full)
        judged = compare(before, after, rule, spread_from=spread)
        if not judged:
            raise ConfigError(f"{base.name} and {head.name} share no judged figure at a point "
                              f"on {machine!r}")
        work = rc.work_changes(directory, base, head)
        for b in (base, head):
            notes += b.notes + [f"left out: {r}" for r in b.refused]
            noisy = [i for i, s in enumerate(rc.calibrations(b)) if s > NOISY_CALIBRATION]
            if noisy and len(noisy) < len(b.records):
                notes.append(f"{b.name}: {len(noisy)} record(s) ran on a noisy host (host "
                             f"calibration spread above {NOISY_CALIBRATION:.0%}): their wall "
                             "figures are left out")
            elif noisy:
                notes.append(f"{b.name}: every record ran on a noisy host (host calibration "
                             f"spread above {NOISY_CALIBRATION:.0%}): its wall figures are judged "
                             "with the spread they show")
        if base.variant and head.variant and base.variant != head.variant:
            notes.append(f"the builds differ in variant: {base.name} is {base.variant}, "
                         f"{head.name} is {head.variant}")
        context = {"base": base.commit, "head": head.commit, "machine": machine,
                   "base_records": len(base.records), "head_records": len(head.records),
                   "env": base.records[0].env_name, "variants": [base.variant, head.variant]}
        steps.append(Step(base.name, head.name, context, judged,
                          findings(judged, fails, work), work, vouch(judged), notes))
    return steps


def _values(build) -> dict:
    """A build's values, its noisy records' wall figures left out where others remain."""
    from .. import catalogue as cat
    from .records import calibrations, point_values
    quiet = [r for r, s in zip(build.records, calibrations(build))
             if not (isinstance(s, float) and s > NOISY_CALIBRATION)]
    values = point_values(build.records)
    if len(quiet) == len(build.records) or not quiet:
        return values
    calm = point_values(quiet)
    for name in list(values):
        f = cat.BY_ASV.get(name)
        if f is not None and f.family == "wall":
            values[name] = calm.get(name, {})
    return values


