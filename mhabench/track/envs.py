"""One virtual environment per torch build, so that builds never share installed libraries.

PyPI's CUDA 12 and CUDA 13 library wheels own the same files (NCCL, cuDNN...): swapping torch
inside one environment leaves a later build importing the wrong ones, or measuring another
build than it claims. So each build gets ``envs/<tag>/`` of its own, made once: torch without
its requirements, then those requirements but triton (loaded only by ``torch.compile``, which
nothing here uses), numpy below 2 for torch below 2.4 (built against numpy 1), mhabench's own
requirements and asv-runner (mhabench itself is read from the project's folder, which asv puts
on the environment's path: one copy for every build). On a machine without a GPU the CPU wheel
(``torch==X+cpu``) is taken where an index has one, else the CUDA wheel; which one is recorded
in ``installed/<commit>.json`` with the torch version and git hash it reports.

asv reads an ``existing`` environment's interpreter path as a graph parameter, so every build
is run through one stable path, ``env/current/bin/python``: a link switched to the build's own
environment before its run (:func:`activate`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..measure.config import ConfigError
from .builds import Build

ENVS, CURRENT, INSTALLED = "envs", "env/current", "installed"
ASV_RUNNER = "asv-runner==0.3.2"
#: What the installed torch says of itself, recorded beside the build's commit.
RECORD_CODE = ("import json, sys, torch; print(json.dumps(dict(version=str(torch.__version__), "
               "git_version=str(torch.version.git_version), cuda=torch.version.cuda, "
               "variant=('cu' + torch.version.cuda.replace('.', '')) if torch.version.cuda "
               "else 'cpu', python=sys.executable)))")
#: Probe of an existing interpreter (a developer's own build).
PROBE_CODE = RECORD_CODE


class InstallFailed(Exception):
    """pip could not install a build: one line, the reason."""


def env_dir(directory: Path, build: Build) -> Path:
    return directory / ENVS / build.tag


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def current(directory: Path) -> Path:
    """The stable interpreter path asv runs every pip build with."""
    return python_of(directory / CURRENT)


def activate(directory: Path, build: Build) -> Path:
    """Point ``env/current`` at the build's environment; the stable interpreter path."""
    link = directory / CURRENT
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(".current.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(env_dir(directory, build), link.parent), tmp)
    os.replace(tmp, link)
    return current(directory)


def _pip(python: Path, *args: str, constraint_free: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    if constraint_free:  # the build is asked for by version: a pip constraint on torch is lifted
        env["PIP_CONSTRAINT"] = os.devnull
    return subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          env=env)


def _last(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout or "").strip().splitlines()
             if ln.strip() and not ln.startswith("WARNING")]
    return (lines[-1] if lines else f"exit {proc.returncode}")[:200]


def torch_lines(build: Build, cpu: bool) -> list[list[str]]:
    """pip arguments to try in turn for the build's torch: the CPU wheel first where asked."""
    base = build.requirements()
    pin = base[-1 - len(build.extra)]
    opts = [a for line in base if line != pin and line not in build.extra for a in line.split()]
    tries = []
    if cpu and "+" not in pin:
        tries.append([*opts, f"{pin}+cpu"])
    tries.append([*opts, pin])
    return tries


def recipe(build: Build, cpu: bool) -> str:
    text = json.dumps([build.manifest(), cpu, sys.version, ASV_RUNNER], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure(directory: Path, build: Build, cpu: bool, log=print) -> dict:
    """The build's environment, made if missing or made from another recipe; what its torch
    reports. InstallFailed (nothing kept) where pip cannot install the build."""
    env = env_dir(directory, build)
    ready = env / ".mhabench-ready"
    want = recipe(build, cpu)
    if ready.is_file() and ready.read_text().strip() == want:
        return json.loads((env / ".mhabench-installed.json").read_text())
    if env.exists():
        shutil.rmtree(env)
    log(f"{build.tag}: making its environment {env} (once)")
    try:
        return _make(env, build, cpu, want)
    except BaseException:
        shutil.rmtree(env, ignore_errors=True)
        raise


def host_torch(build: Build) -> bool:
    """Whether this interpreter's own torch is the build (same version, no index of its own):
    its environment then sees this interpreter's packages instead of installing torch again."""
    from importlib import metadata
    try:
        have = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return False
    return build.kind == "release" and have.split("+")[0] == build.version


def _make(env: Path, build: Build, cpu: bool, want: str) -> dict:
    shared = host_torch(build)
    proc = subprocess.run([sys.executable, "-m", "venv", *(["--system-site-packages"] if shared
                                                           else []), str(env)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise InstallFailed(f"cannot make a virtualenv: {_last(proc)}")
    py = python_of(env)
    if not shared:
        _torch(py, build, cpu)
    extra = [ASV_RUNNER, *build.extra] if shared else None
    _rest(py, build, extra)
    probe = subprocess.run([str(py), "-c", RECORD_CODE], capture_output=True, text=True)
    if probe.returncode:
        raise InstallFailed(f"torch {build.version} does not import: {_last(probe)}")
    info = json.loads(probe.stdout.strip().splitlines()[-1])
    info["shared_with_host"] = shared
    (env / ".mhabench-installed.json").write_text(json.dumps(info))
    (env / ".mhabench-ready").write_text(want + "\n")
    return info


def _torch(py: Path, build: Build, cpu: bool) -> None:
    why = ""
    for args in torch_lines(build, cpu):
        proc = _pip(py, "install", "-q", "--no-deps", *args, constraint_free=True)
        if proc.returncode == 0:
            break
        why = _last(proc)
    else:
        raise InstallFailed(f"pip cannot install torch {build.version}: {why}")


def _rest(py: Path, build: Build, only: list | None = None) -> None:
    """torch's requirements (but triton), numpy, mhabench's own requirements and asv-runner;
    ``only`` these where the environment sees this interpreter's packages."""
    if only is None:
        reqs = subprocess.run([str(py), "-c", REQUIRES_CODE], capture_output=True, text=True)
        if reqs.returncode:
            raise InstallFailed(f"torch {build.version} installed but unreadable: {_last(reqs)}")
        old = tuple(int(x) for x in build.version.split(".")[:2] if x.isdigit()) < (2, 4)
        only = reqs.stdout.split() + ["numpy<2" if old else "numpy", "tqdm", "prettytable",
                                      "packaging", ASV_RUNNER, *build.extra]
    proc = _pip(py, "install", "-q", *only, constraint_free=True)
    if proc.returncode:
        raise InstallFailed(f"torch {build.version}'s requirements: {_last(proc)}")


#: torch's own requirements, but triton and those behind an extra.
REQUIRES_CODE = """
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
keep = []
for text in requires("torch") or []:
    r = Requirement(text)
    if r.name == "triton" or (r.marker and not r.marker.evaluate({"extra": ""})):
        continue
    keep.append(str(r).split(";")[0].replace(" ", ""))
print(" ".join(keep))
"""


def probe(python: str) -> dict:
    """What torch an existing interpreter (a developer's own build) imports."""
    try:
        out = subprocess.run([python, "-c", PROBE_CODE], capture_output=True, text=True,
                             timeout=300)
    except OSError:
        raise ConfigError(f"--existing {python}: no such interpreter") from None
    if out.returncode != 0:
        raise ConfigError(f"--existing {python}: cannot import torch ({_last(out)})")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    check = subprocess.run([python, "-c", "import asv_runner"], capture_output=True)
    if check.returncode != 0:
        raise ConfigError(f"--existing {python}: asv_runner is not installed there "
                          "(pip install asv-runner==0.3.2)")
    return info
