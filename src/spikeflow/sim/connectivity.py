"""Connectivity rules, built straight into a compressed row (CSR) layout by source.

Each rule generates only the synapses whose targets a process owns (``[lo, hi)`` of the
target population), in O(synapses) time and memory: a row pointer per source (int64)
and an int32 target index per synapse. Random rules draw from the counter-based
generator in :mod:`spikeflow.sim.rng`, keyed by global indices, so every process builds
the same network as a single process would.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.sim import rng


class Rule(abc.ABC):
    """A connectivity rule; ``build`` returns ``(indptr, indices, perm)``."""

    name = "rule"

    def check(self, n_src: int, n_tgt: int, where: str) -> None:
        """Raise ``ConfigError`` (naming ``where``) for invalid rule parameters; the default accepts all."""
        return None

    @abc.abstractmethod
    def expected_synapses(self, n_src: int, n_tgt: int) -> float:
        """An upper estimate of the synapse count, checked against memory before building."""

    @abc.abstractmethod
    def build(self, n_src, n_tgt, lo, hi, seed):
        """The CSR of the targets in ``[lo, hi)`` for every source."""


def _count_then_fill(rows_kernel, n_src, *args):
    """Run a two-pass row kernel: count each source's synapses, then fill the CSR indices."""
    counts = rows_kernel(*args, np.zeros(n_src + 1, np.int64), np.zeros(0, np.int32), True)
    indptr = np.zeros(n_src + 1, np.int64)
    np.cumsum(counts[:n_src], out=indptr[1:])
    indices = np.empty(int(indptr[-1]), np.int32)
    rows_kernel(*args, indptr, indices, False)
    return indptr, indices, None


@dataclass
class FixedProbability(Rule):
    """Each (source, target) pair is connected independently with probability ``p``."""

    p: float
    name = "fixed_probability"

    def check(self, n_src, n_tgt, where):
        if not isinstance(self.p, (int, float)) or not (0.0 <= float(self.p) <= 1.0) or math.isnan(self.p):
            raise ConfigError(f"{where}: connection probability 'p' must be in [0, 1], got {self.p!r}")

    def expected_synapses(self, n_src, n_tgt):
        return n_src * n_tgt * float(self.p) + 6.0 * math.sqrt(max(n_src * n_tgt * self.p, 1.0))

    def build(self, n_src, n_tgt, lo, hi, seed):
        p = float(self.p)
        if p <= 0.0:
            return np.zeros(n_src + 1, np.int64), np.zeros(0, np.int32), None
        return _count_then_fill(_prob_rows, n_src, seed, n_src, n_tgt, lo, hi, p)


@dataclass
class FixedOutDegree(Rule):
    """Each source connects to exactly ``k`` distinct targets."""

    k: int
    name = "fixed_outdegree"

    def check(self, n_src, n_tgt, where):
        if int(self.k) != self.k or not (0 <= self.k <= n_tgt):
            raise ConfigError(f"{where}: out-degree 'k' must be an integer in [0, {n_tgt}], got {self.k!r}")

    def expected_synapses(self, n_src, n_tgt):
        return float(n_src) * self.k

    def build(self, n_src, n_tgt, lo, hi, seed):
        return _count_then_fill(_degree_rows, n_src, seed, n_src, n_tgt, int(self.k), lo, hi)


@dataclass
class FixedInDegree(Rule):
    """Each target receives exactly ``k`` distinct sources."""

    k: int
    name = "fixed_indegree"

    def check(self, n_src, n_tgt, where):
        if int(self.k) != self.k or not (0 <= self.k <= n_src):
            raise ConfigError(f"{where}: in-degree 'k' must be an integer in [0, {n_src}], got {self.k!r}")

    def expected_synapses(self, n_src, n_tgt):
        return float(n_tgt) * self.k

    def build(self, n_src, n_tgt, lo, hi, seed):
        # Sample each local target's sources (keyed by the target), then sort by source.
        src, tgt = _indegree_pairs(seed, n_src, int(self.k), lo, hi)
        return _csr_from_pairs(src, tgt, n_src)


class OneToOne(Rule):
    """Source ``i`` connects to target ``i`` (populations of equal size)."""

    name = "one_to_one"

    def check(self, n_src, n_tgt, where):
        if n_src != n_tgt:
            raise ConfigError(f"{where}: one_to_one needs populations of equal size, got {n_src} and {n_tgt}")

    def expected_synapses(self, n_src, n_tgt):
        return float(n_src)

    def build(self, n_src, n_tgt, lo, hi, seed):
        indptr = np.zeros(n_src + 1, np.int64)
        indptr[lo + 1 : hi + 1] = 1
        np.cumsum(indptr, out=indptr)
        return indptr, np.arange(0, hi - lo, dtype=np.int32), None


