"""asv's entry point for :mod:`mhabench.suite.memory` (names: memory.CLASS.METHOD)."""
from mhabench.suite.memory import GpuMemory  # noqa: F401
