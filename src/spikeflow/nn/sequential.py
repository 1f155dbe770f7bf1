"""A ``Sequential`` for time-major spiking networks, with a streaming mode."""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.nn.fold import TimeFold
from spikeflow.nn.neuron import NeuronLayer
from spikeflow.nn.recurrent import Recurrent

_STATEFUL = (NeuronLayer, Recurrent, TimeFold)


class Sequential(nn.Sequential):
    """Layers applied in order to ``[T, B, ...]`` input.

    Plain torch layers are wrapped in ``TimeFold`` automatically. ``forward`` runs a whole
    sequence from a fresh state. For streaming, ``step(x_t)`` advances one time step and
    keeps each layer's state in this object until ``reset()``.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__(*[m if isinstance(m, _STATEFUL) or _is_stateful(m) else TimeFold(m) for m in layers])
        self._states = None

    def reset(self) -> None:
        """Forget the streaming state: the next ``step`` starts from rest."""
        self._states = None

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        if self._states is None:
            self._states = [None] * len(self)
        for i, layer in enumerate(self):
            x_t, self._states[i] = layer.step(x_t, self._states[i])
        return x_t


def _is_stateful(m: nn.Module) -> bool:
    return hasattr(m, "step") and callable(m.step) and hasattr(m, "multistep")
