"""Points timed in the host's slow state, timed again at the end of the sweep's wall pass.

A lease's host switches between a fast state and one about 1.7x slower for seconds at a time
(docs/lab/2026-12-03.md). A point's rounds take some 60 ms in one stretch, so an episode takes
whole points with it, and no median over rounds can reject it. Each point's rounds are
bracketed by a short probe of the host's speed (:func:`mhabench.measure.machine.host_probe`);
a point whose probe read slow against the sweep's other points is timed again, and the timing
whose probe read faster is kept. The probe decides, never the figure, so the choice cannot
bias the figure toward low values.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Mapping, Sequence

from .results import WALL, Result
from .stats import median

#: A point whose probe read this much above the sweep's median probe was timed in the host's
#: slow state (about 1.7x on the H200 leases' hosts).
SLOW_STATE = 1.3
#: Fewer points than this give no median to call a probe slow against.
MIN_POINTS = 8
#: At most this share of a sweep's points is timed again: a host slow for longer than that is
#: the sweep's level, which the gate reads from the calibrations, not a stretch to step around.
MAX_SHARE = 0.25


def slow_state(probes: Mapping[str, Sequence[float]]) -> list[str]:
    """The points (labels, slowest first) whose probe, the slower of the two bracketing their
    rounds, read above :data:`SLOW_STATE` times the median of all the points', at most
    :data:`MAX_SHARE` of them."""
    worst = {k: max(v) for k, v in probes.items() if v and all(math.isfinite(x) for x in v)}
    if len(worst) < MIN_POINTS:
        return []
    med = median(list(worst.values()))
    slow = sorted((k for k, v in worst.items() if v > SLOW_STATE * med), key=lambda k: -worst[k])
    return slow[:int(MAX_SHARE * len(worst))]


def retime(measured: dict[str, Result], times: int,
           time_again: Callable[[Result], Result]) -> Iterator[Result]:
    """Time each point of ``measured`` (label: its wall-pass result) that :func:`slow_state`
    names again, up to ``times`` times or until its probe no longer reads slow; yields, per
    such point, the timing kept (the one whose probe read fastest) with ``retimed`` set to the
    tries made, and puts it in ``measured``. A try that fails keeps the timing before it."""
    for label in slow_state({k: r.host_probe_us for k, r in measured.items()}) if times else []:
        kept = measured[label]
        for tries in range(1, times + 1):
            again = time_again(kept)
            if again.stage == WALL and again.host_probe_us \
                    and max(again.host_probe_us) < max(kept.host_probe_us):
                kept = again
            kept.retimed = tries
            measured[label] = kept
            if label not in slow_state({k: r.host_probe_us for k, r in measured.items()}):
                break
        yield kept
