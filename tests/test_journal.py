"""The journal, the worker's command line and the checks made before a run (no sweep here)."""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from mhabench.run import journal as jr
from mhabench.measure.config import ConfigError, Point, named_grid
from mhabench.measure.results import ERROR, Result
from mhabench.run.supervise import WorkerSpec, describe_exit, worker_command
from mhabench.measure.protocol import Protocol

POINTS = named_grid("smoke", "fp32", "cpu")


def _result(point=POINTS[0], **kw) -> Result:
    base = dict(rounds={"fast": [2.0, 2.2], "slow": [3.0, 3.1]}, lengths=[8, 2], padding=0.375,
                max_abs_err=1e-6, fast_path=True, peak_mem={"fast": 1024.0})
    return Result(point, **{**base, **kw})


# --- Result.from_json ---------------------------------------------------------------------------
def test_from_json_round_trips_every_field_nan_included():
    r = _result(max_abs_err_fp32=math.nan, peak_tflops=1.5)
    back = Result.from_json(json.loads(json.dumps(r.to_record())))
    for name in r.__dataclass_fields__:
        a, b = getattr(r, name), getattr(back, name)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name


def test_from_json_takes_fields_it_does_not_know_by_name():
    """A field added to Result later (per-path counts, say) comes back without any change here."""
    @dataclass
    class Grown(Result):
        host_work: dict[str, dict] = field(default_factory=dict)
        instructions: dict[str, float] = field(default_factory=dict)

    g = Grown(POINTS[1], status="ok", host_work={"fast": {"aten": 12}},
              instructions={"fast": 1.5e6})
    back = Grown.from_json(json.loads(json.dumps(g.to_record())))
    assert back.host_work == {"fast": {"aten": 12}} and back.instructions == {"fast": 1.5e6}
    assert back.point == POINTS[1]


def test_from_json_reads_the_run_json_entries_too():
    r = _result()
    back = Result.from_json(r.to_json())
    assert back.rounds == r.rounds and back.status == r.status and back.lengths == r.lengths
    assert math.isnan(back.padding)  # not a field of the --json entry: left at its default


# --- journal lines --------------------------------------------------------------------------------
def test_entry_text_carries_the_doc_row_and_record():
    e = json.loads(jr.entry_text(_result()))
    assert e["label"] == POINTS[0].label and e["doc"] == json.loads(json.dumps(_result().to_json()))
    assert len(e["row"]) > 9 and "rounds" not in e["record"]
    (back,) = jr.results_of([e])
    assert back.rounds == _result().rounds and back.padding == 0.375


def test_a_result_that_cannot_be_serialised_becomes_a_failed_point():
    bad = _result(lengths=[object()])
    e = json.loads(jr.entry_text(bad))
    assert e["doc"]["status"] == ERROR and "serialising the result" in e["doc"]["message"]
    assert e["label"] == POINTS[0].label and e["row"]


def _journal(tmp_path, n=3, points=POINTS):
    head = jr.header({"protocol": asdict(Protocol())}, points, "float32", True)
    j = jr.Journal.create(tmp_path / "j.jsonl", head)
    for p in points[:n]:
        j.append(jr.entry_text(_result(p)))
    j.close()
    return head


def test_a_cut_short_last_line_is_dropped_and_cut_off_on_resume(tmp_path):
    head = _journal(tmp_path)
    path = tmp_path / "j.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"label": "B4-S1')
    _, entries, good = jr.read(path)
    assert len(entries) == 3 and good == len(whole)
    j = jr.Journal.resume(path, head)
    j.append(jr.entry_text(_result(POINTS[3])))
    j.close()
    assert [e["label"] for e in jr.read(path)[1]] == [p.label for p in POINTS[:4]]


def test_entries_come_out_in_grid_order(tmp_path):
    head = jr.header({"protocol": {}}, POINTS, "float32", True)
    j = jr.Journal.create(tmp_path / "j.jsonl", head)
    for p in (POINTS[2], POINTS[0]):
        j.append(jr.entry_text(_result(p)))
    assert [e["label"] for e in j.ordered()] == [POINTS[0].label, POINTS[2].label]
    j.close()


