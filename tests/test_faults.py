"""Faults planted in real runs (``tests/faults/sitecustomize.py``): how many points are kept.

Under every kind, each point finished before the fault is on disk in valid files (CSV, errors
JSON and full JSON agreeing with the journal), the faulty point is marked with the reason, and
the sweep goes on where the fault allows. Smoke grid, tiny protocol: seconds per run.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mhabench.measure.config import named_grid

REPO = Path(__file__).resolve().parents[1]
FAULTS = Path(__file__).resolve().parent / "faults"
POINTS = named_grid("smoke", "fp32", "cpu")
LABELS = [p.label for p in POINTS]
TINY = ["--min-rounds", "2", "--max-rounds", "2", "--target-ms", "1", "--warmup-ms", "0.5",
        "--no-progress", "--no-peak", "--no-table"]


def _env(fault: str = "", **extra) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", MHABENCH_FAULT=fault, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), str(REPO), env.get("PYTHONPATH", "")])
    return env


def _argv(d: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mhabench", "run", "--device", "cpu", "--grid", "smoke", *TINY,
            "--save-path", str(d / "r.csv"), "--error-save-path", str(d / "e.json"),
            "--json", str(d / "a.json"), *extra]


def run(d: Path, fault: str = "", *extra: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(d, *extra), env=_env(fault, **env), capture_output=True,
                          text=True, timeout=300)


def journal_lines(d: Path) -> list[dict]:
    path = d / "a.journal.jsonl"
    if not path.exists():
        return []
    whole = path.read_bytes().rsplit(b"\n", 1)[0].split(b"\n")
    return [json.loads(x) for x in whole[1:] if x]


def kept(d: Path) -> dict[str, dict]:
    """{label: result} of the files on disk, after checking they agree with each other and
    with the journal."""
    doc = json.loads((d / "a.json").read_text())
    with open(d / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    errors = json.loads((d / "e.json").read_text())
    assert len(rows) == len(doc["results"])
    assert doc["errors"] == errors
    assert sum(errors.values()) == sum(r["status"] != "ok" for r in doc["results"])
    assert [r["status"] for r in rows] == [r["status"] for r in doc["results"]]
    assert sorted(e["label"] for e in journal_lines(d)) == sorted(r["label"] for r in
                                                                   doc["results"])
    return {r["label"]: r for r in doc["results"]}


def _wait_for_entries(d: Path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    end = time.monotonic() + limit
    while len(journal_lines(d)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the sweep did not get going"
        time.sleep(0.05)


# --- one run, seven points, a different fault at each of seven ----------------------------------
AT = dict(zip(["abort", "segv", "exit", "oom", "kill", "serialise", "wrong"], LABELS[1:]))
AT_EXTRA = {"nofast": LABELS[0]}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    d = tmp_path_factory.mktemp("faulty")
    faults = ",".join(f"{k}@{v}" for k, v in {**AT, **AT_EXTRA}.items())
    proc = run(d, faults)
    return d, proc


def test_faulty_run_keeps_every_point_and_exits_1(faulty):
    d, proc = faulty
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = kept(d)
    assert list(got) == LABELS  # all eight points, in grid order


@pytest.mark.parametrize("kind,status,reason", [
    ("abort", "error", "SIGABRT"),
    ("segv", "error", "SIGSEGV"),
    ("exit", "error", "exited with status 3"),
    ("oom", "error", "OutOfMemoryError"),
    ("kill", "error", "SIGKILL (out of memory?)"),
    ("serialise", "error", "serialising the result"),
    ("wrong", "mismatch", "differ"),
    ("nofast", "no_fastpath", "fast path not taken"),
])
def test_a_fault_at_one_point_marks_that_point_only(faulty, kind, status, reason):
    d, _ = faulty
    got = kept(d)
    label = {**AT, **AT_EXTRA}[kind]
    assert got[label]["status"] == status and reason in got[label]["message"], got[label]
    others = [r["message"] for lb, r in got.items() if lb != label]
    assert not any(reason in m for m in others)  # no other point paid for this fault


def test_a_hang_at_one_point_costs_that_point(tmp_path):
    proc = run(tmp_path, f"hang@{LABELS[2]}", "--point-timeout", "8", "--stride", "2")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = kept(tmp_path)
    assert list(got) == LABELS[::2]
    assert got[LABELS[2]]["status"] == "error" and "hung" in got[LABELS[2]]["message"]
    assert [got[lb]["status"] for lb in LABELS[::2] if lb != LABELS[2]] == ["ok"] * 3


# --- interruptions ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the smoke grid."""
    d = tmp_path_factory.mktemp("reference")
    proc = run(d)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return d


