"""Cross-entropy on output spike counts, with its gradient, in one compiled call.

``spikeflow.train.TrainStep`` computes the ``ce_count`` loss between the fused pair's forward and
backward kernels. As a dozen numpy or torch operators on ``[B, C]`` arrays, each call would touch
interpreter and library state that the kernels have just pushed out of the caches; one compiled call
touches the arrays only.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True)
def count_cross_entropy(out, labels, g_out):
    """``F.cross_entropy(out.sum(0), labels)`` (the batch mean) for spikes ``out [T, B, C]`` and class
    indices ``labels [B]``; writes its gradient with respect to ``out`` into ``g_out [T, B, C]``: at
    every step ``(softmax(counts) - onehot(labels)) / B``. Counts, exponentials and the loss in float64.
    Returns -1 (and writes nothing) when a label is not a class index in ``[0, C)``."""
    n_steps, n_batch, n_classes = out.shape
    for b in range(n_batch):
        if labels[b] < 0 or labels[b] >= n_classes:
            return -1.0
    counts = np.zeros((n_batch, n_classes))
    for t in range(n_steps):
        for b in range(n_batch):
            for c in range(n_classes):
                counts[b, c] += out[t, b, c]
    grad = np.empty((n_batch, n_classes), out.dtype)
    loss = 0.0
    for b in range(n_batch):
        top = counts[b].max()
        total = 0.0
        for c in range(n_classes):
            total += math.exp(counts[b, c] - top)
        loss += math.log(total) - (counts[b, labels[b]] - top)
        for c in range(n_classes):
            grad[b, c] = (math.exp(counts[b, c] - top) / total - (1.0 if c == labels[b] else 0.0)) / n_batch
    for t in range(n_steps):
        g_out[t] = grad
    return loss / n_batch
