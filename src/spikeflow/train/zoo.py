"""Model zoo: ``mlp``, ``conv`` and ``recurrent`` classifiers for any spiking neuron type.

Every builder returns a ``Classifier``: it encodes the input into time-major ``[T, B, ...]``
(or passes it through for an ANN), runs the network and returns its readout. ``build(spec)``
rebuilds a model from the JSON-able ``spec`` stored with every checkpoint.

Neuron gains: the exact-decay step scales input by ``r * (1 - exp(-dt/tau))``; the zoo sets
``r = 1 / (1 - exp(-dt/tau))`` so a layer integrates ``v <- a v + x`` and a weight keeps
the same meaning for every ``tau`` (the NIR export carries that ``r``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow.errors import ConfigError
from spikeflow.train.features import SequenceFeatures

NEURONS = ("lif", "alif", "cuba", "if", "relu")
ENCODINGS = ("direct", "rate", "sequence", "sum", "none")
READOUTS = ("li", "spike")


def _gain(dt: float, tau: float) -> float:
    return 1.0 / (1.0 - math.exp(-dt / tau))


def neuron_layer(kind: str, shape, *, dt: float, tau_mem: float, learn_tau: bool = False,
                 learn_threshold: bool = False) -> nn.Module:
    """One layer of ``kind`` neurons (``relu`` gives the ANN's activation)."""
    if kind == "relu":
        return nn.ReLU()
    common = dict(dt=dt, learn_tau=learn_tau, learn_threshold=learn_threshold)
    if kind == "lif":
        return snn.LIF(shape, tau_mem=tau_mem, r=_gain(dt, tau_mem), **common)
    if kind == "alif":
        return snn.ALIF(shape, tau_mem=tau_mem, tau_adapt=20 * tau_mem, beta=0.1, r=_gain(dt, tau_mem), **common)
    if kind == "cuba":
        tau_syn = tau_mem / 2
        return snn.CubaLIF(shape, tau_mem=tau_mem, tau_syn=tau_syn, r=_gain(dt, tau_mem),
                           w_in=_gain(dt, tau_syn), **common)
    if kind == "if":
        return snn.IF(shape, dt=dt, learn_threshold=learn_threshold)
    raise ConfigError(f"model zoo: unknown neuron {kind!r}; valid neurons: {NEURONS}")


def _readout(kind: str, classes: int, *, dt: float, tau_mem: float, neuron: str) -> nn.Module | None:
    if neuron == "relu":
        return None
    if kind == "li":
        return snn.LI(classes, tau_mem=tau_mem, r=_gain(dt, tau_mem), dt=dt)
    if kind == "spike":
        return neuron_layer(neuron, classes, dt=dt, tau_mem=tau_mem)
    raise ConfigError(f"model zoo: unknown readout {kind!r}; valid readouts: {READOUTS}")


class Classifier(nn.Module):
    """A network plus its input encoding and readout kind.

    ``encoding``: ``direct`` repeats the analog input at each of ``T`` steps; ``rate`` draws
    Bernoulli spikes with probability = input (clipped to [0, 1]) using torch's global RNG
    (the Trainer seeds it per step); ``sequence`` takes ``[B, T, ...]`` data and makes it
    time-major; ``none`` (ANN) passes ``[B, ...]`` through. ``output`` is ``membrane``,
    ``spikes`` or ``logits``.
    """

    def __init__(self, net: nn.Module, spec: dict):
        super().__init__()
        self.net = net
        self.spec = dict(spec)
        self.encoding = spec.get("encoding", "direct")
        self.time_steps = int(spec.get("T", 1))
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"model zoo: unknown encoding {self.encoding!r}; valid: {ENCODINGS}")
        if spec.get("neuron") == "relu":
            self.output = "logits"
        else:
            self.output = "membrane" if spec.get("readout", "li") == "li" else "spikes"

    @property
    def spiking(self) -> bool:
        return self.output != "logits"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding == "none":
            if self.spec.get("arch") in ("mlp",) and x.dim() > 2:
                return x.flatten(1)
            return x
        if self.encoding == "sum":  # an ANN sees a sequence [B, T, ...] as one summed frame
            x = x.sum(1)
            return x.flatten(1) if self.spec.get("arch") == "mlp" else x
        if self.encoding == "sequence":
            x = x.transpose(0, 1)
            return x.flatten(2) if self.spec.get("arch") in ("mlp", "recurrent") else x
        if self.spec.get("arch") in ("mlp", "recurrent"):
            x = x.flatten(1)
        if self.encoding == "direct":
            return x.unsqueeze(0).expand(self.time_steps, *x.shape)
        p = x.clamp(0, 1).unsqueeze(0).expand(self.time_steps, *x.shape)
        return torch.bernoulli(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x))

    def fit_features(self, x: torch.Tensor) -> bool:
        """Fit the input ``SequenceFeatures`` (if the model has one) on training data ``x``
        ``[N, T, ...]``; ``True`` when there was one to fit."""
        feats = [m for m in self.net.modules() if isinstance(m, SequenceFeatures)]
        for m in feats:
            m.fit(x.flatten(2).float())
        return bool(feats)


