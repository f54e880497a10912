"""Cross-check the device-time reader against the profiler's own FunctionEvent tree.

    python bench/probe_profiler.py [--out DIR]

For a few points, profiles labelled calls of each path and prints, per path: the kernel time
from mhabench's raw-record reader, the same without removing repeated records, and the sum
over the FunctionEvent tree under each label. Dumps the raw device records of one call.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from torch.autograd import DeviceType  # noqa: E402

from mhabench import compat  # noqa: E402
from mhabench.config import Point  # noqa: E402
from mhabench.inputs import build  # noqa: E402
from mhabench.sweep import active_paths  # noqa: E402
from mhabench.timing import LABEL, DeviceTimes, attribute_device_time  # noqa: E402


def tree_us(events, label):
    out = []
    for e in events:
        if e.name == LABEL + label:
            tot, stack = 0.0, [e]
            while stack:
                x = stack.pop()
                tot += sum(k.duration for k in x.kernels)
                stack.extend(x.cpu_children)
            out.append(tot)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="probe-out")
    args = ap.parse_args()
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    points = [Point(16, 64, 512, 8, 1, device="cuda"), Point(128, 512, 512, 8, 21, device="cuda")]
    report = []
    for p in points:
        paths = active_paths(build(p))
        with DeviceTimes("cuda") as dt:
            for name, path in paths.items():
                path.once()
                dt.record(name, path, 2)
        ranges, ops, kernels = compat.raw_profile(dt._prof, LABEL)
        raw_all = {}
        for lab, v in attribute_device_time(ranges, ops, kernels).items():
            raw_all[lab] = v
        dup = {}
        starts = sorted(ranges)
        for opid, st, dur in kernels:
            t = ops.get(opid)
            for a, b, lab in starts:
                if t is not None and a <= t <= b:
                    dup[lab] = dup.get(lab, 0.0) + dur / 1000.0 / 2
        fe = dt._prof.events()
        row = {"point": p.label}
        for name in paths:
            row[name] = {"reader": raw_all.get(name), "no_dedupe_mean": dup.get(name),
                         "function_events": tree_us(fe, name)}
        report.append(row)
        print(json.dumps(row))
        recs = []
        for e in dt._prof.profiler.kineto_results.events():
            if e.device_type() != DeviceType.CPU:
                recs.append({"name": e.name()[:80], "device_type": str(e.device_type()),
                             "activity": str(getattr(e, "activity_type", lambda: "?")()),
                             "start": e.start_ns(), "dur": e.duration_ns(),
                             "corr": e.correlation_id(), "linked": e.linked_correlation_id()})
        (out / f"device-records-{p.batch_size}.json").write_text(json.dumps(recs[:400], indent=0))
    (out / "probe.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
