"""Leaky integrate-and-fire (LIF) neuron: the NIR ``LIF`` node.

ODE (NIR): ``tau_mem * dv/dt = (v_leak - v) + r * I``.
Step (exact decay, docs/architecture.md):
``v <- v_leak + (v - v_leak) * a + r * x * (1 - a)`` with ``a = exp(-dt / tau_mem)``;
a spike when ``v > v_threshold``; reset in the same step, by subtracting the
threshold (``reset="subtract"``) or to ``v_reset`` (``reset="to_reset"``).
During a refractory period the membrane is held (no leak, no input) and no spike
is emitted, as in Brian2's ``unless refractory``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch

from spikeflow.errors import ParameterError
from spikeflow.neurons.base import (
    Value,
    as_tensor,
    check_finite,
    check_non_negative,
    check_positive,
    check_reset_mode,
    check_threshold_above_reset,
    decay,
    filled,
    heaviside,
)


@dataclass
class LIFParams:
    """LIF parameters: ``tau_mem``, ``dt`` and ``refractory`` in seconds; threshold, leak and reset
    potentials and the input gain ``r`` as scalars or per-neuron tensors; ``reset`` is ``"subtract"`` or
    ``"to_reset"``.
    """
    tau_mem: Value = 20e-3
    v_threshold: Value = 1.0
    v_leak: Value = 0.0
    v_reset: Value = 0.0
    r: Value = 1.0
    dt: float = 1e-3
    reset: str = "subtract"
    refractory: float = 0.0
    detach_reset: bool = False

    def __post_init__(self):
        check_positive("dt", self.dt, "LIF")
        check_positive("tau_mem", self.tau_mem, "LIF")
        for name in ("v_threshold", "v_leak", "v_reset", "r"):
            check_finite(name, getattr(self, name), "LIF")
        check_non_negative("refractory", self.refractory, "LIF")
        check_reset_mode(self.reset, "LIF")
        check_threshold_above_reset(self.v_threshold, self.v_reset, "LIF")

    @property
    def alpha(self) -> Value:
        return decay(self.dt, self.tau_mem)

    @property
    def refractory_steps(self) -> int:
        """Whole steps of refractoriness after a spike (rounded to the nearest step)."""
        return int(math.floor(self.refractory / self.dt + 0.5))


class LIFState(NamedTuple):
    """LIF state: membrane ``v`` ``[B, n]`` and, with a refractory period, the steps left (int32 ``[B, n]``)."""
    v: torch.Tensor
    refractory: Optional[torch.Tensor] = None  # steps left, only when refractory > 0


def init_state(shape, params: LIFParams, dtype=None, device=None) -> LIFState:
    """The resting state of ``shape`` (e.g. ``[B, n]``): ``v = v_leak``, no refractory steps left."""
    v = filled(shape, params.v_leak, dtype, device)
    refr = torch.zeros(shape, dtype=torch.int32, device=device) if params.refractory_steps > 0 else None
    return LIFState(v, refr)


def leaky_integrate(v, x, alpha, v_leak, r):
    """One exact-decay step of ``tau dv/dt = (v_leak - v) + r x`` with x held for dt."""
    return v_leak + (v - v_leak) * alpha + r * x * (1.0 - alpha)


def apply_reset(v, z, reset: str, v_threshold, v_reset, detach: bool):
    """Reset after a spike ``z`` in the same step."""
    zr = z.detach() if detach else z
    if reset == "subtract":
        return v - zr * v_threshold
    if reset == "to_reset":
        return v - zr * (v - v_reset)
    return v


def fire(v, v_before, refractory, v_threshold, refractory_steps: int, spike_fn):
    """Threshold crossing with an optional refractory counter (steps left, or ``None``).

    While refractory, the membrane is held at ``v_before`` and no spike is emitted; a spike
    restarts the counter. Returns ``(v, spikes, refractory)``; the reset is the caller's.
    """
    if refractory is not None:
        active = refractory <= 0
        v = torch.where(active, v, v_before)
    z = spike_fn(v - v_threshold)
    if refractory is not None:
        z = z * active.to(z.dtype)
        refractory = torch.where(z > 0, torch.full_like(refractory, refractory_steps), (refractory - 1).clamp(min=0))
    return v, z, refractory


def step(x: torch.Tensor, state: LIFState, params: LIFParams, spike_fn=heaviside):
    """One time step; returns ``(spikes, new_state)``."""
    v = leaky_integrate(state.v, x, params.alpha, params.v_leak, params.r)
    v, z, refr = fire(v, state.v, state.refractory, params.v_threshold, params.refractory_steps, spike_fn)
    v = apply_reset(v, z, params.reset, params.v_threshold, params.v_reset, params.detach_reset)
    return z, LIFState(v, refr)


# ---------------------------------------------------------------- reset at the crossing time
#
# The stepped models reset at the end of the step in which ``v`` crossed threshold, while the
# continuous neuron resets at the crossing time t* inside the step; the membrane then carries a
# deficit ``Delta * (1 - a^(1 - f))`` that delays the next crossing, by many steps when the drive
# is barely above threshold. Locating t* inside the step and applying the reset there is the cure
# of Hansel, Mato, Meunier & Neltner 1998 (Neural Comput. 10:467, "On numerical simulations of
# integrate-and-fire neural networks"; linear interpolation of the crossing), also behind NEST's
# precise-spike-timing models (Morrison, Straube, Plesser & Diesmann 2007, Neural Comput. 19:47).
# The reset is a jump of -Delta in ``v`` alone at t*; the ODEs are linear, so at the step's end it
# is that jump decayed by the membrane for the rest of the step: ``exp(-(1 - f) dt / tau_mem)``.


def reset_at_crossing(v, z, reset: str, v_threshold, v_reset, v_star, rest_decay, detach: bool = False):
    """The reset applied at the crossing time t* (fraction ``f`` into the step), seen at the step's end.

    ``v`` is the step-end membrane before reset, ``v_star`` the membrane at t* (the threshold for a
    continuous crossing), ``rest_decay = exp(-(1 - f) dt / tau_mem)`` (1 without leak). The jump is
    ``Delta = v_threshold`` (``"subtract"``) or ``v_star - v_reset`` (``"to_reset"``); ``"none"``: no reset.
    """
    zr = z.detach() if detach else z
    if reset == "subtract":
        return v - zr * v_threshold * rest_decay
    if reset == "to_reset":
        return v - zr * (v_star - v_reset) * rest_decay
    return v


def step_crossing(x: torch.Tensor, drive, state: LIFState, params: LIFParams, spike_fn=heaviside,
                  return_lag: bool = False):
    """``step`` with the reset at the crossing time inside the step (``reset_timing="crossing"``).

    Input spikes reach a LIF as jumps (the clock-free engine's Dirac impulses), taken at the step's
    end; only the constant ``drive`` (the bias current every step carries, part of ``x``) moves
    ``v`` continuously inside the step. So: if the drive alone takes ``v`` above threshold during
    the step, the crossing is located exactly on that exponential,
    ``exp(f dt/tau) = (v_inf - v_prev) / (v_inf - v_threshold)`` with ``v_inf = v_leak + r drive``
    (``f = 0`` when the step starts above threshold), so ``a^(1 - f) = a (v_inf - v_prev) / (v_inf -
    v_threshold)``; otherwise a jump crossed it at the step's end and the reset is ``step``'s. Exact
    for a neuron driven by a constant bias. Spikes are decided as in ``step``.

    ``return_lag``: also return the crossing's lag ``1 - f`` before the step's end (``ln(a^(1 - f)) /
    ln a``; 0 for a jump at the step's end), as ``(z, state, lag)`` (``neurons.cuba``'s precise
    spike times). Input lags are not modelled for LIF targets (their inputs are jumps at the end).
    """
    if params.refractory_steps > 0:
        raise ParameterError("LIF: reset_timing='crossing' does not model a refractory period (refractory > 0)")
    v0 = state.v
    alpha, v_leak, r = params.alpha, params.v_leak, params.r
    v = leaky_integrate(v0, x, alpha, v_leak, r)
    z = spike_fn(v - params.v_threshold)
    th = as_tensor(params.v_threshold, v.dtype, v.device)
    v_mid = leaky_integrate(v0, drive, alpha, v_leak, r)  # the drive alone over the step
    by_drive = v_mid > th
    below = v0 < th
    v_inf = v_leak + r * drive
    inside = by_drive & below  # then v0 < th < v_mid < v_inf: the ratio below is > 1
    num = torch.where(inside, v_inf - v0, torch.ones_like(v))
    den = torch.where(inside, v_inf - th, torch.ones_like(v))
    alpha_t = as_tensor(alpha, v.dtype, v.device)
    rest = torch.where(inside, torch.minimum(torch.maximum(alpha * num / den, alpha_t), torch.ones_like(v)),
                       alpha_t.expand_as(v))
    rest = torch.where(by_drive, rest, torch.ones_like(v))
    v_star = torch.where(by_drive, torch.maximum(v0, th), v)
    v = reset_at_crossing(v, z, params.reset, params.v_threshold, params.v_reset, v_star, rest,
                          params.detach_reset)
    if return_lag:
        lag = torch.where(by_drive, torch.log(rest) / torch.log(alpha_t), torch.zeros_like(v))
        return z, LIFState(v, state.refractory), lag
    return z, LIFState(v, state.refractory)
