"""A test-only wheel that slows the MultiheadAttention fast path: a "build" with a regression.

Installed next to torch in one asv environment, it wraps ``torch._native_multi_head_attention``
(what ``MultiheadAttention.forward`` calls on the fast path, looked up on the module at each call)
with a busy wait, once something imports torch. A busy wait, not a sleep: sleeping lets torch's
worker threads go idle and then slows whatever runs next (the slow path too). Nothing in mhabench changes, and nothing imports torch
at interpreter start-up: the ``.pth`` line only installs an import hook, so asv's forked workers
(which never import torch) stay light.
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "mhabench_plant", "0.1"

HOOK = '''"""Test-only: busy-wait in torch._native_multi_head_attention (the MHA fast path)."""
import functools
import importlib.util
import sys
import time

DELAY_S = {delay!r}


def _plant(module):
    kernel = module._native_multi_head_attention

    @functools.wraps(kernel)
    def slowed(*args, **kwargs):
        end = time.perf_counter() + DELAY_S
        while time.perf_counter() < end:
            pass
        return kernel(*args, **kwargs)

    module._native_multi_head_attention = slowed


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


def build_wheel(directory: Path, delay_s: float = 0.001) -> Path:
    """Write ``mhabench_plant-0.1-py3-none-any.whl`` (pip installs it offline, no build step)."""
    dist = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.py": HOOK.format(delay=delay_s).encode(),
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
