"""``mhabench run``: sweep a grid, print the table, write CSV / errors JSON / full JSON."""
from __future__ import annotations

import argparse
import contextlib
from dataclasses import replace
import json
import os
import sys
import time

from .measure.config import (GRIDS, SEED_AXES, SMOKE_AXES, ConfigError, canonical_device,
                             canonical_dtype, custom_axes, named_grid, parse_int_list, stride)

AXIS_FLAGS = {"batch_sizes": "--batch-sizes", "seq_lens": "--seq-lens", "embed_dims": "--embed-dims",
              "num_heads": "--heads", "beta_bs": "--betas"}


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="measure fast vs slow MultiheadAttention over a grid",
                       description="Measure the MultiheadAttention fast path against its slow path.")
    g = p.add_argument_group("grid")
    g.add_argument("--grid", default=None,
                   help=f"named grid: {', '.join(GRIDS)} (default: seed on CUDA, smoke on CPU)")
    for dest, flag in AXIS_FLAGS.items():
        g.add_argument(flag, dest=dest, default=None, metavar="N,N,...",
                       help=f"replace the grid's {dest.replace('_', ' ')} (comma-separated)")
    g.add_argument("--stride", type=int, default=1, help="keep every N-th point of the grid")
    g.add_argument("--points", default=None, metavar="LABEL[,LABEL...]",
                   help="only these points, as their labels print (B2-S8-E32-H4-b1-float32-cpu)")
    g.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    g.add_argument("--dtype", default=None, help="fp16, bf16 or fp32 (default: fp16 on CUDA, fp32 on CPU)")
    g.add_argument("--block-size", type=int, default=2)
    g.add_argument("--seed", type=int, default=None, help="default: the reference's 26214")
    t = p.add_argument_group("protocol")
    t.add_argument("--target-ms", type=float, default=None,
                   help="wall-time measuring per point, all paths (default 50)")
    t.add_argument("--min-rounds", type=int, default=None, help="interleaved rounds at least (10)")
    t.add_argument("--max-rounds", type=int, default=None, help="interleaved rounds at most (200)")
    t.add_argument("--warmup-ms", type=float, default=None,
                   help="warm-up time per point, the paths taken in turn (5)")
    t.add_argument("--warmup-per-path", action="store_true",
                   help="warm each path up on its own for --warmup-ms instead")
    t.add_argument("--mode", default=None, choices=("rotation", "blocks", "windows", "long"),
                   help="how the wall-time budget is spent (rotation; docs/protocols.md has "
                        "each mode's A/A figures)")
    t.add_argument("--device-calls", type=int, default=None,
                   help="profiled calls per path for device time (4; 0: skip device time)")
    t.add_argument("--threads", default=None, metavar="N",
                   help="torch intra-op threads (default 1 on a CPU, as torch.utils.benchmark: "
                        "with more, one descheduled thread stalls every call on a busy host; "
                        "CUDA: torch's default)")
    t.add_argument("--pin-cpu", default=None, metavar="CORE[,CORE...]",
                   help="run on these CPU cores only (at least as many as --threads)")
    t.add_argument("--no-extras", action="store_true",
                   help="skip the figures beyond the reference (fp32 drift, peak memory, SDPA "
                        "backend split): the cheapest sweep, and what their cost is measured against")
    t.add_argument("--point-timeout", type=float, default=None, metavar="S",
                   help="seconds a point may run before it is recorded as hung (900)")
    t.add_argument("--no-peak", action="store_true",
                   help="skip the matmul peak calibration (share-of-peak figures left blank)")
    t.add_argument("--recalibrate-peak", action="store_true",
                   help="measure the matmul peak again instead of reading the cached one")
    t.add_argument("--instructions", action="store_true",
                   help="also count host instructions per call and path under callgrind "
                        "(CPU; needs valgrind; one valgrind process for the sweep, ~1 min to "
                        "start plus seconds per point)")
    t.add_argument("--instructions-allow-cuda", action="store_true",
                   help="let --instructions run on a CUDA device (slow: minutes to the first call)")
    o = p.add_argument_group("output")
    o.add_argument("--save-path", "--save_path", default=None, help="CSV of the table")
    o.add_argument("--error-save-path", "--error_save_path", default=None, help="JSON of error counts")
    o.add_argument("--json", default=None, help="JSON with everything, raw rounds included")
    o.add_argument("--breakeven-path", default=None, metavar="PATH",
                   help="CSV of the break-even paddings per shape (default: beside --save-path "
                        "or --json, as NAME_breakeven.csv)")
    o.add_argument("--journal", default=None, metavar="PATH",
                   help="where each finished point is recorded as it finishes (default: beside "
                        "the first output, as NAME.journal.jsonl, else in the cache folder)")
    o.add_argument("--resume", default=None, metavar="JOURNAL",
                   help="measure only the points not in JOURNAL, then write the files from it")
    o.add_argument("--no-table", action="store_true", help="do not print the table")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mhabench", description="Benchmarks of torch.nn.MultiheadAttention's fast path "
        "against its slow path: measure a grid, analyse the results, track torch builds "
        "through asv.", epilog="mhabench COMMAND --help describes a command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    _add_run(sub)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Sub-commands that live in their own modules (imported lazily, torch-free parsing)."""
    from .analysis_cli import register_breakeven, register_plot, register_plot_asv
    from .track.confirm import register_confirm
    from .track.gate import register_gate
    from .report.view_check import register as register_view_check
    from .report.serve import register as register_serve
    from .track.track import register_track
    return [register_plot, register_breakeven, register_plot_asv, register_track, register_gate,
            register_confirm, register_view_check, register_serve]


