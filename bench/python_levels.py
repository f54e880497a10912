"""The host calibration's level under several Pythons on one host, in fresh interleaved processes.

    python bench/python_levels.py /path/to/python3.10 /path/to/python3.11 ... [--rounds 10]

The calibration (:func:`mhabench.measure.machine.host_calibration`) is a pure-Python loop, so
its level is the interpreter's as much as the host's; the gate compares levels only between
builds that ran one Python (``gate.other_pythons``). Each interpreter runs the calibration's own
source (no mhabench, torch or numpy needed there), ``--rounds`` times, interleaved with the
others. Prints JSON: per interpreter its version and the calibration medians' min, p25 and
median (us), the min being the host's fast state on a host that switches states.
"""
from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mhabench.measure import machine  # noqa: E402

SHIM = """
import math, statistics, sys, time
def median(xs): return statistics.median(xs)
def iqr(xs):
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]
CALIBRATION_REPS, CALIBRATION_LOOP = {reps}, {loop}
"""


def child_code() -> str:
    """The calibration's own source, runnable by any Python 3 with the standard library."""
    src = textwrap.dedent(inspect.getsource(machine.host_calibration))
    src = src.replace(" -> dict:", ":")
    return (SHIM.format(reps=machine.CALIBRATION_REPS, loop=machine.CALIBRATION_LOOP) + src +
            "\nprint(sys.version.split()[0], host_calibration()['median_us'])\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pythons", nargs="+")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    code = child_code()
    seen: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for py in args.pythons:
            out = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True)
            version, us = out.stdout.split()
            seen.setdefault(version, []).append(float(us))
    res = {}
    for version, xs in seen.items():
        q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
        res[version] = {"min_us": min(xs), "p25_us": q[0], "median_us": statistics.median(xs),
                        "processes": len(xs)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