TIMINGS = ("us", "tflops", "peak_fraction", "rel_iqr", "speedup", "speedup_fair", "host_share")


def _untimed(result: dict) -> dict:
    """A result without its timings (what may differ between two runs of the same points)."""
    metrics = {k: v for k, v in result["metrics"].items()
               if not any(k.endswith(t) or k.startswith(t) for t in TIMINGS)}
    keep = {k: v for k, v in result.items() if k not in ("metrics", "rounds_us", "device_calls_us")}
    return {**keep, "metrics": metrics, "paths": sorted(result["rounds_us"]),
            "rounds": {k: len(v) for k, v in result["rounds_us"].items()}}


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                      (signal.SIGINT, 130), (signal.SIGHUP, 128 + signal.SIGHUP)])
def test_a_stop_signal_mid_sweep_keeps_the_finished_points(tmp_path, sig, code):
    proc = subprocess.Popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_entries(tmp_path, 2, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out[-2000:] + err[-2000:]
    got = kept(tmp_path)
    assert 2 <= len(got) < len(LABELS)
    assert list(got) == LABELS[:len(got)] and all(r["status"] == "ok" for r in got.values())
    assert f"{len(got)} of {len(LABELS)} points kept" in err


def test_kill_9_then_resume_measures_only_the_rest(tmp_path, reference):
    proc = subprocess.Popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for_entries(tmp_path, 3, proc)
    proc.kill()
    proc.wait()
    before = journal_lines(tmp_path)
    assert len(before) >= 3
    # a kill in the middle of writing a line leaves it cut short: tolerated
    with open(tmp_path / "a.journal.jsonl", "a") as fh:
        fh.write('{"label": "B4-S16')
    again = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resumed: {len(before)} points" in again.stdout
    assert f"{len(LABELS) - len(before)} measured now" in again.stdout
    after = journal_lines(tmp_path)
    assert after[:len(before)] == before  # nothing measured twice
    assert len(after) == len(LABELS) == len({e["label"] for e in after})
    got = kept(tmp_path)
    ref = json.loads((reference / "a.json").read_text())
    assert [_untimed(r) for r in got.values()] == [_untimed(r) for r in ref["results"]]
    with open(reference / "r.csv", newline="") as a, open(tmp_path / "r.csv", newline="") as b:
        ra, rb = list(csv.DictReader(a)), list(csv.DictReader(b))
    fixed = ["dtype", "batch_size", "sequence_length", "n_heads", "embed_dim", "padding",
             "beta_b", "status", "fast_path", "useful_flops", "padded_flops"]
    assert [[r[k] for k in fixed] for r in ra] == [[r[k] for k in fixed] for r in rb]
    assert (tmp_path / "e.json").read_text() == (reference / "e.json").read_text()


def test_sigint_during_a_rewrite_leaves_files_that_agree(tmp_path):
    mark = tmp_path / "writing"
    proc = subprocess.Popen(_argv(tmp_path, "--stride", "4"),
                            env=_env("slowwrite@any", MHABENCH_FAULT_MARK=str(mark)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # the CSV is written, the errors JSON and JSON are not yet
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    got = kept(tmp_path)  # every file written, all agreeing
    assert list(got) == LABELS[::4]


def test_sigusr1_rebuilds_the_files_while_the_sweep_goes_on(tmp_path):
    proc = subprocess.Popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_entries(tmp_path, 2, proc)
    proc.send_signal(signal.SIGUSR1)
    end = time.monotonic() + 60
    while not (tmp_path / "a.json").exists():
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.05)
    mid = json.loads((tmp_path / "a.json").read_text())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert 2 <= len(mid["results"]) < len(LABELS)
    assert list(kept(tmp_path)) == LABELS


# --- inside asv ---------------------------------------------------------------------------------
ASV_GRID = "custom:batch=2;seq=8;embed=12;heads=2,4;b=1,61"
ASV_BENCH = "^speedup\\.FastOverSlow\\.track_wall"


@pytest.fixture(scope="module")
def head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_sweep_crash_inside_asv_keeps_every_other_point(tmp_path, head):
    """The sweep's worker aborts at one point: that point fails, the three others are recorded,
    and the full results land in MHABENCH_RECORD_DIR; then a run of another grid into the same
    results dir is refused at discovery, in one line, leaving benchmarks.json as it was."""
    from conftest import asv, asv_env, write_config
    crash = "B2-S8-E12-H4-b1-float32-cpu"
    record = tmp_path / "record"
    env = asv_env(tmp_path, MHABENCH_GRID=ASV_GRID, MHABENCH_DEVICE="cpu",
                  MHABENCH_FAULT=f"abort@{crash}", MHABENCH_RECORD_DIR=str(record),
                  PYTHONPATH=str(FAULTS))
    d = tmp_path / "asv"
    config = write_config(d)
    assert asv(["machine", "--config", str(config), "--yes", "--machine", "m"], cwd=d,
               env=env).returncode == 0
    argv = ["run", "--config", str(config), "-E", f"existing:{sys.executable}",
            "--set-commit-hash", head, "--machine", "m", "--show-stderr", "--bench", ASV_BENCH]
    proc = asv(argv, cwd=d, env=env)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]  # one point failed
    from mhabench.track.asv_results import file_values
    (path,) = (d / "results" / "m").glob(f"{head[:8]}-*.json")
    values = file_values(json.loads(path.read_text()))["speedup.FastOverSlow.track_wall"]
    failed = ("2", "8", "12", "4", "1")
    assert values[failed] is None
    others = {k: v for k, v in values.items() if k != failed}
    assert len(others) == 3 and all(isinstance(v, float) and v > 0 for v in others.values())
    (rec,) = record.glob("*.json")
    assert rec.name == f"{head}-existing-py{sys.executable.replace(os.sep, '_')}.json"
    doc = json.loads(rec.read_text())
    status = {r["label"]: r["status"] for r in doc["results"]}
    assert len(status) == 4 and status.pop(crash) == "error" and set(status.values()) == {"ok"}
    assert "SIGABRT" in next(r["message"] for r in doc["results"] if r["label"] == crash)

    known = (d / "results" / "benchmarks.json").read_text()
    smoke = {**env, "MHABENCH_GRID": "smoke", "MHABENCH_FAULT": ""}
    again = asv(argv, cwd=d, env=smoke)
    assert again.returncode != 0
    lines = [ln.strip() for ln in (again.stdout + again.stderr).splitlines()
             if ln.strip().startswith("mhabench: error:")]
    assert len(lines) == 1 and "another grid" in lines[0], again.stdout + again.stderr
    assert (d / "results" / "benchmarks.json").read_text() == known


def test_resume_of_a_finished_journal_rebuilds_the_files_it_named(tmp_path):
    first = run(tmp_path, "", "--stride", "4")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    want = {p: (tmp_path / p).read_text() for p in ("r.csv", "e.json")}
    for p in ("r.csv", "e.json", "a.json"):
        (tmp_path / p).unlink()
    argv = [sys.executable, "-m", "mhabench", "run", "--device", "cpu", "--grid", "smoke", *TINY,
            "--stride", "4", "--resume", str(tmp_path / "a.journal.jsonl")]
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resumed: 2 points" in again.stdout and "0 measured now" in again.stdout
    assert {p: (tmp_path / p).read_text() for p in want} == want
    assert list(kept(tmp_path)) == LABELS[::4]
