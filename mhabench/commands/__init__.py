"""The command line: one module per command, each a thin layer over the stages.

``mhabench COMMAND``: ``run`` (measure a grid), ``plot`` and ``breakeven`` (read a run's JSON or
asv's results), ``track`` (record torch builds through asv), ``gate`` (judge two or more
builds), ``confirm`` (re-measure what the gate flagged), ``serve`` (the published report,
offline). Parsing imports nothing heavy. Exit status: 0 fine; 1 what the command means by it (a
point failed; a regression); 2 bad input, one line naming it, nothing written; 3 an I/O or
internal failure, one line saying what to do next.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..measure.config import ConfigError

#: Modules of the commands, in the order ``--help`` lists them.
COMMANDS = ("run", "analyse", "track", "gate", "confirm", "serve")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as the project's: one line naming the bad value, exit 2."""

    def error(self, message: str):
        where = self.prog.removeprefix("mhabench").strip()
        print(f"mhabench: error: {where + ': ' if where else ''}{message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    import importlib
    parser = Parser(
        prog="mhabench", description="Benchmarks of torch.nn.MultiheadAttention's fast path "
        "against its slow path: measure a grid, analyse the results, track torch builds "
        "through asv and judge them.", epilog="mhabench COMMAND --help describes a command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    started = time.perf_counter()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, already said in one line)
        return int(exc.code or 0)
    args.started = started
    try:
        rc = args.func(args)
    except ConfigError as exc:
        print(f"mhabench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader left (``| head``): no traceback; the status a shell gives for SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if getattr(args, "leave", False) and argv is None:
        _leave(rc)
    return rc


def _leave(rc: int) -> None:
    """End the program now that every file is written and closed: the interpreter's teardown
    of torch (a CUDA context, its libraries) takes a second or more and measures nothing."""
    import os
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
