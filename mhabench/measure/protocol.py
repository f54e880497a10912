"""How long and how often a point is measured: a configuration with no torch in it, so that a
supervising parent can build and send one before it imports torch."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ConfigError

#: How a point's wall-time budget is spent (see :func:`mhabench.measure.timing.wall_rounds`;
#: docs/protocols.md has the A/A figures each was chosen or dropped on).
MODES = ("rotation", "blocks", "windows", "long")


@dataclass(frozen=True)
class Protocol:
    """How long and how often to measure. Defaults fit the seed grid within the reference's cost."""

    warmup_ms: float = 5.0      # per path (all paths together if ``warmup_shared``)
    min_warmup: int = 2
    target_ms: float = 50.0     # measuring time per point, all paths together
    min_rounds: int = 10        # rotation, blocks, windows
    max_rounds: int = 200
    device_calls: int = 4       # profiled calls per path, median taken (0: no device time)
    host_work: bool = True      # exact host-work counts from the same session (aten ops...)
    mode: str = "rotation"      # one of MODES
    block_calls: int = 5        # blocks: synchronised calls of one path per block
    window_calls: int = 10      # windows: calls between two events, no synchronisation inside
    long_rounds: int = 2        # long: rounds of one long window per path, order alternated
    long_min_calls: int = 20    # long: calls per window at least
    warmup_shared: bool = True  # warm the paths up in turn, ``warmup_ms`` for them all

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"unknown protocol mode {self.mode!r} (choose from {', '.join(MODES)})")
        if not isinstance(self.warmup_shared, bool):
            raise ConfigError(f"warmup_shared must be true or false, got {self.warmup_shared!r}")
        for name in ("block_calls", "window_calls", "long_rounds", "long_min_calls"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, (low, high) in LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not low <= v <= high or (name in ("warmup_ms", "target_ms") and v <= 0):
                above = "above 0, at most" if name.endswith("_ms") else f"from {low:g} to"
                raise ConfigError(f"{name} must be a finite number {above} {high:g}, got {v}")
        if self.max_rounds < self.min_rounds:
            raise ConfigError(f"max_rounds {self.max_rounds} is below min_rounds {self.min_rounds}")


#: Bounds of each protocol knob: beyond them a sweep would never end (an hour of warm-up per
#: path, millions of rounds) or measure nothing.
LIMITS = {"warmup_ms": (0, 600_000.0), "min_warmup": (1, 100_000), "target_ms": (0, 3_600_000.0),
          "min_rounds": (1, 1_000_000), "max_rounds": (1, 1_000_000), "device_calls": (0, 10_000)}
