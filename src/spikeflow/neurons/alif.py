"""Adaptive LIF (ALIF), after Bellec et al. 2018 ("Long short-term memory and
learning-to-learn in networks of spiking neurons", NeurIPS).

Membrane as LIF. The threshold adapts: ``theta = v_threshold + beta * a`` where
``a <- rho * a + z`` after each step, ``rho = exp(-dt / tau_adapt)``. So each spike
raises the threshold by ``beta`` and the rise relaxes with ``tau_adapt``.
Reset by subtraction removes the current (adapted) threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikeflow.neurons.base import (
    Value,
    check_finite,
    check_non_negative,
    check_positive,
    check_reset_mode,
    check_threshold_above_reset,
    decay,
    filled,
    heaviside,
)
from spikeflow.neurons.lif import apply_reset, leaky_integrate


@dataclass
class ALIFParams:
    """Adaptive LIF parameters: time constants ``tau_mem``, ``tau_adapt`` and ``dt`` in seconds; each spike
    raises the threshold by ``beta`` (threshold units). Values may be scalars or per-neuron tensors.
    """
    tau_mem: Value = 20e-3
    tau_adapt: Value = 200e-3
    v_threshold: Value = 1.0
    beta: Value = 0.07
    v_leak: Value = 0.0
    v_reset: Value = 0.0
    r: Value = 1.0
    dt: float = 1e-3
    reset: str = "subtract"
    detach_reset: bool = False

    def __post_init__(self):
        check_positive("dt", self.dt, "ALIF")
        check_positive("tau_mem", self.tau_mem, "ALIF")
        check_positive("tau_adapt", self.tau_adapt, "ALIF")
        check_non_negative("beta", self.beta, "ALIF")
        for name in ("v_threshold", "v_leak", "v_reset", "r"):
            check_finite(name, getattr(self, name), "ALIF")
        check_reset_mode(self.reset, "ALIF")
        check_threshold_above_reset(self.v_threshold, self.v_reset, "ALIF")

    @property
    def alpha(self) -> Value:
        return decay(self.dt, self.tau_mem)

    @property
    def rho(self) -> Value:
        return decay(self.dt, self.tau_adapt)


class ALIFState(NamedTuple):
    """ALIF state: membrane ``v`` and adaptation ``a`` (threshold = ``v_threshold + beta * a``), each ``[B, n]``."""
    v: torch.Tensor
    a: torch.Tensor  # adaptation variable; threshold = v_threshold + beta * a


def init_state(shape, params: ALIFParams, dtype=None, device=None) -> ALIFState:
    """The resting state of ``shape`` (e.g. ``[B, n]``): ``v = v_leak``, no adaptation."""
    v = filled(shape, params.v_leak, dtype, device)
    return ALIFState(v, torch.zeros(shape, dtype=dtype, device=device))


def threshold(state: ALIFState, params: ALIFParams) -> torch.Tensor:
    """The adapted threshold ``v_threshold + beta * a`` of each neuron."""
    return params.v_threshold + params.beta * state.a


def step(x: torch.Tensor, state: ALIFState, params: ALIFParams, spike_fn=heaviside):
    """One step: LIF integration, a spike above the adapted threshold, reset, then
    ``a <- exp(-dt / tau_adapt) * a + spike``; returns ``(spikes, new_state)``, each shaped like ``x``.
    """
    v = leaky_integrate(state.v, x, params.alpha, params.v_leak, params.r)
    theta = threshold(state, params)
    z = spike_fn(v - theta)
    v = apply_reset(v, z, params.reset, theta, params.v_reset, params.detach_reset)
    a = params.rho * state.a + z
    return z, ALIFState(v, a)
