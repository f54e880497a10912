"""Regression benchmarks for torch.nn.MultiheadAttention's fast path against its slow path.

Stages, each importing only from those after it: ``commands`` (the CLI), then ``report``,
``track``, ``suite`` (the asv benchmarks), ``run``, ``figures``, ``measure``, and ``catalogue``,
the one table of what every figure means.
"""
__version__ = "0.1.0"