class FromArrays(Rule):
    """Explicit ``(sources[i], targets[i])`` pairs; per-synapse weights/delays follow them."""

    name = "from_arrays"

    def __init__(self, sources, targets):
        self.sources = np.asarray(sources)
        self.targets = np.asarray(targets)

    def check(self, n_src, n_tgt, where):
        s, t = self.sources, self.targets
        if s.ndim != 1 or t.ndim != 1 or s.shape != t.shape:
            raise ConfigError(f"{where}: 'sources' and 'targets' must be 1-D arrays of equal length, "
                              f"got shapes {s.shape} and {t.shape}")
        if s.size and (not np.issubdtype(s.dtype, np.integer) or not np.issubdtype(t.dtype, np.integer)):
            raise ConfigError(f"{where}: 'sources' and 'targets' must be integer arrays, got {s.dtype}, {t.dtype}")
        if s.size and (s.min() < 0 or s.max() >= n_src):
            raise ConfigError(f"{where}: 'sources' must lie in [0, {n_src}), got [{s.min()}, {s.max()}]")
        if t.size and (t.min() < 0 or t.max() >= n_tgt):
            raise ConfigError(f"{where}: 'targets' must lie in [0, {n_tgt}), got [{t.min()}, {t.max()}]")

    def expected_synapses(self, n_src, n_tgt):
        return float(self.sources.size)

    def build(self, n_src, n_tgt, lo, hi, seed):
        keep = np.flatnonzero((self.targets >= lo) & (self.targets < hi))
        src = self.sources[keep].astype(np.int64)
        order = np.argsort(src, kind="stable")
        indptr = np.zeros(n_src + 1, np.int64)
        np.cumsum(np.bincount(src, minlength=n_src), out=indptr[1:])
        indices = (self.targets[keep][order] - lo).astype(np.int32)
        return indptr, indices, keep[order]


def _csr_from_pairs(src, tgt, n_src):
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n_src + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_src), out=indptr[1:])
    return indptr, tgt[order].astype(np.int32), None


@nb.njit(parallel=True, cache=True)
def _prob_rows(seed, n_src, n_tgt, lo, hi, p, indptr, indices, count_only):
    """Geometric skipping over each row: O(synapses), targets come out sorted."""
    counts = np.zeros(n_src + 1, np.int64)
    log_q = math.log1p(-p) if p < 1.0 else -np.inf
    for i in nb.prange(n_src):
        k = rng.key(seed, rng.STREAM_CONNECT, i, 0)
        pos = indptr[i]
        j = -1
        c = 0
        while True:
            if p >= 1.0:
                j += 1
            else:
                u = rng.uniform(k, c)
                c += 1
                j += 1 + int(math.floor(math.log1p(-u) / log_q))
            if j >= n_tgt or j >= hi:
                break
            if j >= lo:
                if count_only:
                    counts[i] += 1
                else:
                    indices[pos] = j - lo
                    pos += 1
    return counts


@nb.njit(inline="always")
def _sample_distinct(k_rng, n, k, buf):
    """``k`` distinct sorted integers in [0, n) into ``buf[:k]``."""
    if 2 * k > n:  # partial Fisher-Yates over the whole range
        pool = np.arange(n)
        for a in range(k):
            b = a + int(rng.uniform(k_rng, a) * (n - a))
            pool[a], pool[b] = pool[b], pool[a]
        buf[:k] = np.sort(pool[:k])
        return
    c = 0
    for a in range(k):
        buf[a] = int(rng.uniform(k_rng, c) * n)
        c += 1
    while True:
        buf[:k] = np.sort(buf[:k])
        dup = False
        for a in range(1, k):
            if buf[a] == buf[a - 1]:
                buf[a] = int(rng.uniform(k_rng, c) * n)
                c += 1
                dup = True
        if not dup:
            return


@nb.njit(parallel=True, cache=True)
def _degree_rows(seed, n_src, n_tgt, k, lo, hi, indptr, indices, count_only):
    counts = np.zeros(n_src + 1, np.int64)
    for i in nb.prange(n_src):
        buf = np.empty(max(k, 1), np.int64)
        _sample_distinct(rng.key(seed, rng.STREAM_CONNECT, i, 1), n_tgt, k, buf)
        pos = indptr[i]
        for a in range(k):
            j = buf[a]
            if lo <= j < hi:
                if count_only:
                    counts[i] += 1
                else:
                    indices[pos] = j - lo
                    pos += 1
    return counts


@nb.njit(parallel=True, cache=True)
def _indegree_pairs(seed, n_src, k, lo, hi):
    n = hi - lo
    src = np.empty(n * k, np.int64)
    tgt = np.empty(n * k, np.int64)
    for a in nb.prange(n):
        buf = np.empty(max(k, 1), np.int64)
        _sample_distinct(rng.key(seed, rng.STREAM_CONNECT, lo + a, 2), n_src, k, buf)
        for b in range(k):
            src[a * k + b] = buf[b]
            tgt[a * k + b] = a
    return src, tgt
