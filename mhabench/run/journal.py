"""An append-only record of finished points, the one source the result files are built from.

Line 1 is a header: what the points were measured with (torch version and git hash, protocol,
grid labels, device, dtype, extras) and the run's metadata. Each further line is one finished
point, written and flushed before the next point starts and fsynced before the next point's
timed rounds (the worker builds its inputs meanwhile): ``{"label", "doc"`` (the point's
``--json`` entry), ``"row"`` (its CSV cells), ``"record"`` (the Result's other fields, for
:meth:`Result.from_json`)``}``. A kill at any moment loses at most the point in progress;
a line cut short by a kill mid-write is dropped on reading.

The CSV, errors JSON and full JSON are rebuilt from the entries (:func:`rebuild`), each
atomically, with the signals that end a run held off until all of them are written.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..measure.config import ConfigError, Point
from ..measure.fileio import atomic_write

VERSION = 1
#: Header keys that must match for ``--resume``: the same build, protocol and grid.
FINGERPRINT = ("torch", "torch_git", "protocol", "grid", "device", "dtype", "extras")
#: The signals on which a run rebuilds its files and stops.
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                     if s is not None)


def fingerprint(points: list[Point], protocol: dict, dtype: str, extras: bool) -> dict:
    """What a journal's points were measured with; ``--resume`` needs all of it to match."""
    from ..measure import compat
    return {"torch": compat.TORCH_VERSION, "torch_git": compat.TORCH_GIT, "protocol": protocol,
            "grid": [p.label for p in points],
            "device": points[0].device if points else "", "dtype": dtype, "extras": bool(extras)}


def header(meta: dict, points: list[Point], dtype: str, extras: bool) -> dict:
    """The journal's first line for a run of ``points`` with ``meta`` (``sweep.run_meta``)."""
    return {"journal": VERSION, **fingerprint(points, meta.get("protocol"), dtype, extras),
            "meta": meta}


def check_fingerprint(path, head: dict) -> dict:
    """The header of the journal at ``path``, or ConfigError when it was written by another
    torch build, protocol or grid than ``head`` describes."""
    old, _, _ = read(path)
    for key in FINGERPRINT:
        if old.get(key) != head.get(key):
            raise ConfigError(f"{path}: journal of another {_what(key)} "
                              f"({_short(old.get(key))} there, {_short(head.get(key))} now)")
    return old


def entry_text(result) -> str:
    """One point's journal line (JSON, no newline). A failure while deriving or serialising its
    figures marks this point failed, with the reason, instead of ending the sweep."""
    from ..measure.results import ERROR, Result, row
    try:
        record = {k: v for k, v in result.to_record().items()
                  if k not in ("rounds", "device_calls")}
        return json.dumps({"label": result.point.label, "doc": result.to_json(),
                           "row": row(result), "record": record})
    except Exception as exc:
        failed = Result(result.point, status=ERROR,
                        message=f"serialising the result: {type(exc).__name__}: {exc}"[:300])
        if result.status == ERROR and not result.rounds:
            return _bare(failed)
        return entry_text(failed)


def _bare(result) -> str:
    """The last resort for a point whose failed Result cannot be serialised either."""
    p = result.point
    doc = {"point": {f: getattr(p, f) for f in p.__dataclass_fields__}, "label": p.label,
           "status": result.status, "message": result.message, "metrics": {}}
    return json.dumps({"label": p.label, "doc": doc, "row": [],
                       "record": {"status": result.status, "message": result.message}})


def failed_text(point: Point, reason: str) -> str:
    """The line of a point whose worker died or hung: an error with the reason."""
    from ..measure.results import ERROR, Result
    return entry_text(Result(point, status=ERROR, message=reason))


class Journal:
    """An open journal: its header, its entries (in order of writing), appending more."""

    def __init__(self, path: str | os.PathLike, head: dict, entries: list[dict], fh):
        self.path, self.header, self.entries, self._fh = Path(path), head, entries, fh

    @classmethod
    def create(cls, path, head: dict) -> "Journal":
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fh = open(p, "w", encoding="utf-8")
        j = cls(p, head, [], fh)
        j._write(json.dumps(head))
        return j

    @classmethod
    def resume(cls, path, head: dict) -> "Journal":
        """Reopen ``path`` for appending, after checking that it was written by a run of the same
        torch build, protocol and grid as ``head``; a cut-short last line is cut off."""
        check_fingerprint(path, head)
        old, entries, good_bytes = read(path)
        with open(path, "r+b") as raw:
            raw.truncate(good_bytes)
        fh = open(path, "a", encoding="utf-8")
        return cls(path, old, entries, fh)

    @property
    def labels(self) -> set[str]:
        return {e["label"] for e in self.entries}

    def append(self, text: str, parsed: dict | None = None, sync: bool = True) -> dict:
        """Write one entry line (its JSON text) and keep it; returns it parsed. The line is
        flushed to the OS at once, which a killed process cannot undo, and fsynced (against a
        crash of the machine) here, or by :meth:`sync` when ``sync`` is false."""
        self._write(text, sync)
        parsed = json.loads(text) if parsed is None else parsed
        self.entries.append(parsed)
        return parsed

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def _write(self, text: str, sync: bool = True) -> None:
        self._fh.write(text + "\n")
        self._fh.flush()
        if sync:
            self.sync()

    def close(self) -> None:
        self._fh.close()

    def ordered(self) -> list[dict]:
        """Entries in grid order (a resumed run appends the missing points after the others)."""
        order = {label: i for i, label in enumerate(self.header.get("grid", []))}
        return sorted(self.entries, key=lambda e: order.get(e["label"], len(order)))


