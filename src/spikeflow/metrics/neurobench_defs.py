"""Network metrics with NeuroBench's definitions (Yik et al., NeuroBench, Nature Communications 2025;
neurobench 2.3.0 code), computed on spikeflow models with time-major ``[T, B, ...]`` input.

- footprint: bytes of parameters + buffers.
- connection sparsity: zero weights / all weights of Linear, Conv and torch RNN layers.
- activation sparsity: zero outputs / all outputs of spiking neuron layers, over all steps and samples.
- synaptic operations: for each connection layer and time step, a copy of the layer with nonzero weights
  set to 1 and no bias is applied to the binarised input; the sum of its outputs is the number of
  operations. A step whose input is all in {-1, 0, 1} counts as accumulates (ACs), otherwise as
  multiply-accumulates (MACs); "Dense" is the same count with all weights and inputs set to 1.
  Averaged per sample.
- membrane updates: per sample, every neuron on the first step, then each neuron whose membrane
  (after reset) differs from the previous step's; spiking layers and readouts (LI) alike, as
  neurobench counts every snnTorch neuron layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable

import torch
from torch import nn

from spikeflow.errors import ShapeError
from spikeflow.nn import NeuronLayer

CONNECTION_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT_LAYERS = (nn.RNNBase, nn.RNNCellBase)


def footprint(model: nn.Module) -> int:
    """Bytes of parameters and buffers."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return int(params + buffers)


def connection_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over connection layers (Linear, Conv, torch RNN weights and biases)."""
    zeros = total = 0
    for m in model.modules():
        if isinstance(m, CONNECTION_LAYERS):
            tensors = [m.weight]
        elif isinstance(m, RECURRENT_LAYERS):
            tensors = [p for name, p in m.named_parameters(recurse=False) if name.startswith(("weight_", "bias_"))]
        else:
            continue
        for w in tensors:
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / total if total else 0.0


def _binary(x: torch.Tensor, all_ones: bool = False) -> torch.Tensor:
    return torch.ones_like(x) if all_ones else (x != 0).to(x.dtype)


def _binary_layer(layer: nn.Module, all_ones: bool):
    """The layer with nonzero (or all) weights set to 1 and no bias, as a hook-free function."""
    w = _binary(layer.weight.detach(), all_ones)
    if isinstance(layer, nn.Linear):
        return lambda x: torch.nn.functional.linear(x, w)
    return lambda x: layer._conv_forward(x, w, None)


@dataclass
class Workload:
    """Accumulates workload metrics over batches; ``result()`` gives per-sample values."""
    samples: int = 0
    macs: float = 0.0
    acs: float = 0.0
    dense: float = 0.0
    zeros: int = 0
    activations: int = 0
    membrane_updates: int = 0
    _bin: Dict[int, tuple] = field(default_factory=dict)

    def add_connection(self, layer: nn.Module, x: torch.Tensor) -> None:
        """``x [T, B, ...]``: the layer's input at each step."""
        key = id(layer)
        if key not in self._bin:
            self._bin[key] = (_binary_layer(layer, False), _binary_layer(layer, True))
        eff, full = self._bin[key]
        with torch.no_grad():
            for x_t in x:
                spiking = bool(((x_t == 0) | (x_t == 1) | (x_t == -1)).all())
                ops = float(eff(_binary(x_t)).sum())
                self.dense += float(full(_binary(x_t, True)).sum())
                if spiking:
                    self.acs += ops
                else:
                    self.macs += ops

    def add_neurons(self, out: torch.Tensor, v_trace: torch.Tensor, spiking: bool = True) -> None:
        if spiking:  # activation sparsity: spike outputs only; a readout's output is its membrane
            self.zeros += int((out == 0).sum())
            self.activations += out.numel()
        self.membrane_updates += v_trace[0].numel() + int((v_trace[1:] != v_trace[:-1]).sum())

    def result(self) -> Dict[str, object]:
        n = max(self.samples, 1)
        return {
            "activation_sparsity": self.zeros / self.activations if self.activations else 0.0,
            "synaptic_operations": {"Effective_MACs": self.macs / n, "Effective_ACs": self.acs / n,
                                    "Dense": self.dense / n},
            "membrane_updates": self.membrane_updates / n,
        }


def workload_metrics(model: nn.Module, batches: Iterable[torch.Tensor]) -> Dict[str, object]:
    """Run ``model`` on each ``[T, B, ...]`` batch and return NeuroBench's workload metrics per sample."""
    acc = Workload()
    current = {}

    def conn_hook(module, inputs):
        x = inputs[0]
        T, B = current["T"], current["B"]
        if x.shape[0] == T * B:  # folded by TimeFold
            x = x.reshape(T, B, *x.shape[1:])
        elif x.shape[0] == B:  # called once per step (streaming)
            x = x.unsqueeze(0)
        acc.add_connection(module, x)

    def recording(layer):
        """``layer.multistep`` wrapped to record spikes and the membrane trace (forward and graph runners
        both go through it), restored afterwards."""
        original = layer.multistep

        def multistep(x, state=None, return_trace=False):
            out, final, trace = original(x, state, return_trace=True)
            acc.add_neurons(out.detach(), trace.detach(), layer.model.spiking)
            return out, final, (trace if return_trace else None)

        return multistep

    handles, wrapped = [], []
    for m in model.modules():
        if isinstance(m, CONNECTION_LAYERS):
            handles.append(m.register_forward_pre_hook(conn_hook))
        elif isinstance(m, NeuronLayer):
            m.multistep = recording(m)
            wrapped.append(m)
    try:
        with torch.no_grad():
            for x in batches:
                if x.dim() < 3:
                    raise ShapeError(f"metrics: batches must be time-major [T, B, ...], got shape {tuple(x.shape)}")
                current["T"], current["B"] = x.shape[0], x.shape[1]
                model(x)
                acc.samples += x.shape[1]
    finally:
        for h in handles:
            h.remove()
        for m in wrapped:
            del m.multistep
    return acc.result()
