"""Points timed in the host's slow state, timed again while the host reads its fast state.

A lease's host switches between a fast state and one about 1.7x slower: on some leases for
seconds at a time, sometimes for most of a sweep, on others drawn afresh within a few points
(docs/lab/2026-12-03.md, rounds 6 and 13). A point's rounds take some 60 ms in one stretch, so
an episode takes whole points with it, and no median over rounds can reject it.
Each point's rounds are bracketed by a short probe of the host's speed
(:func:`mhabench.measure.machine.host_probe`). The sweep's fast state is the low tail of its
points' probes, not their median: a sweep that spent most of its time slow has a slow median,
and nothing would read slow against it. A point whose probe read slow against the fast state
is timed again at the first point whose probe reads fast, or when the sweep's wall passes are
done, and the timing whose probe read faster is kept. The probe decides, never the figure, so
the choice cannot bias the figure toward low values.
"""
from __future__ import annotations

import bisect
import math
from typing import Callable, Iterator, Mapping, Sequence

from .protocol import RETIME_SHARE, RETIME_TIME_SHARE
from .results import WALL, Result

#: A point whose probe read this much above the sweep's fast state was timed in the host's
#: slow state (about 1.7x on the H200 leases' hosts).
SLOW_STATE = 1.3
#: The sweep's fast state: this quantile of its points' probes. A tenth of a sweep in the fast
#: state is enough to find it; the probe's own noise in that state is a few percent.
FAST_QUANTILE = 0.1
#: Fewer points than this give no fast state to call a probe slow against.
MIN_POINTS = 8


class _Ranked:
    """The points' probes (the slower of each point's two) kept in order as they come: a sweep
    reads its fast state and its slow points after every point, in time that must not grow
    with the points measured before."""

    def __init__(self):
        self.worst: dict[str, tuple[float, int]] = {}
        self.order: list[tuple[float, int, str]] = []   # (probe, -arrival, label), ascending
        self.arrived = 0

    def set(self, label: str, probe: Sequence[float]) -> None:
        if label in self.worst:
            w, neg = self.worst.pop(label)
            del self.order[bisect.bisect_left(self.order, (w, neg, label))]
        else:
            self.arrived += 1
            neg = -self.arrived  # of two equal probes, the earlier point's ranks slower
        if probe and all(math.isfinite(x) for x in probe):
            self.worst[label] = (max(probe), neg)
            bisect.insort(self.order, (max(probe), neg, label))

    def fast(self) -> float | None:
        """:data:`FAST_QUANTILE` of the probes set, interpolated as numpy's default quantile."""
        n = len(self.order)
        if n < MIN_POINTS:
            return None
        pos = FAST_QUANTILE * (n - 1)
        lo, hi = int(math.floor(pos)), int(math.ceil(pos))
        a, b = self.order[lo][0], self.order[hi][0]
        return a + (b - a) * (pos - lo)

    def slow(self) -> Iterator[str]:
        """The points above :data:`SLOW_STATE` times the fast state, slowest first."""
        fast = self.fast()
        if fast is None:
            return
        for w, _, label in reversed(self.order):
            if w <= SLOW_STATE * fast:
                return
            yield label

    def reads_slow(self, probe: Sequence[float]) -> bool:
        fast = self.fast()
        return fast is None or not probe or max(probe) > SLOW_STATE * fast


def _ranked(probes: Mapping[str, Sequence[float]]) -> _Ranked:
    ranked = _Ranked()
    for label, probe in probes.items():
        ranked.set(label, probe)
    return ranked


def fast_state(probes: Mapping[str, Sequence[float]]) -> float | None:
    """The probe's reading in the host's fast state, from the points' probes (label: the two
    bracketing its rounds, the slower counting; those with none, or not finite, left out):
    :data:`FAST_QUANTILE` of them, or None with fewer than :data:`MIN_POINTS` points."""
    return _ranked(probes).fast()


def read_slow(probes: Mapping[str, Sequence[float]]) -> list[str]:
    """The points (labels, slowest first, ties in the order given) whose probe read above
    :data:`SLOW_STATE` times the sweep's :func:`fast_state`. Of a run's timings kept, the points
    whose wall figures the slow state may still hold: those past the share timed again, or
    whose tries read slow too."""
    return list(_ranked(probes).slow())


