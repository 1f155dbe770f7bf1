"""Quantisation: a float layer as integers in a chip's number formats.

Membrane units are chosen per layer so that the largest effective weight
(``gain * W``, the membrane increment of one input spike) is the chip's largest
weight integer: ``scale = max|gain * W| / weight_max``. Threshold, reset, leak
level and bias are expressed in the same units and must fit the state registers.
The decay ``exp(-dt / tau)`` is written in the chip's representation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikeflow.errors import NIRError
from spikeflow.hardware.network import FloatLayer, LayerShape, _np
from spikeflow.hardware.profiles import ChipProfile
from spikeflow.hardware.synapse import DenseSynapse, Synapse


@dataclass
class IntLayer(LayerShape):
    name: str
    kind: str  # lif | if | li
    weight: np.ndarray | None  # [n_out, n_in] int64 for dense layers; None for kernel layers (see syn)
    bias: np.ndarray  # [n_out] int64, added every step
    threshold: np.ndarray  # [n_out] int64
    v_reset: np.ndarray  # [n_out] int64
    v_leak: np.ndarray  # [n_out] int64
    decay: str  # multiplicative | shift | linear | none
    decay_value: np.ndarray  # per neuron: multiplier (multiplicative), shift (shift), step (linear)
    decay_bits: int
    reset: str  # subtract | to_reset | none
    scale: float  # float value of one membrane (state) unit
    weight_shift: int  # a weight integer is worth 2**weight_shift state units
    state_min: int
    state_max: int
    overflow: str
    syn: Synapse | None = None  # the integer synapse (DenseSynapse(weight) or an int64 ConvSynapse)
    rec_weight: np.ndarray | None = None  # [n_out, n_out] int64: weights of the previous step's own spikes
    loihi: object = None  # LoihiParams (spikeflow.hardware.loihi) when the chip computes as Lava's Loihi models

    def __post_init__(self):
        self._link_synapse()


def _round(x) -> np.ndarray:
    """Round to int64; values beyond +-2**62 are clipped there (far outside any chip's range, caught by checks)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), -(2.0 ** 62), 2.0 ** 62).astype(np.int64)


def ternary_threshold(w_eff: np.ndarray) -> float:
    """Ternary Weight Networks (Li & Liu, arXiv:1605.04711): weights below 0.7 x mean|w| become 0."""
    return 0.7 * float(np.mean(np.abs(w_eff))) if w_eff.size else 0.0


def synapse_threshold(syn: Synapse) -> float:
    """``ternary_threshold`` over the dense equivalent of ``syn`` (a kernel's weights counted once per use)."""
    vals, counts = syn.values()
    if counts is None:
        return ternary_threshold(syn.dense())
    return 0.7 * float((np.abs(vals) * counts).sum()) / (syn.n_out * syn.n_in) if vals.size else 0.0


def effective_synapse(layer: FloatLayer) -> Synapse:
    """The layer's synapse times each neuron's gain: the membrane increment of one input spike."""
    try:
        return layer.syn.scale_rows(layer.gain())
    except NIRError as e:
        raise NIRError(f"{e} (layer {layer.name!r})") from None


def layer_scale(layer: FloatLayer, profile: ChipProfile) -> float:
    syn = effective_synapse(layer)
    vals, counts = syn.values()
    a = np.abs(vals) if counts is None else np.abs(vals)[counts > 0]
    if profile.weight_bits == 2:
        # Ternary: the scale is the mean magnitude of the weights kept (Li & Liu 2016).
        keep = a > synapse_threshold(syn)
        if keep.any():
            if counts is None:
                return float(a[keep].mean())
            c = counts[counts > 0][keep]
            return float((a[keep] * c).sum() / c.sum())
    m = float(np.max(a)) if a.size else 0.0
    if m == 0.0:
        m = float(np.max(np.abs(layer.gain() * layer.bias))) or 1.0
    return m / profile.weight_max


def decay_representation(alpha: np.ndarray, profile: ChipProfile, threshold: np.ndarray):
    """``exp(-dt/tau)`` per neuron as the chip stores it."""
    if profile.decay == "multiplicative":
        return _round(alpha * (1 << profile.decay_bits))
    if profile.decay == "shift":
        # v <- v - (v >> k) decays by 1 - 2**-k per step; the nearest k in log space.
        k = np.rint(-np.log2(np.clip(1.0 - alpha, 1e-12, 1.0)))
        return np.clip(k, 0, 62).astype(np.int64)
    if profile.decay == "linear":
        # A constant step towards the leak level, sized so that a neuron at threshold loses what
        # the exponential would lose in the first step (Cassidy et al. 2013: linear leak per tick).
        return np.maximum(_round(threshold * (1.0 - alpha)), 0)
    return np.zeros_like(threshold)


def quantize_layer(layer: FloatLayer, profile: ChipProfile, scale: float) -> IntLayer:
    p = layer.params
    n = layer.n_out
    gain = layer.gain()
    syn = effective_synapse(layer)
    if profile.weight_bits == 2:
        thr = synapse_threshold(syn)
        syn = syn.map(lambda w: (np.sign(w) * (np.abs(w) > thr)).astype(np.int64))
    else:
        syn = syn.map(lambda w: _round(w / scale))
    syn = syn.map(lambda w: np.clip(w, -profile.weight_max, profile.weight_max))
    shift = profile.state_frac_bits
    unit = scale / (1 << shift)  # state units are finer than weight units by 2**shift
    bias = _round(gain * layer.bias / unit)

    def per(v):
        return np.broadcast_to(_np(v).reshape(-1), (n,)).astype(np.float64)

    if layer.kind == "li":
        threshold = np.full(n, profile.state_range[1], dtype=np.int64)
        v_reset = np.zeros(n, dtype=np.int64)
        reset = "none"
    else:
        threshold = _round(per(p.v_threshold) / unit)
        v_reset = _round(per(p.v_reset) / unit)
        reset = p.reset
    v_leak = _round(per(p.v_leak) / unit) if layer.kind != "if" else np.zeros(n, dtype=np.int64)
    if layer.kind == "if":
        decay, decay_value = "none", np.zeros(n, dtype=np.int64)
    else:
        alpha = per(p.alpha)
        decay = profile.decay
        decay_value = decay_representation(alpha, profile, np.abs(threshold) if layer.spiking else
                                           np.full(n, profile.weight_max << shift, dtype=np.int64))
    lo, hi = profile.state_range
    return IntLayer(name=layer.name, kind=layer.kind, weight=syn.weight if isinstance(syn, DenseSynapse) else None,
                    bias=bias, threshold=threshold, v_reset=v_reset,
                    v_leak=v_leak, decay=decay, decay_value=decay_value, decay_bits=profile.decay_bits, reset=reset,
                    scale=unit, weight_shift=shift, state_min=lo, state_max=hi, overflow=profile.overflow, syn=syn)


def effective_alpha(layer: IntLayer) -> np.ndarray:
    """The decay factor the chip actually applies (for reports)."""
    if layer.decay == "multiplicative":
        return layer.decay_value / float(1 << layer.decay_bits)
    if layer.decay == "shift":
        return 1.0 - np.power(2.0, -layer.decay_value.astype(np.float64))
    return np.ones(layer.n_out)


def bits_needed(value: int) -> int:
    """Signed bits to hold ``value``."""
    return int(math.ceil(math.log2(abs(int(value)) + 1))) + 1
