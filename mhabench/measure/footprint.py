"""A point's memory, estimated before anything runs, against what the device (or host) holds.

The estimate counts only tensors that must be alive together (a floor, not a prediction of the
peak): its job is to refuse, in one line, a grid that cannot fit at all (``--batch-sizes
1000000000``) instead of allocating until the host runs out, not to judge points near the limit
(those still fail one by one, as out-of-memory errors of their own).
"""
from __future__ import annotations

from .config import ConfigError, Point

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
#: Copies of a (batch x seq x embed) activation alive at once: the padded and nested inputs,
#: the fast output kept for the checks, the reference's input and its q/k/v projections.
ACTIVATION_COPIES = 8
#: Copies of a (batch x heads x seq x seq) score matrix: the fp32 reference's scores and softmax.
SCORE_COPIES = 2


def point_bytes(p: Point) -> int:
    """Bytes one point must hold at once (a floor of its peak)."""
    elt = DTYPE_BYTES.get(p.dtype, 4)
    width = max(elt, 4)  # the fp32 reference works in fp32 whatever the point's dtype
    weights = (4 * p.embed_dim * p.embed_dim + 4 * p.embed_dim) * (elt + 4)
    acts = ACTIVATION_COPIES * p.batch_size * p.seq_len * p.embed_dim * width
    scores = SCORE_COPIES * p.batch_size * p.num_heads * p.seq_len * p.seq_len * width
    return weights + acts + scores


def host_available() -> int | None:
    """Bytes the host can still give (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def device_capacity(device: str) -> tuple[int | None, str]:
    """(bytes, what they are) of ``device``: a GPU's total memory, else the host's available."""
    if device.startswith("cuda"):
        import torch
        props = torch.cuda.get_device_properties(torch.device(device))
        return int(props.total_memory), f"{device}'s memory"
    return host_available(), "the host's available memory"


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def check(points: list[Point], device: str) -> None:
    """ConfigError naming the largest point when it cannot fit on ``device``."""
    if not points:
        return
    worst = max(points, key=point_bytes)
    need = point_bytes(worst)
    have, what = device_capacity(device)
    if have is not None and need > have:
        raise ConfigError(f"point {worst.label} needs about {_gib(need)}, more than {what} "
                          f"({_gib(have)}); use smaller sizes")
