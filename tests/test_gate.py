"""The gate: its pure rule (judging a point), its reading by path (which path moved, and why),
its records (each proving its build), and its report. asv result files are written here."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asv_files import LABELS, write_result  # noqa: E402

from mhabench import catalogue as cat  # noqa: E402
from mhabench.commands import main  # noqa: E402
from mhabench.track.rule import (CAUGHT_UP, FAST_WORSE, MORE_WORK_YET_FASTER,  # noqa: E402
                                 NO_LONGER_PAYS, WORK_SHIFTED, Rule, compare, findings, judge,
                                 vouch)
from mhabench.track.stats import (allowance, point_sigma, pooled_sigma, rel_range,  # noqa: E402
                                  rel_sigma, se_of_median)

WALL = "speedup.FastOverSlow.track_wall"
FAST, SLOW = "time_per_call.WallTime.track_fast", "time_per_call.WallTime.track_slow"
OPS, SLOW_OPS = "host.HostWork.track_fast_aten_ops", "host.HostWork.track_slow_aten_ops"
INSTR = "host.Instructions.track_fast"
BYTECODES = "host.HostWork.track_fast_bytecodes"
A, B, C = "a" * 40, "b" * 40, "c" * 40


def fam(name):
    return cat.family_of(name)


# --- the estimators and the pure rule -----------------------------------------------------------
def test_families_come_from_the_catalogue():
    assert fam(WALL).name == "wall" and fam(WALL + "_fair").name == "wall"
    assert fam("speedup.FastOverSlow.track_device").floor == 0.03
    assert fam(OPS).exact and fam("host.HostWork.track_fast_bytecodes").exact
    assert fam(INSTR).name == "instructions" and fam(FAST).name == "wall"
    assert fam("speedup.Noise.track_wall") is None  # noise is support, not judged


def test_allowance_prefers_replicates_then_rounds_then_floor():
    assert allowance(0.02, 3, 1, [0.01, 0.01], 0.03, 3.0) == (
        pytest.approx(3 * 0.02 * math.sqrt(1 / 3 + 1)), "replicates")
    got, src = allowance(math.nan, 1, 1, [0.03, 0.04], 0.03, 3.0)
    assert src == "rounds" and got == pytest.approx(3 * 0.05 + 0.03)
    assert allowance(math.nan, 1, 1, [math.nan, 0.01], 0.03, 3.0) == (0.03, "floor")
    assert se_of_median(0.3, 100) == pytest.approx(0.929 * 0.03, rel=1e-3)
    assert math.isnan(se_of_median(None, 50))


def test_a_points_sigma_pools_both_builds_and_shrinks_toward_its_figures():
    s, df = point_sigma([[1.0, 1.1, 0.9], [1.0, 1.02]])
    assert df == 3
    assert s == pytest.approx(math.sqrt((2 * (0.2 / 1.693) ** 2 + (0.02 / 1.01 / 1.128) ** 2) / 3))
    assert pooled_sigma([[1.0, 1.0]], 0.02, 4.0) == pytest.approx(math.sqrt(4 * 0.02 ** 2 / 5))
    assert math.isnan(pooled_sigma([[1.0], [2.0]], 0.02, 4.0))  # no replicates: no sigma
    assert rel_range([1.0, 1.1, 0.9]) == pytest.approx(0.2)
    assert math.isnan(rel_range([1.0])) and math.isnan(rel_sigma([1.0]))


def test_judge_replicates_flag_beyond_k_sigma_of_the_difference():
    wall = fam(WALL)
    # range 3% of 3 records: sigma 1.77%; 3 sigma x sqrt(1/3 + 1) = 6.1%
    assert judge([1.0, 1.02, 0.99], [1.06], wall, Rule(floor=0.0))[0] == "ok"
    assert judge([1.0, 1.02, 0.99], [1.08], wall, Rule(floor=0.0))[0] == "regressed"
    assert judge([1.0, 1.02, 0.99], [0.92], wall, Rule(floor=0.0))[0] == "improved"
    assert judge([1.0, 1.0, 1.0], [1.03], wall, Rule())[0] == "ok"  # under the floor (5%)
    assert judge([1.0, 1.5, 0.5], [1.9], wall, Rule())[4] == 1.0  # capped at a doubling


def test_exact_counts_change_at_any_difference_and_a_failed_point_regresses():
    ops = fam(OPS)
    assert judge([228], [229], ops, Rule())[0] == "regressed"
    assert judge([228], [196], ops, Rule())[0] == "improved"
    assert judge([228], [228], ops, Rule())[0] == "ok"
    assert judge([1.0], [None], fam(WALL), Rule())[0] == "failed"
    assert judge([1.0], [math.nan], fam(WALL), Rule()) is None  # n/a after: not comparable


# --- reading by path -----------------------------------------------------------------------------
def values(fast=100.0, slow=200.0, ops=228, slow_ops=130, instr=1e6, n=3, jitter=0.01):
    """{benchmark: {point: [n records]}} at two points, fast/slow as their ratio."""
    def rec(v):
        return [v * (1 + jitter * (i - 1)) for i in range(n)]
    pts = LABELS[:2]
    return {FAST: {p: rec(fast) for p in pts}, SLOW: {p: rec(slow) for p in pts},
            WALL: {p: rec(fast / slow) for p in pts}, OPS: {p: [ops] * n for p in pts},
            SLOW_OPS: {p: [slow_ops] * n for p in pts}, INSTR: {p: [instr] * n for p in pts},
            BYTECODES: {p: [900] * n for p in pts}}


def verdicts(before, after, fail_on=(), work=None):
    found = findings(compare(before, after), fail_on, work)
    return {(f.section, f.verdict) for f in found}, any(f.fails for f in found), found


def test_an_unchanged_build_passes():
    got, fails, found = verdicts(values(), values())
    assert not fails and not found


def test_the_fast_path_made_slower_fails():
    got, fails, _ = verdicts(values(), values(fast=130.0))
    assert fails and ("fast", "regressed") in got and ("ratio", FAST_WORSE) in got


def test_one_more_fast_path_op_fails_even_where_time_cannot_tell():
    got, fails, found = verdicts(values(), values(ops=229), work={(LABELS[0], "fast"): "+neg x1"})
    assert fails and ("fast", "regressed") in got
    assert any(f.why == "+neg x1" for f in found if f.point == LABELS[0])


def test_more_fast_path_work_with_a_faster_fast_path_is_reported_not_failed():
    got, fails, _ = verdicts(values(), values(fast=80.0, instr=1.02e6))
    assert ("fast", MORE_WORK_YET_FASTER) in got and not fails


def test_a_slow_path_regression_is_reported_and_fails_only_when_asked():
    got, fails, _ = verdicts(values(), values(slow_ops=131))
    assert ("slow", "regressed") in got and not fails
    assert verdicts(values(), values(slow_ops=131), fail_on=("slow",))[1]


def test_the_slow_path_caught_up_passes_unless_asked():
    got, fails, found = verdicts(values(), values(slow=150.0))  # slow 25% faster alone
    assert ("ratio", CAUGHT_UP) in got and not fails
    why = next(f.why for f in found if f.verdict == CAUGHT_UP)
    assert "slow -25.0%" in why and "fast +0.0%" in why
    assert verdicts(values(), values(slow=150.0), fail_on=("ratio",))[1]


def test_the_fast_path_no_longer_pays_where_the_ratio_crosses_one():
    got, fails, _ = verdicts(values(fast=90.0, slow=100.0), values(fast=90.0, slow=80.0,
                                                                   slow_ops=120))
    assert ("ratio", NO_LONGER_PAYS) in got and not fails


def test_a_ratio_that_rose_with_the_slow_path_unchanged_is_the_fast_paths():
    before, after = values(), values()
    after[WALL] = {p: [v * 1.2 for v in vs] for p, vs in after[WALL].items()}
    got, fails, found = verdicts(before, after)
    assert ("ratio", FAST_WORSE) in got and fails
    assert any("unchanged" in f.why for f in found)


def test_vouch_says_the_smallest_change_seen_per_family():
    v = vouch(compare(values(), values()))
    assert v["host work"] == 0.0 and v["wall"] >= 0.05 and v["instructions"] >= 0.005


# --- records, proof and the command --------------------------------------------------------------
def track_dir(tmp_path, builds, variant=None, calibration=0.01, protocols=None, levels=None,
              pythons=None, probes=None, device=None):
    """A track dir: builds.json, asv results of each build (records r1..r3) and their record
    files. ``builds``: [(tag, commit, fast, ops, torch reported)]; ``protocols``: {tag: the
    records' protocol}, where they say one; ``levels``: {tag: per record, the us its
    calibrations read}, where they say one; ``pythons``: {tag: the records' Python};
    ``probes``: {tag: per record, per point of LABELS, the us its host probe read};
    ``device``: the records' device, where they name one."""
    d = tmp_path / "t"
    res = d / "results"
    manifest = {"grid_family": "smoke", "builds": [], "commits": {}}
    for tag, commit, fast, ops, torch in builds:
        version = tag.removeprefix("torch-")
        manifest["builds"].append({"version": version, "kind": "release", "date": None,
                                   "git_version": "", "python": "", "index_url": ""})
        manifest["commits"][tag] = commit
        for r, jit in enumerate((1.0, 1.01, 0.99), 1):
            machine = "m" if r == 1 else f"m-r{r}"
            write_result(res, machine, commit, {FAST: fast * jit, SLOW: 200.0 * jit,
                                                WALL: fast / 200.0, OPS: ops, SLOW_OPS: 130})
            meta = {"torch": torch, "torch_git": "g" * 40, "variant": variant or "cpu",
                    "host_calibration": [{"rel_iqr": calibration}]}
            if levels and tag in levels:
                meta["host_calibration"] = [{"rel_iqr": calibration,
                                             "median_us": levels[tag][r - 1]}] * 2
            if protocols and tag in protocols:
                meta["protocol"] = protocols[tag]
            if pythons and tag in pythons:
                meta["python"] = pythons[tag]
            if device:
                meta["device"] = device
            rec = d / "records" / machine / f"{commit}-virtualenv-py3.11.json"
            rec.parent.mkdir(parents=True, exist_ok=True)
            results = [{"label": f"{lb}-float32-cpu", "host_work": {"fast": {"ops": {
                "aten::linear": 2, "aten::neg": ops - 228}}}} for lb in LABELS]
            for i, r_ in enumerate(results):
                if probes and tag in probes:
                    r_["host_probe_us"] = [55.0, probes[tag][r - 1][i]]
            rec.write_text(json.dumps({"meta": meta, "results": results}))
    (d / "builds.json").write_text(json.dumps(manifest))
    return d


def run_gate(argv) -> tuple[int, str]:
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def test_gate_command_passes_a_faster_build_and_fails_an_extra_op(tmp_path):
    d = track_dir(tmp_path, [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
                             ("torch-2.2.0", B, 90.0, 228, "2.2.0+cpu"),
                             ("torch-2.3.0", C, 90.0, 229, "2.3.0+cpu")])
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d)])
    assert rc == 0, text
    assert "the fast path is not worse" in text.splitlines()[1]
    rc, text = run_gate(["gate", "2.2.0", "2.3.0", "--dir", str(d), "--json",
                         str(tmp_path / "g.json"), "--markdown", str(tmp_path / "g.md")])
    assert rc == 1 and text.splitlines()[1].startswith("REGRESSED")
    assert "+aten::neg x1" in text
    assert all(len(line) <= 160 for line in text.splitlines()), max(map(len, text.splitlines()))
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["exit"] == 1 and doc["steps"][0]["failing"]
    assert all(f["section"] == "fast" for f in doc["steps"][0]["failing"])
    assert "REGRESSED" in (tmp_path / "g.md").read_text()


