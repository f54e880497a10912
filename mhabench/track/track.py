"""``mhabench track``: benchmark a list of torch builds through asv, one commit per build.

Under ``--dir`` (default ``.asv/torch``):

``builds/``
    a git repository whose branch ``main`` is a chain of one commit per torch build, oldest
    version first (see :mod:`mhabench.track.builds` for the order), tagged ``torch-<version>``. Each
    commit holds ``build.json`` and, for pip builds, ``requirements.txt``. Author, committer and
    dates are fixed, so the same build list always gives the same hashes and stored results stay
    attached. Inserting a build between recorded ones re-hashes the commits after it; their stored
    results are re-attributed to the new hashes (same torch build, same numbers), so nothing is
    measured twice.
``asv.conf.json``
    generated: ``repo`` is ``builds/``, ``build_command: []``; installing a commit is
    ``pip install -r requirements.txt`` (the torch build) then this project (its source tree, or
    a copy of the installed package: :mod:`.project`),
    then recording the installed torch's version and git hash in ``installed/<commit>.json``.
``builds.json``, ``installed/``, ``results/``, ``html/``, ``env/``
    the build list and commit of each build, what each install reported, and asv's own output.

Pip builds (released versions, nightlies) run in asv virtualenvs (``asv run HASHFILE:...``), so
``asv continuous`` and ``asv find`` work on the same config. A developer's own build (``--existing
PYTHON``) runs with ``-E existing:PYTHON --set-commit-hash <its commit>``.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .asv_feed import feed_settings
from .asv_results import file_values
from .builds import Build, commit_dates, local_build, merged, parse_spec
from ..measure.config import ConfigError
from ..measure.fileio import atomic_write

GRID_ENV, DEVICE_ENV, DTYPE_ENV = "MHABENCH_GRID", "MHABENCH_DEVICE", "MHABENCH_DTYPE"
SUITE_ENV = "MHABENCH_SUITE"
THREADS_ENV = "MHABENCH_THREADS"
RECORD_ENV = "MHABENCH_RECORD_DIR"  # where the sweep files its full per-point results
REPO_DIR, CONFIG, MANIFEST, INSTALLED = "builds", "asv.conf.json", "builds.json", "installed"

#: Fixed identity and settings for the builds repository's commits (hashes must not depend on
#: who runs ``track`` or on their git configuration).
GIT_ENV = {"GIT_AUTHOR_NAME": "mhabench", "GIT_AUTHOR_EMAIL": "mhabench@localhost",
           "GIT_COMMITTER_NAME": "mhabench", "GIT_COMMITTER_EMAIL": "mhabench@localhost",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}

#: Run in the build's environment once torch is installed (no braces: asv formats commands).
RECORD_CODE = ("import json, os, sys, torch; p = sys.argv[1]; "
               "os.makedirs(os.path.dirname(p), exist_ok=True); "
               "json.dump(dict(version=str(torch.__version__), "
               "git_version=str(torch.version.git_version), cuda=str(torch.version.cuda), "
               "python=sys.executable, mhabench_source=sys.argv[2]), open(p, 'w'))")
PROBE_CODE = ("import json, sys, torch; print(json.dumps(dict(version=str(torch.__version__), "
              "git_version=str(torch.version.git_version), python=sys.executable)))")


@dataclass(frozen=True)
class Settings:
    """What one ``mhabench track`` call records, and where."""

    dir: Path
    project: Path                   # the source tree (or copy) each build's env installs
    grid: str = "quick"
    device: str = "cpu"
    dtype: str = ""
    machine: str = ""
    python: str = ""                # X.Y for asv's virtualenvs ("": the running interpreter's)
    rerun: bool = False
    bench: str = ""                 # asv's --bench regex ("": every benchmark)
    suite: str = "full"             # MHABENCH_SUITE: full or core (mhabench/suite/common.py)
    threads: int | None = None      # MHABENCH_THREADS (None: the suite's default for the device)
    regression_threshold: float = 0.05
    repeats: int = 1                # records per build, in fresh processes, builds interleaved
    uninstall: tuple[str, ...] = ()  # packages to remove with the project when switching builds
    asv_env: dict = field(default_factory=dict, compare=False)  # extra env for asv (tests)

    @property
    def grid_family(self) -> str:
        """asv draws only the latest discovery's parameters: smoke/custom need a dir of their own."""
        g = self.grid.lower()
        return "seed" if g in ("seed", "quick") else g

    @property
    def machine_name(self) -> str:
        if self.machine:
            return self.machine
        kind = "custom" if self.grid.lower().startswith("custom:") else self.grid.lower()
        return f"{socket.gethostname()}-{kind}-{self.device.replace(':', '')}" + (
            f"-{self.dtype}" if self.dtype else "")

    def replicate_machine(self, n: int) -> str:
        """Record ``n`` (1-based) of a build lives on machine ``M`` (n = 1) or ``M-rN``: asv
        keeps one result per (commit, environment, machine), and publish draws each as a
        series of its own."""
        return self.machine_name if n == 1 else f"{self.machine_name}-r{n}"


