"""Neuron-to-core mapping and placement on a 2D mesh.

Greedy, layer by layer: each layer starts on a fresh core and fills it in
neuron order while the core's neuron count, distinct input axons and synapse
memory stay within the profile; neighbouring neurons of a conv layer share most
inputs, so in-order filling keeps connected neurons together. Cores are placed
on the mesh in boustrophedon (snake) order so consecutive cores, and hence
consecutive layers, are mesh neighbours. Input spikes enter through a port just
west of core (0, 0). Layers come as synapses (``spikeflow.hardware.synapse``): the
inputs of each neuron are read from the kernel geometry, never from a dense mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from spikeflow.hardware.profiles import ChipProfile
from spikeflow.hardware.synapse import DenseSynapse, Synapse

INPUT_PORT = (0, -1)


@dataclass
class LayerMap:
    core_of: np.ndarray  # [n_out] global core index of every neuron
    cores: np.ndarray  # global core indices this layer uses, ascending
    syn_per_core: np.ndarray  # [n_cores_layer, n_in] nonzero synapses from source i into each core
    axons_per_core: np.ndarray  # distinct sources per core
    synapses_per_core: np.ndarray
    neurons_per_core: np.ndarray
    src_hops: np.ndarray  # [n_in] hops of all packets one spike of source i sends
    src_packets: np.ndarray  # [n_in] packets (destination cores) per spike of source i
    src_local: np.ndarray  # [n_in] packets delivered inside the source's own core
    src_max_dist: np.ndarray  # [n_in] longest route of one spike of source i
    src_core: np.ndarray  # [n_in] core of each source (-1: input port)
    dist: np.ndarray  # [n_cores_layer, n_in] mesh hops from each source to each of the layer's cores
    chip_dist: np.ndarray | None = None  # [n_cores_layer, n_in] chip-to-chip links crossed (multi-chip boards)
    src_max_chip: np.ndarray | None = None  # [n_in] most links crossed by one spike of source i


@dataclass
class Mapping:
    layers: List[LayerMap]
    positions: np.ndarray  # [n_cores_used, 2] (row, col)

    @property
    def n_cores(self) -> int:
        return int(self.positions.shape[0])


def snake_position(index: int, cols: int) -> Tuple[int, int]:
    row, col = divmod(index, cols)
    return row, (col if row % 2 == 0 else cols - 1 - col)


def _as_synapse(syn) -> Synapse:
    return syn if isinstance(syn, Synapse) else DenseSynapse(np.asarray(syn))


def greedy_cores(syn: Synapse, profile: ChipProfile) -> List[np.ndarray]:
    """Split a layer's neurons into cores; returns neuron index arrays. ``syn`` is the layer's synapse
    (or a nonzero mask ``[n_out, n_in]``)."""
    syn = _as_synapse(syn)
    n_out, cap = syn.n_out, profile.neurons_per_core
    axons, memory = profile.axons_per_core, profile.synapses_per_core
    if axons is None and memory is None:
        return [np.arange(a, min(a + cap, n_out)) for a in range(0, n_out, cap)]
    fan_in = syn.fan_in()
    rows = syn.rows() if axons is not None else None
    used = np.zeros(syn.n_in, dtype=bool)
    groups, start = [], 0
    while start < n_out:
        n_used, n_syn, j, taken = 0, 0, start, []
        while j < n_out and j - start < cap:
            new = None
            if rows is not None:
                r = rows[j, :fan_in[j]]
                new = r[~used[r]]
            if j > start:
                if new is not None and n_used + new.size > axons:
                    break
                if memory is not None and n_syn + fan_in[j] > memory:
                    break
            if new is not None:
                used[new] = True
                taken.append(new)
                n_used += new.size
            n_syn, j = n_syn + int(fan_in[j]), j + 1
        for t in taken:
            used[t] = False
        groups.append(np.arange(start, j))
        start = j
    return groups


def place(n_cores: int, profile: ChipProfile) -> np.ndarray:
    return np.array([snake_position(c, profile.mesh[1]) for c in range(n_cores)], dtype=np.int64).reshape(-1, 2)


def synapses_per_core(syn: Synapse, core_of: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """``[len(cores), n_in]``: nonzero synapses from each source into each core."""
    if isinstance(syn, DenseSynapse):
        mask = syn.weight != 0
        return np.stack([mask[core_of == c].sum(axis=0) for c in cores]).astype(np.int64)
    rows = syn.rows()
    idx = np.searchsorted(cores, core_of)[:, None] * syn.n_in + rows
    return np.bincount(idx[rows >= 0], minlength=len(cores) * syn.n_in).reshape(len(cores), syn.n_in)


def layer_routes(syn: Synapse, core_of: np.ndarray, src_core: np.ndarray, positions: np.ndarray, chip_dist=None):
    """Per source: packets, hops, local deliveries and longest route (one packet per destination core).
    ``syn`` is the layer's synapse (or a nonzero mask ``[n_out, n_in]``).

    ``chip_dist(cores, src_core)`` (multi-chip boards) gives the chip-to-chip links of each route; they are
    taken out of the mesh hops (a link is not a mesh hop).
    """
    syn = _as_synapse(syn)
    cores = np.unique(core_of)
    syn_per_core = synapses_per_core(syn, core_of, cores)
    reach = syn_per_core > 0  # [n_cores_layer, n_in]
    dest = positions[cores]  # [n_cores_layer, 2]
    src_pos = np.where(src_core[:, None] >= 0, positions[np.maximum(src_core, 0)], np.array(INPUT_PORT))
    dist = np.abs(src_pos[None, :, :] - dest[:, None, :]).sum(axis=2)  # [n_cores_layer, n_in]
    cd = chip_dist(cores, src_core) if chip_dist is not None else np.zeros_like(dist)
    dist = dist - cd
    hops = (dist * reach).sum(axis=0)
    packets = reach.sum(axis=0)
    local = (reach & (dist == 0) & (cd == 0)).sum(axis=0)
    max_dist = (dist * reach).max(axis=0) if reach.size else np.zeros(syn.n_in, dtype=np.int64)
    return cores, syn_per_core, hops, packets, local, max_dist, dist
