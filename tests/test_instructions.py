"""Host instruction counts (mhabench.measure.instructions): the valgrind command line, reading dumps,
the sweep's bookkeeping across a crashed worker, attaching a point's counts to its result, and
``mhabench run --instructions`` (one valgrind process after the sweep, each counted point
journaled again).

Most of it runs a stand-in for valgrind (a script that writes the worker's JSON lines without
torch); the real thing, under callgrind, is exercised by the host suite's asv run
(tests/test_asv_host.py).
"""
from __future__ import annotations

import csv
import json
import math
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mhabench.commands import main
from mhabench.measure import instructions as ins
from mhabench.measure.config import ConfigError, Point, named_grid

POINTS = named_grid("smoke", "fp32", "cpu")[:3]

#: Stands in for valgrind: reads the worker's argv, writes one line per point (fast = 1000 x
#: the point's batch x seq, per call), dies before the point named in FAKE_DIE_AT (once), hangs
#: at the one named in FAKE_HANG_AT, exits before any point with FAKE_NO_TORCH set; with
#: FAKE_PAUSE it waits that long before each point and logs the dumps still on disk then.
FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    argv = sys.argv[1:]
    i = argv.index("worker")
    points_file, out_file = argv[i + 1], argv[i + 2]
    prefix = [a.split("=", 1)[1] for a in argv if a.startswith("--callgrind-out-file=")][0]
    written = [0]
    spec = json.load(open(points_file))
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({{"argv": argv, "points": len(spec["points"])}}) + "\\n")
    if os.environ.get("FAKE_NO_TORCH"):
        print("no torch here", file=sys.stderr)
        sys.exit(3)
    die, hang = os.environ.get("FAKE_DIE_AT", ""), os.environ.get("FAKE_HANG_AT", "")
    for d in spec["points"]:
        label = "B{{batch_size}}-S{{seq_len}}-E{{embed_dim}}-H{{num_heads}}-b{{beta_b}}".format(**d)
        print("mhabench-instructions: 0.0 s: point " + label, file=sys.stderr, flush=True)
        if os.environ.get("FAKE_PAUSE"):
            import glob, time
            time.sleep(float(os.environ["FAKE_PAUSE"]))
            with open(os.environ["FAKE_LOG"], "a") as log:
                log.write(json.dumps({{"dumps_on_disk": len(glob.glob(prefix + ".*"))}}) + "\\n")
        if die and label.startswith(die) and not os.path.exists(out_file + ".died"):
            open(out_file + ".died", "w").close()
            print("boom", file=sys.stderr)
            sys.exit(139)
        if hang and label.startswith(hang):
            import time
            time.sleep(60)
        n = spec["plan"]["calls"]
        per = {{p: 1000 * d["batch_size"] * d["seq_len"] * (k + 1)
               for k, p in enumerate(("fast", "slow", "slow_fair"))}}
        dumps = {{}}
        for p in per:  # as the worker does: a few dumps per path, numbered 1, 2, ...
            dumps[p] = []
            for size in (n[p] - n[p] // 2, n[p] // 2):
                written[0] += 1
                with open(prefix + "." + str(written[0]), "w") as fh:
                    fh.write("events: Ir\\nfn=(1) f\\nsummary: " + str(per[p] * size) + "\\n")
                dumps[p].append([written[0], size])
        line = {{"label": label + "-float32-cpu", "status": "ok", "message": "", "dumps": dumps}}
        with open(out_file, "a") as fh:
            fh.write(json.dumps(line) + "\\n")
    """)


@pytest.fixture
def fake_valgrind(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "valgrind"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "fake.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_worker_argv_runs_callgrind_on_the_interpreter_itself():
    argv = ins.worker_argv("p.json", "o.jsonl", "/w/cg.out")
    assert argv[0] == "valgrind" and "--tool=callgrind" in argv
    assert "--collect-atstart=no" in argv and "--callgrind-out-file=/w/cg.out" in argv
    i = argv.index(sys.executable)
    assert argv[i + 1:] == ["-m", "mhabench.measure.instructions", "worker", "p.json", "o.jsonl"]
    assert not any(a.startswith("--") for a in argv[i:])  # valgrind's options come before it
    assert ins.worker_argv("p", "o", "c", python="/usr/bin/python3.11")[argv.index(
        sys.executable)] == "/usr/bin/python3.11"


def test_worker_env_fixes_the_hash_seed_and_keeps_the_callers_path_first():
    env = ins.worker_env({"PYTHONPATH": "/plant", "PYTHONHASHSEED": "random", "X": "1"})
    assert env["PYTHONHASHSEED"] == ins.HASH_SEED and env["X"] == "1"
    parts = env["PYTHONPATH"].split(os.pathsep)
    assert parts[0] == "/plant"
    assert Path(parts[-1], "mhabench", "measure", "instructions.py").resolve() == \
        Path(ins.__file__).resolve()


@pytest.mark.slow  # a process importing torch and scipy
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_worker_env_leaves_the_counted_process_one_thread():
    code = ("import os, numpy, scipy.stats, torch; torch.set_num_threads(1); "
            "torch.nn.functional.linear(torch.ones(64, 64), torch.ones(64, 64)); "
            "print(len(os.listdir('/proc/self/task')))")
    out = subprocess.run([sys.executable, "-c", code], env=ins.worker_env(), text=True,
                         capture_output=True, check=True).stdout
    assert int(out) == 1, "a second thread's idle spinning would be counted"
    assert all(ins.worker_env({"OMP_NUM_THREADS": "8"})[k] == "1" for k in ins.ONE_THREAD)


def test_dump_total_reads_totals_then_summary_and_refuses_neither():
    dump = "version: 1\ncmd: python\nevents: Ir\nsummary: 123\nfn=(1) f\n1 5\ntotals: 456\n"
    assert ins.dump_total(dump) == 456
    assert ins.dump_total("events: Ir Dr\nsummary: 77 9\n") == 77
    with pytest.raises(ValueError):
        ins.dump_total("events: Ir\nfn=(1) f\n")


def test_calls_split_into_dumps_and_the_median_dump_is_the_figure():
    assert ins.split_calls(20, 4) == [5, 5, 5, 5]
    assert ins.split_calls(10, 4) == [3, 3, 2, 2] and ins.split_calls(2, 4) == [1, 1]
    assert sum(ins.split_calls(7)) == 7
    # one dump whose calls met a slow path moves it, not the figure
    assert ins.median_per_call([(500, 5), (505, 5), (900, 5), (495, 5)]) == 100.5


def test_the_parent_reads_a_points_dumps_and_deletes_them(tmp_path):
    prefix = str(tmp_path / "cg.out")
    for number, total in ((1, 500), (2, 505), (3, 900), (4, 495), (5, 60)):
        (tmp_path / f"cg.out.{number}").write_text(f"events: Ir\nsummary: {total}\n")
    line = {"label": "x", "status": "ok", "message": "",
            "dumps": {"fast": [[1, 5], [2, 5], [3, 5], [4, 5]], "slow": [[5, 2]]}}
    out = ins.resolve(line, prefix)
    assert out["instructions"] == {"fast": 100.5, "slow": 30.0}
    assert out["totals"] == {"fast": 2400, "slow": 60} and out["calls"] == {"fast": 20, "slow": 2}
    assert out["per_dump"]["fast"] == [100.0, 101.0, 180.0, 99.0] and "dumps" not in out
    assert not list(tmp_path.iterdir())
    gone = ins.resolve({"label": "y", "status": "ok", "message": "",
                        "dumps": {"fast": [[9, 5]]}}, prefix)
    assert gone["status"] == "error" and "cg.out.9" in gone["message"]
    assert gone["label"] == "y" and not gone["instructions"]


def test_the_counted_process_opens_no_dump_of_its_own(monkeypatch, tmp_path):
    """Reading a dump inside the counted process moves the next counts (the module says why):
    the worker only counts its dumps, 1, 2, ... in the order callgrind writes them."""
    import builtins

    import torch
    toggles = []
    monkeypatch.setattr(torch._C, "_valgrind_toggle", lambda: toggles.append("on"))
    monkeypatch.setattr(torch._C, "_valgrind_toggle_and_dump_stats", lambda: toggles.append("dump"))
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or
                        real_open(f, *a, **k))
    dumps = ins.Dumps()
    entry = ins.count_point(POINTS[0], {"fast": 3, "slow": 2}, 1, dumps)
    assert entry["status"] == "ok"
    assert entry["dumps"] == {"fast": [[1, 1], [2, 1], [3, 1]], "slow": [[4, 1], [5, 1]]}
    assert toggles == ["on", "dump"] * 5 and dumps.written == 5
    assert not [f for f in opened if "cg.out" in f or "callgrind" in f]


def test_read_lines_keeps_finished_points_and_drops_a_line_cut_short(tmp_path):
    f = tmp_path / "o.jsonl"
    f.write_text('{"label": "a"}\n{"label": "b"}\n{"label": "c", "sta')
    assert [d["label"] for d in ins.read_lines(str(f))] == ["a", "b"]
    assert ins.read_lines(str(tmp_path / "missing")) == []


def test_cuda_points_are_refused_unless_allowed():
    cuda = [Point(2, 8, 32, 4, 1, dtype="fp16", device="cuda")]
    with pytest.raises(ConfigError, match="CPU only"):
        ins.check_points(cuda)
    ins.check_points(cuda, allow_cuda=True)
    ins.check_points(POINTS)


def test_missing_valgrind_is_one_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="valgrind not found"):
        ins.sweep(POINTS)


@pytest.mark.parametrize("calls", [{"fast": 0}, {"fast": 1.5}, {"slow": True}])
def test_plan_refuses_bad_call_counts(calls):
    with pytest.raises(ConfigError):
        ins.Plan(calls=calls)


def test_sweep_is_one_process_for_the_grid(fake_valgrind):
    seen = []
    out = ins.sweep(POINTS, on_point=lambda label, e: seen.append(label))
    meta = out.pop("")
    assert list(out) == seen == [p.label for p in POINTS]
    assert len(_calls(fake_valgrind)) == 1 and meta["restarts"] == 0
    for p in POINTS:
        assert out[p.label]["instructions"]["fast"] == 1000.0 * p.batch_size * p.seq_len
    assert meta["calls"] == ins.CALLS


def test_a_points_dumps_are_read_while_the_worker_goes_on(fake_valgrind, monkeypatch):
    monkeypatch.setattr(ins, "POLL_S", 0.05)
    monkeypatch.setenv("FAKE_PAUSE", "0.5")
    seen = []
    out = ins.sweep(POINTS, on_point=lambda label, e: seen.append((label, time.monotonic())))
    on_disk = [c["dumps_on_disk"] for c in _calls(fake_valgrind) if "dumps_on_disk" in c]
    assert on_disk == [0] * len(POINTS)  # the point before's were read and deleted meanwhile
    assert out[POINTS[-1].label]["instructions"]["fast"] == 1000.0 * POINTS[-1].batch_size * \
        POINTS[-1].seq_len
    assert seen[1][1] - seen[0][1] >= 0.3  # each point seen as it finished, not all at the end


def test_a_crashed_worker_loses_its_point_only_and_restarts_at_the_next(fake_valgrind,
                                                                         monkeypatch):
    victim = POINTS[1]
    monkeypatch.setenv("FAKE_DIE_AT", victim.label.rsplit("-", 2)[0])
    out = ins.sweep(POINTS)
    meta = out.pop("")
    assert meta["restarts"] == 1
    assert [out[p.label]["status"] for p in POINTS] == ["ok", "error", "ok"]
    assert "exit status 139" in out[victim.label]["message"] and "boom" in out[victim.label]["message"]
    assert [c["points"] for c in _calls(fake_valgrind)] == [3, 1]  # restarted after the victim
    assert out[POINTS[2].label]["instructions"]["slow"] == 2000.0 * POINTS[2].batch_size * \
        POINTS[2].seq_len


def test_a_worker_dead_before_any_point_fails_them_all_at_once(fake_valgrind, monkeypatch):
    monkeypatch.setenv("FAKE_NO_TORCH", "1")
    out = ins.sweep(POINTS)
    meta = out.pop("")
    assert len(_calls(fake_valgrind)) == 1 and meta["restarts"] == 0
    assert {e["message"] for e in out.values()} == {"worker died (exit status 3): no torch here"}
    assert list(out) == [p.label for p in POINTS]


@pytest.mark.slow  # waits out its 3 s limit
def test_a_sweep_past_its_limit_is_killed_and_keeps_what_it_finished(fake_valgrind, monkeypatch):
    monkeypatch.setenv("FAKE_HANG_AT", POINTS[1].label.rsplit("-", 2)[0])
    out = ins.sweep(POINTS, ins.Plan(timeout_s=3))
    meta = out.pop("")
    assert meta["seconds"] < 30
    assert out[POINTS[0].label]["status"] == "ok"
    for p in POINTS[1:]:
        assert out[p.label] == {**ins._error("not reached within 3 s")}


@pytest.mark.slow
def test_run_instructions_writes_the_counts_to_csv_and_json(fake_valgrind, tmp_path, capsys):
    csv_path, json_path = tmp_path / "o.csv", tmp_path / "o.json"
    rc = main(["run", "--device", "cpu", "--grid", "smoke/4", "--preset", "check",
               "--no-extras", "-q", "--instructions", "--save-path", str(csv_path),
               "--json", str(json_path)])
    assert rc == 0, capsys.readouterr()
    rows = list(csv.DictReader(csv_path.open()))
    doc = json.loads(json_path.read_text())
    assert len(rows) == len(doc["results"]) == 2
    for row, res in zip(rows, doc["results"]):
        p = res["point"]
        expect = 1000.0 * p["batch_size"] * p["seq_len"]
        assert float(row["instr_fast"]) == expect and float(row["instr_slow_fair"]) == 3 * expect
        assert res["metrics"]["instr_slow"] == 2 * expect
        assert res["instructions"]["fast"] == expect
    assert doc["meta"]["instructions"]["restarts"] == 0
    assert "instructions" in doc["meta"]["cost_s"]
    assert len(_calls(fake_valgrind)) == 1
    journal = [json.loads(x) for x in (tmp_path / "o.journal.jsonl").read_text().splitlines()[1:]]
    labels = [r["label"] for r in doc["results"]]
    assert [(e["label"], e["stage"]) for e in journal] == \
        [(lab, "wall") for lab in labels] + [(lab, "done") for lab in labels] * 2, \
        "each point journaled a third time, with its counts"
    assert all(e["record"]["instructions"] for e in journal[-2:])


def test_run_instructions_without_valgrind_is_one_line_and_writes_nothing(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setattr(ins.shutil, "which", lambda name: None)
    out = tmp_path / "o.csv"
    rc = main(["run", "--grid", "smoke", "--instructions", "--save-path", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["mhabench: error: valgrind not found (instruction counts need "
                               "it: apt-get install -y valgrind)"]
    assert not out.exists()


def test_results_without_counts_have_nan_instruction_figures():
    from mhabench.catalogue import csv_columns
    from mhabench.measure.results import Result, csv_row
    r = Result(POINTS[0])
    m = r.metrics()
    assert all(math.isnan(m[f"instr_{p}"]) for p in ("fast", "slow", "slow_fair"))
    r.instructions = {"fast": 5.0}
    assert r.metrics()["instr_fast"] == 5.0  # the metrics cache sees the new counts
    assert csv_row(r)[csv_columns().index("instr_fast")] == "5"


def test_attach_stores_a_points_counts_or_a_note():
    from mhabench.measure.results import Result
    r = Result(POINTS[0], rounds={"fast": [1.0]})
    ins.attach(r, {"status": "ok", "instructions": {"fast": 100.5, "slow": 30.0}})
    assert r.instructions == {"fast": 100.5, "slow": 30.0} and r.message == ""
    failed = Result(POINTS[1], rounds={"fast": [1.0]}, message="fp32 reference: x")
    ins.attach(failed, ins._error("worker died (exit status 139)"))
    assert failed.instructions == {} and failed.status == "ok"
    assert failed.message == "fp32 reference: x; instructions: worker died (exit status 139)"
    bare = Result(POINTS[2])
    ins.attach(bare, ins._error("not reached within 3 s"))
    assert bare.message == "instructions: not reached within 3 s"


def test_run_instructions_on_cuda_is_refused_before_anything(tmp_path, capsys):
    rc = main(["run", "--device", "cuda", "--instructions", "--json", str(tmp_path / "a.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--instructions counts on a CPU only" in err[0]
    assert not (tmp_path / "a.json").exists()


def test_the_interpreter_counted_can_be_another(fake_valgrind):
    other = "/opt/build-b/bin/python3"  # the stand-in reads its argv only
    out = ins.sweep(POINTS[:1], ins.Plan(python=other))
    assert out[POINTS[0].label]["status"] == "ok"
    argv = _calls(fake_valgrind)[0]["argv"]
    assert other in argv and sys.executable not in argv
