"""``mhabench confirm BASE HEAD``: re-measure the gate's flagged points, both builds in turn.

A flag from stored records says "this moved more than the runs of those builds did". Confirm
measures only the flagged points again, alternating the two builds' interpreters in fresh
processes (base, head, head, base, ... ``--repeats`` times each: drift of the host hits both
alike), and reports per point and figure the ratio of the medians head / base with an interval,
the smallest and largest ratio over every (head run, base run) pair, and a verdict:

``regressed``       every head run is slower than every base run (lower bound > 1) and the
                    ratio exceeds the family's floor;
``improved``        the mirror image;
``not confirmed``   anything else.

With 3 runs each, "every head run above every base run" happens by chance with probability
1/20 (Mann-Whitney U = 0); the floor keeps small chance orderings from counting. Figures are
the gate's, lower is better (fast time / slow time). ``track`` shares one virtualenv across
builds, so the interpreters are given (``--base-python``/``--head-python``); an ``--existing``
build's interpreter is taken from builds.json.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..measure.config import ConfigError, canonical_device, canonical_dtype
from .gate import FAMILIES, TIMES, Rule, family_of, split_replicate
from ..figures.run_figures import FIGURES, value
from ..measure.stats import median

#: the figures confirm re-measures (the gate's ratios) -> the metrics of the times beside them
RATIOS = {ratio: tuple(FIGURES[t][0] for t in times) for ratio, times in TIMES.items()}


@dataclass(frozen=True)
class Confirmation:
    point: str
    figure: str
    base: list          # fast/slow per base run
    head: list
    ratio: float        # median(head) / median(base)
    low: float          # min over (head run, base run) pairs of head / base
    high: float
    verdict: str        # regressed | improved | not confirmed
    fast_us: list       # [median base, median head] of the fast path's time
    slow_us: list


def decide(base: list, head: list, floor: float) -> tuple[float, float, float, str]:
    """(ratio, low, high, verdict) of one point's runs (pure)."""
    b = [v for v in base if _ok(v)]
    h = [v for v in head if _ok(v)]
    if not b or not h:
        return math.nan, math.nan, math.nan, "not confirmed"
    ratio = median(h) / median(b)
    pairs = [x / y for x in h for y in b]
    low, high = min(pairs), max(pairs)
    if low > 1 and ratio - 1 > floor:
        verdict = "regressed"
    elif high < 1 and 1 - ratio > floor:
        verdict = "improved"
    else:
        verdict = "not confirmed"
    return ratio, low, high, verdict


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def full_label(point: str, dtype: str, device: str) -> str:
    """The gate's ``B2-S8-E32-H4-b1`` -> the sweep's ``B2-S8-E32-H4-b1-float32-cpu``."""
    return point if point.count("-") >= 6 else f"{point}-{dtype}-{device}"


def measure(python: str, labels: list[str], device: str, dtype: str, out: Path,
            extra: list[str]) -> dict[str, dict]:
    """One fresh ``mhabench run`` of ``labels`` with ``python``: ``{label: metrics}``."""
    cmd = [python, "-m", "mhabench", "run", "--points", ",".join(labels), "--device", device,
           "--dtype", dtype, "--no-extras", "--no-peak", "--no-table", "--no-progress",
           "--json", str(out), *extra]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except OSError as exc:
        raise ConfigError(f"{python}: cannot run ({exc.strerror})") from None
    if not out.exists():
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["?"])[-1]
        raise ConfigError(f"{python}: mhabench run wrote no results ({last})")
    doc = json.loads(out.read_text())
    return {r["label"]: (r.get("metrics") or {}) if r.get("status") == "ok" else {}
            for r in doc["results"]}


def confirm(base_python: str, head_python: str, targets: list[tuple[str, str]], device: str,
            dtype: str, repeats: int = 3, rule: Rule = Rule(), extra: list[str] = (),
            log=print) -> list[Confirmation]:
    """Re-measure ``targets`` ([(point, figure)]) ``repeats`` times per build, alternating."""
    labels = sorted({full_label(p, dtype, device) for p, _ in targets})
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory(prefix="mhabench-confirm-") as tmp:
        for i in range(repeats):
            order = ("base", "head") if i % 2 == 0 else ("head", "base")
            for side in order:
                python = base_python if side == "base" else head_python
                log(f"run {i + 1}/{repeats} {side}: {python} ({len(labels)} points)")
                runs[side].append(measure(python, labels, device, dtype,
                                          Path(tmp) / f"{side}-{i}.json", list(extra)))
    out = []
    for point, figure in targets:
        fast, slow = RATIOS[figure]
        lbl = full_label(point, dtype, device)
        vals = {s: [value(r.get(lbl, {}), figure) for r in runs[s]] for s in runs}
        times = {m: [median([r.get(lbl, {}).get(m, math.nan) for r in runs[s]]) for s in runs]
                 for m in (fast, slow)}
        fam = family_of(figure, FAMILIES)
        ratio, low, high, verdict = decide(vals["base"], vals["head"], rule.floor_of(fam))
        out.append(Confirmation(point, figure, vals["base"], vals["head"], ratio, low, high,
                                verdict, times[fast], times[slow]))
    return out


