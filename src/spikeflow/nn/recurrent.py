"""Recurrent spiking layers: a neuron layer whose previous spikes feed back through a weight.

``x'_t = x_t + W_rec s_{t-1}``; the loop over time stays in Python because every step
needs the previous step's spikes (the neuron update itself is the reference step).
"""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.neurons.base import check_time_major
from spikeflow.nn.neuron import NeuronLayer


class Recurrent(nn.Module):
    """A ``NeuronLayer`` of ``size`` neurons with an all-to-all recurrent weight (no bias)."""

    def __init__(self, neuron: NeuronLayer, size: int):
        super().__init__()
        self.neuron = neuron
        self.size = size
        self.recurrent = nn.Linear(size, size, bias=False)

    def init_state(self, batch_shape, dtype=None, device=None):
        s = self.neuron.init_state(batch_shape, dtype, device)
        return (s, torch.zeros(tuple(batch_shape), dtype=dtype, device=device))

    def step(self, x_t: torch.Tensor, state=None):
        if state is None:
            state = self.init_state(x_t.shape, x_t.dtype, x_t.device)
        neuron_state, prev = state
        out, neuron_state = self.neuron.step(x_t + self.recurrent(prev), neuron_state)
        return out, (neuron_state, out)

    def multistep(self, x: torch.Tensor, state=None):
        check_time_major(x, f"Recurrent({self.neuron.model.name})")
        outs = []
        for t in range(x.shape[0]):
            out, state = self.step(x[t], state)
            outs.append(out)
        return torch.stack(outs), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multistep(x)[0]


def _recurrent(model_name: str):
    def make(size: int, **kwargs) -> Recurrent:
        return Recurrent(NeuronLayer(model_name, size, **kwargs), size)

    make.__doc__ = f"A recurrent {model_name} layer of ``size`` neurons (see ``Recurrent``)."
    return make


RLIF = _recurrent("lif")
RALIF = _recurrent("alif")
RCubaLIF = _recurrent("cubalif")
RIF = _recurrent("if")