# --- checks before anything is written ----------------------------------------------------------
def check_asv() -> None:
    try:
        import asv  # noqa: F401
    except ImportError:
        raise ConfigError("asv is not installed (pip install 'mhabench[asv]')") from None


def python_version(python: str) -> str:
    """``3.11`` or an interpreter path -> the X.Y asv's virtualenvs are made with."""
    if re.fullmatch(r"\d+\.\d+", python):
        return python
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except OSError:
        raise ConfigError(f"--python {python}: no such interpreter") from None
    if out.returncode != 0:
        raise ConfigError(f"--python {python}: does not run")
    return out.stdout.strip()


def probe(python: str) -> dict:
    """The torch an existing interpreter imports: version, git_version, python (its real path)."""
    try:
        out = subprocess.run([python, "-c", PROBE_CODE], capture_output=True, text=True,
                             timeout=300)
    except OSError:
        raise ConfigError(f"--existing {python}: no such interpreter") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise ConfigError(f"--existing {python}: cannot import torch ({last})")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    check = subprocess.run([python, "-c", "import asv_runner"], capture_output=True)
    if check.returncode != 0:
        raise ConfigError(f"--existing {python}: asv_runner is not installed there "
                          "(pip install asv-runner)")
    return info


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


def reattribute(results_dir: Path, moves: dict[str, str]) -> list[str]:
    """Move stored results of re-hashed commits (old -> new hash); return the files written.

    A build inserted before recorded ones changes their commits, not their torch builds: the
    results belong to the new commits of the same builds.
    """
    written = []
    for old, new in moves.items():
        for path in sorted(glob.glob(str(results_dir / "*" / f"{old[:8]}-*.json"))):
            doc = json.loads(Path(path).read_text())
            if doc.get("commit_hash") != old:
                continue
            doc["commit_hash"] = new
            target = Path(path).with_name(new[:8] + Path(path).name[8:])
            atomic_write(target, json.dumps(doc))
            if target != Path(path):
                os.unlink(path)
            written.append(str(target))
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


