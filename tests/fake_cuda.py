"""A CUDA device faked on a CPU: an allocator whose statistics the paths' calls move, and a
profiler session with no records or with one kernel per labelled call (this machine has no GPU)."""
from __future__ import annotations

import contextlib

import torch

from mhabench.measure import compat, passes
from mhabench.measure.paths import Path


class FakeAllocator:
    """Allocated bytes and a peak, moved by the paths' calls as the caching allocator would."""

    def __init__(self):
        self.allocated, self.peak, self.log = 1000, 5000, []
        self.stats = ("requested_bytes", "allocated_bytes")  # torch < 2.1: allocated only

    def memory_allocated(self, dev):
        self.log.append("allocated")
        return self.allocated

    def reset_peak_memory_stats(self, dev):
        self.log.append("reset")
        self.peak = self.allocated

    def max_memory_allocated(self, dev):
        self.log.append("peak")
        return self.peak

    def memory_stats_as_nested_dict(self, dev):
        """The allocator's statistics as torch keeps them: what the reading takes both from."""
        self.log.append("stats")
        stat = {"all": {"current": self.allocated, "peak": self.peak, "allocated": 0, "freed": 0}}
        return {**{k: stat for k in self.stats}, "num_alloc_retries": 0}

    def path(self, name, transient, kept):
        def call():
            self.log.append(name)
            self.peak = max(self.peak, self.allocated + transient + kept)
            self.allocated += kept  # the output, alive until the caller drops it
            return _Freed(self, kept)
        return Path(name, contextlib.nullcontext, call)


class _Freed:
    def __init__(self, alloc, n):
        self.alloc, self.n = alloc, n

    def __del__(self):
        self.alloc.allocated -= self.n


ALLOCATOR = ("memory_allocated", "reset_peak_memory_stats", "max_memory_allocated",
             "memory_stats_as_nested_dict")


class NoRecorder:
    """Stands in for the profiler session: no records (this machine has no GPU)."""

    def __init__(self, device, ops=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def events(self):
        return []


def install(monkeypatch) -> "FakeAllocator":
    """Fake CUDA's allocator and profiler; forget the backend each head size was served by."""
    fake = FakeAllocator()
    for fn in ALLOCATOR:
        monkeypatch.setattr(torch.cuda, fn, getattr(fake, fn))
    monkeypatch.setattr(compat, "KernelRecorder", NoRecorder)
    monkeypatch.setattr(compat, "raw_profile", lambda events, prefix: compat.Profile([], {}, [], [], {}))
    monkeypatch.setattr(passes, "_SERVED", {})
    return fake


class Session:
    """Fake profiler records: each labelled call launches one kernel, named and timed per label
    as ``kernels`` says (µs), so the backend that served a call can be read back. A label is
    looked up whole (``1|fast``: point 1's fast path in a shared session), else by its path."""

    def __init__(self, monkeypatch, kernels):
        from mhabench.measure import timing
        self.kernels, self.opened, self.sessions = kernels, [], 0
        monkeypatch.setattr(timing, "record_function", self._label)
        monkeypatch.setattr(compat, "raw_profile", self._profile)

    @contextlib.contextmanager
    def _label(self, name):
        self.opened.append(name.split("::", 1)[1])
        yield

    def _profile(self, events, prefix):
        self.sessions += 1
        ranges, launches, kernels = [], {}, []
        for i, label in enumerate(self.opened):
            name, us = self.kernels.get(label) or self.kernels[label.partition("|")[2]]
            ranges.append((10 * i, 10 * i + 5, label))
            launches[i] = 10 * i + 1
            kernels.append((i, 1000 * i, us * 1000, name))
        self.opened = []
        return compat.Profile(ranges, launches, kernels, [], {})
