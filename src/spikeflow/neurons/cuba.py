"""Current-based LIF (CubaLIF) and its non-spiking readout (CubaLI): NIR's
``CubaLIF``/``CubaLI`` nodes, the same two-compartment dynamics as Loihi's CUBA neuron.

ODEs (NIR, Pedersen et al. 2024, "Neuromorphic intermediate representation", Nat. Commun.
15:8122): ``tau_syn * dI/dt = -I + w_in * S`` and ``tau_mem * dv/dt = (v_leak - v) + r * I``.

Step: the exact solution of this linear system over one step with the input ``x`` held
constant (the time policy of docs/architecture.md, as for LIF; exact integration of linear ODEs per Rotter &
Diesmann 1999, Biol. Cybern. 81:381, "Exact digital simulation of time-invariant linear
systems"). With ``a = exp(-dt/tau_mem)``, ``b = exp(-dt/tau_syn)``::

    I' = I * b + w_in * x * (1 - b)
    v' = v_leak + (v - v_leak) * a + r * I * K + r * w_in * x * E
    K  = tau_syn / (tau_syn - tau_mem) * (b - a)     (tau_syn == tau_mem: K = (dt/tau) * a)
    E  = 1 - a - K

``K`` is the membrane's response after ``dt`` to a unit current decaying with ``tau_syn``;
``E`` its response to a unit current switched on for the step. ``K`` is evaluated as
``a * (dt/tau_mem) * expm1(d) / d`` with ``d = dt/tau_mem - dt/tau_syn``, which is stable for
equal and nearly equal time constants. The clock-free engine (``spikeflow.runtime.clockfree``)
integrates the same ODEs in continuous time.

Spikes with their time inside the step (``reset_timing="crossing"``; the idea of NEST's precise
spike times, Morrison, Straube, Plesser & Diesmann 2007, Neural Comput. 19:47): a spike is a
charge ``Q`` delivered at its crossing time ``t*``, a lag ``lam = (t_n - t*)/dt`` in [0, 1] before
the step's end ``t_n``. The held input ``x = Q/dt`` above is exact for charge spread evenly over the
step, i.e. (to first order) a Dirac at ``lam = 1/2``. A Dirac at ``lam`` adds at the step's end
``dI = w_in (Q/tau_syn) b^lam`` and ``dv = r w_in (Q/tau_syn) K(lam dt)`` (``K(s)`` the coupling over
``s``; ``tau_mem K'(s) = exp(-s/tau_syn) - K(s)``). Their first-order terms in ``lam - 1/2``, per unit
of held input, are the lag gains::

    G_i = d/dlam [(dt/tau_syn) b^lam]       = -(dt/tau_syn)^2 b^(1/2)
    G_v = d/dlam [(dt/tau_syn) K(lam dt)]   = (dt/tau_syn) (dt/tau_mem) (b^(1/2) - K(dt/2))

so a "lag moment" input ``y = sum_j W_j x_j (lam_j - 1/2)`` (the same linear synapses applied to the
lag-weighted spikes) adds ``I += w_in y G_i`` and ``v += r w_in y G_v``: a spike's time error drops
from up to dt/2 to O(dt^2), and ``y = 0`` (data input, which has no time inside the step) is the
held step.
"""

from __future__ import annotations

import math
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
    filled,
    heaviside,
)
from spikeflow.neurons.lif import apply_reset, reset_at_crossing


@dataclass
class CubaLIFParams:
    """Current-based LIF parameters (NIR ``CubaLIF``): ``tau_syn``, ``tau_mem`` and ``dt`` in seconds,
    input weight ``w_in``, membrane gain ``r``; scalars or per-neuron tensors.
    """
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

    @property
    def coupling(self) -> Value:
        """``K``: the membrane's response after one step to the current present at its start."""
        return coupling(self.dt, self.tau_mem, self.tau_syn)

    @property
    def input_gain(self) -> Value:
        """``E = 1 - a - K``: the membrane's response after one step to input held over it."""
        return input_gain(self.dt, self.tau_mem, self.tau_syn)

    @property
    def lag_gains(self):
        """``(G_i, G_v)``: the current's and membrane's first-order response to a spike's lag (module doc)."""
        return lag_gains(self.dt, self.tau_mem, self.tau_syn)


@dataclass
class CubaLIParams:
    """Current-based leaky integrator parameters (NIR ``CubaLI``, a non-spiking readout): ``tau_syn``,
    ``tau_mem`` and ``dt`` in seconds, ``w_in``, ``r``.
    """
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
    coupling = CubaLIFParams.coupling
    input_gain = CubaLIFParams.input_gain
    lag_gains = CubaLIFParams.lag_gains


_TAYLOR = 1e-5  # |z| below which expm1(z)/z uses its series (error < z^3/24 < 5e-17)


def _expm1_over(z):
    """``expm1(z) / z`` (1 at z = 0), for floats and tensors; finite gradients at z = 0."""
    if isinstance(z, torch.Tensor):
        small = z.abs() < _TAYLOR
        safe = torch.where(small, torch.ones_like(z), z)
        return torch.where(small, 1.0 + z * (0.5 + z / 6.0), torch.expm1(safe) / safe)
    if abs(z) < _TAYLOR:
        return 1.0 + z * (0.5 + z / 6.0)
    return math.expm1(z) / z


def coupling(dt: float, tau_mem: Value, tau_syn: Value) -> Value:
    """``K = tau_syn / (tau_syn - tau_mem) * (exp(-dt/tau_syn) - exp(-dt/tau_mem))`` (see module doc)."""
    xm = dt / tau_mem
    d = xm - dt / tau_syn
    a = decay(dt, tau_mem)
    return a * xm * _expm1_over(d)