def source_digest(project: Path) -> str:
    """A short hash of the installed project's code (the package and its build file)."""
    h = hashlib.sha256()
    files = sorted((project / "mhabench").rglob("*.py")) + [project / "pyproject.toml"]
    for f in files:
        if f.is_file():
            h.update(f.relative_to(project).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def asv_config(s: Settings) -> dict:
    """The generated asv configuration (absolute paths: it lives beside its outputs)."""
    d, project = s.dir.resolve(), s.project.resolve()
    record = f"{d / INSTALLED}/{{commit}}.json"
    uninstall = " ".join(shlex.quote(p) for p in ("mhabench", *s.uninstall))
    return {
        "version": 1,
        "project": "mhabench",
        "repo": str(d / REPO_DIR),
        "dvcs": "git",
        "branches": ["main"],
        "environment_type": "virtualenv",
        "pythons": [s.python or "%d.%d" % sys.version_info[:2]],
        # the thread count as an environment parameter: shown on the graphs, its own series
        "matrix": {"req": {}, **({"env_nobuild": {THREADS_ENV: [str(s.threads)]}}
                                 if s.threads else {})},
        "build_command": [],
        "install_command": [
            "in-dir={build_dir} python -m pip install -r requirements.txt",
            f"python -m pip install --no-build-isolation {shlex.quote(str(project))}",
            # the source digest makes asv reinstall this project whenever its code changed:
            # asv keys an environment's install on the commit and these commands only, and
            # the commits here stand for torch builds, not for this project's versions
            f"python -c {shlex.quote(RECORD_CODE)} {shlex.quote(record)} "
            f"{source_digest(project)}",
        ],
        "uninstall_command": [f"return-code=any python -m pip uninstall -y {uninstall}"],
        "install_timeout": 3600,
        "benchmark_dir": str(project / "benchmarks"),
        "env_dir": str(d / "env"),
        "results_dir": str(d / "results"),
        "html_dir": str(d / "html"),
        "launch_method": "forkserver",
        "default_benchmark_timeout": 300,
        # the builds repository is local: a commit stands for a torch build named in its
        # subject (with torch's git hash), and has no page to link to
        "show_commit_url": "#",
        **feed_settings(s.regression_threshold),
    }


def prepare(s: Settings, new: list[Build]) -> tuple[list[Build], dict[str, str]]:
    """Update the builds repository, manifest and config for ``new``; return (all builds, commits).

    Checked first (grid family of the dir), written after; results of re-hashed builds move.
    """
    old = read_manifest(s.dir)
    if old and old["grid_family"] != s.grid_family:
        raise ConfigError(f"{s.dir} holds grid {old['grid_family']!r} results; use another --dir "
                          f"for grid {s.grid!r} (asv draws one parameter set per results dir)")
    builds = merged(old.get("builds", []), new)
    commits = write_repo(s.dir / REPO_DIR, builds)
    moves = {h: commits[t] for t, h in old.get("commits", {}).items()
             if t in commits and commits[t] != h}
    reattribute(s.dir / "results", moves)
    for old_hash, new_hash in moves.items():
        src = s.dir / INSTALLED / f"{old_hash}.json"
        if src.exists():
            os.replace(src, s.dir / INSTALLED / f"{new_hash}.json")
    atomic_write(s.dir / MANIFEST, json.dumps(
        {"grid_family": s.grid_family, "builds": [b.manifest() for b in builds],
         "commits": commits}, indent=1) + "\n")
    atomic_write(s.dir / CONFIG, json.dumps(asv_config(s), indent=1) + "\n")
    ignore = s.dir / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, "*\n")
    return builds, commits


# --- driving asv ----------------------------------------------------------------------------------
def asv_env(s: Settings, machine: str = "") -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in (GRID_ENV, DEVICE_ENV, DTYPE_ENV, SUITE_ENV, THREADS_ENV, RECORD_ENV)}
    env.update({GRID_ENV: s.grid, DEVICE_ENV: s.device, SUITE_ENV: s.suite})
    if s.threads:
        env[THREADS_ENV] = str(s.threads)
    if machine:
        env[RECORD_ENV] = str((s.dir / "records" / machine).resolve())
    if s.dtype:
        env[DTYPE_ENV] = s.dtype
    env.update(s.asv_env)
    return env


def asv(s: Settings, *args: str, echo: bool = True, machine: str = "") -> int:
    """Run ``python -m asv ARGS --config <generated>`` in the dir (asv's ``{conf_dir}`` is cwd);
    a run for ``machine`` files the sweep's full results under ``records/<machine>/``."""
    cmd = [sys.executable, "-m", "asv", args[0], "--config", str((s.dir / CONFIG).resolve()),
           *args[1:]]
    if echo:
        print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, cwd=s.dir, env=asv_env(s, machine)).returncode


def recorded(s: Settings, commit: str, replicate: int = 1) -> bool:
    """asv has a result file for this commit on this replicate's machine holding at least one
    value: a run that was killed or whose sweep timed out leaves a file of failures, which is
    not a record."""
    machine = s.replicate_machine(replicate)
    for path in glob.glob(str(s.dir / "results" / machine / f"{commit[:8]}-*.json")):
        try:
            doc = json.loads(Path(path).read_text())
            values = file_values(doc)
        except (OSError, ValueError, KeyError):
            continue
        if any(v is not None for row in values.values() for v in row.values()):
            return True
    return False


