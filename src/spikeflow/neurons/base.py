"""Shared helpers for neuron models: parameter checks and the exact-decay rule.

Time policy (docs/architecture.md): ``dt`` and every ``tau`` are in seconds; a leak step is
the exact decay ``exp(-dt / tau)``; input enters as ``r * I * (1 - exp(-dt / tau))``.
"""

from __future__ import annotations

import math
from typing import Union

import torch

from spikeflow.errors import InputError, ParameterError, ShapeError

Value = Union[float, torch.Tensor]

RESET_MODES = ("subtract", "to_reset", "none")

# When a stepped engine applies the reset: at the end of the step that crossed threshold
# ("step", the discrete model trained networks and NIR export use), or at the crossing time
# located inside that step ("crossing": each model's ``step_crossing``).
RESET_TIMINGS = ("step", "crossing")


def as_tensor(value: Value, dtype=None, device=None) -> torch.Tensor:
    """A float or tensor parameter as a tensor (kept as is when already one)."""
    if isinstance(value, torch.Tensor):
        if dtype is not None or device is not None:
            return value.to(dtype=dtype or value.dtype, device=device or value.device)
        return value
    return torch.as_tensor(float(value), dtype=dtype or torch.get_default_dtype(), device=device)


def filled(shape, value: Value, dtype=None, device=None) -> torch.Tensor:
    """A new ``shape`` tensor holding ``value`` (a number, or a tensor broadcast to ``shape``): one
    fill for a number, not a zero tensor and a second one for the sum."""
    if isinstance(value, torch.Tensor):
        return torch.zeros(shape, dtype=dtype, device=device) + as_tensor(value, dtype, device)
    return torch.full(tuple(shape), float(value), dtype=dtype or torch.get_default_dtype(), device=device)


def _values(value: Value) -> torch.Tensor:
    return value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(float(value))


def check_positive(name: str, value: Value, model: str) -> None:
    v = _values(value)
    if not torch.isfinite(v).all() or (v <= 0).any():
        raise ParameterError(
            f"{model}: parameter '{name}' must be finite and > 0 (seconds for tau/dt), got {_describe(v)}"
        )


def check_non_negative(name: str, value: Value, model: str) -> None:
    v = _values(value)
    if not torch.isfinite(v).all() or (v < 0).any():
        raise ParameterError(f"{model}: parameter '{name}' must be finite and >= 0, got {_describe(v)}")


def check_finite(name: str, value: Value, model: str) -> None:
    v = _values(value)
    if not torch.isfinite(v).all():
        raise ParameterError(f"{model}: parameter '{name}' must be finite, got {_describe(v)}")


def check_reset_mode(reset: str, model: str) -> None:
    if reset not in RESET_MODES:
        raise ParameterError(f"{model}: parameter 'reset' must be one of {RESET_MODES}, got {reset!r}")


def check_reset_timing(reset_timing: str, where: str) -> None:
    if reset_timing not in RESET_TIMINGS:
        raise ParameterError(f"{where}: option 'reset_timing' must be one of {RESET_TIMINGS}, got {reset_timing!r}")


def check_threshold_above_reset(v_threshold: Value, v_reset: Value, model: str) -> None:
    th, vr = _values(v_threshold), _values(v_reset)
    if (th <= vr).any():
        raise ParameterError(
            f"{model}: parameter 'v_threshold' must be > 'v_reset' "
            f"(got v_threshold={_describe(th)}, v_reset={_describe(vr)})"
        )


def _describe(v: torch.Tensor) -> str:
    if v.numel() == 1:
        return f"{v.item():g}"
    return f"tensor of shape {tuple(v.shape)} (min {v.min().item():g}, max {v.max().item():g})"


def decay(dt: float, tau: Value) -> Value:
    """Exact leak factor ``exp(-dt / tau)``: differentiable in a tensor ``tau``; a Python float
    for a float ``tau`` (so it takes the dtype of the state it multiplies)."""
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / float(tau))


def check_input(x: torch.Tensor, model: str) -> None:
    """Reject non-tensors and NaN/inf input with a message that names the model."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{model}: input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{model}: input must be a floating-point tensor, got dtype {x.dtype}")
    # One cheap reduction first: any NaN/inf makes the sum non-finite; only then (or on
    # overflow of a finite sum) run the element-wise check.
    if x.numel() and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise InputError(f"{model}: input contains NaN or inf values")


def check_time_major(x: torch.Tensor, model: str, min_rank: int = 2) -> None:
    """Multi-step input must be time-major ``[T, B, ...]``."""
    if x.dim() < min_rank:
        raise ShapeError(
            f"{model}: multi-step input must be time-major [T, B, ...] with rank >= {min_rank}, "
            f"got shape {tuple(x.shape)}"
        )


def heaviside(v_minus_threshold: torch.Tensor) -> torch.Tensor:
    """Plain spike function: 1 where the membrane is strictly above threshold."""
    return (v_minus_threshold > 0).to(v_minus_threshold.dtype)
