"""Torch builds as commits: parse a build spec, order builds, and say what each commit holds.

asv plots and compares along the commits of its ``repo``. :mod:`mhabench.track.track` makes a small git
repository in which each commit stands for one torch build; this module is the pure part: which
builds, in which order, with which requirement lines, dated when, tagged how. Nothing here runs
git, pip or torch.

Spec forms (``mhabench track`` arguments):

``2.13.0`` / ``torch==2.13.0``
    a released build, installed by pip version (``--pre`` is added for an ``rc``/``a``/``b``).
``2.15.0.dev20260101``
    a nightly (a ``.devYYYYMMDD`` version): installed with ``--pre`` from the nightly index, dated
    by its own date.
``...@YYYY-MM-DD``
    any spec may carry the date of its build; it is shown by asv and kept in the commit.

A developer's own build (torch importable in an existing interpreter) is made by
:func:`local_build` from what that interpreter reports (version and ``torch.version.git_version``).

Order: by PEP 440 version, which puts ``2.14.1 < 2.15.0.dev20260101 < 2.15.0a0+git1234 < 2.15.0``
(a nightly before its source builds, both before the release): the x-axis of asv's graphs.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, replace

from packaging.version import InvalidVersion, Version

from ..measure.config import ConfigError

#: Where nightlies come from (pip's ``--index-url``); the CUDA ones replace ``cpu`` with e.g. cu126.
NIGHTLY_INDEX = "https://download.pytorch.org/whl/nightly/cpu"

#: Commit date (git needs one) of a build whose date is unknown when it is the first one;
#: later unknown dates follow the previous build by :data:`UNKNOWN_STEP` so that dates never
#: go backwards. A placeholder, not a date: the commit message says "date: unknown".
FIRST_DATE = int(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp())
UNKNOWN_STEP = 86400

KINDS = ("release", "nightly", "local")
_DEV_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


@dataclass(frozen=True)
class Build:
    """One torch build, as one commit of the builds repository.

    ``version`` is the torch version string; ``date`` (UTC seconds) the build's date when known;
    ``git_version`` torch's own commit when known (a local build reports it; pip builds learn it
    when installed, see :mod:`mhabench.track.track`); ``python`` the interpreter of a local build.
    """

    version: str
    kind: str = "release"
    date: int | None = None
    git_version: str = ""
    python: str = ""
    index_url: str = ""
    variant: str = ""               # tells builds of one version apart (a rebuild, a test's)
    extra: tuple[str, ...] = ()     # more requirement lines (packages installed with torch)

    def __post_init__(self):
        object.__setattr__(self, "extra", tuple(self.extra))  # from JSON lists too

    @property
    def tag(self) -> str:
        """Git tag naming the build's commit (asv shows tags on its graphs)."""
        name = self.version + (f"-{self.variant}" if self.variant else "")
        return "torch-" + re.sub(r"[^A-Za-z0-9._-]", "_", name)

    @property
    def key(self) -> tuple[Version, str]:
        return Version(self.version), self.variant

    def requirements(self) -> list[str]:
        """Lines of the commit's ``requirements.txt``: how pip installs this build.

        A local build has none: it is recorded from its own interpreter (``-E existing``).
        """
        if self.kind == "local":
            return []
        lines = []
        if self.index_url:
            lines.append(f"--index-url {self.index_url}")
        if self.kind == "nightly" or Version(self.version).is_prerelease:
            lines.append("--pre")
        lines.append(f"torch=={self.version}")
        return lines + list(self.extra)

    def message(self) -> str:
        """Commit message: the version first (asv shows the subject), then what is known."""
        head = f"torch {self.version}" + (f" (git {self.git_version[:12]})" if self.git_version
                                          else "")
        day = dt.datetime.fromtimestamp(self.date, dt.timezone.utc).strftime("%Y-%m-%d") \
            if self.date is not None else "unknown (the commit date is a placeholder)"
        body = [f"kind: {self.kind}", f"date: {day}"]
        if self.git_version:
            body.append(f"torch.version.git_version: {self.git_version}")
        if self.python:
            body.append(f"python: {self.python}")
        if self.index_url:
            body.append(f"index: {self.index_url}")
        return head + "\n\n" + "\n".join(body) + "\n"

    def manifest(self) -> dict:
        """What ``build.json`` in the commit holds (and ``builds.json`` beside the repo)."""
        out = {"version": self.version, "kind": self.kind, "date": self.date,
               "git_version": self.git_version, "python": self.python,
               "index_url": self.index_url}
        if self.variant or self.extra:  # absent otherwise: hashes of plain builds never change
            out.update(variant=self.variant, extra=list(self.extra))
        return out

    def files(self) -> dict[str, str]:
        """The commit's tree: file name -> text. Deterministic: same build, same tree."""
        out = {"build.json": json.dumps(self.manifest(), indent=1, sort_keys=True) + "\n"}
        if self.kind != "local":
            out["requirements.txt"] = "\n".join(self.requirements()) + "\n"
        return out