def input_gain(dt: float, tau_mem: Value, tau_syn: Value) -> Value:
    """``E = 1 - exp(-dt/tau_mem) - K`` (``1 - a`` via expm1, so E keeps its digits for small dt)."""
    xm = dt / tau_mem
    one_minus_a = -torch.expm1(-xm) if isinstance(xm, torch.Tensor) else -math.expm1(-xm)
    return one_minus_a - coupling(dt, tau_mem, tau_syn)


def lag_gains(dt: float, tau_mem: Value, tau_syn: Value):
    """``(G_i, G_v)`` of the module doc: per unit of held input, the step-end current's and
    membrane's derivative with respect to the lag of a Dirac input, at the step's middle."""
    xs, xm = dt / tau_syn, dt / tau_mem
    half_b = decay(0.5 * dt, tau_syn)
    return -xs * xs * half_b, xs * xm * (half_b - coupling(0.5 * dt, tau_mem, tau_syn))


def _check_cuba(p, model: str) -> None:
    check_positive("dt", p.dt, model)
    check_positive("tau_syn", p.tau_syn, model)
    check_positive("tau_mem", p.tau_mem, model)
    for name in ("v_leak", "r", "w_in"):
        check_finite(name, getattr(p, name), model)


class CubaState(NamedTuple):
    """CubaLIF/CubaLI state: membrane ``v`` and synaptic current ``i``, each ``[B, n]``."""
    v: torch.Tensor
    i: torch.Tensor  # synaptic current


def init_state(shape, params, dtype=None, device=None) -> CubaState:
    """The resting state of ``shape`` (e.g. ``[B, n]``) for CubaLIF or CubaLI: ``v = v_leak``, ``i = 0``."""
    v = filled(shape, params.v_leak, dtype, device)
    return CubaState(v, torch.zeros(shape, dtype=dtype, device=device))


def _integrate(x, state: CubaState, params, lag_input=None):
    """One exact step (module doc); the fused kernels repeat these operations in this order.
    ``lag_input``: the lag moment ``y`` of spikes with times inside the step (None: none)."""
    b = params.alpha_syn
    wx = params.w_in * x
    i = state.i * b + wx * (1.0 - b)
    v_leak, r = params.v_leak, params.r
    v = v_leak + (state.v - v_leak) * params.alpha + r * state.i * params.coupling + r * wx * params.input_gain
    if lag_input is not None:
        g_i, g_v = params.lag_gains
        wy = params.w_in * lag_input
        i = i + wy * g_i
        v = v + r * wy * g_v
    return v, i


def step(x: torch.Tensor, state: CubaState, params: CubaLIFParams, spike_fn=heaviside):
    """One exact step of the coupled current and membrane (module doc), a spike when
    ``v > v_threshold``, reset in the same step; returns ``(spikes, new_state)``, each shaped like ``x``.
    """
    v, i = _integrate(x, state, params)
    z = spike_fn(v - params.v_threshold)
    v = apply_reset(v, z, params.reset, params.v_threshold, params.v_reset, params.detach_reset)
    return z, CubaState(v, i)


def step_crossing(x: torch.Tensor, state: CubaState, params: CubaLIFParams, spike_fn=heaviside,
                  lag_input=None, return_lag: bool = False):
    """``step`` with the reset at the crossing time inside the step (``reset_timing="crossing"``).

    CubaLIF's input drives the current, so ``v`` is continuous inside the step; the crossing is
    located by linear interpolation between the step's start ``v_prev`` and its end ``v_pre``
    (Hansel et al. 1998, see ``lif.reset_at_crossing``): ``f = (v_th - v_prev) / (v_pre - v_prev)``
    in [0, 1] (0 when the step starts above threshold), and the reset jump in ``v`` (the current
    is not reset) decays with ``tau_mem`` alone for the rest of the step: ``v = v_pre - Delta
    a^(1 - f)``, ``a = exp(-dt/tau_mem)``. The crossing time ``f dt`` is O(dt^2) off (the
    membrane's curvature), so the membrane after a spike is O(dt^2) from the continuous one instead
    of O(dt) (tests/neurons/test_step_crossing.py). Spikes are decided as in ``step``.

    ``lag_input``: the lag moment ``y`` of input spikes (module doc; None: input held over the
    step). ``return_lag``: also return each neuron's lag ``1 - f`` (meaningful where it spiked),
    as ``(z, state, lag)``.
    """
    v0 = state.v
    v, i = _integrate(x, state, params, lag_input)
    z = spike_fn(v - params.v_threshold)
    th = as_tensor(params.v_threshold, v.dtype, v.device)
    below = v0 < th
    rising = below & (v > v0)
    f = torch.where(rising, (th - v0) / torch.where(rising, v - v0, torch.ones_like(v)), torch.zeros_like(v))
    f = f.clamp(0.0, 1.0)
    rest = as_tensor(params.alpha, v.dtype, v.device) ** (1.0 - f)
    v_star = torch.maximum(v0, th)
    v = reset_at_crossing(v, z, params.reset, params.v_threshold, params.v_reset, v_star, rest, params.detach_reset)
    if return_lag:
        return z, CubaState(v, i), 1.0 - f
    return z, CubaState(v, i)


def step_li(x: torch.Tensor, state: CubaState, params: CubaLIParams, spike_fn=None, lag_input=None):
    """CubaLI: returns ``(v, new_state)``; ``lag_input`` as in ``step_crossing``."""
    v, i = _integrate(x, state, params, lag_input)
    return v, CubaState(v, i)
