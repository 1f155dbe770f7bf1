"""Integrate-and-fire (IF) neuron without leak.

Step: ``v <- v + r * x``; spike when ``v > v_threshold``; reset by subtraction
(conserves charge, so the spike count is ``floor(total charge / threshold)``
for positive input) or to ``v_reset``.

Units: ``x`` is the charge delivered in one step. NIR's ``IF`` node is
``dv/dt = R I``, so ``R_nir = r / dt`` (the NIR exporter converts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikeflow.neurons.base import (
    Value,
    as_tensor,
    check_finite,
    check_positive,
    check_reset_mode,
    check_threshold_above_reset,
    heaviside,
)
from spikeflow.neurons.lif import apply_reset, reset_at_crossing


@dataclass
class IFParams:
    """Integrate-and-fire parameters: ``v <- v + r * x`` per step (no leak); ``dt`` in seconds."""
    v_threshold: Value = 1.0
    v_reset: Value = 0.0
    r: Value = 1.0
    dt: float = 1e-3
    reset: str = "subtract"
    detach_reset: bool = False

    def __post_init__(self):
        check_positive("dt", self.dt, "IF")
        for name in ("v_threshold", "v_reset", "r"):
            check_finite(name, getattr(self, name), "IF")
        check_reset_mode(self.reset, "IF")
        check_threshold_above_reset(self.v_threshold, self.v_reset, "IF")


class IFState(NamedTuple):
    """IF state: membrane ``v`` ``[B, n]``."""
    v: torch.Tensor


def init_state(shape, params: IFParams, dtype=None, device=None) -> IFState:
    """The resting state of ``shape`` (e.g. ``[B, n]``): ``v = 0``."""
    return IFState(torch.zeros(shape, dtype=dtype, device=device))


def step(x: torch.Tensor, state: IFState, params: IFParams, spike_fn=heaviside):
    """One step: ``v <- v + r * x``, a spike when ``v > v_threshold``, reset in the same step;
    returns ``(spikes, new_state)``, each shaped like ``x``.
    """
    v = state.v + params.r * x
    z = spike_fn(v - params.v_threshold)
    v = apply_reset(v, z, params.reset, params.v_threshold, params.v_reset, params.detach_reset)
    return z, IFState(v)


def step_crossing(x: torch.Tensor, drive, state: IFState, params: IFParams, spike_fn=heaviside,
                  return_lag: bool = False):
    """``step`` with the reset at the crossing time inside the step (``reset_timing="crossing"``,
    see ``lif.step_crossing``). Without leak the reset does not decay, so only where the constant
    ``drive`` crossed threshold inside the step does anything change: reset ``"to_reset"`` keeps
    the charge the drive added after the crossing (``v = v_reset + (v - v_threshold)``), as the
    continuous neuron does. Input spikes are jumps at the step's end (their overshoot is lost on a
    reset to ``v_reset``); reset ``"subtract"`` is ``step``'s. ``return_lag``: also return the
    crossing's lag before the step's end, ``1 - (v_threshold - v_prev) / (r drive)`` (1 if the step
    starts above threshold, 0 for a jump), as ``(z, state, lag)`` (``neurons.cuba``'s precise spike
    times); input lags are not modelled for IF targets (their inputs are jumps at the end).
    """
    v0 = state.v
    v = v0 + params.r * x
    z = spike_fn(v - params.v_threshold)
    th = as_tensor(params.v_threshold, v.dtype, v.device)
    by_drive = v0 + params.r * drive > th
    v_star = torch.where(by_drive, torch.maximum(v0, th), v)
    v = reset_at_crossing(v, z, params.reset, params.v_threshold, params.v_reset, v_star, 1.0, params.detach_reset)
    if return_lag:
        inside = by_drive & (v0 < th)
        rd = torch.where(inside, params.r * drive + torch.zeros_like(v), torch.ones_like(v))
        lag = torch.where(inside, 1.0 - (th - v0) / rd, torch.where(by_drive, torch.ones_like(v), torch.zeros_like(v)))
        return z, IFState(v), lag
    return z, IFState(v)
