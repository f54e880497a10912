"""asv's entry point for :mod:`mhabench.suite.efficiency` (names: efficiency.CLASS.METHOD)."""
from mhabench.suite.efficiency import Efficiency  # noqa: F401
