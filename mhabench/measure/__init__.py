"""Measuring: one grid point in, one :class:`~mhabench.measure.results.Result` out.

In: a :class:`~mhabench.measure.config.Point` and a timing
:class:`~mhabench.measure.protocol.Protocol`. ``sweep`` builds the point's inputs and paths,
checks them, and runs its passes (wall, device, extras, host counts); ``results`` holds what
they measured and its derived figures (FLOPs, peak fraction). Out: results, CSV rows, JSON docs.
Imports nothing from the other stages; ``compat`` is the one place torch versions differ.
"""
