"""mhabench.run.execute, the one run path: journal every pass, rebuild the files from the
journal, resume only what is missing (and, asked, what failed), refuse a journal of another run
naming the setting, refuse a journal another run is writing, keep what was finished when
stopped. Quick tests run the real supervisor with a stand-in worker (no torch, see
tests/test_supervise.py); the real worker's run is marked slow."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from mhabench.measure.config import ConfigError, Point, named_grid
from mhabench.run import journal as jr
from mhabench.run.execute import (Reporter, check_journal, check_resume, default_journal,
                                  execute, worker_spec)
from mhabench.run.spec import RunSpec
from mhabench.run.supervise import start_worker
from test_supervise import FakeWorker

GRID = "smoke/2"
POINTS = named_grid("smoke", "fp32", "cpu")[::2]
LABELS = [p.label for p in POINTS]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeWorker(tmp_path, monkeypatch)


def _run(fake, grid=GRID, **kw):
    return RunSpec(grid=grid, device="cpu", preset="check", extras=False,
                   python=str(fake.python), **kw).resolve(False)


class Told(Reporter):
    def __init__(self):
        self.started_with, self.advances, self.notes = None, [], []

    def started(self, meta, run, journal, passes):
        self.started_with = (journal, passes)

    def advanced(self, label, stage):
        self.advances.append((label, stage))

    def note(self, text):
        self.notes.append(text)


def _outputs(d: Path) -> jr.Outputs:
    return jr.Outputs.beside(str(d / "r.csv"), str(d / "e.json"), str(d / "a.json"))


def _stages(journal: Path) -> list[tuple[str, str]]:
    return [(e["label"], e["stage"]) for e in jr.read(journal)[1]]


def _first_run(fake, d: Path):
    out = execute(_run(fake), _outputs(d), d / "j.jsonl")
    assert not out.failure and not out.stopped
    return out


# --- a run ------------------------------------------------------------------------------------

def test_a_run_journals_both_passes_of_every_point_and_writes_the_files(fake, tmp_path):
    told = Told()
    out = execute(_run(fake), _outputs(tmp_path), tmp_path / "j.jsonl", reporter=told)
    assert [r.point for r in out.results] == POINTS and all(r.stage == "done" for r in out.results)
    assert (out.measured, out.skipped, out.stopped, out.failure) == (8, 0, 0, "")
    assert out.journal == tmp_path / "j.jsonl" and told.started_with == (out.journal, 8)
    assert told.advances == _stages(out.journal) == \
        [(lab, "wall") for lab in LABELS] + [(lab, "done") for lab in LABELS]
    assert fake.jobs() == [{"walls": LABELS, "partials": []}]
    assert out.written == [str(tmp_path / n) for n in ("r.csv", "r_breakeven.csv", "e.json",
                                                       "a.json")]
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["label"] for r in doc["results"]] == LABELS
    assert doc["meta"]["torch"] == "fake" and doc["meta"]["mhabench_grid"] == GRID
    assert doc["meta"]["peak"]["skipped"] and doc["meta"]["cost_s"]["fake_pass"] > 0
    head = jr.read(out.journal)[0]
    assert head["grid"] == LABELS and head["torch"] == "fake" and head["threads"] == 1


def test_the_worker_spec_is_the_runs():
    run = RunSpec(grid=GRID, preset="fast", extras=False, threads=3,
                  point_timeout=7.0).resolve(False)
    spec = worker_spec(run)
    assert (spec.protocol, spec.extras, spec.threads, spec.point_timeout, spec.python) == \
        (run.spec.protocol, False, 3, 7.0, "")
    other = run.spec.protocol.__class__(target_ms=3.0)
    assert worker_spec(run, other).protocol == other


# --- resume ----------------------------------------------------------------------------------------

def _keep(journal: Path, keep) -> None:
    """Keep the header and the entries ``keep(entry)`` says (as a killed run would leave)."""
    lines = journal.read_text().splitlines()
    kept = [lines[0]] + [x for x in lines[1:] if keep(json.loads(x))]
    journal.write_text("\n".join(kept) + "\n")


def test_resume_measures_only_what_is_missing(fake, tmp_path):
    _first_run(fake, tmp_path)
    j = tmp_path / "j.jsonl"
    # point 0 done, point 1 wall only, points 2 and 3 never reached
    _keep(j, lambda e: e["label"] == LABELS[0] or (e["label"] == LABELS[1]
                                                   and e["stage"] == "wall"))
    told = Told()
    out = execute(_run(fake), _outputs(tmp_path), j, resume=True, reporter=told)
    assert fake.jobs()[-1] == {"walls": LABELS[2:], "partials": [LABELS[1]]}
    assert (out.skipped, out.measured) == (1, 5) and told.started_with[1] == 5
    assert [r.point for r in out.results] == POINTS and all(r.stage == "done" for r in out.results)
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["label"] for r in doc["results"]] == LABELS


def test_resume_of_a_finished_journal_measures_nothing(fake, tmp_path):
    first = _first_run(fake, tmp_path)
    (tmp_path / "a.json").unlink()
    out = execute(_run(fake), _outputs(tmp_path), tmp_path / "j.jsonl", resume=True)
    assert (out.measured, out.skipped) == (0, 4) and len(fake.jobs()) == 1, "no job sent"
    assert [r.record() for r in out.results] == [r.record() for r in first.results]
    assert (tmp_path / "a.json").is_file(), "the files are rebuilt from the journal"


def _fail(journal: Path, label: str) -> None:
    lines = journal.read_text().splitlines()
    out = [lines[0]]
    for x in lines[1:]:
        e = json.loads(x)
        if e["label"] == label and e["stage"] == "done":
            e["record"].update(status="error", message="worker killed by SIGSEGV", rounds={})
        out.append(json.dumps(e))
    journal.write_text("\n".join(out) + "\n")


def test_retry_failed_measures_the_failed_points_again(fake, tmp_path):
    _first_run(fake, tmp_path)
    j = tmp_path / "j.jsonl"
    _fail(j, LABELS[2])
    out = execute(_run(fake), _outputs(tmp_path), j, resume=True)
    assert out.results[2].status == "error" and out.measured == 0 and len(fake.jobs()) == 1
    out = execute(_run(fake), _outputs(tmp_path), j, resume=True, retry_failed=True)
    assert fake.jobs()[-1] == {"walls": [LABELS[2]], "partials": []}
    assert (out.skipped, out.measured) == (3, 2)
    assert [r.status for r in out.results] == ["ok"] * 4
    assert json.loads((tmp_path / "e.json").read_text()) == {}


@pytest.mark.parametrize("change, words", [
    ({"grid": "smoke;seed=1/2"}, "seed is 26214 there, 1 here"),
    ({"grid": "smoke;block=4/2"}, "block_size is 2 there, 4 here"),
    ({"threads": 2}, "threads is 1 there, 2 here"),
    ({"preset": "fast"}, "protocol "),
    ({"grid": "smoke/4"}, "grid is 4 points from"),
    ({"extras": True}, "extras is False there, True here"),
    ({"dtype": "bf16"}, "dtype is 'float32' there, 'bfloat16' here"),
])
def test_a_journal_of_another_run_is_refused_naming_the_setting(fake, tmp_path, change, words):
    _first_run(fake, tmp_path)
    j = tmp_path / "j.jsonl"
    before = j.read_bytes()
    kw = {"grid": GRID, "device": "cpu", "preset": "check", "extras": False,
          "python": str(fake.python), **change}
    run = RunSpec(**kw).resolve(False)
    with pytest.raises(ConfigError) as early:
        check_resume(j, run)  # before anything starts
    worker = start_worker(worker_spec(run))
    with pytest.raises(ConfigError) as late:
        execute(run, _outputs(tmp_path), j, resume=True, worker=worker)
    for ei in (early, late):
        msg = str(ei.value)
        assert msg.startswith(f"{j}: --resume refused, another run: ") and words in msg, msg
        assert "\n" not in msg
    assert worker.proc.poll() is not None, "the worker is stopped"
    assert j.read_bytes() == before and len(fake.jobs()) == 1


def test_a_journal_of_another_build_is_refused_once_the_worker_says_which(fake, tmp_path,
                                                                         monkeypatch):
    _first_run(fake, tmp_path)
    j = tmp_path / "j.jsonl"
    check_resume(j, _run(fake))  # what was asked is the same
    monkeypatch.setenv("FAKE_TORCH", "2.99.0")
    with pytest.raises(ConfigError, match="torch is 'fake' there, '2.99.0' here"):
        execute(_run(fake), _outputs(tmp_path), j, resume=True)


def test_a_second_run_on_a_locked_journal_is_refused(fake, tmp_path):
    _first_run(fake, tmp_path)
    j = tmp_path / "j.jsonl"
    holder = jr.Journal.resume(j, jr.read(j)[0])  # another run writing it
    try:
        before = j.read_bytes()
        for resume in (True, False):
            with pytest.raises(ConfigError, match="in use by another run"):
                execute(_run(fake), _outputs(tmp_path), j, resume=resume)
        assert j.read_bytes() == before and len(fake.jobs()) == 1
    finally:
        holder.close()
    execute(_run(fake), _outputs(tmp_path), j, resume=True)  # free again


def test_a_run_holds_its_journals_lock_until_it_ends(fake, tmp_path):
    j = tmp_path / "j.jsonl"
    refused = []

    class Second(Reporter):
        def advanced(self, label, stage):
            try:
                jr.Journal.resume(j, jr.read(j)[0]).close()
            except ConfigError as exc:
                refused.append(str(exc))

    execute(_run(fake), _outputs(tmp_path), j, reporter=Second())
    assert len(refused) == 8 and all("in use by another run" in t for t in refused)
    jr.Journal.resume(j, jr.read(j)[0]).close()


# --- stops and failures ------------------------------------------------------------------------------

def test_an_interrupted_run_keeps_what_it_finished_and_can_be_resumed(fake, tmp_path):
    class Interrupt(Reporter):
        def advanced(self, label, stage):
            if label == LABELS[1]:
                raise KeyboardInterrupt

    j = tmp_path / "j.jsonl"
    out = execute(_run(fake), _outputs(tmp_path), j, reporter=Interrupt())
    assert out.stopped == signal.SIGINT and not out.failure
    assert _stages(j) == [(LABELS[0], "wall"), (LABELS[1], "wall")]
    assert [r["label"] for r in json.loads((tmp_path / "a.json").read_text())["results"]] == \
        LABELS[:2], "the files hold what the journal holds"
    out = execute(_run(fake), _outputs(tmp_path), j, resume=True)
    assert fake.jobs()[-1] == {"walls": LABELS[2:], "partials": LABELS[:2]}
    assert out.measured == 6 and all(r.stage == "done" for r in out.results)


def test_sigusr1_rebuilds_the_files_while_the_run_goes_on(fake, tmp_path):
    csv = tmp_path / "r.csv"
    seen = []

    class Ask(Reporter):
        def advanced(self, label, stage):
            seen.append(csv.exists() and len(csv.read_text().splitlines()) - 1)
            if len(seen) == 2:
                os.kill(os.getpid(), signal.SIGUSR1)

    out = execute(_run(fake), _outputs(tmp_path), tmp_path / "j.jsonl", reporter=Ask())
    assert seen[:3] == [False, False, 2], "rebuilt as soon as it was asked, mid-run"
    assert not out.stopped and len(csv.read_text().splitlines()) == 5


def test_the_runs_signal_handlers_are_given_back(fake, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)}
    execute(_run(fake), _outputs(tmp_path), tmp_path / "j.jsonl")
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_sigterm_stops_the_run_and_keeps_what_it_finished(fake, tmp_path):
    class Term(Reporter):
        def advanced(self, label, stage):
            if stage == "done":
                os.kill(os.getpid(), signal.SIGTERM)

    j = tmp_path / "j.jsonl"
    out = execute(_run(fake), _outputs(tmp_path), j, reporter=Term())
    assert out.stopped == signal.SIGTERM
    assert _stages(j)[-1] == (LABELS[0], "done") and len(_stages(j)) == 5
    assert len(out.results) == 4 and out.results[0].stage == "done"


def test_a_worker_that_dies_at_once_is_a_failure_and_the_files_are_still_written(fake, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("FAKE_EXIT_AT_START", "1")
    out = execute(_run(fake), _outputs(tmp_path), tmp_path / "j.jsonl")
    assert "died before its first point" in out.failure and out.results == []
    assert json.loads((tmp_path / "a.json").read_text())["results"] == []


def test_a_file_that_cannot_be_written_is_a_failure_the_journal_keeps_the_points(fake, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    outputs = jr.Outputs(csv=str(tmp_path / "taken" / "r.csv"))
    out = execute(_run(fake), outputs, tmp_path / "j.jsonl")
    assert out.failure.startswith("cannot write") and out.written == []
    assert len(out.results) == 4, "read back from the journal"
    assert len(_stages(tmp_path / "j.jsonl")) == 8


# --- checks before a run -----------------------------------------------------------------------------

def test_the_journal_is_beside_the_first_output():
    assert default_journal(jr.Outputs(csv="d/r.csv", json="e/a.json")) == Path("e/a.journal.jsonl")
    assert default_journal(jr.Outputs(csv="d/r.csv")) == Path("d/r.journal.jsonl")
    assert default_journal(jr.Outputs(errors="x/e.json")) == Path("x/e.journal.jsonl")
    assert default_journal(jr.Outputs()) is None


def test_check_journal_refuses_an_output_or_a_missing_journal(tmp_path):
    out = _outputs(tmp_path)
    with pytest.raises(ConfigError, match="--json .* is the journal itself"):
        check_journal(out.json, out, False)
    with pytest.raises(ConfigError, match="--resume .*: no such journal"):
        check_journal(tmp_path / "none.jsonl", out, True)
    with pytest.raises(ConfigError, match="is a folder"):
        check_journal(tmp_path, out, False)
    check_journal(tmp_path / "j.jsonl", out, False)


def test_check_resume_reads_the_journal_in_one_line(tmp_path):
    bad = tmp_path / "j.jsonl"
    bad.write_text("not a journal\n")
    run = RunSpec(grid=GRID, device="cpu").resolve(False)
    with pytest.raises(ConfigError, match="line 1 is not JSON"):
        check_resume(bad, run)


def test_a_point_too_large_for_the_host_is_refused(monkeypatch):
    from mhabench.measure import footprint
    big = Point(10**9, 8, 32, 4, 1, dtype="fp32", device="cpu")
    with pytest.raises(ConfigError, match=big.label):
        footprint.check([POINTS[0], big], "cpu")
    footprint.check(named_grid("smoke", "fp32", "cpu"), "cpu")  # fits anywhere
    monkeypatch.setattr(footprint, "host_available", lambda: None)
    footprint.check([big], "cpu")  # unknown capacity: nothing to hold it against


# --- the real worker -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_real_run_then_its_resume_measures_nothing(tmp_path):
    run = RunSpec(grid="smoke/4", device="cpu", preset="check", extras=False).resolve(False)
    j = tmp_path / "j.jsonl"
    out = execute(run, _outputs(tmp_path), j)
    assert not out.failure and out.measured == 4
    assert [r.status for r in out.results] == ["ok", "ok"], [r.message for r in out.results]
    assert all(r.host_work["fast"]["bytecodes"] > 0 for r in out.results)
    again = execute(run, _outputs(tmp_path), j, resume=True)
    assert (again.measured, again.skipped) == (0, 2)
    assert [r.record() for r in again.results] == [r.record() for r in out.results]
    head = jr.read(j)[0]
    assert head["torch"] and head["mhabench_source"] and head["seed"] == 26214
