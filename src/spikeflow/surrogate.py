"""Surrogate spike functions: Heaviside forward, a smooth pseudo-derivative backward.

Each takes ``u = v - v_threshold`` and returns spikes ``(u > 0)``; the backward pass
uses the surrogate's derivative ``d spike / d u``:

* ``fast_sigmoid`` (SuperSpike; Zenke & Ganguli 2018): ``1 / (slope * |u| + 1)^2``
* ``atan`` (Fang et al. 2021): ``(alpha / 2) / (1 + (pi/2 * alpha * u)^2)``
* ``triangle`` (Esser et al. 2016; Bellec et al. 2018): ``max(0, 1 - |u| / width) / width``
* ``straight_through``: ``1`` where ``|u| < width / 2``, else 0 (a boxcar)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spikeflow.errors import ParameterError

SURROGATES = ("fast_sigmoid", "atan", "triangle", "straight_through")


def surrogate_grad(kind: str, u: torch.Tensor, scale: float) -> torch.Tensor:
    """The pseudo-derivative ``d spike / d u`` (shared by the autograd Function and the kernels' tests)."""
    if kind == "fast_sigmoid":
        return 1.0 / (scale * u.abs() + 1.0) ** 2
    if kind == "atan":
        return (scale / 2.0) / (1.0 + (math.pi / 2.0 * scale * u) ** 2)
    if kind == "triangle":
        return torch.clamp(1.0 - u.abs() / scale, min=0.0) / scale
    if kind == "straight_through":
        return (u.abs() < scale / 2.0).to(u.dtype)
    raise ParameterError(f"surrogate: unknown kind {kind!r}; valid kinds: {SURROGATES}")


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, kind, scale):
        ctx.save_for_backward(u)
        ctx.kind, ctx.scale = kind, scale
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (u,) = ctx.saved_tensors
        return grad_out * surrogate_grad(ctx.kind, u, ctx.scale), None, None


@dataclass(frozen=True)
class Surrogate:
    """A spike function with a surrogate gradient.

    ``scale`` is the slope (fast_sigmoid, atan) or the width (triangle,
    straight_through).
    """

    kind: str = "fast_sigmoid"
    scale: float = 25.0

    def __post_init__(self):
        if self.kind not in SURROGATES:
            raise ParameterError(f"surrogate: unknown kind {self.kind!r}; valid kinds: {SURROGATES}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ParameterError(f"surrogate {self.kind}: 'scale' (slope or width) must be > 0, got {self.scale}")

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(u, self.kind, self.scale)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        return surrogate_grad(self.kind, u, self.scale)


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """Fast-sigmoid surrogate (SuperSpike): derivative ``1 / (slope * |u| + 1)^2``, ``u = v - v_threshold``."""
    return Surrogate("fast_sigmoid", slope)


def atan(alpha: float = 2.0) -> Surrogate:
    """Arctangent surrogate (Fang et al. 2021): derivative ``(alpha / 2) / (1 + (pi/2 * alpha * u)^2)``."""
    return Surrogate("atan", alpha)


def triangle(width: float = 1.0) -> Surrogate:
    """Triangle surrogate (Esser et al. 2016): derivative ``max(0, 1 - |u| / width) / width``."""
    return Surrogate("triangle", width)


def straight_through(width: float = 1.0) -> Surrogate:
    """Boxcar surrogate: derivative 1 where ``|u| < width / 2``, else 0."""
    return Surrogate("straight_through", width)


def get(spec) -> Surrogate:
    """A ``Surrogate`` from an instance, a kind name, or ``None`` (the default fast sigmoid)."""
    if spec is None:
        return Surrogate()
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str):
        return Surrogate(spec, {"fast_sigmoid": 25.0, "atan": 2.0}.get(spec, 1.0))
    raise ParameterError(f"surrogate: expected a Surrogate or one of {SURROGATES}, got {spec!r}")
