"""ANN -> SNN conversion with data-based threshold balancing.

A ReLU network (Linear/Conv2d, optional BatchNorm, average pooling, Flatten) becomes an
IF network with reset by subtraction; every ReLU's output scale ``lambda_l`` is the
``percentile`` of its activations on calibration data, and weights are rescaled
``W_l <- W_l * lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l`` so each IF neuron's
firing rate (threshold 1) approximates the ReLU output / ``lambda_l``.
Diehl et al., IJCNN 2015 (weight normalisation); Rueckauer et al., Front. Neurosci. 2017
(99.9th percentile, reset by subtraction). The last layer is read out as the mean of its
input current over the ``T`` steps (a non-leaky integrator).

Event data: the ANN sees a sample's event frames summed into one frame (zoo encoding ``sum``),
which does not depend on how the events are binned. The SNN gets the ``T`` frames one per step;
since their mean over the steps is the summed frame / ``T``, the first layer's weights are also
multiplied by ``T``, so each step's mean input current is the ANN's pre-activation / ``lambda_1``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow.errors import ConfigError
from spikeflow.train.zoo import Classifier

_SYNAPSE = (nn.Linear, nn.Conv2d)
_PASS = (nn.AvgPool2d, nn.Flatten, nn.AdaptiveAvgPool2d)


def fold_batchnorm(layers: list[nn.Module], strict: bool = True) -> list[nn.Module]:
    """Merge every BatchNorm (eval statistics) into the Linear/Conv2d before it; drop Dropout.

    ``strict``: only layers an ANN->SNN conversion understands; otherwise other layers
    (neuron layers) pass through unchanged."""
    out: list[nn.Module] = []
    for m in layers:
        if isinstance(m, snn.TimeFold):
            m = m.layer
        if isinstance(m, nn.Dropout):
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not out or not isinstance(out[-1], _SYNAPSE):
                raise ConfigError("ANN->SNN: a BatchNorm must directly follow a Linear or Conv2d layer")
            syn = out[-1]
            scale = m.weight.detach() / torch.sqrt(m.running_var + m.eps)
            shape = (-1,) + (1,) * (syn.weight.dim() - 1)
            bias = syn.bias.detach() if syn.bias is not None else torch.zeros_like(m.running_mean)
            fused = copy.deepcopy(syn)
            fused.weight = nn.Parameter(syn.weight.detach() * scale.view(shape))
            fused.bias = nn.Parameter((bias - m.running_mean) * scale + m.bias.detach())
            out[-1] = fused
            continue
        if strict and not isinstance(m, (*_SYNAPSE, *_PASS, nn.ReLU)):
            raise ConfigError(f"ANN->SNN: cannot convert a {type(m).__name__} layer "
                              f"(supported: Linear, Conv2d, BatchNorm, ReLU, AvgPool2d, Flatten, Dropout)")
        out.append(copy.deepcopy(m))
    return out


@torch.no_grad()
def activation_scales(layers: list[nn.Module], x: torch.Tensor, percentile: float = 99.9) -> list[float]:
    """The ``percentile`` of each ReLU's output over calibration input ``x`` (ANN input shape)."""
    scales = []
    h = x
    for m in layers:
        h = m(h)
        if isinstance(m, nn.ReLU):
            flat = h.flatten()
            if flat.numel() > 2_000_000:  # quantile() limit; a strided subsample keeps the statistic
                flat = flat[:: flat.numel() // 2_000_000 + 1]
            scales.append(max(float(torch.quantile(flat, percentile / 100.0)), 1e-6))
    return scales


@torch.no_grad()
def convert(ann: Classifier, calibration: torch.Tensor, T: int = 32, percentile: float = 99.9,
            scales: list[float] | None = None, v_init: float = 0.5) -> Classifier:
    """An IF ``Classifier`` that approximates ``ann`` (a zoo model with ``neuron='relu'``).

    ``v_init``: initial membrane as a fraction of threshold (0.5 halves the rounding error
    of the rate code at small ``T``).
    """
    if ann.spiking:
        raise ConfigError("ANN->SNN: the source model must be an ANN (neuron='relu')")
    if T < 1:
        raise ConfigError(f"ANN->SNN: T must be >= 1, got {T}")
    ann.eval()
    layers = fold_batchnorm(list(ann.net))
    if scales is None:
        scales = activation_scales(layers, ann.encode(calibration), percentile)
    n_relu = sum(isinstance(m, nn.ReLU) for m in layers)
    if len(scales) != n_relu:
        raise ConfigError(f"ANN->SNN: {len(scales)} scales given for {n_relu} ReLU layers")
    events = ann.spec.get("encoding") == "sum"  # event frames: the SNN sees them one step at a time
    out: list[nn.Module] = []
    prev, k = (float(T) if events else 1.0), 0
    for m in layers:
        if isinstance(m, _SYNAPSE):
            lam = scales[k] if k < n_relu else 1.0
            m.weight.mul_(prev / lam)
            if m.bias is not None:
                m.bias.div_(lam)
            out.append(m)
        elif isinstance(m, nn.ReLU):
            out.append(_IFWithInit(v_init))
            prev = scales[k]
            k += 1
        else:
            out.append(m)
    spec = {**ann.spec, "neuron": "if", "encoding": "sequence" if events else "direct", "T": int(T),
            "converted": True, "scales": scales, "percentile": percentile, "v_init": v_init}
    return Classifier(snn.Sequential(*out), spec)


class _IFWithInit(snn.IF):
    """IF layer (threshold 1, reset by subtraction) whose membrane starts at ``v_init``."""

    def __init__(self, v_init: float):
        super().__init__(None, v_threshold=1.0, reset="subtract")
        self.v_init = float(v_init)

    def init_state(self, batch_shape, dtype=None, device=None):
        state = super().init_state(batch_shape, dtype, device)
        return state._replace(v=state.v + self.v_init)


def fold_for_export(net: nn.Module) -> nn.Module:
    """A copy of a spiking ``Sequential`` with BatchNorm folded into its synapses (for NIR export)."""
    return snn.Sequential(*fold_batchnorm(list(net), strict=False))


def rebuild(spec: dict) -> Classifier:
    """The converted model described by ``spec`` (weights come from its state dict)."""
    from spikeflow.train.zoo import build

    ann = build({**spec, "neuron": "relu", "encoding": "sum" if spec.get("encoding") == "sequence" else "none"})
    return convert(ann, torch.zeros(1), T=spec["T"], scales=spec["scales"], v_init=spec.get("v_init", 0.5))
