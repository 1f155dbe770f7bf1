"""Fused spike-driven Linear + LIF (numba, CPU): the synaptic current is never materialised.

Forward, one kernel over all T, each thread taking a range of samples time-major: for each
``(t, b)`` the active (non-zero) inputs are gathered and their weight rows (weights laid out
``[in, out]``) added to the bias (four rows per pass), then the LIF step of
``spikeflow.neurons.lif`` runs in place on that current:

    h = (v_leak + (v - v_leak) * a) + (r * I) * c      # a = exp(-dt / tau_mem), c = 1 - a
    z = h - v_threshold > 0;  v' = reset(h, z)

When a gradient is asked for, the input is first compressed (``compress``: the active entries
of each row, kept for the backward instead of the dense input) and the forward keeps only the
membrane before reset ``h`` (one float per neuron-step; the spike is recomputed from it).
Without one, ``forward_scan`` finds each row's active inputs itself and keeps nothing. The backward is one reverse
pass over T: the surrogate-gradient LIF backward gives ``dL/dI_t``, which is at once added to
the weight gradient over the active inputs of step ``t`` (one buffer per thread, summed at the
end), to the bias gradient and, only when the input needs a gradient, stored so that
``dL/dx = dL/dI @ W`` is one dense matmul. Parameter gradients (``tau_mem`` through ``a`` and
``c``, ``v_threshold``, ``v_leak``, ``v_reset``, ``r``) are accumulated only when asked for.

Scope: the LIF model without a refractory period and without a membrane trace output, one
value per parameter or one per output neuron, float32/float64 CPU tensors. ``unsupported_reason``
says why a call is outside it; callers then use the unfused path.
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import NamedTuple

import numba as nb
import numpy as np
import torch

from spikeflow.errors import InputError
from spikeflow.kernels import synapse
from spikeflow.kernels.borrow import borrow, keep
from spikeflow.kernels.cpu import RESET_CODES, _one, _sg_typed, set_threads
from spikeflow.kernels.fused import _surrogate_code
from spikeflow.kernels.simd import (
    append_nonzero_checked,
    lanes,
    prefetch_row,
    vabs,
    vadd,
    vadd_rows,
    vdiv,
    vload,
    vload2,
    vload_rows,
    vmul,
    vneg,
    vselect_gt,
    vsplat,
    vstore,
    vstore2,
    vstore_rows,
    vsub,
    vtranspose,
)

PARAMS = ("a", "c", "r", "vl", "th", "vr")  # the per-neuron vectors, in the kernels' argument order
SPIKE_DTYPES = (torch.bool, torch.uint8)  # input the fused pair reads as it is: spikes (or counts) as bytes
A, C, R, VL, TH, VR = range(6)
SEGMENT = 32  # steps between the membrane checkpoints of the recompute mode
# "auto" recompute: when keeping the membrane of every step would take more than this many bytes
RECOMPUTE_ABOVE_BYTES = 4 << 20


class Events(NamedTuple):
    """The active entries of an input ``[T, B, in]``: row ``r = t * B + b``'s input positions are
    ``indices[lo[r]:hi[r]]`` (``compress``'s rows one after the other, or each thread's own region
    of a buffer, as ``linear_lif_pair`` writes them)."""

    lo: np.ndarray
    hi: np.ndarray
    indices: np.ndarray
    values: np.ndarray  # empty when every active entry is 1


class Config(NamedTuple):
    reset_mode: int
    detach: bool
    sg_kind: int
    sg_scale: float
    layer: str  # the layer's name, for error messages
    recompute: bool  # keep the membrane every SEGMENT steps and recompute it in the backward


@nb.njit(parallel=True, cache=True)
def compress(x):
    """Active entries of each row of ``x [rows, n_in]``: ``(indptr, indices, values, finite)``.

    ``values`` is empty when every active entry is 1 (binary spikes). Two streaming passes over
    ``x``: count, then a branch-free gather of each row into a small buffer, copied to the row's
    place; finiteness is checked on the active entries only (``v * 0`` is NaN for NaN/inf).
    """
    rows, n_in = x.shape
    counts = np.zeros(rows + 1, np.int64)
    for r in nb.prange(rows):
        c = 0
        for i in range(n_in):
            c += x[r, i] != 0  # NaN and inf count as active: they are checked below
        counts[r + 1] = c
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[rows], np.int32)
    values = np.empty(indptr[rows], x.dtype)
    bad = np.zeros(rows, np.bool_)
    non_binary = np.zeros(rows, np.bool_)
    n_chunks = min(rows, 64)
    for ch in nb.prange(n_chunks):
        buf = np.empty(n_in + 1, np.int32)
        for r in range(ch * rows // n_chunks, (ch + 1) * rows // n_chunks):
            xr = x[r]
            m = 0
            for i in range(n_in):
                buf[m] = i
                m += xr[i] != 0
            k0 = indptr[r]
            nbin = False
            z = xr[0] * 0
            for k in range(m):
                v = xr[buf[k]]
                indices[k0 + k] = buf[k]
                values[k0 + k] = v
                nbin |= v != 1
                z += v * 0
            bad[r] = z != z
            non_binary[r] = nbin
    if not non_binary.any():
        values = np.empty(0, x.dtype)
    return indptr, indices, values, not bad.any()


@nb.njit(parallel=True, cache=True)
def compress32(x):
    """``compress`` for float32 in one pass over ``x``: the positions of each row's active entries
    are found 16 at a time from the bit patterns (``simd.append_nonzero_checked``) into the
    chunk's own region of a scratch buffer (touched only where written), then packed (W1's
    3200 x 700 input 1.7 -> 0.6 ms). ``-0.0`` is inactive, NaN and inf active (then reported)."""
    rows, n_in = x.shape
    n_chunks = min(rows, 64)
    scratch = np.empty(rows * n_in, np.int32)
    counts = np.zeros(rows + 1, np.int64)
    bad = np.zeros(rows, np.bool_)
    non_binary = np.zeros(rows, np.bool_)
    for ch in nb.prange(n_chunks):
        r0 = ch * rows // n_chunks
        m = r0 * n_in
        for r in range(r0, (ch + 1) * rows // n_chunks):
            m0 = m
            m, binary, finite = append_nonzero_checked(x[r], scratch, m, np.float32(1))
            if not finite:  # flags written only where set: a store of each costs more than the test
                bad[r] = True
            if not binary:
                non_binary[r] = True
            counts[r + 1] = m - m0
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[rows], np.int32)
    for ch in nb.prange(n_chunks):
        r0 = ch * rows // n_chunks
        r1 = (ch + 1) * rows // n_chunks
        indices[indptr[r0]:indptr[r1]] = scratch[r0 * n_in:r0 * n_in + indptr[r1] - indptr[r0]]
    if non_binary.any():
        values = np.empty(indptr[rows], x.dtype)
        for r in nb.prange(rows):
            for k in range(indptr[r], indptr[r + 1]):
                values[k] = x[r, indices[k]]
    else:
        values = np.empty(0, x.dtype)
    return indptr, indices, values, not bad.any()


def compress_input(x: torch.Tensor, layer: str) -> Events:
    """``compress`` of ``x [..., in]`` (CPU float32/float64); ``InputError`` naming ``layer`` for NaN/inf."""
    x2 = x.detach().reshape(-1, x.shape[-1]).contiguous()
    indptr, indices, values, finite = (compress32 if x2.dtype == torch.float32 else compress)(x2.numpy())
    if not finite:
        raise InputError(f"{layer}: input contains NaN or inf values")
    return Events(indptr[:-1], indptr[1:], indices, values)


@nb.njit(inline="always")
def _add8(acc, rows, r, j, lw, values, q):
    """The 8 vectors ``acc`` plus ``rows[r, j : j + 8 lw]``, times ``values[q]`` unless ``values``
    is empty (binary input): the register tile of the forward's sums and the weight gradient's."""
    w0, w1 = vload2(rows, r, j), vload2(rows, r, j + lw)
    w2, w3 = vload2(rows, r, j + 2 * lw), vload2(rows, r, j + 3 * lw)
    w4, w5 = vload2(rows, r, j + 4 * lw), vload2(rows, r, j + 5 * lw)
    w6, w7 = vload2(rows, r, j + 6 * lw), vload2(rows, r, j + 7 * lw)
    if values.shape[0] > 0:
        s = vsplat(values[q])
        w0, w1, w2, w3 = vmul(s, w0), vmul(s, w1), vmul(s, w2), vmul(s, w3)
        w4, w5, w6, w7 = vmul(s, w4), vmul(s, w5), vmul(s, w6), vmul(s, w7)
    return (vadd(acc[0], w0), vadd(acc[1], w1), vadd(acc[2], w2), vadd(acc[3], w3),
            vadd(acc[4], w4), vadd(acc[5], w5), vadd(acc[6], w6), vadd(acc[7], w7))


@nb.njit(inline="always")
def _load8(v, j, lw):
    """``v[j : j + 8 lw]`` (1-D) as 8 vectors."""
    return (vload(v, j), vload(v, j + lw), vload(v, j + 2 * lw), vload(v, j + 3 * lw),
            vload(v, j + 4 * lw), vload(v, j + 5 * lw), vload(v, j + 6 * lw), vload(v, j + 7 * lw))


@nb.njit(inline="always")
def _store8(v, j, lw, acc):
    """``v[j : j + 8 lw] = acc`` (1-D)."""
    for k in nb.literal_unroll((0, 1, 2, 3, 4, 5, 6, 7)):
        vstore(v, j + k * lw, acc[k])


@nb.njit(inline="always")
def _tile8(indices, values, k, k1, wt, bias, cur, j, lw):
    """``cur[j : j + 8 lw] = bias + sum over the active inputs of x[i] * wt[i]``, 8 vectors held in registers."""
    acc = _load8(bias, j, lw)
    for q in range(k, k1):
        acc = _add8(acc, wt, indices[q], j, lw, values, q)
    _store8(cur, j, lw, acc)


@nb.njit(inline="always")
def _tile2(indices, values, k, k1, wt, bias, cur, j, lw):
    """``_tile8`` for two vectors (a 20-output layer padded to 32 sums in one pass over its inputs)."""
    a0, a1 = vload(bias, j), vload(bias, j + lw)
    binary = values.shape[0] == 0
    for q in range(k, k1):
        i = indices[q]
        w0, w1 = vload2(wt, i, j), vload2(wt, i, j + lw)
        if not binary:
            s = vsplat(values[q])
            w0, w1 = vmul(s, w0), vmul(s, w1)
        a0, a1 = vadd(a0, w0), vadd(a1, w1)
    vstore(cur, j, a0)
    vstore(cur, j + lw, a1)


@nb.njit(inline="always")
def _tile1(indices, values, k, k1, wt, bias, cur, j):
    """``_tile8`` for one vector."""
    a0 = vload(bias, j)
    binary = values.shape[0] == 0
    for q in range(k, k1):
        w0 = vload2(wt, indices[q], j)
        a0 = vadd(a0, w0 if binary else vmul(vsplat(values[q]), w0))
    vstore(cur, j, a0)


@nb.njit(inline="always")
def _current(indices, values, k, k1, wt, bias, cur):
    """``cur = bias + sum over active i of x[i] * wt[i]`` for the active inputs ``indices[k:k1]``
    (values ``values[k:k1]``, or all 1 when ``values`` is empty), in order of ``k``.

    Tiles of 8 vectors (128 float32 outputs), then of 2, then single vectors keep their sums in
    registers over the whole list (one weight load and one add per vector and input: W1's 700->256
    forward 2.5 -> 1.1 ms); the last outputs that fill no vector are summed in ``cur`` itself."""
    m = cur.shape[0]
    lw = lanes(wt)
    j = 0
    while j + 8 * lw <= m:
        _tile8(indices, values, k, k1, wt, bias, cur, j, lw)
        j += 8 * lw
    while j + 2 * lw <= m:
        _tile2(indices, values, k, k1, wt, bias, cur, j, lw)
        j += 2 * lw
    while j + lw <= m:
        _tile1(indices, values, k, k1, wt, bias, cur, j)
        j += lw
    if j < m:
        for jj in range(j, m):
            cur[jj] = bias[jj]
        for q in range(k, k1):
            wi = wt[indices[q]]
            if values.shape[0] == 0:
                for jj in range(j, m):
                    cur[jj] += wi[jj]
            else:
                xv = values[q]
                for jj in range(j, m):
                    cur[jj] += xv * wi[jj]


@nb.njit(inline="always")
def _scatter(indices, values, k, k1, gi, gw):
    """``gw[i] += x[i] * gi`` for the active inputs ``indices[k:k1]`` (values as in ``_current``):
    tiles of 4, then 2, then 1 vectors of ``gi`` stay in registers while the rows of ``gw`` are updated."""
    m = gi.shape[0]
    lw = lanes(gw)
    binary = values.shape[0] == 0
    j = 0
    while j + 4 * lw <= m:
        g0, g1, g2, g3 = vload(gi, j), vload(gi, j + lw), vload(gi, j + 2 * lw), vload(gi, j + 3 * lw)
        for q in range(k, k1):
            i = indices[q]
            h0, h1, h2, h3 = g0, g1, g2, g3
            if not binary:
                s = vsplat(values[q])
                h0, h1, h2, h3 = vmul(s, g0), vmul(s, g1), vmul(s, g2), vmul(s, g3)
            vstore2(gw, i, j, vadd(vload2(gw, i, j), h0))
            vstore2(gw, i, j + lw, vadd(vload2(gw, i, j + lw), h1))
            vstore2(gw, i, j + 2 * lw, vadd(vload2(gw, i, j + 2 * lw), h2))
            vstore2(gw, i, j + 3 * lw, vadd(vload2(gw, i, j + 3 * lw), h3))
        j += 4 * lw
    while j + 2 * lw <= m:
        g0, g1 = vload(gi, j), vload(gi, j + lw)
        for q in range(k, k1):
            i = indices[q]
            h0, h1 = g0, g1
            if not binary:
                s = vsplat(values[q])
                h0, h1 = vmul(s, g0), vmul(s, g1)
            vstore2(gw, i, j, vadd(vload2(gw, i, j), h0))
            vstore2(gw, i, j + lw, vadd(vload2(gw, i, j + lw), h1))
        j += 2 * lw
    while j + lw <= m:
        g0 = vload(gi, j)
        for q in range(k, k1):
            i = indices[q]
            vstore2(gw, i, j, vadd(vload2(gw, i, j), g0 if binary else vmul(vsplat(values[q]), g0)))
        j += lw
    if j < m:
        for q in range(k, k1):
            gwi = gw[indices[q]]
            if binary:
                for jj in range(j, m):
                    gwi[jj] += gi[jj]
            else:
                xv = values[q]
                for jj in range(j, m):
                    gwi[jj] += xv * gi[jj]


@nb.njit(inline="always")
def _scatter_window(lo, hi, indices, values, t_lo, t_hi, n_batch, b0, b1, gwin, gw, start, fill, ev_row, ev_val):
    """``gw[i] += x[i] * g`` over every active input of the steps ``[t_lo, t_hi)`` of samples
    ``[b0, b1)``, whose ``dL/dI`` rows are ``gwin[(t % tw) * (b1 - b0) + b - b0]``: the events are
    first bucketed by input, so each row of ``gw`` is read and written once per window while the
    window's gradient rows (a few hundred KB) are read from cache (W1's 700->256 weight gradient:
    far fewer read-modify-writes of ``gw`` than one per event)."""
    n_in = gw.shape[0]
    m = gw.shape[1]
    nbc = b1 - b0
    tw = gwin.shape[0] // nbc
    binary = values.shape[0] == 0
    start[:] = 0
    for t in range(t_lo, t_hi):
        for b in range(b0, b1):
            row = t * n_batch + b
            for q in range(lo[row], hi[row]):
                start[indices[q] + 1] += 1
    for i in range(n_in):
        start[i + 1] += start[i]
    fill[:] = start[:n_in]
    for t in range(t_lo, t_hi):
        for b in range(b0, b1):
            row = t * n_batch + b
            lr = (t % tw) * nbc + b - b0
            for q in range(lo[row], hi[row]):
                i = indices[q]
                f = fill[i]
                ev_row[f] = lr
                if not binary:
                    ev_val[f] = values[q]
                fill[i] = f + 1
    lw = lanes(gw)
    for i in range(n_in):
        e0, e1 = start[i], start[i + 1]
        if e0 == e1:
            continue
        j = 0
        while j + 8 * lw <= m:  # 8 vectors of the row at once: half the passes over the events of 4
            gwi = gw[i]
            acc = _load8(gwi, j, lw)
            for e in range(e0, e1):
                acc = _add8(acc, gwin, ev_row[e], j, lw, ev_val, e)
            _store8(gwi, j, lw, acc)
            j += 8 * lw
        while j + 4 * lw <= m:
            a0, a1 = vload2(gw, i, j), vload2(gw, i, j + lw)
            a2, a3 = vload2(gw, i, j + 2 * lw), vload2(gw, i, j + 3 * lw)
            for e in range(e0, e1):
                lr = ev_row[e]
                g0, g1 = vload2(gwin, lr, j), vload2(gwin, lr, j + lw)
                g2, g3 = vload2(gwin, lr, j + 2 * lw), vload2(gwin, lr, j + 3 * lw)
                if not binary:
                    sv = vsplat(ev_val[e])
                    g0, g1, g2, g3 = vmul(sv, g0), vmul(sv, g1), vmul(sv, g2), vmul(sv, g3)
                a0, a1, a2, a3 = vadd(a0, g0), vadd(a1, g1), vadd(a2, g2), vadd(a3, g3)
            vstore2(gw, i, j, a0)
            vstore2(gw, i, j + lw, a1)
            vstore2(gw, i, j + 2 * lw, a2)
            vstore2(gw, i, j + 3 * lw, a3)
            j += 4 * lw
        while j + lw <= m:
            a0 = vload2(gw, i, j)
            for e in range(e0, e1):
                g0 = vload2(gwin, ev_row[e], j)
                a0 = vadd(a0, g0 if binary else vmul(vsplat(ev_val[e]), g0))
            vstore2(gw, i, j, a0)
            j += lw
        if j < m:
            gwi = gw[i]
            for e in range(e0, e1):
                gr = gwin[ev_row[e]]
                if binary:
                    for jj in range(j, m):
                        gwi[jj] += gr[jj]
                else:
                    xv = ev_val[e]
                    for jj in range(j, m):
                        gwi[jj] += xv * gr[jj]


@nb.njit(inline="always")
def window_steps(nbc, seg):
    """The steps of a window of ``_scatter_window`` for a thread of ``nbc`` samples: at most 256 rows,
    a divisor of ``seg`` (W1's hidden layer 1.70 -> 1.55 ms with 8-vector tiles, against 128 rows and
    4-vector tiles)."""
    tw = 1
    while tw * 2 * nbc <= 256 and tw * 2 <= seg and seg % (tw * 2) == 0:
        tw *= 2
    return tw


@nb.njit(inline="always")
def _copy(src, dst):
    """``dst[:] = src`` for a short row: whole vectors, then the last elements one by one (numba's
    slice assignment costs more for a row this short)."""
    n = src.shape[0]
    lw = lanes(src)
    j = 0
    while j + lw <= n:
        vstore(dst, j, vload(src, j))
        j += lw
    for jj in range(j, n):
        dst[jj] = src[jj]


@nb.njit(inline="always")
def shared(x):
    """Whether the array ``x`` holds one value only (a parameter every neuron shares)."""
    for j in range(1, x.shape[0]):
        if x[j] != x[0]:
            return False
    return True


@nb.njit(inline="always")
def _lif_vectors(cur, vj, a, c, r, vl, th, vr, reset_mode, o, z0):
    """One LIF step of a vector of neurons (the parameters as vectors): ``(h, spikes, new membrane)``."""
    h = vadd(vadd(vl, vmul(vsub(vj, vl), a)), vmul(vmul(r, cur), c))
    z = vselect_gt(vsub(h, th), z0, o, z0)
    if reset_mode == 0:
        return h, z, vsub(h, vmul(z, th))
    if reset_mode == 1:
        return h, z, vsub(h, vmul(z, vsub(h, vr)))
    return h, z, h


@nb.njit(inline="always")
def _lif_step(cur, v, a, c, r, vl, th, vr, reset_mode, one, ot, uniform=False):
    """The LIF step on the current ``cur``: ``cur`` becomes ``h``, ``ot`` the spikes, ``v`` the new membrane.

    Whole 64-byte vectors first, then the last neurons one by one with the same operations in the
    same order: left to itself, LLVM keeps the loops scalar (too many run-time aliasing checks
    between the nine arrays), and W3's 256-neuron hidden layer spent more on its LIF steps than on
    its output layer. ``uniform``: every neuron has the first one's parameters (``shared``), which
    then stay in registers instead of being loaded per vector (W3's fused forward kernel 0.87 -> 0.78 ms)."""
    lw = lanes(cur)
    m = cur.shape[0] // lw * lw
    o, z0 = vsplat(one), vsplat(one - one)
    if uniform:
        av, cv, rv = vsplat(a[0]), vsplat(c[0]), vsplat(r[0])
        vlv, thv, vrv = vsplat(vl[0]), vsplat(th[0]), vsplat(vr[0])
        for j in range(0, m, lw):
            h, z, vn = _lif_vectors(vload(cur, j), vload(v, j), av, cv, rv, vlv, thv, vrv, reset_mode, o, z0)
            vstore(cur, j, h)
            vstore(ot, j, z)
            vstore(v, j, vn)
    else:
        for j in range(0, m, lw):
            h, z, vn = _lif_vectors(vload(cur, j), vload(v, j), vload(a, j), vload(c, j), vload(r, j), vload(vl, j),
                                    vload(th, j), vload(vr, j), reset_mode, o, z0)
            vstore(cur, j, h)
            vstore(ot, j, z)
            vstore(v, j, vn)
    zero = one - one
    for j in range(m, cur.shape[0]):
        h = (vl[j] + (v[j] - vl[j]) * a[j]) + (r[j] * cur[j]) * c[j]
        z = one if h - th[j] > zero else zero
        cur[j] = h
        ot[j] = z
        if reset_mode == 0:
            v[j] = h - z * th[j]
        elif reset_mode == 1:
            v[j] = h - z * (h - vr[j])
        else:
            v[j] = h


@nb.njit(inline="always")
def _reset_partials(reset_mode, detach, one):
    """``(k_sub, k_to, k_z)`` of ``_lif_back`` for a reset mode and ``detach_reset``."""
    zero = one - one
    return (one if reset_mode == 0 else zero), (one if reset_mode == 1 else zero), (zero if detach else one)


@nb.njit(inline="always")
def _sg_vec(kind, u, scale, one, half_pi):
    """``cpu._sg_typed`` on a vector ``u``: the same operations in the same order, lane by lane."""
    o, z0 = vsplat(one), vsplat(one - one)
    if kind == 0:
        d = vadd(vmul(vsplat(scale), vabs(u)), o)
        return vdiv(o, vmul(d, d))
    if kind == 1:
        q = vmul(vsplat(half_pi * scale), u)
        return vdiv(vsplat(scale / (one + one)), vadd(o, vmul(q, q)))
    if kind == 2:
        s = vsplat(scale)
        x = vsub(o, vdiv(vabs(u), s))
        return vdiv(vselect_gt(x, z0, x, z0), s)
    if kind == 3:
        return vselect_gt(vsplat(scale / (one + one)), vabs(u), o, z0)
    return z0


@nb.njit(inline="always")
def _lif_back(ht, go, gv, gi, gb, gu, gh, a, rc, th, vr, k_sub, k_to, k_z, sg_kind, sg_scale, one, half_pi,
              keep):
    """The surrogate-gradient LIF backward of one step: from ``h`` (``ht``), ``dL/dspikes`` (``go``)
    and ``dL/dv`` after the step (``gv``), ``gi = dL/dI`` (also added to the bias gradient ``gb``)
    and ``gv`` becomes ``dL/dv`` before the step; with ``keep``, ``gu`` (dL/du) and ``gh`` (dL/dh)
    are left for the parameter gradients (else their whole vectors are not written: 5 % of W1's
    hidden-layer backward). ``k_sub``/``k_to``/``k_z``: the reset's partials without branches:
    subtract: dv/dh = 1, dv/dz = -th;  to_reset: dv/dh = 1 - z, dv/dz = -(h - vr);  none: 1, 0.

    Whole vectors in one pass (every operand read once, kept in registers), the neurons that fill
    no vector one by one with the same operations in the same order (``_lif_back_one``)."""
    n = ht.shape[0]
    lw = lanes(ht)
    o, z0 = vsplat(one), vsplat(one - one)
    ks, kt, kz = vsplat(k_sub), vsplat(k_to), vsplat(k_z)
    j = 0
    while j + lw <= n:
        h, t_, gvj = vload(ht, j), vload(th, j), vload(gv, j)
        u = vsub(h, t_)
        dvdz = vmul(vneg(vadd(vmul(ks, t_), vmul(kt, vsub(h, vload(vr, j))))), kz)
        guj = vmul(vadd(vload(go, j), vmul(gvj, dvdz)), _sg_vec(sg_kind, u, sg_scale, one, half_pi))
        zf = vselect_gt(u, z0, o, z0)
        ghj = vadd(vmul(gvj, vsub(o, vmul(zf, kt))), guj)
        gij = vmul(ghj, vload(rc, j))
        if keep:
            vstore(gu, j, guj)
            vstore(gh, j, ghj)
        vstore(gi, j, gij)
        vstore(gb, j, vadd(vload(gb, j), gij))
        vstore(gv, j, vmul(ghj, vload(a, j)))
        j += lw
    for jj in range(j, n):
        _lif_back_one(jj, ht, go, gv, gi, gb, gu, gh, a, rc, th, vr, k_sub, k_to, k_z, sg_kind, sg_scale, one,
                      half_pi)


@nb.njit(inline="always")
def _lif_back_one(j, ht, go, gv, gi, gb, gu, gh, a, rc, th, vr, k_sub, k_to, k_z, sg_kind, sg_scale, one, half_pi):
    """``_lif_back`` for neuron ``j``."""
    zero = one - one
    h = ht[j]
    u = h - th[j]
    dvdz = -(k_sub * th[j] + k_to * (h - vr[j])) * k_z
    guj = (go[j] + gv[j] * dvdz) * _sg_typed(sg_kind, u, sg_scale, one, half_pi)
    zf = one if u > zero else zero
    ghj = gv[j] * (one - zf * k_to) + guj
    gu[j] = guj
    gh[j] = ghj
    gi[j] = ghj * rc[j]
    gb[j] += gi[j]
    gv[j] = ghj * a[j]


@nb.njit(inline="always")
def _lif_param_grads(ht, hp, v_first, first, gv_in, gu, gh, cur, gp, a, c, r, vl, th, vr, k_sub, k_to, one):
    """Adds one step's share to the LIF parameter gradients ``gp[PARAMS, n]``: ``gv_in`` is dL/dv
    after the step, ``gu``/``gh`` from ``_lif_back``, ``cur`` the step's synaptic current; the
    membrane before the step is ``v_first`` at a segment's first step, else the reset of ``hp``."""
    zero = one - one
    for j in range(ht.shape[0]):
        zf = one if ht[j] - th[j] > zero else zero
        gp[TH, j] += gv_in[j] * (-zf * k_sub) - gu[j]
        gp[VR, j] += gv_in[j] * (zf * k_to)
        if first:
            v_prev = v_first[j]
        else:
            zp = one if hp[j] - th[j] > zero else zero
            v_prev = hp[j] - zp * (k_sub * th[j] + k_to * (hp[j] - vr[j]))
        gp[A, j] += gh[j] * (v_prev - vl[j])
        gp[VL, j] += gh[j] * (one - a[j])
    for j in range(ht.shape[0]):
        gp[C, j] += gh[j] * (r[j] * cur[j])
        gp[R, j] += gh[j] * (cur[j] * c[j])


@nb.njit(inline="always")
def _chunk(state, ch, n_chunks):
    """Thread chunk ``ch``'s samples ``[b0, b1)`` and a copy of their rows of ``state [B, n_out]``."""
    n_batch = state.shape[0]
    b0 = ch * n_batch // n_chunks
    b1 = (ch + 1) * n_batch // n_chunks
    return b0, b1, state[b0:b1].copy()


@nb.njit(parallel=True, cache=True)
def forward(lo, hi, indices, values, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, store, seg, one, n_chunks,
            out, h_st, v_ck, v_t):
    """``store``: 1 keep ``h`` in ``h_st``, 2 keep the membrane every ``seg`` steps in ``v_ck``.

    Each of ``n_chunks`` threads takes a range of samples and runs them step by step together
    (time-major), so its writes to ``out``/``h_st`` are contiguous runs instead of one row per
    ``B`` rows (measured: 3.1 -> 2.5 ms on W1's 700->256 layer, 2 threads)."""
    for ch in nb.prange(n_chunks):
        _forward_chunk(np.int64(ch), lo, hi, indices, values, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, store,
                       seg, one, n_chunks, out, h_st, v_ck, v_t)


@nb.njit(error_model="numpy")
def _forward_chunk(ch, lo, hi, indices, values, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, store, seg, one,
                   n_chunks, out, h_st, v_ck, v_t):
    """``forward``'s work for thread chunk ``ch`` (a plain function: see ``_backward_chunk``), its
    arrays borrowed (``kernels.borrow``)."""
    lo, hi, indices, values, wt, bias = borrow(lo), borrow(hi), borrow(indices), borrow(values), borrow(wt), \
        borrow(bias)
    a, c, r, vl, th, vr = borrow(a), borrow(c), borrow(r), borrow(vl), borrow(th), borrow(vr)
    out, h_st, v_ck = borrow(out), borrow(h_st), borrow(v_ck)
    n_steps, n_batch, n_out = out.shape
    b0, b1, vs_own = _chunk(v0, ch, n_chunks)
    cur_own = np.empty(n_out, wt.dtype)
    vs, cur = borrow(vs_own), borrow(cur_own)
    for t in range(n_steps):
        for b in range(b0, b1):
            v = vs[b - b0]
            if store == 2 and t % seg == 0:
                v_ck[t // seg, b] = v
            h = h_st[t, b] if store == 1 else cur  # h summed and stepped where the backward reads it
            _current(indices, values, lo[t * n_batch + b], hi[t * n_batch + b], wt, bias, h)
            _lif_step(h, v, a, c, r, vl, th, vr, reset_mode, one, out[t, b])
    v_t[b0:b1] = vs_own
    keep(cur_own)


@nb.njit(parallel=True, cache=True)
def forward_scan(x, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, one, n_chunks, out, v_t):
    """``forward`` without a backward to serve: each step's active inputs are found by scanning
    its row of ``x [T * B, in]`` (no compressed copy of the input is built; W3, 700->256:
    compress + forward 5.0 -> 4.5 ms). Returns ``False`` when the input has NaN/inf. Same
    operations in the same order as ``forward``, so the same results."""
    bad = np.zeros(x.shape[0], np.bool_)
    for ch in nb.prange(n_chunks):
        _forward_scan_chunk(np.int64(ch), x, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, one, n_chunks, out, v_t,
                            bad)
    return not bad.any()


@nb.njit(error_model="numpy")
def _forward_scan_chunk(ch, x, wt, bias, v0, a, c, r, vl, th, vr, reset_mode, one, n_chunks, out, v_t, bad):
    """``forward_scan``'s work for thread chunk ``ch`` (a plain function: see ``_backward_chunk``),
    its arrays borrowed (``kernels.borrow``)."""
    x, wt, bias, out, bad = borrow(x), borrow(wt), borrow(bias), borrow(out), borrow(bad)
    a, c, r, vl, th, vr = borrow(a), borrow(c), borrow(r), borrow(vl), borrow(th), borrow(vr)
    n_steps, n_batch, n_out = out.shape
    n_in = x.shape[1]
    zero = one - one
    b0, b1, vs_own = _chunk(v0, ch, n_chunks)
    cur_own, idx_own, vals_own = np.empty(n_out, wt.dtype), np.empty(n_in + 1, np.int32), np.empty(n_in + 1, wt.dtype)
    vs, cur, idx, vals = borrow(vs_own), borrow(cur_own), borrow(idx_own), borrow(vals_own)
    ones = vals[:0]  # "every value is 1"
    for t in range(n_steps):
        for b in range(b0, b1):
            xr = x[t * n_batch + b]
            m = 0
            for i in range(n_in):  # branch-free gather of the active inputs
                idx[m] = i
                m += xr[i] != 0
            binary = True
            z = zero
            for k in range(m):
                v = xr[idx[k]]
                vals[k] = v
                binary &= v == one
                z += v * zero  # NaN for NaN/inf
            bad[t * n_batch + b] = z != z
            _current(idx, ones if binary else vals, 0, m, wt, bias, cur)
            _lif_step(cur, vs[b - b0], a, c, r, vl, th, vr, reset_mode, one, out[t, b])
    v_t[b0:b1] = vs_own
    keep(cur_own), keep(idx_own), keep(vals_own)


# a thread's weight-gradient part at most this large is updated event by event, from the step's
# dL/dI still in registers; a larger one window by window, events bucketed by input first: W1's
# 256 -> 20 output layer (32 KB) 0.35 -> 0.25 ms direct, its 700 -> 256 hidden layer 1.6 -> 2.1
DIRECT_SCATTER_BYTES = 32 << 10


def direct_scatter(wt: torch.Tensor) -> bool:
    """``backward``'s ``direct`` for the input-major weight ``wt``: its gradient part fits in L1."""
    return wt.numel() * wt.element_size() <= DIRECT_SCATTER_BYTES


@nb.njit(parallel=True, cache=True)
def backward(g_out, g_rhs, g_v_t, lo, hi, indices, values, wt, bias, h_st, v_ck, seg, v0, a, c, r, vl, th, vr,
             reset_mode, detach, sg_kind, sg_scale, one, half_pi, need_params, need_gi,
             g_wt_parts, g_b_parts, g_p_parts, g_i, g_v0, direct):
    """Reverse pass, segment by segment of ``seg`` steps and, like the forward, time-major over
    each thread's samples. The step's ``h`` is read from ``h_st`` or, when ``v_ck`` holds the
    membrane at each segment start, recomputed from it into ``hbuf`` (the thread's samples, one
    segment). ``dL/dspikes`` of step ``(t, b)``: ``g_out[t, b]`` when ``g_rhs`` has no rows, else
    ``g_out[t, b, :k] @ g_rhs`` for ``g_rhs [k, n_out]``: the next layer's ``dL/dI`` times its
    weight, summed row by row where it is used (the fused pair's hand-over: the hidden layer's
    gradient is never stored). ``direct``: add each step's share of the weight gradient straight
    into the thread's part (``direct_scatter``) instead of window by window."""
    for ch in nb.prange(g_wt_parts.shape[0]):
        _backward_chunk(np.int64(ch), g_out, g_rhs, g_v_t, lo, hi, indices, values, wt, bias, h_st, v_ck, seg, v0,
                        a, c, r, vl, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi, need_params,
                        need_gi, g_wt_parts, g_b_parts, g_p_parts, g_i, g_v0, direct)


@nb.njit(error_model="numpy")
def _backward_chunk(ch, g_out, g_rhs, g_v_t, lo, hi, indices, values, wt, bias, h_st, v_ck, seg, v0, a, c, r, vl, th,
                    vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi, need_params, need_gi,
                    g_wt_parts, g_b_parts, g_p_parts, g_i, g_v0, direct):
    """``backward``'s work for thread chunk ``ch``. A function of its own, not the body of the
    ``prange`` loop: numba's parfor passes on a body this size took 20-40 s of the kernel's
    compile time; on a plain function they do not run. It compiles with ``error_model="numpy"``,
    as numba compiles a parallel loop's body: under the default (Python's) every float division
    checks for a zero divisor to raise ZeroDivisionError, and that branch keeps the neuron loops
    scalar. (The caller passes ``ch`` as int64: the loop index has another integer type when the
    parallel loop is lowered, and this function would be compiled a second time for it.) Its
    arrays are borrowed (``kernels.borrow``): the row loop's views are never reference-counted."""
    g_out, g_rhs, lo, hi, indices, values = borrow(g_out), borrow(g_rhs), borrow(lo), borrow(hi), borrow(indices), \
        borrow(values)
    wt, bias, h_st, v_ck, v0 = borrow(wt), borrow(bias), borrow(h_st), borrow(v_ck), borrow(v0)
    a, c, r, vl, th, vr = borrow(a), borrow(c), borrow(r), borrow(vl), borrow(th), borrow(vr)
    g_i = borrow(g_i)
    n_steps, n_batch = g_out.shape[0], g_out.shape[1]
    n_out = wt.shape[1]
    recompute = v_ck.shape[0] > 0
    n_seg = (n_steps + seg - 1) // seg
    n_chunks = g_wt_parts.shape[0]
    zero = one - one
    k_sub, k_to, k_z = _reset_partials(reset_mode, detach, one)
    rc = r * c
    gw = borrow(g_wt_parts[ch])
    gb = borrow(g_b_parts[ch])
    gp = borrow(g_p_parts[ch])
    gw[:] = zero
    gb[:] = zero
    gp[:] = zero
    k_rhs = g_rhs.shape[0]
    # the thread's own arrays, allocated here: borrowed, and kept to the end
    rhs_own = np.arange(k_rhs).astype(np.int32)
    rows_own = np.empty((7, n_out), wt.dtype)
    rows_own[0] = zero
    rhs_rows, rows = borrow(rhs_own), borrow(rows_own)
    no_bias, g_spk, gh, gu, gv_in, cur, spk = rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6]
    b0, b1, gvs_own = _chunk(g_v_t, ch, n_chunks)  # dL/dv of each sample, carried backwards in time
    gvs = borrow(gvs_own)
    nbc = b1 - b0
    tw = window_steps(nbc, seg)
    gwin_own = np.empty((tw * nbc, n_out), wt.dtype)
    n_in = gw.shape[0] if not direct else 0  # the window's buffers (none for direct)
    start_own, fill_own = np.empty(n_in + 1, np.int64), np.empty(n_in, np.int64)
    ev_row_own = np.empty(tw * nbc * n_in, np.int32)
    ev_val_own = np.empty(tw * nbc * n_in if values.shape[0] > 0 else 0, wt.dtype)
    hbuf_own = np.empty((seg if recompute else 1, b1 - b0, n_out), wt.dtype)
    v_run_own = np.empty((b1 - b0, n_out), wt.dtype)
    gwin, start, fill = borrow(gwin_own), borrow(start_own), borrow(fill_own)
    ev_row, ev_val, hbuf, v_run = borrow(ev_row_own), borrow(ev_val_own), borrow(hbuf_own), borrow(v_run_own)
    for s in range(n_seg - 1, -1, -1):
        t0 = s * seg
        t1 = min(n_steps, t0 + seg)
        if recompute:
            for b in range(b0, b1):
                v_run[b - b0] = v_ck[s, b]
            for t in range(t0, t1):
                for b in range(b0, b1):
                    hb = hbuf[t - t0, b - b0]
                    _current(indices, values, lo[t * n_batch + b], hi[t * n_batch + b], wt, bias, hb)
                    _lif_step(hb, v_run[b - b0], a, c, r, vl, th, vr, reset_mode, one, spk)
        for t in range(t1 - 1, t0 - 1, -1):
            for b in range(b0, b1):
                ht = hbuf[t - t0, b - b0] if recompute else h_st[t, b]
                tn, bn = (t, b + 1) if b + 1 < b1 else (max(t - 1, 0), b0)  # the next row in this order
                if not recompute:
                    prefetch_row(h_st[tn, bn])
                    prefetch_row(g_out[tn, bn])
                if need_gi and direct:  # where the next row's dL/dI will be written
                    prefetch_row(g_i[tn, bn], True)
                else:
                    prefetch_row(gwin[(tn % tw) * nbc + bn - b0], True)
                gv = gvs[b - b0]
                go = g_out[t, b]
                if k_rhs > 0:
                    _current(rhs_rows, go, 0, k_rhs, g_rhs, no_bias, g_spk)
                    go = g_spk
                # dL/dI: straight into g_i when it is kept and the scatter is direct, else into the window
                in_place = need_gi and direct
                gi = g_i[t, b] if in_place else gwin[(t % tw) * nbc + b - b0]
                if need_params:
                    gv_in[:] = gv
                _lif_back(ht, go, gv, gi, gb, gu, gh, a, rc, th, vr, k_sub, k_to, k_z, sg_kind, sg_scale, one,
                          half_pi, need_params)
                if need_gi and not in_place:
                    _copy(gi, g_i[t, b])
                if direct:
                    _scatter(indices, values, lo[t * n_batch + b], hi[t * n_batch + b], gi, gw)
                if need_params:
                    # the membrane before the step: the segment's checkpoint or v0 at the first
                    # step, else the step before's h after its reset
                    first = t == t0 if recompute else t == 0
                    v_first = v_ck[s, b] if recompute else v0[b]
                    hp = hbuf[max(t - 1 - t0, 0), b - b0] if recompute else h_st[max(t - 1, 0), b]
                    row = t * n_batch + b
                    # c and r multiply the current: recompute it exactly as the forward did
                    _current(indices, values, lo[row], hi[row], wt, bias, cur)
                    _lif_param_grads(ht, hp, v_first, first, gv_in, gu, gh, cur, gp, a, c, r, vl, th, vr,
                                     k_sub, k_to, one)
            if t % tw == 0 and not direct:
                _scatter_window(lo, hi, indices, values, t, min(t + tw, n_steps), n_batch, b0, b1, gwin, gw,
                                start, fill, ev_row, ev_val)
    g_v0[b0:b1] = gvs_own
    keep(rhs_own), keep(rows_own), keep(gwin_own), keep(start_own), keep(fill_own)
    keep(ev_row_own), keep(ev_val_own), keep(hbuf_own), keep(v_run_own)


def rows_times(a, k, b, out):
    """``out[r] = a[r, :k] @ b`` for every row ``r`` (``a [M, >= k]``, ``b [k, N]``, ``out [M, N]``,
    C-contiguous numpy arrays): ``dL/dinput = dL/dI @ W`` of a layer with few outputs, each row
    ``_current``'s register-tiled sum of ``k`` rows of ``b``. torch's matmul at W2's [320, 10] x
    [10, 2048]: 267 us against 132 (the fused pair forms its hidden gradient inside its backward instead)."""
    _rows_times(a, k, b, out, max(1, min(a.shape[0], nb.get_num_threads())))


@nb.njit(parallel=True, cache=True)
def _rows_times(a, k, b, out, n_chunks):
    for ch in nb.prange(n_chunks):
        _rows_times_chunk(np.int64(ch), n_chunks, a, k, b, out)


@nb.njit(error_model="numpy")
def _rows_times_chunk(ch, n_chunks, a, k, b, out):
    """``rows_times``' work for thread chunk ``ch`` (a plain function, not the ``prange`` body: see
    ``_backward_chunk``)."""
    idx = np.arange(k).astype(np.int32)
    zero = np.zeros(b.shape[1], b.dtype)
    m = a.shape[0]
    for r in range(ch * m // n_chunks, (ch + 1) * m // n_chunks):
        _current(idx, a[r], 0, k, b, zero, out[r])


@nb.njit(parallel=True, cache=True)
def sum_transposed(parts, out):
    """``out[o, i] = sum over c of parts[c, i, o]``: the threads' weight-gradient buffers summed
    straight into the weight's own ``[out, in]`` layout (no transposed view for autograd to copy);
    ``out`` may have fewer rows than the parts' padded width. Square blocks of one vector a side are
    summed and transposed in registers (``simd.vtranspose``; W1's 2 x 700 x 256 buffers 140 -> 40
    us); the edges that fill no block go element by element."""
    n_in, n_out = parts.shape[1], out.shape[0]
    lw = lanes(out)
    n_blocks = (n_in + lw - 1) // lw
    for blk in nb.prange(n_blocks):
        i0, i1, o_end = block_bounds(blk, lw, n_in, n_out)
        for o0 in range(0, o_end, lw):
            vstore_rows(out, o0, i0, summed_block(parts, i0, o0))
        for o in range(o_end, n_out):
            for i in range(i0, i1):
                out[o, i] = summed(parts, i, o)


@nb.njit(inline="always")
def block_bounds(blk, lw, n_in, n_out):
    """Column ``blk`` of square blocks ``lw`` a side: its inputs ``[i0, i1)`` and the end of its whole
    blocks along the outputs (0 in a last, partial column); the rest goes element by element."""
    i0 = blk * lw
    i1 = min(n_in, i0 + lw)
    return i0, i1, n_out // lw * lw if i1 - i0 == lw else 0


@nb.njit(inline="always")
def summed_block(parts, i0, o0):
    """``parts[:, i0 : i0 + lanes, o0 : o0 + lanes]`` summed over the parts and transposed (row ``o``,
    column ``i``), in registers."""
    acc = vload_rows(parts[0], i0, o0)
    for c in range(1, parts.shape[0]):
        acc = vadd_rows(acc, vload_rows(parts[c], i0, o0))
    return vtranspose(acc)


@nb.njit(inline="always")
def summed(parts, i, o):
    """``parts[:, i, o]`` summed over the parts, in their order."""
    acc = parts[0, i, o]
    for c in range(1, parts.shape[0]):
        acc += parts[c, i, o]
    return acc


@nb.njit(parallel=True, cache=True)
def transpose_into(w, wt):
    """``wt[:, :n] = w.T`` for ``w [n, n_in]`` and ``wt [n_in, width]``, the columns past ``n`` zero:
    the weight input-major, one contiguous row per input, padded to ``width``. Square blocks of one
    vector a side are transposed in registers (``simd.vtranspose``), the edges element by element;
    two threads' shares of rows (W1's 256 x 700 weight: 60 -> 20 us; numpy's transposing copy 110
    us, torch's ``.t().contiguous()`` 160-290 us)."""
    n, n_in = w.shape
    lw = lanes(w)
    n_blocks = (n_in + lw - 1) // lw
    for blk in nb.prange(n_blocks):
        i0, i1, o_end = block_bounds(blk, lw, n_in, n)
        for o0 in range(0, o_end, lw):
            vstore_rows(wt, i0, o0, vtranspose(vload_rows(w, o0, i0)))
        for i in range(i0, i1):
            row = wt[i]
            for o in range(o_end, n):
                row[o] = w[o, i]
            row[n:] = 0


@nb.njit(cache=True)
def _same_bytes(a, b):
    """Whether the equal-sized byte arrays ``a`` and ``b`` hold the same bytes (one vectorised pass)."""
    return same_share(a, b, 0, 1)


@nb.njit(cache=True)
def same_share(a, b, k, n_shares):
    """``_same_bytes`` on share ``k`` of ``n_shares`` equal parts of the arrays (a thread's part; a
    function of its own, not inlined, so that the byte loop is vectorised)."""
    i0, i1 = k * a.shape[0] // n_shares, (k + 1) * a.shape[0] // n_shares
    a, b = a[i0:i1], b[i0:i1]  # a loop from 0: indices known non-negative, so it vectorises
    diff = np.uint8(0)
    for i in range(a.shape[0]):
        diff |= a[i] ^ b[i]
    return diff == 0


# id(weight) -> (a weak reference to it, a copy of its values, its input-major form): see input_major
_INPUT_MAJOR: dict[int, tuple] = {}
NO_BYTES = np.empty(0, np.uint8)


def input_major(weight: torch.Tensor, width: int | None = None, reuse: bool = False) -> torch.Tensor:
    """``weight [n, in]`` as the kernels read it: ``[in, width]``, one row per input, the columns
    past ``n`` zero (``width`` defaults to ``n``), in torch's 64-byte aligned memory (numpy's own
    buffer can start mid cache line, and then every 64-byte vector load of a row touches two lines).

    ``reuse`` (for calls that keep nothing for a backward) and a ``Parameter`` (a weight computed
    afresh for each call would only be copied): the result is kept with a copy of the weight and
    returned again while the weight holds the same bytes. The whole weight is compared, not
    autograd's version counter, which changes made through ``.data`` leave alone. For W3's
    700 -> 256 layer the comparison costs a third of the transpose it saves."""
    if not (reuse and isinstance(weight, torch.nn.Parameter)):
        return _transposed(weight.detach().contiguous().numpy(), width or weight.shape[0], weight.dtype)
    wt, now, kept = unchecked_input_major(weight, width)
    if _same_bytes(now, kept):
        return wt
    forget_input_major(weight)
    return unchecked_input_major(weight, width)[0]


def unchecked_input_major(weight: torch.nn.Parameter, width: int | None = None):
    """``input_major(weight, width, reuse=True)`` without the comparison: ``(wt, now, kept)``, where
    ``wt`` holds only while the bytes ``now`` (the weight's) equal ``kept`` (the copy made with
    ``wt``). Both are empty when ``wt`` was made here. The caller compares them (the fused pair's
    kernel does, each thread a share) and, when they differ, calls ``forget_input_major``."""
    w = weight.detach().contiguous().numpy()
    width = width or weight.shape[0]
    entry = _INPUT_MAJOR.get(id(weight))
    if entry is not None and entry[0]() is weight:
        _, copy, wt = entry
        if copy.shape == w.shape and copy.dtype == w.dtype and wt.shape[1] == width:
            return wt, w.reshape(-1).view(np.uint8), copy.reshape(-1).view(np.uint8)
    wt = _transposed(w, width, weight.dtype)
    key = id(weight)
    _INPUT_MAJOR[key] = (weakref.ref(weight, lambda _ref: _INPUT_MAJOR.pop(key, None)), w.copy(), wt)
    return wt, NO_BYTES, NO_BYTES


def forget_input_major(weight: torch.Tensor) -> None:
    """Drops the kept input-major form of ``weight`` (its bytes have changed)."""
    _INPUT_MAJOR.pop(id(weight), None)


def _transposed(w: np.ndarray, width: int, dtype: torch.dtype) -> torch.Tensor:
    wt = torch.empty((w.shape[1], width), dtype=dtype)
    transpose_into(w, wt.numpy())
    return wt


def padded_width(n: int, element_size: int) -> int:
    """``n`` columns rounded up to whole 64-byte vectors (``Layer(pad=True)``)."""
    per_vector = 64 // element_size
    return -(-n // per_vector) * per_vector


class Layer:
    """One layer's operands for the kernels: ``wt``, the weight input-major (a tensor), and as numpy
    arrays the bias, the initial membrane ``v0`` and the ``PARAMS`` rows ``p``.

    ``pad``: the weight, bias, initial membrane and parameters get columns up to a whole number of
    64-byte vectors (zero weights; neurons that never fire): the same sums and steps in the real
    columns, and a 20-output layer adds two vectors per event instead of one vector and four scalars.
    ``reuse``: as in ``input_major`` (a call without autograd)."""

    def __init__(self, cfg: Config, weight, bias, v0, params, pad: bool = False, reuse: bool = False):
        self._operands(cfg, weight, bias, params, pad, reuse)
        self.v0 = np.zeros((v0.shape[0], self.width), self.bias.dtype)
        self.v0[:, :self.n] = v0.detach().numpy()

    @classmethod
    def at_rest(cls, cfg: Config, weight, bias, params, n_batch: int, pad: bool = False, unchecked: bool = False,
                wt: torch.Tensor | None = None):
        """The layer, with every neuron of ``n_batch`` samples starting at ``v_leak``. ``bias`` may be
        ``None`` and ``params`` holds the ``PARAMS`` values as they come (floats, or tensors of one or
        one per neuron): no tensors are made of them. The weight's input-major form is the one kept
        for calls without autograd (``input_major(reuse=True)``), or, given ``wt`` (an ``[in, width]``
        buffer; for a weight that changes every call, as in a training step), written into ``wt``.

        ``unchecked``: a kept input-major weight is taken without comparing its bytes
        (``unchecked_input_major``); ``self.unchecked`` holds the two byte arrays to compare (the
        caller forgets the kept form when they differ)."""
        layer = cls.__new__(cls)
        layer._operands(cfg, weight, bias, params, pad, True, unchecked, wt)
        layer.v0 = np.repeat(layer.p[VL][None], n_batch, 0)  # its padding is 0, as __init__'s
        return layer

    def _operands(self, cfg, weight, bias, params, pad, reuse, unchecked=False, wt=None):
        self.cfg = cfg
        self.n = n = weight.shape[0]
        self.width = width = padded_width(n, weight.element_size()) if pad else n
        self.unchecked = (NO_BYTES, NO_BYTES)
        if wt is not None:
            transpose_into(weight.detach().contiguous().numpy(), wt.numpy())
            self.wt = wt
        elif unchecked and isinstance(weight, torch.nn.Parameter):
            self.wt, *self.unchecked = unchecked_input_major(weight, width)
        else:
            self.wt = input_major(weight, width, reuse)
        # bias and parameters in one block (numpy: a few element-wise copies, not a chain of torch ops)
        block = np.zeros((1 + len(PARAMS), width), self.wt.numpy().dtype)
        block[1 + TH, n:] = 1.0  # padding: h stays 0, never above the threshold
        self.bias, self.p = block[0], block[1:]
        self._fill(bias, params)

    def _fill(self, bias, params) -> None:
        """The real columns of the bias and parameter rows (``bias`` may be ``None``: zeros)."""
        n = self.n
        rows = (bias, *params)
        if all(isinstance(q, float) for q in params):  # constants: one copy for all six rows
            self.p[:, :n] = np.array(params, self.p.dtype)[:, None]
            rows = (bias,)
        for row, q in enumerate(rows):
            target = self.bias if row == 0 else self.p[row - 1]
            if q is not None:
                target[:n] = q.detach().numpy() if isinstance(q, torch.Tensor) else q

    def reload(self, weight, bias, params=None) -> None:
        """Takes a changed weight, bias and (unless ``None``) parameters of the same shapes, as a
        training step's, into this layer's own buffers: the weight input-major into ``wt``, whose
        buffer was given to ``at_rest``; with new parameters the membranes start at the new rest.
        ``self.source``: the weight as read (out-major), for a backward that needs it so."""
        self.source = weight.detach().contiguous().numpy()
        transpose_into(self.source, self.wt.numpy())
        if params is None:
            if bias is not None:
                self.bias[:self.n] = bias.detach().numpy()
            return
        self._fill(bias, params)
        self.v0[:] = self.p[VL]

    def args(self):
        return self.wt.numpy(), self.bias, self.v0, self.p, self.cfg.reset_mode


def layer_grads(needs, parts, g_v0, n: int):
    """weight, bias, v0 and the 6 parameter gradients of a layer of ``n`` neurons from the threads'
    parts (whose columns past ``n`` are padding)."""
    g_wt, g_b, g_p = parts
    g_w = None
    if needs[0]:
        g_w = torch.empty((g_wt.shape[2], g_wt.shape[1]), dtype=g_wt.dtype)
        sum_transposed(g_wt.numpy(), g_w.numpy())
        g_w = g_w[:n]
    g_ps = g_p.sum(0)[:, :n] if any(needs[3:]) else None
    return (g_w, g_b.sum(0)[:n] if needs[1] else None, g_v0[:, :n].contiguous() if needs[2] else None,
            *[g_ps[k] if needs[3 + k] else None for k in range(len(PARAMS))])


def _kernel_operands(weight, bias, v0, params, reuse=False):
    """The weight input-major (``input_major``), the rest contiguous."""
    return (input_major(weight, reuse=reuse), bias.detach().contiguous(), v0.detach().contiguous(),
            [q.detach().contiguous() for q in params])


def _forward_without_grad(cfg: Config, x, weight, bias, v0, *params):
    """Spikes and final membrane when no gradient is asked for, nothing kept: float32 compresses the
    input and runs ``forward``, float64 ``forward_scan``."""
    set_threads()
    n_steps, n_batch, _ = x.shape
    n_out = weight.shape[0]
    wt, b, v0_c, p = _kernel_operands(weight, bias, v0, params, reuse=True)
    out = torch.empty((n_steps, n_batch, n_out), dtype=x.dtype)
    v_t = torch.empty((n_batch, n_out), dtype=x.dtype)
    n_chunks = max(1, min(n_batch, nb.get_num_threads()))
    if x.dtype == torch.float32:  # the vectorised compress beats scanning the rows in the kernel
        events = compress_input(x, cfg.layer)
        empty = np.empty((0, 1, 1), np.float32)
        forward(*events, wt.numpy(), b.numpy(), v0_c.numpy(), *[q.numpy() for q in p], cfg.reset_mode, 0, SEGMENT,
                _one(x), n_chunks, out.numpy(), empty, empty, v_t.numpy())
        return out, v_t
    finite = forward_scan(x.detach().reshape(n_steps * n_batch, -1).contiguous().numpy(), wt.numpy(), b.numpy(),
                          v0_c.numpy(), *[q.numpy() for q in p], cfg.reset_mode, _one(x),
                          max(1, min(n_batch, nb.get_num_threads())), out.numpy(), v_t.numpy())
    if not finite:
        raise InputError(f"{cfg.layer}: input contains NaN or inf values")
    return out, v_t


class LinearLIFFunction(torch.autograd.Function):
    """Inputs: cfg, events (of x), x [T, B, in], weight [out, in], bias [out], v0 [B, out], then ``PARAMS``
    tensors [out].

    Outputs: spikes [T, B, out], v_T [B, out]. The kernels run on the layer padded to whole 64-byte
    vectors (``Layer(pad=True)``): W2's 2048 -> 10 head adds one vector per active input instead of
    ten scalars.
    """

    @staticmethod
    def forward(ctx, cfg: Config, events: Events, x, weight, bias, v0, *params):
        set_threads()
        n_steps, n_batch, _ = x.shape
        dtype = x.dtype
        layer = Layer(cfg, weight, bias, v0, params, pad=True)
        n, width = layer.n, layer.width
        store = 2 if cfg.recompute else 1
        out = torch.empty((n_steps, n_batch, width), dtype=dtype)
        h_st = torch.empty((n_steps, n_batch, width) if store == 1 else (1, 1, 1), dtype=dtype)
        n_seg = (n_steps + SEGMENT - 1) // SEGMENT
        v_ck = torch.empty((n_seg, n_batch, width) if store == 2 else (0, 1, 1), dtype=dtype)
        v_t = torch.empty((n_batch, width), dtype=dtype)
        forward(*events, layer.wt.numpy(), layer.bias, layer.v0, *layer.p, cfg.reset_mode, store, SEGMENT, _one(x),
                max(1, min(n_batch, nb.get_num_threads())), out.numpy(), h_st.numpy(), v_ck.numpy(), v_t.numpy())
        ctx.layer = layer
        ctx.save_for_backward(weight, h_st, v_ck)  # weight: autograd's version check too
        ctx.events = events  # the active inputs (compressed rows), not the dense input
        ctx.shape = (n_steps, n_batch)
        if width > n:
            out, v_t = out[..., :n].contiguous(), v_t[:, :n].contiguous()
        return out, v_t

    @staticmethod
    def backward(ctx, g_out, g_v_t):
        set_threads()
        weight, h_st, v_ck = ctx.saved_tensors
        layer, cfg, events = ctx.layer, ctx.layer.cfg, ctx.events
        n_steps, n_batch = ctx.shape
        n, width = layer.n, layer.width
        n_in = layer.wt.shape[0]
        dtype = h_st.dtype

        def padded(g, shape):
            full = torch.zeros((*shape, width), dtype=dtype)
            if g is not None:
                full[..., :n] = g
            return full

        g_out, g_v_t = padded(g_out, (n_steps, n_batch)), padded(g_v_t, (n_batch,))
        needs = ctx.needs_input_grad[2:]  # x, weight, bias, v0, *params (cfg and events come first)
        need_x = needs[0]
        n_chunks = max(1, min(n_batch, nb.get_num_threads()))
        parts = (torch.empty((n_chunks, n_in, width), dtype=dtype), torch.empty((n_chunks, width), dtype=dtype),
                 torch.empty((n_chunks, len(PARAMS), width), dtype=dtype))
        g_i = torch.empty((n_steps, n_batch, width) if need_x else (1, 1, 1), dtype=dtype)
        g_v0 = torch.empty((n_batch, width), dtype=dtype)
        one = _one(h_st)
        backward(g_out.numpy(), np.empty((0, width), layer.bias.dtype), g_v_t.numpy(), *events, layer.wt.numpy(),
                 layer.bias, h_st.numpy(), v_ck.numpy(), SEGMENT, layer.v0, *layer.p, cfg.reset_mode, cfg.detach,
                 cfg.sg_kind, one.dtype.type(cfg.sg_scale), one, one.dtype.type(math.pi / 2), any(needs[4:]), need_x,
                 *[q.numpy() for q in parts], g_i.numpy(), g_v0.numpy(), direct_scatter(layer.wt))
        g_x = None
        if need_x:
            g_x = torch.empty((n_steps, n_batch, n_in), dtype=dtype)
            rows_times(g_i.reshape(-1, width).numpy(), n, weight.detach().contiguous().numpy(),
                       g_x.reshape(-1, n_in).numpy())
        return (None, None, g_x, *layer_grads(needs[1:], parts, g_v0, n))


@functools.lru_cache(maxsize=256)
def _constant(value: float, dtype, n_out: int) -> torch.Tensor:
    """``[n_out]`` filled with ``value``, made once (the kernels only read it); never an inference
    tensor, so a first call under ``torch.inference_mode`` does not spoil later training."""
    with torch.inference_mode(False):
        return torch.full((n_out,), value, dtype=dtype)


def _vector(value, dtype, n_out: int):
    """A LIF parameter as an ``[n_out]`` tensor of ``dtype`` (autograd sums an expanded one back), or ``None``."""
    if not isinstance(value, torch.Tensor):
        return _constant(float(value), dtype, n_out)
    if value.dim() > 1 or value.numel() not in (1, n_out) or value.device.type != "cpu":
        return None
    return value.to(dtype).reshape(-1).expand(n_out)


def unsupported_reason(x, weight, params, spike_fn, refractory: bool, return_trace: bool) -> str | None:
    """Why the fused kernel cannot run this call, or ``None`` (``params``: ``spikeflow.neurons.lif.LIFParams``)."""
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return "it runs on the CPU only"
    if weight.dtype not in (torch.float32, torch.float64) or x.dtype not in (weight.dtype, *SPIKE_DTYPES):
        return (f"input and weight must share a float32/float64 dtype, or the input be bool/uint8 spikes "
                f"(got {x.dtype} and {weight.dtype})")
    if x.dim() < 2 or x.shape[0] == 0:
        return f"input must be time-major [T, B, ..., in_features], got shape {tuple(x.shape)}"
    if refractory:
        return "a refractory period is not fused (option 'refractory')"
    if return_trace:
        return "the membrane trace output is not fused (option 'return_state')"
    if params.reset not in RESET_CODES:
        return f"unknown reset mode {params.reset!r}"
    if _surrogate_code(spike_fn) is None:
        return f"spike function {spike_fn!r} is neither a spikeflow Surrogate nor heaviside"
    n_out = weight.shape[0]
    for name in ("tau_mem", "v_threshold", "v_leak", "v_reset", "r"):
        value = getattr(params, name)
        if isinstance(value, torch.Tensor):
            if value.dim() > 1 or value.numel() not in (1, n_out):
                return f"parameter {name!r} must be one value or one per output neuron, got shape {tuple(value.shape)}"
            if torch.promote_types(value.dtype, weight.dtype) != weight.dtype:
                return f"parameter {name!r} ({value.dtype}) would promote the {weight.dtype} layer"
            if value.device.type != "cpu":
                return f"parameter {name!r} is on {value.device}"
    return None


def linear_lif(x, weight, bias, params, spike_fn, v0=None, layer: str = "LinearLIF", recompute=None,
               crossover: float | None = None):
    """Spikes ``[T, *batch, out]`` and final membrane ``[*batch, out]`` of LIF(Linear(x)) over all T.

    ``params`` is a ``LIFParams``; ``v0`` the initial membrane (default ``v_leak``). The caller has
    checked ``unsupported_reason``. Same results as ``F.linear`` followed by the reference LIF.
    With ``crossover``, returns ``None`` instead when the input's fraction of non-zero entries
    (``synapse.activity``) is at or above it.
    """
    if crossover is not None and synapse.activity(x) >= crossover:
        return None
    x = x.to(weight.dtype)  # bool or uint8 spikes: this single layer's kernels read floats
    n_steps, batch, n_in = x.shape[0], x.shape[1:-1], x.shape[-1]
    n_out = weight.shape[0]
    dtype = x.dtype
    x3 = x.reshape(n_steps, -1, n_in)
    n_batch = x3.shape[1]
    a = params.alpha
    c = 1.0 - a  # the reference's own expression
    vec = {k: _vector(v, dtype, n_out) for k, v in
           dict(a=a, c=c, r=params.r, vl=params.v_leak, th=params.v_threshold, vr=params.v_reset).items()}
    if v0 is None:
        v0 = vec["vl"].detach().expand(n_batch, n_out).contiguous()
    else:
        v0 = v0.to(dtype).expand(*batch, n_out).reshape(n_batch, n_out)
    if bias is None:
        bias = torch.zeros(n_out, dtype=dtype)
    sg_kind, sg_scale = _surrogate_code(spike_fn)
    inputs = [x3, weight, bias, v0, *[vec[k] for k in PARAMS]]
    if recompute is None:
        recompute = n_steps * n_batch * n_out * x.element_size() > RECOMPUTE_ABOVE_BYTES
    cfg = Config(RESET_CODES[params.reset], bool(params.detach_reset), sg_kind, sg_scale, layer, bool(recompute))
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        out, v_t = LinearLIFFunction.apply(cfg, compress_input(x3, layer), *inputs)
    else:
        out, v_t = _forward_without_grad(cfg, *inputs)
    return out.reshape(n_steps, *batch, n_out), v_t.reshape(*batch, n_out)


def bytes_per_neuron_step(dtype=torch.float32) -> int:
    """Bytes kept for the backward per output neuron and time step: the membrane before reset."""
    return torch.empty((), dtype=dtype).element_size()