def _check_sizes(name: str, sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in sizes]
    if not sizes or any(s <= 0 for s in sizes):
        raise ConfigError(f"model zoo: '{name}' must be a non-empty list of positive sizes, got {sizes}")
    return sizes


def mlp(in_features: int, classes: int, hidden: Sequence[int] = (256,), *, neuron: str = "lif", T: int = 16,
        encoding: str = "rate", readout: str = "li", dt: float = 1e-3, tau_mem: float = 10e-3,
        dropout: float = 0.0, norm: bool = False, learn_tau: bool = False,
        learn_threshold: bool = False) -> Classifier:
    """Fully connected ``in -> hidden... -> classes``; ``neuron='relu'`` gives the same-shape ANN."""
    spec = dict(arch="mlp", in_features=in_features, classes=classes, hidden=list(hidden), neuron=neuron, T=T,
                encoding="none" if neuron == "relu" and encoding != "sum" else encoding, readout=readout, dt=dt,
                tau_mem=tau_mem, dropout=dropout, norm=norm, learn_tau=learn_tau,
                **({"learn_threshold": True} if learn_threshold else {}))
    return build(spec)


def conv(in_shape: Sequence[int], classes: int, channels: Sequence[int] = (16, 32), *, hidden: int = 0,
         neuron: str = "lif", T: int = 8, encoding: str = "direct", readout: str = "li", dt: float = 1e-3,
         tau_mem: float = 10e-3, dropout: float = 0.0, norm: bool = True, learn_tau: bool = False,
         learn_threshold: bool = False, pool_first: bool = False) -> Classifier:
    """``[conv3x3 -> BN -> neuron -> avgpool2] x len(channels) -> (fc -> neuron) -> fc -> readout``.

    ``pool_first``: each stage pools the conv's output before its neurons (``conv3x3 -> BN -> avgpool2 ->
    neuron``): a quarter of the neurons, each integrating the mean current of its 2 x 2 window.
    """
    spec = dict(arch="conv", in_shape=list(in_shape), classes=classes, channels=list(channels), hidden=hidden,
                neuron=neuron, T=T, encoding="none" if neuron == "relu" and encoding != "sum" else encoding,
                readout=readout, dt=dt,
                tau_mem=tau_mem, dropout=dropout, norm=norm, learn_tau=learn_tau,
                **({"learn_threshold": True} if learn_threshold else {}),
                **({"pool_first": True} if pool_first else {}))
    return build(spec)


def recurrent(in_features: int, classes: int, hidden: int = 128, *, neuron: str = "lif", T: int = 0,
              encoding: str = "sequence", readout: str = "li", dt: float = 1e-3, tau_mem: float = 20e-3,
              dropout: float = 0.0, norm: bool = False, learn_tau: bool = False, learn_threshold: bool = False,
              input_norm: bool = False,
              deltas: int = 0, log_input: bool = False) -> Classifier:
    """``in -> [features] -> fc -> recurrent neurons -> fc -> readout`` for sequences ``[B, T, features]``.

    ``input_norm`` / ``deltas`` / ``log_input`` add a ``SequenceFeatures`` first layer
    (standardised inputs, causal deltas, log-compressed counts); call
    ``Classifier.fit_features(train_x)`` once before training to set its statistics.
    """
    spec = dict(arch="recurrent", in_features=in_features, classes=classes, hidden=[int(hidden)], neuron=neuron,
                T=T, encoding=encoding, readout=readout, dt=dt, tau_mem=tau_mem, dropout=dropout, norm=norm,
                learn_tau=learn_tau, **({"learn_threshold": True} if learn_threshold else {}),
                input_norm=bool(input_norm), deltas=int(deltas), log_input=bool(log_input))
    return build(spec)


BUILDERS = {"mlp": mlp, "conv": conv, "recurrent": recurrent}


