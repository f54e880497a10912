"""A build's records, read only through :mod:`mhabench.track.asv_results` (asv's own reader),
with the sweeps' full result files beside them: their proof of build, their host calibration
and their op maps.

A build may hold several records (``track --repeats N``): replicate ``r1`` on machine ``M``,
``rN`` on ``M-rN``; ``BUILD@rN`` names one of them. Each record's full results file
(``records/<machine>/<commit>-<env>.json``, the layout of ``mhabench run --json``) says what it
measured: torch version and git hash, CPU or CUDA variant, mhabench's own code. A record that
measured another torch than its build is named and left out (:func:`proven`).
"""
from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..measure.config import ConfigError
from .asv_results import Record, records
from .rule import label

REPLICATE = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")
MANIFEST, RECORDS, INSTALLED = "builds.json", "records", "installed"


@dataclass
class Build:
    """One build's records, as the gate reads them."""

    name: str                 # as asked (2.13.0, torch-2.13.0, a commit prefix, @rN)
    commit: str
    expected: dict            # the build's version / git hash, from builds.json and installed/
    records: list             # [Record] kept
    meta: list                # the kept records' meta (record files), {} where none
    refused: list = field(default_factory=list)   # ["path: why"]
    probes: list = field(default_factory=list)    # per kept record, {point: host probe us}
    notes: list = field(default_factory=list)

    @property
    def variant(self) -> str:
        found = {m.get("variant") for m in self.meta if m.get("variant")}
        return ", ".join(sorted(found)) if found else ""


def read_manifest_commits(directory: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """(``{tag: commit}``, ``{commit: build}``) of track's builds.json; ({}, {}) without one;
    ConfigError naming the file if it is corrupt or a folder."""
    manifest = directory / MANIFEST
    if not manifest.exists():
        return {}, {}
    from ..measure.fileio import read_json
    doc = read_json(manifest, "builds manifest")
    try:
        commits = doc.get("commits", {})
        if not isinstance(commits, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in commits.items()):
            raise ValueError("commits is not a {tag: hash} map")
        builds = {}
        for b in doc.get("builds", []):
            tag = "torch-" + re.sub(r"[^A-Za-z0-9._-]", "_", b["version"] + (
                f"-{b['variant']}" if b.get("variant") else ""))
            if tag in commits:
                builds[commits[tag]] = dict(b)
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest}: not a builds manifest ({exc})") from None
    return dict(commits), builds


def known_commits(results_dir: Path) -> tuple[set[str], list[str]]:
    """(full hashes asv filed results under, ``["path: why"]`` of the result files that could
    not be read): a build named by a file that is broken is reported with the file."""
    from .asv_results import load_record
    known, broken = set(), []
    for p in sorted(results_dir.glob("*/*.json")):
        if p.name in ("machine.json", "benchmarks.json"):
            continue
        try:
            known.add(load_record(p).commit)
        except ConfigError as exc:
            broken.append(str(exc))
    return known, broken


def split_replicate(name: str) -> tuple[str, int]:
    """``2.13.0@r2`` -> ("2.13.0", 2); ``2.13.0`` -> ("2.13.0", 0)."""
    m = re.fullmatch(r"(.+)@r(\d+)", name)
    if not m:
        return name, 0
    if int(m[2]) < 1:
        raise ConfigError(f"{name!r}: replicates count from r1")
    return m[1], int(m[2])


def resolve(name: str, commits: dict[str, str], known: set[str], broken=()) -> str:
    """A build by tag (``torch-2.13.0``), version (``2.13.0``) or commit (a prefix of 4+);
    ConfigError naming a broken result file where one may be the build's."""
    for tag in (name, "torch-" + name):
        if tag in commits:
            return commits[tag]
    hits = {c for c in set(commits.values()) | known if len(name) >= 4 and c.startswith(name)}
    if len(hits) == 1:
        return hits.pop()
    suspects = [b for b in broken if Path(b.split(": ", 1)[0]).name.startswith(name[:8])]
    if suspects or (broken and not hits):
        raise ConfigError(f"build {name!r}: its result file is broken: {(suspects or broken)[0]}")
    raise ConfigError(f"unknown build {name!r}" + (" (ambiguous commit prefix)" if hits else
                      f" (tags: {', '.join(sorted(commits)) or 'none'})"))


def replicate_machines(results_dir: Path, machine: str) -> list[tuple[int, str]]:
    """``[(1, M), (2, M-r2), ...]``: the machines holding replicates of ``machine``'s records."""
    out = [(1, machine)] if (results_dir / machine).is_dir() else []
    for p in results_dir.iterdir() if results_dir.is_dir() else []:
        m = REPLICATE.match(p.name)
        if p.is_dir() and m and m["base"] == machine and int(m["n"]) >= 2:
            out.append((int(m["n"]), p.name))
    return sorted(out)


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


def record_file(directory: Path, rec: Record) -> Path:
    """Where a record's full results are: ``records/<machine>/<commit>-<env>.json``."""
    return directory / RECORDS / rec.machine / f"{rec.commit}-{rec.env_name}.json"


