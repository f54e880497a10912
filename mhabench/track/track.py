"""``mhabench track``: benchmark a list of torch builds through asv, one commit per build, each
build in an environment of its own, every record checked against the build it claims.

Under ``--dir`` (default ``.asv/torch``):

``builds/``
    a git repository whose branch ``main`` is a chain of one commit per torch build, oldest
    version first (:mod:`mhabench.track.builds`), tagged ``torch-<version>``. Author, committer
    and dates are fixed, so the same build list always gives the same hashes and stored results
    stay attached. Inserting a build between recorded ones re-hashes the commits after it;
    their stored results are re-attributed to the new hashes (same build, same numbers).
``envs/<tag>/``, ``env/current``
    one virtualenv per pip build (:mod:`mhabench.track.envs`), made once; asv runs every build
    with ``-E existing:env/current/bin/python`` (a stable path: asv makes it a graph parameter)
    after pointing ``env/current`` at the build's own environment.
``asv.conf.json``, ``builds.json``, ``installed/``, ``records/``, ``refused/``, ``results/``,
``html/``
    the generated config, the build list and commit of each build, what each install reported
    (torch version, git hash, CPU or CUDA variant), each record's full results (its proof of
    build, op maps and host calibration), records refused because they measured another build
    than they claim, and asv's own output.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalogue as cat
from ..measure.config import ConfigError, canonical_device, canonical_dtype, parse_grid
from ..measure.fileio import atomic_write
from ..run.spec import RunSpec, SuiteSpec, env_of
from .builds import Build, commit_dates, local_build, merged, parse_spec

REPO_DIR, CONFIG, MANIFEST, INSTALLED = "builds", "asv.conf.json", "builds.json", "installed"
RECORDS, REFUSED = "records", "refused"

#: Fixed identity and settings for the builds repository's commits (hashes must not depend on
#: who runs ``track`` or on their git configuration).
GIT_ENV = {"GIT_AUTHOR_NAME": "mhabench", "GIT_AUTHOR_EMAIL": "mhabench@localhost",
           "GIT_COMMITTER_NAME": "mhabench", "GIT_COMMITTER_EMAIL": "mhabench@localhost",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
#: asv machine names become folder names; the gate reads ``M-rN`` as replicates of ``M``.
MACHINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: The wall ratios' feed threshold per device. On a GPU host the fast path's wall time flips
#: between states from process to process (0.39 against 0.73 of the slow path's at one point of
#: an A/A pair on an H200): asv's factor of one record against the next cannot tell that from a
#: regression, so the feed leaves wall ratios to the gate there (replicates, separation).
WALL_FEED = {"cpu": 0.05, "cuda": None}


@dataclass(frozen=True)
class Settings:
    """What one ``mhabench track`` call records, and where."""

    dir: Path
    project: Path                   # the source tree (or copy) each build's env installs
    grid: str = ""
    device: str = "cpu"
    dtype: str = ""
    machine: str = ""
    rerun: bool = False
    suite: str = "full"             # MHABENCH_SUITE: full, core or host
    instructions: bool = False      # MHABENCH_INSTRUCTIONS (CPU): callgrind counts per record
    repeats: int = 1                # records per build, in fresh processes, builds interleaved
    asv_env: dict = field(default_factory=dict, compare=False)  # extra env for asv (tests)

    @property
    def grid_family(self) -> str:
        """asv draws only the latest discovery's parameters: smoke/custom need a dir of their own."""
        name = parse_grid(self.grid, self.dtype or "float32", self.device).name
        return "seed" if name in ("seed", "quick") else self.grid or name

    @property
    def machine_name(self) -> str:
        if self.machine:
            return self.machine
        name = parse_grid(self.grid, self.dtype or "float32", self.device).name
        return f"{socket.gethostname()}-{name}-{self.device.replace(':', '')}" + (
            f"-{self.dtype}" if self.dtype else "")

    def replicate_machine(self, n: int) -> str:
        """Record ``n`` (1-based) of a build lives on machine ``M`` (n = 1) or ``M-rN``: asv
        keeps one result per (commit, environment, machine)."""
        return self.machine_name if n == 1 else f"{self.machine_name}-r{n}"

    def suite_spec(self, machine: str) -> SuiteSpec:
        run = RunSpec(grid=self.grid, device=self.device, dtype=self.dtype,
                      instructions=self.instructions)
        return SuiteSpec(run, self.suite, str((self.dir / RECORDS / machine).resolve()))