def _version(text: str, spec: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise ConfigError(f"bad torch version {text!r} in build spec {spec!r}") from None


#: The index whose PEP 691 JSON pages give each file's upload time (PEP 700).
PYPI_SIMPLE = "https://pypi.org/simple"
DATES_FILE = "release-dates.json"


def release_date(version: str, index: str = PYPI_SIMPLE, timeout: float = 5.0) -> int | None:
    """UTC midnight of the day torch ``version`` was first uploaded to ``index``, from its JSON
    simple page (what pip reads); None where the index cannot tell (offline, no upload times).
    Answers are cached beside the peak cache, so a machine gets the same date every time."""
    import urllib.request
    from ..measure.peak import cache_dir
    from ..measure.fileio import atomic_write
    path = cache_dir() / DATES_FILE
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(version), int):
        return known[version]
    req = urllib.request.Request(f"{index.rstrip('/')}/torch/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as fh:
            files = json.load(fh).get("files", [])
    except Exception:
        return None
    stamps = sorted(f["upload-time"][:10] for f in files if isinstance(f, dict)
                    and f.get("filename", "").startswith(f"torch-{version}-")
                    and isinstance(f.get("upload-time"), str))
    if not stamps:
        return None
    try:
        day = int(dt.datetime.strptime(stamps[0], "%Y-%m-%d").replace(
            tzinfo=dt.timezone.utc).timestamp())
    except ValueError:
        return None
    known = known if isinstance(known, dict) else {}
    known[version] = day
    try:
        atomic_write(path, json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass
    return day


def dated(build: Build, lookup=release_date) -> Build:
    """A release given without ``@DATE`` dated by ``lookup`` where it can tell."""
    if build.kind != "release" or build.date is not None:
        return build
    day = lookup(build.version)
    return build if day is None else replace(build, date=day)


def parse_date(text: str, spec: str) -> int:
    """``YYYY-MM-DD`` (UTC midnight) -> seconds since the epoch."""
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ConfigError(f"bad date {text!r} in build spec {spec!r} (use YYYY-MM-DD)") from None
    return int(day.timestamp())


def dev_date(version: Version) -> int | None:
    """A nightly's date from its ``.devYYYYMMDD`` segment, or None."""
    m = _DEV_DATE.match(str(version.dev)) if version.dev is not None else None
    if not m:
        return None
    try:
        day = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return int(day.timestamp())


def parse_spec(spec: str, nightly_index: str = NIGHTLY_INDEX) -> Build:
    """``2.13.0``, ``torch==2.13.0``, ``2.15.0.dev20260101``, any of them ``@YYYY-MM-DD`` -> Build.

    Raises ConfigError (one line, naming the spec) on anything else; local builds come from
    :func:`local_build`.
    """
    text = spec.strip()
    text, _, date_text = text.partition("@")
    text = text.strip()
    if text.lower().startswith("torch"):
        rest = text[5:].lstrip()
        if not rest.startswith("=="):
            raise ConfigError(f"bad build spec {spec!r} (use VERSION or torch==VERSION)")
        text = rest[2:].strip()
    if not text:
        raise ConfigError(f"bad build spec {spec!r}: no version")
    version = _version(text, spec)
    if version.local:
        raise ConfigError(f"build spec {spec!r}: a local version (+{version.local}) cannot be "
                          "installed by pip version; use --existing PYTHON for your own build")
    date = parse_date(date_text.strip(), spec) if date_text else None
    if version.dev is not None:
        nightly_date = dev_date(version)
        if nightly_date is None:
            raise ConfigError(f"build spec {spec!r}: a nightly is .devYYYYMMDD")
        return Build(str(version), "nightly", date if date is not None else nightly_date,
                     index_url=nightly_index)
    return Build(str(version), "release", date)


def local_build(version: str, git_version: str, python: str, date: int | None = None) -> Build:
    """A developer's own torch (e.g. ``2.15.0a0+git1234abc``), reported by ``python``."""
    v = _version(version, f"{python}: torch {version}")
    return Build(str(v), "local", date, git_version=git_version, python=python)


def ordered(builds) -> list[Build]:
    """By version (see the module doc); a version given twice is an error unless identical."""
    by_version: dict[tuple, Build] = {}
    for b in builds:
        old = by_version.get(b.key)
        if old is not None and old != b:
            raise ConfigError(f"torch {b.version} given twice, differently ({old.kind}, {b.kind})")
        by_version[b.key] = b
    return [by_version[k] for k in sorted(by_version)]


def commit_dates(builds: list[Build]) -> list[int]:
    """The date of each (ordered) build's commit: its own when known, never before the previous.

    asv reads a commit's author date as the build's date; a build of unknown date (a release
    given without ``@DATE``) is put a day after the one before it, the first at 2020-01-01.
    """
    dates, last = [], None
    for b in builds:
        d = b.date if b.date is not None else (FIRST_DATE if last is None else last + UNKNOWN_STEP)
        if last is not None and d <= last:
            d = last + 1
        dates.append(d)
        last = d
    return dates


def merged(known: list[Build], new: list[Build]) -> list[Build]:
    """The builds repository's list after adding ``new``: a new build replaces one of the same
    version (a local rebuild, a date given later), others are kept; ordered."""
    keep = {b.key: b for b in known}
    keep.update({b.key: b for b in new})
    return ordered(keep.values())
