"""asv's entry point for :mod:`mhabench.suite.correctness` (names: correctness.CLASS.METHOD)."""
from mhabench.suite.correctness import MaxAbsError  # noqa: F401
