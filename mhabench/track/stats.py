"""The estimators the gate and confirm share: pure functions of a point's values in several
records of a build.

A record is one fresh process's figure at a point; between records of one build a figure moves
by the host's between-process noise, which one record cannot see. These functions turn a few
records per build into a standard deviation of one record (:func:`pooled_sigma`) and a
threshold for a change of the mean (:func:`allowance`), or, with one record, into the standard
error of its median from its own rounds (:func:`se_of_median`).
"""
from __future__ import annotations

import math

from ..measure.stats import median

#: E[range of n normal samples] / sigma: a range of n records -> one record's standard deviation
D_N = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}
#: SE of a median = 1.2533 sigma / sqrt(n); sigma = IQR / 1.349
SE_MEDIAN = 1.2533 / 1.349


def finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def med(values) -> float:
    """The median of the finite values (NaN if none)."""
    xs = [v for v in values or [] if finite(v)]
    return median(xs) if xs else math.nan


def rel_range(values) -> float:
    """(max - min) / median of one point's records; NaN below two finite records."""
    xs = [v for v in values or [] if finite(v)]
    m = median(xs) if len(xs) >= 2 else math.nan
    return (max(xs) - min(xs)) / abs(m) if m and math.isfinite(m) else math.nan


def rel_sigma(values) -> float:
    """One record's relative standard deviation, from the range of the point's records."""
    n = len([v for v in values or [] if finite(v)])
    return rel_range(values) / D_N[min(n, 10)] if n >= 2 else math.nan


def point_sigma(groups) -> tuple[float, int]:
    """(pooled sigma, degrees of freedom) of one point over the builds' record groups: the
    builds' variances (each from its range) averaged with weights n - 1."""
    num, df = 0.0, 0
    for values in groups:
        n = len([v for v in values or [] if finite(v)])
        sd = rel_sigma(values or [])
        if n >= 2 and finite(sd):
            num, df = num + (n - 1) * sd * sd, df + n - 1
    return (math.sqrt(num / df), df) if df else (math.nan, 0)


def pooled_sigma(groups, figure_sigma: float, prior_df: float) -> float:
    """A point's sigma shrunk toward its figure's: ``(df s^2 + prior_df S^2) / (df + prior_df)``.

    Two or three records give a point's own sigma with 1-4 degrees of freedom: one outlier
    record (or records that agree by chance) moves it by a factor of several. The figure's
    sigma (median over its points) is the prior worth ``prior_df`` degrees of freedom.
    """
    s, df = point_sigma(groups)
    if not df:
        return math.nan
    if not finite(figure_sigma) or prior_df <= 0:
        return s
    return math.sqrt((df * s * s + prior_df * figure_sigma ** 2) / (df + prior_df))


def se_of_median(rel_iqr, n) -> float:
    """Relative standard error of the median of ``n`` samples whose relative IQR is ``rel_iqr``."""
    if not (finite(rel_iqr) and finite(n) and n >= 1):
        return math.nan
    return SE_MEDIAN * rel_iqr / math.sqrt(n)


def allowance(sigma: float, nb: int, nh: int, ses, drift: float, k: float) -> tuple[float, str]:
    """(allowed relative change before floor and cap, where it came from).

    Replicates: ``k * sigma * sqrt(1/nb + 1/nh)``, the spread of a difference of two means of
    nb and nh records. Else one record's rounds: ``k * hypot(se_before, se_after) + drift``.
    Else the drift alone.
    """
    if finite(sigma):
        return k * sigma * math.sqrt(1 / nb + 1 / nh), "replicates"
    ses = [x for x in ses if finite(x)]
    if len(ses) == 2:
        return k * math.hypot(*ses) + drift, "rounds"
    return drift, "floor"


def pairs(base, head) -> tuple[float, float, float]:
    """(median(head) / median(base), smallest and largest head / base over every pair of runs):
    confirm's ratio and interval."""
    b = [v for v in base if finite(v) and v > 0]
    h = [v for v in head if finite(v) and v > 0]
    if not b or not h:
        return math.nan, math.nan, math.nan
    ratios = [x / y for x in h for y in b]
    return median(h) / median(b), min(ratios), max(ratios)