def test_a_history_tells_its_story_one_line_a_step(tmp_path):
    d = track_dir(tmp_path, [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
                             ("torch-2.2.0", B, 90.0, 228, "2.2.0+cpu"),
                             ("torch-2.3.0", C, 90.0, 229, "2.3.0+cpu")])
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "2.3.0", "--dir", str(d)])
    lines = text.splitlines()
    assert rc == 1 and lines[0] == "history, step by step:"
    assert lines[1].startswith("2.1.0 -> 2.2.0: the fast path is not worse: fast -10.0%")
    assert lines[2].startswith("2.2.0 -> 2.3.0: REGRESSED")


def test_a_record_that_measured_another_build_is_named_and_left_out(tmp_path):
    d = track_dir(tmp_path, [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
                             ("torch-2.2.0", B, 100.0, 228, "2.2.0+cpu")])
    rec = d / "records" / "m-r2" / f"{B}-virtualenv-py3.11.json"
    doc = json.loads(rec.read_text())
    doc["meta"]["torch"] = "2.15.0+cu132"
    rec.write_text(json.dumps(doc))
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d)])
    assert rc == 0
    assert "(bbbbbbbb, 2 record(s))" in text
    assert "left out" in text and "measured torch 2.15.0+cu132, not 2.2.0" in text