@pytest.mark.parametrize("key,value,word", [
    ("torch", "0.1", "torch version"), ("torch_git", "f" * 40, "torch build"),
    ("protocol", {"target_ms": 1}, "protocol"), ("grid", ["x"], "grid"),
    ("extras", False, "extras"), ("dtype", "float16", "dtype")])
def test_resume_refuses_a_journal_of_another_build_protocol_or_grid(tmp_path, key, value, word):
    head = _journal(tmp_path)
    with pytest.raises(ConfigError, match=word) as ei:
        jr.Journal.resume(tmp_path / "j.jsonl", {**head, key: value})
    assert "\n" not in str(ei.value) and "j.jsonl" in str(ei.value)


def test_rebuild_writes_files_that_agree(tmp_path):
    _journal(tmp_path, n=2)
    _, entries, _ = jr.read(tmp_path / "j.jsonl")
    entries.append(json.loads(jr.failed_text(POINTS[5], "worker killed by SIGSEGV")))
    out = jr.Outputs(str(tmp_path / "r.csv"), str(tmp_path / "e.json"), str(tmp_path / "a.json"),
                     str(tmp_path / "b.csv"))
    jr.rebuild(entries, {"x": 1}, out)
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["meta"] == {"x": 1} and len(doc["results"]) == 3
    assert doc["errors"] == json.loads((tmp_path / "e.json").read_text()) == {POINTS[5].key: 1}
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4
    assert (tmp_path / "b.csv").read_text().startswith("batch_size")


# --- the worker's command line --------------------------------------------------------------------
def test_worker_command_is_prefixable_and_carries_per_process_settings(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    spec = WorkerSpec(Protocol(), threads=3, prefix=("valgrind", "--tool=callgrind"))
    argv, env = worker_command(spec)
    assert argv == ["valgrind", "--tool=callgrind", sys.executable, "-m", "mhabench.run.worker"]
    root = str(Path(__file__).resolve().parents[1])
    assert env["PYTHONPATH"].split(":") == [root, "/elsewhere"] and env["OMP_NUM_THREADS"] == "3"
    assert WorkerSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize("code,words", [(-6, "SIGABRT"), (-11, "segmentation"),
                                        (-9, "out of memory"), (3, "status 3")])
def test_describe_exit(code, words):
    assert words in describe_exit(code)


# --- checks before a run ------------------------------------------------------------------------
def test_a_point_too_large_for_the_host_is_refused(monkeypatch):
    from mhabench.measure import footprint
    big = Point(10**9, 8, 32, 4, 1, dtype="fp32", device="cpu")
    with pytest.raises(ConfigError, match=big.label):
        footprint.check([POINTS[0], big], "cpu")
    footprint.check(POINTS, "cpu")  # the smoke grid fits anywhere
    monkeypatch.setattr(footprint, "host_available", lambda: None)
    footprint.check([big], "cpu")  # unknown capacity: nothing to hold it against


def test_the_suite_refuses_a_results_dir_of_another_grid(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mhabench.suite import common
    sel = common.selection({})
    conf = tmp_path / "asv.conf.json"
    conf.write_text('// comment\n{"results_dir": "res"}\n')
    common.check_results_dir(sel, {}, str(conf))  # no results yet
    (tmp_path / "res").mkdir()
    same = [[repr(v) for v in axis] for axis in sel.params]
    bench = {"x.y": {"param_names": common.PARAM_NAMES, "params": same}}
    (tmp_path / "res" / "benchmarks.json").write_text(json.dumps(bench))
    common.check_results_dir(sel, {}, str(conf))
    bench["x.y"]["params"] = [["'1'"]] * 5
    (tmp_path / "res" / "benchmarks.json").write_text(json.dumps(bench))
    with pytest.raises(ConfigError, match="another grid"):
        common.check_results_dir(sel, {}, str(conf))
