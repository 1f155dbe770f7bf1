"""Fused GPU neuron kernels (triton); import-guarded: without triton ``AVAILABLE`` is False."""

from __future__ import annotations

try:
    import triton  # noqa: F401
    import triton.language as tl  # noqa: F401
except ImportError:  # the package works without triton
    triton = None

AVAILABLE = False