# --- checks before anything is written ----------------------------------------------------------
def check_asv() -> None:
    try:
        import asv  # noqa: F401
    except ImportError:
        raise ConfigError("asv is not installed (pip install 'mhabench[asv]')") from None


def check_dir(directory: Path) -> None:
    """``--dir`` must be a folder this user can write (or one that can be made)."""
    from ..measure.fileio import check_output
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dir {directory}: not a folder")
    check_output(directory / MANIFEST, "--dir")


def check_machine(name: str) -> None:
    if name and (not MACHINE.fullmatch(name) or re.search(r"-r\d+$", name)):
        raise ConfigError(f"--machine {name!r}: letters, digits, '.', '_' and '-' only, not "
                          "ending in -rN (replicates are named so)")


# --- the builds repository ------------------------------------------------------------------------
def _git(repo: Path, *args: str, stdin: str | None = None, env: dict | None = None) -> str:
    full = {**os.environ, **GIT_ENV, **(env or {})}
    out = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
                          *args], cwd=repo, input=stdin, capture_output=True, text=True, env=full)
    if out.returncode != 0:
        raise ConfigError(f"git {args[0]} in {repo}: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout.strip()


def write_repo(repo: Path, builds: list[Build]) -> dict[str, str]:
    """Make ``repo``'s branch ``main`` the chain of ``builds`` (ordered) and tag each commit.

    Plumbing only (hash-object, mktree, commit-tree, update-ref): no working tree is touched,
    and a commit's hash depends only on its build, its date and the builds before it.
    Returns ``{tag: commit}``; tags of builds no longer listed are removed.
    """
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / "HEAD").exists():
        _git(repo, "init", "-q", "--bare", "-b", "main")
    commits, parent = {}, None
    for build, date in zip(builds, commit_dates(builds)):
        entries = []
        for name, text in sorted(build.files().items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", stdin=text)
            entries.append(f"100644 blob {blob}\t{name}")
        tree = _git(repo, "mktree", stdin="\n".join(entries) + "\n")
        stamp = f"{date} +0000"
        parent_args = ["-p", parent] if parent else []
        parent = _git(repo, "commit-tree", tree, *parent_args, "-F", "-", stdin=build.message(),
                      env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
        commits[build.tag] = parent
    if parent:
        _git(repo, "update-ref", "refs/heads/main", parent)
    existing = set(_git(repo, "tag", "--list").split())
    for tag in existing - set(commits):
        _git(repo, "tag", "-d", tag)
    for tag, commit in commits.items():
        _git(repo, "tag", "-f", tag, commit)
    return commits


def reattribute(directory: Path, moves: dict[str, str]) -> list[str]:
    """Move stored results and record files of re-hashed commits (old -> new hash): a build
    inserted before recorded ones changes their commits, not their torch builds."""
    written = []
    for old, new in moves.items():
        for path in sorted(glob.glob(str(directory / "results" / "*" / f"{old[:8]}-*.json"))):
            doc = json.loads(Path(path).read_text())
            if doc.get("commit_hash") != old:
                continue
            doc["commit_hash"] = new
            target = Path(path).with_name(new[:8] + Path(path).name[8:])
            atomic_write(target, json.dumps(doc))
            if target != Path(path):
                os.unlink(path)
            written.append(str(target))
        for path in glob.glob(str(directory / RECORDS / "*" / f"{old}-*.json")):
            os.replace(path, path.replace(old, new))
        src = directory / INSTALLED / f"{old}.json"
        if src.exists():
            os.replace(src, directory / INSTALLED / f"{new}.json")
    return written


def read_manifest(directory: Path) -> dict:
    """``{"grid_family", "builds": [Build, ...], "commits": {tag: hash}}`` ({} if none yet)."""
    path = directory / MANIFEST
    if not path.exists():
        return {}
    from ..measure.fileio import read_json
    doc = read_json(path, "builds manifest")
    try:
        builds = [Build(**b) for b in doc["builds"]]
        if not isinstance(doc.get("commits", {}), dict) or \
                not isinstance(doc.get("grid_family", ""), str):
            raise TypeError("'commits' must be an object and 'grid_family' a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a builds manifest ({exc})") from None
    return {"grid_family": doc.get("grid_family", ""), "builds": builds,
            "commits": dict(doc.get("commits", {}))}


def asv_config(s: Settings) -> dict:
    """The generated asv configuration (absolute paths: it lives beside its outputs). Every
    build runs in an ``existing`` environment (its own virtualenv, or a developer's
    interpreter): asv builds and installs nothing."""
    d, project = s.dir.resolve(), s.project.resolve()
    device = "cuda" if s.device.startswith("cuda") else "cpu"
    return {
        "version": 1,
        "project": "mhabench",
        "repo": str(d / REPO_DIR),
        "dvcs": "git",
        "branches": ["main"],
        "environment_type": "virtualenv",
        "build_command": [],
        "install_command": [],
        "benchmark_dir": str(project / "benchmarks"),
        "env_dir": str(d / "env"),
        "results_dir": str(d / "results"),
        "html_dir": str(d / "html"),
        "launch_method": "forkserver",
        "default_benchmark_timeout": 300,
        # the builds repository is local: a commit stands for a torch build named in its
        # subject (with torch's git hash), and has no page to link to
        "show_commit_url": "#",
        **cat.feed_settings(WALL_FEED[device]),
    }


def prepare(s: Settings, builds: list[Build]) -> dict[str, str]:
    """Make the builds repository, manifest and config those of ``builds`` (ordered); return
    ``{tag: commit}``. Results of re-hashed builds move to their new commits."""
    old = read_manifest(s.dir)
    commits = write_repo(s.dir / REPO_DIR, builds)
    moves = {h: commits[t] for t, h in old.get("commits", {}).items()
             if t in commits and commits[t] != h}
    reattribute(s.dir, moves)
    atomic_write(s.dir / MANIFEST, json.dumps(
        {"grid_family": s.grid_family, "builds": [b.manifest() for b in builds],
         "commits": commits}, indent=1) + "\n")
    atomic_write(s.dir / CONFIG, json.dumps(asv_config(s), indent=1) + "\n")
    ignore = s.dir / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, "*\n")
    return commits


# --- driving asv ----------------------------------------------------------------------------------
def asv_env(s: Settings, machine: str = "") -> dict:
    from ..run.spec import ENV_VARS
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(env_of(s.suite_spec(machine or s.machine_name)))
    env["ASV_PYTHONPATH"] = str(s.project.resolve())  # every build reads this one mhabench
    env.update(s.asv_env)
    return env


def asv(s: Settings, *args: str, echo: bool = True, machine: str = "") -> int:
    """Run ``python -m asv ARGS --config <generated>`` in the dir; a run for ``machine`` files
    the sweep's full results under ``records/<machine>/``."""
    cmd = [sys.executable, "-m", "asv", args[0], "--config", str((s.dir / CONFIG).resolve()),
           *args[1:]]
    if echo:
        print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, cwd=s.dir, env=asv_env(s, machine)).returncode


