"""The gate's report: a first line that says which path moved and why, then the fast path (what
the exit status judges), the slow paths, the fast/slow ratios explained, the regressions point
by point, and the smallest change each verdict could have seen. The same structure as text
(within 160 columns), Markdown and JSON.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict

from .. import catalogue as cat
from ..track.gate import Step
from ..track.records import work_part
from ..track.rule import CAUGHT_UP, FAST_WORSE, NO_LONGER_PAYS, Finding, Judged
from ..track.stats import finite, med

WIDTH = 160


def _pct(x: float) -> str:
    return "-" if not finite(x) else f"{x:+.1%}" if abs(x) < 10 else f"{x:+.0%}"


def _median_change(judged: list[Judged], pred) -> float:
    return med([j.change for j in judged if pred(j.fig) and finite(j.change)])


def _common(diffs: list[str]) -> str:
    """The op diff most points share, with how many."""
    if not diffs:
        return ""
    text, n = Counter(diffs).most_common(1)[0]
    return text if n == len(diffs) else f"{text} at {n} of {len(diffs)} points"


def path_summary(step: Step, path: str) -> str:
    """``fast -3.1% (aten::item 9->3)``: a path's median wall time change (else its kernel time
    or instructions, named) and the work that changed."""
    label = path
    change = _median_change(step.judged, lambda f: f.role == "cost" and f.path == path
                            and f.family == "wall")
    for family in ("device", "instructions"):
        if not finite(change):
            change = _median_change(step.judged, lambda f: f.role == "cost" and f.path == path
                                    and f.family == family)
            label = f"{path} {cat.FAMILIES[family].what.replace('host ', '')}"
    diffs = [d for (pt, p), d in step.work.items() if p == path]
    work = _common(diffs)
    return f"{label} {_pct(change)}" + (f" ({work})" if work else "")


def ratio_summary(step: Step) -> str:
    """How the wall (else kernel) fast/slow ratio moved, and why; "" where none was judged."""
    judged = [j for j in step.judged if j.fig.role == "ratio" and j.fig.pair[1] == "slow"]
    if not judged:
        return ""
    family = "wall" if any(j.fig.family == "wall" for j in judged) else "device"
    judged = [j for j in judged if j.fig.family == family]
    change = _median_change(judged, lambda f: True)
    flagged = Counter(f.verdict for f in step.findings if f.section == "ratio"
                      and f.judged in judged and f.verdict != "improved")
    if not flagged:
        return f"fast/slow {_pct(change)}" + (": within the noise" if finite(change) else "")
    verdict, n = flagged.most_common(1)[0]
    return f"fast/slow {_pct(change)}: {verdict} at {n} of {len(judged)} points"


def headline(step: Step) -> str:
    """The first line: which path moved, and why."""
    fails = step.failing
    if fails:
        where: dict[str, set] = {}
        for f in fails:
            kind = cat.FAMILIES[f.judged.fig.family].what if f.section != "ratio" else \
                f"{f.judged.fig.family} fast/slow"
            where.setdefault(kind, set()).add(f.point)
        points = len({f.point for f in fails})
        total = len({j.point for j in step.judged})
        what = ", ".join(f"{k} at {len(v)}" for k, v in
                         sorted(where.items(), key=lambda kv: -len(kv[1]))[:3])
        return (f"REGRESSED: the fast path got worse at {points} of {total} points ({what}); "
                f"{path_summary(step, 'fast')}")
    parts = [path_summary(step, "fast"), path_summary(step, "slow"), ratio_summary(step)]
    return "the fast path is not worse: " + "; ".join(filter(None, parts))


def story_line(step: Step) -> str:
    """One line per step of a history: ``2.1.2 -> 2.3.1: fast ...; slow ...; fast/slow ...``."""
    return _cut(f"{step.base} -> {step.head}: {headline(step)}")


def _cut(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _family_rows(step: Step, section: str) -> list[list[str]]:
    """Per figure of a section: points, worse, better, median change, what changed."""
    rows = []
    by_figure: dict[str, list[Judged]] = {}
    for j in step.judged:
        f = j.fig
        if f.role not in ("cost", "work"):
            continue
        if (section == "fast") != (f.path == "fast"):
            continue
        by_figure.setdefault(j.figure, []).append(j)
    for name, js in by_figure.items():
        f = cat.BY_ASV[name]
        worse = sum(j.worse for j in js)
        better = sum(j.status == "improved" for j in js)
        diffs = [x for x in (work_part(d, f.counts) for (pt, p), d in step.work.items()
                             if p == f.path) if x] if f.role == "work" else []
        what = f"{f.path} {f.counts}" if f.role == "work" else \
            f"{f.path} {cat.FAMILIES[f.family].what}"
        rows.append([what, str(len(js)), str(worse), str(better),
                     _pct(med([j.change for j in js])), _cut(_common(diffs), 70)])
    return rows


def _ratio_rows(step: Step) -> list[list[str]]:
    rows = []
    by: dict[str, list[Finding]] = {}
    judged: dict[str, list[Judged]] = {}
    for j in step.judged:
        if j.fig.role == "ratio":
            judged.setdefault(j.figure, []).append(j)
    for f in step.findings:
        if f.section == "ratio":
            by.setdefault(f.figure, []).append(f)
    for name, js in judged.items():
        f = cat.BY_ASV[name]
        verdicts = Counter(x.verdict for x in by.get(name, []))
        text = ", ".join(f"{v} {n}" for v, n in verdicts.most_common()) or "within the noise"
        why = Counter(x.why for x in by.get(name, []) if x.verdict != "improved")
        reason = why.most_common(1)[0][0] if why else ""
        rows.append([f"{f.family} {f.pair[0]}/{f.pair[1]}", str(len(js)),
                     _pct(med([j.change for j in js])), text, _cut(reason, 70)])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    from prettytable import PrettyTable
    t = PrettyTable(header)
    t.align = "l"
    for r in rows:
        t.add_row(r)
    return t.get_string()


def _times(f: Finding) -> tuple[str, str]:
    def pair(p):
        v = f.times.get(p)
        if not v or not all(finite(x) for x in v):
            return "-"
        return f"{v[0]:.4g} -> {v[1]:.4g}"
    slow = next((p for p in f.times if p != "fast"), "slow")
    return pair("fast"), pair(slow)


def _num(v: float) -> str:
    """``1.023M``, ``75.3k``, ``229``: four figures, a count's magnitude at a glance."""
    if not finite(v):
        return "-"
    for at, scale, unit in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(v) >= at:
            return f"{v / scale:.4g}{unit}"
    return f"{v:.4g}"


