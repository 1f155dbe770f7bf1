"""The spiking actor: input -> spiking layer -> spiking layer -> leaky-integrator readout, one
network step per environment step, state kept across steps.

Training (``SpikingActor.step``) and the exported ``spikeflow.nn.Sequential`` (``to_sequential``)
compute the same recursions (``spikeflow.neurons``' exact-decay steps, reset to 0 at the
threshold 1):

* dense input: ``Linear(n_obs -> H)`` with bias into LIF neurons;
* send-on-delta events: ``Linear(2 n_obs -> H)`` without bias (up channel ``+w``, down channel
  ``-w``) into CubaLIF neurons whose synaptic current never decays (``tau_syn`` = ``TAU_SYN``,
  ``w_in = 1 / (1 - exp(-dt/tau_syn))``), so the current is the weighted sum of all events so far:
  the weighted observation level. The bias is the neurons' ``v_leak``. Training computes that
  current from the level directly (``W @ level``), so the weights get gradients through it.

Both are followed by ``Linear(H -> H)`` + LIF and ``Linear(H -> n_out)`` + LI (the readout the
decoder reads). Spikes carry the surrogate gradient of ``spikeflow.surrogate``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow import surrogate as surrogates
from spikeflow.errors import ConfigError
from spikeflow.neurons.cuba import CubaLIFParams

TAU_SYN = 1e9  # seconds: the events layer's synaptic current does not decay within any episode


class SpikingActor(nn.Module):
    """Spiking actor network (module doc). ``scale``: per observation channel, the half-range the
    inputs are divided by; ``thresholds`` (events): the encoder's thresholds."""

    def __init__(self, n_obs: int, n_out: int, *, encoding: str, dt: float, scale, thresholds=None,
                 hidden: int = 64, tau_mem: float | None = None, tau_out: float | None = None, surrogate=None,
                 seed: int = 0):
        super().__init__()
        if encoding not in ("events", "dense"):
            raise ConfigError(f"SpikingActor: 'encoding' must be 'events' or 'dense', got {encoding!r}")
        self.n_obs, self.n_out, self.hidden, self.encoding, self.dt = int(n_obs), int(n_out), int(hidden), encoding, dt
        self.tau_mem = float(tau_mem if tau_mem is not None else dt)
        self.tau_out = float(tau_out if tau_out is not None else dt)
        self.surrogate = surrogates.get(surrogate)
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float64)))
        if encoding == "events":
            if thresholds is None:
                raise ConfigError("SpikingActor: encoding='events' needs the encoder's 'thresholds'")
            self.register_buffer("thresholds", torch.as_tensor(np.asarray(thresholds, np.float64)))
            p = CubaLIFParams(tau_syn=TAU_SYN, tau_mem=self.tau_mem, dt=dt)
            self.w_in = 1.0 / -math.expm1(-dt / TAU_SYN)
            self.coupling, self.w_gain = float(p.coupling), self.w_in * float(p.input_gain)
        g = torch.Generator().manual_seed(int(seed))
        h = self.hidden
        self.w1 = nn.Parameter(torch.randn(h, n_obs, generator=g, dtype=torch.float64) * (2.0 / math.sqrt(n_obs)))
        self.b1 = nn.Parameter(torch.rand(h, generator=g, dtype=torch.float64) * 2.0)
        self.fc2 = nn.Linear(h, h, dtype=torch.float64)
        self.fc3 = nn.Linear(h, n_out, dtype=torch.float64)
        with torch.no_grad():
            self.fc2.weight.copy_(torch.randn(h, h, generator=g, dtype=torch.float64) * (2.0 / math.sqrt(h)))
            self.fc2.bias.copy_(torch.rand(h, generator=g, dtype=torch.float64))
            self.fc3.weight.copy_(torch.randn(n_out, h, generator=g, dtype=torch.float64) * (0.1 / math.sqrt(h)))
            self.fc3.bias.zero_()

    @property
    def a1(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def a_out(self) -> float:
        return math.exp(-self.dt / self.tau_out)

    def init_state(self, batch: int):
        """The resting state (the events layer rests at its ``v_leak``, the bias)."""
        z = torch.zeros
        v1 = z(batch, self.hidden, dtype=torch.float64)
        if self.encoding == "events":
            v1 = v1 + self.b1.detach()
        return (v1, z(batch, self.hidden, dtype=torch.float64), z(batch, self.n_out, dtype=torch.float64))

    def step(self, inp: torch.Tensor, level: torch.Tensor | None, state):
        """One step for a batch: ``inp`` the observation / scale (dense) or this step's signed
        events * threshold / scale (events), ``level`` (events) the level before them, in the
        same units; returns ``(readout [B, n_out], new_state, spikes)`` (spikes: per layer [B, H])."""
        v1, v2, vo = state
        a1 = self.a1
        if self.encoding == "dense":
            v1 = v1 * a1 + (inp @ self.w1.T + self.b1) * (1.0 - a1)
        else:
            v1 = self.b1 + (v1 - self.b1) * a1 + (level @ self.w1.T) * self.coupling + (inp @ self.w1.T) * self.w_gain
        z1 = self.surrogate(v1 - 1.0)
        v1 = v1 - z1 * v1
        v2 = v2 * a1 + self.fc2(z1) * (1.0 - a1)
        z2 = self.surrogate(v2 - 1.0)
        v2 = v2 - z2 * v2
        ao = self.a_out
        vo = vo * ao + self.fc3(z2) * (1.0 - ao)
        return vo, (v1, v2, vo), (z1, z2)

    def to_sequential(self) -> snn.Sequential:
        """The same network as a ``spikeflow.nn.Sequential`` (float64) taking the encoder's output."""
        h, n = self.hidden, self.n_obs
        dt = self.dt
        w1 = self.w1.detach() / self.scale
        if self.encoding == "dense":
            first = nn.Linear(n, h, dtype=torch.float64)
            with torch.no_grad():
                first.weight.copy_(w1)
                first.bias.copy_(self.b1.detach())
            neuron = snn.LIF(h, tau_mem=self.tau_mem, dt=dt, reset="to_reset", v_reset=0.0, v_threshold=1.0)
        else:
            first = nn.Linear(2 * n, h, bias=False, dtype=torch.float64)
            w = w1 * self.thresholds
            with torch.no_grad():
                first.weight[:, 0::2] = w
                first.weight[:, 1::2] = -w
            neuron = snn.CubaLIF(h, tau_syn=TAU_SYN, tau_mem=self.tau_mem, w_in=self.w_in,
                                 v_leak=self.b1.detach().clone(), dt=dt, reset="to_reset", v_reset=0.0,
                                 v_threshold=1.0)
        fc2, fc3 = nn.Linear(h, h, dtype=torch.float64), nn.Linear(h, self.n_out, dtype=torch.float64)
        fc2.load_state_dict(self.fc2.state_dict())
        fc3.load_state_dict(self.fc3.state_dict())
        lif2 = snn.LIF(h, tau_mem=self.tau_mem, dt=dt, reset="to_reset", v_reset=0.0, v_threshold=1.0)
        out = snn.LI(self.n_out, tau_mem=self.tau_out, dt=dt)
        return snn.Sequential(first, neuron, fc2, lif2, fc3, out).double()

    def config(self) -> dict:
        return {"hidden": self.hidden, "tau_mem": self.tau_mem, "tau_out": self.tau_out, "dt": self.dt,
                "surrogate": [self.surrogate.kind, self.surrogate.scale], "encoding": self.encoding}


def export_graph(seq: snn.Sequential, dt: float, n_in: int):
    """``spikeflow.ir.to_nir`` of a float64 ``Sequential`` (its shape probe runs in float64 too)."""
    import warnings

    from spikeflow.ir import to_nir

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metadata notes (e.g. reset modes) that spikeflow honours
            return to_nir(seq, dt=dt, input_shape=(int(n_in),))
    finally:
        torch.set_default_dtype(old)