def test_builds_of_different_variants_are_said_to_differ(tmp_path):
    d = track_dir(tmp_path, [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu")])
    d2 = track_dir(tmp_path / "x", [("torch-2.2.0", B, 100.0, 228, "2.2.0")], variant="cu121")
    for p in (d2 / "results").rglob("*.json"):
        target = d / "results" / p.relative_to(d2 / "results")
        if not target.exists():
            target.write_text(p.read_text())
    for p in (d2 / "records").rglob("*.json"):
        (d / "records" / p.relative_to(d2 / "records")).write_text(p.read_text())
    manifest = json.loads((d / "builds.json").read_text())
    extra = json.loads((d2 / "builds.json").read_text())
    manifest["builds"] += extra["builds"]
    manifest["commits"].update(extra["commits"])
    (d / "builds.json").write_text(json.dumps(manifest))
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d)])
    assert "differ in variant: 2.1.0 is cpu, 2.2.0 is cu121" in text


def test_records_without_record_files_are_read_with_a_note(tmp_path):
    d = track_dir(tmp_path, [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
                             ("torch-2.2.0", B, 100.0, 228, "2.2.0+cpu")])
    import shutil
    shutil.rmtree(d / "records")
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d)])
    assert rc == 0 and "carry no record file" in text


def test_wall_figures_of_a_noisy_host_are_withheld_and_counts_still_judged(tmp_path):
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    calm = track_dir(tmp_path / "calm", builds)
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(calm)])
    assert rc == 1 and "failing: FastOverSlow.track_wall: the fast path got worse at 8 of 8" in text
    assert "context: fast, slow µs" in text and "100 -> 130, 200 -> 200" in text
    assert all(len(line) <= 160 for line in text.splitlines()), max(map(len, text.splitlines()))
    noisy = track_dir(tmp_path / "noisy", builds, calibration=0.3)
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(noisy)])
    assert rc == 0 and "wall figures not judged" in text and "moved 30%" in text
    extra = track_dir(tmp_path / "extra", [builds[0], ("torch-2.2.0", B, 130.0, 229, "2.2.0+cpu")],
                      calibration=0.3)
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(extra)])
    assert rc == 1 and "+aten::neg x1" in text