def result_files(s: Settings, commit: str, replicate: int) -> list[Path]:
    machine = s.replicate_machine(replicate)
    return [Path(p) for p in glob.glob(str(s.dir / "results" / machine / f"{commit[:8]}-*.json"))]


def recorded(s: Settings, commit: str, replicate: int = 1) -> bool:
    """asv holds a result of this commit on this replicate's machine with at least one value: a
    run that was killed or whose sweep failed leaves a file of failures, which is not a record."""
    from .asv_results import load_record
    for path in result_files(s, commit, replicate):
        try:
            rec = load_record(path)
        except ConfigError:
            continue
        if rec.commit == commit and any(v is not None for row in rec.values.values()
                                        for v in row.values()):
            return True
    return False


def installed_info(directory: Path, commit: str) -> dict:
    try:
        return json.loads((directory / INSTALLED / f"{commit}.json").read_text())
    except (OSError, ValueError):
        return {}


def build_python(directory: Path, name: str) -> str:
    """The interpreter a build of ``directory`` was measured with ("" if none is known)."""
    manifest = read_manifest(directory) if (directory / MANIFEST).exists() else {}
    for b in manifest.get("builds", []):
        if name in (b.tag, b.version, b.tag.removeprefix("torch-")):
            if b.kind == "local":
                return b.python
            from .envs import env_dir, python_of
            py = python_of(env_dir(directory, b))
            return str(py) if py.exists() else ""
    return ""


