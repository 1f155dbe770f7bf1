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
from spikeflow.hardware.network import FloatNet, float_reference
from spikeflow.hardware.quantize import IntLayer
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


def run_integer(compiled, x: np.ndarray) -> RunResult:
    """Run ``compiled`` (a ``CompiledNetwork``) on spikes ``x [T, B, n_in]``."""
    layers, maps = compiled.layers, compiled.mapping.layers
    s = check_events(x, layers[0].n_in)
    T, B = s.shape[:2]
    C = compiled.mapping.n_cores
    cnt = {k: np.zeros((T, B, C), dtype=np.int64) for k in
           ("synops", "act", "inact", "spikes", "local", "hops")}
    max_route = np.zeros((T, B), dtype=np.int64)
    records = []
    cur = s
    for layer, lm in zip(layers, maps):
        syn, nz = layer.syn, layer.syn.nonzero()  # weights, and the same synapses with weight 1
        reach = lm.syn_per_core > 0  # [cores_L, n_in]: source i sends one packet to each core it reaches
        # [n_in, 2 cores_L]: hops and local deliveries of one spike of each source, by destination core.
        routes = np.ascontiguousarray(np.concatenate([reach * lm.dist, reach & (lm.dist == 0)]).T.astype(np.float64))
        nc = len(lm.cores)
        v = np.broadcast_to(layer.v_leak, (B, layer.n_out)).copy()
        rest = layer.v_leak
        col = np.searchsorted(lm.cores, lm.core_of)
        to_core = sparse.csr_matrix((np.ones(layer.n_out, dtype=np.int64), (col, np.arange(layer.n_out))),
                                    shape=(nc, layer.n_out))  # [cores_L, n_out]: sums a layer's neurons per core
        out = np.zeros((T, B, layer.n_out), dtype=np.int64)
        for t in range(T):
            st = cur[t]
            active = np.flatnonzero(st.any(axis=0))
            i_syn = np.rint(syn.apply(st)).astype(np.int64) << layer.weight_shift
            received = np.rint(nz.apply(st)).astype(np.int64)  # events reaching each neuron = its synaptic ops
            hops, local = np.split(np.rint(sparse.csr_matrix(st.astype(np.float64)) @ routes).astype(np.int64), 2,
                                   axis=1)
            cnt["synops"][t][:, lm.cores] += (to_core @ received.T).T
            cnt["hops"][t][:, lm.cores] += hops
            cnt["local"][t][:, lm.cores] += local
            if active.size:
                max_route[t] = np.maximum(max_route[t], ((st[:, active] > 0) * lm.src_max_dist[active]).max(axis=1))
            is_active = ((received > 0) | (v != rest) | (layer.bias != 0)).astype(np.int64)
            z, v = int_step(layer, v, i_syn)
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
                     hops=cnt["hops"], max_route=max_route)
