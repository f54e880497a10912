"""A run's cost split: seconds per kind of work, summed as the work is done. Torch-free, so
that a supervising parent that has not imported torch adds its own share the same way."""
from __future__ import annotations


def add_seconds(cost: dict, key: str, seconds: float) -> float:
    """Add ``seconds`` to ``cost[key]`` (to 0.1 ms); returns ``seconds``, for a caller that
    also takes them off a timer of its own."""
    cost[key] = round(cost.get(key, 0.0) + seconds, 4)
    return seconds
