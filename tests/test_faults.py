"""Faults planted in real runs (``tests/faults/sitecustomize.py``): what is kept, what is said.

Under every kind, each point finished before the fault is on disk in valid files (CSV, errors
JSON and full JSON agreeing with the journal), the faulty point is marked with the reason, the
sweep goes on where the fault allows, and a resume measures only what is missing (or failed,
when asked). Smoke grid, ``--preset check``: seconds per run. The kinds are counted in
:data:`KINDS`.
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

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FAULTS = Path(__file__).resolve().parent / "faults"
POINTS = named_grid("smoke", "fp32", "cpu")
LABELS = [p.label for p in POINTS]
TINY = ["--preset", "check", "-q"]


def _popen(*args, **kwargs) -> subprocess.Popen:
    """A child that takes Ctrl-C as it would in a terminal, even where this test process was
    started in the background (a shell's ``cmd &`` ignores SIGINT, and a child inherits that)."""
    return subprocess.Popen(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


def _env(fault: str = "", **extra) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", MHABENCH_FAULT=fault, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), str(REPO), env.get("PYTHONPATH", "")])
    return env


def _argv(d: Path, *extra: str, grid: str = "smoke") -> list[str]:
    return [sys.executable, "-m", "mhabench", "run", "--device", "cpu", "--grid", grid, *TINY,
            "--save-path", str(d / "r.csv"), "--error-save-path", str(d / "e.json"),
            "--json", str(d / "a.json"), *extra]


def run(d: Path, fault: str = "", *extra: str, grid: str = "smoke",
        **env) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(d, *extra, grid=grid), env=_env(fault, **env),
                          capture_output=True, text=True, timeout=300)


def journal_lines(d: Path, name: str = "a.journal.jsonl") -> list[dict]:
    path = d / name
    if not path.exists():
        return []
    whole = path.read_bytes().rsplit(b"\n", 1)[0].split(b"\n")
    return [json.loads(x) for x in whole[1:] if x]


def latest(d: Path) -> dict[str, dict]:
    out = {}
    for e in journal_lines(d):
        out[e["label"]] = e
    return out


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
    assert sorted(latest(d)) == sorted(r["label"] for r in doc["results"])
    return {r["label"]: r for r in doc["results"]}


def _wait_for(d: Path, n: int, proc, limit: float = 120, stage: str = "") -> None:
    end = time.monotonic() + limit
    while len([e for e in journal_lines(d) if not stage or e["stage"] == stage]) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the sweep did not get going"
        time.sleep(0.05)


#: The kinds of fault this module plants, each in a test of its own below.
KINDS = ("abort", "segv", "exit", "kill", "oom", "serialise", "wrong", "nofast", "hang",
         "cabort", "ckill", "chang", "coom", "SIGTERM", "SIGINT", "SIGHUP", "kill -9 + resume",
         "SIGINT during a rewrite", "SIGUSR1", "enospc", "eio", "rofolder",
         "two runs on one journal", "worker cannot start", "asv sweep crash", "asv interrupt",
         "asv kill -9", "retry failed", "resume another run")


def test_the_fault_table_holds_at_least_25_kinds():
    assert len(set(KINDS)) >= 25


# --- one run, a different fault at each of eight points -------------------------------------------
AT = {"abort": LABELS[1], "segv": LABELS[2], "exit": LABELS[3], "oom": LABELS[4],
      "kill": LABELS[5], "serialise": LABELS[6], "wrong": LABELS[7], "nofast": LABELS[0]}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    d = tmp_path_factory.mktemp("faulty")
    proc = run(d, ",".join(f"{k}@{v}" for k, v in AT.items()))
    return d, proc


def test_faulty_run_keeps_every_point_and_exits_1(faulty):
    d, proc = faulty
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(kept(d)) == LABELS  # all eight points, in grid order


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
    label = AT[kind]
    assert got[label]["status"] == status and reason in got[label]["message"], got[label]
    others = [r["message"] for lb, r in got.items() if lb != label]
    assert not any(reason in m for m in others)  # no other point paid for this fault


def test_a_hang_at_one_point_costs_that_point(tmp_path):
    proc = run(tmp_path, f"hang@{LABELS[2]}", "--point-timeout", "8", grid="smoke/2")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = kept(tmp_path)
    assert list(got) == LABELS[::2]
    assert got[LABELS[2]]["status"] == "error" and "hung" in got[LABELS[2]]["message"]
    assert [got[lb]["status"] for lb in LABELS[::2] if lb != LABELS[2]] == ["ok"] * 3


@pytest.mark.parametrize("kind,reason", [("cabort", "SIGABRT"), ("ckill", "SIGKILL"),
                                         ("chang", "hung"), ("coom", "profiler out of memory")])
def test_a_fault_in_a_counts_pass_keeps_the_points_wall_figures(tmp_path, kind, reason):
    label = LABELS[1]
    extra = ("--point-timeout", "8") if kind == "chang" else ()
    proc = run(tmp_path, f"{kind}@{label}", *extra)
    got = kept(tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    hit = got[label]
    assert hit["status"] == "ok" and reason in hit["message"], hit
    assert hit["metrics"]["wall_fast_us"] > 0 and hit["metrics"]["speedup"] > 0
    assert all(got[lb]["metrics"]["host_fast_aten_ops"] for lb in LABELS if lb != label)
    assert all(reason not in got[lb]["message"] for lb in LABELS if lb != label)


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
    keep = {k: v for k, v in result.items() if k not in ("metrics", "rounds_us", "device_calls_us",
                                                        "window_calls", "host_probe_us",
                                                        "retimed")}
    return {**keep, "metrics": metrics, "paths": sorted(result["rounds_us"]),
            "rounds": {k: len(v) for k, v in result["rounds_us"].items()}}


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                      (signal.SIGINT, 130), (signal.SIGHUP, 128 + signal.SIGHUP)])
def test_a_stop_signal_mid_sweep_keeps_the_finished_points(tmp_path, sig, code):
    proc = _popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path, 2, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out[-2000:] + err[-2000:]
    got = kept(tmp_path)
    assert 2 <= len(got) < len(LABELS)
    assert list(got) == LABELS[:len(got)] and all(r["status"] == "ok" for r in got.values())
    assert f"{len(got)} of {len(LABELS)} points kept" in err and "--resume" in err