def resolve_points(args, device: str, dtype: str):
    from .measure.config import SEED
    grid = args.grid or ("seed" if device.startswith("cuda") else "smoke")
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r} (choose from {', '.join(GRIDS)})")
    if args.block_size < 1:
        raise ConfigError(f"--block-size must be positive, got {args.block_size}")
    overrides = {dest: parse_int_list(getattr(args, dest), flag)
                 for dest, flag in AXIS_FLAGS.items() if getattr(args, dest) is not None}
    seed = SEED if args.seed is None else args.seed
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be in [0, 2**32), got {seed}")
    if overrides:
        base = SMOKE_AXES if grid == "smoke" else SEED_AXES
        points = custom_axes(base, overrides).points(dtype, device, args.block_size, seed)
        grid = "custom"
    else:
        points = named_grid(grid, dtype, device)
        if args.block_size != 2 or seed != SEED:
            points = [replace(p, block_size=args.block_size, seed=seed) for p in points]
    if args.stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {args.stride}")
    if args.points is not None:
        from .measure.config import point_of_label
        picked = [point_of_label(t, args.block_size, seed) for t in args.points.split(",") if t.strip()]
        if not picked or any((p.device, p.dtype) != (device, dtype) for p in picked):
            raise ConfigError(f"--points {args.points!r}: give labels of {dtype} on {device}")
        return "points", picked
    return grid, stride(points, args.stride)


def resolve_protocol(args):
    from .measure.protocol import Protocol
    knobs = {k: getattr(args, k) for k in ("min_rounds", "max_rounds", "target_ms", "warmup_ms",
                                           "device_calls", "mode")
             if getattr(args, k) is not None}
    if getattr(args, "warmup_per_path", False):
        knobs["warmup_shared"] = False
    return Protocol(**knobs)


def print_table(results) -> None:
    from .report.run_table import print_table as show
    show(results)


def breakeven_rows(results) -> list[dict]:
    from dataclasses import asdict
    from .figures.breakeven import summary_table
    return summary_table([{"point": asdict(r.point), "metrics": r.metrics()} for r in results])


def print_breakeven(rows) -> None:
    from .analysis_cli import table_text
    from .figures.breakeven import SUMMARY_KEYS
    print("break-even padding per shape (padding fraction at which fast = slow, interpolated "
          "between beta points; '-': no crossing; speedup = slow/fast, higher is better):")
    # a kernel-time column no shape has (a CPU run) is left out
    keys = [k for k in SUMMARY_KEYS if "device" not in k or any(r[k] is not None for r in rows)]
    print(table_text(rows, keys))


