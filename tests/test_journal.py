"""The format-2 journal: a header line, then one ``{"label", "stage", "record"}`` line per pass;
resume, latest and grid order; a line cut short; older or foreign files refused in one line;
the first differing setting named; the lock against a second writer; the files rebuilt from it.
(No sweep here.)"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from mhabench.measure.config import ConfigError, named_grid
from mhabench.measure.protocol import PRESETS, Protocol
from mhabench.measure.results import DONE, ERROR, WALL, Result, csv_text
from mhabench.run import journal as jr

POINTS = named_grid("smoke", "fp32", "cpu")
META = {"torch": "2.13.0", "torch_git": "a" * 40, "variant": "cpu", "mhabench_source": "abc",
        "protocol": asdict(PRESETS["check"])}


def _result(point=POINTS[0], stage=DONE, **kw) -> Result:
    base = dict(rounds={"fast": [2.0, 2.2], "slow": [3.0, 3.1]}, lengths=[8, 2], padding=0.375,
                max_abs_err=1e-6, fast_path=True, stage=stage)
    return Result(point, **{**base, **kw})


def _head(points=POINTS, meta=META, threads=1, extras=True, instructions=False) -> dict:
    return jr.header(jr.fingerprint(points, meta, threads, extras, instructions), meta)


def _journal(tmp_path, n=3, points=POINTS, stage=DONE) -> tuple[Path, dict]:
    head = _head(points)
    j = jr.Journal.create(tmp_path / "j.jsonl", head)
    for p in points[:n]:
        j.append(p.label, stage, _result(p, stage=stage).record())
    j.close()
    return tmp_path / "j.jsonl", head


# --- the format ---------------------------------------------------------------------------------

def test_a_journal_is_a_header_line_then_one_line_per_pass(tmp_path):
    path, head = _journal(tmp_path, n=2)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == json.loads(json.dumps(head)) and lines[0]["journal"] == jr.VERSION == 2
    assert lines[0]["grid"] == [p.label for p in POINTS] and lines[0]["meta"] == META
    assert [(e["label"], e["stage"]) for e in lines[1:]] == [(p.label, DONE) for p in POINTS[:2]]
    assert lines[1]["record"] == json.loads(json.dumps(_result(POINTS[0]).record()))
    assert lines[1]["record"]["v"] == 2


def test_the_fingerprint_holds_every_setting_that_changes_a_figure():
    fp = jr.fingerprint(POINTS, META, 2, False, True)
    assert tuple(fp) == jr.FINGERPRINT
    assert (fp["device"], fp["dtype"], fp["block_size"], fp["seed"]) == \
        ("cpu", "float32", 2, POINTS[0].seed)
    assert (fp["threads"], fp["extras"], fp["instructions"]) == (2, False, True)
    assert fp["protocol"] == META["protocol"] and fp["torch_git"] == META["torch_git"]
    assert set(jr.ASKED) == set(jr.FINGERPRINT) - {"torch", "torch_git", "variant",
                                                   "mhabench_source"}


def test_read_gives_header_entries_and_the_bytes_of_whole_lines(tmp_path):
    path, head = _journal(tmp_path)
    got, entries, good = jr.read(path)
    assert got == json.loads(json.dumps(head)) and good == path.stat().st_size
    assert [e["label"] for e in entries] == [p.label for p in POINTS[:3]]
    back = jr.results_of(entries)
    assert back[0].rounds == _result().rounds and back[0].padding == 0.375


def test_a_cut_short_last_line_is_dropped_and_cut_off_on_resume(tmp_path):
    path, head = _journal(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"label": "B4-S1')
    _, entries, good = jr.read(path)
    assert len(entries) == 3 and good == len(whole)
    j = jr.Journal.resume(path, head)
    assert len(j.entries) == 3
    j.append(POINTS[3].label, WALL, _result(POINTS[3], stage=WALL).record())
    j.close()
    assert path.read_bytes().startswith(whole) and b"B4-S1\n" not in path.read_bytes()
    assert [e["label"] for e in jr.read(path)[1]] == [p.label for p in POINTS[:4]]


@pytest.mark.parametrize("text, needle", [
    (b"", "empty journal"), (b"\n", "line 1 is not JSON"),
    (b'{"journal": 2, "grid": []}\nnot json\n{"label": "x"}\n', "line 2 is not JSON"),
    (b'{"journal": 2, "grid": []}\n[1, 2]\n', "line 2 is not a JSON object"),
    (b'{"journal": 2, "grid": []}\n{"label": "x", "stage": "half", "record": {}}\n',
     "line 2 is not a journal entry"),
    (b'{"journal": 2, "grid": []}\n{"label": "x", "stage": "done"}\n',
     "line 2 is not a journal entry"),
    (b'{"journal": 3, "grid": []}\n', "not an mhabench journal"),
    (b'{"grid": []}\n', "not an mhabench journal"),
    (b'{"journal": 2, "grid": "B2"}\n', "not an mhabench journal"),
])
def test_a_malformed_journal_is_one_line_naming_the_file_and_the_line(tmp_path, text, needle):
    path = tmp_path / "j.jsonl"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as ei:
        jr.read(path)
    msg = str(ei.value)
    assert needle in msg and str(path) in msg and "\n" not in msg, msg


def test_a_format_1_journal_is_refused_in_one_line(tmp_path):
    """Format 1 kept a doc, a CSV row and a record per line: it cannot be resumed."""
    path = tmp_path / "old.jsonl"
    old_head = {"journal": 1, "grid": [POINTS[0].label], "protocol": {}}
    old_line = {"label": POINTS[0].label, "doc": {}, "row": [], "record": {}}
    path.write_text(json.dumps(old_head) + "\n" + json.dumps(old_line) + "\n")
    for call in (lambda: jr.read(path), lambda: jr.Journal.resume(path, _head())):
        with pytest.raises(ConfigError) as ei:
            call()
        msg = str(ei.value)
        assert "format 1" in msg and "start the run again" in msg and "\n" not in msg
        assert msg.startswith(str(path))


def test_a_missing_journal_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        jr.read(tmp_path / "none.jsonl")
    with pytest.raises(ConfigError, match="is a folder"):
        jr.read(tmp_path)


# --- latest, ordered, resume -------------------------------------------------------------------

def test_the_latest_line_of_a_label_is_the_point_and_ordered_follows_the_grid(tmp_path):
    j = jr.Journal.create(tmp_path / "j.jsonl", _head())
    j.append(POINTS[2].label, WALL, _result(POINTS[2], stage=WALL).record())
    j.append(POINTS[0].label, WALL, _result(POINTS[0], stage=WALL).record())
    j.append(POINTS[2].label, DONE, _result(POINTS[2], host_work={"fast": {"aten_ops": 3}})
             .record())
    latest = j.latest()
    assert set(latest) == {POINTS[0].label, POINTS[2].label}
    assert latest[POINTS[2].label]["stage"] == DONE and latest[POINTS[0].label]["stage"] == WALL
    assert [(e["label"], e["stage"]) for e in j.ordered()] == \
        [(POINTS[0].label, WALL), (POINTS[2].label, DONE)]
    assert jr.results_of(j.ordered())[1].host_work == {"fast": {"aten_ops": 3}}
    j.close()


def test_an_entry_of_a_label_outside_the_grid_comes_last(tmp_path):
    j = jr.Journal.create(tmp_path / "j.jsonl", _head(POINTS[:2]))
    j.append(POINTS[5].label, DONE, _result(POINTS[5]).record())
    j.append(POINTS[1].label, DONE, _result(POINTS[1]).record())
    assert [e["label"] for e in j.ordered()] == [POINTS[1].label, POINTS[5].label]
    j.close()


def test_resume_reads_every_entry_and_appends_after_them(tmp_path):
    path, head = _journal(tmp_path, n=2, stage=WALL)
    j = jr.Journal.resume(path, head)
    assert j.header == json.loads(json.dumps(head))
    assert [e["stage"] for e in j.entries] == [WALL, WALL]
    j.append(POINTS[0].label, DONE, _result(POINTS[0]).record(), sync=False)
    j.sync()
    j.close()
    j = jr.Journal.resume(path, head)
    assert len(j.entries) == 3 and j.latest()[POINTS[0].label]["stage"] == DONE
    assert [e["label"] for e in j.ordered()] == [POINTS[0].label, POINTS[1].label]
    j.close()


def test_each_line_is_on_disk_once_append_returns(tmp_path):
    """Flushed to the OS at once: a killed writer cannot lose a line it appended."""
    j = jr.Journal.create(tmp_path / "j.jsonl", _head())
    j.append(POINTS[0].label, WALL, _result(stage=WALL).record(), sync=False)
    _, entries, _ = jr.read(tmp_path / "j.jsonl")  # read while still open, as another process would
    assert [e["label"] for e in entries] == [POINTS[0].label]
    j.close()


def test_create_replaces_an_older_journal_and_refuses_anything_else(tmp_path):
    path, _ = _journal(tmp_path, n=3)
    j = jr.Journal.create(path, _head(POINTS[:2]))
    j.close()
    head, entries, _ = jr.read(path)
    assert entries == [] and head["grid"] == [p.label for p in POINTS[:2]]
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    with pytest.raises(ConfigError, match="not an mhabench journal; not replaced"):
        jr.Journal.create(other, _head())
    assert other.read_text() == "my notes\n"
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    jr.Journal.create(empty, _head()).close()  # an empty file is taken
    assert jr.read(empty)[0]["journal"] == 2


def test_create_makes_the_folder(tmp_path):
    j = jr.Journal.create(tmp_path / "a" / "b" / "j.jsonl", _head())
    j.close()
    assert (tmp_path / "a" / "b" / "j.jsonl").is_file()


# --- mismatch: which setting differs --------------------------------------------------------------

def test_the_same_run_matches():
    assert jr.mismatch(_head(), _head()) == ""
    assert jr.mismatch(_head(), {**_head(), "meta": {"started": "later"}}) == "", \
        "the metadata is no setting"


@pytest.mark.parametrize("key, there, here, words", [
    ("torch", "2.12.0", "2.13.0", "torch is '2.12.0' there, '2.13.0' here"),
    ("torch_git", "f" * 40, "a" * 40, "torch_git is 'fffffffff"),
    ("variant", "cu124", "cpu", "variant is 'cu124' there, 'cpu' here"),
    ("mhabench_source", "old", "new", "mhabench_source is 'old' there, 'new' here"),
    ("device", "cuda", "cpu", "device is 'cuda' there, 'cpu' here"),
    ("dtype", "float16", "float32", "dtype is 'float16' there, 'float32' here"),
    ("block_size", 4, 2, "block_size is 4 there, 2 here"),
    ("seed", 1, 26214, "seed is 1 there, 26214 here"),
    ("threads", 2, 1, "threads is 2 there, 1 here"),
    ("extras", False, True, "extras is False there, True here"),
    ("instructions", True, False, "instructions is True there, False here"),
])
def test_mismatch_names_the_setting_with_its_value_there_and_here(key, there, here, words):
    new = _head()
    old = {**new, key: there}
    new[key] = here
    got = jr.mismatch(old, new)
    assert got.startswith(words) and got.endswith(" here") and len(got) < 120, got


def test_mismatch_names_the_protocols_sub_key():
    old, new = _head(), _head()
    old["protocol"] = {**new["protocol"], "target_ms": 50.0, "min_rounds": 10}
    assert jr.mismatch(old, new) == "protocol min_rounds is 10 there, 2 here"
    old["protocol"] = {k: v for k, v in new["protocol"].items() if k != "mode"}
    assert jr.mismatch(old, new) == "protocol mode is None there, 'windows' here"
    assert jr.mismatch({**new, "protocol": None}, new).startswith("protocol is None there, {")


def test_mismatch_says_how_the_grids_differ():
    old, new = _head(POINTS[:3]), _head(POINTS[2:4])
    assert jr.mismatch(old, new) == \
        f"grid is 3 points from {POINTS[0].label} there, 2 points from {POINTS[2].label} here"
    assert jr.mismatch({**new, "grid": []}, new).startswith("grid is 0 points there")


def test_mismatch_names_the_first_setting_in_fingerprint_order_and_keeps_it_short():
    old = {**_head(), "seed": 1, "threads": 8, "dtype": "float16"}
    assert jr.mismatch(old, _head()).startswith("dtype is ")
    long = {**_head(), "mhabench_source": "x" * 100}
    assert len(jr.mismatch(long, _head())) < 120


def test_mismatch_on_the_asked_keys_ignores_the_build():
    old = {**_head(), "torch": "2.1.2", "torch_git": "0" * 40}
    assert jr.mismatch(old, _head(), jr.ASKED) == ""
    assert jr.mismatch({**old, "seed": 7}, _head(), jr.ASKED) == "seed is 7 there, 26214 here"


@pytest.mark.parametrize("key, value, words", [
    ("torch", "0.1", "torch is '2.13.0' there, '0.1' here"),
    ("seed", 1, "seed is 26214 there, 1 here"),
    ("protocol", {**asdict(Protocol())}, "protocol "), ("extras", False, "extras"),
    ("block_size", 4, "block_size is 2 there, 4 here"), ("threads", 3, "threads is 1 there"),
])
def test_resume_refuses_a_journal_of_another_run_in_one_line(tmp_path, key, value, words):
    path, head = _journal(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as ei:
        jr.Journal.resume(path, {**head, key: value})
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg and "--resume refused" in msg and words in msg
    assert path.read_bytes() == before, "nothing written"
    jr.Journal.resume(path, head).close()  # and not left locked


# --- the lock -----------------------------------------------------------------------------------

def test_a_journal_being_written_refuses_a_second_writer(tmp_path):
    path, head = _journal(tmp_path)
    first = jr.Journal.resume(path, head)
    before = path.read_bytes()
    for second in (lambda: jr.Journal.resume(path, head), lambda: jr.Journal.create(path, head)):
        with pytest.raises(ConfigError) as ei:
            second()
        assert "in use by another run" in str(ei.value) and str(path) in str(ei.value)
    assert path.read_bytes() == before, "the refused writer changed nothing"
    first.append(POINTS[3].label, DONE, _result(POINTS[3]).record())
    first.close()
    jr.Journal.resume(path, head).close()  # the lock went with the first writer


def test_the_lock_holds_against_another_process(tmp_path):
    path, head = _journal(tmp_path)
    code = ("import sys; from mhabench.run import journal as jr; from mhabench.measure.config "
            "import ConfigError\ntry:\n    jr.Journal.resume(sys.argv[1], jr.read(sys.argv[1])[0])"
            "\nexcept ConfigError as e:\n    print(e); sys.exit(9)")
    root = str(Path(__file__).resolve().parents[1])
    j = jr.Journal.resume(path, head)
    try:
        got = subprocess.run([sys.executable, "-c", code, str(path)], cwd=root,
                             capture_output=True, text=True, timeout=60)
    finally:
        j.close()
    assert got.returncode == 9 and "in use by another run" in got.stdout, got.stderr
    again = subprocess.run([sys.executable, "-c", code, str(path)], cwd=root,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr


# --- the files built from it ---------------------------------------------------------------------

def test_outputs_beside_put_the_breakeven_csv_beside_the_csv_or_the_json(tmp_path):
    o = jr.Outputs.beside(str(tmp_path / "r.csv"), str(tmp_path / "e.json"),
                          str(tmp_path / "all.json"))
    assert o.breakeven == str(tmp_path / "r_breakeven.csv")
    assert jr.Outputs.beside(json_path="d/all.json").breakeven == "d/all_breakeven.csv"
    assert jr.Outputs.beside(errors="e.json").breakeven is None
    assert jr.Outputs.beside() == jr.Outputs()
    assert list(o.named()) == ["--save-path", "--error-save-path", "--json", "breakeven CSV"]


def test_rebuild_writes_files_that_agree(tmp_path):
    path, _ = _journal(tmp_path, n=2)
    _, entries, _ = jr.read(path)
    failed = Result(POINTS[5], status=ERROR, message="worker killed by SIGSEGV").record()
    entries.append({"label": POINTS[5].label, "stage": DONE, "record": failed})
    out = jr.Outputs(str(tmp_path / "r.csv"), str(tmp_path / "e.json"), str(tmp_path / "a.json"),
                     str(tmp_path / "b.csv"))
    results = jr.rebuild(entries, {"x": 1}, out)
    assert [r.point for r in results] == [POINTS[0], POINTS[1], POINTS[5]]
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["meta"] == {"x": 1} and len(doc["results"]) == 3
    assert doc["errors"] == json.loads((tmp_path / "e.json").read_text()) == {POINTS[5].key: 1}
    assert (tmp_path / "r.csv").read_text() == csv_text(results)
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4
    assert (tmp_path / "b.csv").read_text().startswith("batch_size")
    assert [r["label"] for r in doc["results"]] == [p.label for p in (POINTS[0], POINTS[1],
                                                                        POINTS[5])]
    assert doc["results"][0]["rounds_us"] == _result().rounds
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.csv", "e.json", "j.jsonl", "r.csv"]


def test_rebuild_writes_only_what_was_asked(tmp_path):
    path, _ = _journal(tmp_path, n=1)
    jr.rebuild(jr.read(path)[1], {}, jr.Outputs(errors=str(tmp_path / "e.json")))
    assert sorted(os.listdir(tmp_path)) == ["e.json", "j.jsonl"]
    assert json.loads((tmp_path / "e.json").read_text()) == {}


def test_the_json_is_strict_json_with_the_metadata_and_one_entry_per_point(tmp_path):
    r = _result(max_abs_err_fp32=math.nan)
    text = jr.json_text([r, Result(POINTS[1], status=ERROR)], {"device": "cpu", "v": math.inf})
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert doc["meta"] == {"device": "cpu", "v": None}
    assert doc["errors"] == {POINTS[1].key: 1}
    assert [d["status"] for d in doc["results"]] == ["ok", "error"]
    assert doc["results"][0]["metrics"]["max_abs_err_fp32"] is None


def test_every_result_gets_the_runs_matmul_peak(tmp_path):
    path, _ = _journal(tmp_path, n=2)
    entries = jr.read(path)[1]
    results = jr.results_of(entries, {"peak": {"tflops": 0.25}})
    assert [r.peak_tflops for r in results] == [0.25, 0.25]
    m = _result(lengths=[8, 2]).metrics()
    m2 = results[0].metrics()
    assert math.isnan(m["wall_fast_peak_fraction"])
    assert m2["wall_fast_peak_fraction"] == pytest.approx(m2["wall_fast_tflops"] / 0.25)
    assert all(math.isnan(r.peak_tflops) for r in jr.results_of(entries, {"peak": {
        "tflops": "n/a"}}))


def test_stop_signals_wait_until_the_files_are_written():
    got = []
    old = signal.signal(signal.SIGHUP, lambda s, f: got.append("delivered"))
    try:
        with jr.held_signals():
            os.kill(os.getpid(), signal.SIGHUP)
            got.append("inside")
        got.append("after")
    finally:
        signal.signal(signal.SIGHUP, old)
    assert got == ["inside", "delivered", "after"]
    assert signal.getsignal(signal.SIGHUP) is old
