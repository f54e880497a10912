"""``mhabench track`` end to end through a real asv, and the builds repository it makes.

One builds repository holds three "builds" of the installed torch: ``A``, ``A`` again (an A/A
pair) and ``A`` plus a test-only wheel that sleeps in the fast-path kernel (see ``plant.py``).
asv runs each in a virtualenv of its own commit; then publish's regressions feed, ``mhabench
gate`` and ``asv continuous`` must flag the planted slowdown and leave the A/A pair alone.

The virtualenvs see the system site-packages (``VIRTUALENV_SYSTEM_SITE_PACKAGES``): pip then
finds the installed torch already satisfies ``torch==<version>`` instead of copying it per
environment. asv, its config and results live in a temporary dir with a temporary HOME.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mhabench.track import gate as gate_mod
from mhabench.track.builds import Build, parse_spec
from mhabench.measure.config import ConfigError
from mhabench.measure.protocol import Protocol
from mhabench.track.track import (Settings, asv_config, prepare, read_manifest, recorded, run_builds,
                            source_digest, write_repo)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import plant  # noqa: E402

TORCH = __import__("torch").__version__.split("+")[0]
MACHINE = "ci-track"
#: Planted: 2 ms of busy wait per fast-path call, against calls of a fraction of a millisecond at
#: the smoke points: fast/slow grows several times over. asv's thresholds are set at +50%, far
#: below that and above what a busy 2-core CI host does to the fast/slow ratio of an A/A pair.
#: (Absolute times and the noise figures do move that much on a loaded host: the A/A checks are
#: on the FastOverSlow ratios, the figures regressions are meant to be read from.)
DELAY_S = 0.002
ASV_THRESHOLD = 0.5
#: Records per build: with two, the A/A pair failed in one of five runs on this 2-core host (a
#: wall ratio 8.8% up against a 7.7% threshold from two replicates each); three is what the
#: gate's docs ask of a verdict on a noisy host.
REPEATS = 3


def _asv_env(tmp: Path) -> dict:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    # one intra-op thread: on a loaded 2-core host, a torch op waiting for a descheduled second
    # thread costs tens of ms and drowns any figure (the test is about detection, not speed)
    return {"HOME": str(home), "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1", "OMP_NUM_THREADS": "1"}


def _settings(d: Path, tmp: Path, repeats: int = 1) -> Settings:
    return Settings(dir=d, project=REPO, grid="smoke", device="cpu", machine=MACHINE,
                    regression_threshold=ASV_THRESHOLD, uninstall=("mhabench-plant",),
                    asv_env=_asv_env(tmp), repeats=repeats)


def _asv(s: Settings, *args) -> subprocess.CompletedProcess:
    from mhabench.track.track import asv_env
    cmd = [sys.executable, "-m", "asv", args[0], "--config", str(s.dir / "asv.conf.json"),
           *args[1:]]
    return subprocess.run(cmd, cwd=s.dir, env=asv_env(s), capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """Three builds recorded REPEATS times each (A B C A B C ...) and published: {"s",
    "commits", "tags"}."""
    tmp = tmp_path_factory.mktemp("track")
    wheel = plant.build_wheel(tmp / "wheels", DELAY_S)
    base = Build(TORCH, date=1_700_000_000)
    again = Build(TORCH, date=1_700_086_400, variant="again")
    slowed = Build(TORCH, date=1_700_172_800, variant="slowed", extra=(str(wheel),))
    s = _settings(tmp / "asv", tmp, repeats=REPEATS)
    builds, commits = prepare(s, [slowed, base, again])
    assert [b.variant for b in builds] == ["", "again", "slowed"]
    status = run_builds(s, builds, None, commits)
    assert status == 0, "asv run failed"
    pub = _asv(s, "publish")
    assert pub.returncode == 0, pub.stdout[-3000:] + pub.stderr[-3000:]
    return {"s": s, "commits": commits, "tags": [b.tag for b in builds]}


def test_installed_builds_are_recorded_with_torch_git_hash(tracked):
    s, commits = tracked["s"], tracked["commits"]
    import torch
    for tag in tracked["tags"]:
        info = json.loads((s.dir / "installed" / f"{commits[tag]}.json").read_text())
        assert info["version"] == torch.__version__
        assert info["git_version"] == torch.version.git_version
        assert info["mhabench_source"] == source_digest(REPO), "which mhabench measured it"


def _regressions(s: Settings) -> list:
    return json.loads((s.dir / "html" / "regressions.json").read_text())["regressions"]


def test_publish_orders_builds_and_flags_only_the_planted_step(tracked):
    s, commits, tags = tracked["s"], tracked["commits"], tracked["tags"]
    index = json.loads((s.dir / "html" / "index.json").read_text())
    rev = {h: int(r) for r, h in index["revision_to_hash"].items()}
    assert [rev[commits[t]] for t in tags] == sorted(rev[commits[t]] for t in tags)
    assert set(tags) <= set(index["tags"])
    slowed, again = rev[commits[tags[2]]], rev[commits[tags[1]]]
    flagged = {}  # {(figure, point): revisions where a step lands}
    entries = _regressions(s)
    assert entries and all(e[0].startswith("speedup.FastOverSlow.track_wall") for e in entries), \
        sorted({e[0].partition("(")[0] for e in entries})  # noise, times: detection is off
    for entry in entries:
        name, _, point = entry[0].partition("(")
        if name.startswith("speedup.FastOverSlow."):
            flagged[(name, point)] = {step[1] for step in entry[-1]}
    for fig in ("track_wall", "track_wall_fair"):
        hit = [p for (n, p), revs in flagged.items() if n.endswith(fig) and slowed in revs]
        assert len(hit) == 8, (fig, flagged)  # every smoke point (on the first replicate)
    assert all(again not in revs for revs in flagged.values()), flagged  # A/A: no step


def _gate(s: Settings, base: str, head: str, *extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mhabench", "gate", "--dir", str(s.dir),
                           "--machine", MACHINE, *extra, base, head],
                          capture_output=True, text=True, env=env, timeout=120)


def test_gate_flags_the_planted_slowdown_at_every_point(tracked):
    s, tags = tracked["s"], tracked["tags"]
    proc = _gate(s, tags[1], tags[2])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSED" in proc.stdout
    verdicts, ctx = gate_mod.gate(s.dir, tags[1], tags[2], MACHINE)
    assert (ctx["base_records"], ctx["head_records"]) == (REPEATS, REPEATS)
    wall = [v for v in verdicts if v.figure == "speedup.FastOverSlow.track_wall"]
    assert len(wall) == 8 and all(v.regressed and v.ratio > 1.5 for v in wall), wall
    assert all(v.source == "replicates" for v in wall)


def test_replicates_live_on_their_own_machines_and_publish_draws_them(tracked):
    s, commits, tags = tracked["s"], tracked["commits"], tracked["tags"]
    for replicate in range(1, REPEATS + 1):
        for tag in tags:
            assert recorded(s, commits[tag], replicate), (replicate, tag)
    index = json.loads((s.dir / "html" / "index.json").read_text())
    assert {MACHINE} | {f"{MACHINE}-r{i}" for i in range(2, REPEATS + 1)} <= set(index["machines"])
    assert "speedup.Rounds.track_wall" in index["benchmarks"]
    rounds = gate_mod.point_values(gate_mod.build_records(s.dir / "results", MACHINE,
                                                          commits[tags[0]]))
    counts = [v for vals in rounds["speedup.Rounds.track_wall"].values() for v in vals]
    assert len(counts) == 8 * REPEATS and all(v >= Protocol().min_rounds for v in counts), counts


def test_gate_passes_the_a_a_pair(tracked):
    s, tags = tracked["s"], tracked["tags"]
    proc = _gate(s, tags[0], tags[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no regression" in proc.stdout


def test_gate_rejects_an_unknown_build(tracked):
    proc = _gate(tracked["s"], "9.9.9", tracked["tags"][0])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "'9.9.9'" in proc.stderr


def test_asv_continuous_exits_1_on_the_planted_slowdown_and_0_on_a_a(tracked):
    s, tags = tracked["s"], tracked["tags"]
    common = ["--machine", MACHINE, "--bench", "speedup.FastOverSlow.track_wall",
              "-f", str(1 + ASV_THRESHOLD)]
    aa = _asv(s, "continuous", *common, tags[0], tags[1])
    assert aa.returncode == 0, aa.stdout[-3000:] + aa.stderr[-3000:]
    ab = _asv(s, "continuous", *common, tags[1], tags[2])
    assert ab.returncode == 1, ab.stdout[-3000:] + ab.stderr[-3000:]
    assert "PERFORMANCE DECREASED" in ab.stdout


# --- the builds repository (git only, no asv run) ----------------------------------------------
def test_same_build_list_gives_the_same_hashes(tmp_path):
    builds = [parse_spec("2.13.0"), parse_spec("2.14.1")]
    a = write_repo(tmp_path / "a", builds)
    b = write_repo(tmp_path / "b", builds)
    assert a == b and list(a) == ["torch-2.13.0", "torch-2.14.1"]
    again = write_repo(tmp_path / "a", builds)
    assert again == a


def test_inserting_a_build_keeps_earlier_hashes_and_moves_later_results(tmp_path):
    s = Settings(dir=tmp_path, project=REPO, grid="quick", machine="m")
    _, first = prepare(s, [parse_spec("2.13.0"), parse_spec("2.14.1")])
    old = first["torch-2.14.1"]
    result = tmp_path / "results" / "m" / f"{old[:8]}-virtualenv-py3.11.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps({"commit_hash": old, "results": {}}))
    _, second = prepare(s, [parse_spec("2.14.0")])
    assert second["torch-2.13.0"] == first["torch-2.13.0"]
    new = second["torch-2.14.1"]
    assert new != old and not result.exists()
    moved = tmp_path / "results" / "m" / f"{new[:8]}-virtualenv-py3.11.json"
    assert json.loads(moved.read_text())["commit_hash"] == new
    assert [b.version for b in read_manifest(tmp_path)["builds"]] == ["2.13.0", "2.14.0", "2.14.1"]
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=tmp_path / "builds",
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert log[:3] == ["torch 2.14.1", "torch 2.14.0", "torch 2.13.0"]


def test_a_code_change_makes_asv_reinstall_the_project(tmp_path):
    """asv reinstalls an environment's project only when the commit or the install commands
    change; the commits stand for torch builds, so the commands carry a digest of the code."""
    proj = tmp_path / "proj"
    (proj / "mhabench").mkdir(parents=True)
    (proj / "pyproject.toml").write_text("[project]\nname = 'mhabench'\n")
    (proj / "mhabench" / "timing.py").write_text("TARGET_MS = 50\n")
    s = Settings(dir=tmp_path / "asv", project=proj, grid="smoke", device="cpu", machine=MACHINE)
    before = asv_config(s)["install_command"]
    assert source_digest(proj) in " ".join(before)
    assert asv_config(s)["install_command"] == before, "stable while the code is"
    (proj / "mhabench" / "timing.py").write_text("TARGET_MS = 60\n")
    assert asv_config(s)["install_command"] != before


def test_a_result_file_of_failures_is_not_a_record(tmp_path):
    """A killed run or a timed-out sweep leaves a file whose every value failed: measure again."""
    s = Settings(dir=tmp_path, project=REPO, grid="smoke", device="cpu", machine=MACHINE)
    commit = "9c884b9a" + "0" * 32
    d = tmp_path / "results" / MACHINE
    d.mkdir(parents=True)
    assert not recorded(s, commit)
    doc = {"result_columns": ["result", "params"], "results": {"a.track_x": [None, [["1", "2"]]]}}
    (d / f"{commit[:8]}-virtualenv-py3.11.json").write_text(json.dumps(doc))
    assert not recorded(s, commit)
    doc["results"]["a.track_x"] = [[None, 0.5], [["1", "2"]]]
    (d / f"{commit[:8]}-virtualenv-py3.11.json").write_text(json.dumps(doc))
    assert recorded(s, commit)


def test_a_dir_keeps_its_grid_family(tmp_path):
    prepare(Settings(dir=tmp_path, project=REPO, grid="quick"), [parse_spec("2.13.0")])
    prepare(Settings(dir=tmp_path, project=REPO, grid="seed"), [parse_spec("2.13.0")])
    with pytest.raises(ConfigError, match="smoke"):
        prepare(Settings(dir=tmp_path, project=REPO, grid="smoke"), [parse_spec("2.13.0")])


def _track(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **_asv_env(tmp_path)}
    return subprocess.run([sys.executable, "-m", "mhabench", "track", "--dir",
                           str(tmp_path / "d"), *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("args, named", [
    (["2.13.x"], "'2.13.x'"),
    (["torch>=2.1"], "'torch>=2.1'"),
    (["2.13.0@yesterday"], "'yesterday'"),
    (["2.13.0", "--existing", "/no/such/python"], "/no/such/python"),
    (["2.13.0", "--python", "/no/such/python"], "/no/such/python"),
    (["2.13.0", "--grid", "huge"], "huge"),
    (["2.13.0", "--device", "tpu"], "tpu"),
    ([], "no build"),
])
def test_track_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, named):
    proc = _track(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
    assert not (tmp_path / "d").exists()


def test_repeats_interleave_builds_on_replicate_machines(tmp_path, monkeypatch):
    from mhabench.track import track as track_mod
    calls = []

    def fake(s, *args, machine="", **k):
        hashes = ""
        if args[0] == "run" and args[-1].startswith("HASHFILE:"):
            hashes = Path(args[-1][len("HASHFILE:"):]).read_text().split()
        calls.append((args[0], args[args.index("--machine") + 1], machine, hashes))
        return 0
    monkeypatch.setattr(track_mod, "asv", fake)
    s = Settings(dir=tmp_path, project=REPO, grid="smoke", device="cpu", machine=MACHINE,
                 repeats=3)
    a, b = Build(TORCH), Build(TORCH, variant="b")
    commits = {a.tag: "a" * 40, b.tag: "b" * 40}
    assert run_builds(s, [a, b], None, commits) == 0
    runs = [c for c in calls if c[0] == "run"]
    assert [c[1] for c in runs] == [MACHINE, MACHINE + "-r2", MACHINE + "-r3"]
    assert all(c[2] == c[1] for c in runs), "each run files its sweep records per machine"
    assert all(c[3] == ["a" * 40, "b" * 40] for c in runs)  # A B, A B, A B
    assert [c[1] for c in calls if c[0] == "machine"] == [c[1] for c in runs]


def test_asv_gets_a_record_dir_per_machine_and_the_feed_settings():
    from mhabench.track.track import RECORD_ENV, asv_env
    s = Settings(dir=Path("d"), project=REPO, grid="smoke", machine=MACHINE)
    assert asv_env(s, MACHINE + "-r2")[RECORD_ENV] == str(
        (Path("d") / "records" / (MACHINE + "-r2")).resolve())
    assert RECORD_ENV not in asv_env(s)
    conf = asv_config(s)
    assert conf["regressions_first_commits"]["^speedup\\.Noise\\."] is None
    assert conf["regressions_thresholds"]["^speedup\\.FastOverSlow\\.track_wall"] == 0.05
    assert conf["build_cache_size"] > 0 and conf["project_url"] and conf["show_commit_url"]


def test_bench_selects_benchmarks_in_every_asv_run(tmp_path, monkeypatch):
    from mhabench.track import track as track_mod
    calls = []
    monkeypatch.setattr(track_mod, "asv", lambda s, *args, **k: calls.append(args) or 0)
    s = Settings(dir=tmp_path, project=REPO, grid="smoke", device="cpu", machine=MACHINE,
                 bench="^speedup\\.")
    local = Build(TORCH, kind="local", python=sys.executable)
    assert run_builds(s, [Build(TORCH)], local, {Build(TORCH).tag: "a" * 40, local.tag: "b" * 40}) == 0
    runs = [c for c in calls if c[0] == "run"]
    assert len(runs) == 2
    assert all(list(c[c.index("--bench"):c.index("--bench") + 2]) == ["--bench", "^speedup\\."]
               for c in runs)


def test_suite_reaches_asv_through_the_environment(monkeypatch):
    from mhabench.track.track import SUITE_ENV, asv_env
    monkeypatch.setenv(SUITE_ENV, "full")
    for suite in ("core", "full"):
        s = Settings(dir=Path("d"), project=REPO, grid="smoke", suite=suite)
        assert asv_env(s)[SUITE_ENV] == suite


def test_threads_are_an_environment_parameter_of_the_generated_config():
    from mhabench.track.track import THREADS_ENV, asv_env
    s = Settings(dir=Path("d"), project=REPO, grid="smoke", threads=1)
    assert asv_config(s)["matrix"]["env_nobuild"] == {THREADS_ENV: ["1"]}
    assert asv_env(s)[THREADS_ENV] == "1"
    plain = Settings(dir=Path("d"), project=REPO, grid="smoke")
    assert "env_nobuild" not in asv_config(plain)["matrix"] and THREADS_ENV not in asv_env(plain)


def test_track_defaults_to_the_smoke_grid_on_a_cpu(tmp_path, monkeypatch):
    from mhabench import cli
    from mhabench.track import track as track_mod
    seen = []
    monkeypatch.setattr(track_mod, "track", lambda s, *a, **k: seen.append(s) or 0)
    assert cli.main(["track", "2.13.0", "--dir", str(tmp_path)]) == 0
    assert cli.main(["track", "2.13.0", "--dir", str(tmp_path), "--device", "cuda",
                     "--threads", "3"]) == 0
    assert [(s.grid, s.threads) for s in seen] == [("smoke", 1), ("quick", 3)]
