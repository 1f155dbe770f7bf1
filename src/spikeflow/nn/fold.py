"""Apply any torch layer to every time step at once by folding T into the batch."""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.errors import ShapeError


class TimeFold(nn.Module):
    """Wraps a per-sample torch layer (Linear, Conv2d, pooling, dropout, BatchNorm...).

    ``[T, B, ...] -> layer([T*B, ...]) -> [T, B, ...]``. BatchNorm then normalises over
    time and batch together; Dropout draws a fresh mask per time step.
    ``step`` applies the layer to a single step ``[B, ...]``.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ShapeError(
                f"TimeFold({type(self.layer).__name__}): input must be time-major [T, B, ...], "
                f"got shape {tuple(x.shape)}"
            )
        t, b = x.shape[:2]
        y = self.layer(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])

    def step(self, x_t: torch.Tensor, state=None):
        return self.layer(x_t), None
