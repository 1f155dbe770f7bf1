"""Leaky integrator (LI): a non-spiking readout, the NIR ``LI`` node.

``tau_mem * dv/dt = (v_leak - v) + r * I``; the output is the membrane ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikeflow.neurons.base import Value, as_tensor, check_finite, check_positive, decay
from spikeflow.neurons.lif import leaky_integrate


@dataclass
class LIParams:
    """Leaky integrator parameters (a non-spiking readout): ``tau_mem`` and ``dt`` in seconds, ``v_leak``, ``r``."""
    tau_mem: Value = 20e-3
    v_leak: Value = 0.0
    r: Value = 1.0
    dt: float = 1e-3

    def __post_init__(self):
        check_positive("dt", self.dt, "LI")
        check_positive("tau_mem", self.tau_mem, "LI")
        check_finite("v_leak", self.v_leak, "LI")
        check_finite("r", self.r, "LI")

    @property
    def alpha(self) -> Value:
        return decay(self.dt, self.tau_mem)


class LIState(NamedTuple):
    """LI state: membrane ``v`` ``[B, n]``."""
    v: torch.Tensor


def init_state(shape, params: LIParams, dtype=None, device=None) -> LIState:
    """The resting state of ``shape`` (e.g. ``[B, n]``): ``v = v_leak``."""
    return LIState(torch.zeros(shape, dtype=dtype, device=device) + as_tensor(params.v_leak, dtype, device))


def step(x: torch.Tensor, state: LIState, params: LIParams, spike_fn=None):
    """Returns ``(v, new_state)``: the readout is the membrane itself."""
    v = leaky_integrate(state.v, x, params.alpha, params.v_leak, params.r)
    return v, LIState(v)
