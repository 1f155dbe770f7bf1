"""Intel Loihi's integer neuron and synapse, as Lava's bit-accurate models compute them.

The arithmetic below is that of lava-nc 0.10.0's ``PyLifModelBitAcc`` (lava/proc/lif/models.py) and
``PyDenseModelBitAcc`` (lava/proc/dense/models.py, with lava/utils/weightutils.py), checked bit for
bit against Lava itself by tests/hardware/test_lava_interop.py:

* Dense: 8-bit weights (sign mode from the weights: mixed-sign weights lose their lowest bit, so
  they are even, in [-256, 254]; one-signed ones use [0, 255] or [-255, 0]); a spike adds its
  column; the sum is shifted by the weight exponent (left when positive, arithmetic right when
  negative) and delivered to the neurons one step later.
* Neuron: ``u <- trunc(u * (4096 - (du + 1)) / 4096) + (a_in << 6)``, wrapped once by +-2**24 when
  outside (-2**23, 2**23]; ``v <- clip(trunc(v * (4096 - dv) / 4096) + u + bias, +-(2**23 - 1))``
  with ``bias = bias_mant << bias_exp``; a spike when ``v > vth << 6``; then ``v <- 0``. ``du``,
  ``dv`` are 12-bit (0..4095) and shared by a layer, ``vth`` a 17-bit mantissa shared by a layer,
  ``bias_mant`` 13-bit signed, ``bias_exp`` 0..7. Truncation is toward zero. Lava's intermediate
  values are int32 (they wrap there too), which ``step`` reproduces.

Mapping (``quantize``): a LIF or IF neuron has no current memory (``du = 4095`` makes the current
decay factor 0, so ``u`` is this step's input), ``dv = 4096 (1 - exp(-dt/tau))`` (0 for IF);
CubaLIF keeps its current in ``u`` with ``du = 4096 (1 - exp(-dt/tau_syn)) - 1``; an LI/CubaLI
readout is the same neuron with the largest threshold. Loihi resets ``v`` to 0 and rests at 0, so a
subtract reset or a non-zero rest/reset level is refused, as are per-neuron decays or thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikeflow.errors import InputError

U_BITS = 24  # u and v are 24-bit (PyLifModelBitAcc: uv_bitwidth)
UV_MAX = 1 << (U_BITS - 1)
DECAY_BITS = 12  # du, dv: unsigned 12-bit; decays are MSB-aligned by 12 bits
DECAY_MAX = (1 << DECAY_BITS) - 1
VTH_SHIFT = 6  # threshold and synaptic input are MSB-aligned by 6 bits
VTH_MAX = (1 << 17) - 1  # vth: unsigned 17-bit
BIAS_MANT_MAX = 1 << 12  # bias_mant: signed 13-bit, [-4096, 4095]
BIAS_EXP_MAX = 7  # bias_exp: 3-bit, 0..7
WEIGHT_EXP_RANGE = (-8, 7)  # spikeflow's choice of exponents (Lava does not bound weight_exp)
LOIHI_KINDS = ("lif", "if", "li", "cubalif", "cubali")


@dataclass
class LoihiParams:
    """One layer as Lava's ``Dense`` + ``LIF`` processes take it (all integers)."""
    weight_exp: int
    du: int
    dv: int
    vth: int  # mantissa; the threshold is vth << 6
    bias_mant: np.ndarray  # [n_out]
    bias_exp: np.ndarray  # [n_out]
    sign_mode: str  # mixed | excitatory | inhibitory

    @property
    def bias(self) -> np.ndarray:
        return self.bias_mant.astype(np.int64) << self.bias_exp.astype(np.int64)


class LoihiFormatError(ValueError):
    """A float layer that Loihi's formats cannot hold; ``compiler`` turns it into a named limit error."""

    def __init__(self, limit: str, value, allowed, hint: str):
        super().__init__(f"{limit}: {value} (allowed {allowed})")
        self.limit, self.value, self.allowed, self.hint = limit, value, allowed, hint


def _wrap32(x: np.ndarray) -> np.ndarray:
    """int64 values as numpy's int32 arithmetic leaves them (two's complement wrap)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    """``x * keep / 4096`` truncated toward zero."""
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> DECAY_BITS)


def dense_output(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """The Dense's output from the summed weights of the spikes that arrived (int32 on the channel)."""
    acc = np.asarray(acc, dtype=np.int64)
    return _wrap32(acc << weight_exp if weight_exp > 0 else acc >> -weight_exp)


