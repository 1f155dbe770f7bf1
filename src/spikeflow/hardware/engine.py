"""Bit-accurate integer execution with per-core work counts, and the float reference.

The integer run applies each layer's integer synapse (``spikeflow.hardware.synapse``:
a dense matrix gathered per spiking source, or a convolution kernel) to the step's
spikes;
membranes then leak, integrate, saturate (or wrap) and fire in the chip's integer
arithmetic. Every synaptic operation, neuron update, spike, packet and router
hop is counted per core, per step and per sample, so energy and latency come
from counts, not from layer sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
from scipy import sparse

from spikeflow.errors import InputError, ShapeError
from spikeflow.hardware import loihi
from spikeflow.hardware.network import FloatNet, float_reference
from spikeflow.hardware.quantize import IntLayer
from spikeflow.hardware.recurrent import wide_syn
from spikeflow.runtime.dense import DenseEngine


def float_run(net: FloatNet, x: np.ndarray):
    """Float reference for integer-vs-float comparisons: the runtime's dense engine (float64).

    Returns ``(output [T, B, n_out], per-layer outputs)``: spikes for spiking layers; a
    readout (LI) layer's entry is its membrane when it is the graph's output.
    """
    if net.graph is None:
        return float_reference(net, x)
    x = np.asarray(x, dtype=np.float64)
    res = DenseEngine(net.graph, dt=net.dt).run(x.reshape(x.shape[0], x.shape[1], *net.input_shape), record=True)
    out = res.output.reshape(x.shape[0], x.shape[1], -1)
    records = [res.spikes[L.name].reshape(x.shape[0], x.shape[1], -1) if L.spiking else out for L in net.layers]
    return out, records


def saturate(v: np.ndarray, lo: int, hi: int, mode: str) -> np.ndarray:
    if mode == "wrap":
        span = hi - lo + 1
        return (v - lo) % span + lo
    return np.clip(v, lo, hi)


def leak(layer: IntLayer, v: np.ndarray) -> np.ndarray:
    """One step of the chip's decay of ``v`` towards ``v_leak`` (integers in, integers out)."""
    d = v - layer.v_leak
    if layer.decay == "multiplicative":
        # Loihi-style u <- u * dv / 2**bits, rounded toward zero so that decay is symmetric in sign.
        d = np.sign(d) * ((np.abs(d) * layer.decay_value) >> layer.decay_bits)
    elif layer.decay == "shift":
        d = d - (d >> layer.decay_value)  # Xylo-style bit-shift decay (arithmetic shift)
    elif layer.decay == "linear":
        d = np.sign(d) * np.maximum(np.abs(d) - layer.decay_value, 0)
    return layer.v_leak + d


def int_step(layer: IntLayer, v: np.ndarray, i_syn: np.ndarray):
    """One integer neuron step; returns ``(spikes, v)``."""
    v = saturate(leak(layer, v) + i_syn + layer.bias, layer.state_min, layer.state_max, layer.overflow)
    if not layer.spiking:
        return v, v
    z = v > layer.threshold
    if layer.reset == "subtract":
        v = np.where(z, v - layer.threshold, v)
    elif layer.reset == "to_reset":
        v = np.where(z, layer.v_reset, v)
    return z.astype(np.int64), v


@dataclass
class RunResult:
    """An integer run: the output ``[T, B, n_out]`` (spikes, or readout membrane), per-layer spikes, and
    the counted work per step, sample and core ``[T, B, n_cores]`` (synaptic ops, active and idle neuron
    updates, spikes, local packets, router hops) plus the longest route per step ``[T, B]``.
    """
    output: np.ndarray  # [T, B, n_out]: spikes, or readout membrane in float units for LI
    layer_spikes: List[np.ndarray]  # per layer [T, B, n] int (membrane for LI)
    synops: np.ndarray  # [T, B, n_cores]
    updates_active: np.ndarray  # [T, B, n_cores]
    updates_inactive: np.ndarray
    spikes: np.ndarray  # [T, B, n_cores] spikes emitted by neurons of the core
    packets_local: np.ndarray  # [T, B, n_cores] packets delivered inside the sending core
    hops: np.ndarray  # [T, B, n_cores] router hops of packets, by destination core
    max_route: np.ndarray  # [T, B] longest route (hops) of any packet in the step
    # Several chips: packets that cross to another chip and chip-to-chip links crossed, by destination core,
    # and the most links any packet of the step crosses (zeros on one chip).
    interchip: np.ndarray | None = None  # [T, B, n_cores]
    chip_hops: np.ndarray | None = None  # [T, B, n_cores]
    max_chip_route: np.ndarray | None = None  # [T, B]
    states: List[tuple] | None = None  # per layer (u, v) [T, B, n] after each step (Loihi, record_state=True)
    board: object = None  # the compiled network's BoardUse (several chips), so costing cannot leave it out


