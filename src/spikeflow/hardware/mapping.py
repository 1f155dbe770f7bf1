"""Neuron-to-core mapping and placement on a 2D mesh.

Greedy, layer by layer: each layer starts on a fresh core and fills it in
neuron order while the core's neuron count, distinct input axons and synapse
memory stay within the profile; neighbouring neurons of a conv layer share most
inputs, so in-order filling keeps connected neurons together. Cores are placed
on the mesh in boustrophedon (snake) order so consecutive cores, and hence
consecutive layers, are mesh neighbours. Input spikes enter through a port just
west of core (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from spikeflow.hardware.profiles import ChipProfile

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


def greedy_cores(mask: np.ndarray, profile: ChipProfile) -> List[np.ndarray]:
    """Split neurons (rows of the nonzero ``mask [n_out, n_in]``) into cores; returns neuron index arrays."""
    groups, start = [], 0
    n_out = mask.shape[0]
    fan_in = mask.sum(axis=1)
    while start < n_out:
        used = np.zeros(mask.shape[1], dtype=bool)
        syn, j = 0, start
        while j < n_out and j - start < profile.neurons_per_core:
            new_used = used | mask[j]
            if j > start:
                if profile.axons_per_core is not None and new_used.sum() > profile.axons_per_core:
                    break
                if profile.synapses_per_core is not None and syn + fan_in[j] > profile.synapses_per_core:
                    break
            used, syn, j = new_used, syn + int(fan_in[j]), j + 1
        groups.append(np.arange(start, j))
        start = j
    return groups


def place(n_cores: int, profile: ChipProfile) -> np.ndarray:
    return np.array([snake_position(c, profile.mesh[1]) for c in range(n_cores)], dtype=np.int64).reshape(-1, 2)


def layer_routes(mask: np.ndarray, core_of: np.ndarray, src_core: np.ndarray, positions: np.ndarray,
                 chip_dist=None):
    """Per source: packets, hops, local deliveries and longest route (one packet per destination core).

    ``chip_dist(cores, src_core)`` (multi-chip boards) gives the chip-to-chip links of each route; they are
    taken out of the mesh hops (a link is not a mesh hop).
    """
    cores = np.unique(core_of)
    syn_per_core = np.stack([mask[core_of == c].sum(axis=0) for c in cores]).astype(np.int64)
    reach = syn_per_core > 0  # [n_cores_layer, n_in]
    dest = positions[cores]  # [n_cores_layer, 2]
    src_pos = np.where(src_core[:, None] >= 0, positions[np.maximum(src_core, 0)], np.array(INPUT_PORT))
    dist = np.abs(src_pos[None, :, :] - dest[:, None, :]).sum(axis=2)  # [n_cores_layer, n_in]
    cd = chip_dist(cores, src_core) if chip_dist is not None else np.zeros_like(dist)
    dist = dist - cd
    hops = (dist * reach).sum(axis=0)
    packets = reach.sum(axis=0)
    local = (reach & (dist == 0) & (cd == 0)).sum(axis=0)
    max_dist = (dist * reach).max(axis=0) if reach.size else np.zeros(mask.shape[1], dtype=np.int64)
    return cores, syn_per_core, hops, packets, local, max_dist, dist
