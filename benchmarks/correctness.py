"""asv's entry point for the suite's correctness figures (MaxAbsError)."""
from mhabench.suite import entry

globals().update(entry('correctness', __file__))
