"""Synapses between two neuron layers, stored the way a chip stores them.

``DenseSynapse`` holds a matrix ``weight [n_out, n_in]``; ``ConvSynapse`` holds a
kernel ``[C_out, C_in / groups, kh, kw]`` with its stride, padding and dilation and
never builds the matrix: applying it, its fan-in and fan-out, the inputs of each
neuron (for core mapping) and the statistics quantisation needs all come from the
kernel geometry. Both forms behave as the same linear map, so a conv layer costs
memory in proportion to its kernel, not to ``n_out x n_in``.

Values may be float (a ``FloatLayer``) or integer (an ``IntLayer``); ``apply`` on
integer inputs and integer weights is exact (float64 sums of small integers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Tuple

import numpy as np
import torch

from spikeflow.errors import NIRError

DENSE_FALLBACK_MAX = 1 << 24  # entries: a kernel layer is made a matrix (when it must be) only up to 128 MB


class Synapse:
    """Interface shared by ``DenseSynapse`` and ``ConvSynapse``."""

    n_in: int
    n_out: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Synaptic input ``[B, n_out]`` (float64) from presynaptic activity ``x [B, n_in]``."""
        raise NotImplementedError

    def count(self, x: np.ndarray) -> np.ndarray:
        """Events received per neuron ``[B, n_out]``: ``x`` through the nonzero pattern (all weights 1)."""
        return self.nonzero().apply(x)

    def nonzero(self) -> Synapse:
        """The same synapse with every nonzero weight set to 1."""
        return self.map(lambda w: (w != 0).astype(np.float64))

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Synapse:
        """Apply an elementwise ``fn`` with ``fn(0) == 0`` to the stored weights (quantisation)."""
        raise NotImplementedError

    def scale_rows(self, g: np.ndarray) -> Synapse:
        """Weights of output neuron ``o`` multiplied by ``g[o]``."""
        raise NotImplementedError

    def values(self) -> Tuple[np.ndarray, np.ndarray | None]:
        """The stored weights (flat) and how many synapses of the dense equivalent each one is
        (``None``: one each); statistics over the dense matrix are weighted by these counts."""
        raise NotImplementedError

    def fan_in(self) -> np.ndarray:
        """Nonzero synapses per output neuron ``[n_out]`` (int64)."""
        return np.rint(self.count(np.ones((1, self.n_in)))[0]).astype(np.int64)

    def fan_out(self) -> np.ndarray:
        """Nonzero synapses per input ``[n_in]`` (int64)."""
        raise NotImplementedError

    def nnz(self) -> int:
        """Nonzero synapses in all (entries of the dense equivalent that are not zero)."""
        return int(self.fan_in().sum())

    def rows(self) -> np.ndarray:
        """Inputs with a nonzero synapse to each output neuron: ``[n_out, max fan-in]`` int64, padded with -1."""
        raise NotImplementedError

    def macs(self) -> int:
        """Multiply-accumulates of one dense (clock-driven) pass."""
        raise NotImplementedError

    def dense(self) -> np.ndarray:
        """The dense matrix ``[n_out, n_in]`` (small layers: tests, reports)."""
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        raise NotImplementedError


@dataclass
class DenseSynapse(Synapse):
    """A synapse stored as its full matrix ``weight [n_out, n_in]`` (linear layers, small folded chains)."""

    weight: np.ndarray  # [n_out, n_in]

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    def apply(self, x):
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_in)
        if np.issubdtype(self.weight.dtype, np.integer):
            from scipy import sparse  # event-driven: work ~ events x fan-out
            return np.asarray(sparse.csr_matrix(x) @ self.weight.T.astype(np.float64))
        return x @ self.weight.T

    def map(self, fn):
        return DenseSynapse(fn(self.weight))

    def scale_rows(self, g):
        return DenseSynapse(np.asarray(g, dtype=np.float64)[:, None] * self.weight)

    def values(self):
        return self.weight.ravel(), None

    def fan_in(self):
        return (self.weight != 0).sum(axis=1).astype(np.int64)

    def fan_out(self):
        return (self.weight != 0).sum(axis=0).astype(np.int64)

    def rows(self):
        mask = self.weight != 0
        fan = mask.sum(axis=1)
        out = np.full((self.n_out, int(fan.max()) if fan.size else 0), -1, dtype=np.int64)
        r, c = np.nonzero(mask)
        pos = np.arange(r.size) - np.repeat(np.cumsum(fan) - fan, fan)
        out[r, pos] = c
        return out

    def macs(self):
        return int(self.weight.size)

    def dense(self):
        return self.weight

    @property
    def nbytes(self):
        return int(self.weight.nbytes)


