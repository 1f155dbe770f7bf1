"""Training-time augmentation of sequence batches ``[B, T, F]`` (audio features, cochlea counts).

Each sample gets its own random draw from torch's global RNG, which the ``Trainer`` seeds
before every step, so augmented runs stay reproducible and resumable.

- ``time``: a random stretch (speaking rate, factor in ``[1 - stretch, 1 + stretch]``, nearest
  frame) and a random shift of up to ``max_shift`` frames (zero fill).
- ``time_freq``: ``time`` plus a shift of up to ``max_channels`` (4) frequency channels (zero fill):
  on a mel-spaced filterbank a different vocal tract length moves the formants by a roughly
  constant number of channels (the idea of vocal tract length perturbation, Jaitly & Hinton 2013).
"""

from __future__ import annotations

import torch

from spikeflow.errors import ConfigError, ShapeError


def _check(x: torch.Tensor, name: str):
    if x.dim() != 3:
        raise ShapeError(f"augment {name!r}: needs sequence batches [B, T, features], got shape {tuple(x.shape)}")


def _take(x: torch.Tensor, src: torch.Tensor, axis: int) -> torch.Tensor:
    """``out[b, i] = x[b, src[b, i]]`` along ``axis`` (1 or 2), zero where ``src`` is out of range."""
    n = x.shape[axis]
    ok = (src >= 0) & (src < n)
    idx = src.clamp(0, n - 1)
    if axis == 1:
        out = torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[2]))
        return out * ok[:, :, None]
    out = torch.gather(x, 2, idx[:, None, :].expand(-1, x.shape[1], -1))
    return out * ok[:, None, :]


def time_warp(x: torch.Tensor, max_shift: int = 8, stretch: float = 0.15) -> torch.Tensor:
    """Per sample: frame ``t`` of the output is frame ``round(t * rate) - shift`` of the input."""
    _check(x, "time")
    b, t = x.shape[:2]
    rate = 1.0 + (torch.rand(b, 1) * 2 - 1) * stretch
    shift = torch.randint(-max_shift, max_shift + 1, (b, 1))
    src = torch.round(torch.arange(t).view(1, -1) * rate).long() - shift
    return _take(x, src, 1)


def channel_shift(x: torch.Tensor, max_channels: int = 4) -> torch.Tensor:
    """Per sample: feature ``c`` of the output is feature ``c - shift`` of the input."""
    _check(x, "time_freq")
    b, _, f = x.shape
    shift = torch.randint(-max_channels, max_channels + 1, (b, 1))
    return _take(x, torch.arange(f).view(1, -1) - shift, 2)


def augment(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "time":
        return time_warp(x)
    if kind == "time_freq":
        return channel_shift(time_warp(x))
    raise ConfigError(f"unknown sequence augmentation {kind!r}; valid: time, time_freq")
