"""``mhabench run``: measure a grid, print the table, write CSV / errors JSON / full JSON."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..measure.config import GRID_SYNTAX, ConfigError, parse_grid
from ..measure.protocol import PRESETS
from ..run.spec import POINT_TIMEOUT, RunSpec


def register(sub) -> None:
    p = sub.add_parser("run", help="measure fast vs slow MultiheadAttention over a grid",
                       description="Measure the MultiheadAttention fast path against its slow "
                                   "path at every point of a grid.")
    g = p.add_argument_group("what")
    g.add_argument("--grid", default="", metavar="GRID",
                   help=f"{GRID_SYNTAX}; default seed on CUDA, smoke on a CPU")
    g.add_argument("--points", default="", metavar="LABEL[,LABEL...]",
                   help="only these points, as labels print (B2-S8-E32-H4-b1-float32-cpu)")
    g.add_argument("--device", default="", help="cpu, cuda or cuda:N (default: cuda if present)")
    g.add_argument("--dtype", default="", help="fp16, bf16 or fp32 (default fp16 on CUDA, "
                                               "fp32 on a CPU)")
    m = p.add_argument_group("how")
    m.add_argument("--preset", default="default", choices=tuple(PRESETS),
                   help="how long each point is measured: check (plumbing only), fast, default, "
                        "rigorous (4x the budget)")
    m.add_argument("--threads", default=None, metavar="N",
                   help="torch threads (default 1 on a CPU, as torch.utils.benchmark; CUDA: "
                        "torch's own)")
    m.add_argument("--no-extras", action="store_true",
                   help="skip fp32 drift, peak memory, SDPA backend split and matmul peak")
    m.add_argument("--instructions", action="store_true",
                   help="also count host instructions per call under callgrind (CPU; valgrind)")
    m.add_argument("--point-timeout", type=float, default=POINT_TIMEOUT, metavar="S",
                   help=f"seconds a point may run before it is recorded as hung "
                        f"({POINT_TIMEOUT:g})")
    o = p.add_argument_group("output")
    o.add_argument("--save-path", "--save_path", default=None, help="CSV of the table")
    o.add_argument("--error-save-path", "--error_save_path", default=None,
                   help="JSON of error counts per shape")
    o.add_argument("--json", default=None, help="JSON with everything, raw rounds included")
    o.add_argument("--resume", default=None, metavar="JOURNAL",
                   help="measure only what JOURNAL lacks, then write the files from it")
    o.add_argument("--retry-failed", action="store_true",
                   help="with --resume: measure the points that failed again too")
    o.add_argument("-q", "--quiet", action="store_true", help="no table and no progress bar")
    p.set_defaults(func=cmd_run, leave=True)


def spec_of(args) -> RunSpec:
    """The flags as a RunSpec; ConfigError on a bad value, before anything starts."""
    points = tuple(t.strip() for t in args.points.split(",") if t.strip())
    if args.points and not points:
        raise ConfigError("--points is empty")
    spec = RunSpec(grid=args.grid, points=points, device=args.device, dtype=args.dtype,
                   preset=args.preset, threads=args.threads, extras=not args.no_extras,
                   instructions=args.instructions, point_timeout=args.point_timeout)
    # the grid's syntax, without torch (the device decides only the labels)
    parse_grid(spec.grid, spec.dtype or "float32", spec.device or "cpu")
    if spec.instructions:
        if spec.device.startswith("cuda"):
            raise ConfigError("--instructions counts on a CPU only (a CUDA torch under callgrind "
                              "takes minutes to its first call); on a GPU the bytecode counts "
                              "are the exact host figure")
        from ..measure.instructions import valgrind
        valgrind()
    if args.retry_failed and not args.resume:
        raise ConfigError("--retry-failed goes with --resume JOURNAL")
    return spec


def outputs_of(args):
    """(outputs, journal path or None): checked to be writable, distinct, and none of them the
    journal being resumed."""
    from ..measure.fileio import check_outputs
    from ..run.execute import check_journal, default_journal
    from ..run.journal import Outputs, read
    outputs = Outputs.beside(args.save_path, args.error_save_path, args.json)
    if args.resume and not any((args.save_path, args.error_save_path, args.json)):
        if not os.path.isfile(args.resume):
            raise ConfigError(f"--resume {args.resume}: no such journal")
        saved = dict((read(args.resume)[0].get("meta") or {}).get("outputs") or {})
        outputs = Outputs(**{k: saved.get(k) for k in ("csv", "errors", "json", "breakeven")})
    check_outputs(outputs.named())
    journal = args.resume or default_journal(outputs)
    if journal:
        check_journal(journal, outputs, bool(args.resume))
    return outputs, journal


def cmd_run(args) -> int:
    spec = spec_of(args)
    outputs, journal = outputs_of(args)
    from ..run.supervise import spawn_worker
    spare = spawn_worker()  # imports torch while this process prepares the run
    try:
        return _run(args, spec, outputs, journal, spare)
    finally:
        spare.stop()


def _run(args, spec: RunSpec, outputs, journal, spare) -> int:
    from ..measure import footprint
    from ..measure.machine import default_device, require_device
    from ..run.execute import EXIT_IO, check_resume, execute
    from ..run.supervise import WorkerFailed
    device = spec.device or default_device()
    run = spec.resolve(device.startswith("cuda"))
    require_device(run.spec.device)
    footprint.check(list(run.points), run.spec.device)
    if args.resume:
        check_resume(args.resume, run)
    own = None
    if journal is None:  # no output named: a journal of its own, removed if all goes well
        own = Path(tempfile.mkdtemp(prefix="mhabench-run-"))
        journal = own / "run.journal.jsonl"
    printer = Printer(args.quiet)
    try:
        out = execute(run, outputs, journal, resume=bool(args.resume),
                      retry_failed=args.retry_failed, reporter=printer, worker=spare,
                      extra_meta={"outputs": {k: getattr(outputs, k) for k in
                                              ("csv", "errors", "json", "breakeven")}})
    except WorkerFailed as exc:
        print(f"mhabench: error: {exc}", file=sys.stderr)
        return EXIT_IO
    finally:
        printer.close()
    resume = f"mhabench run --resume {out.journal}"
    if out.failure:
        print(f"mhabench: error: {out.failure}; the journal keeps {len(out.results)} points: "
              f"{resume} finishes the job", file=sys.stderr)
        return EXIT_IO
    if out.stopped:
        print(f"interrupted: {len(out.results)} of {len(run.points)} points kept "
              f"({resume} goes on)", file=sys.stderr)
        return 128 + out.stopped
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
    return summary(args, run, out)


def summary(args, run, out) -> int:
    from ..figures.breakeven import SUMMARY_KEYS, summary_table
    from ..measure.host_setup import noise_warning
    from ..measure.results import errors_of
    from ..report import run_table
    results = out.results
    if out.skipped:
        print(f"resumed: {out.skipped} points from {out.journal}, {out.measured} passes "
              f"measured now")
    if not args.quiet:
        print(run_table.table_text(results))
        print(run_table.footer())
        rows = summary_table([{"point": r.doc()["point"], "metrics": r.doc()["metrics"]}
                              for r in results])
        keys = [k for k in SUMMARY_KEYS if "device" not in k or any(r[k] is not None
                                                                     for r in rows)]
        print("break-even padding per shape (padding at which fast = slow; '-': no crossing):")
        print(breakeven_text(rows, keys))
    noisy = noise_warning([r.metrics()["speedup_rel_iqr"] for r in results])
    if noisy:
        print(noisy, file=sys.stderr)
    if out.written:
        print(run_table.wrapped(f"wrote {', '.join(out.written)}"))
    errors = errors_of(results)
    if errors:
        print(run_table.wrapped(f"errors per shape: {json.dumps(errors)}"))
    for r in results:
        if r.status != "ok":
            print(run_table.wrapped(f"{r.point.label}: {r.status}: {r.message}"))
    print(f"Total errors: {sum(errors.values())}")
    for line in retime_lines(results):
        print(run_table.wrapped(line))
    print(run_table.cost_line(out.meta.get("cost_s", {}), len(results),
                              out.meta.get("seconds", 0.0), time.perf_counter() - args.started))
    return 1 if errors else 0


def breakeven_text(rows, keys) -> str:
    from .analyse import table_text
    return table_text(rows, keys)


class Printer:
    """``mhabench run``'s reporter: the run's header lines, a progress bar over the passes."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.walls = quiet, None, set()

    def note(self, text: str) -> None:
        """A line for the user; with the bar drawn, written through it, so that the line starts
        on its own and the bar is drawn again below it."""
        from ..report.run_table import wrapped
        out = sys.stderr if text.startswith("warning") else sys.stdout
        if self.bar is not None:
            self.bar.write(wrapped(text), file=out)
            out.flush()
        else:
            print(wrapped(text), file=out, flush=True)

    def started(self, meta: dict, run, journal, passes: int) -> None:
        from ..measure.host_setup import busy_warning
        from ..report.run_table import na_lines, wrapped
        host = meta.get("host_setup") or {}
        s = run.spec
        print(wrapped(f"device: {s.device} ({meta.get('device_name')}); grid {run.grid.spec}: "
                      f"{len(run.points)} points; {s.dtype}; {host.get('threads')} thread(s); "
                      f"torch {meta.get('torch')} ({meta.get('variant')}); preset {s.preset}"),
              flush=True)
        busy = busy_warning(host)
        if busy:
            print(busy, file=sys.stderr)
        for line in na_lines(meta.get("n/a") or {}) + [f"note: {h}" for h in
                                                        meta.get("how_measured", [])]:
            print(line)
        print(wrapped(f"journal: {journal} (mhabench run --resume {journal} goes on from it)"),
              flush=True)
        if not self.quiet and passes:
            from tqdm import tqdm
            self.bar = tqdm(total=passes, unit="pass", file=sys.stderr, leave=False)

    def advanced(self, label: str, stage: str) -> None:
        if self.bar is None or stage not in ("wall", "done"):
            return
        if stage == "wall":
            self.walls.add(label)
        elif stage == "done" and label not in self.walls and self.bar.total:
            self.bar.total -= 1  # a point that failed in its wall pass has no counts pass
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


#: Points named at most in the line on timings that kept the host's slow state.
NAMED = 5


def retime_lines(results: list) -> list[str]:
    """What timing again did, and the points whose timing kept still read the host's slow
    state (past the share timed again, or every try slow too): their wall figures may read
    high, and a user should know which."""
    from ..measure.retime import read_slow
    out = []
    left = [r.rounds_left_out for r in results if r.timed and r.rounds_left_out]
    if left:
        out.append(f"{sum(left)} round(s) at {len(left)} point(s) left out: the host probe read "
                   f"its slow state around them")
    retimed = sum(1 for r in results if r.retimed)
    if retimed:
        out.append(f"{retimed} point(s) timed again: the host probe read its slow state around "
                   f"their rounds")
    still = read_slow({r.point.label: r.host_probe_us for r in results if r.timed})
    if still:
        names = ", ".join(still[:NAMED]) + (f" and {len(still) - NAMED} more"
                                            if len(still) > NAMED else "")
        out.append(f"{len(still)} point(s) kept a timing whose host probe read the slow state; "
                   f"their wall figures may read high: {names}")
    return out
