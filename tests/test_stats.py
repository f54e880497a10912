"""Summary statistics on hand-computed inputs."""
from __future__ import annotations

import math

import pytest

from mhabench.measure.stats import iqr, mad, median, quantile, ratios, spread


@pytest.mark.parametrize("xs,expected", [([3.0, 1.0, 2.0], 2.0), ([4, 1, 3, 2], 2.5), ([7], 7.0),
                                         ([1, 1, 100], 1.0), ((5, 3), 4.0)])
def test_median(xs, expected):
    assert median(xs) == expected


@pytest.mark.parametrize("xs,expected", [
    ([1, 2, 3, 4, 5], 2.0),          # q1 = 2, q3 = 4
    ([1, 2, 3, 4], 1.5),             # linear: q1 = 1.75, q3 = 3.25
    ([10, 10, 10], 0.0),
    ([0, 100, 1, 2, 3], 2.0),        # sorted 0 1 2 3 100: q1 = 1, q3 = 3 (outlier ignored)
])
def test_iqr(xs, expected):
    assert iqr(xs) == pytest.approx(expected)


@pytest.mark.parametrize("xs,expected", [
    ([1, 1, 2, 2, 4, 6, 9], 1.0),    # median 2; |d| = 1 1 0 0 2 4 7 -> median 1
    ([5, 5, 5], 0.0),
    ([1, 3], 1.0),                   # median 2; |d| = 1 1
    ([0, 0, 0, 1000], 0.0),
])
def test_mad(xs, expected):
    assert mad(xs) == pytest.approx(expected)


@pytest.mark.parametrize("xs,expected", [([2, 4, 6], 1.0), ([10, 10], 0.0), ([9, 10, 12], 0.3)])
def test_spread(xs, expected):
    assert spread(xs) == pytest.approx(expected)


def test_ratios_pairs_elementwise():
    assert ratios([2.0, 9.0, 1.0], [1.0, 3.0, 4.0]) == [2.0, 3.0, 0.25]
    assert ratios([], []) == []


def test_quantile():
    assert quantile([0, 10], 0.5) == pytest.approx(5.0)
    assert quantile([1, 2, 3, 4, 5], 0.25) == pytest.approx(2.0)


@pytest.mark.parametrize("fn", [median, iqr, mad, spread])
def test_empty_input_is_nan(fn):
    assert math.isnan(fn([]))


def test_quantile_empty_is_nan():
    assert math.isnan(quantile([], 0.5))


def test_results_are_python_floats():
    for v in (median([1, 2]), iqr([1, 2]), mad([1, 2]), spread([1, 2]), quantile([1, 2], 0.5)):
        assert type(v) is float
