"""asv's entry point for the suite's time_per_call figures (WallTime, DeviceTime, HostShare, SdpaBackend)."""
from mhabench.suite import entry

globals().update(entry('time_per_call', __file__))