def test_kill_9_then_resume_measures_only_the_rest(tmp_path, reference):
    proc = _popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for(tmp_path, 3, proc)
    proc.kill()
    proc.wait()
    before = journal_lines(tmp_path)
    assert len(before) >= 3
    # a kill in the middle of writing a line leaves it cut short: tolerated
    with open(tmp_path / "a.journal.jsonl", "a") as fh:
        fh.write('{"label": "B4-S16')
    again = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = journal_lines(tmp_path)
    assert after[:len(before)] == before  # nothing measured twice
    walls = [e["label"] for e in after if e["stage"] == "wall"]
    assert len(walls) == len(set(walls)) == len(LABELS)  # each wall pass once, over both runs
    got = kept(tmp_path)
    ref = json.loads((reference / "a.json").read_text())
    assert [_untimed(r) for r in got.values()] == [_untimed(r) for r in ref["results"]]
    assert (tmp_path / "e.json").read_text() == (reference / "e.json").read_text()


def test_sigint_during_a_rewrite_leaves_files_that_agree(tmp_path):
    mark = tmp_path / "writing"
    proc = _popen(_argv(tmp_path, grid="smoke/4"),
                            env=_env("slowwrite@any", MHABENCH_FAULT_MARK=str(mark)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # the CSV is written, the errors JSON and JSON are not yet
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), out[-2000:] + err[-2000:]
    assert list(kept(tmp_path)) == LABELS[::4]  # every file written, all agreeing


def test_sigusr1_rebuilds_the_files_while_the_sweep_goes_on(tmp_path):
    proc = _popen(_argv(tmp_path), env=_env("slow@any"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path, 2, proc)
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


# --- I/O faults: the run stops cleanly, keeps its journal and says how to finish --------------------
@pytest.mark.parametrize("kind,words", [("enospc", "No space left on device"),
                                        ("eio", "Input/output error")])
def test_a_journal_that_cannot_be_written_stops_the_run_in_one_line(tmp_path, kind, words):
    proc = run(tmp_path, f"{kind}@{LABELS[3]}")
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning")]
    assert len(err) == 1 and err[0].startswith("mhabench: error: ") and words in err[0], err
    assert f"mhabench run --resume {tmp_path / 'a.journal.jsonl'}" in err[0]
    assert "Traceback" not in proc.stderr
    got = kept(tmp_path)  # the files hold what the journal holds
    assert LABELS[0] in got and all(r["status"] == "ok" for r in got.values())
    again = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert list(kept(tmp_path)) == LABELS


def test_result_files_that_cannot_be_written_keep_the_journal(tmp_path):
    proc = run(tmp_path, f"rofolder@{LABELS[2]}")
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning")]
    assert len(err) == 1 and "Permission denied" in err[0] and "--resume" in err[0], err
    assert "Traceback" not in proc.stderr
    assert len(latest(tmp_path)) == len(LABELS)  # every point is in the journal
    again = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"))
    assert again.returncode == 0
    assert list(kept(tmp_path)) == LABELS


def test_two_runs_on_one_journal_the_second_is_refused(tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    first = _popen(_argv(tmp_path), env=_env(f"hold@{LABELS[1]}",
                                                       MHABENCH_FAULT_HOLD=str(hold)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path, 1, first)
    second = run(tmp_path, "")
    hold.unlink()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out[-2000:] + err[-2000:]
    assert second.returncode == 2, second.stderr
    assert "in use by another run" in second.stderr.strip().splitlines()[-1]
    assert list(kept(tmp_path)) == LABELS  # the first run's points are all there


def test_a_worker_that_cannot_start_is_one_line_and_exit_3(tmp_path):
    proc = run(tmp_path, "nostart@any")
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning")]
    assert len(err) == 1 and "worker could not start" in err[0], err
    assert "exited with status 4" in err[0] and "Traceback" not in proc.stderr


def test_retry_failed_measures_the_failed_points_again_and_says_so(tmp_path):
    first = run(tmp_path, f"abort@{LABELS[1]},exit@{LABELS[5]}")
    assert first.returncode == 1
    journal = str(tmp_path / "a.journal.jsonl")
    plain = run(tmp_path, "", "--resume", journal)
    assert plain.returncode == 1 and "0 passes measured now" in plain.stdout
    again = run(tmp_path, "", "--resume", journal, "--retry-failed")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "6 points from" in again.stdout and "4 passes measured now" in again.stdout
    got = kept(tmp_path)
    assert all(r["status"] == "ok" for r in got.values())


@pytest.mark.parametrize("grid,words", [("smoke;seed=1", "seed is 26214 there, 1 here"),
                                        ("smoke;block=4", "block_size is 2 there, 4 here")])
def test_a_resume_of_another_run_is_refused_naming_the_setting(tmp_path, grid, words):
    first = run(tmp_path, "")
    assert first.returncode == 0
    again = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"), grid=grid)
    assert again.returncode == 2
    line = again.stderr.strip().splitlines()
    assert len(line) == 1 and words in line[0], again.stderr
    threads = run(tmp_path, "", "--resume", str(tmp_path / "a.journal.jsonl"), "--threads", "2")
    assert threads.returncode == 2 and "threads is 1 there, 2 here" in threads.stderr


def test_resume_of_a_finished_journal_rebuilds_the_files_it_named(tmp_path):
    first = run(tmp_path, "", grid="smoke/4")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    want = {p: (tmp_path / p).read_text() for p in ("r.csv", "e.json")}
    for p in ("r.csv", "e.json", "a.json"):
        (tmp_path / p).unlink()
    argv = [sys.executable, "-m", "mhabench", "run", "--device", "cpu", "--grid", "smoke/4",
            *TINY, "--resume", str(tmp_path / "a.journal.jsonl")]
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resumed: 2 points" in again.stdout and "0 passes measured now" in again.stdout
    assert {p: (tmp_path / p).read_text() for p in want} == want
    assert list(kept(tmp_path)) == LABELS[::4]


# --- inside asv ---------------------------------------------------------------------------------
ASV_GRID = "custom:batch=2;seq=8;embed=12;heads=2,4;b=1,61"
ASV_BENCH = "^speedup\\.FastOverSlow\\.track_wall"


def _asv_setup(tmp_path, head, **extra):
    from conftest import asv, asv_env, write_config
    env = asv_env(tmp_path, MHABENCH_GRID=ASV_GRID, MHABENCH_DEVICE="cpu",
                  PYTHONPATH=str(FAULTS), MHABENCH_CACHE_DIR=str(tmp_path / "cache"), **extra)
    d = tmp_path / "asv"
    config = write_config(d)
    assert asv(["machine", "--config", str(config), "--yes", "--machine", "m"], cwd=d,
               env=env).returncode == 0
    argv = ["run", "--config", str(config), "-E", f"existing:{sys.executable}",
            "--set-commit-hash", head, "--machine", "m", "--show-stderr", "--bench", ASV_BENCH]
    return d, env, argv


def test_a_sweep_crash_inside_asv_keeps_every_other_point(tmp_path, head):
    """The sweep's worker aborts at one point: that point fails, the three others are recorded,
    and the full results land in MHABENCH_RECORD_DIR; then a run of another grid into the same
    results dir is refused at discovery, in one line, leaving benchmarks.json as it was."""
    from conftest import asv
    from mhabench.track.asv_results import load_record
    crash = "B2-S8-E12-H4-b1-float32-cpu"
    record = tmp_path / "record"
    d, env, argv = _asv_setup(tmp_path, head, MHABENCH_FAULT=f"abort@{crash}",
                              MHABENCH_RECORD_DIR=str(record))
    proc = asv(argv, cwd=d, env=env)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]  # one point failed
    (path,) = (d / "results" / "m").glob(f"{head[:8]}-*.json")
    values = load_record(path).values["speedup.FastOverSlow.track_wall"]
    failed = ("2", "8", "12", "4", "1")
    assert values[failed] is None
    others = {k: v for k, v in values.items() if k != failed}
    assert len(others) == 3 and all(isinstance(v, float) and v > 0 for v in others.values())
    (rec,) = record.glob("*.json")
    assert rec.name.startswith("existing-")  # track renames it after the commit
    doc = json.loads(rec.read_text())
    status = {r["label"]: r["status"] for r in doc["results"]}
    assert len(status) == 4 and status.pop(crash) == "error" and set(status.values()) == {"ok"}
    assert "SIGABRT" in next(r["message"] for r in doc["results"] if r["label"] == crash)

    known = (d / "results" / "benchmarks.json").read_text()
    smoke = {k: v for k, v in env.items() if k != "MHABENCH_RECORD_DIR"}  # a plain asv run
    smoke.update(MHABENCH_GRID="smoke", MHABENCH_FAULT="")
    again = asv(argv, cwd=d, env=smoke)
    assert again.returncode != 0
    lines = [ln.strip() for ln in (again.stdout + again.stderr).splitlines()
             if ln.strip().startswith("mhabench: error:")]
    assert len(lines) == 1 and "another grid" in lines[0], again.stdout + again.stderr
    assert (d / "results" / "benchmarks.json").read_text() == known


def test_an_interrupted_asv_run_resumes_its_finished_points(tmp_path, head):
    """Ctrl-C of ``asv run`` mid-sweep keeps the sweep's journal where the next run finds it:
    the rerun measures only the points not finished, and no asv process outlives either."""
    from conftest import asv
    record = tmp_path / "record"
    d, env, argv = _asv_setup(tmp_path, head, MHABENCH_FAULT="slow@any",
                              MHABENCH_RECORD_DIR=str(record))
    journals = tmp_path / "cache" / "journals"
    proc = _popen([sys.executable, "-m", "asv", *argv], cwd=d, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    end = time.monotonic() + 240
    while not [e for f in journals.glob("*.jsonl") for e in _lines(f) if e["stage"] == "wall"][2:]:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < end
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    proc.communicate(timeout=120)
    (journal,) = journals.glob("*.jsonl")
    done = {e["label"] for e in _lines(journal)}
    assert 3 <= len(done) < 4
    assert not _mhabench_processes(tmp_path)
    again = asv(argv, cwd=d, env={**env, "MHABENCH_FAULT": ""})
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    (rec,) = record.glob("*.json")
    kept_ = json.loads(rec.read_text())["meta"]["journal"]
    assert kept_["resumed"] and kept_["passes_measured"] < 8  # 4 points, 2 passes each
    assert kept_["points_kept"] + kept_["passes_measured"] >= 4
    assert not list(journals.glob("*.jsonl"))  # a sweep that ended well leaves no journal


def _lines(path: Path) -> list[dict]:
    data = path.read_bytes().rsplit(b"\n", 1)[0].split(b"\n")
    return [json.loads(x) for x in data[1:] if x]


def test_kill_9_of_asv_leaves_no_process_behind(tmp_path, head):
    """asv killed outright (kill -9): its forkserver, the sweep and the sweep's worker all go
    with it, and the journal keeps the finished points for the next run."""
    d, env, argv = _asv_setup(tmp_path, head, MHABENCH_FAULT="slow@any")
    journals = tmp_path / "cache" / "journals"
    proc = _popen([sys.executable, "-m", "asv", *argv], cwd=d, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 240
    while not [e for f in journals.glob("*.jsonl") for e in _lines(f)][1:]:
        assert proc.poll() is None
        assert time.monotonic() < end
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    end = time.monotonic() + 20
    while _mhabench_processes(tmp_path) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _mhabench_processes(tmp_path)
    assert [e for f in journals.glob("*.jsonl") for e in _lines(f)]


def _mhabench_processes(tmp_path: Path) -> list[str]:
    """Processes still running for this test's asv run: asv_runner's (its forkserver, the
    sweep) and mhabench's worker, found by the test's own folder in their environment."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmp_path).encode() in environ and ("asv" in cmd or "mhabench" in cmd):
            out.append(f"{pid} {cmd}")
    return out
