"""Input features for sequence classifiers (audio MFCCs, cochlea spike counts).

``SequenceFeatures`` is the first layer of a zoo ``recurrent`` model: it optionally
compresses counts (``log1p``), standardises every feature with the mean and standard
deviation of the training split (``fit``; they are buffers, so they travel with the
checkpoint and ``spikeflow eval`` sees the same features), and appends causal delta
features ``d_t = z_t - z_{t-1}`` (also standardised). Frames that are all zero in the raw
input are padding (MFCC frames of real audio never are; a cochlea bin without any spike
is silence) and stay all zero, so padding adds no input current to the network.
"""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.errors import ConfigError, ShapeError


class SequenceFeatures(nn.Module):
    """``[T, B, F] -> [T, B, F * (1 + deltas)]``; streaming ``step`` keeps the previous frame.

    Args:
        features: ``F``, the raw features per frame.
        deltas: 0 (none) or 1 (causal first differences appended).
        log: apply ``log1p`` to the raw (non-negative) input first, e.g. for spike counts.
    """

    def __init__(self, features: int, deltas: int = 0, log: bool = False):
        super().__init__()
        if int(features) < 1:
            raise ConfigError(f"SequenceFeatures: 'features' must be >= 1, got {features}")
        if int(deltas) not in (0, 1):
            raise ConfigError(f"SequenceFeatures: 'deltas' must be 0 or 1, got {deltas}")
        self.features, self.deltas, self.log = int(features), int(deltas), bool(log)
        width = self.features * (1 + self.deltas)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))

    @property
    def out_features(self) -> int:
        return self.features * (1 + self.deltas)

    def _check(self, x: torch.Tensor, name: str):
        if x.shape[-1] != self.features:
            raise ShapeError(f"SequenceFeatures: {name} must have {self.features} features in its last axis, "
                             f"got shape {tuple(x.shape)}")

    def _base(self, x: torch.Tensor):
        valid = (x != 0).any(-1, keepdim=True)
        if self.log:
            x = torch.log1p(x.clamp(min=0))
        f = self.features
        z = (x - self.mean[:f]) / self.std[:f]
        return z, valid

    def _finish(self, z, d, valid):
        if self.deltas:
            f = self.features
            diff, both = d
            z = torch.cat([z, (diff - self.mean[f:]) / self.std[f:] * both], -1)
        return z * valid

    def _deltas(self, z: torch.Tensor, valid: torch.Tensor, z_prev: torch.Tensor, v_prev: torch.Tensor):
        """``(z - z_prev, mask)``: a difference across the start of a recording or the edge of
        padding would be a step from nothing, so the mask zeroes it (after standardisation)."""
        return z - z_prev, valid & v_prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ShapeError(f"SequenceFeatures: input must be time-major [T, B, features], got {tuple(x.shape)}")
        self._check(x, "input")
        z, valid = self._base(x)
        d = None
        if self.deltas:
            z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
            v_prev = torch.cat([torch.zeros_like(valid[:1]), valid[:-1]])
            d = self._deltas(z, valid, z_prev, v_prev)
        return self._finish(z, d, valid)

    def init_state(self, batch_shape, dtype=None, device=None):
        b = tuple(batch_shape[:-1])
        return (torch.zeros(*b, self.features, dtype=dtype, device=device),
                torch.zeros(*b, 1, dtype=torch.bool, device=device))

    def step(self, x_t: torch.Tensor, state=None):
        self._check(x_t, "input")
        if state is None:
            state = self.init_state(x_t.shape, x_t.dtype, x_t.device)
        z, valid = self._base(x_t)
        d = self._deltas(z, valid, *state) if self.deltas else None
        return self._finish(z, d, valid), (z, valid)

    def multistep(self, x: torch.Tensor, state=None):
        if state is not None:
            outs = []
            for t in range(x.shape[0]):
                out, state = self.step(x[t], state)
                outs.append(out)
            return torch.stack(outs), state
        out = self.forward(x)
        z, valid = self._base(x[-1])
        return out, (z, valid)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> SequenceFeatures:
        """Set the standardisation from training sequences ``x`` ``[N, T, F]`` (batch-major, raw)."""
        if x.dim() != 3:
            raise ShapeError(f"SequenceFeatures.fit: needs sequences [N, T, features], got {tuple(x.shape)}")
        self._check(x, "training data")
        x = x.transpose(0, 1).to(self.mean.dtype)
        f = self.features
        self.mean.zero_()
        self.std.fill_(1.0)
        z, valid = self._base(x)
        mask = valid.expand_as(z)
        if not bool(mask.any()):
            raise ConfigError("SequenceFeatures.fit: the training data has no non-zero frame")
        self.mean[:f], self.std[:f] = _masked_moments(z, mask)
        if self.deltas:
            z = (z - self.mean[:f]) / self.std[:f]  # as forward() will see it
            z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
            v_prev = torch.cat([torch.zeros_like(valid[:1]), valid[:-1]])
            d, both = self._deltas(z, valid, z_prev, v_prev)
            both = both.expand_as(d)
            if bool(both.any()):
                self.mean[f:], self.std[f:] = _masked_moments(d, both)
        return self

    def extra_repr(self) -> str:
        return f"features={self.features}, deltas={self.deltas}, log={self.log}"


def _masked_moments(v: torch.Tensor, mask: torch.Tensor):
    n = mask.sum(dim=tuple(range(v.dim() - 1))).clamp(min=1).to(v.dtype)
    vm = v * mask
    mean = vm.sum(dim=tuple(range(v.dim() - 1))) / n
    var = ((v - mean) ** 2 * mask).sum(dim=tuple(range(v.dim() - 1))) / n
    return mean, var.sqrt().clamp(min=1e-6)
