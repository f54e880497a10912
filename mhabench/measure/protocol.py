"""How long and how often a point is measured: a configuration with no torch in it, so that a
supervising parent can build and send one before it imports torch.

Users pick a preset (pyperf's ``--fast`` / ``--rigorous`` model) rather than knobs; the knobs stay
fields of :class:`Protocol` for the measuring scripts in ``bench/``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from .config import ConfigError

#: How a point's wall-time budget is spent (:func:`mhabench.measure.timing.wall_rounds`):
#: ``windows`` times back-to-back calls of one path between two synchronisations, as the
#: reference script does (the seed's wall time). Single synchronised calls (a latency, the
#: rotation protocol before it) measured 1.5-2x the reference's level on a GPU host and judged
#: no better: retired (docs/lab/2026-12-03.md). A window's first call, after a synchronisation
#: and another path's calls, costs about twice a call in the stream (GPU host: +195 µs): with
#: ``lead_in`` one untimed call takes it, and a window of 10 calls read 1.05x the reference's
#: 100-call figure where it read 1.07x, at 30 calls 1.01x where 1.03x (docs/lab/2026-12-03.md).
MODES = ("windows",)


#: At most this share of a sweep's points is timed again (``retime_share``): a try costs what
#: the point's rounds cost (some 55 ms on an H200 lease), and a host slow for most of a sweep
#: would otherwise add a sixth to the run; half would have put the full seed grid over the
#: reference's cost on one lease (docs/lab/2026-12-03.md, round 12). The gate reads such a
#: sweep's level from its calibrations.
RETIME_SHARE = 0.25

#: At most this share of a sweep's wall-pass time, as well as of its points, is spent timing
#: points again on a CPU (``retime_time_share``; :func:`for_device`): there one point's calls
#: can outlast the whole budget many times over, so the share of points no longer bounds the
#: time. On one CPU, ``--grid seed/128`` (10 points) spent 98.7 s of its 355.6 s timing one
#: point again, B256-S256, whose pass of 4.5 s calls cost 38% of the sweep's wall passes; its
#: try read the same figures within the rounds' own spread (fast 4.83 s, then 4.49 s; rounds
#: 4.12-5.69 s). A try is counted at what the point's first wall pass cost, and the sweep's
#: time is estimated from its passes so far. 1 sets no cap: on CUDA every point's rounds fill
#: the same budget, and the share of points bounds the time already.
RETIME_TIME_SHARE = 1.0

#: Points whose rounds are interleaved (``interleave``; on CUDA, :func:`for_device`): round 1
#: of each, then round 2, each round bracketed by its own probe of the host's speed, and a
#: point's rounds whose probes read the slow state left out
#: (:func:`mhabench.measure.passes.wall_passes`). Where the host's slow
#: state is drawn afresh every second or so, a point's rounds back to back (some 50 ms) sit in
#: one state; spread over 8 points they land some 400 ms apart. On one H200 lease, 6 processes
#: of 160 points: 207 points held the slow state back to back, 140 interleaved and kept by
#: their probes; back to back held more in 51 chunks of 8, interleaved in 20 (71 that differed).
#: In ``mhabench run`` on two more leases, the timings kept still read slow at 130 of 1,280
#: points against 325 of 960 back to back, for the same wall-pass time and fewer points timed
#: again (docs/lab/2026-12-03.md, round 14).
INTERLEAVE = 8


@dataclass(frozen=True)
class Protocol:
    """How long and how often to measure. Defaults fit the seed grid within the reference's cost."""

    warmup_ms: float = 5.0      # for all paths together, taken in turn
    min_warmup: int = 2         # calls per path at least
    target_ms: float = 50.0     # measuring time per point, all paths together
    min_rounds: int = 3         # a window of each path per round: few, long windows
    max_rounds: int = 200
    device_calls: int = 4       # profiled calls per path, median taken (0: no device time)
    lead_in: int = 1            # untimed calls of the path just before a window's clock starts
    retime: int = 1             # times a point timed in the host's slow state is timed again
    retime_share: float = RETIME_SHARE  # at most this share of the points timed again
    retime_time_share: float = RETIME_TIME_SHARE  # and of the wall passes' time (1: no cap)
    interleave: int = INTERLEAVE  # points whose rounds are interleaved (1: each back to back)
    host_work: bool = True      # exact host-work counts (aten ops, bytecodes, CUDA calls...)
    mode: str = "windows"       # one of MODES

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"unknown protocol mode {self.mode!r} (choose from {', '.join(MODES)})")
        for name, (low, high) in LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not low <= v <= high or (name in ("warmup_ms", "target_ms") and v <= 0) \
                    or (name not in FRACTIONS and not name.endswith("_ms") and v != int(v)):
                if name.endswith("_ms"):
                    raise ConfigError(f"{name} must be a finite number above 0, at most {high:g}, "
                                      f"got {v}")
                if name in FRACTIONS:
                    raise ConfigError(f"{name} must be a number from {low:g} to {high:g}, got {v}")
                raise ConfigError(f"{name} must be a whole number from {low:g} to {high:g}, "
                                  f"got {v}")
        if self.max_rounds < self.min_rounds:
            raise ConfigError(f"max_rounds {self.max_rounds} is below min_rounds {self.min_rounds}")

    @property
    def window_us(self) -> float:
        """How long one path's window lasts: the budget spread over ``min_rounds`` rounds of a
        window per path. A window must hold many back-to-back calls of a host-bound path (a call
        after a synchronisation starts cold: single calls measured 1.5-2x the reference's level
        on a GPU host), so the budget buys few, long windows rather than many short ones."""
        return self.target_ms * 1000.0 / (self.min_rounds * 3)