def peak_meta(args, device: str, dtype: str) -> dict:
    """Calibrate (or read from the cache) the matmul peak, saying so, unless ``--no-peak``."""
    from .measure import sweep as sw
    if args.no_peak:
        return {"tflops": float("nan"), "skipped": True}
    print(f"peak: matmul peak of {device} in {dtype} (cached after the first run)...", end=" ",
          flush=True)
    with peak_warnings():
        entry = sw.calibrate_peak(device, dtype, force=args.recalibrate_peak)
    how = "cached" if entry.get("cached") else f"measured in {entry['seconds']:.1f} s"
    print(f"failed: {entry['error']}" if "error" in entry else
          f"{entry['tflops']:.4g} TFLOP/s ({how}, {entry['matmul_size']}-cube matmul)", flush=True)
    return entry


@contextlib.contextmanager
def peak_warnings():
    """Print each :class:`mhabench.measure.peak.PeakWarning` as one line on stderr."""
    import warnings
    from .measure.peak import PeakWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PeakWarning)
        yield
    for w in caught:
        if issubclass(w.category, PeakWarning):
            print(f"\nwarning: {w.message}", file=sys.stderr, flush=True)


def recheck_peak(results, meta: dict, device: str, dtype: str) -> None:
    """A rate above the peak proves the peak wrong: measure it again and use the new one."""
    from .measure.peak import recheck
    entry = meta["peak"]
    if entry.get("skipped") or "error" in entry:
        return
    rates = [v for r in results for k, v in r.metrics().items() if k.endswith("_tflops")
             and k != "peak_tflops"]
    with peak_warnings():
        new = recheck(rates, entry, device, dtype)
    if new is not entry:
        meta["peak"] = new
        for r in results:
            r.peak_tflops = new["tflops"]


def cmd_run(args) -> int:
    from .run.supervise import spawn_worker
    spare = spawn_worker()  # imports torch while this process checks and prepares the run
    try:
        return _run_checked(args, spare)
    finally:
        spare.stop()


def _run_checked(args, spare) -> int:
    device = canonical_device(args.device) if args.device else None
    if args.dtype:
        canonical_dtype(args.dtype)
    from .measure import sweep as sw
    device = device or sw.default_device()
    dtype = canonical_dtype(args.dtype or ("float16" if device.startswith("cuda") else "float32"))
    grid, points = resolve_points(args, device, dtype)
    proto = resolve_protocol(args)
    sw.require_device(device)
    from dataclasses import replace as _replace

    from .measure import host_setup
    threads = host_setup.parse_threads(args.threads)
    from .run.run_checks import check_run
    outputs, journal_path, spec = check_run(args, points, proto, device)
    # the parent calibrates the peak with the settings the worker measures with
    applied = host_setup.apply(threads or host_setup.default_threads(device), args.pin_cpu)
    spec = _replace(spec, threads=applied["threads"], pin_cpu=args.pin_cpu)
    counting = args.instructions or args.instructions_allow_cuda
    if counting:
        from .measure import instructions as ins
        ins.check_points(points, args.instructions_allow_cuda)
        ins.valgrind()
    from .run.supervise import start_worker
    # the spare gets its spec now and warms up while this process reads the peak and so on
    worker = spare.tell(spec) if spare.suits(spec) else start_worker(spec)
    try:
        return _run_with(args, device, dtype, grid, points, proto, outputs, journal_path, spec,
                         counting, worker)
    finally:
        worker.stop()