# --- which points, which interpreters -----------------------------------------------------------
def flagged_targets(args) -> list[tuple[str, str]]:
    """The (point, figure) pairs the gate flags (regressed or advisory) that can be re-measured."""
    from .gate import run_gate
    verdicts, _, _ = run_gate(args)
    return [(v.point, v.figure) for v in verdicts
            if v.status in ("regressed", "advisory") and v.figure in RATIOS]


def interpreter(directory: Path, name: str, given: str, flag: str) -> str:
    """``given``, else the interpreter builds.json records for an ``--existing`` build."""
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ConfigError(f"{flag} {given}: no such interpreter")
        return given
    from .track import read_manifest
    build, _ = split_replicate(name)
    for b in read_manifest(directory).get("builds", []):
        if b.kind == "local" and b.python and b.tag in (build, "torch-" + build):
            return b.python
    raise ConfigError(f"{flag} needed: {name!r} is not an --existing build of {directory} "
                      "(track's virtualenv is shared between builds)")


def register_confirm(sub) -> None:
    from .gate import add_build_args, add_output_args, add_rule_args
    p = sub.add_parser("confirm", help="re-measure the gate's flagged points with both builds' "
                                       "interpreters in turn",
                       description=__doc__.split("\n\n")[0])
    add_build_args(p)
    add_rule_args(p)
    p.add_argument("--base-python", default="", metavar="PYTHON",
                   help="interpreter whose torch is BASE (default: an --existing build's)")
    p.add_argument("--head-python", default="", metavar="PYTHON",
                   help="interpreter whose torch is HEAD (default: an --existing build's)")
    p.add_argument("--points", default="", metavar="POINT[,POINT...]",
                   help="re-measure these points (B2-S8-E32-H4-b1) instead of the gate's flags")
    p.add_argument("--figures", default="speedup.FastOverSlow.track_wall,"
                                        "speedup.FastOverSlow.track_wall_fair",
                   help="with --points: the figures to judge (default the two wall ratios)")
    p.add_argument("--repeats", type=int, default=3, help="runs per build, >= 3 (3)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    p.add_argument("--dtype", default="", help="the sweep's default for the device")
    p.add_argument("--target-ms", type=float, default=None,
                   help="wall-time measuring per point (mhabench run's default)")
    add_output_args(p, "confirmations")
    p.set_defaults(func=cmd_confirm)


def cmd_confirm(args) -> int:
    from .gate import rule_of
    rule = rule_of(args)
    device = canonical_device(args.device)
    dtype = canonical_dtype(args.dtype or ("fp16" if device.startswith("cuda") else "fp32"))
    if args.repeats < 3:
        raise ConfigError(f"--repeats must be >= 3, got {args.repeats}")
    directory = Path(args.dir)
    base_py = interpreter(directory, args.base, args.base_python, "--base-python")
    head_py = interpreter(directory, args.head, args.head_python, "--head-python")
    if args.points:
        figures = [f.strip() for f in args.figures.split(",") if f.strip()]
        for f in figures:
            if f not in RATIOS:
                raise ConfigError(f"--figures: {f!r} cannot be re-measured "
                                  f"(choose from {', '.join(RATIOS)})")
        targets = [(p.strip(), f) for p in args.points.split(",") if p.strip() for f in figures]
    else:
        targets = flagged_targets(args)
    if not targets:
        print("nothing to confirm: the gate flags no re-measurable point")
        return 0
    extra = ["--target-ms", str(args.target_ms)] if args.target_ms else []
    found = confirm(base_py, head_py, targets, device, dtype, args.repeats, rule, extra)
    text = table(found)
    print(f"{args.base} -> {args.head}: {len(found)} (point, figure) re-measured, "
          f"{args.repeats} fresh runs per build, alternating; fast/slow, lower is better; "
          "interval: smallest..largest head/base over all run pairs")
    print(text)
    bad = [c for c in found if c.verdict == "regressed"]
    print(f"CONFIRMED REGRESSION: {len(bad)} of {len(found)}" if bad else
          "no regression confirmed")
    if args.json:
        from .gate import _jsonable, _write
        _write(args.json, json.dumps({"base": args.base, "head": args.head,
                                      "repeats": args.repeats,
                                      "confirmations": [_jsonable(asdict(c)) for c in found]},
                                     indent=1) + "\n")
    if args.markdown:
        from .gate import _write
        _write(args.markdown, markdown(found))
    return 1 if bad else 0


HEADER = ["verdict", "point", "figure", "ratio", "interval", "fast us base -> head",
          "slow us base -> head"]


def rows(found: list[Confirmation]) -> list[list[str]]:
    def pair(v):
        return f"{v[0]:.4g} -> {v[1]:.4g}" if all(map(math.isfinite, v)) else "-"
    ranked = sorted(found, key=lambda c: -c.ratio if math.isfinite(c.ratio) else 0)
    return [[c.verdict, c.point, c.figure, f"{c.ratio - 1:+.1%}",
             f"{c.low - 1:+.1%} .. {c.high - 1:+.1%}", pair(c.fast_us), pair(c.slow_us)]
            for c in ranked]


def table(found: list[Confirmation]) -> str:
    from prettytable import PrettyTable
    t = PrettyTable(HEADER)
    t.align = "l"
    for r in rows(found):
        t.add_row(r)
    return t.get_string()


def markdown(found: list[Confirmation]) -> str:
    lines = ["**mhabench confirm** (fast/slow, lower is better)", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(found)]
    return "\n".join(lines) + "\n"

