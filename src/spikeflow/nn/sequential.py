"""A ``Sequential`` for time-major spiking networks, with a streaming mode."""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.nn.fold import TimeFold
from spikeflow.nn.linear_lif import LinearLIF, fused_multistep, fused_pair, fused_reason, intercepted
from spikeflow.nn.neuron import NeuronLayer
from spikeflow.nn.pooled import conv_pooled_forward, pooled_forward
from spikeflow.nn.recurrent import Recurrent
from spikeflow.nn.synapse import SpikeLinear

_STATEFUL = (NeuronLayer, Recurrent, TimeFold)


class Sequential(nn.Sequential):
    """Layers applied in order to ``[T, B, ...]`` input.

    Plain torch layers are wrapped in ``TimeFold`` automatically. ``forward`` runs a whole
    sequence from a fresh state. For streaming, ``step(x_t)`` advances one time step and
    keeps each layer's state in this object until ``reset()``.

    In ``forward``, a ``SpikeLinear`` directly followed by a ``LIF`` layer runs as one fused
    kernel (``spikeflow.nn.LinearLIF``'s) when that kernel supports the pair and, for
    ``event="auto"``, the input is sparse enough, and neither layer carries forward hooks or
    a wrapped ``multistep`` (those run the layers apart). ``event="never"`` on the
    ``SpikeLinear`` keeps them apart too. Two such units in a row (each a ``LinearLIF`` or a
    ``SpikeLinear`` + ``LIF`` pair) run as one kernel that never stores the hidden spikes or their
    gradient (``spikeflow.kernels.linear_lif_pair``). Likewise a ``LIF``/``IF`` layer directly followed by an
    ``nn.AvgPool2d(k)`` runs as one CPU kernel (``spikeflow.kernels.pool_lif``) that never stores
    the full-size spike map; and a ``SpikeConv2d`` on its event path before such a pair, over input
    that needs no gradient (a first layer), runs with them as one kernel
    (``spikeflow.kernels.conv_lif_pool``) that stores neither the convolution's output nor the membranes.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__(*[m if isinstance(m, _STATEFUL) or _is_stateful(m) else TimeFold(m) for m in layers])
        self._states = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            first = _linear_lif_unit(layers, i)
            second = first and _linear_lif_unit(layers, i + first[0])
            if second and isinstance(x, torch.Tensor):
                out = fused_pair(x, first[1:4], second[1:4], recompute=first[4])
                if out is not None:
                    x = out
                    i += first[0] + second[0]
                    continue
            if (isinstance(layer, SpikeLinear) and isinstance(nxt, NeuronLayer) and isinstance(x, torch.Tensor)
                    and fused_reason(x, layer, nxt, layer.event) is None):
                fused = fused_multistep(x, layer, nxt, event=layer.event)
                if fused is not None:
                    x = fused[0]
                    i += 2
                    continue
            if i + 2 < len(layers):
                pooled = conv_pooled_forward(x, layer, nxt, layers[i + 2])
                if pooled is not None:
                    x = pooled
                    i += 3
                    continue
            pooled = pooled_forward(x, layer, nxt, layers[i + 2] if i + 2 < len(layers) else None)
            if pooled is not None:
                x = pooled
                i += 2
                continue
            x = layer(x)
            i += 1
        return x

    def reset(self) -> None:
        """Forget the streaming state: the next ``step`` starts from rest."""
        self._states = None

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        if self._states is None:
            self._states = [None] * len(self)
        for i, layer in enumerate(self):
            x_t, self._states[i] = layer.step(x_t, self._states[i])
        return x_t


def pair_units(net: nn.Module):
    """``(first, second, recompute)`` when ``net`` is a ``Sequential`` of exactly two fusable
    Linear + LIF units (``first``/``second``: ``(SpikeLinear, LIF, event)``, as ``fused_pair`` takes
    them), else ``None``."""
    if not isinstance(net, Sequential):
        return None
    layers = list(net)
    first = _linear_lif_unit(layers, 0)
    second = first and _linear_lif_unit(layers, first[0])
    if not second or first[0] + second[0] != len(layers):
        return None
    return first[1:4], second[1:4], first[4]


def _linear_lif_unit(layers, i):
    """``(layers used, SpikeLinear, LIF, event, recompute)`` when ``layers[i]`` starts a fusable
    Linear + LIF unit: a ``LinearLIF``, or a ``SpikeLinear`` followed by a ``LIF``; else ``None``."""
    if i < len(layers) and isinstance(layers[i], LinearLIF):
        m = layers[i]
        return None if intercepted(m) else (1, m.linear, m.lif, m.event, m.recompute)
    if (i + 1 < len(layers) and isinstance(layers[i], SpikeLinear) and isinstance(layers[i + 1], NeuronLayer)
            and layers[i + 1].model.name == "lif"):
        return 2, layers[i], layers[i + 1], layers[i].event, None
    return None


def _is_stateful(m: nn.Module) -> bool:
    return hasattr(m, "step") and callable(m.step) and hasattr(m, "multistep")
