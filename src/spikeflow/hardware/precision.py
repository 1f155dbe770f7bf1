"""Weight precision lost by quantisation, per layer, and the check that refuses a lossy compile.

Compared in effective units (``gain * W``, the membrane increment of one spike, which is what
the chip's integers hold): a synapse is *zeroed* when its float weight is non-zero and its
integer is 0, *clipped* when its weight lies beyond the largest integer by more than half a
step (it saturates there); the weight error is the relative RMS of the dequantised
minus the float weights over the layer (recurrent weights included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List

import numpy as np

from spikeflow.errors import HardwareLimitError
from spikeflow.hardware.network import FloatLayer
from spikeflow.hardware.profiles import ChipProfile
from spikeflow.hardware.recurrent import wide, wide_syn

# A compile fails unless allowed to be lossy when a layer loses more than this (fractions):
MAX_ZEROED = 0.05  # of its non-zero synapses zeroed
MAX_CLIPPED = 0.05  # of its non-zero synapses clipped
MAX_WEIGHT_ERROR = 0.10  # relative RMS weight error


class PrecisionLossError(HardwareLimitError):
    """Quantisation loses more of a layer's weights than the thresholds allow."""


@dataclass
class LayerPrecision:
    """One layer's quantisation loss: non-zero float synapses, how many became 0 or saturated, and the
    relative RMS error of the dequantised weights."""
    layer: str
    synapses: int
    zeroed: int
    clipped: int
    weight_error: float

    @property
    def zeroed_frac(self) -> float:
        return self.zeroed / self.synapses if self.synapses else 0.0

    @property
    def clipped_frac(self) -> float:
        return self.clipped / self.synapses if self.synapses else 0.0

    @property
    def lossy(self) -> bool:
        return (self.zeroed_frac > MAX_ZEROED or self.clipped_frac > MAX_CLIPPED
                or self.weight_error > MAX_WEIGHT_ERROR)

    def to_dict(self) -> Dict:
        return {**asdict(self), "zeroed_frac": self.zeroed_frac, "clipped_frac": self.clipped_frac,
                "lossy": self.lossy}


def layer_precision(layer: FloatLayer, q, profile: ChipProfile) -> LayerPrecision:
    """Zeroed and clipped synapses and relative RMS weight error of float ``layer`` quantised as ``q``.

    A convolution's kernel weights count once per use (synapses of the dense equivalent)."""
    w = wide(layer)
    f_syn, i_syn = w.syn.scale_rows(w.gain()), wide_syn(q)
    (fv, counts), (iv, _) = f_syn.values(), i_syn.values()
    if fv.shape != iv.shape:  # different storage (should not happen): compare the dense equivalents
        fv, iv, counts = f_syn.dense().ravel(), i_syn.dense().ravel(), None
    c = np.ones(fv.shape) if counts is None else np.asarray(counts, dtype=np.float64)
    step = float(q.scale) * 2.0 ** int(q.weight_shift)  # float value of one weight integer
    nz = (fv != 0) & (c > 0)
    zeroed = int(c[nz & (iv == 0)].sum())
    # Saturated: beyond the largest integer the layer holds (the format's maximum when any weight reached it).
    top = float(np.abs(iv).max()) if iv.size else 0.0
    clipped = int(c[np.abs(fv) > (top + 0.5) * step].sum()) if step > 0 else 0
    norm = float(np.sqrt((c * fv ** 2).sum()))
    err = float(np.sqrt((c * (iv * step - fv) ** 2).sum())) / norm if norm > 0 else 0.0
    return LayerPrecision(layer=layer.name, synapses=int(c[nz].sum()), zeroed=zeroed, clipped=clipped,
                          weight_error=err)


def check_precision(precision: List[LayerPrecision], profile: ChipProfile) -> None:
    """``PrecisionLossError`` naming the first layer over the thresholds and its figures."""
    for p in precision:
        if p.lossy:
            err = PrecisionLossError(
                f"{profile.title}: {profile.weight_bits}-bit weights lose too much of layer {p.layer!r}: "
                f"{p.zeroed} of {p.synapses} synapses zeroed ({p.zeroed_frac:.1%}), {p.clipped} clipped "
                f"({p.clipped_frac:.1%}), weight error {p.weight_error:.1%} RMS (allowed: {MAX_ZEROED:.0%} zeroed, "
                f"{MAX_CLIPPED:.0%} clipped, {MAX_WEIGHT_ERROR:.0%} error); retrain with quantisation-aware "
                "training, or accept it with --allow-lossy (allow_lossy=True)")
            err.layer, err.limit = p.layer, "precision"
            raise err
