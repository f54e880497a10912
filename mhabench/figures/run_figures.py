"""The gate's figures read from ``mhabench run --json`` results instead of asv's files.

``confirm`` and the GPU gate script measure with ``mhabench run`` (no asv); this table names,
per asv benchmark the gate reads, the metric it tracks and whether it is inverted (a speedup
tracked as fast / slow). A test holds it to ``benchmarks/``' own definitions.
"""
from __future__ import annotations

import math

#: asv benchmark -> (metric key of Result.metrics(), tracked as 1 / metric)
FIGURES = {
    "speedup.FastOverSlow.track_wall": ("speedup", True),
    "speedup.FastOverSlow.track_wall_fair": ("speedup_fair", True),
    "speedup.FastOverSlow.track_device": ("device_speedup", True),
    "speedup.FastOverSlow.track_device_fair": ("device_speedup_fair", True),
    "speedup.Noise.track_wall": ("speedup_rel_iqr", False),
    "speedup.Noise.track_wall_fair": ("speedup_fair_rel_iqr", False),
    "speedup.Noise.track_device": ("device_speedup_rel_iqr", False),
    "speedup.Noise.track_device_fair": ("device_speedup_fair_rel_iqr", False),
    "speedup.Rounds.track_wall": ("wall_rounds", False),
    "speedup.Rounds.track_device": ("device_rounds", False),
    "time_per_call.WallTime.track_fast": ("wall_fast_us", False),
    "time_per_call.WallTime.track_slow": ("wall_slow_us", False),
    "time_per_call.WallTime.track_slow_fair": ("wall_slow_fair_us", False),
    "time_per_call.DeviceTime.track_fast": ("device_fast_us", False),
    "time_per_call.DeviceTime.track_slow": ("device_slow_us", False),
    "time_per_call.DeviceTime.track_slow_fair": ("device_slow_fair_us", False),
    **{f"host.HostWork.track_{p}_aten_ops": (f"host_{p}_aten_ops", False)
       for p in ("fast", "slow", "slow_fair")},
    **{f"host.HostWork.track_fast_{k}": (f"host_fast_{k}", False)
       for k in ("runtime_calls", "launches", "syncs", "memcpy_calls", "copied_bytes")},
}


def short_label(label: str) -> str:
    """``B2-S8-E32-H4-b1-float32-cpu`` -> ``B2-S8-E32-H4-b1`` (the gate's point, asv's params)."""
    return "-".join(label.split("-")[:5])


def value(metrics: dict, benchmark: str) -> float:
    key, invert = FIGURES[benchmark]
    v = metrics.get(key)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return math.nan
    if invert:
        return 1.0 / v if v else math.nan
    return float(v)


def record_values(doc: dict) -> dict[str, dict[str, float | None]]:
    """``{benchmark: {point: value}}`` of one ``mhabench run --json`` document, as asv would
    have recorded it: None where the point failed, NaN where the figure was not measured."""
    out: dict[str, dict] = {name: {} for name in FIGURES}
    for r in doc["results"]:
        point = short_label(str(r["label"]))
        ok = r.get("status") == "ok"
        metrics = r.get("metrics") or {}
        for name in FIGURES:
            out[name][point] = value(metrics, name) if ok else None
    return out


def stack(docs: list[dict]) -> dict[str, dict[str, list]]:
    """The gate's ``point_values`` form of several records: ``{benchmark: {point: [v, ...]}}``."""
    out: dict[str, dict[str, list]] = {}
    for doc in docs:
        for name, row in record_values(doc).items():
            for point, v in row.items():
                out.setdefault(name, {}).setdefault(point, []).append(v)
    return out