def step(p: LoihiParams, u: np.ndarray, v: np.ndarray, a_in: np.ndarray):
    """One neuron step on the Dense output ``a_in``; returns ``(spikes, u, v)`` (int64 arrays)."""
    u = _wrap32(_decay(u, (1 << DECAY_BITS) - (p.du + 1)) + _wrap32(a_in << VTH_SHIFT))
    u = np.where(u > UV_MAX, u - 2 * UV_MAX, u)
    u = np.where(u <= -UV_MAX, u + 2 * UV_MAX, u)
    v = np.clip(_wrap32(_decay(v, (1 << DECAY_BITS) - p.dv) + u + p.bias), -UV_MAX + 1, UV_MAX - 1)
    z = v > (p.vth << VTH_SHIFT)
    return z.astype(np.int64), u, np.where(z, 0, v)


def check_input(x: np.ndarray) -> None:
    """Loihi's input axons carry binary spikes: at most one per channel per step."""
    if x.size and x.max() > 1:
        t, b, c = np.unravel_index(int(np.argmax(x)), x.shape)
        raise InputError(f"hardware: Intel Loihi takes at most 1 spike per input channel per step (binary spikes); "
                         f"got {int(x[t, b, c])} at step {t}, sample {b}, channel {c}: bin the input into more steps "
                         "or use chip loihi2")


def _uniform(values: np.ndarray, what: str, allowed: str, hint: str) -> int:
    vals = np.unique(values)
    if vals.size > 1:
        raise LoihiFormatError(what, f"{vals.size} different values ({vals.min()}..{vals.max()})", allowed, hint)
    return int(vals[0])


def weights(syn):
    """``syn`` (the effective synapse, any ``Synapse``) as integers Lava's Dense keeps unchanged at 8 bits,
    the float value of one integer, and the sign mode."""
    vals, counts = syn.values()
    used = vals if counts is None else vals[counts > 0]
    if used.size and used.min() < 0 < used.max():
        mode, top = "mixed", 254  # the lowest bit of a mixed-sign weight is truncated: even values
    else:
        mode = "inhibitory" if used.size and used.max() <= 0 and used.min() < 0 else "excitatory"
        top = 255
    m = float(np.max(np.abs(used))) if used.size else 0.0
    scale = (m / top) if m > 0 else 1.0
    lo = -256 if mode == "mixed" else -255

    def to_int(w):
        q = np.asarray(w, dtype=np.float64) / scale
        return np.clip(2 * np.rint(q / 2) if mode == "mixed" else np.rint(q), lo, 255).astype(np.int64)

    return syn.map(to_int), scale, mode


def weight_exponent(th_units: float) -> int:
    """Exponent that puts the threshold mantissa near 1024 (threshold in weight integers ``th_units``):
    fine enough to resolve the threshold, with the 24-bit current far from wrapping; never below 0
    unless the mantissa would not fit 17 bits."""
    if th_units <= 0:
        return 0
    if th_units > VTH_MAX:
        return max(-math.ceil(math.log2(th_units / VTH_MAX)), WEIGHT_EXP_RANGE[0])
    if th_units >= 1024:
        return 0
    return int(min(math.floor(math.log2(1024 / th_units)), WEIGHT_EXP_RANGE[1]))


def bias_format(bias_v: np.ndarray):
    """``bias_mant, bias_exp`` per neuron: the smallest exponent whose mantissa fits 13 bits."""
    b = np.rint(bias_v).astype(np.int64)
    exp = np.zeros(b.shape, dtype=np.int64)
    while True:
        big = np.abs(np.rint(b / (1 << exp))) >= BIAS_MANT_MAX
        if not big.any():
            break
        if (exp[big] >= BIAS_EXP_MAX).any():
            worst = int(np.max(np.abs(b)))
            raise LoihiFormatError("bias_range", f"bias {worst} (voltage units)",
                                   f"|mantissa| < {BIAS_MANT_MAX} << {BIAS_EXP_MAX}", "lower the bias")
        exp = np.where(big, exp + 1, exp)
    mant = np.rint(b / (1 << exp)).astype(np.int64)
    return np.clip(mant, -BIAS_MANT_MAX, BIAS_MANT_MAX - 1), exp


