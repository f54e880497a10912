"""asv's entry point for the suite's speedup figures (FastOverSlow, Noise, Rounds)."""
from mhabench.suite import entry

globals().update(entry('speedup', __file__))
