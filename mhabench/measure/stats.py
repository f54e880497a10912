"""Pure summary statistics over repeated measurements."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def median(xs: Sequence[float]) -> float:
    return float(np.median(xs)) if len(xs) else math.nan


def iqr(xs: Sequence[float]) -> float:
    """Inter-quartile range: the dispersion figure reported next to each median."""
    if not len(xs):
        return math.nan
    q1, q3 = np.percentile(xs, [25, 75])
    return float(q3 - q1)


def mad(xs: Sequence[float]) -> float:
    """Median absolute deviation from the median."""
    if not len(xs):
        return math.nan
    m = np.median(xs)
    return float(np.median(np.abs(np.asarray(xs) - m)))


def ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Element-wise num/den of paired rounds; NaN where den is 0 (a call without kernels)."""
    return [a / b if b else math.nan for a, b in zip(num, den)]


def spread(xs: Sequence[float]) -> float:
    """(max - min) / median: how far repeated runs of one figure disagree."""
    if not len(xs):
        return math.nan
    return float((max(xs) - min(xs)) / np.median(xs))


def quantile(xs: Sequence[float], q: float) -> float:
    return float(np.quantile(xs, q)) if len(xs) else math.nan