def test_wall_figures_of_builds_whose_hosts_ran_at_different_speeds_are_withheld(tmp_path):
    """A process slow for its whole sweep calibrates steadily, at twice its peers' level: one
    such record of three is outvoted, two withhold the step's wall figures."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    one = track_dir(tmp_path / "one", builds,
                    levels={"torch-2.1.0": [600, 610, 590], "torch-2.2.0": [600, 1200, 605]})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(one)])
    assert rc == 1 and "different speeds" not in text
    two = track_dir(tmp_path / "two", builds,
                    levels={"torch-2.1.0": [600, 610, 590], "torch-2.2.0": [1200, 1210, 605]})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(two)])
    assert rc == 0 and "the hosts ran at different speeds" in text
    assert "read 600 and 1200 us at the median over their records, 100% apart" in text


def test_wall_figures_are_withheld_at_the_points_where_the_hosts_probe_read_another_state(
        tmp_path):
    """A process that ran some points in the host's slow state (probe 125 us, not 60) has its
    wall figures there withheld when most of its build's records did so too, and judged
    everywhere else; one such record of three is outvoted, like a slow calibration."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    n = len(LABELS)
    calm = [[60.0] * n] * 3
    slow3 = [[125.0] * 3 + [60.0] * (n - 3)] * 2 + [[60.0] * n]
    d = track_dir(tmp_path / "some", builds, probes={"torch-2.1.0": calm, "torch-2.2.0": slow3})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d), "--json",
                         str(tmp_path / "g.json")])
    assert rc == 1 and f"the fast path got worse at {n - 3} of {n - 3}" in text, text
    assert (f"wall figures not judged at 3 of {n} points, where the host's probe read another "
            f"state on each side (widest: {sorted(LABELS[:3])[0]}, 60 -> 125 us)") in text
    step = json.loads((tmp_path / "g.json").read_text())["steps"][0]
    assert step["context"]["wall_unjudged_points"] == sorted(LABELS[:3])
    everywhere = track_dir(tmp_path / "all", builds,
                           probes={"torch-2.1.0": calm, "torch-2.2.0": [[125.0] * n] * 3})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(everywhere)])
    assert rc == 0 and f"wall figures not judged at {n} of {n} points" in text
    one = track_dir(tmp_path / "one", builds, probes={
        "torch-2.1.0": calm, "torch-2.2.0": [[125.0] * n] + [[60.0] * n] * 2})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(one)])
    assert rc == 1 and "probe read another state" not in text
    assert all(len(line) <= 160 for line in text.splitlines())