#: The knobs that do not set a wall figure's level (how many calls are profiled, whether the
#: host work is counted); every other knob does: how long a window is, how many, how it opens.
NOT_WALL = ("device_calls", "host_work")
#: What a record made before a knob existed was measured with (before round 5, no lead-in; before
#: round 6, no point timed again; before round 14, each point's rounds back to back; before
#: round 18, no cap on the time spent timing points again).
BEFORE_KNOB = {"lead_in": 0, "retime": 0, "retime_share": RETIME_SHARE, "interleave": 1,
               "retime_time_share": 1.0}


def for_device(proto: Protocol, device: str) -> Protocol:
    """The protocol a sweep on ``device`` runs. On a CPU a point's rounds stay back to back
    (``interleave`` 1): the slow state interleaving steps around is the GPU host's (round 14),
    a CPU's rounds are the host's own work, and a chunk of large CPU points holds minutes of
    it, which an interrupted sweep would lose. On a CPU the time spent timing points again is
    capped too (``retime_time_share``, at most :data:`RETIME_SHARE`): its points' costs differ
    a thousandfold. A device not yet resolved ("") leaves it as is."""
    if not device or device.startswith("cuda"):
        return proto
    return replace(proto, interleave=1,
                   retime_time_share=min(proto.retime_time_share, RETIME_SHARE))


def wall_timing(protocol: dict) -> dict:
    """The knobs of a record's ``protocol`` (its meta, as JSON) that set its wall figures'
    level, a knob it predates at the value it was measured with; {} for a record naming none."""
    if not isinstance(protocol, dict):
        return {}
    names = [f.name for f in fields(Protocol) if f.name not in NOT_WALL]
    got = {n: protocol.get(n, BEFORE_KNOB.get(n)) for n in names}
    return {n: v for n, v in got.items() if v is not None}


#: Bounds of each protocol knob: beyond them a sweep would never end (an hour of warm-up per
#: path, millions of rounds) or measure nothing.
LIMITS = {"warmup_ms": (0, 600_000.0), "min_warmup": (1, 100_000), "target_ms": (0, 3_600_000.0),
          "min_rounds": (1, 1_000_000), "max_rounds": (1, 1_000_000), "device_calls": (0, 10_000),
          "lead_in": (0, 1_000), "retime": (0, 100), "retime_share": (0, 1.0),
          "retime_time_share": (0, 1.0), "interleave": (1, 10_000)}
#: The knobs that are shares, not counts.
FRACTIONS = ("retime_share", "retime_time_share")

#: ``check``: plumbing only (two rounds of a millisecond; the figures exist but are not to be
#: read); ``fast``: a first look; ``default``; ``rigorous``: four times the budget, for
#: re-measuring a few flagged points (``mhabench confirm``).
PRESETS = {
    "check": Protocol(warmup_ms=0.5, min_rounds=2, max_rounds=2, target_ms=1.0, device_calls=1),
    "fast": Protocol(warmup_ms=2.0, min_rounds=3, target_ms=20.0, device_calls=2),
    "default": Protocol(),
    "rigorous": Protocol(warmup_ms=20.0, min_rounds=10, max_rounds=600, target_ms=300.0,
                         device_calls=10),
}


def preset(name: str) -> Protocol:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None