def check_events(x: np.ndarray, n_in: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 3:
        raise ShapeError(f"hardware: input must be time-major spikes [T, B, ...], got shape {x.shape}")
    x = x.reshape(x.shape[0], x.shape[1], -1)
    if x.shape[2] != n_in:
        raise ShapeError(f"hardware: input has {x.shape[2]} features per step, the network takes {n_in}")
    if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.rint(x)):
        raise InputError("hardware: chip input must be spike counts (non-negative integers) per step and channel")
    return x.astype(np.int64)


def _delayed(spikes: np.ndarray) -> np.ndarray:
    """What a synapse with one step of latency delivers: the spikes of the step before."""
    out = np.zeros_like(spikes)
    out[1:] = spikes[:-1]
    return out


def run_integer(compiled, x: np.ndarray, record_state: bool = False) -> RunResult:
    """Run ``compiled`` (a ``CompiledNetwork``) on spikes ``x [T, B, n_in]`` for ``T`` steps.

    With ``compiled.latency == "per-layer"`` layer ``l`` responds to an input spike ``l + 1`` steps
    later (see ``run_aligned``). ``record_state``: keep each Loihi layer's ``(u, v)`` per step.
    A recurrent layer's sources are its inputs followed by its own neurons, whose spikes of the
    previous step (none at step 0) arrive with the chip's one-step delay.
    """
    layers, maps = compiled.layers, compiled.mapping.layers
    s = check_events(x, layers[0].n_in)
    if layers[0].loihi is not None:
        loihi.check_input(s)
    delay = getattr(compiled, "latency", "same-step") == "per-layer"
    states = [] if record_state else None
    T, B = s.shape[:2]
    C = compiled.mapping.n_cores
    cnt = {k: np.zeros((T, B, C), dtype=np.int64) for k in
           ("synops", "act", "inact", "spikes", "local", "hops", "interchip", "chip_hops")}
    max_route = np.zeros((T, B), dtype=np.int64)
    max_chip = np.zeros((T, B), dtype=np.int64)
    records = []
    cur = s
    for layer, lm in zip(layers, maps):
        recurrent = getattr(layer, "rec_weight", None) is not None
        syn = wide_syn(layer)  # sources: the layer's inputs, then (recurrent) its own neurons
        nz = syn.nonzero()  # the same synapses with weight 1
        reach = lm.syn_per_core > 0  # [cores_L, n_src]: source i sends one packet to each core it reaches
        chip_dist = lm.chip_dist if lm.chip_dist is not None else np.zeros_like(lm.dist)
        # [n_src, 4 cores_L]: mesh hops, local deliveries, chip links crossed and packets crossing chips of one
        # spike of each source, by destination core.
        routes = np.ascontiguousarray(np.concatenate([
            reach * lm.dist, reach & (lm.dist == 0) & (chip_dist == 0), reach * chip_dist, reach & (chip_dist > 0),
        ]).T.astype(np.float64))
        src_max_chip = lm.src_max_chip if lm.src_max_chip is not None else np.zeros(syn.n_in, dtype=np.int64)
        nc = len(lm.cores)
        v = np.broadcast_to(layer.v_leak, (B, layer.n_out)).copy()
        rest = layer.v_leak
        col = np.searchsorted(lm.cores, lm.core_of)
        to_core = sparse.csr_matrix((np.ones(layer.n_out, dtype=np.int64), (col, np.arange(layer.n_out))),
                                    shape=(nc, layer.n_out))  # [cores_L, n_out]: sums a layer's neurons per core
        out = np.zeros((T, B, layer.n_out), dtype=np.int64)
        z = np.zeros((B, layer.n_out), dtype=np.int64)
        lp = layer.loihi
        u = np.zeros((B, layer.n_out), dtype=np.int64)
        carry = lp is not None and lp.du < loihi.DECAY_MAX
        if lp is not None and record_state:
            states.append(tuple(np.zeros((T, B, layer.n_out), dtype=np.int64) for _ in range(2)))
        if delay:
            cur = _delayed(cur)
        for t in range(T):
            st = np.concatenate([cur[t], z], axis=1) if recurrent else cur[t]
            active = np.flatnonzero(st.any(axis=0))
            i_syn = np.rint(syn.apply(st)).astype(np.int64)
            if lp is None:
                i_syn = i_syn << layer.weight_shift
            received = np.rint(nz.apply(st)).astype(np.int64)  # events reaching each neuron = its synaptic ops
            hops, local, chip_hops, interchip = np.split(
                np.rint(sparse.csr_matrix(st.astype(np.float64)) @ routes).astype(np.int64), 4, axis=1)
            cnt["synops"][t][:, lm.cores] += (to_core @ received.T).T
            cnt["hops"][t][:, lm.cores] += hops
            cnt["local"][t][:, lm.cores] += local
            cnt["chip_hops"][t][:, lm.cores] += chip_hops
            cnt["interchip"][t][:, lm.cores] += interchip
            if active.size:
                fired = st[:, active] > 0
                max_route[t] = np.maximum(max_route[t], (fired * lm.src_max_dist[active]).max(axis=1))
                max_chip[t] = np.maximum(max_chip[t], (fired * src_max_chip[active]).max(axis=1))
            # A Loihi current that decays over steps (CubaLIF) keeps its neuron active.
            is_active = ((received > 0) | (v != rest) | (layer.bias != 0) | (carry & (u != 0))).astype(np.int64)
            if lp is None:
                z, v = int_step(layer, v, i_syn)
            else:
                z, u, v = loihi.step(lp, u, v, loihi.dense_output(i_syn, lp.weight_exp))
                if record_state:
                    states[-1][0][t], states[-1][1][t] = u, v
                z = z if layer.spiking else v
            out[t] = z
            cnt["act"][t][:, lm.cores] += (to_core @ is_active.T).T
            cnt["inact"][t][:, lm.cores] += (to_core @ (1 - is_active).T).T
            if layer.spiking:
                cnt["spikes"][t][:, lm.cores] += (to_core @ z.T).T
        records.append(out)
        cur = out
    last = layers[-1]
    output = records[-1] if last.spiking else records[-1].astype(np.float64) * last.scale
    return RunResult(output=output, layer_spikes=records, synops=cnt["synops"], updates_active=cnt["act"],
                     updates_inactive=cnt["inact"], spikes=cnt["spikes"], packets_local=cnt["local"],
                     hops=cnt["hops"], max_route=max_route, interchip=cnt["interchip"], chip_hops=cnt["chip_hops"],
                     max_chip_route=max_chip, states=states, board=getattr(compiled, "board", None))


def run_aligned(compiled, x: np.ndarray) -> RunResult:
    """``run_integer`` on ``x [T, ...]`` followed by ``compiled.latency_steps`` silent steps (the chip
    runs until the last layer has answered), with every layer's record shifted back by its latency so
    that step ``t`` lines up with the float network's step ``t``; the counts keep all ``T + latency``
    steps (the work and time the chip spends)."""
    lag = compiled.latency_steps
    if lag == 0:
        return run_integer(compiled, x)
    x = np.asarray(x)
    T = x.shape[0]
    res = run_integer(compiled, np.concatenate([x, np.zeros((lag, *x.shape[1:]), dtype=x.dtype)]))
    res.layer_spikes = [r[k + 1:k + 1 + T] for k, r in enumerate(res.layer_spikes)]
    res.output = res.output[lag:lag + T]
    return res
