"""Compile a NIR graph for a chip profile: check limits, quantise, map to cores."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import List, Union

import nir
import numpy as np

from spikeflow.errors import ConfigError, HardwareLimitError
from spikeflow.hardware import loihi
from spikeflow.hardware.board import BOARDS, BoardUse, board_place, chip_distance, get_board
from spikeflow.hardware.corememory import assign_cores, fits, layer_memory
from spikeflow.hardware.mapping import LayerMap, Mapping, greedy_cores, layer_routes, place
from spikeflow.hardware.network import FloatNet, from_nir
from spikeflow.hardware.precision import LayerPrecision, check_precision, layer_precision
from spikeflow.hardware.profiles import ChipProfile, get_profile
from spikeflow.hardware.quantize import IntLayer, layer_scale, quantize_layer
from spikeflow.hardware.recurrent import check_recurrence, quantize, wide_syn
from spikeflow.hardware.synapse import Synapse


class QuantizationWarning(UserWarning):
    """Quantisation changed a layer's behaviour badly (e.g. left it silent)."""


@dataclass
class CompiledNetwork:
    """A network quantised and mapped for one chip (or a board of them): its ``profile``, the float network
    it came from, the integer layers, the core ``mapping`` (``cores_used``), the weight ``precision`` lost per
    layer and, on several chips, the ``board`` use (chips, cores per chip).
    """
    profile: ChipProfile
    float_net: FloatNet
    layers: List[IntLayer]
    mapping: Mapping
    precision: List[LayerPrecision] = field(default_factory=list)
    board: BoardUse | None = None
    latency: str = "same-step"  # per-layer: each layer's synapses deliver one step later (Lava's Dense)

    @property
    def chips_used(self) -> int:
        return 1 if self.board is None else self.board.chips_used

    @property
    def latency_steps(self) -> int:
        """Steps from an input spike to the last layer's response: one per layer, or 0 (same step)."""
        return len(self.layers) if self.latency == "per-layer" else 0

    @property
    def cores_used(self) -> int:
        return self.mapping.n_cores


def limit_error(profile: ChipProfile, layer: str, limit: str, value, allowed, hint: str) -> HardwareLimitError:
    """A ``HardwareLimitError`` naming the chip, the layer, the limit, the value needed and allowed, and a hint."""
    err = HardwareLimitError(
        f"{profile.title}: layer {layer!r} exceeds limit '{limit}' (needs {value}, allowed {allowed}): {hint}"
    )
    err.layer, err.limit, err.value, err.allowed = layer, limit, value, allowed
    return err


def _check_layer_types(net: FloatNet, profile: ChipProfile) -> None:
    for k, layer in enumerate(net.layers):
        rec = check_recurrence(layer, profile, k == len(net.layers) - 1)
        if rec is not None:
            raise limit_error(profile, layer.name, "recurrent", f"a recurrent loop ({layer.rec_synapse})", *rec)
        if layer.kind not in profile.neuron_models:
            raise limit_error(profile, layer.name, "neuron_model", layer.kind, "/".join(profile.neuron_models),
                              f"retrain {layer.name} with {profile.neuron_models[0].upper()} neurons")
        if layer.kind in ("lif", "li") and profile.decay == "none":
            raise limit_error(profile, layer.name, "neuron_model", f"{layer.kind} (leaky)", "non-leaky IF",
                              f"retrain {layer.name} with IF neurons")
        for st in layer.synapse_types:
            if st not in profile.synapse_types:
                raise limit_error(profile, layer.name, "synapse_type", st, "/".join(profile.synapse_types),
                                  f"express {layer.synapse} as a convolution "
                                  "(a dense layer is a conv with a full-size kernel)")
        if layer.conv is not None:
            k = max(layer.conv.kernel)
            if profile.max_kernel is not None and k > profile.max_kernel:
                raise limit_error(profile, layer.name, "max_kernel", f"{layer.conv.kernel[0]}x{layer.conv.kernel[1]}",
                                  f"{profile.max_kernel}x{profile.max_kernel}",
                                  f"use a smaller kernel or a strided stack in {layer.synapse}")
            ch = max(layer.conv.in_channels, layer.conv.out_channels)
            if profile.max_channels is not None and ch > profile.max_channels:
                raise limit_error(profile, layer.name, "max_channels", ch, profile.max_channels,
                                  f"reduce the feature maps of {layer.synapse}")
    if profile.max_input_channels is not None and net.n_in > profile.max_input_channels:
        raise limit_error(profile, "input", "max_input_channels", net.n_in, profile.max_input_channels,
                          f"reduce the input to {profile.max_input_channels} channels (e.g. fewer filterbank bands)")
    last = net.layers[-1]
    if profile.max_output_neurons is not None and last.n_out > profile.max_output_neurons:
        raise limit_error(profile, last.name, "max_output_neurons", last.n_out, profile.max_output_neurons,
                          f"use at most {profile.max_output_neurons} output classes")
    hidden = sum(layer.n_out for layer in net.layers[:-1])
    if profile.max_hidden_neurons is not None and hidden > profile.max_hidden_neurons:
        raise limit_error(profile, net.layers[0].name if len(net.layers) > 1 else last.name, "max_hidden_neurons",
                          hidden, profile.max_hidden_neurons, "shrink the hidden layers")