def _what(key: str) -> str:
    return {"torch": "torch version", "torch_git": "torch build (git hash)", "grid": "grid",
            "protocol": "protocol", "device": "device", "dtype": "dtype",
            "extras": "extras setting (--no-extras)"}[key]


def _short(v) -> str:
    if isinstance(v, list):
        return f"{len(v)} points from {v[0] if v else '-'}"
    text = json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def read(path) -> tuple[dict, list[dict], int]:
    """(header, entries, bytes of whole lines). A last line without its newline (a kill in the
    middle of writing it) is dropped; anything else malformed is a ConfigError naming the line."""
    from ..measure.fileio import read_bytes
    name = os.fspath(path)
    data = read_bytes(name, "journal")
    good = data.rfind(b"\n") + 1
    lines = data[:good].split(b"\n")[:-1]
    if not lines:
        raise ConfigError(f"{name}: empty journal (no header line)")
    parsed = []
    for n, raw in enumerate(lines, 1):
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: line {n} is not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"{name}: line {n} is not a JSON object")
        parsed.append(obj)
    head = parsed[0]
    if head.get("journal") != VERSION or not isinstance(head.get("grid"), list):
        raise ConfigError(f"{name}: not an mhabench journal (line 1 is not its header)")
    for n, e in enumerate(parsed[1:], 2):
        if not (isinstance(e.get("label"), str) and isinstance(e.get("doc"), dict)
                and isinstance(e.get("row"), list)):
            raise ConfigError(f"{name}: line {n} is not a journal entry")
    return head, parsed[1:], good


# --- the files built from it --------------------------------------------------------------------
@dataclass(frozen=True)
class Outputs:
    """The files a run writes (None: not asked for)."""

    csv: str | None = None
    errors: str | None = None
    json: str | None = None
    breakeven: str | None = None

    def named(self) -> dict[str, str | None]:
        return {"--save-path": self.csv, "--error-save-path": self.errors, "--json": self.json,
                "--breakeven-path": self.breakeven}


def errors_of(entries: list[dict]) -> dict[str, int]:
    """Failures per reference key, as :func:`mhabench.measure.results.errors_of` counts them."""
    errs: dict[str, int] = {}
    for e in entries:
        d = e["doc"]
        if d.get("status") != "ok":
            p = d["point"]
            key = (f"batch:{p['batch_size']}_seq_len:{p['seq_len']}"
                   f"_n_heads:{p['num_heads']}_embed_dim:{p['embed_dim']}")
            errs[key] = errs.get(key, 0) + 1
    return errs


def json_text(entries: list[dict], meta: dict) -> str:
    """The ``--json`` document (:func:`mhabench.measure.results.json_doc`'s layout), joined from the
    entries' already serialised docs."""
    head = json.dumps({"meta": meta, "errors": errors_of(entries)}, indent=1)[:-2]
    docs = ",\n  ".join(json.dumps(e["doc"]) for e in entries)
    return head + ',\n "results": [\n  ' + docs + "\n ]\n}\n"


def csv_text(entries: list[dict]) -> str:
    from ..measure.results import COLUMNS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(e["row"] for e in entries if e["row"])
    return buf.getvalue()


def breakeven_text(entries: list[dict]) -> str:
    from ..figures.breakeven import SUMMARY_KEYS, summary_table
    from ..figures.breakeven import csv_text as table_csv
    rows = summary_table([{"point": e["doc"]["point"], "metrics": e["doc"]["metrics"]}
                          for e in entries])
    return table_csv(rows, SUMMARY_KEYS)


@contextlib.contextmanager
def held_signals():
    """Defer the stop signals until the block is done (then deliver them, in order).

    Done at the Python level, not with ``pthread_sigmask``: that masks one thread only, and the
    kernel hands a process's signal to any thread that does not mask it (torch's and tqdm's
    threads), whose delivery Python then runs in the main thread all the same."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for s in pending:
            signal.raise_signal(s)


def rebuild(entries: list[dict], meta: dict, out: Outputs) -> None:
    """Write every requested file from ``entries``; the stop signals wait until all are written,
    so an interruption never leaves files that disagree with each other."""
    with held_signals():
        if out.csv:
            atomic_write(out.csv, csv_text(entries))
        if out.errors:
            atomic_write(out.errors, json.dumps(errors_of(entries)))
        if out.json:
            atomic_write(out.json, json_text(entries, meta))
        if out.breakeven:
            atomic_write(out.breakeven, breakeven_text(entries))


def results_of(entries: list[dict]):
    """The entries as Results (table and summary lines of the CLI)."""
    from ..measure.results import Result
    return [Result.from_json({**e["doc"], **e.get("record", {})}) for e in entries]
