"""An append-only record of finished points, the one source the result files are built from.

Line 1 is a header: what the points are measured with (the fingerprint: build, protocol, grid,
seed, block, device, dtype, threads, extras, instructions, mhabench's own code) and the run's
metadata. Each further line is one point's record at a stage (``{"label", "stage",
"record"}``, :meth:`mhabench.measure.results.Result.record`): ``wall`` after its wall pass,
``done`` after its counts pass (and again when its instruction counts arrive). The latest line
of a label is the point. A line is written and flushed before the worker goes on, and fsynced
before the next point's timed rounds; a kill at any moment loses at most the point in progress,
and a line cut short by a kill mid-write is dropped on reading.

A journal is locked (``flock``) while a run writes it: a second run on it is refused.
The CSV, errors JSON, full JSON and break-even CSV are rebuilt from the entries
(:func:`rebuild`), each atomically, with the signals that end a run held off until all of them
are written.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..measure.config import ConfigError
from ..measure.fileio import atomic_write

VERSION = 2
#: Header keys that must match for ``--resume``: everything that changes a figure.
FINGERPRINT = ("torch", "torch_git", "variant", "mhabench_source", "device", "dtype", "grid",
               "block_size", "seed", "protocol", "threads", "extras", "instructions")
#: The signals on which a run rebuilds its files and stops.
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                     if s is not None)


def fingerprint(points, meta: dict, threads, extras: bool, instructions: bool) -> dict:
    """What a journal's points are measured with; ``--resume`` needs all of it to match."""
    first = points[0] if points else None
    return {"torch": meta.get("torch"), "torch_git": meta.get("torch_git"),
            "variant": meta.get("variant"), "mhabench_source": meta.get("mhabench_source"),
            "device": first.device if first else "", "dtype": first.dtype if first else "",
            "grid": [p.label for p in points],
            "block_size": first.block_size if first else None,
            "seed": first.seed if first else None, "protocol": meta.get("protocol"),
            "threads": threads, "extras": bool(extras), "instructions": bool(instructions)}


def header(fp: dict, meta: dict) -> dict:
    return {"journal": VERSION, **fp, "meta": meta}


#: The fingerprint's keys that say what was asked (not which build measured it): checked before
#: a resumed run starts anything.
ASKED = FINGERPRINT[4:]


