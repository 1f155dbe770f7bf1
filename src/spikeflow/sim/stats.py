"""Spike-train statistics used to compare simulators."""

from __future__ import annotations

import numpy as np


def mean_rate(indices, n_neurons: int, duration: float) -> float:
    """Mean firing rate in Hz over all ``n_neurons``."""
    return float(np.asarray(indices).size) / (n_neurons * duration)


def cv_isi(indices, times, min_spikes: int = 3) -> float:
    """Mean over neurons with >= ``min_spikes`` spikes of std(ISI)/mean(ISI) (population CV)."""
    idx = np.asarray(indices, dtype=np.int64)
    t = np.asarray(times, dtype=np.float64)
    if idx.size == 0:
        return float("nan")
    order = np.lexsort((t, idx))
    idx, t = idx[order], t[order]
    same = idx[1:] == idx[:-1]
    isi = np.diff(t)[same]
    owner = idx[1:][same]
    counts = np.bincount(owner)
    ok = np.flatnonzero(counts >= min_spikes - 1)
    if ok.size == 0:
        return float("nan")
    s1 = np.bincount(owner, isi)
    s2 = np.bincount(owner, isi * isi)
    m = s1[ok] / counts[ok]
    var = np.maximum(s2[ok] / counts[ok] - m * m, 0.0)
    return float(np.mean(np.sqrt(var) / m))