def installed_info(directory: Path, commit: str) -> dict:
    try:
        return json.loads((directory / INSTALLED / f"{commit}.json").read_text())
    except (OSError, ValueError):
        return {}


def _bench_args(s: Settings) -> list[str]:
    return ["--bench", s.bench] if s.bench else []


def run_builds(s: Settings, pip_builds: list[Build], local: Build | None,
               commits: dict[str, str]) -> int:
    """Record each build ``s.repeats`` times: round r runs asv once over the pip builds lacking
    record r (all with ``rerun``), then the local one, on replicate machine r. Builds are
    interleaved (A B A B ...), and every record is a fresh asv run (its own sweep process)."""
    status = 0
    for r in range(1, s.repeats + 1):
        machine = s.replicate_machine(r)
        if asv(s, "machine", "--yes", "--machine", machine) != 0:
            raise ConfigError(f"asv machine --machine {machine} failed")
        status = max(status, _run_round(s, pip_builds, local, commits, r))
    return status


def _run_round(s: Settings, pip_builds, local, commits, r: int) -> int:
    status, machine = 0, s.replicate_machine(r)
    todo = [b for b in pip_builds if s.rerun or not recorded(s, commits[b.tag], r)]
    for b in pip_builds:
        if b not in todo:
            print(f"{b.tag}: already recorded on {machine} (--rerun to measure again)")
    if todo:
        hashfile = s.dir / "run-hashes.txt"
        atomic_write(hashfile, "".join(commits[b.tag] + "\n" for b in todo))
        status = max(status, asv(s, "run", "--machine", machine, "--show-stderr",
                                 *_bench_args(s), f"HASHFILE:{hashfile.resolve()}",
                                 machine=machine))
    if local is not None:
        commit = commits[local.tag]
        if s.rerun or not recorded(s, commit, r):
            status = max(status, asv(s, "run", "--machine", machine, "--show-stderr",
                                     *_bench_args(s), "-E", f"existing:{local.python}",
                                     "--set-commit-hash", commit, machine=machine))
            atomic_write(s.dir / INSTALLED / f"{commit}.json", json.dumps(
                {"version": local.version, "git_version": local.git_version,
                 "python": local.python}))
        else:
            print(f"{local.tag}: already recorded on {machine} (--rerun to measure again)")
    return status


def summary(s: Settings, builds: list[Build], commits: dict[str, str]) -> str:
    """The table of builds: tag, commit, installed torch and its git hash, recorded or not."""
    from prettytable import PrettyTable
    table = PrettyTable(["build", "commit", "kind", "torch", "torch git", "recorded"])
    table.align = "l"
    for b in builds:
        c = commits[b.tag]
        info = installed_info(s.dir, c)
        table.add_row([b.tag, c[:8], b.kind, info.get("version", "-"),
                       (info.get("git_version") or b.git_version or "-")[:12],
                       f"{sum(recorded(s, c, r) for r in range(1, s.repeats + 1))}/{s.repeats}"])
    return table.get_string()


def track(s: Settings, specs: list[str], existing: str = "", nightly_index: str = "") -> int:
    """Parse and check everything, update the builds repo, run asv, publish, say where it is."""
    from .builds import NIGHTLY_INDEX, dated
    pip_builds = [parse_spec(spec, nightly_index or NIGHTLY_INDEX) for spec in specs]
    check_asv()
    s = replace(s, python=python_version(s.python) if s.python else "")
    local = None
    if existing:
        info = probe(existing)
        local = local_build(info["version"], info["git_version"], info["python"])
    if not pip_builds and local is None:
        raise ConfigError("no build given (VERSION ... and/or --existing PYTHON)")
    pip_builds = [dated(b) for b in pip_builds]  # after the checks: it may ask the index
    new = pip_builds + ([local] if local else [])
    builds, commits = prepare(s, new)
    # pip builds in the order they stand on the x-axis
    pip_builds = [b for b in builds if b in pip_builds]
    status = run_builds(s, pip_builds, local, commits)
    pub = asv(s, "publish")
    print(summary(s, builds, commits))
    html = (s.dir / "html").resolve()
    if pub == 0:
        print(f"report: {html}/index.html")
        print(f"serve it (offline too): mhabench serve {html} (then open http://127.0.0.1:8080)")
        print(f"regressions feed: {html}/regressions.json, {html}/regressions.xml")
    else:
        print(f"asv publish failed (exit {pub})", file=sys.stderr)
    return 1 if (status or pub) else 0


