"""asv's entry point for :mod:`mhabench.suite.speedup` (names: speedup.CLASS.METHOD)."""
from mhabench.suite.speedup import FastOverSlow, Noise, Rounds  # noqa: F401