def check_reset(kind: str, reset: str | None, v_reset: np.ndarray | None, v_leak: np.ndarray | None) -> None:
    if kind in ("lif", "if", "cubalif") and reset == "subtract":
        raise LoihiFormatError("reset", "subtract", "reset to 0",
                               "Loihi sets v to 0 after a spike: train with reset='to_reset' and v_reset = 0 "
                               "(or override with --reset to_reset), or use chip loihi2")
    if v_reset is not None and kind in ("lif", "if", "cubalif") and np.any(v_reset != 0):
        raise LoihiFormatError("v_reset", f"{float(np.max(np.abs(v_reset))):g}", "0",
                               "Loihi sets v to 0 after a spike; shift v_threshold instead")
    if v_leak is not None and np.any(v_leak != 0):
        raise LoihiFormatError("v_leak", f"{float(np.max(np.abs(v_leak))):g}", "0",
                               "Loihi's voltage decays to 0; express the rest level as a bias")


def _per(v, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v.detach().double().numpy() if hasattr(v, "detach") else v,
                                      dtype=np.float64).reshape(-1), (n,)).astype(np.float64)


def quantize(layer, profile):
    """A ``FloatLayer`` as a Loihi ``IntLayer`` (``.loihi`` holds Lava's parameters); ``LoihiFormatError``
    when the layer needs what Loihi does not have."""
    from spikeflow.hardware.quantize import IntLayer, effective_synapse
    from spikeflow.hardware.synapse import DenseSynapse

    p, n, kind = layer.params, layer.n_out, layer.kind
    spiking = kind in ("lif", "if", "cubalif")
    check_reset(kind, getattr(p, "reset", None) if spiking else None,
                _per(p.v_reset, n) if spiking else None, _per(p.v_leak, n) if kind != "if" else None)
    alpha = np.ones(n) if kind == "if" else _per(p.alpha, n)
    dv = _uniform(np.clip(np.rint(4096 * (1 - alpha)), 0, DECAY_MAX).astype(np.int64), "dv",
                  "one voltage decay per layer", "give every neuron of the layer the same tau_mem")
    if kind.startswith("cuba"):
        a_syn = _per(p.alpha_syn, n)
        du = _uniform(np.clip(np.rint(4096 * (1 - a_syn)) - 1, 0, DECAY_MAX).astype(np.int64), "du",
                      "one current decay per layer", "give every neuron of the layer the same tau_syn")
        syn_gain = 1.0 - a_syn
    else:
        du, syn_gain = DECAY_MAX, np.ones(n)  # du + 1 = 4096: no current memory
    gain = layer.gain()  # membrane increment per unit of synaptic input (the steady state for CubaLIF)
    syn, scale, mode = weights(effective_synapse(layer))
    if spiking:
        th = _per(p.v_threshold, n)
        if np.any(th <= 0):
            raise LoihiFormatError("threshold", f"{float(th.min()):g}", "> 0", "use a positive v_threshold")
        wexp = weight_exponent(float(th.max()) / scale)
        vth = _uniform(np.rint(th / scale * 2.0 ** wexp).astype(np.int64), "threshold",
                       "one threshold per layer", "give every neuron of the layer the same v_threshold")
        if vth > VTH_MAX:
            raise LoihiFormatError("threshold_range", f"threshold mantissa {vth}", f"<= {VTH_MAX}",
                                   "scale up the weights or lower v_threshold")
        vth = max(vth, 0)
    else:
        wexp, vth = 0, VTH_MAX  # a readout: the largest threshold
    unit = scale / (2.0 ** wexp * (1 << VTH_SHIFT))  # float value of one voltage unit
    bias_mant, bias_exp = bias_format(gain / syn_gain * layer.bias / unit)
    lp = LoihiParams(weight_exp=wexp, du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp, sign_mode=mode)
    zeros = np.zeros(n, dtype=np.int64)
    return IntLayer(name=layer.name, kind=kind, weight=syn.weight if isinstance(syn, DenseSynapse) else None,
                    syn=syn, bias=lp.bias, threshold=np.full(n, vth << VTH_SHIFT),
                    v_reset=zeros, v_leak=zeros.copy(), decay="multiplicative",
                    decay_value=np.full(n, (1 << DECAY_BITS) - dv), decay_bits=DECAY_BITS,
                    reset="to_reset" if spiking else "none", scale=unit, weight_shift=wexp + VTH_SHIFT,
                    state_min=-UV_MAX + 1, state_max=UV_MAX - 1, overflow="saturate", loihi=lp)
