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
    check_finite,
    check_positive,
    check_reset_mode,
    check_threshold_above_reset,
    heaviside,
)
from spikeflow.neurons.lif import apply_reset


@dataclass
class IFParams:
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
    v: torch.Tensor


def init_state(shape, params: IFParams, dtype=None, device=None) -> IFState:
    return IFState(torch.zeros(shape, dtype=dtype, device=device))


def step(x: torch.Tensor, state: IFState, params: IFParams, spike_fn=heaviside):
    v = state.v + params.r * x
    z = spike_fn(v - params.v_threshold)
    v = apply_reset(v, z, params.reset, params.v_threshold, params.v_reset, params.detach_reset)
    return z, IFState(v)