def test_probed_cuda_records_are_judged_by_their_probes_not_their_calibrations(tmp_path):
    """On CUDA, records with a probe at every point are judged point by point, whatever their
    calibrations say: a noisy calibration no longer withholds the whole step, and a build whose
    host was slow at most points has just those withheld. CPU records keep the calibrations."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    n = len(LABELS)
    calm = {"torch-2.1.0": [[60.0] * n] * 3, "torch-2.2.0": [[62.0] * n] * 3}
    cuda = track_dir(tmp_path / "cuda", builds, calibration=0.3, probes=calm, device="cuda")
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(cuda)])
    assert rc == 1 and f"the fast path got worse at {n} of {n}" in text, text
    assert "wall figures not judged" not in text
    cpu = track_dir(tmp_path / "cpu", builds, calibration=0.3, probes=calm, device="cpu")
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(cpu)])
    assert rc == 0 and "the host was noisy (its calibration moved 30%" in text
    unprobed = track_dir(tmp_path / "unprobed", builds, calibration=0.3, device="cuda")
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(unprobed)])
    assert rc == 0 and "the host was noisy" in text
    slow = {"torch-2.1.0": [[60.0] * n] * 3, "torch-2.2.0": [[125.0] * (n - 1) + [60.0]] * 3}
    most = track_dir(tmp_path / "most", builds, calibration=0.3, probes=slow, device="cuda")
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(most)])
    assert rc == 1 and "the fast path got worse at 1 of 1" in text, text
    assert f"wall figures not judged at {n - 1} of {n} points" in text


def test_probed_cuda_builds_whose_hosts_ran_at_other_levels_have_their_wall_figures_withheld(
        tmp_path):
    """On CUDA the probes give each record's host level, in the host's fast state: builds whose
    levels are more than 10% apart (here 60 and 69 us, 15%; no point in another state) withhold
    every wall figure, as calibration levels do on a CPU; 8% apart, or one record of three at the
    other level, they are judged."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    n = len(LABELS)

    def gate(name, head):
        d = track_dir(tmp_path / name, builds, device="cuda",
                      probes={"torch-2.1.0": [[60.0] * n] * 3, "torch-2.2.0": head})
        return run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(d)])
    rc, text = gate("apart", [[69.0] * n] * 3)
    assert rc == 0 and ("the hosts ran at different speeds (the builds' host probes read 60 and "
                        "69 us at the median over their records, 15% apart") in text, text
    assert "probe read another state" not in text
    rc, text = gate("near", [[65.0] * n] * 3)
    assert rc == 1 and "different speeds" not in text
    rc, text = gate("one", [[69.0] * n] + [[60.0] * n] * 2)
    assert rc == 1 and "different speeds" not in text


@pytest.mark.parametrize("probes, levels", [
    ([[{"a": 60.0, "b": 62.0}], [{"a": 70.0, "b": 72.0}]], [[61.0], [71.0]]),   # few points: all
    # the host's slow state (above 1.3x the fast state of every record together) is left out
    ([[{f"p{i}": 60.0 for i in range(10)}],
      [{**{f"p{i}": 66.0 for i in range(7)}, **{f"p{i}": 125.0 for i in range(7, 10)}}]],
     [[60.0], [66.0]]),
    # a record all in the slow state has no level; its build's others speak for it
    ([[{f"p{i}": 60.0 for i in range(10)}],
      [{f"p{i}": 125.0 for i in range(10)}, {f"p{i}": 63.0 for i in range(10)}]],
     [[60.0], [math.nan, 63.0]]),
])
def test_probe_levels_read_each_records_host_in_the_fast_state(probes, levels):
    from mhabench.track.records import probe_levels
    got = probe_levels(probes)
    assert [[round(x, 6) if x == x else "nan" for x in side] for side in got] == \
        [[x if x == x else "nan" for x in side] for side in levels]


