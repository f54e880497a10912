"""Test-only: plants faults in mhabench, chosen by ``MHABENCH_FAULT=KIND@LABEL[,KIND@LABEL...]``.

Loaded only when the tests put this folder on PYTHONPATH (interpreters inherit it, so the
measuring worker and asv's processes see it too); nothing in mhabench knows of it. Kinds, at
the measurement of point LABEL: ``abort`` (os.abort), ``segv`` (a null read), ``exit``
(os._exit(3)), ``kill`` (SIGKILL, as the kernel's out-of-memory killer sends), ``hang`` (sleeps
an hour), ``oom`` (building the inputs raises torch's OutOfMemoryError), ``serialise`` (the
result cannot be serialised), ``wrong`` (the slow path's output is shifted: a mismatch),
``nofast`` (the fast path switched off). ``slow@any``: every point takes half a second
longer (time to interrupt a sweep mid-way). ``slowwrite@any``: every rewrite of a result file
touches ``$MHABENCH_FAULT_MARK`` and then takes half a second (to interrupt one mid-way).
"""
import importlib.abc
import os
import sys

SPEC = os.environ.get("MHABENCH_FAULT", "")
FAULTS = {}
for _item in filter(None, SPEC.split(",")):
    _kind, _, _label = _item.partition("@")
    FAULTS.setdefault(_label, set()).add(_kind)


def _kinds(point):
    return FAULTS.get(point.label, set())


def _patch_sweep(sw):
    import signal
    import time
    real_measure, real_build, real_compare = sw.measure, sw.build, sw.compare
    state = {}

    def measure(point, proto, cost=None, extras=True, **kw):
        kinds = _kinds(point) | FAULTS.get("any", set())
        if "slow" in kinds:
            time.sleep(0.5)
        state["kinds"] = kinds
        if "abort" in kinds:
            os.abort()
        if "segv" in kinds:
            import ctypes
            ctypes.string_at(0)
        if "exit" in kinds:
            os._exit(3)
        if "kill" in kinds:
            os.kill(os.getpid(), signal.SIGKILL)
        if "hang" in kinds:
            time.sleep(3600)
        if "nofast" in kinds:
            from mhabench.measure import compat
            with compat.fastpath_disabled():
                return real_measure(point, proto, cost, extras, **kw)
        r = real_measure(point, proto, cost, extras, **kw)
        if "serialise" in kinds:
            r.lengths = [object()]
        return r

    def build(point):
        if "oom" in _kinds(point):
            import torch
            raise getattr(torch, "OutOfMemoryError", RuntimeError)("planted: out of memory")
        return real_build(point)

    def compare(fast_out, slow_out, mask, dtype):
        if "wrong" in state.get("kinds", ()):
            slow_out = slow_out + 1.0
        return real_compare(fast_out, slow_out, mask, dtype)

    sw.measure, sw.build, sw.compare = measure, build, compare


def _patch_journal(jr):
    import time
    real = jr.atomic_write

    def atomic_write(path, text):
        mark = os.environ.get("MHABENCH_FAULT_MARK")
        if mark:
            open(mark, "a").close()
        real(path, text)
        time.sleep(0.5)

    jr.atomic_write = atomic_write


PATCHES = {"mhabench.measure.sweep": _patch_sweep}
if "any" in FAULTS and "slowwrite" in FAULTS["any"]:
    PATCHES["mhabench.run.journal"] = _patch_journal


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