def settle(s: Settings, build: Build, commit: str, replicate: int) -> str:
    """After a build's asv run: its record file named after its commit, and checked against the
    build; a record that measured another build is moved to ``refused/`` with its asv result
    (named, not used). Returns "" or why it was refused."""
    from .asv_results import load_record
    from .records import proven
    machine = s.replicate_machine(replicate)
    records = s.dir / RECORDS / machine
    names = set()
    for p in result_files(s, commit, replicate):
        try:
            names.add(load_record(p).env_name)
        except ConfigError:
            pass
    for path in records.glob("existing-*.json"):  # asv gives an existing env no ASV_* names
        if len(names) == 1:
            os.replace(path, records / f"{commit}-{names.pop()}.json")
    files = sorted(records.glob(f"{commit}-*.json"))
    if not files:
        return ""
    try:
        meta = json.loads(files[-1].read_text()).get("meta") or {}
    except (OSError, ValueError):
        return ""
    expected = {"version": build.version, **{k: v for k, v in
                                             installed_info(s.dir, commit).items()
                                             if k in ("git_version", "variant")}}
    why = proven(meta, expected)
    if why:
        dest = s.dir / REFUSED / machine
        dest.mkdir(parents=True, exist_ok=True)
        for p in files + result_files(s, commit, replicate):
            os.replace(p, dest / p.name)
    return why


def run_builds(s: Settings, builds: list[Build], commits: dict[str, str]) -> tuple[int, list]:
    """Record each build ``s.repeats`` times: round r runs each build lacking record r (all of
    them with ``rerun``) in turn, one fresh asv run each, on replicate machine r. Builds are
    interleaved (A B A B ...). Returns (worst exit status, refusals)."""
    from . import envs
    status, refused = 0, []
    for r in range(1, s.repeats + 1):
        machine = s.replicate_machine(r)
        if asv(s, "machine", "--yes", "--machine", machine) != 0:
            raise ConfigError(f"asv machine --machine {machine} failed")
        for b in builds:
            commit = commits[b.tag]
            if not s.rerun and recorded(s, commit, r):
                print(f"{b.tag}: already recorded on {machine} (--rerun to measure again)")
                continue
            python = b.python if b.kind == "local" else str(envs.activate(s.dir, b))
            status = max(status, asv(s, "run", "--machine", machine, "--show-stderr", "-E",
                                     f"existing:{python}", "--set-commit-hash", commit,
                                     machine=machine))
            why = settle(s, b, commit, r)
            if why:
                refused.append(f"{b.tag} record {r}: {why}")
                print(f"{b.tag}: record {r} refused: {why}", file=sys.stderr)
    return status, refused


def summary(s: Settings, builds: list[Build], commits: dict[str, str]) -> str:
    """The table of builds: tag, commit, installed torch, variant, git hash, records."""
    from prettytable import PrettyTable
    table = PrettyTable(["build", "commit", "kind", "torch", "variant", "torch git", "recorded"])
    table.align = "l"
    for b in builds:
        c = commits[b.tag]
        info = installed_info(s.dir, c)
        table.add_row([b.tag, c[:8], b.kind, info.get("version", "-"), info.get("variant", "-"),
                       (info.get("git_version") or b.git_version or "-")[:12],
                       f"{sum(recorded(s, c, r) for r in range(1, s.repeats + 1))}/{s.repeats}"])
    return table.get_string()


