"""Self-recurrent layers on chips that support them: the support check and quantisation.

A recurrent layer's feedback weights share the layer's membrane units, so the layer is
quantised as one wide matrix ``[W | R]`` (one scale for both) and split again. The chip
delivers a spike through the loop one time step later (Loihi and Xylo integrate the
previous step's spikes), which is the float model's one-step delay.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikeflow.hardware.network import FloatLayer
from spikeflow.hardware.profiles import ChipProfile
from spikeflow.hardware.quantize import IntLayer, layer_scale, quantize_layer
from spikeflow.hardware.synapse import DenseSynapse, Synapse


def check_recurrence(layer: FloatLayer, profile: ChipProfile, is_last: bool):
    """``None`` when the chip can hold ``layer``'s recurrent loop, else ``(allowed, hint)`` for a limit error."""
    if layer.rec_weight is None:
        return None
    if profile.recurrent == "none":
        return "feed-forward only", f"{profile.title} has no recurrent connections; drop the loop of {layer.name}"
    if profile.recurrent == "hidden" and is_last:
        return "recurrence in hidden layers only", \
            f"the {profile.title} readout has no recurrent weights; add a feed-forward readout after {layer.name}"
    return None


def wide(layer: FloatLayer) -> FloatLayer:
    """The layer with its recurrent weights appended as extra inputs: a dense ``weight [n_out, n_in + n_out]``."""
    if layer.rec_weight is None:
        return layer
    return dataclasses.replace(layer, weight=np.hstack([layer.syn.dense(), layer.rec_weight]), syn=None,
                               rec_weight=None)


def quantize(layer: FloatLayer, profile: ChipProfile, quantizer=None) -> IntLayer:
    """Quantise a layer with ``quantizer(layer, profile)`` (default: the generic per-layer scale), its
    recurrent weights in the same units as its input weights; ``rec_weight`` holds them as integers."""
    if quantizer is None:
        def quantizer(f, p):
            return quantize_layer(f, p, layer_scale(f, p))
    q = quantizer(wide(layer), profile)
    if layer.rec_weight is None:
        return q
    return dataclasses.replace(q, weight=q.weight[:, :layer.n_in], syn=None, rec_weight=q.weight[:, layer.n_in:])


def wide_syn(q) -> Synapse:
    """A layer's synapse with the recurrent weights appended as a dense block (sources: inputs, then its own
    neurons); the layer's own synapse when it has no loop."""
    rec = getattr(q, "rec_weight", None)
    return q.syn if rec is None else DenseSynapse(np.hstack([q.syn.dense(), rec]))