def _check_core_memory(net: FloatNet, profile: ChipProfile) -> None:
    """One layer per core on chips with per-core memories (Speck): sides, memories and a core for every layer."""
    nmem, kmem = profile.core_neuron_memory, profile.core_kernel_memory
    needs, in_shape = [], tuple(net.input_shape)
    for layer in net.layers:
        out = tuple(layer.out_shape or (layer.n_out,))
        for limit, shape, what in (("max_input_side", in_shape, "input"), ("max_output_side", out, "output")):
            side = max(shape[-2:]) if len(shape) == 3 else 1
            allowed = getattr(profile, limit)
            if allowed is not None and side > allowed:
                raise limit_error(profile, layer.name, limit, f"{what} side {side}", allowed,
                                  f"downsample (stride or pooling) before {layer.synapse}")
        need = layer_memory(layer)
        if not fits(need, nmem, kmem).any():
            if need[0] > max(nmem):
                raise limit_error(profile, layer.name, "core_neuron_memory", f"{need[0]} neuron words", max(nmem),
                                  f"fewer channels or a smaller feature map in {layer.name} (sinabs rounds each "
                                  "side up to a power of two)")
            allowed = max(k for n, k in zip(nmem, kmem) if n >= need[0])
            raise limit_error(profile, layer.name, "core_kernel_memory", f"{need[1]} kernel words", allowed,
                              f"fewer input/output channels or a smaller kernel in {layer.synapse}")
        needs.append(need)
        in_shape = out
    if len(needs) > profile.cores or assign_cores(needs, nmem, kmem) is None:
        raise limit_error(profile, net.layers[-1].name, "cores", f"{len(needs)} layers with memories {needs}",
                          f"{profile.cores} cores (neuron words {list(nmem)}, kernel words {list(kmem)})",
                          "each layer needs its own core that holds it; merge or shrink layers")


def _check_ranges(q: IntLayer, profile: ChipProfile) -> None:
    lo, hi = profile.state_range
    for what, arr in (("threshold", q.threshold if q.spiking else None), ("v_reset", q.v_reset),
                      ("v_leak", q.v_leak), ("bias", q.bias)):
        if arr is None or arr.size == 0:
            continue
        worst = int(np.max(np.abs(arr)))
        if worst > hi:
            raise limit_error(profile, q.name, "threshold_range", f"{what} {worst} (in weight units)",
                              f"{profile.state_bits}-bit state [{lo}, {hi}]",
                              f"the {what} is {worst / (profile.weight_max << profile.state_frac_bits):.3g}x "
                              "the largest weight; "
                              f"scale up the weights of {q.name} or lower its {what}")


def _check_fan_in(syn: Synapse, name: str, synapse: str, profile: ChipProfile) -> None:
    fan = syn.fan_in()
    fan_in = int(fan.max()) if fan.size else 0
    for limit in ("max_fan_in", "axons_per_core", "synapses_per_core"):
        allowed = getattr(profile, limit)
        if allowed is not None and fan_in > allowed:
            raise limit_error(profile, name, limit, f"fan-in {fan_in}", allowed,
                              f"split {synapse} (fan-in {fan_in}) — {profile.title} allows {allowed}")


