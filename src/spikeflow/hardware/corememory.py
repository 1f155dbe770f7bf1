"""Per-core memory of chips whose cores each hold one whole layer and differ in size (DYNAP-CNN / Speck).

A layer needs neuron-state and kernel memory words, rounded up to powers of two along each
dimension as SynSense's sinabs documents for ``DynapcnnLayer.memory_summary``:

    kernel words = c_in * 2**(ceil(log2(k_y * k_x)) + ceil(log2(c_out)))
    neuron words = c_out * 2**(ceil(log2(out_y)) + ceil(log2(out_x)))

and the layers must be given distinct cores that hold both (a bipartite matching, as sinabs'
``chip_layers_ordering="auto"`` finds one).
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np


def _pow2_bits(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def layer_memory(layer) -> Tuple[int, int]:
    """``(neuron words, kernel words)`` a ``FloatLayer`` needs on a DYNAP-CNN core."""
    shape = tuple(int(s) for s in (layer.out_shape or (layer.n_out,)))
    c_out, out_y, out_x = (shape + (1, 1))[:3] if len(shape) < 3 else shape[-3:]
    if layer.conv is not None:
        c_in, (ky, kx), c_out_k = layer.conv.in_channels, layer.conv.kernel, layer.conv.out_channels
    else:  # no convolution (pooling only): each output channel reads its own input channel over its fan-in
        fan = layer.syn.fan_in()
        fan_in = int(fan.max()) if fan.size else 1
        c_in, ky, kx, c_out_k = c_out, max(fan_in, 1), 1, c_out
    kernel = c_in * 2 ** (_pow2_bits(ky * kx) + _pow2_bits(c_out_k))
    neurons = c_out * 2 ** (_pow2_bits(out_y) + _pow2_bits(out_x))
    return int(neurons), int(kernel)


def fits(need: Tuple[int, int], neuron_mem: Sequence[int], kernel_mem: Sequence[int]) -> np.ndarray:
    """Boolean per core: does the core hold a layer needing ``(neurons, kernel)`` words?"""
    return (np.asarray(neuron_mem) >= need[0]) & (np.asarray(kernel_mem) >= need[1])


def assign_cores(needs: List[Tuple[int, int]], neuron_mem: Sequence[int], kernel_mem: Sequence[int]):
    """A distinct core per layer that holds it (augmenting-path matching), or ``None`` if there is none."""
    ok = [np.flatnonzero(fits(n, neuron_mem, kernel_mem)) for n in needs]
    owner = {}  # core -> layer

    def place(i, seen):
        for c in ok[i]:
            if c in seen:
                continue
            seen.add(c)
            if c not in owner or place(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(needs)):
        if not place(i, set()):
            return None
    core_of = [0] * len(needs)
    for c, i in owner.items():
        core_of[i] = int(c)
    return core_of
