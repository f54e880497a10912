"""Writing files whole or not at all, and reading JSON inputs with one-line errors.

Every writer of the project goes through :func:`atomic_write`; every command that reads a JSON
file it was given goes through :func:`read_json`, so that a missing, empty, truncated or
non-JSON file is one line naming it (ConfigError), never a traceback.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .config import ConfigError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync it and rename it over: readers never
    see half a file, and an interruption leaves the old one. The file gets the mode a plain
    ``open`` would give it (0666 less the umask; ``mkstemp`` alone makes 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The file's bytes; ConfigError naming it when it is missing, a folder or unreadable."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a folder, not a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The file's text; ConfigError naming it when it is missing, a folder, unreadable, not
    UTF-8 or empty."""
    try:
        text = read_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{os.fspath(path)}: not a {what} (not UTF-8 text)") from None
    if not text.strip():
        raise ConfigError(f"{os.fspath(path)}: empty file, not a {what}")
    return text


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """Parsed JSON of ``path``; ConfigError (one line, naming the file) for anything that is not."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except ValueError as exc:
        cut = ", truncated" if _truncated(text) else ""
        raise ConfigError(f"{os.fspath(path)}: not JSON{cut} ({exc}); expected a {what}") from None


def _truncated(text: str) -> bool:
    """Valid JSON cut short: every bracket opened is still open at the end."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth > 0 or in_str


def check_output(path: str | os.PathLike, flag: str) -> Path:
    """Fail now, not after a sweep, when ``path`` cannot be written: a folder, a parent that is a
    file or not writable, or a read-only file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"cannot write {flag} {path}: is a folder")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {flag} {path}: folder {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"cannot write {flag} {path}: the file is not writable")
    return p


def check_outputs(named: dict[str, str | os.PathLike | None]) -> None:
    """:func:`check_output` for each given ``{flag: path}``, and no two flags on one file."""
    seen: dict[str, str] = {}
    for flag, path in named.items():
        if not path:
            continue
        key = os.path.realpath(check_output(path, flag))
        if key in seen:
            raise ConfigError(f"{seen[key]} and {flag} name the same file {path}")
        seen[key] = flag
