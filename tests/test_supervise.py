"""mhabench.run.supervise and the worker it runs: a job's wall passes all before any counts pass
in one worker; each pass one ``on_entry`` then one ``sync``; a worker that dies or hangs costs
the pass it was in (a counts pass keeps the point's wall figures, with a note), and a new
worker goes on with the rest; partial records get only their counts pass; a worker started
ahead of its job is used when it suits the spec.

Most of the protocol is checked against a stand-in worker (a script without torch: quick);
the real worker's are marked slow (each imports torch)."""
from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mhabench.measure.config import Point
from mhabench.measure.protocol import Protocol
from mhabench.measure.results import ERROR, Result
from mhabench.run import supervise as sv
from mhabench.run.supervise import (Job, WorkerFailed, WorkerSpec, describe_exit, failed_record,
                                    spawn_worker, start_worker, supervise, worker_command)

REPO = Path(__file__).resolve().parents[1]
FAULTS = Path(__file__).resolve().parent / "faults"
POINTS = [Point(2, 8, 32, 4, b, dtype="float32", device="cpu") for b in (1, 61, 17)]
LABELS = [p.label for p in POINTS]
#: each point's rounds back to back, as on a CPU (``test_a_real_worker_interleaves_...``: not)
SPEC = WorkerSpec(Protocol(warmup_ms=0.5, target_ms=2.0, min_rounds=3, device_calls=1,
                           interleave=1), extras=False, threads=1)


class Entries:
    """on_entry: every (label, stage, record), in order; ``events`` with the syncs between."""

    def __init__(self):
        self.got, self.events = [], []

    def __call__(self, label, stage, record):
        assert Point(**record["point"]).label == label
        assert record["stage"] == stage
        self.got.append((label, stage, record))
        self.events.append((label, stage))

    def sync(self):
        self.events.append("sync")

    @property
    def stages(self):
        return [(label, stage) for label, stage, _ in self.got]

    def last(self, label):
        return [r for lab, _, r in self.got if lab == label][-1]


# --- the parts ---------------------------------------------------------------------------------

def test_worker_command_is_prefixable_and_carries_per_process_settings(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    spec = WorkerSpec(Protocol(), threads=3, prefix=("valgrind", "--tool=callgrind"))
    argv, env = worker_command(spec)
    assert argv == ["valgrind", "--tool=callgrind", sys.executable, "-m", "mhabench.run.worker"]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO), "/elsewhere"]
    assert env["OMP_NUM_THREADS"] == "3"
    assert worker_command(replace(spec, python="/opt/py"))[0][2] == "/opt/py"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in worker_command(WorkerSpec())[1], "torch's own threads"


def test_a_worker_spec_travels_as_json():
    spec = WorkerSpec(Protocol(min_rounds=7, target_ms=3.0), extras=False, threads=2,
                      prefix=("taskset", "-c", "0"), point_timeout=5.0, python="/x")
    assert WorkerSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize("code,words", [(-6, "SIGABRT"), (-11, "segmentation"),
                                        (-9, "out of memory"), (3, "status 3"),
                                        (None, "still running"), (-200, "signal 200")])
def test_describe_exit(code, words):
    assert words in describe_exit(code)


def test_a_job_is_true_while_a_pass_is_left():
    assert not Job([], {})
    assert Job(POINTS[:1], {}) and Job([], {"x": {}})


def test_a_failed_record_is_a_done_error_point():
    r = Result.of_record(failed_record(POINTS[0], "worker killed by SIGSEGV"))
    assert (r.status, r.stage, r.message, r.point) == \
        (ERROR, "done", "worker killed by SIGSEGV", POINTS[0])


def test_a_result_that_cannot_be_serialised_becomes_a_failed_point():
    from mhabench.run.worker import record_text
    bad = Result(POINTS[0], lengths=[object()], rounds={"fast": [1.0]})
    rec = json.loads(record_text(bad))
    assert rec["status"] == ERROR and "serialising the result" in rec["message"]
    assert Point(**rec["point"]) == POINTS[0]
    good = json.loads(record_text(Result(POINTS[1], rounds={"fast": [1.0]})))
    assert good["status"] == "ok" and good["rounds"] == {"fast": [1.0]}


