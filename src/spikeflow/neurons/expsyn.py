"""LIF neuron driven by exponentially decaying current synapses, integrated exactly.

The model of Brian2's CUBA example and NEST's ``iaf_psc_exp`` (Vogels & Abbott 2005;
Brette et al. 2007, Benchmark 2), with the synaptic currents in voltage units:
``tau_mem dv/dt = (v_leak - v) + sum_c g_c`` and ``tau_c dg_c/dt = -g_c``; a spike
arriving on channel ``c`` adds its weight to ``g_c``.

The linear system is solved exactly over a step (what Brian2's ``method='exact'``
computes symbolically): with ``a = exp(-dt/tau_mem)`` and ``b_c = exp(-dt/tau_c)``,
``v(t+dt) = v_leak + (v - v_leak) a + sum_c g_c tau_c/(tau_c - tau_mem) (b_c - a)``.
This is exactly the LIF step of :mod:`spikeflow.neurons.lif` (``leaky_integrate``) with
an input held for the step of ``x = sum_c g_c k_c``, ``k_c = tau_c (b_c - a) /
((tau_c - tau_mem)(1 - a))`` (``k_c = dt a / (tau_mem (1 - a))`` when ``tau_c == tau_mem``),
so the neuron math stays that of ``lif``. Refractoriness and reset are ``lif``'s too.

Order within a step (the same as Brian2's schedule with zero synaptic delay): arrivals
are added to ``g``; ``v`` is integrated with ``g`` (unless refractory); ``g`` decays;
threshold; reset. A spike emitted in step ``t`` with a delay of ``d`` steps arrives at the
start of step ``t + d``; ``d = 1`` equals Brian2's ``delay=0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Tuple

import torch

from spikeflow.neurons.base import check_finite, check_non_negative, check_positive, heaviside
from spikeflow.neurons.lif import apply_reset, fire, leaky_integrate


def input_coefficient(dt: float, tau_mem: float, tau_syn: float) -> float:
    """``k`` such that ``x = g k`` held for ``dt`` moves ``v`` as the decaying ``g`` does."""
    a = math.exp(-dt / tau_mem)
    if abs(tau_syn - tau_mem) < 1e-12 * tau_mem:
        return dt * a / (tau_mem * (1.0 - a))
    b = math.exp(-dt / tau_syn)
    return tau_syn * (b - a) / ((tau_syn - tau_mem) * (1.0 - a))


@dataclass
class ExpSynLIFParams:
    """LIF with exponential current synapses: ``tau_mem``, one ``tau_syn`` per input channel, ``dt`` and
    ``refractory`` in seconds; potentials in the model's units (mV in ``spikeflow.sim``'s CUBA network).
    """
    tau_mem: float = 20e-3
    tau_syn: Tuple[float, ...] = field(default_factory=lambda: (5e-3,))
    v_threshold: float = 1.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    dt: float = 1e-3
    reset: str = "to_reset"
    refractory: float = 0.0

    def __post_init__(self):
        check_positive("dt", self.dt, "ExpSynLIF")
        check_positive("tau_mem", self.tau_mem, "ExpSynLIF")
        self.tau_syn = tuple(float(t) for t in self.tau_syn)
        for t in self.tau_syn:
            check_positive("tau_syn", t, "ExpSynLIF")
        for name in ("v_threshold", "v_leak", "v_reset"):
            check_finite(name, getattr(self, name), "ExpSynLIF")
        check_non_negative("refractory", self.refractory, "ExpSynLIF")

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def beta(self) -> Tuple[float, ...]:
        return tuple(math.exp(-self.dt / t) for t in self.tau_syn)

    @property
    def k(self) -> Tuple[float, ...]:
        return tuple(input_coefficient(self.dt, self.tau_mem, t) for t in self.tau_syn)

    @property
    def refractory_steps(self) -> int:
        return int(math.floor(self.refractory / self.dt + 0.5))


class ExpSynLIFState(NamedTuple):
    """Membrane ``v`` (the population's shape), synaptic currents ``g`` ``[channels, *shape]`` (voltage
    units) and refractory steps left (int32, or ``None`` without a refractory period).
    """
    v: torch.Tensor
    g: torch.Tensor  # [channels, ...]
    refractory: torch.Tensor | None = None


def init_state(shape, params: ExpSynLIFParams, dtype=None, device=None) -> ExpSynLIFState:
    """The resting state of ``shape``: ``v = v_leak``, no synaptic current, no refractory steps left."""
    v = torch.full(shape, float(params.v_leak), dtype=dtype, device=device)
    g = torch.zeros((len(params.tau_syn),) + tuple(shape), dtype=dtype, device=device)
    refr = torch.zeros(shape, dtype=torch.int32, device=device) if params.refractory_steps > 0 else None
    return ExpSynLIFState(v, g, refr)


def step(arrivals: torch.Tensor, state: ExpSynLIFState, params: ExpSynLIFParams, spike_fn=heaviside):
    """One step; ``arrivals[c]`` is the summed weight arriving on channel ``c`` now."""
    dtype = state.v.dtype
    g = state.g + arrivals
    x = g[0] * torch.as_tensor(params.k[0], dtype=dtype)
    for c in range(1, g.shape[0]):
        x = x + g[c] * torch.as_tensor(params.k[c], dtype=dtype)
    alpha = torch.as_tensor(params.alpha, dtype=dtype)
    v_leak = torch.as_tensor(params.v_leak, dtype=dtype)
    v = leaky_integrate(state.v, x, alpha, v_leak, torch.as_tensor(1.0, dtype=dtype))
    beta = torch.as_tensor(params.beta, dtype=dtype).reshape((-1,) + (1,) * state.v.dim())
    g = g * beta
    v, z, refr = fire(v, state.v, state.refractory, params.v_threshold, params.refractory_steps, spike_fn)
    v = apply_reset(v, z, params.reset, torch.as_tensor(params.v_threshold, dtype=dtype),
                    torch.as_tensor(params.v_reset, dtype=dtype), False)
    return z, ExpSynLIFState(v, g, refr)
