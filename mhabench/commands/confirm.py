"""``mhabench confirm BASE HEAD``: re-measure the gate's flagged points, both builds in turn
(:mod:`mhabench.track.confirm`). Exit 1 if a regression is confirmed."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..measure.config import ConfigError


def register(sub) -> None:
    from .gate import add_where
    p = sub.add_parser("confirm", help="re-measure the gate's flagged points with both builds' "
                                       "interpreters in turn",
                       description="Re-measure the points the gate flags (or --points), "
                                   "alternating the two builds' interpreters in fresh "
                                   "processes, and say which regressions hold.")
    p.add_argument("base", metavar="BASE")
    p.add_argument("head", metavar="HEAD")
    add_where(p)
    p.add_argument("--points", default="", metavar="POINT[,POINT...]",
                   help="re-measure these points (B2-S8-E32-H4-b1), wall fast/slow and fast "
                        "time, instead of the gate's flags")
    p.add_argument("--repeats", type=int, default=3, help="runs per build, >= 3 (3)")
    p.add_argument("--base-python", default="", metavar="PYTHON",
                   help="interpreter whose torch is BASE (default: track's environment of it)")
    p.add_argument("--head-python", default="", metavar="PYTHON",
                   help="interpreter whose torch is HEAD (default: track's environment of it)")
    p.add_argument("--json", default="", metavar="PATH", help="write the confirmations as JSON")
    p.set_defaults(func=cmd_confirm)


def interpreter(directory: Path, name: str, given: str, flag: str) -> str:
    """``given``, else the interpreter track measured the build with (its own environment, or
    an ``--existing`` build's)."""
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ConfigError(f"{flag} {given}: no such interpreter")
        return given
    from ..track.records import split_replicate
    from ..track.track import build_python
    python = build_python(directory, split_replicate(name)[0])
    if not python:
        raise ConfigError(f"{flag} needed: {name!r} has no environment under {directory}")
    return python


def _device_dtype(directory: Path, args) -> tuple[str, str]:
    """The records' device and dtype (cpu/fp32 where no record file says)."""
    for meta_file in sorted((directory / "records").glob("*/*.json")):
        try:
            doc = json.loads(meta_file.read_text())
            point = doc["results"][0]["point"]
            return point["device"], point["dtype"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
    return "cpu", "float32"


def cmd_confirm(args) -> int:
    from ..measure.fileio import atomic_write, check_output
    from ..track.confirm import HEADER, confirm, measurable, rows
    if args.repeats < 3 or args.repeats > 100:
        raise ConfigError(f"--repeats must be from 3 to 100, got {args.repeats}")
    if args.json:
        check_output(args.json, "--json")
    directory = Path(args.dir)
    base_py = interpreter(directory, args.base, args.base_python, "--base-python")
    head_py = interpreter(directory, args.head, args.head_python, "--head-python")
    if args.points:
        figures = ("speedup.FastOverSlow.track_wall", "time_per_call.WallTime.track_fast")
        targets = [(p.strip(), f) for p in args.points.split(",") if p.strip() for f in figures]
    else:
        from ..track.gate import steps
        (step,) = steps(directory, [args.base, args.head], args.machine, args.env)
        targets = [(f.point, f.figure) for f in step.failing if measurable(f.figure)]
    if not targets:
        print("nothing to confirm: the gate flags no point confirm can re-measure")
        return 0
    device, dtype = _device_dtype(directory, args)
    found = confirm(base_py, head_py, targets, device, dtype, args.repeats)
    from prettytable import PrettyTable
    table = PrettyTable(HEADER)
    table.align = "l"
    table.add_rows(rows(found))
    print(f"{args.base} -> {args.head}: {len(found)} (point, figure) re-measured, {args.repeats} "
          "fresh runs per build, alternating; lower is better")
    print(table.get_string())
    bad = [c for c in found if c.verdict == "regressed"]
    print(f"CONFIRMED REGRESSION: {len(bad)} of {len(found)}" if bad else
          "no regression confirmed")
    if args.json:
        from dataclasses import asdict
        from ..report.gate_report import _clean
        atomic_write(args.json, json.dumps({"base": args.base, "head": args.head,
                                            "repeats": args.repeats,
                                            "confirmations": [_clean(asdict(c)) for c in found]},
                                           indent=1) + "\n")
    return 1 if bad else 0
