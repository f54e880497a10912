"""Regression benchmarks for torch.nn.MultiheadAttention's fast path against its slow path."""
__version__ = "0.1.0"