def _quantize(layer, profile: ChipProfile) -> IntLayer:
    if profile.arithmetic == "lava-loihi":
        try:
            return loihi.quantize(layer, profile)
        except loihi.LoihiFormatError as err:
            raise limit_error(profile, layer.name, err.limit, err.value, err.allowed, err.hint) from None
    return quantize_layer(layer, profile, layer_scale(layer, profile))


def _cores_error(profile: ChipProfile, board, chips: int, layer, needed: int, alone: int) -> HardwareLimitError:
    what = f"{layer.name} alone needs {alone} cores of {profile.neurons_per_core} neurons; "
    if board is None:
        b = BOARDS.get(profile.name)
        hint = what + "shrink the network" + (f" or spread it over several chips (--chips N, up to {b.chips} on "
                                              f"the {b.title} board)" if b else "")
        return limit_error(profile, layer.name, "cores", f"at least {needed} cores", profile.cores, hint)
    return limit_error(profile, layer.name, "cores", f"at least {needed} cores",
                       f"{chips * profile.cores} on {chips} chips", what + (
                           f"shrink the network or use more chips (the {board.title} board holds {board.chips})"
                           if chips < board.chips else f"the network is larger than the whole {board.title} board"))


def compile_network(model: Union[nir.NIRGraph, FloatNet], chip: Union[str, ChipProfile], dt: float | None = None,
                    reset: str | None = None, calibration: np.ndarray | None = None, chips: int = 1,
                    allow_lossy: bool = False, latency: str | None = None) -> CompiledNetwork:
    """Quantise ``model`` for ``chip``, check every limit and map it to cores.

    ``calibration`` (``[T, B, n_in]`` spikes) enables the check that
    quantisation leaves no spiking layer silent that was active in float.
    ``chips`` > 1 spreads the cores over up to that many chips of the chip's board
    (``spikeflow.hardware.board``), chip by chip, using only as many as needed.
    Unless ``allow_lossy``, a layer whose weights lose more than the thresholds of
    ``spikeflow.hardware.precision`` (zeroed/clipped synapses, RMS error) fails the compile.
    ``latency``: ``per-layer`` (each layer's input arrives one step after its sources spiked, as Lava's
    Dense delivers; the default for Loihi) or ``same-step`` (an idealised chip that passes spikes
    through every layer within a step; the default for the other chips).
    """
    profile = get_profile(chip) if isinstance(chip, str) else chip
    board = get_board(profile, chips)
    capacity = profile.cores * chips
    if latency is None:
        latency = "per-layer" if profile.arithmetic == "lava-loihi" else "same-step"
    if latency not in ("per-layer", "same-step"):
        raise ConfigError(f"hardware: latency must be per-layer or same-step, got {latency!r}")
    net = model if isinstance(model, FloatNet) else from_nir(model, dt=dt, reset=reset)
    _check_layer_types(net, profile)
    if profile.core_neuron_memory is not None:
        _check_core_memory(net, profile)
    int_layers, layer_maps, precision = [], [], []
    src_core = np.full(net.n_in, -1, dtype=np.int64)
    n_cores = 0
    placed = []  # (int layer, core of each neuron, core of each source)
    for layer in net.layers:
        q = quantize(layer, profile, _quantize)  # a recurrent loop quantised with the layer
        precision.append(layer_precision(layer, q, profile))
        _check_ranges(q, profile)
        wsyn = wide_syn(q)  # sources: the layer's inputs, then (recurrent) its own neurons
        _check_fan_in(wsyn, layer.name, layer.synapse, profile)
        if profile.shared_core:
            # One core holds every layer; its capacity is checked by the hidden/output neuron limits.
            core_of = np.zeros(layer.n_out, dtype=np.int64)
            placed.append((q, wsyn, core_of, _sources(q, src_core, core_of)))
            int_layers.append(q)
            src_core, n_cores = core_of, 1
            continue
        lower = -(-layer.n_out // profile.neurons_per_core)  # cores needed at least: skip greedy when over
        groups = greedy_cores(wsyn, profile) if n_cores + lower <= capacity else [None] * lower
        if n_cores + len(groups) > capacity:
            raise _cores_error(profile, board, chips, layer, n_cores + len(groups), len(groups))
        core_of = np.empty(layer.n_out, dtype=np.int64)
        for k, g in enumerate(groups):
            core_of[g] = n_cores + k
        n_cores += len(groups)
        placed.append((q, wsyn, core_of, _sources(q, src_core, core_of)))
        int_layers.append(q)
        src_core = core_of
    use, chip_dist = None, None
    if board is None:
        positions = place(n_cores, profile)
    else:
        positions, use = board_place(n_cores, profile, board, chips)

        def chip_dist(cores, src):
            return chip_distance(use, cores, src)
    for q, wsyn, core_of, src in placed:
        cores, syn_per_core, hops, packets, local, max_dist, dist = layer_routes(wsyn, core_of, src, positions,
                                                                                 chip_dist)
        if profile.fan_out_cores is not None:
            onchip = src >= 0
            worst = int(packets[onchip].max()) if onchip.any() else 0
            if worst > profile.fan_out_cores:
                raise limit_error(profile, q.name, "fan_out_cores", f"sources reaching {worst} cores",
                                  profile.fan_out_cores, f"each {profile.title} neuron reaches one core; keep {q.name} "
                                  f"within {profile.neurons_per_core} neurons or duplicate the source neurons")
        layer_maps.append(LayerMap(
            core_of=core_of, cores=cores, syn_per_core=syn_per_core,
            axons_per_core=(syn_per_core > 0).sum(axis=1), synapses_per_core=syn_per_core.sum(axis=1),
            neurons_per_core=np.array([(core_of == c).sum() for c in cores]), src_hops=hops, src_packets=packets,
            src_local=local, src_max_dist=max_dist, src_core=src, dist=dist,
            **_chip_routes(use, cores, src, syn_per_core)))
    if not allow_lossy:
        check_precision(precision, profile)
    compiled = CompiledNetwork(profile=profile, float_net=net, layers=int_layers,
                               mapping=Mapping(layers=layer_maps, positions=positions), precision=precision,
                               board=use, latency=latency)
    if calibration is not None:
        check_silence(compiled, calibration)
    return compiled


def _sources(q, src_core: np.ndarray, core_of: np.ndarray) -> np.ndarray:
    """Core of each source of a layer: its inputs, then (recurrent layer) its own neurons."""
    return np.concatenate([src_core, core_of]) if getattr(q, "rec_weight", None) is not None else src_core


def _chip_routes(use, cores, src, syn_per_core) -> dict:
    """Chip-to-chip links of each route (zeros on one chip) and the most one spike of each source crosses."""
    if use is None:
        d = np.zeros(syn_per_core.shape, dtype=np.int64)
    else:
        d = chip_distance(use, cores, src)
    return {"chip_dist": d, "src_max_chip": (d * (syn_per_core > 0)).max(axis=0) if d.size else
            np.zeros(syn_per_core.shape[1], dtype=np.int64)}


def check_silence(compiled: CompiledNetwork, x: np.ndarray) -> List[str]:
    """Warn (``QuantizationWarning``) for each spiking layer active in float but silent as integers."""
    from spikeflow.hardware.engine import float_run, run_aligned

    _, float_spikes = float_run(compiled.float_net, x)
    result = run_aligned(compiled, x)
    silent = []
    for layer, fs, ispk in zip(compiled.layers, float_spikes, result.layer_spikes):
        if layer.spiking and fs.sum() > 0 and ispk.sum() == 0:
            silent.append(layer.name)
            warnings.warn(QuantizationWarning(
                f"{compiled.profile.title}: quantisation to {compiled.profile.weight_bits}-bit weights silences layer "
                f"{layer.name!r} on the calibration data (float: {int(fs.sum())} spikes, integer: 0)"), stacklevel=2)
    return silent
