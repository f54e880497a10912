"""A worker started ahead of its sweep: used when it was told the sweep's spec, stopped when
not, and either way every point is measured. The journal's fsync of a point runs while the
worker builds the next, and that point's timed rounds wait for it."""
from __future__ import annotations

import json
import time
from dataclasses import replace

from mhabench.measure.config import Point
from mhabench.measure.protocol import Protocol
from mhabench.run.supervise import WorkerSpec, spawn_worker, start_worker, supervise

POINTS = [Point(2, 8, 32, 4, b, dtype="float32", device="cpu") for b in (1, 61)]
SPEC = WorkerSpec(Protocol(warmup_ms=0.5, target_ms=2.0, min_rounds=3, device_calls=0),
                  extras=False, threads=1, peak_tflops=1.5)


def _sweep(spec, worker):
    got = []
    supervise(POINTS, spec, lambda text, parsed: got.append(json.loads(text)), worker=worker)
    return got


def test_a_worker_started_ahead_measures_the_sweep_and_the_peak_comes_later():
    early = start_worker(replace(SPEC, peak_tflops=float("nan")))  # peak not known yet
    assert early.suits(SPEC)
    got = _sweep(SPEC, early)
    assert early.proc.poll() == 0, "the early worker ran the sweep to its end"
    assert [g["record"]["status"] for g in got] == ["ok", "ok"]
    assert [g["record"]["peak_tflops"] for g in got] == [1.5, 1.5]


def test_a_worker_told_another_spec_is_stopped_and_a_fresh_one_measures():
    early = start_worker(replace(SPEC, threads=2))
    assert not early.suits(SPEC)
    got = _sweep(SPEC, early)
    assert early.proc.poll() is not None and early.proc.returncode != 0, "stopped, not used"
    assert [g["record"]["status"] for g in got] == ["ok", "ok"]


def test_a_worker_spawned_before_its_spec_takes_the_spec_it_is_told():
    spare = spawn_worker()
    assert spare.spec is None and spare.suits(SPEC)
    assert not spare.suits(replace(SPEC, prefix=("env",))), \
        "a prefix needs a worker started under it"
    got = _sweep(replace(SPEC, threads=2), spare)
    assert spare.proc.poll() == 0 and spare.spec.threads == 2, "the spare ran the sweep"
    assert [g["record"]["status"] for g in got] == ["ok", "ok"]


def test_each_entry_is_synced_once_and_the_next_points_rounds_wait_for_it():
    points = POINTS + [Point(2, 8, 32, 4, 17, dtype="float32", device="cpu")]
    events, cost = [], {}

    def sync():
        time.sleep(0.3)  # a slow disk
        events.append("sync")

    supervise(points, SPEC, lambda text, parsed: events.append(parsed["label"]), cost=cost,
              sync=sync)
    assert events == [e for p in points for e in (p.label, "sync")]
    assert cost["journal_sync"] >= 0.3 * len(points)
    # the worker's rounds of points 2 and 3 waited out most of the sync of the point before
    assert cost["journal_wait"] >= 0.2 * (len(points) - 1), cost