@pytest.mark.parametrize("metas, probes, probed", [
    ([[{"device": "cuda"}] * 2] * 2, [[{"p": 60.0}] * 2] * 2, True),
    ([[{"device": "cuda:1"}] * 2] * 2, [[{"p": 60.0}] * 2] * 2, True),
    ([[{"device": "cuda"}] * 2] * 2, [[{"p": 60.0}, {}], [{"p": 60.0}] * 2], False),
    ([[{"device": "cuda"}, {"device": "cpu"}], [{"device": "cuda"}] * 2],
     [[{"p": 60.0}] * 2] * 2, False),
    ([[{}] * 2] * 2, [[{"p": 60.0}] * 2] * 2, False),
    ([[], [{"device": "cuda"}]], [[], [{"p": 60.0}]], False),
])
def test_probed_on_cuda_needs_every_record_of_both_builds(metas, probes, probed):
    from mhabench.track.gate import probed_on_cuda
    assert probed_on_cuda(metas, probes) is probed


@pytest.mark.parametrize("base, head, differ", [
    ([[60.0], [61.0], [59.0]], [[62.0], [60.0], [120.0]], False),   # one slow record: outvoted
    ([[60.0], [61.0], [59.0]], [[120.0], [118.0], [60.0]], True),
    ([[60.0], [61.0], [59.0]], [[77.0], [78.0], [77.0]], False),     # 1.28x: one state
    ([[60.0], [61.0], [59.0]], [[80.0], [80.0], [80.0]], True),      # 1.31x
    ([[120.0], [125.0]], [[60.0], [62.0]], True),                    # either way
    ([[60.0], [61.0]], [[], []], False),                             # no probe on one side
])
def test_states_differ_compares_each_points_median_probe(base, head, differ):
    from mhabench.track.gate import states_differ

    def side(rows):
        return [{"B1-S8-E32-H4-b1": r[0]} if r else {} for r in rows]
    got = states_differ([side(base), side(head)])
    assert bool(got) is differ
    if differ:
        assert set(got) == {"B1-S8-E32-H4-b1"}


def test_point_probes_keep_the_slower_probe_of_each_timed_point():
    from mhabench.track.records import point_probes
    got = point_probes([{"label": "B1-S8-E32-H4-b1-float16-cuda", "host_probe_us": [60.0, 90.0]},
                        {"label": "B2-S8-E32-H4-b1-float16-cuda", "host_probe_us": []},
                        {"label": "B4-S8-E32-H4-b1-float16-cuda", "status": "error"},
                        {"label": "B8-S8-E32-H4-b1-float16-cuda",
                         "host_probe_us": [float("nan"), 70.0]}])
    assert got == {"B1-S8-E32-H4-b1": 90.0, "B8-S8-E32-H4-b1": 70.0}