def build(spec: dict) -> Classifier:
    """The ``Classifier`` described by ``spec`` (as stored in a checkpoint's metadata)."""
    arch = spec.get("arch")
    neuron = spec.get("neuron", "lif")
    if neuron not in NEURONS:
        raise ConfigError(f"model zoo: unknown neuron {neuron!r}; valid neurons: {NEURONS}")
    dt, tau = float(spec.get("dt", 1e-3)), float(spec.get("tau_mem", 10e-3))
    learn_tau = bool(spec.get("learn_tau", False))
    learn = dict(learn_tau=learn_tau, learn_threshold=bool(spec.get("learn_threshold", False)))
    p = float(spec.get("dropout", 0.0))
    classes = int(spec["classes"])
    layers: list[nn.Module] = []
    if arch == "mlp" or arch == "recurrent":
        hidden = _check_sizes("hidden", spec.get("hidden", [256]))
        width = int(spec["in_features"])
        if arch == "recurrent" and (spec.get("input_norm") or spec.get("deltas") or spec.get("log_input")):
            feats = SequenceFeatures(width, deltas=int(spec.get("deltas", 0)), log=bool(spec.get("log_input")))
            layers.append(feats)
            width = feats.out_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if spec.get("norm"):
                layers.append(nn.BatchNorm1d(h))
            if arch == "recurrent" and neuron != "relu":
                cell = neuron_layer(neuron, h, dt=dt, tau_mem=tau, **learn)
                layers.append(snn.Recurrent(cell, h))
            else:
                layers.append(neuron_layer(neuron, h, dt=dt, tau_mem=tau, **learn))
            if p > 0:
                layers.append(nn.Dropout(p))
            width = h
        layers.append(nn.Linear(width, classes))
    elif arch == "conv":
        c, h, w = (int(v) for v in spec["in_shape"])
        for ch in _check_sizes("channels", spec.get("channels", [16, 32])):
            layers += [nn.Conv2d(c, ch, 3, padding=1, bias=not spec.get("norm", True))]
            if spec.get("norm", True):
                layers.append(nn.BatchNorm2d(ch))
            if spec.get("pool_first"):
                layers += [nn.AvgPool2d(2), neuron_layer(neuron, (ch, h // 2, w // 2), dt=dt, tau_mem=tau, **learn)]
            else:
                layers += [neuron_layer(neuron, (ch, h, w), dt=dt, tau_mem=tau, **learn), nn.AvgPool2d(2)]
            c, h, w = ch, h // 2, w // 2
            if h < 1 or w < 1:
                raise ConfigError(f"model zoo: too many conv stages for input {spec['in_shape']} (each halves H, W)")
        layers.append(nn.Flatten())
        if p > 0:
            layers.append(nn.Dropout(p))
        width = c * h * w
        if int(spec.get("hidden", 0)) > 0:
            hid = int(spec["hidden"])
            layers += [nn.Linear(width, hid), neuron_layer(neuron, hid, dt=dt, tau_mem=tau, **learn)]
            width = hid
        layers.append(nn.Linear(width, classes))
    else:
        raise ConfigError(f"model zoo: unknown architecture {arch!r}; valid: {sorted(BUILDERS)}")
    if neuron == "relu":
        net = nn.Sequential(*layers)
    else:
        net = snn.Sequential(*layers, _readout(spec.get("readout", "li"), classes, dt=dt, tau_mem=tau, neuron=neuron))
    return Classifier(net, spec)


def for_data(arch: str, sample_shape: Sequence[int], classes: int, **kwargs) -> Classifier:
    """A zoo model sized for samples of ``sample_shape`` (without the batch axis).

    ``[C, H, W]`` images get ``direct`` (conv) or ``rate`` (mlp) encoding; ``[T, ...]``
    sequences (event frames ``[T, 2, H, W]``, audio ``[T, channels]``) are fed step by step.
    """
    shape = tuple(int(s) for s in sample_shape)
    if arch not in BUILDERS:
        raise ConfigError(f"model zoo: unknown architecture {arch!r}; valid: {sorted(BUILDERS)}")
    sequence = len(shape) in (2, 4)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if sequence:
        kwargs["encoding"] = "sum" if kwargs.get("neuron") == "relu" else "sequence"
        kwargs["T"] = shape[0]
        shape = shape[1:]
    elif arch == "recurrent":
        raise ConfigError(f"model zoo: 'recurrent' needs sequence data [T, features], got samples of shape {shape}")
    if arch == "conv":
        if len(shape) != 3:
            raise ConfigError(f"model zoo: 'conv' needs image-like samples [C, H, W] or [T, C, H, W], got {shape}")
        return conv(shape, classes, **kwargs)
    in_features = int(math.prod(shape))
    if arch == "mlp":
        return mlp(in_features, classes, **kwargs)
    if "hidden" in kwargs and not isinstance(kwargs["hidden"], int):
        kwargs["hidden"] = int(list(kwargs["hidden"])[0])
    return recurrent(in_features, classes, **kwargs)
