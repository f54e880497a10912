"""``mhabench gate BASE HEAD [MORE...]``: did a build make the fast path worse?

Reads the stored records of the builds (no new measurement) and judges each step BASE -> HEAD
(:mod:`mhabench.track.rule`). With more than two builds it tells the story of the history, a
line per step, then reports each step that fails. Exit status: 1 if the fast path got worse at
any step (its own time, instructions or host work; or a fast/slow ratio that rose with nothing
on the slow side to explain it), 0 otherwise; ``--fail-on slow,ratio`` makes the slow paths'
own regressions and the explained ratio rises fail too. 2: bad input (one line naming it).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..measure.config import ConfigError

def add_where(p) -> None:
    p.add_argument("--dir", default=".asv/torch", help="mhabench track's dir (.asv/torch)")
    p.add_argument("--machine", default="", help="asv machine (default: the only one with all)")
    p.add_argument("--env", default="", metavar="ENV_NAME",
                   help="asv environment name, where a commit has results of several")


def register(sub) -> None:
    p = sub.add_parser("gate", help="exit 1 if a build made the fast path worse",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("builds", nargs="+", metavar="BUILD",
                   help="two or more builds, oldest first: tag, version or commit; BUILD@rN: "
                        "one record of it")
    add_where(p)
    p.add_argument("--fail-on", default="", metavar="slow,ratio",
                   help="also fail on the slow paths' own regressions (slow) and on fast/slow "
                        "rises the slow path explains (ratio)")
    p.add_argument("--json", default="", metavar="PATH", help="write the verdicts as JSON")
    p.add_argument("--markdown", default="", metavar="PATH", help="write the report as Markdown")
    p.set_defaults(func=cmd_gate)


def fail_on(text: str) -> tuple:
    from ..track.rule import FAIL_ON
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in items if t not in FAIL_ON]
    if bad:
        raise ConfigError(f"--fail-on: unknown {bad[0]!r} (choose from {', '.join(FAIL_ON)})")
    return items


def check_outputs(args, inputs: Path) -> None:
    """The output files, before any work: writable, distinct, none of them an input."""
    from ..measure.fileio import check_outputs as check
    named = {"--json": args.json or None, "--markdown": args.markdown or None}
    check(named)
    for flag, path in named.items():
        if path and inputs.exists() and Path(path).resolve().is_relative_to(inputs.resolve()) \
                and Path(path).exists():
            raise ConfigError(f"{flag} {path}: would overwrite an input under {inputs}")


def cmd_gate(args) -> int:
    from ..measure.fileio import atomic_write
    from ..report import gate_report as gr
    if len(args.builds) < 2:
        raise ConfigError("give two builds or more (BASE HEAD [MORE...])")
    fails = fail_on(args.fail_on)
    check_outputs(args, Path(args.dir))
    from ..track.gate import steps
    found = steps(Path(args.dir), args.builds, args.machine, args.env, fails=fails)
    status = 1 if any(s.failing for s in found) else 0
    if len(found) > 1:
        print("history, step by step:")
        for s in found:
            print(gr.story_line(s))
        print()
    for s in found:
        if len(found) == 1 or s.failing:
            print(gr.text(s))
    if args.json:
        atomic_write(args.json, json.dumps(gr.json_doc(found, status), indent=1) + "\n")
    if args.markdown:
        atomic_write(args.markdown, gr.markdown(found))
    return status