def _run_with(args, device, dtype, grid, points, proto, outputs, journal_path, spec, counting,
              worker) -> int:
    from dataclasses import replace as _replace

    from .measure import host_setup
    from .measure import sweep as sw
    from .measure.results import errors_of
    if counting:
        from .measure import instructions as ins
    meta = sw.run_meta(device, proto, grid)
    if counting:
        from .measure.availability import not_available
        meta["n/a"] = not_available(device, instructions=True)
    host = meta.get("host_setup") or host_setup.host_meta()
    print(f"device: {device} ({sw.device_name(device)}); grid {grid}: {len(points)} points; "
          f"dtype {dtype}; {host['threads']} thread(s) on cores "
          f"{','.join(map(str, host['affinity']))}", flush=True)
    busy = host_setup.busy_warning(host)
    if busy:
        print(busy, file=sys.stderr, flush=True)
    from .measure.availability import lines
    for line in lines(meta["n/a"], meta["how_measured"]):
        print(line, flush=True)
    meta["peak"] = peak_meta(args, device, dtype)
    meta["extras"] = not args.no_extras
    meta["cost_s"] = {}
    meta["outputs"] = vars(outputs)
    counts = {}
    if counting:  # before the sweep, one valgrind process; attached to the rows after it
        print(f"instructions: one valgrind process over {len(points)} points...", flush=True)
        try:
            counts = ins.sweep(points, ins.Plan(allow_cuda=args.instructions_allow_cuda))
        except KeyboardInterrupt:
            print("interrupted while counting instructions: nothing written", file=sys.stderr)
            return 130
        meta["instructions"] = counts[""]
        meta["cost_s"]["instructions"] = counts[""]["seconds"]
    from tqdm import tqdm
    from .run import durable
    from .run.journal import results_of
    spec = _replace(spec, peak_tflops=meta["peak"]["tflops"])
    # what the run spent before its first point: imports, checks, the peak, the metadata
    meta["cost_s"]["startup"] = round(time.perf_counter() - args.started, 4)
    print(f"journal: {journal_path} (mhabench run --resume {journal_path} goes on from it)",
          flush=True)
    bar = tqdm(total=len(points), disable=args.no_progress, unit="pt", file=sys.stderr)
    try:
        out = durable.run(points, spec, meta, dtype, outputs, journal_path,
                          resume=bool(args.resume), on_entry=lambda e: bar.update(1),
                          worker=worker)
    except durable.WorkerFailed as exc:
        bar.close()
        print(f"mhabench: error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    results = results_of(out.entries)
    if out.stopped:
        print(f"interrupted: {len(results)} of {len(points)} points kept "
              f"(resume with --resume {journal_path})", file=sys.stderr)
        return 128 + out.stopped
    if out.skipped:
        print(f"resumed: {out.skipped} points from {journal_path}, {out.measured} measured now")
    changed = False
    if not args.no_peak:
        before = meta["peak"]
        recheck_peak(results, meta, device, dtype)
        changed = meta["peak"] is not before  # every point's share of the peak changes
    if counting:  # counted before the sweep, in one valgrind process: into every row
        for r in results:
            ins.attach(r, counts)
    if changed or counting:
        from .run.journal import entry_text, rebuild
        rebuild([json.loads(entry_text(r)) for r in results], meta, outputs)
    if not args.no_table:
        print_table(results)
        print_breakeven(breakeven_rows(results))
    from .measure.host_setup import noise_warning
    for line in filter(None, [None if busy else host_setup.busy_warning(host_setup.host_meta()),
                              noise_warning([r.metrics()["speedup_rel_iqr"] for r in results])]):
        print(line, file=sys.stderr)
    written = [p for p in (outputs.csv, outputs.breakeven, outputs.errors, outputs.json) if p]
    if written:
        print(f"wrote {', '.join(written)}")
    errors = errors_of(results)
    if errors:
        print(f"errors per shape: {json.dumps(errors)}")
    for r in results:
        if r.status != "ok":
            print(f"{r.point.label}: {r.status}: {r.message}")
    print(f"Total errors: {sum(errors.values())}")
    print(f"{len(results)} points in {meta['seconds']:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in meta['cost_s'].items())}); "
          f"{time.perf_counter() - args.started:.1f} s in all", flush=True)
    return 1 if errors else 0


def leave(rc: int) -> None:
    """End the program now that every file is written and closed: the interpreter's teardown
    of torch (a CUDA context, its libraries) takes a second or more and measures nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def main(argv=None) -> int:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    try:
        if args.command == "run":
            rc = cmd_run(args)
            if argv is None:
                leave(rc)
            return rc
        return args.func(args)
    except ConfigError as exc:
        print(f"mhabench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