def register_track(sub) -> None:
    p = sub.add_parser("track", help="benchmark torch builds through asv, one commit per build",
                       description="Benchmark torch builds with asv (each build one commit of a "
                                   "generated repository), then publish. See README 'Tracking "
                                   "torch versions'.")
    p.add_argument("builds", nargs="*", metavar="BUILD",
                   help="torch version (2.13.0, torch==2.13.0), nightly (2.15.0.dev20260101), "
                        "optionally @YYYY-MM-DD")
    p.add_argument("--existing", default="", metavar="PYTHON",
                   help="also record the torch this interpreter imports (your own build)")
    p.add_argument("--python", default="", metavar="X.Y|PYTHON",
                   help="Python of asv's virtualenvs (default: this one's version)")
    p.add_argument("--grid", default=None,
                   help="smoke, quick, seed or custom:... (default: smoke on a CPU, where quick "
                        "takes over an hour; quick on CUDA)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    p.add_argument("--dtype", default="", help="fp16, bf16 or fp32 (the suite's default)")
    p.add_argument("--dir", default=".asv/torch", help="where the repo, config and results go")
    p.add_argument("--machine", default="", help="asv machine name (default HOST-GRID-DEVICE)")
    p.add_argument("--nightly-index", default="", metavar="URL",
                   help="pip index of nightlies (default the CPU one)")
    p.add_argument("--threads", default=None, metavar="N",
                   help="torch intra-op threads in the sweep (default 1 on a CPU, torch's own "
                        "on CUDA); an environment parameter on asv's graphs")
    p.add_argument("--rerun", action="store_true", help="measure builds already recorded again")
    p.add_argument("--repeats", type=int, default=1, metavar="N",
                   help="records per build, each a fresh asv run, builds interleaved (A B A B); "
                        "record r > 1 lives on machine MACHINE-rN. The gate reads the spread "
                        "between them")
    p.add_argument("--bench", default="", metavar="REGEX",
                   help="only the benchmarks matching (asv's --bench), e.g. '^speedup\\.': the "
                        "figures the gate reads, at a third of the suite's asv overhead")
    p.add_argument("--suite", default="full", choices=("full", "core"),
                   help="core: timing, speedup, host-share and error figures only, swept "
                        "without the extras (two thirds of the full suite's time on an H100's "
                        "seed grid)")
    p.set_defaults(func=cmd_track)


def cmd_track(args) -> int:
    from ..measure.config import canonical_device, canonical_dtype
    canonical_device(args.device)
    if args.dtype:
        canonical_dtype(args.dtype)
    from ..measure.host_setup import default_threads, parse_threads
    grid = args.grid or ("quick" if args.device.startswith("cuda") else "smoke")
    _check_grid(grid, args.device, args.dtype)
    threads = parse_threads(args.threads) or default_threads(args.device)
    if not 1 <= args.repeats <= 100:
        raise ConfigError(f"--repeats must be in 1..100, got {args.repeats}")
    from .project import project
    s = Settings(dir=Path(args.dir), project=project(Path(args.dir)),
                 grid=grid, device=args.device, dtype=args.dtype, machine=args.machine,
                 python=args.python, rerun=args.rerun, bench=args.bench, suite=args.suite,
                 threads=threads, repeats=args.repeats)
    return track(s, args.builds, existing=args.existing, nightly_index=args.nightly_index)


def _check_grid(grid: str, device: str, dtype: str) -> None:
    """The suite's own check of MHABENCH_* (raises ConfigError naming the bad value)."""
    from ..suite.common import selection
    env = {GRID_ENV: grid, DEVICE_ENV: device}
    if dtype:
        env[DTYPE_ENV] = dtype
    selection(env)
