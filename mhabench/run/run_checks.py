"""Everything ``mhabench run`` can refuse before it measures anything (one line, exit 2)."""
from __future__ import annotations

import math
import os

from ..measure.config import ConfigError


def point_timeout(value: float | None) -> float:
    from .supervise import POINT_TIMEOUT
    if value is None:
        return POINT_TIMEOUT
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--point-timeout must be a finite number of seconds > 0, got {value}")
    return value


def resumed_outputs(path) -> dict:
    """The outputs a journal's run wrote (what ``--resume`` writes when given none)."""
    from .journal import read
    head, _, _ = read(path)
    return dict((head.get("meta") or {}).get("outputs") or {})


def check_run(args, points, proto, device: str):
    """(outputs, journal path, worker spec) of a ``run`` call, or ConfigError."""
    from dataclasses import fields

    from . import durable
    from ..measure import footprint
    from ..measure.fileio import check_outputs
    from .journal import Outputs
    from .supervise import WorkerSpec
    outputs = Outputs(args.save_path, args.error_save_path, args.json, breakeven_path(args))
    if args.resume and not any((args.save_path, args.error_save_path, args.json)):
        if not os.path.isfile(args.resume):
            raise ConfigError(f"--resume {args.resume}: no such journal")
        saved = resumed_outputs(args.resume)
        outputs = Outputs(**{f.name: saved.get(f.name) for f in fields(Outputs)})
    check_outputs(outputs.named())
    journal_path = args.resume or args.journal or str(durable.default_journal(outputs))
    durable.check_journal(journal_path, outputs, bool(args.resume))
    if args.resume:
        from dataclasses import asdict
        from .journal import check_fingerprint, fingerprint
        check_fingerprint(args.resume, fingerprint(points, asdict(proto), points[0].dtype,
                                                   not args.no_extras))
    footprint.check(points, device)
    spec = WorkerSpec(proto, extras=not args.no_extras, pin_cpu=args.pin_cpu,
                      threads=getattr(args, "threads", None),
                      point_timeout=point_timeout(args.point_timeout))
    return outputs, journal_path, spec


def breakeven_path(args):
    """``--breakeven-path``, else NAME_breakeven.csv beside the CSV or the JSON, else None."""
    from pathlib import Path
    if args.breakeven_path:
        return args.breakeven_path
    base = args.save_path or args.json
    return None if not base else str(Path(base).with_name(Path(base).stem + "_breakeven.csv"))
