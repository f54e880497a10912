"""Regression benchmarks for torch.nn.MultiheadAttention's fast path against its slow path.

Stages, each importing only from those after it: the CLI (``cli``, ``analysis_cli``), then
``report``, ``track``, ``suite`` (the asv benchmarks), ``run``, ``figures``, ``measure``.
"""
__version__ = "0.1.0"
