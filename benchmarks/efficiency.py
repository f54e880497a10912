"""asv's entry point for the suite's efficiency figures (Efficiency)."""
from mhabench.suite import entry

globals().update(entry('efficiency', __file__))