# --- the protocol, with a stand-in worker -----------------------------------------------------

#: Speaks the worker's protocol without torch. FAKE_DIE / FAKE_HANG name passes ("S:label" for
#: a wall pass, "T:label" for a counts pass) at which it is killed (SIGKILL) or hangs;
#: FAKE_EXIT_AT_START makes it die before its first line; FAKE_TORCH is the build it says it
#: measures with; every job it gets is logged.
FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, signal, sys, time
    out = sys.stdout.buffer

    def send(kind, text=""):
        out.write((kind + " " + text + "\\n").encode())
        out.flush()

    def act(tag):
        if tag in os.environ.get("FAKE_DIE", "").split(","):
            os.kill(os.getpid(), signal.SIGKILL)
        if tag in os.environ.get("FAKE_HANG", "").split(","):
            time.sleep(60)

    def label(d):
        return "B{{batch_size}}-S{{seq_len}}-E{{embed_dim}}-H{{num_heads}}-b{{beta_b}}" \\
            "-{{dtype}}-{{device}}".format(**d)

    def deliver(kind, rec):
        send("C", json.dumps({{"fake_pass": 0.001}}))
        send(kind, json.dumps(rec))
        for _ in range(2):  # the go-ahead, then F (the record is on disk)
            if not sys.stdin.readline():
                sys.exit(0)

    spec = json.loads(sys.stdin.readline())["spec"]
    send("R", json.dumps({{"torch": os.environ.get("FAKE_TORCH", "fake"), "torch_git": "0" * 40,
                          "variant": "cpu", "mhabench_source": "fake",
                          "host_setup": {{"threads": spec["threads"]}}}}))
    job = sys.stdin.readline()
    if not job:
        sys.exit(0)
    job = json.loads(job)
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({{"walls": [label(d) for d in job["points"]],
                               "partials": list(job["partials"])}}) + "\\n")
    if os.environ.get("FAKE_EXIT_AT_START"):
        sys.exit(5)
    send("K", json.dumps({{"median_us": 1.0}}))
    walls = {{}}
    for d in job["points"]:
        send("S", label(d))
        act("S:" + label(d))
        rec = {{"point": d, "status": "ok", "stage": "wall", "message": "",
               "rounds": {{"fast": [1.0, 1.1], "slow": [2.0, 2.1]}}}}
        deliver("W", rec)
        walls[label(d)] = rec
    todo = dict(job["partials"])
    todo.update(walls)
    for lab, rec in todo.items():
        send("T", lab)
        act("T:" + lab)
        deliver("E", dict(rec, stage="done", host_work={{"fast": {{"aten_ops": 3}}}}))
    send("K", json.dumps({{"median_us": 1.0}}))
    send("D")
    """)


class FakeWorker:
    """The stand-in installed under ``directory`` (an interpreter path for a WorkerSpec or a
    RunSpec); :meth:`jobs` lists the jobs each stand-in process was given."""

    def __init__(self, directory: Path, monkeypatch):
        self.python = directory / "fake-python"
        self.python.write_text(FAKE.format(python=sys.executable))
        self.python.chmod(self.python.stat().st_mode | stat.S_IXUSR)
        self.log = directory / "jobs.log"
        monkeypatch.setenv("FAKE_LOG", str(self.log))
        for var in ("FAKE_DIE", "FAKE_HANG", "FAKE_EXIT_AT_START", "FAKE_TORCH"):
            monkeypatch.delenv(var, raising=False)
        self.spec = replace(SPEC, python=str(self.python), point_timeout=30.0)

    def jobs(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeWorker(tmp_path, monkeypatch)


def _walled(point) -> dict:
    return Result(point, stage="wall", rounds={"fast": [3.0], "slow": [4.0]},
                  message="fp32 reference: planted").record()


def test_every_wall_pass_comes_before_any_counts_pass_each_synced(fake):
    e = Entries()
    cost, calibration = {}, []
    supervise(Job(list(POINTS), {}), fake.spec, e, cost=cost, sync=e.sync,
              calibration=calibration)
    assert e.events == [x for lab in LABELS for x in ((lab, "wall"), "sync")] + \
        [x for lab in LABELS for x in ((lab, "done"), "sync")]
    assert fake.jobs() == [{"walls": LABELS, "partials": []}]
    assert cost["fake_pass"] == pytest.approx(0.006) and "journal_sync" in cost
    assert "worker_ready_wait" in cost and len(calibration) == 2


def test_partial_records_get_only_their_counts_pass(fake):
    e = Entries()
    job = Job([POINTS[2]], {LABELS[0]: _walled(POINTS[0]), LABELS[1]: _walled(POINTS[1])})
    supervise(job, fake.spec, e, sync=e.sync)
    assert fake.jobs() == [{"walls": [LABELS[2]], "partials": LABELS[:2]}]
    assert [s for s in e.stages if s[1] == "wall"] == [(LABELS[2], "wall")]
    assert sorted(lab for lab, st in e.stages if st == "done") == sorted(LABELS)
    kept = e.last(LABELS[0])
    assert kept["rounds"] == {"fast": [3.0], "slow": [4.0]}, "its wall figures, untouched"
    assert kept["message"] == "fp32 reference: planted" and kept["host_work"]
    assert not job, "the job is used up"


def test_a_worker_killed_in_a_counts_pass_keeps_the_points_wall_figures_with_a_note(
        fake, monkeypatch):
    monkeypatch.setenv("FAKE_DIE", f"T:{LABELS[1]}")
    e = Entries()
    supervise(Job(list(POINTS), {}), fake.spec, e, sync=e.sync)
    assert fake.jobs() == [{"walls": LABELS, "partials": []},
                           {"walls": [], "partials": [LABELS[2]]}], \
        "a new worker takes the counts pass left: the killed point's is not tried again"
    rec = e.last(LABELS[1])
    assert rec["status"] == "ok" and rec["stage"] == "done"
    assert rec["rounds"] == {"fast": [1.0, 1.1], "slow": [2.0, 2.1]}
    assert rec["message"] == "counts: worker killed by SIGKILL (out of memory?)"
    assert "host_work" not in rec
    assert e.last(LABELS[2])["host_work"] and e.last(LABELS[0])["host_work"]
    assert e.stages.count((LABELS[1], "done")) == 1
    assert e.events.count("sync") == len(e.got), "the lost pass is synced too"


def test_a_partials_note_is_added_to_the_message_it_had(fake, monkeypatch):
    monkeypatch.setenv("FAKE_DIE", f"T:{LABELS[0]}")
    e = Entries()
    supervise(Job([], {LABELS[0]: _walled(POINTS[0])}), fake.spec, e)
    assert e.last(LABELS[0])["message"] == \
        "fp32 reference: planted; counts: worker killed by SIGKILL (out of memory?)"
    assert e.last(LABELS[0])["rounds"] == {"fast": [3.0], "slow": [4.0]}


def test_a_worker_killed_in_a_wall_pass_fails_that_point_and_a_new_one_goes_on(fake,
                                                                              monkeypatch):
    monkeypatch.setenv("FAKE_DIE", f"S:{LABELS[1]}")
    e = Entries()
    supervise(Job(list(POINTS), {}), fake.spec, e, sync=e.sync)
    assert fake.jobs() == [{"walls": LABELS, "partials": []},
                           {"walls": [LABELS[2]], "partials": [LABELS[0]]}]
    failed = e.last(LABELS[1])
    assert failed["status"] == ERROR and failed["stage"] == "done"
    assert failed["message"] == "worker killed by SIGKILL (out of memory?)"
    assert failed["rounds"] == {}
    assert e.stages == [(LABELS[0], "wall"), (LABELS[1], "done"), (LABELS[2], "wall"),
                        (LABELS[0], "done"), (LABELS[2], "done")]
    assert e.events.count("sync") == len(e.got)


def test_a_hung_pass_is_killed_after_the_point_timeout(fake, monkeypatch):
    monkeypatch.setenv("FAKE_HANG", f"T:{LABELS[0]},S:{LABELS[1]}")
    e = Entries()
    t0 = time.monotonic()
    supervise(Job(list(POINTS[:2]), {}), replace(fake.spec, point_timeout=0.5), e)
    assert time.monotonic() - t0 < 20
    assert e.last(LABELS[1])["status"] == ERROR
    assert e.last(LABELS[1])["message"] == "hung: no result within 0.5 s; worker killed"
    first = e.last(LABELS[0])
    assert first["status"] == "ok" and first["rounds"]
    assert first["message"] == "counts: hung: no result within 0.5 s; worker killed"


def test_a_worker_that_dies_before_its_first_point_is_a_worker_failure(fake, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT_AT_START", "1")
    e = Entries()
    with pytest.raises(WorkerFailed, match="died before its first point: worker exited with "
                                           "status 5"):
        supervise(Job(list(POINTS), {}), fake.spec, e)
    assert e.got == []


def test_a_worker_that_cannot_start_names_its_command(tmp_path):
    exe = tmp_path / "dead-python"
    exe.write_text("#!/bin/sh\nexit 4\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(WorkerFailed) as ei:
        supervise(Job(list(POINTS), {}), replace(SPEC, python=str(exe)), Entries())
    msg = str(ei.value)
    assert "could not start: worker exited with status 4" in msg and str(exe) in msg
    assert "\n" not in msg


def test_an_early_worker_that_does_not_suit_is_stopped(fake):
    other = start_worker(replace(fake.spec, threads=2))
    assert not other.suits(fake.spec)
    e = Entries()
    supervise(Job(list(POINTS[:1]), {}), fake.spec, e, worker=other)
    assert other.proc.poll() is not None
    assert len(fake.jobs()) == 1 and e.stages == [(LABELS[0], "wall"), (LABELS[0], "done")]


def test_an_early_worker_is_stopped_when_there_is_nothing_to_do(fake):
    early = start_worker(fake.spec)
    supervise(Job([], {}), fake.spec, Entries(), worker=early)
    assert early.proc.poll() is not None and fake.jobs() == []


# --- the real worker (each imports torch) -------------------------------------------------------

def _lines_seen(monkeypatch) -> list[str]:
    """Every S/T/W/E line the parent reads from its workers, as ``kind label``."""
    seen = []
    real = sv._Lines.next

    def spy(self, timeout):
        line = real(self, timeout)
        if line and line[:1] in (b"S", b"T"):
            seen.append(line.decode())
        elif line and line[:1] in (b"W", b"E"):
            seen.append(line[:1].decode() + " " + Point(**json.loads(line[2:])["point"]).label)
        return line
    monkeypatch.setattr(sv._Lines, "next", spy)
    return seen


@pytest.mark.slow
def test_a_real_worker_runs_every_wall_pass_before_any_counts_pass(monkeypatch):
    seen = _lines_seen(monkeypatch)
    e = Entries()
    walled = Result.of_record(json.loads(json.dumps(_real_wall(POINTS[0]))))
    supervise(Job(POINTS[1:], {LABELS[0]: walled.record()}), SPEC, e, sync=e.sync)
    assert seen == [f"{k} {lab}" for lab in LABELS[1:] for k in "SW"] + \
        [f"{k} {lab}" for lab in LABELS for k in "TE"]
    assert e.stages == [(LABELS[1], "wall"), (LABELS[2], "wall")] + \
        [(lab, "done") for lab in LABELS]
    for label, stage, rec in e.got:
        assert rec["status"] == "ok", rec["message"]
        if stage == "wall":
            assert rec["host_work"] == {} and rec["rounds"]
        else:
            assert rec["host_work"]["fast"]["aten_ops"] > 0 and rec["host_work"]["fast"]["bytecodes"]
    assert e.last(LABELS[0])["rounds"] == walled.rounds, "the partial kept its wall figures"


@pytest.mark.slow
def test_a_real_worker_interleaves_a_chunk_s_rounds_then_delivers_its_points(monkeypatch):
    """Interleaved (as on CUDA): every point prepared, warmed, then round by round, each point
    named as work moves to it; the chunk's records after its rounds, one journal wait."""
    seen = _lines_seen(monkeypatch)
    e, cost = Entries(), {}
    spec = replace(SPEC, protocol=replace(SPEC.protocol, interleave=8, max_rounds=3))
    supervise(Job(list(POINTS), {}), spec, e, cost=cost, sync=e.sync)
    walls = seen[:seen.index(f"T {LABELS[0]}")]
    starts = [x for x in walls if x.startswith("S ")]
    assert starts == [f"S {lab}" for lab in LABELS] * (2 + 3), "prepare, warm, three rounds"
    assert walls[len(starts):] == [f"W {lab}" for lab in LABELS], "the records after the rounds"
    for label, stage, rec in e.got:
        assert rec["status"] == "ok", rec["message"]
        if stage == "wall":
            kept = len(rec["rounds"]["fast"])
            assert kept + rec["rounds_left_out"] == 3 and len(rec["host_probe_us"]) == 2 * kept
    assert [lab for lab, st, _ in e.got if st == "done"] == LABELS


