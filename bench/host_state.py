"""What the host's slow state is: per core, per thread, while a sweep runs (a GPU lease's host).

1. ``topology``: each CPU's hyper-thread siblings, and the busiest processes before anything runs;
2. ``scan``: the calibration loop's short probe (:func:`mhabench.measure.machine.host_probe`)
   on each CPU in turn, pinned, ``--sweeps`` times: is a slow state one core's, or every core's?
3. ``ours`` and ``reference``: an ``mhabench run`` and the reference script's ``run()`` over
   ``--grid``, one after the other, each sampled every ``--every`` s: every thread on the host
   that used over 5% of a CPU (its process, name, CPU share, the CPU it last ran on), and how
   many points the sweep had done. Our records' per-point probes then say which stretches were
   slow, and the samples who was running beside the measuring thread then.

    python bench/host_state.py --reference REF.py --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mhabench.measure.machine import host_probe  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def topology() -> dict:
    cpus = sorted(os.sched_getaffinity(0))
    sib = {}
    for c in cpus:
        f = Path(f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list")
        sib[c] = f.read_text().strip() if f.exists() else ""
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,nlwp,comm", "--sort=-pcpu"], capture_output=True,
                        text=True).stdout.splitlines()[:12]
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    return {"cpus": cpus, "siblings": sib, "ps": ps, "loadavg": Path("/proc/loadavg").read_text(),
            "lscpu": [x for x in lscpu if any(k in x for k in ("Model name", "Thread", "Core",
                                                                "Socket", "MHz", "NUMA"))]}


def scan(sweeps: int) -> dict:
    cpus = sorted(os.sched_getaffinity(0))
    rows = []
    try:
        for _ in range(sweeps):
            row = {}
            for c in cpus:
                os.sched_setaffinity(0, {c})
                row[c] = host_probe()
            rows.append(row)
    finally:
        os.sched_setaffinity(0, cpus)
    return {"cpus": cpus, "us": rows}


def threads() -> dict:
    """{(pid, tid): (comm, ticks, processor)} of every thread on the host."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                comm = text[text.index("(") + 1:text.rindex(")")]
                f = text[text.rindex(")") + 2:].split()
                out[(int(pid), int(tid))] = (comm, int(f[11]) + int(f[12]), int(f[36]))
        except (OSError, ValueError, IndexError):
            continue
    return out


def watched(cmd: list[str], journal: Path | None, every: float) -> dict:
    """Run ``cmd``, sampling every thread's CPU use each ``every`` s."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, before, t0 = [], threads(), time.perf_counter()
    while proc.poll() is None:
        time.sleep(every)
        now, t = threads(), time.perf_counter() - t0
        busy = []
        for key, (comm, ticks, cpu) in now.items():
            if key in before:
                share = (ticks - before[key][1]) / TICK / every
                if share > 0.05:
                    busy.append([key[0], key[1], comm, round(share, 2), cpu])
        done = sum(1 for _ in journal.open()) if journal and journal.exists() else None
        samples.append({"t": round(t, 2), "journal_lines": done,
                        "busy": sorted(busy, key=lambda b: -b[3])[:24]})
        before = now
    out, err = proc.communicate()
    return {"rc": proc.returncode, "seconds": time.perf_counter() - t0, "samples": samples,
            "stdout_tail": out[-1500:], "stderr_tail": err[-1500:], "pid": proc.pid}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--grid", default="seed/8")
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--out", default="host-state")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"topology": topology(), "scan": scan(args.sweeps)}
    js = out / "ours.json"
    res["ours"] = watched([sys.executable, "-m", "mhabench", "run", "--grid", args.grid,
                           "--device", "cuda", "-q", "--json", str(js)],
                          js.with_suffix(".journal.jsonl"), args.every)
    code = ("import importlib.util, sys, torch\n"
            "sys.path.insert(0, sys.argv[3])\n"
            "from mhabench.measure.config import parse_grid\n"
            "spec = importlib.util.spec_from_file_location('ref', sys.argv[1])\n"
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
            "for p in parse_grid(sys.argv[2], 'float16', 'cuda').points:\n"
            "    mod.run(1, p.beta_b * 0.05, 100, p.batch_size, p.seq_len, p.embed_dim,\n"
            "            p.num_heads, 'cuda', torch.float16, 2, p.seed)\n")
    res["reference"] = watched([sys.executable, "-c", code, args.reference, args.grid, str(REPO)],
                               None, args.every)
    res["scan_after"] = scan(args.sweeps)
    (out / "host-state.json").write_text(json.dumps(res))
    med = {c: sorted(r[c] for r in res["scan"]["us"])[len(res["scan"]["us"]) // 2]
           for c in res["scan"]["cpus"]}
    print(json.dumps({"siblings": res["topology"]["siblings"], "scan_median_us": med,
                      "ours_s": res["ours"]["seconds"], "ours_rc": res["ours"]["rc"],
                      "reference_s": res["reference"]["seconds"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
