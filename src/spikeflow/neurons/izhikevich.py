"""Izhikevich neuron (Izhikevich, "Simple model of spiking neurons",
IEEE Trans. Neural Networks 14(6), 2003).

In the model's own units (ms, mV):
``dv/dt = 0.04 v^2 + 5 v + 140 - u + I``, ``du/dt = a (b v - u)``;
when ``v >= v_peak`` (30 mV): ``v <- c``, ``u <- u + d``.
``dt`` is given in seconds like every spikeflow model; the membrane is advanced
with forward Euler in sub-steps of at most 0.5 ms (the paper's own scheme takes two
0.5 ms steps per 1 ms), the recovery variable once per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikeflow.errors import ParameterError
from spikeflow.neurons.base import Value, as_tensor, check_finite, check_positive, heaviside

# (a, b, c, d) from Izhikevich 2003, Fig. 2.
PRESETS = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
}


@dataclass
class IzhikevichParams:
    """Izhikevich parameters ``a``, ``b``, ``c`` (mV), ``d`` in the model's own units (ms, mV), spike peak
    ``v_peak`` (mV) and ``dt`` in seconds; ``preset(name)`` gives the 2003 paper's cell types.
    """
    a: Value = 0.02
    b: Value = 0.2
    c: Value = -65.0
    d: Value = 8.0
    v_peak: Value = 30.0
    dt: float = 1e-3

    def __post_init__(self):
        check_positive("dt", self.dt, "Izhikevich")
        for name in ("a", "b", "c", "d", "v_peak"):
            check_finite(name, getattr(self, name), "Izhikevich")

    @classmethod
    def preset(cls, name: str, dt: float = 1e-3) -> IzhikevichParams:
        if name not in PRESETS:
            raise ParameterError(f"Izhikevich: unknown preset {name!r}; valid presets: {sorted(PRESETS)}")
        a, b, c, d = PRESETS[name]
        return cls(a=a, b=b, c=c, d=d, dt=dt)

    @property
    def substeps(self) -> int:
        return max(1, math.ceil(self.dt * 1e3 / 0.5 - 1e-9))


class IzhikevichState(NamedTuple):
    """Izhikevich state: membrane ``v`` (mV) and recovery variable ``u``, each ``[B, n]``."""
    v: torch.Tensor  # mV
    u: torch.Tensor  # recovery variable


def init_state(shape, params: IzhikevichParams, dtype=None, device=None) -> IzhikevichState:
    """Resting start as in the paper: ``v = -65 mV``, ``u = b v``."""
    v = torch.full(shape, -65.0, dtype=dtype, device=device)
    return IzhikevichState(v, as_tensor(params.b, dtype, device) * v)


def step(x: torch.Tensor, state: IzhikevichState, params: IzhikevichParams, spike_fn=heaviside):
    """One step of ``dt`` seconds (membrane in Euler sub-steps of at most 0.5 ms, module doc); a spike
    when ``v`` reaches ``v_peak``, then ``v <- c``, ``u <- u + d``; returns ``(spikes, new_state)``.
    """
    h_ms = params.dt * 1e3
    n = params.substeps
    hv = h_ms / n
    v, u = state.v, state.u
    peaked = torch.zeros_like(v, dtype=torch.bool)
    for _ in range(n):
        v_new = v + hv * (0.04 * v * v + 5.0 * v + 140.0 - u + x)
        peaked = peaked | (v_new >= params.v_peak)
        v = torch.where(peaked, torch.as_tensor(params.v_peak, dtype=v.dtype), v_new)
    u = u + h_ms * params.a * (params.b * v - u)
    z = peaked.to(v.dtype)  # not trained by gradient; spike_fn kept for a uniform signature
    v = torch.where(peaked, as_tensor(params.c, v.dtype, v.device).expand_as(v), v)
    u = u + z * params.d
    return z, IzhikevichState(v, u)