def mismatch(old: dict, new: dict, keys=FINGERPRINT) -> str:
    """``""`` where ``old``'s fingerprint is ``new``'s (on ``keys``), else the first setting that
    differs, with its value there and here."""
    for key in keys:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "protocol" and isinstance(a, dict) and isinstance(b, dict):
            k = next(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
            return f"protocol {k} is {a.get(k)!r} there, {b.get(k)!r} here"
        if key == "grid":
            return f"grid is {_grid(a)} there, {_grid(b)} here"
        return f"{key} is {_short(a)} there, {_short(b)} here"
    return ""


def _grid(v) -> str:
    if not isinstance(v, list):
        return repr(v)
    return f"{len(v)} points from {v[0]}" if v else "0 points"


def _short(v) -> str:
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Journal:
    """An open, locked journal: its header, its entries (in order of writing), appending more."""

    def __init__(self, path, head: dict, entries: list[dict], fh):
        self.path, self.header, self.entries, self._fh = Path(path), head, entries, fh

    @classmethod
    def create(cls, path, head: dict) -> "Journal":
        """A new journal at ``path``; an older journal there is replaced, anything else, or a
        journal another run is writing, is refused (ConfigError)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() and p.stat().st_size:
            try:
                read(p)
            except ConfigError:
                raise ConfigError(f"{p}: exists and is not an mhabench journal; not replaced") \
                    from None
        fh = open(p, "a+", encoding="utf-8")
        _lock(fh, p)
        fh.seek(0)
        fh.truncate()
        j = cls(p, head, [], fh)
        j._write(json.dumps(head))
        return j

    @classmethod
    def resume(cls, path, head: dict) -> "Journal":
        """Reopen ``path`` for appending, after checking that it was written by the same run as
        ``head`` describes; a cut-short last line is cut off."""
        old, entries, good_bytes = read(path)
        why = mismatch(old, head)
        if why:
            raise ConfigError(f"{path}: --resume refused, another run: {why}")
        fh = open(path, "a+", encoding="utf-8")
        _lock(fh, Path(path))
        fh.truncate(good_bytes)
        fh.seek(0, os.SEEK_END)
        return cls(path, old, entries, fh)

    def latest(self) -> dict[str, dict]:
        """Each label's latest entry."""
        out: dict[str, dict] = {}
        for e in self.entries:
            out[e["label"]] = e
        return out

    def append(self, label: str, stage: str, record: dict, sync: bool = True) -> dict:
        """Write one entry line and keep it. The line is flushed to the OS at once, which a
        killed process cannot undo, and fsynced (against a crash of the machine) here, or by
        :meth:`sync` when ``sync`` is false."""
        entry = {"label": label, "stage": stage, "record": record}
        self._write(json.dumps(entry), sync)
        self.entries.append(entry)
        return entry

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def _write(self, text: str, sync: bool = True) -> None:
        self._fh.write(text + "\n")
        self._fh.flush()
        if sync:
            self.sync()

    def close(self) -> None:
        self._fh.close()  # releases the lock

    def ordered(self) -> list[dict]:
        """Each point's latest entry, in grid order."""
        order = {label: i for i, label in enumerate(self.header.get("grid", []))}
        return sorted(self.latest().values(), key=lambda e: order.get(e["label"], len(order)))


def _lock(fh, path: Path) -> None:
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ConfigError(f"{path}: in use by another run (its journal is locked)") from None


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
    if head.get("journal") == 1:
        raise ConfigError(f"{name}: a journal of an older mhabench (format 1): start the run again")
    if head.get("journal") != VERSION or not isinstance(head.get("grid"), list):
        raise ConfigError(f"{name}: not an mhabench journal (line 1 is not its header)")
    for n, e in enumerate(parsed[1:], 2):
        if not (isinstance(e.get("label"), str) and isinstance(e.get("record"), dict)
                and e.get("stage") in ("wall", "done")):
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
                "breakeven CSV": self.breakeven}

    @classmethod
    def beside(cls, csv=None, errors=None, json_path=None) -> "Outputs":
        """The files asked for, and the break-even CSV beside the CSV or the JSON
        (``NAME_breakeven.csv``)."""
        base = csv or json_path
        be = None if not base else str(Path(base).with_name(Path(base).stem + "_breakeven.csv"))
        return cls(csv, errors, json_path, be)


def results_of(entries: list[dict], meta: dict | None = None):
    """The entries' points as Results, in the order given, each with the run's matmul peak."""
    from ..measure.results import Result
    peak = ((meta or {}).get("peak") or {}).get("tflops")
    out = []
    for e in entries:
        r = Result.of_record(e["record"])
        if isinstance(peak, (int, float)):
            r.peak_tflops = float(peak)
        out.append(r)
    return out


def json_text(results, meta: dict) -> str:
    """The ``--json`` document: meta, errors per shape, one entry per point."""
    from ..measure.results import errors_of
    # strict JSON throughout: a figure the run could not measure (the peak of a check) is null
    head = json.dumps(_jsonable({"meta": meta, "errors": errors_of(results)}), indent=1,
                      allow_nan=False)[:-2]
    docs = ",\n  ".join(json.dumps(_jsonable(r.doc())) for r in results)
    return head + ',\n "results": [\n  ' + docs + "\n ]\n}\n"


def _jsonable(d):
    if isinstance(d, float):
        return d if d == d and d not in (float("inf"), float("-inf")) else None
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


def breakeven_text(results) -> str:
    from ..figures.breakeven import SUMMARY_KEYS, summary_table
    from ..figures.breakeven import csv_text as table_csv
    rows = summary_table([{"point": r.doc()["point"], "metrics": r.doc()["metrics"]}
                          for r in results])
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


def rebuild(entries: list[dict], meta: dict, out: Outputs) -> list:
    """Write every requested file from ``entries``; the stop signals wait until all are written,
    so an interruption never leaves files that disagree with each other. Returns the Results."""
    from ..measure.results import csv_text, errors_of
    results = results_of(entries, meta)
    with held_signals():
        if out.csv:
            atomic_write(out.csv, csv_text(results))
        if out.errors:
            atomic_write(out.errors, json.dumps(errors_of(results)))
        if out.json:
            atomic_write(out.json, json_text(results, meta))
        if out.breakeven:
            atomic_write(out.breakeven, breakeven_text(results))
    return results
