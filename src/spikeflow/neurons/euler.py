"""Forward-Euler neurons given by their per-step coefficients, in two update orders.

These are the discrete models other SNN libraries step, kept apart from spikeflow's exact
models (``lif``, ``cuba``) so a network written by such a library can be run with the same
arithmetic. ODEs as NIR's: ``tau_mem dv/dt = v_leak - v + r I`` (LIF, LI, with ``I = x``) and
``tau_syn dI/dt = -I + w_in x`` (CubaLIF, CubaLI). Forward Euler with ``k = dt / tau``:

* ``form="decay"`` (snnTorch 1.0's ``Leaky``/``Synaptic``): ``v <- decay v + gain I + bias`` with
  ``decay = 1 - k``, ``gain = r k``, ``bias = k v_leak``.
* ``form="increment"`` (Norse 1.1's ``LIFBoxCell``/``LIFCell``): ``v <- v + rate ((v_leak - v) + r I)``
  with ``rate = k`` (LIF: ``(r x + v_leak) - v``, Norse's order of the sum).

The two are the same map; they differ only in float rounding, which is why both exist. The
coefficients are parameters (not derived here from tau) so that an importer can compute them
once in float64 from the file's values and round once. For CubaLIF/CubaLI the current is updated
first and the membrane integrates the updated current (both libraries' order; plain forward
Euler would use the previous current): decay form ``I <- syn_decay I + in_gain x``; increment form
``J = I + in_gain x`` (the jump), ``v`` from ``J``, then ``I <- J - syn_rate J``.

A spike when ``v > v_threshold``; reset in the same step (``reset_delay=False``) or, with
``reset_delay=True``, at the next step: a neuron whose membrane ended the previous step above
threshold is reset after that step's update (snnTorch 1.0's ``RSynaptic``, which resets one step
late whatever its ``reset_delay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikeflow.errors import ParameterError
from spikeflow.neurons.base import (
    Value,
    check_finite,
    check_positive,
    check_reset_mode,
    check_threshold_above_reset,
    filled,
    heaviside,
)

FORMS = ("decay", "increment")


def _check_form(form: str, model: str) -> None:
    if form not in FORMS:
        raise ParameterError(f"{model}: parameter 'form' must be one of {FORMS}, got {form!r}")


@dataclass
class EulerLIFParams:
    decay: Value = 0.95  # 1 - dt / tau      (decay form)
    gain: Value = 0.05  # r dt / tau         (decay form)
    bias: Value = 0.0  # dt / tau * v_leak   (decay form)
    rate: Value = 0.05  # dt / tau           (increment form)
    r: Value = 1.0  # (increment form)
    v_leak: Value = 0.0  # the resting state, and the increment form's leak target
    v_threshold: Value = 1.0
    v_reset: Value = 0.0
    form: str = "decay"
    reset: str = "to_reset"
    reset_delay: bool = False
    dt: float = 1e-3

    def __post_init__(self):
        _check_form(self.form, "EulerLIF")
        check_positive("dt", self.dt, "EulerLIF")
        for name in ("decay", "gain", "bias", "rate", "r", "v_leak", "v_threshold", "v_reset"):
            check_finite(name, getattr(self, name), "EulerLIF")
        check_reset_mode(self.reset, "EulerLIF")
        check_threshold_above_reset(self.v_threshold, self.v_reset, "EulerLIF")


@dataclass
class EulerLIParams:
    decay: Value = 0.95
    gain: Value = 0.05
    bias: Value = 0.0
    rate: Value = 0.05
    r: Value = 1.0
    v_leak: Value = 0.0
    form: str = "decay"
    dt: float = 1e-3

    def __post_init__(self):
        _check_form(self.form, "EulerLI")
        check_positive("dt", self.dt, "EulerLI")
        for name in ("decay", "gain", "bias", "rate", "r", "v_leak"):
            check_finite(name, getattr(self, name), "EulerLI")


@dataclass
class EulerCubaLIFParams(EulerLIFParams):
    syn_decay: Value = 0.8  # 1 - dt / tau_syn (decay form)
    syn_rate: Value = 0.2  # dt / tau_syn     (increment form)
    in_gain: Value = 0.2  # w_in dt / tau_syn: the current's jump per unit input

    def __post_init__(self):
        super().__post_init__()
        for name in ("syn_decay", "syn_rate", "in_gain"):
            check_finite(name, getattr(self, name), "EulerCubaLIF")


@dataclass
class EulerCubaLIParams(EulerLIParams):
    syn_decay: Value = 0.8
    syn_rate: Value = 0.2
    in_gain: Value = 0.2

    def __post_init__(self):
        super().__post_init__()
        for name in ("syn_decay", "syn_rate", "in_gain"):
            check_finite(name, getattr(self, name), "EulerCubaLI")


class EulerState(NamedTuple):
    v: torch.Tensor


class EulerCubaState(NamedTuple):
    v: torch.Tensor
    i: torch.Tensor  # the synaptic current (decay form: after the step's input; increment form: after its decay)


def init_state(shape, params, dtype=None, device=None) -> EulerState:
    return EulerState(filled(shape, params.v_leak, dtype, device))


def init_cuba_state(shape, params, dtype=None, device=None) -> EulerCubaState:
    v = filled(shape, params.v_leak, dtype, device)
    return EulerCubaState(v, torch.zeros(shape, dtype=dtype, device=device))


def _membrane(v, drive, p, lif_order: bool):
    if p.form == "decay":
        return p.decay * v + p.gain * drive + p.bias
    if lif_order:  # Norse's LIFBoxCell sums (input + v_leak) - v
        return v + p.rate * ((p.r * drive + p.v_leak) - v)
    return v + p.rate * ((p.v_leak - v) + p.r * drive)  # Norse's LIFCell sums (v_leak - v) + i


def _current(i, x, p):
    """Returns ``(current the membrane integrates, current kept in the state)``."""
    if p.form == "decay":
        i = p.syn_decay * i + p.in_gain * x
        return i, i
    j = i + p.in_gain * x
    return j, j - p.syn_rate * j


def _fire(v, v_prev, p, spike_fn):
    if p.reset_delay:
        pending = (v_prev > p.v_threshold).to(v.dtype)
        if p.reset == "to_reset":
            v = v - pending * (v - p.v_reset)
        elif p.reset == "subtract":
            v = v - pending * p.v_threshold
        return spike_fn(v - p.v_threshold), v
    z = spike_fn(v - p.v_threshold)
    if p.reset == "to_reset":
        v = v - z * (v - p.v_reset)
    elif p.reset == "subtract":
        v = v - z * p.v_threshold
    return z, v


def step_lif(x: torch.Tensor, state: EulerState, params: EulerLIFParams, spike_fn=heaviside):
    v = _membrane(state.v, x, params, lif_order=True)
    z, v = _fire(v, state.v, params, spike_fn)
    return z, EulerState(v)


def step_li(x: torch.Tensor, state: EulerState, params: EulerLIParams, spike_fn=None):
    v = _membrane(state.v, x, params, lif_order=True)
    return v, EulerState(v)


def step_cubalif(x: torch.Tensor, state: EulerCubaState, params: EulerCubaLIFParams, spike_fn=heaviside):
    drive, i = _current(state.i, x, params)
    v = _membrane(state.v, drive, params, lif_order=False)
    z, v = _fire(v, state.v, params, spike_fn)
    return z, EulerCubaState(v, i)


def step_cubali(x: torch.Tensor, state: EulerCubaState, params: EulerCubaLIParams, spike_fn=None):
    drive, i = _current(state.i, x, params)
    v = _membrane(state.v, drive, params, lif_order=False)
    return v, EulerCubaState(v, i)
