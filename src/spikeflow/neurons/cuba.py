"""Current-based LIF (CubaLIF) and its non-spiking readout (CubaLI): NIR's
``CubaLIF``/``CubaLI`` nodes, the same two-compartment dynamics as Loihi's CUBA neuron.

ODEs (NIR): ``tau_syn * dI/dt = -I + w_in * S`` and
``tau_mem * dv/dt = (v_leak - v) + r * I``.
Step (exact decays): ``I <- I * b + w_in * x * (1 - b)``, ``b = exp(-dt / tau_syn)``;
then the LIF step driven by the new ``I``.
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
    decay,
    heaviside,
)
from spikeflow.neurons.lif import apply_reset, leaky_integrate


@dataclass
class CubaLIFParams:
    tau_syn: Value = 5e-3
    tau_mem: Value = 20e-3
    v_threshold: Value = 1.0
    v_leak: Value = 0.0
    v_reset: Value = 0.0
    r: Value = 1.0
    w_in: Value = 1.0
    dt: float = 1e-3
    reset: str = "subtract"
    detach_reset: bool = False

    def __post_init__(self):
        _check_cuba(self, "CubaLIF")
        check_finite("v_threshold", self.v_threshold, "CubaLIF")
        check_finite("v_reset", self.v_reset, "CubaLIF")
        check_reset_mode(self.reset, "CubaLIF")
        check_threshold_above_reset(self.v_threshold, self.v_reset, "CubaLIF")

    @property
    def alpha(self) -> Value:
        return decay(self.dt, self.tau_mem)

    @property
    def alpha_syn(self) -> Value:
        return decay(self.dt, self.tau_syn)


@dataclass
class CubaLIParams:
    tau_syn: Value = 5e-3
    tau_mem: Value = 20e-3
    v_leak: Value = 0.0
    r: Value = 1.0
    w_in: Value = 1.0
    dt: float = 1e-3

    def __post_init__(self):
        _check_cuba(self, "CubaLI")

    alpha = CubaLIFParams.alpha
    alpha_syn = CubaLIFParams.alpha_syn


def _check_cuba(p, model: str) -> None:
    check_positive("dt", p.dt, model)
    check_positive("tau_syn", p.tau_syn, model)
    check_positive("tau_mem", p.tau_mem, model)
    for name in ("v_leak", "r", "w_in"):
        check_finite(name, getattr(p, name), model)


class CubaState(NamedTuple):
    v: torch.Tensor
    i: torch.Tensor  # synaptic current


def init_state(shape, params, dtype=None, device=None) -> CubaState:
    v = torch.zeros(shape, dtype=dtype, device=device) + as_tensor(params.v_leak, dtype, device)
    return CubaState(v, torch.zeros(shape, dtype=dtype, device=device))


def _integrate(x, state: CubaState, params):
    b = params.alpha_syn
    i = state.i * b + params.w_in * x * (1.0 - b)
    v = leaky_integrate(state.v, i, params.alpha, params.v_leak, params.r)
    return v, i


def step(x: torch.Tensor, state: CubaState, params: CubaLIFParams, spike_fn=heaviside):
    v, i = _integrate(x, state, params)
    z = spike_fn(v - params.v_threshold)
    v = apply_reset(v, z, params.reset, params.v_threshold, params.v_reset, params.detach_reset)
    return z, CubaState(v, i)


def step_li(x: torch.Tensor, state: CubaState, params: CubaLIParams, spike_fn=None):
    """CubaLI: returns ``(v, new_state)``."""
    v, i = _integrate(x, state, params)
    return v, CubaState(v, i)
