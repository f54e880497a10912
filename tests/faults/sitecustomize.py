"""Test-only: plants faults in mhabench, chosen by ``MHABENCH_FAULT=KIND@LABEL[,KIND@LABEL...]``.

Loaded only when the tests put this folder on PYTHONPATH (interpreters inherit it, so the
measuring worker and asv's processes see it too); nothing in mhabench knows of it.

In the worker, at point LABEL's wall pass: ``abort`` (os.abort), ``segv`` (a null read),
``exit`` (os._exit(3)), ``kill`` (SIGKILL, as the kernel's out-of-memory killer sends),
``hang`` (sleeps an hour), ``oom`` (building the inputs raises torch's OutOfMemoryError),
``serialise`` (the result cannot be serialised), ``wrong`` (the slow path's output is shifted: a
mismatch), ``nofast`` (the fast path switched off). At its counts pass: ``cabort``, ``ckill``,
``chang``, ``coom`` (its profiler session raises). ``slow@any``: every wall pass takes half a
second longer (time to interrupt a sweep mid-way). ``hold@LABEL``: that wall pass waits while the
file ``$MHABENCH_FAULT_HOLD`` exists (a run kept alive for as long as a test needs it).

In the parent, when point LABEL's record is journaled: ``enospc`` (the journal's disk is full),
``eio`` (the journal cannot be written), ``rofolder`` (from then on no result file can be
written: a folder made read-only, which root's permissions would not show). ``slowwrite@any``:
every rewrite of a result file touches ``$MHABENCH_FAULT_MARK`` and then takes half a second.
``nostart@any``: the measuring worker dies before it says it is ready.
"""
import errno
import importlib.abc
import os
import sys

SPEC = os.environ.get("MHABENCH_FAULT", "")
FAULTS = {}
for _item in filter(None, SPEC.split(",")):
    _kind, _, _label = _item.partition("@")
    FAULTS.setdefault(_label, set()).add(_kind)


def _kinds(label):
    return FAULTS.get(label, set()) | FAULTS.get("any", set())


def _die(kinds, prefix=""):
    import signal
    import time
    if prefix + "abort" in kinds:
        os.abort()
    if prefix + "segv" in kinds:
        import ctypes
        ctypes.string_at(0)
    if prefix + "exit" in kinds:
        os._exit(3)
    if prefix + "kill" in kinds:
        os.kill(os.getpid(), signal.SIGKILL)
    if prefix + "hang" in kinds:
        time.sleep(3600)


def _patch_passes(ps):
    import time
    real_prepare, real_counts = ps.wall_prepare, ps.counts_passes
    real_build, real_compare, real_device = ps.build, ps.compare, ps.add_host_work
    state = {}

    def wall_prepare(point, proto, cost, extras=True):  # a wall pass, back to back or not
        kinds = _kinds(point.label)
        if "slow" in kinds:
            time.sleep(0.5)
        end = time.monotonic() + 300
        while "hold" in kinds and os.path.exists(os.environ["MHABENCH_FAULT_HOLD"]) \
                and time.monotonic() < end:
            time.sleep(0.05)
        state["kinds"] = kinds
        _die(kinds)
        if "nofast" in kinds:
            from mhabench.measure import compat
            with compat.fastpath_disabled():
                return real_prepare(point, proto, cost, extras)
        r, paths = real_prepare(point, proto, cost, extras)
        if "serialise" in kinds:
            r.lengths = [object()]
        return r, paths

    def counts_passes(results, proto, extras=True, on_point=None):
        def begun(label):  # the supervisor is told first: the crash is this point's
            if on_point:
                on_point(label)
            state["kinds"] = _kinds(label)
            _die(state["kinds"], "c")
        return real_counts(results, proto, extras, begun)

    def build(point):
        if "oom" in _kinds(point.label):
            import torch
            raise getattr(torch, "OutOfMemoryError", RuntimeError)("planted: out of memory")
        return real_build(point)

    def compare(fast_out, slow_out, mask, dtype):
        if "wrong" in state.get("kinds", ()):
            slow_out = slow_out + 1.0
        return real_compare(fast_out, slow_out, mask, dtype)

    def add_host_work(res, paths):
        if "coom" in _kinds(res.point.label):
            raise RuntimeError("planted: profiler out of memory")
        return real_device(res, paths)

    ps.wall_prepare, ps.counts_passes, ps.build, ps.compare = wall_prepare, counts_passes, build, \
        compare
    ps.add_host_work = add_host_work


def _patch_journal(jr):
    import time
    real_write, real_append = jr.atomic_write, jr.Journal.append
    broken = {}

    def atomic_write(path, text):
        if broken.get("ro"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        mark = os.environ.get("MHABENCH_FAULT_MARK")
        if mark:
            open(mark, "a").close()
        real_write(path, text)
        if "slowwrite" in FAULTS.get("any", set()):
            time.sleep(0.5)

    def append(self, label, stage, record, sync=True):
        kinds = _kinds(label) if stage == "done" else set()
        if "enospc" in kinds:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        if "eio" in kinds:
            raise OSError(errno.EIO, "Input/output error", str(self.path))
        if "rofolder" in kinds:
            broken["ro"] = True
        return real_append(self, label, stage, record, sync)

    jr.atomic_write, jr.Journal.append = atomic_write, append


def _patch_host_setup(hs):
    """``nostart@any``: the measuring worker dies before it says it is ready (only a worker
    applies its spec's threads)."""
    real = hs.apply

    def apply(threads):
        if "nostart" in FAULTS.get("any", set()):
            os._exit(4)
        return real(threads)

    hs.apply = apply


PATCHES = {"mhabench.measure.passes": _patch_passes, "mhabench.run.journal": _patch_journal,
           "mhabench.measure.host_setup": _patch_host_setup}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a patch on a module right after it is first executed."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            PATCHES[name](module)
        spec.loader.exec_module = exec_module
        return spec


if FAULTS:
    sys.meta_path.insert(0, _AfterImport())