def _axis_taps(size_in: int, size_out: int, k: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """``[k, size_out]`` input coordinate of tap ``j`` for output ``o`` (-1 where it falls in the padding)."""
    pos = np.arange(size_out)[None, :] * stride - pad + np.arange(k)[:, None] * dil
    return np.where((pos >= 0) & (pos < size_in), pos, -1)


@dataclass
class ConvSynapse(Synapse):
    """A 2D convolution (cross-correlation, as torch and NIR) from ``in_shape (C, H, W)`` to
    ``out_shape (C_out, OH, OW)``; neurons are numbered channel-major (C, H, W) on both sides."""
    kernel: np.ndarray  # [C_out, C_in / groups, kh, kw]
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        self.in_shape = tuple(int(v) for v in self.in_shape)
        self.out_shape = tuple(int(v) for v in self.out_shape)
        self.stride, self.padding, self.dilation = (tuple(int(v) for v in p) for p in
                                                    (self.stride, self.padding, self.dilation))
        c, h, w = self.in_shape
        expect = (self.kernel.shape[0],) + tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
            zip((h, w), self.kernel.shape[2:], self.stride, self.padding, self.dilation))
        if expect != self.out_shape or self.kernel.shape[1] * self.groups != c:
            raise ValueError(f"conv synapse: kernel {self.kernel.shape} (groups {self.groups}) maps {self.in_shape} "
                             f"to {expect}, not {self.out_shape}")

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def _conv(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1, *self.in_shape))
        k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float64))
        y = torch.nn.functional.conv2d(x, k, None, self.stride, self.padding, self.dilation, self.groups)
        return y.reshape(x.shape[0], -1).numpy()

    def apply(self, x):
        return self._conv(x, self.kernel)

    def map(self, fn):
        return replace(self, kernel=fn(self.kernel))

    def scale_rows(self, g):
        g = np.asarray(g, dtype=np.float64).reshape(self.out_shape[0], -1)
        if np.all(g == g[:, :1]):  # one factor per output channel: still a convolution
            return replace(self, kernel=self.kernel * g[:, 0].reshape(-1, 1, 1, 1))
        if self.n_out * self.n_in > DENSE_FALLBACK_MAX:
            raise NIRError(f"hardware: a {self.n_out} x {self.n_in} convolution whose neurons differ in gain within "
                           "a channel (per-position tau or r) is no convolution on chip; give each output channel "
                           "one set of neuron parameters")
        return DenseSynapse(g.reshape(-1)[:, None] * self.dense())  # per-position factors break weight sharing

    def tap_counts(self) -> np.ndarray:
        """``[kh, kw]``: output positions at which each kernel tap reads a real input (not padding)."""
        (_, h, w), (_, oh, ow) = self.in_shape, self.out_shape
        kh, kw = self.kernel.shape[2:]
        ty = (_axis_taps(h, oh, kh, self.stride[0], self.padding[0], self.dilation[0]) >= 0).sum(axis=1)
        tx = (_axis_taps(w, ow, kw, self.stride[1], self.padding[1], self.dilation[1]) >= 0).sum(axis=1)
        return np.outer(ty, tx).astype(np.int64)

    def values(self):
        counts = np.broadcast_to(self.tap_counts(), self.kernel.shape)
        return self.kernel.ravel(), counts.ravel()

    def fan_in(self):
        return np.rint(self._conv(np.ones((1, self.n_in)), (self.kernel != 0).astype(np.float64))[0]).astype(np.int64)

    def fan_out(self):
        # Column sums of the nonzero pattern: the transposed convolution of an all-ones output.
        c, h, w = self.in_shape
        ones = torch.ones((1, *self.out_shape), dtype=torch.float64)
        nz = torch.from_numpy((self.kernel != 0).astype(np.float64))
        # Unpadded transpose covers input positions -padding ..; cut (or zero-extend) to the input size.
        y = torch.nn.functional.conv_transpose2d(ones, nz, None, self.stride, 0, 0, self.groups, self.dilation)
        (py, px), (fy, fx) = self.padding, y.shape[2:]
        y = torch.nn.functional.pad(y, (0, max(0, px + w - fx), 0, max(0, py + h - fy)))[:, :, py:py + h, px:px + w]
        return np.rint(y.reshape(-1).numpy()).astype(np.int64)

    def rows(self):
        c, h, w = self.in_shape
        co_n, oh, ow = self.out_shape
        kh, kw = self.kernel.shape[2:]
        cig = self.kernel.shape[1]
        ty = _axis_taps(h, oh, kh, self.stride[0], self.padding[0], self.dilation[0])  # [kh, oh]
        tx = _axis_taps(w, ow, kw, self.stride[1], self.padding[1], self.dilation[1])  # [kw, ow]
        per_co = []
        for co in range(co_n):
            ci, ky, kx = np.nonzero(self.kernel[co])
            ci = ci + (co // (co_n // self.groups)) * cig
            iy, ix = ty[ky][:, :, None], tx[kx][:, None, :]  # [taps, oh, 1], [taps, 1, ow]
            idx = np.where((iy >= 0) & (ix >= 0), ci[:, None, None] * (h * w) + iy * w + ix, -1)
            per_co.append(idx.reshape(len(ci), oh * ow).T)  # [oh*ow, taps]
        width = max((a.shape[1] for a in per_co), default=0)
        out = np.full((self.n_out, width), -1, dtype=np.int64)
        for co, a in enumerate(per_co):
            out[co * oh * ow:(co + 1) * oh * ow, :a.shape[1]] = a
        # Move each row's real inputs to the front (padding taps become -1 at the end).
        order = np.argsort(out < 0, axis=1, kind="stable")
        return np.take_along_axis(out, order, axis=1)

    def macs(self):
        return self.n_out * int(np.prod(self.kernel.shape[1:]))

    def dense(self):
        return self._conv(np.eye(self.n_in), self.kernel).T.copy()

    @property
    def nbytes(self):
        return int(self.kernel.nbytes)