def _real_wall(point) -> dict:
    from mhabench.measure import passes
    r = passes.wall_pass(point, SPEC.protocol, extras=False)
    assert r.stage == "wall", r.message
    return r.record()


@pytest.mark.slow
def test_a_real_worker_killed_in_a_counts_pass_keeps_the_wall_figures(monkeypatch):
    """The fault is planted by tests/faults/sitecustomize.py: SIGKILL at the counts pass."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FAULTS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("MHABENCH_FAULT", f"ckill@{LABELS[1]}")
    e = Entries()
    supervise(Job(list(POINTS), {}), SPEC, e, sync=e.sync)
    assert [s for s in e.stages if s[1] == "wall"] == [(lab, "wall") for lab in LABELS]
    killed = e.last(LABELS[1])
    walled = [r for lab, st, r in e.got if lab == LABELS[1] and st == "wall"][0]
    assert killed["status"] == "ok" and killed["stage"] == "done"
    assert killed["rounds"] == walled["rounds"] and killed["rounds"]["fast"]
    assert killed["message"].endswith("counts: worker killed by SIGKILL (out of memory?)")
    assert killed["host_work"] == {}
    for lab in (LABELS[0], LABELS[2]):
        assert e.last(lab)["host_work"]["fast"]["aten_ops"] > 0, "counted by the next worker"


@pytest.mark.slow
def test_a_worker_started_ahead_measures_the_job():
    early = start_worker(SPEC)
    assert early.suits(SPEC)
    ident = early.ready()
    assert ident["torch"] and ident["host_setup"]["threads"] == 1
    e = Entries()
    supervise(Job(POINTS[:2], {}), SPEC, e, worker=early)
    assert early.proc.poll() == 0, "the early worker ran the job to its end"
    assert [r["status"] for _, st, r in e.got if st == "done"] == ["ok", "ok"]


@pytest.mark.slow
def test_a_worker_spawned_before_its_spec_takes_the_spec_it_is_told():
    spare = spawn_worker()
    assert spare.spec is None and spare.suits(SPEC)
    assert not spare.suits(replace(SPEC, prefix=("env",))), \
        "a prefix needs a worker started under it"
    assert not spare.suits(replace(SPEC, python=sys.executable)), "so does another interpreter"
    e = Entries()
    supervise(Job(POINTS[:2], {}), replace(SPEC, threads=2), e, worker=spare)
    assert spare.proc.poll() == 0 and spare.spec.threads == 2, "the spare ran the job"
    assert spare.identity["host_setup"]["threads"] == 2
    assert [r["status"] for _, st, r in e.got if st == "done"] == ["ok", "ok"]


@pytest.mark.slow
def test_each_entry_is_synced_once_and_the_next_points_rounds_wait_for_it():
    e, cost = Entries(), {}

    def sync():
        time.sleep(0.3)  # a slow disk
        e.sync()

    supervise(Job(list(POINTS), {}), SPEC, e, cost=cost, sync=sync)
    assert e.events == [x for lab in LABELS for x in ((lab, "wall"), "sync")] + \
        [x for lab in LABELS for x in ((lab, "done"), "sync")]
    assert cost["journal_sync"] >= 0.3 * 2 * len(POINTS)
    # the worker's rounds of points 2 and 3 waited out most of the sync of the point before
    assert cost["journal_wait"] >= 0.2 * (len(POINTS) - 1), cost
