"""Metrics: accuracy, per-layer spike rate, activation sparsity and synaptic operations.

Synaptic operations follow NeuroBench's definitions (Yik et al., Nature Communications 2025): a spike (binary)
input to a synaptic layer counts one accumulate (AC) per fan-out weight, a non-binary
input one multiply-accumulate (MAC); counts are per sample and per inference (all T steps).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from spikeflow.nn import NeuronLayer, Recurrent

# 45 nm CMOS, 32-bit float: MAC 4.6 pJ, add 0.9 pJ (Horowitz, ISSCC 2014).
ENERGY_MAC_PJ = 4.6
ENERGY_AC_PJ = 0.9


def accuracy(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Share of samples whose highest score ``scores [B, C]`` is the ``target`` class ``[B]``."""
    return (scores.argmax(-1) == target).float().mean().item()


def _spiking(m: nn.Module) -> bool:
    if isinstance(m, Recurrent):
        return True
    return isinstance(m, NeuronLayer) and m.model.spiking


@contextmanager
def record_spikes(model: nn.Module, keep_graph: bool = False):
    """Within the block, ``rec`` maps each spiking layer's name to its outputs' list.

    ``keep_graph=True`` keeps autograd (for rate regularisation); otherwise outputs are detached.
    """
    rec: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if _spiking(m) and not any(name.startswith(p + ".") for p in rec):
            rec[name] = []

            def hook(mod, inp, out, name=name):
                out = out[0] if isinstance(out, tuple) else out
                rec[name].append(out if keep_graph else out.detach())

            handles.append(m.register_forward_hook(hook))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


@dataclass
class SynOps:
    """Synaptic operations per sample: MACs (analog input) and ACs (spike input)."""

    macs: float = 0.0
    acs: float = 0.0
    per_layer: dict = field(default_factory=dict)

    def energy_pj(self) -> float:
        return self.macs * ENERGY_MAC_PJ + self.acs * ENERGY_AC_PJ


def _fanout_ops(layer: nn.Module, events: torch.Tensor) -> torch.Tensor:
    """Operations the layer does for ``events`` per input: the layer with its nonzero weights set to 1
    and no bias (NeuroBench's rule), so pruned (zero) weights cost nothing."""
    nonzero = (layer.weight != 0).float()
    if isinstance(layer, nn.Linear):
        return events.float() @ nonzero.sum(0)
    if isinstance(layer, nn.Conv2d):
        y = torch.nn.functional.conv2d(events.float(), nonzero, None, layer.stride, layer.padding,
                                       layer.dilation, layer.groups)
        return y.flatten(1).sum(-1)
    raise TypeError(type(layer))


def _spike_events(x: torch.Tensor):
    """Spike counts behind ``x`` when it is made of spikes: event counts (integers >= 0) or spikes
    average-pooled over 2x2 (multiples of 1/4); ``None`` for analog input."""
    if (x < 0).any():
        return None
    for q in (1.0, 4.0):
        xq = x * q
        if torch.equal(xq, xq.round()):
            return xq
    return None


@torch.no_grad()
def synaptic_operations(model: nn.Module, x: torch.Tensor, spiking: bool = False) -> SynOps:
    """Count MACs/ACs of every Linear and Conv2d on one forward pass of batch ``x`` (zero weights do no work).

    ``spiking=False`` follows NeuroBench: a binary input counts one AC per non-zero input and
    fan-out weight, any other input one MAC. ``spiking=True`` (an SNN on event hardware) counts
    one AC per spike and fan-out weight wherever the input is made of spikes (event counts, or
    spikes average-pooled), so pooled spikes are not mistaken for analog values.
    """
    ops = SynOps()
    counts: dict[str, list] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            def hook(mod, inp, out, name=name):
                xi = inp[0]
                events = _spike_events(xi) if spiking else None
                binary = events is not None or bool(((xi == 0) | (xi == 1)).all())
                n = _fanout_ops(mod, events if events is not None else (xi != 0)).sum().item()
                c = counts.setdefault(name, [0.0, 0.0])
                c[1 if binary else 0] += n

            handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    b = x.shape[0]
    for name, (mac, ac) in counts.items():
        ops.per_layer[name] = {"macs": mac / b, "acs": ac / b}
        ops.macs += mac / b
        ops.acs += ac / b
    return ops


def spike_rates(rec: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Mean spikes per neuron per step for each recorded layer."""
    return {k: float(torch.cat([o.reshape(-1) for o in v]).float().mean()) for k, v in rec.items() if v}


def activation_sparsity(rec: dict[str, list[torch.Tensor]]) -> float:
    """Fraction of zero outputs over all spiking layers, steps and samples (NeuroBench)."""
    zeros = total = 0
    for outs in rec.values():
        for o in outs:
            zeros += int((o == 0).sum())
            total += o.numel()
    return zeros / total if total else 0.0