def test_levels_under_different_pythons_are_not_compared_and_the_step_says_so(tmp_path):
    """The calibration loop runs at the interpreter's speed: a build that moved from Python
    3.11 to 3.12 calibrates higher on the same host, which is no sign of a slow host."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    levels = {"torch-2.1.0": [700, 705, 690], "torch-2.2.0": [1080, 1075, 1090]}
    other = track_dir(tmp_path / "other", builds, levels=levels,
                      pythons={"torch-2.1.0": "3.11.7", "torch-2.2.0": "3.12.1"})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(other)])
    assert rc == 1 and "different speeds" not in text, "the wall figure is judged"
    assert "the builds ran under different Pythons (3.11 and 3.12)" in text
    same = track_dir(tmp_path / "same", builds, levels=levels,
                     pythons={"torch-2.1.0": "3.12.1", "torch-2.2.0": "3.12.4"})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(same)])
    assert rc == 0 and "the hosts ran at different speeds" in text
    assert "different Pythons" not in text


def test_the_python_levels_bench_runs_the_calibrations_own_source():
    """``bench/python_levels.py`` measures what a record's calibration measures, under any
    interpreter, from the calibration's source: a changed loop changes what it times."""
    import subprocess
    import sys
    bench = Path(__file__).resolve().parents[1] / "bench" / "python_levels.py"
    out = subprocess.run([sys.executable, str(bench), sys.executable, "--rounds", "2"],
                         capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(out.stdout)[sys.version.split()[0]]
    assert got["processes"] == 2 and 0 < got["min_us"] <= got["median_us"]
    sys.path.insert(0, str(bench.parent))
    import python_levels
    from mhabench.measure import machine
    code = python_levels.child_code()
    assert (f"CALIBRATION_REPS, CALIBRATION_LOOP = {machine.CALIBRATION_REPS}, "
            f"{machine.CALIBRATION_LOOP}") in code and "for i in range(loop):" in code


@pytest.mark.parametrize("pythons, note", [
    ([["3.11.7"] * 3, ["3.11.7"] * 3], False),
    ([["3.12.1"] * 3, ["3.12.4"] * 3], False),          # one minor version: one interpreter
    ([["3.11.7"] * 3, ["3.12.1"] * 3], True),
    ([[None] * 3, ["3.12.1"] * 3], False),              # a side that does not say
    ([["3.11.7", "3.12.1", "3.12.1"], ["3.12.1"] * 3], True),
])
def test_other_pythons_reads_each_sides_interpreters(pythons, note):
    from mhabench.track.gate import other_pythons
    metas = [[{"python": v} if v else {} for v in side] for side in pythons]
    assert bool(other_pythons(metas)) is note


@pytest.mark.parametrize("levels, withheld", [
    ([[600, 610, 590], [605, 640, 580]], False),      # one host, one speed
    ([[600, 610, 590], [600, 1200, 605]], False),     # one slow record of three: outvoted
    ([[600, 610, 590], [1200, 1210, 605]], True),     # most of a build's records slow
    ([[600, 610, 590], [655, 670, 650]], False),      # 9% apart: still judged
    ([[600, 610, 590], [680, 690, 675]], True),       # 13% apart
    ([[600, 1200, 1200], [600, 1200, 1210]], False),  # both mostly slow: judged alike
    ([[math.nan] * 3, [600, 1200, 1200]], False),     # records made before calibrations: no level
    ([[600], []], False),
])
def test_uneven_hosts_outvotes_one_record_and_withholds_builds_at_other_speeds(levels,
                                                                             withheld):
    from mhabench.track.gate import uneven_hosts
    assert bool(uneven_hosts(levels)) is withheld


def test_host_levels_read_each_records_calibrations():
    from mhabench.track.records import host_levels
    got = host_levels([{"host_calibration": [{"median_us": 600.0}, {"median_us": 1200.0}]},
                       {"host_calibration": [{"rel_iqr": 0.01}]}, {}])
    assert got[0] == 900.0 and math.isnan(got[1]) and math.isnan(got[2])


def test_wall_figures_timed_differently_are_withheld_and_say_how(tmp_path):
    """A window opened by an untimed call reads a few percent below one that was not: two
    builds timed differently cannot be told apart by wall time, whatever their counts say."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    old = {"warmup_ms": 5.0, "min_warmup": 2, "target_ms": 50.0, "min_rounds": 3,
           "max_rounds": 200, "device_calls": 4, "host_work": True, "mode": "windows"}
    new = {**old, "lead_in": 1}
    same = track_dir(tmp_path / "same", builds, protocols={"torch-2.1.0": new, "torch-2.2.0": new})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(same)])
    assert rc == 1 and "timed them differently" not in text
    other = track_dir(tmp_path / "other", builds, protocols={"torch-2.1.0": old, "torch-2.2.0": new})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(other)])
    assert rc == 0 and "wall figures not judged: the records timed them differently" in text
    assert "lead_in 0 in 2.1.0; 1 in 2.2.0" in text, "a record before the lead-in had none"
    calls = track_dir(tmp_path / "calls", builds,
                      protocols={"torch-2.1.0": old, "torch-2.2.0": {**old, "device_calls": 10}})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(calls)])
    assert rc == 1, "profiled calls set no wall figure's level"
    unsaid = track_dir(tmp_path / "unsaid", builds, protocols={"torch-2.2.0": new})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(unsaid)])
    assert rc == 1, "records that name no protocol are taken as they come"
    extra = track_dir(tmp_path / "extra", [builds[0], ("torch-2.2.0", B, 130.0, 229, "2.2.0+cpu")],
                      protocols={"torch-2.1.0": old, "torch-2.2.0": new})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(extra)])
    assert rc == 1 and "+aten::neg x1" in text, "counts are still judged"



def test_records_that_timed_again_different_shares_are_timed_differently(tmp_path):
    """A quarter of the points timed again against half: the kept timings' level differs on a
    host that reads slow often, so the wall figures are not compared; a record made before the
    knob was timed with a quarter."""
    builds = [("torch-2.1.0", A, 100.0, 228, "2.1.0+cpu"),
              ("torch-2.2.0", B, 130.0, 228, "2.2.0+cpu")]
    before = {"target_ms": 50.0, "min_rounds": 3, "lead_in": 1, "retime": 1}
    half = track_dir(tmp_path / "half", builds, protocols={
        "torch-2.1.0": before, "torch-2.2.0": {**before, "retime_share": 0.5}})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(half)])
    assert rc == 0 and "retime_share 0.25 in 2.1.0; 0.5 in 2.2.0" in text
    quarter = track_dir(tmp_path / "quarter", builds, protocols={
        "torch-2.1.0": before, "torch-2.2.0": {**before, "retime_share": 0.25}})
    rc, text = run_gate(["gate", "2.1.0", "2.2.0", "--dir", str(quarter)])
    assert rc == 1 and "timed them differently" not in text


def test_more_fast_path_bytecodes_with_fewer_instructions_is_reported_not_failed():
    before, after = values(), values(instr=0.95e6)
    after[BYTECODES] = {p: [v + 10 for v in vs] for p, vs in after[BYTECODES].items()}
    got, fails, found = verdicts(before, after)
    assert ("fast", MORE_WORK_YET_FASTER) in got and not fails
    assert any("host instructions -5.0%" in f.why for f in found)
    after[INSTR] = values()[INSTR]  # the same bytecodes rise, instructions unchanged: fails
    assert verdicts(before, after)[1]


def test_fewer_ops_and_more_bytecodes_is_work_shifted_and_the_instructions_decide():
    before, after = values(), values(ops=220)
    after[BYTECODES] = {p: [v + 19 for v in vs] for p, vs in after[BYTECODES].items()}
    got, fails, found = verdicts(before, after, work={(LABELS[0], "fast"): "aten::item 15->5; "
                                                      "bytecodes: +get_fastpath_enabled x8"})
    assert ("fast", WORK_SHIFTED) in got and not fails
    why = next(f.why for f in found if f.verdict == WORK_SHIFTED and f.point == LABELS[0])
    assert why == "+get_fastpath_enabled x8; fewer aten_ops", why
    after[INSTR] = {p: [v * 1.02 for v in vs] for p, vs in after[INSTR].items()}
    got, fails, found = verdicts(before, after)
    assert fails and {f.judged.fig.family for f in found if f.fails} == {"instructions"}


def test_a_ratio_the_slow_paths_own_median_explains_is_caught_up_unless_the_fast_path_moved():
    # the slow path 25% faster in every record, its records too spread for its own threshold
    before, after = values(jitter=0.2), values(slow=150.0, jitter=0.2)
    for name in (WALL,):
        before[name] = values()[name]
        after[name] = {p: [v / 0.75 for v in vs] for p, vs in values()[name].items()}
    got, fails, found = verdicts(before, after)
    assert ("ratio", CAUGHT_UP) in got and not fails
    assert any("explains the ratio" in f.why for f in found)
    after[BYTECODES] = {p: [v + 700 for v in vs] for p, vs in after[BYTECODES].items()}
    got, fails, _ = verdicts(before, after)  # the fast path's own work rose: the ratio is its
    assert ("ratio", FAST_WORSE) in got and fails


def test_a_bytecode_count_of_0_is_no_count_and_never_a_regression_from_it():
    """Records of Python 3.12 before the tracer was primed hold 0 at a sweep's first point: a
    build measured after the fix must not read as +inf% there, nor a 0 as fewer bytecodes."""
    fig = cat.BY_KEY["host_fast_bytecodes"]
    assert math.isnan(fig.value({"host_fast_bytecodes": 0}))
    assert fig.value({"host_fast_bytecodes": 925}) == 925.0
    assert cat.BY_KEY["host_fast_syncs"].value({"host_fast_syncs": 0}) == 0.0  # 0 syncs is real
    before = {fig.asv: {"p0": [0.0, 0.0, 0.0], "p1": [925.0] * 3}}
    after = {fig.asv: {"p0": [925.0] * 3, "p1": [1056.0] * 3}}
    judged = {j.point: j.status for j in compare(before, after)}
    assert judged == {"p1": "regressed"}
    judged = {j.point: j.status for j in compare(after, before)}
    assert judged == {"p1": "improved"}
