"""A test-only wheel that changes the MultiheadAttention fast path: a "build" with a regression.

Installed next to torch in one environment, it wraps ``torch._native_multi_head_attention``
(what ``MultiheadAttention.forward`` calls on the fast path, looked up on the module at each call)
once something imports torch. Nothing in mhabench changes, and nothing imports torch at
interpreter start-up: the ``.pth`` line only installs an import hook, so asv's forked workers
(which never import torch) stay light.

What a :class:`Plant` adds to every fast call, each of known size:

- ``busy_s``: a busy wait of that many seconds (host time). A busy wait, not a sleep: sleeping
  lets torch's worker threads go idle and then slows whatever runs next (the slow path too).
- ``busy_frac``: a busy wait of that fraction of the attention kernel's own duration (on a
  CPU, where the call is synchronous; the fast call also builds and checks around the kernel,
  so its whole call slows by less: 6.6-10% for 0.1 on the smoke grid).
- ``call_frac``: a busy wait of that fraction of the whole ``MultiheadAttention.forward`` call,
  added only to calls that took the fast path: the fast path slowed by exactly that fraction
  on a CPU.
- ``aten_ops``: that many extra tiny aten ops (``aten::neg`` on a 1-element CPU tensor): extra
  dispatched work that the host-work counts must see.
- ``py_loop``: a pure-Python loop of that many iterations (7 bytecodes each, no aten op):
  extra interpreter work that no aten-op count sees: the bytecode and instruction counts do.
- ``kernel_us``: one extra GPU kernel of about that many microseconds (``torch.cuda._sleep``,
  cycles from the device's clock rate), launched after the attention on the current stream.
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

NAME, VERSION = "mhabench_plant", "0.1"


@dataclass(frozen=True)
class Plant:
    busy_s: float = 0.0
    busy_frac: float = 0.0
    call_frac: float = 0.0
    aten_ops: int = 0
    py_loop: int = 0
    kernel_us: float = 0.0


HOOK = '''"""Test-only: extra work in torch._native_multi_head_attention (the MHA fast path)."""
import functools
import importlib.util
import sys
import time

PLANT = {plant!r}


def _plant(module):
    kernel = module._native_multi_head_attention
    busy_s, busy_frac = PLANT["busy_s"], PLANT["busy_frac"]
    aten_ops, py_loop, kernel_us = PLANT["aten_ops"], PLANT["py_loop"], PLANT["kernel_us"]
    state = {{}}

    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    @functools.wraps(kernel)
    def planted(*args, **kwargs):
        state["hit"] = True
        t0 = time.perf_counter()
        out = kernel(*args, **kwargs)
        if busy_frac:
            spin((time.perf_counter() - t0) * busy_frac)
        if busy_s:
            spin(busy_s)
        if aten_ops:
            x = state.get("x")
            if x is None:
                x = state["x"] = module.ones(1)
            for _ in range(aten_ops):
                module.neg(x)
        if py_loop:
            acc = 0
            for i in range(py_loop):
                acc += i
        if kernel_us and module.cuda.is_initialized():
            cycles = state.get("cycles")
            if cycles is None:
                khz = module.cuda.get_device_properties(module.cuda.current_device()).clock_rate
                cycles = state["cycles"] = int(kernel_us * khz / 1000)
            module.cuda._sleep(cycles)
        return out

    module._native_multi_head_attention = planted
    module._mhabench_plant = state  # what the plant did, for its own tests
    call_frac = PLANT.get("call_frac", 0.0)
    if call_frac:
        mha = module.nn.MultiheadAttention
        forward = mha.forward

        @functools.wraps(forward)
        def planted_forward(self, *args, **kwargs):
            state["hit"] = False
            t0 = time.perf_counter()
            out = forward(self, *args, **kwargs)
            if state["hit"]:
                took = time.perf_counter() - t0
                spin(took * call_frac)
                state["spun"] = state.get("spun", []) + [(took, time.perf_counter() - t0)]
            return out

        mha.forward = planted_forward


class _TorchHook:
    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _plant(module)

        spec.loader.exec_module = exec_module
        return spec


if "torch" not in sys.modules:
    sys.meta_path.insert(0, _TorchHook())
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path, delay_s: float = 0.001, plant: Plant | None = None) -> Path:
    """Write ``mhabench_plant-0.1-py3-none-any.whl`` (pip installs it offline, no build step).

    ``plant`` says what each fast call gains; without it, a busy wait of ``delay_s``.
    """
    plant = plant if plant is not None else Plant(busy_s=delay_s)
    dist = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.py": HOOK.format(plant=asdict(plant)).encode(),
        f"{NAME}.pth": f"import {NAME}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: mhabench-plant\nVersion: {VERSION}\n"
                            .encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mhabench-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = "\n".join([_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,", ""])
    files[f"{dist}/RECORD"] = record.encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return path


def interpreter(path: Path, repo: Path, plant_dir: Path | None = None) -> str:
    """A wrapper script standing for a build's interpreter: this Python (its real path, not a
    shim), one intra-op thread, ``plant_dir`` (if any) and ``repo`` on ``PYTHONPATH``."""
    import stat
    import sys
    pp = ":".join(str(p) for p in ([plant_dir] if plant_dir else []) + [repo])
    path.write_text(f"#!/bin/sh\nPYTHONPATH={pp} OMP_NUM_THREADS=1 exec {sys.executable} "
                    '"$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def install_dir(directory: Path, plant: Plant) -> Path:
    """Unpack the plant into ``directory`` for ``PYTHONPATH`` use without pip: a process started
    with ``directory`` on ``PYTHONPATH`` gets the plant only if it runs ``import mhabench_plant``
    first (``.pth`` files are read from site directories only), which
    ``python -c 'import mhabench_plant, runpy; ...'`` or ``sitecustomize`` does."""
    wheel = build_wheel(directory / "wheel", plant=plant)
    with zipfile.ZipFile(wheel) as z:
        z.extract(f"{NAME}.py", directory)
    (directory / "sitecustomize.py").write_text(f"import {NAME}\n")
    return directory


def fresh_json(code: str, repo: Path, work: Path, plant: Plant | None = None) -> object:
    """Run ``code`` in a fresh Python (one intra-op thread, ``repo`` importable, ``plant``
    installed under ``work`` if given) and read the JSON of its last line: a record of one
    build, as the next build's record would be made."""
    import json
    import os
    import subprocess
    import sys
    path = [str(repo)]
    if plant is not None:
        path.insert(0, str(install_dir(work / f"plant-{abs(hash(plant))}", plant)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
