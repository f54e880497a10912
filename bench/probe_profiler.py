"""Cross-check the device-time session against the public profiler, and time both.

    python bench/probe_profiler.py [--stride 40] [--out DIR]

For the seed grid taken with ``--stride``, records the same labelled calls twice: once under the
public ``torch.profiler`` (every host op recorded, one session for all points), read both by
kernel -> launching aten op (the FunctionEvent tree's own link) and by kernel -> runtime call;
and once as a sweep does, with :class:`mhabench.measure.timing.DeviceTimes` (labels only, one session
per point). Prints, per path, the largest relative difference of the per-call device times
against the op-linked reading, each way's cost, and the SDPA backend and kernel names found per
point; writes ``probe.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from torch.autograd import DeviceType  # noqa: E402
from torch.autograd.profiler import record_function  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from mhabench.measure import compat  # noqa: E402
from mhabench.measure.config import named_grid, stride  # noqa: E402
from mhabench.measure.inputs import build  # noqa: E402
from mhabench.measure.paths import backend_paths  # noqa: E402
from mhabench.measure.sweep import active_paths  # noqa: E402
from mhabench.measure.timing import LABEL, DeviceTimes, attribute_device_time  # noqa: E402

CALLS = 2


def paths_of(point):
    paths = active_paths(build(point))
    extra = {}
    for name, path in backend_paths(paths["fast"]).items():
        try:
            path.once()
            extra[name] = path
        except RuntimeError:
            pass
    return {**paths, **extra}


def public_session(points):
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i, p in enumerate(points):
            for name, path in paths_of(p).items():
                path.once()
                with path.context():
                    for _ in range(CALLS):
                        with record_function(f"{LABEL}{i}/{name}"):
                            path.call()
    t1 = time.perf_counter()
    events = list(prof.profiler.kineto_results.events())
    ranges, launches, kernels = compat.raw_profile(events, LABEL)
    per = attribute_device_time(ranges, launches, kernels)
    t2 = time.perf_counter()
    ops = {e.correlation_id(): e.start_ns() for e in events
           if e.device_type() == DeviceType.CPU and e.linked_correlation_id() == 0}
    linked = [(e.linked_correlation_id(), e.start_ns(), e.duration_ns()) for e in events
              if e.device_type() != DeviceType.CPU]
    by_op = attribute_device_time(ranges, ops, linked)
    return per, by_op, {"total_s": t2 - t0, "parse_s": t2 - t1, "records": len(events)}


def our_sessions(points):
    per, names, cost = {}, {}, {"total_s": 0.0, "start": 0.0, "stop": 0.0, "parse": 0.0}
    for i, p in enumerate(points):
        paths = paths_of(p)
        for path in paths.values():
            path.once()
        t0 = time.perf_counter()
        with DeviceTimes("cuda") as dt:
            for name, path in paths.items():
                dt.record(name, path, CALLS)
        cost["total_s"] += time.perf_counter() - t0
        for k, v in dt.overhead_s.items():
            cost[k] += v
        per.update({f"{i}/{k}": v for k, v in dt.per_call.items()})
        names.update({f"{i}/{k}": v for k, v in dt.kernel_names.items()})
    return per, names, cost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stride", type=int, default=40)
    ap.add_argument("--out", default="probe-out")
    args = ap.parse_args()
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    points = stride(named_grid("seed", "fp16", "cuda"), args.stride)
    our_sessions(points[:2])  # warm every lazy initialisation once
    pub, by_op, pub_cost = public_session(points)
    ours, our_names, our_cost = our_sessions(points)

    def worst(other):
        out: dict[str, float] = {}
        for label, v in by_op.items():
            path = label.split("/", 1)[1]
            w = other.get(label)
            d = max((abs(a - b) / a for a, b in zip(sorted(v), sorted(w)) if a),
                    default=0.0) if w else float("inf")
            out[path] = max(out.get(path, 0.0), d)
        return out
    backends = {}
    for i, p in enumerate(points):
        backends[p.label] = {
            "served_by": compat.sdpa_backend_of(our_names.get(f"{i}/fast", ())),
            "kernels": {k.split("/", 1)[1]: sorted(n[:60] for n in v)
                        for k, v in our_names.items() if k.startswith(f"{i}/fast")}}
    report = {"points": len(points), "public": pub_cost, "ours": our_cost,
              "labels_public": len(by_op), "labels_ours": len(ours),
              "max_rel_diff_launch_vs_op_same_session": worst(pub),
              "max_rel_diff_ours_vs_op": worst(ours), "backends": backends}
    print(json.dumps({k: v for k, v in report.items() if k != "backends"}, indent=1))
    served = {}
    for b in backends.values():
        served[b["served_by"]] = served.get(b["served_by"], 0) + 1
    print("served by:", served)
    print(json.dumps(next(iter(backends.values())), indent=1))
    (out / "probe.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
