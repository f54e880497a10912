"""asv's regressions feed between two builds, from ``mhabench run --json`` records: what
``asv publish`` would flag had the records come through ``mhabench track``.

    python bench/feed_aa.py --device cuda --base A0.json A2.json A4.json \\
        --head A1.json A3.json A5.json --out /tmp/feed

The records are written as asv result files of two build commits (record r of each build on
replicate machine ``M`` / ``M-rN``, as ``track --repeats`` files them), under the config
``mhabench track`` generates for the device; ``asv publish`` runs on them, and the entries of
``regressions.json`` are printed by benchmark. Both builds the same (an A/A pair): every entry
is a false flag.
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def result_file(path: Path, machine: str, commit: str, doc: dict, params: list) -> None:
    from mhabench import catalogue as cat
    from mhabench.track.records import short_label
    by_point = {short_label(r["label"]): r for r in doc["results"]}
    combos = list(itertools.product(*params))
    rows = {}
    for f in cat.FIGURES:
        if not f.asv or not f.exists(doc["results"][0]["point"]["device"], "core", False):
            continue
        vals = []
        for c in combos:
            r = by_point.get("-".join(f"{k}{v}" for k, v in zip("BSEHb", c)))
            vals.append(None if r is None or r["status"] != "ok" else f.value(r["metrics"]))
        rows[f.asv] = [[None if v != v else v for v in vals], [[str(x) for x in p] for p in params]]
    out = {"commit_hash": commit, "env_name": "existing-py", "date": 1_700_000_000_000,
           "params": {"machine": machine, "python": "3.12"}, "python": "3.12",
           "requirements": {}, "env_vars": {}, "result_columns": ["result", "params"],
           "results": rows, "durations": {}, "version": 2}
    (path / machine).mkdir(parents=True, exist_ok=True)
    (path / machine / "machine.json").write_text(json.dumps({"machine": machine,
                                                             "version": 1}))
    (path / machine / f"{commit[:8]}-existing-py.json").write_text(json.dumps(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--base", nargs="+", required=True)
    ap.add_argument("--head", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from mhabench.track import track as tr
    from mhabench.track.builds import Build
    out = Path(args.out)
    s = tr.Settings(dir=out, project=REPO, device=args.device, machine="m")
    builds = [Build("2.11.0", date=1_700_000_000), Build("2.11.0", date=1_700_086_400,
                                                         variant="again")]
    commits = tr.prepare(s, builds)
    docs = {b.tag: [json.loads(Path(p).read_text()) for p in files]
            for b, files in zip(builds, (args.base, args.head))}
    first = docs[builds[0].tag][0]["results"]
    params = [sorted({r["point"][k] for r in first}) for k in
              ("batch_size", "seq_len", "embed_dim", "num_heads", "beta_b")]
    for tag, recs in docs.items():
        for r, doc in enumerate(recs, 1):
            result_file(out / "results", "m" if r == 1 else f"m-r{r}", commits[tag], doc, params)
    from mhabench import catalogue as cat
    names = ["batch_size", "seq_len", "embed_dim", "num_heads", "beta_b"]
    bench = {f.asv: {"name": f.asv, "code": "", "param_names": names, "timeout": 300,
                     "params": [[repr(x) for x in p] for p in params], "type": "track",
                     "unit": f.asv_unit, "version": f.version}
             for f in cat.FIGURES if f.asv}
    (out / "results" / "benchmarks.json").write_text(json.dumps({**bench, "version": 2}))
    proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config",
                           str(out / "asv.conf.json")], cwd=out, capture_output=True, text=True)
    if proc.returncode:
        print(proc.stdout[-2000:] + proc.stderr[-2000:])
        return 1
    entries = json.loads((out / "html" / "regressions.json").read_text())["regressions"]
    by: dict[str, int] = {}
    for e in entries:
        name = e[0].partition("(")[0]
        by[name] = by.get(name, 0) + 1
    print(json.dumps({"entries": len(entries), "by_benchmark": by}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