def regression_groups(step: Step) -> list[tuple[str, list[str], list[list[str]]]]:
    """The failing points, a table per figure (largest change first): ``(title, header,
    rows)``. What was judged comes first (before, after, change, threshold); the two paths'
    own times of a ratio follow as context only (absolute levels move between processes)."""
    by: dict[str, list[Finding]] = {}
    for f in step.failing:
        by.setdefault(f.figure, []).append(f)
    groups = []
    for name, found in sorted(by.items()):
        found.sort(key=lambda x: -(x.judged.change if finite(x.judged.change) else 9))
        ratio = found[0].judged.fig.role == "ratio"
        verdicts = Counter(f.verdict for f in found)
        title = (f"{name.split('.', 1)[1]}: {', '.join(f'{v} at {n}' for v, n in verdicts.items())}"
                 f" of {len({j.point for j in step.judged if j.figure == name})} points")
        header = ["point", "before", "after", "change", "threshold"]
        header += ["context: fast, slow µs"] if ratio else []
        header += ["why"]
        rows = []
        for f in found:
            j = f.judged
            thr = "any change" if j.source == "exact" else f"{j.threshold:.1%} {j.source[:4]}."
            row = [j.point, _num(j.before), "failed" if not finite(j.after) else
                   _num(j.after), _pct(j.change), thr]
            row += [", ".join(_times(f))] if ratio else []
            rows.append(row + [_cut(f.why, 60)])
        if not any(r[-1] for r in rows):
            header, rows = header[:-1], [r[:-1] for r in rows]
        groups.append((title, header, rows))
    return groups


