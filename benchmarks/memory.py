"""asv's entry point for the suite's memory figures (GpuMemory)."""
from mhabench.suite import entry

globals().update(entry('memory', __file__))
