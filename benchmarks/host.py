"""asv's entry point for :mod:`mhabench.suite.host` (names: host.CLASS.METHOD)."""
from mhabench.suite.host import Instructions, HostWork  # noqa: F401
