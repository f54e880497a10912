"""``mhabench run``: sweep a grid, print the table, write CSV / errors JSON / full JSON."""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import sys
import time

from .config import (GRIDS, SEED_AXES, SMOKE_AXES, ConfigError, canonical_device, canonical_dtype,
                     custom_axes, named_grid, parse_int_list, stride)

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
    g.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    g.add_argument("--dtype", default=None, help="fp16, bf16 or fp32 (default: fp16 on CUDA, fp32 on CPU)")
    g.add_argument("--block-size", type=int, default=2)
    g.add_argument("--seed", type=int, default=None, help="default: the reference's 26214")
    t = p.add_argument_group("protocol")
    t.add_argument("--target-ms", type=float, default=None,
                   help="wall-time measuring per point, all paths (default 50)")
    t.add_argument("--min-rounds", type=int, default=None, help="interleaved rounds at least (15)")
    t.add_argument("--max-rounds", type=int, default=None, help="interleaved rounds at most (200)")
    t.add_argument("--warmup-ms", type=float, default=None, help="warm-up time per path and point (5)")
    t.add_argument("--device-calls", type=int, default=None,
                   help="profiled calls per path for device time (4; 0: skip device time)")
    t.add_argument("--pin-cpu", type=int, default=None, metavar="CORE",
                   help="run on this CPU core only (steadier host timings on a busy machine)")
    t.add_argument("--no-extras", action="store_true",
                   help="skip the figures beyond the reference (fp32 drift, peak memory, SDPA "
                        "backend split): the cheapest sweep, and what their cost is measured against")
    t.add_argument("--no-peak", action="store_true",
                   help="skip the matmul peak calibration (share-of-peak figures left blank)")
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
    o.add_argument("--no-table", action="store_true", help="do not print the table")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mhabench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Sub-commands that live in their own modules (imported lazily, torch-free parsing)."""
    from .analysis_cli import register_breakeven, register_plot, register_plot_asv
    from .gate import register_gate
    from .report_view import register as register_view_check
    from .track import register_track
    return [register_plot, register_breakeven, register_plot_asv, register_track, register_gate,
            register_view_check]


def resolve_points(args, device: str, dtype: str):
    from .config import SEED
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
    return grid, stride(points, args.stride)


def resolve_protocol(args):
    from .timing import Protocol
    knobs = {k: getattr(args, k) for k in ("min_rounds", "max_rounds", "target_ms", "warmup_ms",
                                           "device_calls")
             if getattr(args, k) is not None}
    return Protocol(**knobs)


SHOWN = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim"]


def print_table(results) -> None:
    from prettytable import PrettyTable
    from .results import COLUMNS, row
    shown = COLUMNS[:9] + ["speedup_fair", "device_speedup", "host_share_fast", "max_abs_err",
                           "max_abs_err_fp32", "wall_fast_tflops", "wall_fast_peak_fraction",
                           "device_fast_peak_fraction", "peak_mem_fast_bytes",
                           "fast_path", "beta_b", "status"]
    idx = [COLUMNS.index(c) for c in shown]
    table = PrettyTable(shown)
    for r in results:
        cells = row(r)
        table.add_row([cells[i] for i in idx])
    print(table)


def breakeven_path(args):
    """``--breakeven-path``, else NAME_breakeven.csv beside the CSV or the JSON, else None."""
    from pathlib import Path
    if args.breakeven_path:
        return args.breakeven_path
    base = args.save_path or args.json
    return None if not base else str(Path(base).with_name(Path(base).stem + "_breakeven.csv"))


def breakeven_rows(results) -> list[dict]:
    from dataclasses import asdict
    from .breakeven import summary_table
    return summary_table([{"point": asdict(r.point), "metrics": r.metrics()} for r in results])


def print_breakeven(rows) -> None:
    from .analysis_cli import table_text
    from .breakeven import SUMMARY_KEYS
    print("break-even padding per shape (padding fraction at which fast = slow, interpolated "
          "between beta points; '-': no crossing or not measured):")
    print(table_text(rows, SUMMARY_KEYS))


def peak_meta(args, device: str, dtype: str) -> dict:
    """Calibrate (or read from the cache) the matmul peak, saying so, unless ``--no-peak``."""
    from . import sweep as sw
    if args.no_peak:
        return {"tflops": float("nan"), "skipped": True}
    print(f"peak: matmul peak of {device} in {dtype} (cached after the first run)...", end=" ",
          flush=True)
    entry = sw.calibrate_peak(device, dtype)
    how = "cached" if entry.get("cached") else f"measured in {entry['seconds']:.1f} s"
    print(f"failed: {entry['error']}" if "error" in entry else
          f"{entry['tflops']:.4g} TFLOP/s ({how}, {entry['matmul_size']}-cube matmul)", flush=True)
    return entry


def cmd_run(args) -> int:
    device = canonical_device(args.device) if args.device else None
    if args.dtype:
        canonical_dtype(args.dtype)
    from . import sweep as sw
    from .results import ResultFiles, errors_of
    device = device or sw.default_device()
    dtype = canonical_dtype(args.dtype or ("float16" if device.startswith("cuda") else "float32"))
    grid, points = resolve_points(args, device, dtype)
    proto = resolve_protocol(args)
    sw.require_device(device)
    counting = args.instructions or args.instructions_allow_cuda
    if counting:
        from . import instructions as ins
        ins.check_points(points, args.instructions_allow_cuda)
        ins.valgrind()
    if args.pin_cpu is not None:
        sw.pin_cpu(args.pin_cpu)
    print(f"device: {device} ({sw.device_name(device)}); grid {grid}: {len(points)} points; dtype {dtype}",
          flush=True)
    meta = sw.run_meta(device, proto, grid)
    meta["peak"] = peak_meta(args, device, dtype)
    meta["extras"] = not args.no_extras
    meta["cost_s"] = {}
    counts = {}
    if counting:  # first, so that each point's row is complete when the sweep writes it
        print(f"instructions: one valgrind process over {len(points)} points...", flush=True)
        try:
            counts = ins.sweep(points, ins.Plan(allow_cuda=args.instructions_allow_cuda))
        except KeyboardInterrupt:
            print("interrupted while counting instructions: nothing written", file=sys.stderr)
            return 130
        meta["instructions"] = counts[""]
        meta["cost_s"]["instructions"] = counts[""]["seconds"]
    from tqdm import tqdm
    bar = tqdm(total=len(points), disable=args.no_progress, unit="pt", file=sys.stderr)
    t0 = time.perf_counter()
    done = []

    be_path = breakeven_path(args)

    files = ResultFiles(args.save_path, args.error_save_path, args.json)

    def save(results):
        files.write(results, meta)
        if be_path:
            from .analysis_cli import csv_text
            from .breakeven import SUMMARY_KEYS
            from .results import atomic_write
            atomic_write(be_path, csv_text(breakeven_rows(results), SUMMARY_KEYS))

    def on_point(r):
        # files are rewritten once per chunk of points, at the end and on interruption:
        # rewriting them after every point made writing quadratic in the grid (24 s of a
        # seed-grid run)
        if counting:
            ins.attach(r, counts)
        done.append(r)
        bar.update(1)

    try:
        results = sw.sweep(points, proto, on_point=on_point, on_chunk=save, cost=meta["cost_s"],
                           peak_tflops=meta["peak"]["tflops"], extras=meta["extras"])
    except KeyboardInterrupt:
        bar.close()
        save(done)
        print(f"interrupted: {len(done)} of {len(points)} points kept", file=sys.stderr)
        return 130
    bar.close()
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    save(results)
    if not args.no_table:
        print_table(results)
        print_breakeven(breakeven_rows(results))
    errors = errors_of(results)
    print(json.dumps(errors, indent=1))
    for r in results:
        if r.status != "ok":
            print(f"{r.point.label}: {r.status}: {r.message}")
    print(f"Total errors: {sum(errors.values())}")
    print(f"{len(results)} points in {meta['seconds']:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in meta['cost_s'].items())})")
    return 1 if errors else 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        return args.func(args)
    except ConfigError as exc:
        print(f"mhabench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