class Retimer:
    """A sweep's wall-pass results as they come (:meth:`add`); the points the host's slow state
    took are timed again by ``time_again``, slowest first, while the host reads its fast state:
    after a point whose probe reads it, and at :meth:`finish`. A point gets up to ``times``
    tries, until its probe no longer reads slow; a try whose probe reads slow ends the stretch
    (the host is slow now: tries in it would read slow too). At most ``share`` of the
    sweep's points (``planned``, or those added) are timed again, and, below 1, at most
    ``time_share`` of its wall passes' time: a try counts at what the point's first pass cost
    (``seconds`` to :meth:`add`), the sweep's time at its passes' mean so far times its points,
    so that a point too dear now may still fit at :meth:`finish`. ``measured`` (label: the
    timing kept) holds every result added."""

    def __init__(self, times: int, time_again: Callable[[Result], Result],
                 planned: int | None = None, share: float = RETIME_SHARE,
                 time_share: float = RETIME_TIME_SHARE):
        self.times, self.time_again, self.planned = times, time_again, planned
        self.share, self.time_share = share, time_share
        self.measured: dict[str, Result] = {}
        self.tries: dict[str, int] = {}
        self.cost: dict[str, float] = {}   # label: seconds its first wall pass took
        self.spent = 0.0                   # the tries so far, each at its point's cost
        self.ranked = _Ranked()

    def _keep(self, label: str, result: Result) -> None:
        self.measured[label] = result
        self.ranked.set(label, result.host_probe_us)

    def _affords(self, label: str) -> bool:
        """Whether a try of ``label`` fits within ``time_share`` of the sweep's time."""
        if self.time_share >= 1 or not self.cost:
            return True
        n = len(self.cost)
        whole = sum(self.cost.values()) / n * max(n, self.planned or 0)
        return self.spent + self.cost.get(label, 0.0) <= self.time_share * whole

    def _next(self) -> str | None:
        """The slowest point still due, within the shares of points and time timed again."""
        room = int(self.share * (self.planned if self.planned is not None
                                else len(self.measured)))
        for k in self.ranked.slow():
            if self.tries.get(k, 0) < self.times and (k in self.tries or len(self.tries) < room) \
                    and self._affords(k):
                return k
        return None

    def add(self, label: str, result: Result, seconds: float = 0.0) -> Iterator[Result]:
        """Take ``label``'s wall-pass result (``seconds``: what its pass cost); if its probe
        read the fast state, time the points due again now, yielding each one's timing kept."""
        self.cost.setdefault(label, max(0.0, seconds))
        self._keep(label, result)
        if not self.ranked.reads_slow(result.host_probe_us):
            yield from self._again()

    def finish(self) -> Iterator[Result]:
        """The sweep's wall passes are done: time the points still due again."""
        yield from self._again()

    def _again(self) -> Iterator[Result]:
        while (label := self._next()) is not None:
            kept = self.measured[label]
            while True:
                self.tries[label] = kept.retimed = self.tries.get(label, 0) + 1
                self.spent += self.cost.get(label, 0.0)
                again = self.time_again(kept)
                if again.stage == WALL and again.host_probe_us \
                        and max(again.host_probe_us) < max(kept.host_probe_us):
                    again.retimed, kept = kept.retimed, again
                self._keep(label, kept)
                slow_now = again.stage == WALL and self.ranked.reads_slow(again.host_probe_us)
                if slow_now or not self.ranked.reads_slow(kept.host_probe_us) \
                        or self.tries[label] >= self.times:
                    break
            yield kept
            if slow_now:
                return


class RoundKeeper:
    """Interleaved rounds (``Protocol.interleave``) kept by their own probes: the sweep's fast
    state is the low tail of every round's probes so far (:data:`FAST_QUANTILE`), and a round
    whose probe read above :data:`SLOW_STATE` times it is left out of its point's figures. As
    for the points timed again, the probe decides, never the figure."""

    def __init__(self):
        self.ranked = _Ranked()

    def add(self, label: str, probes: Sequence[Sequence[float]]) -> None:
        """A point's rounds' probes (the two bracketing each round), in round order."""
        for r, probe in enumerate(probes):
            self.ranked.set(f"{label}/{r}", probe)

    def kept(self, probes: Sequence[Sequence[float]]) -> list[int]:
        """The rounds (indices) whose probes read the fast state; every round where none did, or
        where the sweep has too few rounds to know its fast state: a point keeps a figure."""
        fast = self.ranked.fast()
        keep = [r for r, pr in enumerate(probes)
                if fast is not None and pr and max(pr) <= SLOW_STATE * fast]
        return keep or list(range(len(probes)))
