"""asv's entry point for the suite's host figures (HostWork, Instructions)."""
from mhabench.suite import entry

globals().update(entry('host', __file__))