def read_record_file(path: Path) -> dict:
    """A record's full results document; ConfigError naming the file if it is not one."""
    from ..measure.fileio import read_json
    doc = read_json(path, "record file")
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) \
            or not isinstance(doc.get("results"), list):
        raise ConfigError(f"{path}: not a record file (mhabench run --json's layout)")
    return doc


def public(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: the version a build is asked for by."""
    return str(version or "").split("+", 1)[0]


def proven(meta: dict, expected: dict) -> str:
    """"" where a record's meta is the build it claims, else what differs, in words."""
    want, got = expected.get("version"), meta.get("torch")
    if want and got and public(got) != public(want):
        return f"measured torch {got}, not {want}"
    want_git, got_git = expected.get("git_version"), meta.get("torch_git")
    if want_git and got_git and want_git != got_git:
        return f"measured torch git {got_git[:12]}, not {want_git[:12]}"
    want_variant, got_variant = expected.get("variant"), meta.get("variant")
    if want_variant and got_variant and want_variant != got_variant:
        return f"measured a {got_variant} build, not {want_variant}"
    return ""


def load_build(directory: Path, results_dir: Path, machine: str, name: str,
               commits: dict, builds: dict, known, env: str = "") -> Build:
    """Every record of build ``name`` over ``machine``'s replicates (``@rN``: that one only),
    each checked against its record file's proof; records that prove another build are left
    out and named."""
    base, replicate = split_replicate(name)
    known, broken = known if isinstance(known, tuple) else (known, [])
    commit = resolve(base, commits, known, broken)
    expected = dict(builds.get(commit, {}))
    installed = directory / INSTALLED / f"{commit}.json"
    if installed.is_file():
        try:
            info = json.loads(installed.read_text())
            expected.setdefault("git_version", info.get("git_version", ""))
            if info.get("variant"):
                expected["variant"] = info["variant"]
        except (OSError, ValueError):
            pass
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
    build = Build(name, commit, expected, [], [])
    missing = 0
    for rec in found:
        path = record_file(directory, rec)
        doc = read_record_file(path) if path.is_file() else {}
        meta = doc.get("meta", {})
        missing += not meta
        why = proven(meta, expected)
        if why:
            build.refused.append(f"record {rec.machine}/{Path(rec.path).name[:8]} of {name}: "
                                 f"{why}")
            continue
        build.records.append(rec)
        build.meta.append(meta)
        build.probes.append(point_probes(doc.get("results", [])))
    if missing:
        build.notes.append(f"{missing} record(s) of {name} carry no record file: their build "
                           "is not proven")
    variants = {m.get("variant") for m in build.meta if m.get("variant")}
    if len(variants) > 1:
        build.notes.append(f"records of {name} measured different variants: "
                           f"{', '.join(sorted(variants))}")
    return build


def point_values(recs: list[Record]) -> dict[str, dict[str, list]]:
    """``{benchmark: {point label: [value per record]}}``; None failed, NaN n/a."""
    out: dict[str, dict[str, list]] = {}
    for rec in recs:
        for name, values in rec.values.items():
            row = out.setdefault(name, {})
            for combo, v in values.items():
                row.setdefault(label(combo), []).append(v)
    return out


# --- what the record files add: op maps, backends, the host's state -----------------------------
def short_label(text: str) -> str:
    """``B2-S8-E32-H4-b1-float32-cpu`` -> ``B2-S8-E32-H4-b1`` (the gate's point)."""
    return "-".join(str(text).split("-")[:5])


def ops_of(directory: Path, build: Build) -> dict[str, dict[str, dict]]:
    """``{point: {path: {"ops": {op: count per call}, "functions": {function: bytecodes}}}}``
    from the build's first record file that has them ({} where none)."""
    for rec in build.records:
        path = record_file(directory, rec)
        if not path.is_file():
            continue
        out = {}
        for r in read_record_file(path)["results"]:
            out[short_label(r.get("label", ""))] = {
                p: {"ops": dict(w.get("ops") or {}), "functions": dict(w.get("functions") or {})}
                for p, w in (r.get("host_work") or {}).items()}
        return out
    return {}


def op_diff(before: dict, after: dict, limit: int = 4) -> str:
    """``+aten::neg x1, aten::item 9->3``: ops (or functions' bytecodes) that appeared, vanished
    or changed count (the largest changes first, at most ``limit``, then how many more)."""
    parts = []
    for op in sorted(set(before) | set(after), key=lambda o: (-abs(after.get(o, 0)
                                                                  - before.get(o, 0)), o)):
        b, a = before.get(op, 0), after.get(op, 0)
        if b == a:
            continue
        parts.append(f"+{op} x{a:g}" if not b else f"-{op} x{b:g}" if not a else
                     f"{op} {b:g}->{a:g}")
    more = f", {len(parts) - limit} more" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


def work_diff(before: dict, after: dict) -> str:
    """One path's changed work at a point: its ops, then the functions whose bytecodes changed
    (``bytecodes: MultiheadAttention.forward 310->322``)."""
    ops = op_diff(before.get("ops", {}), after.get("ops", {}))
    functions = ""
    if before.get("functions") and after.get("functions"):
        functions = op_diff(before["functions"], after["functions"], limit=3)
    return "; ".join(filter(None, [ops, functions and f"bytecodes: {functions}"]))


def work_part(text: str, kind: str) -> str:
    """The part of a work diff (:func:`work_diff`) that explains a count of ``kind``: the
    functions' bytecodes for ``bytecodes``, the ops for the profiler's counts."""
    ops, _, functions = text.partition("bytecodes: ")
    return functions if kind == "bytecodes" else ops.rstrip("; ")


def work_changes(directory: Path, base: Build, head: Build) -> dict[tuple[str, str], str]:
    """``{(point, path): work diff}`` where a path's dispatched ops or Python changed between
    the builds."""
    b, a = ops_of(directory, base), ops_of(directory, head)
    out = {}
    for point in sorted(set(b) & set(a)):
        for path in sorted(set(b[point]) | set(a[point])):
            text = work_diff(b[point].get(path, {}), a[point].get(path, {}))
            if text:
                out[(point, path)] = text
    return out


def host_levels(metas: list[dict]) -> list[float]:
    """Per record, the speed its host ran the calibration loop at (the median of its
    calibrations' medians, in us), NaN where the record carries none: a process slow for its
    whole sweep calibrates steadily, at a level its build's other records do not share."""
    levels = [_medians(meta.get("host_calibration")) for meta in metas]
    return [statistics.median(xs) if xs else math.nan for xs in levels]


def point_probes(results: list) -> dict[str, float]:
    """``{point: us}``: per measured point of a record, the slower of the host probes that
    bracketed its kept rounds (:func:`mhabench.measure.machine.host_probe`): the host's state
    while that point was timed. Points without probes (records made before the probe, points
    never timed) are left out."""
    out = {}
    for r in results:
        probes = [x for x in (r.get("host_probe_us") or []) if isinstance(x, (int, float))
                  and math.isfinite(x) and x > 0] if isinstance(r, dict) else []
        if probes:
            out[short_label(r.get("label", ""))] = max(probes)
    return out


def probe_levels(probes: list[list[dict]]) -> list[list[float]]:
    """Per build, per record, the speed its host ran at while in the fast state: the median of
    the record's point probes (:func:`point_probes`) that read the fast state of every record
    of the builds together (:func:`mhabench.measure.retime.fast_state`, within
    :data:`~mhabench.measure.retime.SLOW_STATE`; all of its points where there are too few to
    tell). A record all in the slow state has no level (NaN): the points' own check judges it."""
    from ..measure.retime import SLOW_STATE, fast_state
    pooled = {f"{b}/{r}/{p}": [us] for b, side in enumerate(probes)
              for r, rec in enumerate(side) for p, us in rec.items()}
    fast = fast_state(pooled)
    limit = SLOW_STATE * fast if fast is not None else math.inf
    out = []
    for side in probes:
        levels = []
        for rec in side:
            xs = [us for us in rec.values() if us <= limit]
            levels.append(statistics.median(xs) if xs else math.nan)
        out.append(levels)
    return out


def _medians(calibration) -> list[float]:
    """A record's calibrations' medians (us), those that were measured."""
    xs = [c.get("median_us") for c in calibration or [] if isinstance(c, dict)]
    return [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]


def unsteadiness(calibration) -> float:
    """How far a record's host moved, from its calibrations (a fixed Python loop timed before
    and after the sweep in the measuring process): the larger of their spreads (relative IQR)
    and of the change between their medians (a host that halved its speed mid-sweep, another
    process taking half the core, is steady within each calibration); NaN where none."""
    cal = [c for c in calibration or [] if isinstance(c, dict)]
    spreads = [c.get("rel_iqr") for c in cal]
    spreads = [x for x in spreads if isinstance(x, (int, float)) and math.isfinite(x)]
    medians = _medians(cal)
    drift = max(medians) / min(medians) - 1 if len(medians) > 1 else math.nan
    found = [x for x in spreads + [drift] if math.isfinite(x)]
    return max(found) if found else math.nan


def run_values(docs: list[dict]) -> dict[str, dict[str, list]]:
    """``{asv benchmark: {point: [value per doc]}}`` of ``mhabench run --json`` documents, as
    asv would have recorded them (None where a point failed, NaN where not measured): what a
    measuring script judges without asv."""
    from .. import catalogue as cat
    out: dict[str, dict[str, list]] = {}
    for doc in docs:
        for r in doc["results"]:
            point = short_label(r["label"])
            ok = r.get("status") == "ok"
            metrics = r.get("metrics") or {}
            for f in cat.FIGURES:
                if f.asv:
                    v = f.value(metrics) if ok else None
                    out.setdefault(f.asv, {}).setdefault(point, []).append(v)
    return out
