"""The gate's rule and its reading of asv result files (no asv run: files written here)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asv_files import LABELS, write_result  # noqa: E402

from mhabench.measure.config import ConfigError  # noqa: E402
from mhabench.track.gate import (FAMILIES, Rule, allowance, family_of, gate, judge,  # noqa: E402
                           label, op_diff, point_sigma, pooled_sigma, rel_range, rel_sigma,
                           se_of_median, threshold)

REPO = Path(__file__).resolve().parents[1]
WALL, NOISE, ROUNDS = ("speedup.FastOverSlow.track_wall", "speedup.Noise.track_wall",
                       "speedup.Rounds.track_wall")
OPS = "host.HostWork.track_fast_aten_ops"
A, B, C = "a" * 40, "b" * 40, "c" * 40


def fam(name):
    return family_of(name)


# --- the pure rule -------------------------------------------------------------------------------
def test_rule_table_matches_by_pattern():
    assert fam(WALL).name == "wall" and fam(WALL + "_fair").name == "wall"
    assert fam("speedup.FastOverSlow.track_device").floor == 0.03
    assert fam("host.HostWork.track_slow_cuda_launches").exact
    assert fam("host.HostWork.anything_new").exact, "new host-work counts slot in by pattern"
    assert fam("host.Instructions.track_slow_fair").name == "instructions"
    assert fam("host.Instructions.track_other") is None
    assert fam("time_per_call.WallTime.track_fast") is None, "absolute times are not judged"
    assert fam(NOISE) is None


def test_allowance_prefers_replicates_then_rounds_then_floor():
    assert allowance(0.02, 3, 1, [0.01, 0.01], 0.03, Rule()) == (
        pytest.approx(3 * 0.02 * math.sqrt(1 / 3 + 1)), "replicates")
    got, src = allowance(math.nan, 1, 1, [0.03, 0.04], 0.03, Rule())
    assert src == "rounds" and got == pytest.approx(3 * 0.05 + 0.03)
    assert allowance(math.nan, 1, 1, [math.nan, 0.01], 0.03, Rule()) == (0.03, "floor")
    assert allowance(0.02, 2, 2, [0.03, 0.04], 0.0, Rule(noise="rounds"))[1] == "rounds"
    assert se_of_median(0.3, 100) == pytest.approx(0.929 * 0.03, rel=1e-3)
    assert math.isnan(se_of_median(None, 50))


def test_a_points_sigma_pools_both_builds_and_shrinks_toward_its_figures():
    s, df = point_sigma([[1.0, 1.1, 0.9], [1.0, 1.02]])
    assert df == 3
    assert s == pytest.approx(math.sqrt((2 * (0.2 / 1.693) ** 2 + (0.02 / 1.01 / 1.128) ** 2) / 3))
    assert pooled_sigma([[1.0, 1.0]], 0.02, 4.0) == pytest.approx(math.sqrt(4 * 0.02 ** 2 / 5))
    assert pooled_sigma([[1.0, 1.1]], math.nan, 4.0) == pytest.approx(0.1 / 1.05 / 1.128)
    assert math.isnan(pooled_sigma([[1.0], [2.0]], 0.02, 4.0))  # no replicates: no sigma


def test_threshold_between_floor_and_cap():
    assert threshold(0.01, 0.05, Rule()) == 0.05
    assert threshold(0.3, 0.05, Rule()) == 0.3
    assert threshold(3.0, 0.05, Rule()) == 1.0


def test_rel_range_needs_two_records():
    assert rel_range([1.0, 1.1, 0.9]) == pytest.approx(0.2)
    assert math.isnan(rel_range([1.0])) and math.isnan(rel_range([1.0, None, math.nan]))
    assert rel_sigma([1.0, 1.1, 0.9]) == pytest.approx(0.2 / 1.693)
    assert math.isnan(rel_sigma([1.0]))


def test_judge_replicates_flag_beyond_k_sigma_of_the_difference():
    wall = fam(WALL)
    # range 3% of 3 records: sigma 1.77%; 3 sigma x sqrt(1/3 + 1) = 6.1%
    ok = judge([1.0, 1.02, 0.99], [1.06], wall, Rule(floor=0.0))
    assert ok[0] == "ok" and ok[5] == "replicates"
    assert ok[4] == pytest.approx(3 * 0.03 / 1.693 * math.sqrt(4 / 3), rel=1e-3)
    # flagged; with no floor the base's own 3% range is above it, so the flag is advisory up
    # to 3 x 3% and fails beyond
    assert judge([1.0, 1.02, 0.99], [1.07], wall, Rule(floor=0.0))[0] == "advisory"
    assert judge([1.0, 1.02, 0.99], [1.095], wall, Rule(floor=0.0))[0] == "regressed"
    assert judge([1.0, 1.02, 0.99], [1.10], wall, Rule())[0] == "regressed"
    assert judge([1.0, 1.02, 0.99], [0.8], wall, Rule())[0] == "improved"
    # a point whose records agree by chance keeps the figure's typical sigma
    assert judge([1.0, 1.0, 1.0], [1.07], wall, Rule(floor=0.0), figure_sigma=0.03)[0] == "ok"


def test_instruction_counts_flag_the_smallest_planted_change_not_their_a_a_spread():
    """Floor 0.5%: three fresh processes spread by 0.134% at worst (smoke grid), and ~210 extra
    bytecodes per fast call added 1.13% at the least (bench/instructions_aa.py)."""
    ins = fam("host.Instructions.track_fast")
    base = [738_300.0, 738_700.0, 739_289.0]  # 0.134% apart
    assert judge(base, [base[2]], ins, Rule())[0] == "ok"
    assert judge(base, [base[1] * 1.0113], ins, Rule())[0] == "regressed"
    assert judge([base[0]], [base[0] * 1.0113], ins, Rule())[0] == "regressed"  # one record each


def test_judge_failed_after_is_a_regression_and_n_a_is_skipped():
    wall = fam(WALL)
    assert judge([1.0], [None], wall, Rule())[0] == "regressed"
    assert judge([math.nan], [1.0], wall, Rule()) is None
    assert judge([None], [1.0], wall, Rule()) is None
    assert judge([1.0], [math.nan], wall, Rule()) is None


def test_exact_counts_any_change():
    ops = fam(OPS)
    assert judge([12.0, 12.0], [12.0], ops, Rule())[0] == "ok"
    assert judge([12.0], [13.0], ops, Rule())[0] == "regressed"
    assert judge([12.0], [11.0], ops, Rule())[0] == "changed"
    assert judge([0.0], [1.0], ops, Rule())[0] == "regressed"


def test_an_advisory_figure_fails_only_beyond_k_times_its_spread():
    wall = fam(WALL)
    # figure's A/A spread 10% > floor 5%: +15% is flagged but advisory, +35% fails
    assert judge([1.0], [1.15], wall, Rule(), figure_spread=0.10)[0] == "advisory"
    assert judge([1.0], [1.35], wall, Rule(), figure_spread=0.10)[0] == "regressed"
    assert judge([1.0], [1.15], wall, Rule(), figure_spread=0.04)[0] == "regressed"


def test_a_point_whose_base_records_spread_widely_is_advisory_on_its_own_spread():
    wall = fam(WALL)
    # the figure is calm (2%), but this point's base records span 18% of their median: +45%
    # (beyond 3 sigma of the replicates) is advisory there, +73% (beyond 3 x 18%) fails; a
    # point whose records agree (1% range) fails at +30%
    wide, calm = [1.0, 1.2, 1.1], [1.0, 1.01, 1.005]
    assert judge(wide, [1.6], wall, Rule(), figure_spread=0.02, spread_before=wide)[0] == "advisory"
    assert judge(wide, [1.9], wall, Rule(), figure_spread=0.02, spread_before=wide)[0] == "regressed"
    assert judge(calm, [1.3], wall, Rule(), figure_spread=0.02, spread_before=calm)[0] == "regressed"



def test_a_head_whose_records_disagree_is_advisory_on_its_own_range():
    wall = fam(WALL)
    # bimodal point: the base's three records agree, two of the head's land in a slow state
    base, head = [0.615, 0.615, 0.618], [0.88, 0.81, 0.70]
    assert judge(base, head, wall, Rule(), spread_before=base)[0] == "advisory"
    # a regression moves the head's records together: it fails
    assert judge(base, [0.80, 0.81, 0.805], wall, Rule(), spread_before=base)[0] == "regressed"


@pytest.mark.parametrize("kw", [{"k": -1}, {"floor": math.nan}, {"cap": math.inf},
                                {"floor": 0.5, "cap": 0.1}, {"noise": "guess"}])
def test_bad_rule_raises(kw):
    with pytest.raises(ConfigError):
        Rule(**kw)


def test_op_diff_names_what_appeared_and_vanished():
    assert op_diff({"aten::linear": 3, "aten::copy_": 1}, {"aten::linear": 3, "aten::neg": 1}
                   ) == "-aten::copy_ x1, +aten::neg x1"
    assert op_diff({"aten::add": 2}, {"aten::add": 3}) == "aten::add 2->3"


# --- stored records -------------------------------------------------------------------------------
def _values(wall, noise=0.3, rounds=60.0, fast=10.0, slow=20.0, ops=None):
    v = {WALL: wall, NOISE: noise, ROUNDS: rounds, "time_per_call.WallTime.track_fast": fast,
         "time_per_call.WallTime.track_slow": slow}
    if ops is not None:
        v[OPS] = ops
    return v


@pytest.fixture
def replicated(tmp_path):
    """Base A: 3 records spread 2%; A again: a 4th record; B: +10% everywhere; C: +1 op."""
    res = tmp_path / "results"
    for n, w in enumerate((1.0, 1.02, 0.99), 1):
        write_result(res, "m" if n == 1 else f"m-r{n}", A, _values(w, ops=12.0))
    write_result(res, "m", C, _values(1.0, ops=[13.0] + [12.0] * 7))
    write_result(res, "m", B, _values(1.10, fast=11.0, ops=12.0))
    (tmp_path / "builds.json").write_text(json.dumps(
        {"commits": {"torch-2.13.0": A, "torch-2.14.1": B, "torch-2.15.0": C}}))
    return tmp_path


def test_gate_judges_against_the_base_builds_replicate_spread(replicated):
    verdicts, ctx = gate(replicated, "2.13.0", "2.14.1")
    assert ctx["machine"] == "m" and (ctx["base_records"], ctx["head_records"]) == (3, 1)
    wall = [v for v in verdicts if v.figure == WALL]
    assert len(wall) == 8 and all(v.regressed and v.source == "replicates" for v in wall)
    assert wall[0].threshold == pytest.approx(0.061, abs=1e-3)  # 3 sigma of the difference
    assert wall[0].times["fast"] == [10.0, 11.0] and wall[0].times["slow"] == [20.0, 20.0]
    assert not [v for v in verdicts if v.figure == OPS and v.status != "ok"]


def test_gate_reports_a_changed_count_at_its_point_with_op_diff_unavailable(replicated):
    verdicts, _ = gate(replicated, "2.13.0", "2.15.0")
    changed = [v for v in verdicts if v.status != "ok"]
    assert [(v.point, v.figure, v.status) for v in changed] == [(LABELS[0], OPS, "regressed")]
    assert "op diff unavailable" in changed[0].ops


def test_gate_names_the_ops_from_the_sweeps_record_files(replicated):
    for commit, ops in ((A, {"aten::linear": 12}), (C, {"aten::linear": 12, "aten::neg": 1})):
        d = replicated / "records" / "m"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{commit}-virtualenv-py3.11.json").write_text(json.dumps({"results": [
            {"label": LABELS[0] + "-float32-cpu", "host_work": {"fast": {"ops": ops}}}]}))
    (v,) = [v for v in gate(replicated, "2.13.0", "2.15.0")[0] if v.status != "ok"]
    assert v.ops == "fast: +aten::neg x1"


def test_one_record_of_a_build_keeps_the_builds_spread(replicated):
    verdicts, ctx = gate(replicated, "2.13.0@r2", "2.13.0@r3")
    assert (ctx["base_records"], ctx["head_records"]) == (1, 1)
    wall = [v for v in verdicts if v.figure == WALL]
    assert all(v.status == "ok" and v.source == "replicates" for v in wall)
    assert wall[0].ratio == pytest.approx(0.99 / 1.02)


def test_without_replicates_the_rounds_standard_error_and_drift_set_the_threshold(tmp_path):
    res = tmp_path / "results"
    write_result(res, "m", A, _values(1.0, noise=0.3, rounds=50.0))
    write_result(res, "m", B, _values(1.18, noise=0.3, rounds=50.0))
    verdicts, _ = gate(tmp_path, A[:8], B[:8])
    v = next(v for v in verdicts if v.figure == WALL)
    se = 0.929 * 0.3 / math.sqrt(50)
    assert v.source == "rounds" and v.threshold == pytest.approx(3 * math.hypot(se, se) + 0.03,
                                                                 rel=1e-3)
    assert v.status == "ok"  # +18% inside 3 x 5.6% + 3%; beyond 3 x 5.6% alone
    assert next(v for v in gate(tmp_path, A[:8], B[:8], rule=Rule(drift=0.0))[0]
                if v.figure == WALL).status == "regressed"


def test_environments_of_one_commit_are_never_mixed(tmp_path):
    res = tmp_path / "results"
    write_result(res, "m", A, _values(1.0))
    write_result(res, "m", A, _values(2.0), env_name="existing-py_usr_bin_python3")
    write_result(res, "m", B, _values(1.0))
    with pytest.raises(ConfigError, match="environments"):
        gate(tmp_path, A[:8], B[:8])
    verdicts, ctx = gate(tmp_path, A[:8], B[:8], env="virtualenv-py3.11")
    assert ctx["env"] == "virtualenv-py3.11" and all(v.status == "ok" for v in verdicts)


def test_gate_reads_builds_by_version_tag_or_commit(replicated):
    for base, head in (("2.13.0", "2.14.1"), ("torch-2.13.0", "bbbbbbbb")):
        verdicts, _ = gate(replicated, base, head)
        assert any(v.regressed for v in verdicts)
    assert label(("2", "8", "32", "4", "1")) == "B2-S8-E32-H4-b1"


# --- the command line -----------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mhabench", "gate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_gate_cli_exit_codes_table_json_and_markdown(replicated, tmp_path):
    out_json, out_md = tmp_path / "g.json", tmp_path / "g.md"
    bad = _cli("--dir", str(replicated), "2.13.0", "2.14.1", "--json", str(out_json),
               "--markdown", str(out_md))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "lower-is-better" in bad.stdout and "REGRESSED: 8 of" in bad.stdout
    assert "10 -> 11 (+1)" in bad.stdout  # fast path's absolute change beside the ratio
    doc = json.loads(out_json.read_text())
    assert doc["exit"] == 1 and doc["counts"][WALL] == {"total": 8, "regressed": 8}
    assert len(doc["flagged"]) == 8 and doc["flagged"][0]["figure"] == WALL
    md = out_md.read_text()
    assert md.count("| regressed |") == 8 and "lower-is-better" in md
    good = _cli("--dir", str(replicated), "2.13.0@r1", "2.13.0@r3")
    assert good.returncode == 0, good.stdout + good.stderr


def _corrupt(path: Path, how: str) -> None:
    doc = json.loads(path.read_text())
    if how == "empty":
        path.write_text("")
    elif how == "corrupt":
        path.write_text(path.read_text()[:40])
    elif how == "schema":
        path.write_text(json.dumps({"version": 2, "commit_hash": doc["commit_hash"]}))
    elif how == "string":
        doc["results"][WALL][0][3] = "1.5"
        path.write_text(json.dumps(doc))
    elif how == "version":
        doc["version"] = 1
        path.write_text(json.dumps(doc))


@pytest.mark.parametrize("how", ["empty", "corrupt", "schema", "string", "version"])
def test_a_bad_result_file_is_exit_2_naming_it(replicated, how):
    path = replicated / "results" / "m-r2" / f"{A[:8]}-virtualenv-py3.11.json"
    _corrupt(path, how)
    proc = _cli("--dir", str(replicated), "--machine", "m", "2.13.0", "2.14.1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_is_one_line_exit_2(replicated):
    (replicated / "c.json").write_text("{")
    for args, named in ((["--dir", str(replicated), "2.13.0", "2.99"], "'2.99'"),
                        (["--dir", str(replicated), "--machine", "x", "2.13.0", "2.14.1"], "'x'"),
                        (["--dir", str(replicated / "nope"), "2.13.0", "2.14.1"], "nope"),
                        (["--dir", str(replicated), "--k", "-1", "2.13.0", "2.14.1"], "--k")):
        proc = _cli(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert named in proc.stderr, proc.stderr
    (replicated / "builds.json").write_text("{not json")
    proc = _cli("--dir", str(replicated), "2.13.0", "2.14.1")
    assert proc.returncode == 2 and "builds.json" in proc.stderr, proc.stderr
    (replicated / "builds.json").write_text(json.dumps({"commits": ["x"]}))
    proc = _cli("--dir", str(replicated), "2.13.0", "2.14.1")
    assert proc.returncode == 2 and "builds.json" in proc.stderr, proc.stderr


def test_every_family_is_lower_is_better_and_named_once():
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