def vouch_line(step: Step) -> str:
    parts = []
    for family, t in sorted(step.vouch.items()):
        if family == "host work":
            parts.append("host-work counts: any change")
        elif finite(t):
            what = cat.FAMILIES[family.split()[0]].what + (" fast/slow" if "ratio" in family
                                                           else "")
            parts.append(f"{what}: under {t:.1%} unseen")
    return "can vouch for (fast path, median over points): " + "; ".join(parts)


def text(step: Step, full: bool = True) -> str:
    """The report of one step."""
    c = step.context
    lines = [_cut(f"{step.base} ({c['base'][:8]}, {c['base_records']} record(s)) -> {step.head} "
                  f"({c['head'][:8]}, {c['head_records']} record(s)) on {c['machine']}: "
                  f"{len({j.point for j in step.judged})} points"),
             _cut(headline(step))]
    if not full:
        return "\n".join(lines)
    head = ["figure", "points", "worse", "better", "median change", "what changed"]
    fast = _family_rows(step, "fast")
    if fast:
        lines += ["fast path (the exit status judges it):", _table(head, fast)]
    slow = _family_rows(step, "slow")
    if slow:
        lines += ["slow paths (reported; --fail-on slow fails on them):", _table(head, slow)]
    ratios = _ratio_rows(step)
    if ratios:
        lines += ["fast/slow ratios (a rise the slow path explains exits 0; --fail-on ratio "
                  "fails on it):",
                  _table(["ratio", "points", "median change", "verdicts", "why"], ratios)]
    for title, header, rows in regression_groups(step):
        lines += [_cut(f"failing: {title}"), _table(header, rows)]
    lines.append(_cut(vouch_line(step)))
    lines += [_cut(f"note: {n}") for n in step.notes]
    return "\n".join(lines)


def markdown(steps: list[Step]) -> str:
    out = ["**mhabench gate**", ""]
    for s in steps:
        out += [f"### {s.base} -> {s.head}", "", headline(s), ""]
        for title, header, rows in regression_groups(s):
            out += [f"**failing: {title}**", "", "| " + " | ".join(header) + " |",
                    "|" + "---|" * len(header)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            out.append("")
        out += [vouch_line(s), ""] + [f"- note: {n}" for n in s.notes]
    return "\n".join(out) + "\n"


def json_doc(steps: list[Step], status: int) -> dict:
    def step_doc(s: Step) -> dict:
        return {"base": s.base, "head": s.head, "context": s.context, "headline": headline(s),
                "failing": [_finding(f) for f in s.failing],
                "findings": [_finding(f) for f in s.findings],
                "vouch": s.vouch, "notes": s.notes,
                "work": {f"{p}/{path}": d for (p, path), d in s.work.items()},
                "judged": [_clean(asdict(j)) for j in s.judged]}
    return {"exit": status, "direction": "every judged figure is lower-is-better: fast/slow "
            "ratios, times, instructions and counts per call", "steps": [step_doc(s)
                                                                       for s in steps]}


def _finding(f: Finding) -> dict:
    return _clean({"section": f.section, "verdict": f.verdict, "fails": f.fails, "why": f.why,
                   "times_us": {k: list(v) for k, v in f.times.items()},
                   **asdict(f.judged)})


def _clean(d):
    if isinstance(d, float):
        return d if math.isfinite(d) else None
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_clean(v) for v in d]
    return d


VERDICTS = (FAST_WORSE, CAUGHT_UP, NO_LONGER_PAYS)
