"""The gate on real history: records of five torch releases (CPU, smoke grid, three records
each, with instruction counts; ``tests/data/history``, kept by ``bench/history_data.py`` from
``mhabench track 2.1.2 2.3.1 2.9.1 2.13.0 2.15.0 --repeats 3 --instructions``), and builds
planted on top of the real 2.15.0 records: its asv results and record files copied under a
commit of their own, with one figure changed by a known amount."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gate import run_gate  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "history"
RELEASES = ["2.1.2", "2.3.1", "2.9.1", "2.13.0", "2.15.0"]

pytestmark = pytest.mark.skipif(not (DATA / "builds.json").is_file(),
                                reason="tests/data/history not kept")


@pytest.fixture
def history(tmp_path) -> Path:
    d = tmp_path / "history"
    shutil.copytree(DATA, d)
    return d


def _manifest(d: Path) -> dict:
    return json.loads((d / "builds.json").read_text())


def plant(d: Path, name: str, values=None, ops=None, source: str = "2.15.0") -> str:
    """A build ``source-name``: ``source``'s records under a commit of its own, with
    ``values(benchmark, value) -> value`` applied to its asv results and ``ops(path, ops) ->
    ops`` to its record files' op maps. Returns the build's name for the gate."""
    manifest = _manifest(d)
    old = manifest["commits"][f"torch-{source}"]
    new = hashlib.sha1(f"{source}-{name}".encode()).hexdigest()
    for p in list((d / "results").rglob(f"{old[:8]}-*.json")):
        doc = json.loads(p.read_text())
        doc["commit_hash"] = new
        if values:
            for bench, row in doc["results"].items():
                row[0] = [v if v is None else values(bench, v) for v in row[0]]
        p.with_name(p.name.replace(old[:8], new[:8])).write_text(json.dumps(doc))
    for p in list((d / "records").rglob(f"{old}-*.json")):
        doc = json.loads(p.read_text())
        if ops:
            for r in doc["results"]:
                for path, work in (r.get("host_work") or {}).items():
                    work["ops"] = ops(path, dict(work.get("ops") or {}))
        p.with_name(p.name.replace(old, new)).write_text(json.dumps(doc))
    shutil.copy(d / "installed" / f"{old}.json", d / "installed" / f"{new}.json")
    build = next(b for b in manifest["builds"] if b["version"] == source)
    manifest["builds"].append({**build, "variant": name})
    manifest["commits"][f"torch-{source}-{name}"] = new
    (d / "builds.json").write_text(json.dumps(manifest))
    return new[:12]


def gate(d: Path, *builds: str, extra=()) -> tuple[int, str, dict]:
    out = d.parent / "gate.json"
    out.unlink(missing_ok=True)
    rc, text = run_gate(["gate", *builds, "--dir", str(d), "--json", str(out), *extra])
    return rc, text, json.loads(out.read_text()) if out.exists() else {}


def points_failing(doc: dict, step: int = 0) -> set[str]:
    return {f["point"] for f in doc["steps"][step]["failing"]}


FAST = "time_per_call.WallTime.track_fast"
SLOWS = ("time_per_call.WallTime.track_slow", "time_per_call.WallTime.track_slow_fair")
RATIOS = ("speedup.FastOverSlow.track_wall", "speedup.FastOverSlow.track_wall_fair")
FAST_OPS = "host.HostWork.track_fast_aten_ops"


# --- the five releases --------------------------------------------------------------------------
def test_the_history_tells_each_step_in_a_line_and_fails_only_the_fast_paths_extra_work(history):
    rc, text, doc = gate(history, *RELEASES)
    lines = text.splitlines()
    assert lines[0] == "history, step by step:"
    story = lines[1:5]
    assert [line.split(":")[0] for line in story] == [
        f"{a} -> {b}" for a, b in zip(RELEASES, RELEASES[1:])]
    assert rc == 1 and [bool(s["failing"]) for s in doc["steps"]] == [True, False, False, False]
    # 2.1.2 -> 2.3.1: the fast path's own host instructions rose 1.7-2.2% at the four S8
    # points, where its aten::item syncs fell 9->3 (15->5) and its copies rose: work shifted
    first = doc["steps"][0]
    assert points_failing(doc) == {"B2-S8-E32-H4-b1", "B2-S8-E32-H4-b61", "B4-S8-E32-H4-b1",
                                   "B4-S8-E32-H4-b61"}
    assert {f["figure"] for f in first["failing"]} == {"host.Instructions.track_fast"}
    assert all(0.015 < f["change"] < 0.025 for f in first["failing"])
    assert all("aten::item" in f["why"] for f in first["failing"])
    shifted = [f for f in first["findings"] if f["verdict"] == "work shifted"]
    assert {f["figure"] for f in shifted} == {"host.HostWork.track_fast_bytecodes"}
    assert story[0].startswith("2.1.2 -> 2.3.1: REGRESSED: the fast path got worse at 4 of 8")
    for line in story[1:]:
        assert line.split(": ", 1)[1].startswith("the fast path is not worse: fast "), line
    assert all(len(line) <= 160 for line in lines)


def test_the_slow_paths_extra_op_is_reported_not_failed(history):
    rc, text, doc = gate(history, "2.9.1", "2.13.0")
    assert rc == 0 and text.splitlines()[1].startswith("the fast path is not worse: ")
    assert "slow instructions +0.4% (aten::reshape 2->3)" in text.splitlines()[1]
    slow = [f for f in doc["steps"][0]["findings"] if f["figure"] ==
            "host.HostWork.track_slow_aten_ops"]
    # one more op, and fewer bytecodes: the slow path's work shifted, its instructions held
    assert len(slow) == 8 and all(f["verdict"] == "work shifted" and not f["fails"] and
                                  f["why"] == "aten::reshape 2->3; fewer bytecodes"
                                  for f in slow)
    assert gate(history, "2.9.1", "2.13.0", extra=("--fail-on", "slow"))[0] == 0


def test_the_whole_span_passes(history):
    rc, text, _ = gate(history, "2.1.2", "2.15.0")
    assert rc == 0 and text.splitlines()[1].startswith("the fast path is not worse: fast -7.8%")


def test_steps_on_a_noisy_host_say_their_wall_figures_were_not_judged(history):
    rc, text, doc = gate(history, "2.3.1", "2.9.1")
    assert rc == 0 and not doc["steps"][0]["context"]["wall_judged"]
    assert "wall figures not judged: the host was noisy" in text
    assert text.splitlines()[1].startswith("the fast path is not worse: fast instructions -4.2%")


def test_a_build_whose_records_mostly_ran_at_another_speed_has_no_wall_judged(history):
    """2.3.1's records calibrated at 606, 1115 and 931 us, 2.1.2's at 591-635: two of three
    processes ran slow for their whole sweep."""
    rc, text, doc = gate(history, "2.1.2", "2.3.1")
    assert not doc["steps"][0]["context"]["wall_judged"]
    assert "the hosts ran at different speeds (the builds' calibrations read 628 and 931 us" \
        in text


def test_one_record_of_three_at_another_speed_is_outvoted(history):
    """One of 2.13.0's records calibrated at 1200 us, its others at 589 and 667, 2.15.0's at
    593-936: the medians, 667 and 629, are one speed, and the wall figures are judged."""
    rc, text, doc = gate(history, "2.13.0", "2.15.0")
    assert doc["steps"][0]["context"]["wall_judged"] and "different speeds" not in text


# --- plants on the real 2.15.0 ------------------------------------------------------------------
def test_one_more_fast_path_op_fails_at_every_point(history):
    name = "aten1"
    plant(history, name, values=lambda b, v: v + 1 if b == FAST_OPS else v,
          ops=lambda p, o: {**o, "aten::neg": o.get("aten::neg", 0) + 1} if p == "fast" else o)
    rc, text, doc = gate(history, "2.15.0", f"2.15.0-{name}")
    assert rc == 1 and len(points_failing(doc)) == 8
    assert "+aten::neg x1" in text.splitlines()[1]


def test_a_fast_path_30_percent_slower_fails_at_every_point(history):
    plant(history, "fast30", values=lambda b, v: v * 1.3 if b == FAST or b in RATIOS else v)
    rc, _, doc = gate(history, "2.15.0", "2.15.0-fast30")
    assert rc == 1 and len(points_failing(doc)) == 8


def test_a_slow_path_25_percent_faster_alone_passes_as_the_slow_path_catching_up(history):
    plant(history, "slow25", values=lambda b, v: v * 0.75 if b in SLOWS else
          v / 0.75 if b in RATIOS else v)
    rc, text, doc = gate(history, "2.15.0", "2.15.0-slow25")
    assert rc == 0
    verdicts = {f["verdict"] for f in doc["steps"][0]["findings"] if f["section"] == "ratio"}
    assert verdicts <= {"the slow path caught up", "the fast path no longer pays"}, verdicts
    assert "slow -25.0%" in text.splitlines()[1]
    assert gate(history, "2.15.0", "2.15.0-slow25", extra=("--fail-on", "ratio"))[0] == 1


def test_a_real_build_with_a_10_percent_python_loop_fails_at_every_point(history):
    """2.15.0-py10: the real 2.15.0 with a pure-Python loop of about 10% of a fast call on its
    fast path (``tests/plant.py``), recorded three times beside the releases."""
    rc, text, doc = gate(history, "2.15.0", "2.15.0-py10")
    assert rc == 1 and len(points_failing(doc)) == 8
    figures = {f["figure"] for f in doc["steps"][0]["failing"]}
    assert {"host.HostWork.track_fast_bytecodes", "host.Instructions.track_fast"} <= figures


# --- proof of build ------------------------------------------------------------------------------
def test_a_record_that_measured_another_torch_is_named_and_left_out(history):
    manifest = _manifest(history)
    commit = manifest["commits"]["torch-2.9.1"]
    (rec,) = (history / "records" / "cpu-smoke-r2").glob(f"{commit}-*.json")
    doc = json.loads(rec.read_text())
    doc["meta"]["torch"] = "2.15.0+cu132"
    rec.write_text(json.dumps(doc))
    rc, text, out = gate(history, "2.3.1", "2.9.1")
    assert "(f6c4b942, 2 record(s))" in text.splitlines()[0]
    assert "left out: record cpu-smoke-r2/f6c4b942 of 2.9.1: measured torch 2.15.0+cu132, " \
           "not 2.9.1" in text


def test_records_of_different_variants_are_said_to_differ(history):
    rc, text, _ = gate(history, "2.9.1", "2.13.0")
    assert "the builds differ in variant: 2.9.1 is cu128, 2.13.0 is cpu" in text


def test_a_reader_that_leaves_early_gets_no_traceback(history):
    import os
    import subprocess
    proc = subprocess.Popen([sys.executable, "-m", "mhabench", "gate", *RELEASES, "--dir",
                             str(history)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(DATA.parents[2])})
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1, 141) and first.startswith(b"history")
    assert "Traceback" not in err, err