def install(s: Settings, pip_builds: list[Build], log=print) -> tuple[list[Build], list[str]]:
    """Each pip build's own environment, made once; (the builds that installed, one line per
    build that did not). A build that does not install is not kept."""
    from . import envs
    from ..suite.common import gpu_present
    cpu = not s.device.startswith("cuda") and not gpu_present()
    ok, failed = [], []
    for b in pip_builds:
        try:
            info = envs.ensure(s.dir, b, cpu, log)
        except envs.InstallFailed as exc:
            failed.append(f"{b.tag}: {exc}")
            continue
        ok.append(b)
        log(f"{b.tag}: torch {info.get('version')} ({info.get('variant')} wheel)")
    return ok, failed


def record_install(s: Settings, builds: list[Build], commits: dict[str, str]) -> None:
    from . import envs
    for b in builds:
        if b.kind == "local":
            continue
        info_file = envs.env_dir(s.dir, b) / ".mhabench-installed.json"
        if info_file.is_file():
            atomic_write(s.dir / INSTALLED / f"{commits[b.tag]}.json", info_file.read_text())


def track(s: Settings, specs: list[str], existing: str = "", nightly_index: str = "") -> int:
    """Check everything, make each build's environment, update the builds repo, run asv,
    publish, tell the story."""
    from . import envs
    from .builds import NIGHTLY_INDEX, dated
    pip_builds = [parse_spec(spec, nightly_index or NIGHTLY_INDEX) for spec in specs]
    check_asv()
    check_dir(s.dir)
    check_machine(s.machine)
    local = None
    if existing:
        info = envs.probe(existing)
        local = local_build(info["version"], info["git_version"], info["python"])
    known = read_manifest(s.dir)  # checked (ConfigError) before anything is written
    if known and known["grid_family"] != s.grid_family:
        raise ConfigError(f"{s.dir} holds grid {known['grid_family']!r} results; use another "
                          f"--dir for grid {s.grid!r} (asv draws one parameter set per results "
                          "dir)")
    if not pip_builds and local is None and not known.get("builds"):
        raise ConfigError("no build given (VERSION ... and/or --existing PYTHON)")
    s.dir.mkdir(parents=True, exist_ok=True)
    pip_builds = [dated(b) for b in pip_builds]  # after the checks: it may ask the index
    every = merged(known.get("builds", []), pip_builds + ([local] if local else []))
    installed, failed = install(s, [b for b in every if b.kind != "local"])
    for line in failed:
        print(f"mhabench: cannot install {line}; not kept", file=sys.stderr)
    builds = [b for b in every if b.kind == "local" or b in installed]
    if not builds:
        return 3
    commits = prepare(s, builds)
    record_install(s, builds, commits)
    status, refused = run_builds(s, builds, commits)
    pub = asv(s, "publish")
    print(summary(s, builds, commits))
    for line in refused:
        print(f"refused: {line}")
    html = (s.dir / "html").resolve()
    if pub == 0:
        print(f"report: {html}/index.html (serve it offline: mhabench serve {html})")
    else:
        print(f"asv publish failed (exit {pub})", file=sys.stderr)
    return 1 if (status or pub or failed or refused) else 0


def settings_of(args) -> Settings:
    """The flags as Settings; ConfigError on a bad value, before anything is written."""
    device = canonical_device(args.device)
    dtype = canonical_dtype(args.dtype) if args.dtype else ""
    parse_grid(args.grid, dtype or ("float16" if device.startswith("cuda") else "float32"),
               device)
    if not 1 <= args.repeats <= 100:
        raise ConfigError(f"--repeats must be in 1..100, got {args.repeats}")
    if args.instructions and device.startswith("cuda"):
        raise ConfigError("--instructions counts on a CPU only; on a GPU the bytecode counts "
                          "are the exact host figure")
    if args.instructions:
        from ..measure.instructions import valgrind
        valgrind()
    from .project import project
    check_dir(Path(args.dir))
    return Settings(dir=Path(args.dir), project=project(Path(args.dir)), grid=args.grid,
                    device=device, dtype=dtype, machine=args.machine, rerun=args.rerun,
                    suite=args.suite, instructions=args.instructions, repeats=args.repeats)
