"""asv's entry point for :mod:`mhabench.suite.time_per_call` (names: time_per_call.CLASS.METHOD)."""
from mhabench.suite.time_per_call import WallTime, DeviceTime, HostShare, SdpaBackend  # noqa: F401
