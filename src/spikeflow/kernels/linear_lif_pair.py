"""Two fused ``LinearLIF`` layers in one kernel: the hidden spikes never leave their compressed form.

Run one after the other, the two layers of a spiking MLP write the hidden spikes as a dense
``[T, B, hidden]`` tensor, compress it again for the second layer, and in the backward build the dense
``dL/dspikes = dL/dI2 @ W2`` before the first layer's backward reads it. Here the forward runs both
layers at each ``(t, b)``: it finds the active inputs of the row itself (no compressed copy of the
input is made in a pass of its own), the first layer's spikes are gathered into a list of active
hidden indices, and the second layer adds the weight rows of that list; both lists are kept for the
backward (4 bytes per active input and per hidden spike). The backward runs ``linear_lif``'s own
backward kernel twice: the second layer's over all steps, which writes its ``dL/dI`` (a few
columns), then the first layer's, which forms each step's ``dL/dspikes = dL/dI2 @ W2`` where it
uses it, in registers. Neither the hidden spike map nor its gradient is ever stored. Where neither
the input nor a LIF parameter needs a gradient (a network's usual training), ``backward`` here
runs both layers in one sweep over the steps instead, with the same operations in the same order.

Same LIF and surrogate as ``spikeflow.kernels.linear_lif``: the spikes and membranes equal two
chained ``linear_lif`` calls bit for bit, and so do the gradients but for the order in which
``dL/dspikes`` is summed (row by row instead of torch's matmul).
"""

from __future__ import annotations

import math
import weakref
from types import SimpleNamespace

import numba as nb
import numpy as np
import torch

from spikeflow.errors import InputError
from spikeflow.kernels import adam, scratch
from spikeflow.kernels import linear_lif as single
from spikeflow.kernels.borrow import borrow, keep
from spikeflow.kernels.cpu import RESET_CODES, _one, set_threads
from spikeflow.kernels.fused import _surrogate_code
from spikeflow.kernels.linear_lif import (
    PARAMS,
    SEGMENT,
    TH,
    VL,
    VR,
    A,
    C,
    R,
    _chunk,
    _copy,
    _current,
    _lif_back,
    _lif_step,
    _reset_partials,
    _scatter,
    _scatter_window,
    same_share,
    shared,
    window_steps,
)
from spikeflow.kernels.simd import (
    append_nonzero,
    lanes,
    prefetch_row,
    scan_row,
    vadd,
    vload,
    vload2,
    vmul,
    vsplat,
    vstore,
)


@nb.njit(parallel=True, cache=True)
def forward(x, wt1, bias1, v01, p1, reset1, wt2, bias2, v02, p2, reset2, store, seg, one, n_chunks, out,
            inp, hid, bad, non_binary, h1_st, v1_ck, h2_st, v2_ck, v1_t, v2_t, unchecked, stale):
    """Both layers over all T, each of ``n_chunks`` threads taking a range of samples time-major.

    ``x [T * B, in]``: each row's active inputs are found by the kernel itself (no compressed copy
    is built first) and kept for a backward: ``inp = (lo, hi, idx, val)``, row ``r = t * B + b``'s
    positions ``idx[lo[r]:hi[r]]`` and, for a row with an active entry other than 1
    (``non_binary[r]``), their values at the same places of ``val``; each thread writes its own
    region (``T * in`` slots per sample, touched only where written). ``bad``: per row, a NaN/inf
    among its active entries (both flag arrays come zeroed; only set flags are written). With
    ``store == 0`` and empty ``inp``/``hid``/``non_binary`` nothing is kept: each thread lists a row's
    entries in rows of its own, which stay in L1.
    ``hid = (lo, hi, idx)``: the hidden spikes in the same form. ``p1``/``p2``: the layers'
    ``PARAMS`` as ``[6, n]`` rows. ``store``: 0 nothing for a backward; 1 and 2 keep both
    membranes every ``seg`` steps (``v_ck``), 1 also both layers' ``h`` of every step (``h_st``).
    The output layer's operands are padded to whole vectors (``linear_lif.Layer(pad=True)``: ``wt2``,
    ``bias2``, ``v02``, ``p2``, ``h2_st`` and ``v2_ck`` have ``width`` columns, the first ``out``
    real), so it adds and steps whole vectors only; ``v2_t`` gets the real columns.

    ``unchecked``: per layer, the bytes of its weight now and of the copy its input-major form was
    made from (``linear_lif.unchecked_input_major``; empty when there is nothing to compare). Each
    thread compares its share of both first and, where they differ, sets ``stale[ch]`` and stops:
    the caller makes the input-major weight afresh and runs the kernel again."""
    for ch in nb.prange(n_chunks):
        if not (same_share(unchecked[0], unchecked[1], ch, n_chunks)
                and same_share(unchecked[2], unchecked[3], ch, n_chunks)):
            stale[ch] = True
            continue
        _forward_chunk(np.int64(ch), x, wt1, bias1, v01, p1, reset1, wt2, bias2, v02, p2, reset2, store, seg, one,
                       n_chunks, out, inp[0], inp[1], inp[2], inp[3], hid[0], hid[1], hid[2], bad, non_binary,
                       h1_st, v1_ck, h2_st, v2_ck, v1_t, v2_t)


@nb.njit(error_model="numpy")
def _forward_chunk(ch, x, wt1, bias1, v01, p1, reset1, wt2, bias2, v02, p2, reset2, store, seg, one,
                   n_chunks, out, in_lo, in_hi, in_idx, in_val, hid_lo, hid_hi, hid_idx, bad, non_binary, h1_st,
                   v1_ck, h2_st, v2_ck, v1_t, v2_t):
    """``forward``'s work for thread chunk ``ch``: a plain function, not the ``prange`` body, which
    numba's parfor passes take far longer to compile (``linear_lif._backward_chunk``). Its arrays
    are borrowed (``kernels.borrow``): the row loop's views are never reference-counted."""
    x, wt1, bias1, p1, wt2, bias2, p2 = (borrow(x), borrow(wt1), borrow(bias1), borrow(p1), borrow(wt2),
                                         borrow(bias2), borrow(p2))
    out, in_lo, in_hi, in_idx, in_val = borrow(out), borrow(in_lo), borrow(in_hi), borrow(in_idx), borrow(in_val)
    hid_lo, hid_hi, hid_idx = borrow(hid_lo), borrow(hid_hi), borrow(hid_idx)
    bad, non_binary = borrow(bad), borrow(non_binary)
    h1_st, v1_ck, h2_st, v2_ck = borrow(h1_st), borrow(v1_ck), borrow(h2_st), borrow(v2_ck)
    n_steps, n_batch, n_out = out.shape
    n_in = x.shape[1]
    n_hid = wt1.shape[1]
    lists = in_lo.shape[0] > 0  # else each thread lists a row's entries in its own rows (store == 0)
    n_list = 0 if lists else 1
    lists_own = (np.empty(n_list * (n_in + 16), np.int32), np.empty(n_list * (n_in + 16), wt1.dtype),
                 np.empty(n_list * (n_hid + 16), np.int32))
    if not lists:
        in_idx, in_val, hid_idx = borrow(lists_own[0]), borrow(lists_own[1]), borrow(lists_own[2])
    ones = in_val[:0]  # "every value is 1"
    uniform1 = True  # the hidden layer's parameters: the same for every neuron
    for q in range(p1.shape[0]):
        uniform1 &= shared(p1[q])
    # the thread's own rows, allocated here: borrowed, and kept to the end (kernels.borrow)
    b0, b1, v1_own = _chunk(v01, ch, n_chunks)
    _, _, v2_own = _chunk(v02, ch, n_chunks)
    cur1_own, spk_own = np.empty(n_hid, wt1.dtype), np.empty(n_hid, wt1.dtype)
    cur2_own, spk2_own = np.empty(wt2.shape[1], wt2.dtype), np.empty(wt2.shape[1], wt2.dtype)
    v1s, v2s, cur1, spk = borrow(v1_own), borrow(v2_own), borrow(cur1_own), borrow(spk_own)
    cur2, spk2 = borrow(cur2_own), borrow(spk2_own)
    p_in = b0 * n_steps * n_in
    p = b0 * n_steps * n_hid
    for t in range(n_steps):
        for b in range(b0, b1):
            if store > 0 and t % seg == 0:
                v1_ck[t // seg, b] = v1s[b - b0]
                v2_ck[t // seg, b] = v2s[b - b0]
            row = t * n_batch + b
            xr = x[row]
            prefetch_row(x[row + 1 if b + 1 < b1 else min(row + n_batch - (b1 - b0) + 1, x.shape[0] - 1)])
            tn, bn = (t, b + 1) if b + 1 < b1 else (min(t + 1, n_steps - 1), b0)  # the next row in this order
            if store == 1:  # the rows written next (simd.prefetch_row)
                prefetch_row(h1_st[tn, bn], True)
                prefetch_row(h2_st[tn, bn], True)
            prefetch_row(out[tn, bn], True)
            if not lists:
                p_in = p = 0
            lo = p_in  # the row's bounds are kept in locals too: read back, they cost loads
            p_in, binary, finite = scan_row(xr, in_idx, p_in, one)
            if lists:
                in_lo[row] = lo
                in_hi[row] = p_in
            if not finite:  # flags written only where set: zeroed by the caller
                bad[row] = True
            if not binary:
                if lists:
                    non_binary[row] = True
                for k in range(lo, p_in):
                    in_val[k] = xr[in_idx[k]]
            # with store == 1 the currents become h where the backward reads it, with no copy
            h1 = h1_st[t, b] if store == 1 else cur1
            h2 = h2_st[t, b] if store == 1 else cur2
            _current(in_idx, ones if binary else in_val, lo, p_in, wt1, bias1, h1)
            _lif_step(h1, v1s[b - b0], p1[A], p1[C], p1[R], p1[VL], p1[TH], p1[VR], reset1, one, spk, uniform1)
            lo = p
            p = append_nonzero(spk, hid_idx, p)
            if lists:
                hid_lo[row] = lo
                hid_hi[row] = p
            _current(hid_idx, ones, lo, p, wt2, bias2, h2)
            _lif_step(h2, v2s[b - b0], p2[A], p2[C], p2[R], p2[VL], p2[TH], p2[VR], reset2, one, spk2)
            ot = out[t, b]
            for j in range(n_out):  # a loop: numba's slice assignment costs more for 20 values
                ot[j] = spk2[j]
    v1_t[b0:b1] = v1_own
    v2_t[b0:b1] = v2_own[:, :n_out]
    keep(cur1_own)
    keep(spk_own)
    keep(cur2_own)
    keep(spk2_own)
    keep(lists_own[0])
    keep(lists_own[1])
    keep(lists_own[2])


@nb.njit(parallel=True, cache=True)
def backward(g_out, g_v1, g_v2, in_lo, in_hi, in_idx, in_val, hid_lo, hid_hi, hid_idx, h1_st, h2_st, w2, p1, p2,
             lif1, lif2, one, half_pi, g_w1, g_b1, g_w2, g_b2, g_v01, g_v02, direct1):
    """Both layers' reverse pass in one sweep over the steps, each thread taking a range of samples:
    at each ``(t, b)`` the output layer's LIF backward gives its ``dL/dI`` (kept in a row of the
    thread's own, never stored), added to its weight gradient over the hidden spikes of the step,
    and ``dL/dI2 @ W2`` is the hidden layer's ``dL/dspikes``, whose LIF backward follows. The same
    operations in the same order as ``linear_lif.backward`` run for the output layer and then for
    the hidden layer (the pair's other path), so the same gradients bit for bit, without a second
    pass over the steps or ``dL/dI2`` written and read back.

    For layers with membranes kept (``h1_st``, ``h2_st``) whose parameters and input need no
    gradient. ``g_out [T, B, n_out]`` (the real columns); ``g_v1``/``g_v2`` ``dL/dv`` after the last
    step; ``w2`` the output layer's ``[n_out, n_hid]`` weight; ``lif1``/``lif2`` ``(reset_mode,
    detach, sg_kind, sg_scale)``. Writes each thread's weight and bias gradient parts and ``dL/dv0``.
    The output layer's weight gradient is added event by event (its part fits in L1); the hidden
    layer's too with ``direct1``, else window by window (``linear_lif._scatter_window``)."""
    for ch in nb.prange(g_w1.shape[0]):
        _backward_chunk(np.int64(ch), g_out, g_v1, g_v2, in_lo, in_hi, in_idx, in_val, hid_lo, hid_hi, hid_idx,
                        h1_st, h2_st, w2, p1, p2, lif1, lif2, one, half_pi, g_w1, g_b1, g_w2, g_b2, g_v01, g_v02,
                        direct1)


@nb.njit(error_model="numpy")
def _backward_chunk(ch, g_out, g_v1, g_v2, in_lo, in_hi, in_idx, in_val, hid_lo, hid_hi, hid_idx, h1_st, h2_st, w2,
                    p1, p2, lif1, lif2, one, half_pi, g_w1, g_b1, g_w2, g_b2, g_v01, g_v02, direct1):
    """``backward``'s work for thread chunk ``ch``: a plain function, not the ``prange`` body (see
    ``linear_lif._backward_chunk``). Its arrays are borrowed (``kernels.borrow``)."""
    g_out, in_lo, in_hi, in_idx, in_val = borrow(g_out), borrow(in_lo), borrow(in_hi), borrow(in_idx), borrow(in_val)
    hid_lo, hid_hi, hid_idx, h1_st, h2_st = borrow(hid_lo), borrow(hid_hi), borrow(hid_idx), borrow(h1_st), \
        borrow(h2_st)
    w2, p1, p2 = borrow(w2), borrow(p1), borrow(p2)
    n_steps, n_batch, n_out = g_out.shape
    n_hid, width = h1_st.shape[2], h2_st.shape[2]
    n_chunks = g_w1.shape[0]
    zero = one - one
    reset1, detach1, sg1, scale1 = lif1
    reset2, detach2, sg2, scale2 = lif2
    ks1, kt1, kz1 = _reset_partials(reset1, detach1, one)
    ks2, kt2, kz2 = _reset_partials(reset2, detach2, one)
    gw1, gb1, gw2, gb2 = borrow(g_w1[ch]), borrow(g_b1[ch]), borrow(g_w2[ch]), borrow(g_b2[ch])
    gw1[:] = zero
    gb1[:] = zero
    gw2[:] = zero
    gb2[:] = zero
    # the thread's own arrays, allocated here: borrowed, and kept to the end
    rc1_own, rc2_own = p1[R] * p1[C], p2[R] * p2[C]
    rhs_own = np.arange(n_out).astype(np.int32)
    rows1_own, rows2_own = np.zeros((6, n_hid), h1_st.dtype), np.zeros((9, width), h1_st.dtype)
    rc1, rc2, rhs_rows, rows1, rows2 = borrow(rc1_own), borrow(rc2_own), borrow(rhs_own), borrow(rows1_own), \
        borrow(rows2_own)
    no_bias, unused1, g_spk4 = rows1[0], rows1[1], rows1[2:]  # the hidden layer's dL/dspikes of 4 rows
    unused2, go4, gi4 = rows2[0], rows2[1:5], rows2[5:]  # the output layer's dL/dspikes (padding 0) and dL/dI
    b0, b1, gvs1_own = _chunk(g_v1, ch, n_chunks)
    _, _, gvs2_own = _chunk(g_v2, ch, n_chunks)
    gvs1, gvs2 = borrow(gvs1_own), borrow(gvs2_own)
    nbc = b1 - b0
    tw = window_steps(nbc, SEGMENT)
    n_in = 0 if direct1 else gw1.shape[0]  # the window's buffers (none for direct1)
    gwin_own = np.empty((tw * nbc if not direct1 else 1, n_hid), h1_st.dtype)
    start_own, fill_own = np.empty(n_in + 1, np.int64), np.empty(n_in, np.int64)
    ev_row_own = np.empty(tw * nbc * n_in, np.int32)
    ev_val_own = np.empty(tw * nbc * n_in if in_val.shape[0] > 0 else 0, h1_st.dtype)
    gwin, start, fill = borrow(gwin_own), borrow(start_own), borrow(fill_own)
    ev_row, ev_val = borrow(ev_row_own), borrow(ev_val_own)
    ones = no_bias[:0]  # every hidden spike is 1
    for t in range(n_steps - 1, -1, -1):
        b = b0
        while b < b1:
            n_rows = 4 if b + 4 <= b1 else 1  # four samples at once where there are four left
            for k in range(n_rows):  # the output layer's backward and weight gradient, row by row
                bk = b + k
                tn, bn = (t, bk + 1) if bk + 1 < b1 else (max(t - 1, 0), b0)  # the next row in this order
                prefetch_row(h1_st[tn, bn])
                prefetch_row(h2_st[tn, bn])
                prefetch_row(g_out[tn, bn])
                if not direct1:
                    prefetch_row(gwin[(tn % tw) * nbc + bn - b0], True)
                row = t * n_batch + bk
                go2, gi2 = go4[k], gi4[k]
                _copy(g_out[t, bk], go2[:n_out])
                _lif_back(h2_st[t, bk], go2, gvs2[bk - b0], gi2, gb2, unused2, unused2, p2[A], rc2, p2[TH], p2[VR],
                          ks2, kt2, kz2, sg2, scale2, one, half_pi, False)
                _scatter(hid_idx, ones, hid_lo[row], hid_hi[row], gi2, gw2)
            if n_rows == 4:
                _rhs_product4(n_out, w2, gi4, no_bias, g_spk4)
            else:
                _current(rhs_rows, gi4[0], 0, n_out, w2, no_bias, g_spk4[0])
            for k in range(n_rows):  # the hidden layer's backward
                bk = b + k
                gi1 = gwin[(t % tw) * nbc + bk - b0] if not direct1 else gwin[0]
                _lif_back(h1_st[t, bk], g_spk4[k], gvs1[bk - b0], gi1, gb1, unused1, unused1, p1[A], rc1, p1[TH],
                          p1[VR], ks1, kt1, kz1, sg1, scale1, one, half_pi, False)
                if direct1:
                    row = t * n_batch + bk
                    _scatter(in_idx, in_val, in_lo[row], in_hi[row], gi1, gw1)
            b += n_rows
        if t % tw == 0 and not direct1:
            _scatter_window(in_lo, in_hi, in_idx, in_val, t, min(t + tw, n_steps), n_batch, b0, b1, gwin, gw1,
                            start, fill, ev_row, ev_val)
    g_v01[b0:b1] = gvs1_own
    g_v02[b0:b1] = gvs2_own
    keep(rc1_own), keep(rc2_own), keep(rhs_own), keep(rows1_own), keep(rows2_own), keep(gvs1_own), keep(gvs2_own)
    keep(gwin_own), keep(start_own), keep(fill_own), keep(ev_row_own), keep(ev_val_own)


@nb.njit(inline="always")
def _rhs_product4(n_rhs, w, g, bias, out):
    """``out[k] = bias + sum over q < n_rhs of g[k, q] * w[q]`` for the 4 rows of ``g``: the hidden
    layer's ``dL/dspikes`` of four samples, which share each load of ``w`` (two vectors of its row
    at a time, 8 sums in registers: W1's training step 0.12 ms faster on a Zen 4, the median of 30
    pairs of ``benchmarks/ab_w1w3.py``). The same products and sums in the same order as
    ``linear_lif._current``, so the same values bit for bit."""
    lw = lanes(w)
    m = out.shape[1]
    g0, g1, g2, g3 = g[0], g[1], g[2], g[3]
    j = 0
    while j + 2 * lw <= m:
        a0, a1 = vload(bias, j), vload(bias, j + lw)
        b0, b1, c0, c1, d0, d1 = a0, a1, a0, a1, a0, a1
        for q in range(n_rhs):
            w0, w1 = vload2(w, q, j), vload2(w, q, j + lw)
            s0, s1, s2, s3 = vsplat(g0[q]), vsplat(g1[q]), vsplat(g2[q]), vsplat(g3[q])
            a0, a1 = vadd(a0, vmul(s0, w0)), vadd(a1, vmul(s0, w1))
            b0, b1 = vadd(b0, vmul(s1, w0)), vadd(b1, vmul(s1, w1))
            c0, c1 = vadd(c0, vmul(s2, w0)), vadd(c1, vmul(s2, w1))
            d0, d1 = vadd(d0, vmul(s3, w0)), vadd(d1, vmul(s3, w1))
        vstore(out[0], j, a0)
        vstore(out[0], j + lw, a1)
        vstore(out[1], j, b0)
        vstore(out[1], j + lw, b1)
        vstore(out[2], j, c0)
        vstore(out[2], j + lw, c1)
        vstore(out[3], j, d0)
        vstore(out[3], j + lw, d1)
        j += 2 * lw
    for k in range(4):  # the columns that fill no two vectors: one by one, the same operations
        gk, ok = g[k], out[k]
        for jj in range(j, m):
            acc = bias[jj]
            for q in range(n_rhs):
                acc += gk[q] * w[q, jj]
            ok[jj] = acc


@nb.njit(cache=True)
def _ones_where_binary(lo, hi, val, non_binary):
    """``val[lo[r]:hi[r]] = 1`` for the rows whose active entries are all 1 (which ``forward`` leaves
    unwritten), once the backward needs values because some other row has them."""
    for r in range(lo.shape[0]):
        if not non_binary[r]:
            val[lo[r]:hi[r]] = 1


def _forward_buffers(n_steps: int, n_batch: int, n_in: int, l1: single.Layer, l2: single.Layer, store: int,
                     take) -> SimpleNamespace:
    """Uninitialised buffers for ``_run_forward``: ``out``, ``v1_t``, ``v2_t`` (``_outputs``), ``inp``
    and ``hid`` (the spike lists, from ``take(n, dtype)``, which returns a 1-D numpy buffer) and
    ``kept`` (``h1_st, v1_ck, h2_st, v2_ck``; see ``forward``; ``store`` 1 or 2)."""
    n_hid, width, dtype = l1.n, l2.width, l1.wt.dtype
    n_rows = n_steps * n_batch
    n_h = n_steps if store == 1 else 0
    n_ck = (n_steps + SEGMENT - 1) // SEGMENT
    out, v1_t, v2_t = _outputs(n_steps, n_batch, n_hid, l2.n, dtype)
    return SimpleNamespace(
        out=out, v1_t=v1_t, v2_t=v2_t,
        inp=(take(n_rows, torch.int64), take(n_rows, torch.int64), take(n_rows * n_in, torch.int32),
             take(n_rows * n_in, dtype)),
        hid=(take(n_rows, torch.int64), take(n_rows, torch.int64), take(n_rows * n_hid, torch.int32)),
        kept=tuple(torch.empty((steps, n_batch, n), dtype=dtype)
                   for n, steps in ((n_hid, n_h), (n_hid, n_ck), (width, n_h), (width, n_ck))))


def _run_forward(x2, l1: single.Layer, l2: single.Layer, store: int, one, bufs: SimpleNamespace):
    """Spikes ``[T, B, out]``, both final membranes, the input's and the hidden layer's active
    entries as ``linear_lif.Events`` and what the backward keeps (see ``forward``), all in ``bufs``
    (``_forward_buffers``). ``x2``: the input as ``[T * B, in]``; ``InputError`` naming the first
    layer for NaN/inf in it."""
    out, inp, hid = bufs.out, bufs.inp, bufs.hid
    n_rows, n_batch = x2.shape[0], out.shape[1]
    n_chunks = max(1, min(n_batch, nb.get_num_threads()))
    bad, non_binary = np.zeros(n_rows, np.bool_), np.zeros(n_rows, np.bool_)
    unchecked = (single.NO_BYTES,) * 4  # the layers were made with their weights compared
    forward(x2, *l1.args(), *l2.args(), store, SEGMENT, one, n_chunks, out.numpy(), inp, hid, bad,
            non_binary, *[k.numpy() for k in bufs.kept], bufs.v1_t.numpy(), bufs.v2_t.numpy(),
            unchecked, np.zeros(n_chunks, np.bool_))
    _check_finite(bad, l1)
    events = single.Events(*inp[:3], _input_values(inp, non_binary))
    hidden = single.Events(*hid, l1.bias[:0])
    return out, bufs.v1_t, bufs.v2_t, events, hidden, bufs.kept


def _input_values(inp, non_binary):
    """The active inputs' values for the backward: none (every one is 1) unless a row had other
    values, then all of them (``inp[3]``, its binary rows' slots filled with ones)."""
    if not non_binary.any():
        return inp[3][:0]
    _ones_where_binary(inp[0], inp[1], inp[3], non_binary)
    return inp[3]


class PairInference:
    """``linear_lif_pair``'s call without a backward for inputs of one shape: spikes and both final
    membranes only, nothing kept (each thread lists a row's entries in small rows of its own). Made
    once per shape, layers and weights (``inference``) with the layers at rest and the kernel's
    arguments, so that a call runs the kernel with little Python around it: every operation between
    two calls runs with caches the kernel has just filled with its own data.

    The layers come from ``Layer.at_rest(unchecked=True)``: the kernel compares the kept input-major
    weights' bytes with the weights' own, and reports a weight changed in place unseen by autograd
    (through ``.data``); ``run`` then returns ``None``."""

    def __init__(self, n_steps: int, n_batch: int, first, second, values, cfgs):
        self.layers = l1, l2 = [single.Layer.at_rest(cfg, weight, bias, vals, n_batch, pad=pad, unchecked=True)
                                for cfg, (weight, bias, *_), vals, pad in zip(cfgs, (first, second), values,
                                                                                (False, True))]
        for layer, (weight, *_) in zip(self.layers, (first, second)):
            if layer.unchecked[0].shape[0] == 0 and isinstance(weight, torch.nn.Parameter):
                # made just now: taken again, with the bytes the kernel compares at every call
                layer.wt, *layer.unchecked = single.unchecked_input_major(weight, layer.width)
        n_chunks = max(1, min(n_batch, nb.get_num_threads()))
        self.shape = n_steps, n_batch
        self.bad, self.stale = np.zeros(n_steps * n_batch, np.bool_), np.zeros(n_chunks, np.bool_)
        inp = (_NO_ROWS, _NO_ROWS, _NO_INDICES, l1.bias[:0])
        nothing = l1.p[:0, :0].reshape(0, 1, 0)  # what the kernel keeps with store == 0
        self.args = ((*l1.args(), *l2.args(), 0, SEGMENT, _one(first[0]), n_chunks),
                     (inp, inp[:3], self.bad, self.bad[:0], nothing, nothing, nothing, nothing),
                     ((*l1.unchecked, *l2.unchecked), self.stale))

    def run(self, x2, biases, values):
        """Spikes ``[T, B, out]`` and both final membranes (fresh tensors) of ``x2 [T * B, in]``, with
        the layers' biases and LIF parameter values as they are now; ``None`` when a weight has
        changed in place."""
        l1, l2 = self.layers
        for layer, bias, vals in zip(self.layers, biases, values):
            layer._fill(bias, vals)
            layer.v0[:] = layer.p[VL]
        out, v1_t, v2_t = _outputs(*self.shape, l1.n, l2.n, l1.wt.dtype)
        self.bad[:] = False
        self.stale[:] = False
        before, lists, after = self.args
        forward(x2, *before, out.numpy(), *lists, v1_t.numpy(), v2_t.numpy(), *after)
        if self.stale.any():
            return None
        _check_finite(self.bad, l1)
        return out, v1_t, v2_t


# id of the first weight -> (a weak reference to it, the key, its PairInference): the last plan of each
# fused pair, dropped with its weight
_INFERENCE: dict[int, tuple] = {}


def _forget_plan(key: int):
    return lambda _ref: _INFERENCE.pop(key, None)


def inference(x3, first, second, values, cfgs):
    """``PairInference.run`` of ``x3 [T, B, in]`` by the kept plan of these layers and this input
    shape (made anew when the shape, the layers' weights or biases, their configuration or the
    thread count change)."""
    (w1, b1, *_), (w2, b2, *_) = first, second
    key = (tuple(x3.shape), x3.dtype, nb.get_num_threads(), cfgs,
           *[(id(t), t.data_ptr(), t.dtype) for t in (w1, b1, w2, b2) if t is not None], b1 is None, b2 is None)
    x2 = _rows(x3)
    while True:
        entry = _INFERENCE.get(id(w1))
        if entry is not None and entry[0]() is w1 and entry[1] == key:
            plan = entry[2]
        else:
            plan = PairInference(*x3.shape[:2], first, second, values, cfgs)
            if isinstance(w1, torch.nn.Parameter) and isinstance(w2, torch.nn.Parameter):
                _INFERENCE[id(w1)] = (weakref.ref(w1, _forget_plan(id(w1))), key, plan)
        result = plan.run(x2, (b1, b2), values)
        if result is not None:
            return result
        _INFERENCE.pop(id(w1), None)  # a weight changed in place: its input-major form is made again
        single.forget_input_major(w1)
        single.forget_input_major(w2)


def _outputs(n_steps, n_batch, n_hid, n_out, dtype):
    """The kernel's spikes ``[T, B, out]`` and final membranes of both layers, uninitialised."""
    return (torch.empty((n_steps, n_batch, n_out), dtype=dtype), torch.empty((n_batch, n_hid), dtype=dtype),
            torch.empty((n_batch, n_out), dtype=dtype))


def _check_finite(bad, l1: single.Layer) -> None:
    if bad.any():
        raise InputError(f"{l1.cfg.layer}: input contains NaN or inf values")


_NO_ROWS, _NO_INDICES = np.empty(0, np.int64), np.empty(0, np.int32)
# the backward's two layers in one sweep where it applies (``backward``); False: always one kernel
# call per layer (``_layer_backward``), which the tests compare it with
ONE_SWEEP = True


class PairFunction(torch.autograd.Function):
    """Inputs: cfg1, cfg2, x [T, B, in], then per layer weight, bias, v0 and the ``PARAMS``
    tensors. Outputs: spikes [T, B, out], v_T of the hidden layer, v_T of the output layer."""

    @staticmethod
    def forward(ctx, cfg1, cfg2, x, w1, b1, v01, a1, c1, r1, vl1, th1, vr1, w2, b2, v02, a2, c2, r2, vl2, th2, vr2):
        set_threads()
        n_steps, n_batch, n_in = x.shape
        l1 = single.Layer(cfg1, w1, b1, v01, (a1, c1, r1, vl1, th1, vr1))
        l2 = single.Layer(cfg2, w2, b2, v02, (a2, c2, r2, vl2, th2, vr2), pad=True)
        store = 2 if cfg1.recompute else 1
        ctx.lease = scratch.Lease()  # the buffers of ctx.events and ctx.hidden, as long as ctx lives
        bufs = _forward_buffers(n_steps, n_batch, n_in, l1, l2, store, ctx.lease.take)
        out, v1_t, v2_t, ctx.events, ctx.hidden, kept = _run_forward(_rows(x), l1, l2, store, _one(w1), bufs)
        ctx.layers = (l1, l2)
        ctx.save_for_backward(*kept, w2)  # autograd's version check: w2 must not change before the backward
        ctx.shape = (n_steps, n_batch, n_in)
        return out, v1_t, v2_t

    @staticmethod
    def backward(ctx, g_out, g_v1t, g_v2t):
        """The output layer, then the hidden layer. The output layer runs padded to whole vectors,
        as in the forward: its padding's gradients are zero and are dropped at the end."""
        set_threads()
        l1, l2 = ctx.layers
        h1_st, v1_ck, h2_st, v2_ck, w2 = ctx.saved_tensors
        n_steps, n_batch, n_in = ctx.shape
        n_hid, n_out, width = l1.n, l2.n, l2.width
        dtype = l1.wt.dtype
        needs = ctx.needs_input_grad[2:]  # x, then per layer weight, bias, v0 and the 6 parameters
        need_x, need_l1, need_l2 = needs[0], needs[1:10], needs[10:19]
        recompute = h1_st.shape[0] == 0

        def padded(g, shape):
            full = torch.zeros((*shape[:-1], width), dtype=dtype)
            if g is not None:
                full[..., :n_out] = g
            return full

        g_v = [torch.zeros((n_batch, n_hid), dtype=dtype) if g_v1t is None else g_v1t.contiguous(),
               padded(g_v2t, (n_batch, n_out))]
        n_chunks = max(1, min(n_batch, nb.get_num_threads()))

        parts1, parts2 = _grad_parts(n_chunks, n_in, n_hid, dtype), _grad_parts(n_chunks, n_hid, width, dtype)
        one = _one(l1.wt)
        if ONE_SWEEP and not (recompute or need_x or any(need_l1[3:]) or any(need_l2[3:])) \
                and single.direct_scatter(l2.wt):
            g_out = torch.zeros((n_steps, n_batch, n_out), dtype=dtype) if g_out is None else g_out.contiguous()
            g_v0 = _one_sweep_backward(ctx, g_out, g_v, h1_st, h2_st, parts1, parts2, w2, one)
            return (None, None, None, *single.layer_grads(need_l1, parts1, g_v0[0], n_hid),
                    *single.layer_grads(need_l2, parts2, g_v0[1], n_out))
        g_out = padded(g_out, (n_steps, n_batch, n_out))
        g_i1 = torch.empty((n_steps, n_batch, n_hid) if need_x else (1, 1, 1), dtype=dtype)
        g_i2 = torch.empty((n_steps, n_batch, width), dtype=dtype)  # dL/dI of the output layer
        g_v[1] = _layer_backward(l2, ctx.hidden, h2_st, v2_ck, g_out, np.empty((0, width), one.dtype), g_v[1],
                                 any(need_l2[3:]), g_i2, True, parts2, recompute, one)
        # the hidden layer's dL/dspikes = dL/dI2 @ W2, formed row by row inside its backward (the
        # padding's columns of dL/dI2 left out)
        g_v[0] = _layer_backward(l1, ctx.events, h1_st, v1_ck, g_i2, w2.detach().contiguous().numpy(), g_v[0],
                                 any(need_l1[3:]), g_i1, need_x, parts1, recompute, one)
        g_x = g_i1 @ l1.wt.t() if need_x else None
        return (None, None, g_x, *single.layer_grads(need_l1, parts1, g_v[0], n_hid),
                *single.layer_grads(need_l2, parts2, g_v[1], n_out))


def _lif_args(cfg: single.Config, one) -> tuple:
    """A layer's LIF options as ``backward`` takes them."""
    return cfg.reset_mode, cfg.detach, cfg.sg_kind, one.dtype.type(cfg.sg_scale)


def _grad_parts(n_chunks: int, n_in: int, n_out: int, dtype) -> tuple:
    """Each thread's weight, bias and ``PARAMS`` gradient parts of a layer, uninitialised."""
    return (torch.empty((n_chunks, n_in, n_out), dtype=dtype), torch.empty((n_chunks, n_out), dtype=dtype),
            torch.empty((n_chunks, len(PARAMS), n_out), dtype=dtype))


def _one_sweep_backward(ctx, g_out, g_v, h1_st, h2_st, parts1, parts2, w2, one) -> list:
    """``backward`` (both layers in one sweep over the steps) into the gradient parts; returns both
    layers' ``dL/dv0``. ``g_out`` holds the output layer's real columns, ``g_v`` both layers' ``dL/dv``
    after the last step (the output layer's padded)."""
    l1, l2 = ctx.layers
    g_v0 = [torch.empty_like(g) for g in g_v]
    backward(g_out.numpy(), g_v[0].numpy(), g_v[1].numpy(), *ctx.events, *ctx.hidden[:3], h1_st.numpy(),
             h2_st.numpy(), w2.detach().contiguous().numpy(), l1.p, l2.p, _lif_args(l1.cfg, one),
             _lif_args(l2.cfg, one), one,
             one.dtype.type(math.pi / 2), parts1[0].numpy(), parts1[1].numpy(), parts2[0].numpy(), parts2[1].numpy(),
             g_v0[0].numpy(), g_v0[1].numpy(), single.direct_scatter(l1.wt))
    return g_v0


def _layer_backward(layer: single.Layer, events, h_st, v_ck, g_out, g_rhs, g_v, need_params, g_i, need_gi, parts,
                    recompute, one):
    """``linear_lif.backward`` of one layer over all steps and its ``layer.width`` columns: writes
    the gradient ``parts`` and, with ``need_gi``, ``dL/dI`` into ``g_i``; returns ``dL/dv0``. The
    kernel recomputes the membranes from the checkpoints ``v_ck`` when ``h_st`` was not kept."""
    cfg = layer.cfg
    g_v0 = torch.empty_like(g_v)
    h = h_st[:0] if recompute else h_st
    single.backward(g_out.numpy(), g_rhs, g_v.numpy(), events.lo, events.hi, events.indices, events.values,
                    layer.wt.numpy(), layer.bias, h.numpy(), (v_ck if recompute else v_ck[:0]).numpy(), SEGMENT,
                    v_ck[0].numpy(), *layer.p, cfg.reset_mode, cfg.detach, cfg.sg_kind,
                    one.dtype.type(cfg.sg_scale), one, one.dtype.type(math.pi / 2), need_params, need_gi,
                    *[q.numpy() for q in parts], g_i.numpy(), g_v0.numpy(), single.direct_scatter(layer.wt))
    return g_v0


def _rows(x):
    """``x [T, B, in]`` as the contiguous ``[T * B, in]`` array the forward scans (bool as uint8)."""
    a = x.detach().numpy()  # numpy's reshape: fewer calls than torch's, each run with cold caches
    rows = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    return rows.view(np.uint8) if rows.dtype == np.bool_ else rows


def _param_values(params) -> tuple:
    """A ``LIFParams``' values in ``PARAMS`` order (floats or tensors, as they come)."""
    a = params.alpha
    return a, 1.0 - a, params.r, params.v_leak, params.v_threshold, params.v_reset


def _config(params, spike_fn, layer: str, recompute: bool) -> single.Config:
    sg_kind, sg_scale = _surrogate_code(spike_fn)
    return single.Config(RESET_CODES[params.reset], bool(params.detach_reset), sg_kind, sg_scale, layer, recompute)


def linear_lif_pair(x, first, second, recompute=None):
    """Spikes ``[T, *batch, out]`` of ``LIF2(Linear2(LIF1(Linear1(x))))`` and both final membranes.

    ``first``/``second``: ``(weight, bias, params, spike_fn, layer_name)`` per layer (``params`` a
    ``LIFParams``; the caller has checked ``linear_lif.unsupported_reason`` for each). Both layers
    start from ``v_leak``. ``recompute`` as in ``linear_lif.linear_lif`` (decided on the hidden
    layer's size)."""
    n_steps, batch, n_in = x.shape[0], x.shape[1:-1], x.shape[-1]
    x3 = x.reshape(n_steps, -1, n_in)
    n_batch = x3.shape[1]
    dtype = first[0].dtype  # the input may be bool or uint8 spikes, read as they are
    values = [_param_values(params) for _, _, params, _, _ in (first, second)]
    if recompute is None:
        recompute = n_steps * n_batch * first[0].shape[0] * first[0].element_size() > single.RECOMPUTE_ABOVE_BYTES
    cfg1, cfg2 = (_config(p, s, name, bool(recompute)) for _, _, p, s, name in (first, second))
    operands = [(weight, bias, *vals) for (weight, bias, *_), vals in zip((first, second), values)]
    if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                       for t in (x3, *operands[0], *operands[1])):
        inputs = []
        for weight, bias, *vals in operands:
            n = weight.shape[0]
            # a float parameter goes to the kernel as it is (no tensor made of it, none for autograd)
            vec = [v if isinstance(v, float) else single._vector(v, dtype, n) for v in vals]
            v0 = single._vector(vals[VL], dtype, n).detach().expand(n_batch, n).contiguous()
            inputs.append([weight, torch.zeros(n, dtype=dtype) if bias is None else bias, v0, *vec])
        out, v1_t, v2_t = PairFunction.apply(cfg1, cfg2, x3, *inputs[0], *inputs[1])
    else:
        set_threads()
        out, v1_t, v2_t = inference(x3, first, second, values, (cfg1, cfg2))
    n_hid, n_out = first[0].shape[0], second[0].shape[0]
    return out.reshape(n_steps, *batch, n_out), v1_t.reshape(*batch, n_hid), v2_t.reshape(*batch, n_out)


class PairStep:
    """One training step of the pair without autograd, for inputs of one shape: ``linear_lif_pair``'s
    forward keeping every membrane, the loss's gradient, then the one-sweep ``backward``; the same
    kernels as the autograd path, without the graph, checks and fresh tensors around them there
    (``run``). Its ``forward_pass`` and ``backward_pass`` also serve the autograd call
    (``kernels.pair_training``).

    Made once per input shape with everything the step writes but the spikes: both layers' operands
    (the weights input-major), the spike lists and membranes of the forward, the backward's gradient
    parts and the gradients, and the kernels' argument lists over them. Fresh buffers every step land
    at new places in the heap, cold in cache, and every Python operation between the kernels runs cold
    too (the kernels have just filled the caches with their data): ``run`` keeps them few.
    ``first``/``second`` as ``linear_lif_pair``'s, for input and LIF parameters that need no gradient;
    ``self.reason``: why the one sweep does not apply (``None`` when it does): ``recompute`` (decided
    as ``linear_lif_pair`` does) would not keep every membrane, or the output layer's gradient part
    does not fit in L1."""

    def __init__(self, x, first, second, recompute=None):
        n_steps, n_batch, n_in = x.shape
        (w1, b1, params1, _, _), (w2, b2, params2, _, _) = first, second
        n_hid, n_out = w1.shape[0], w2.shape[0]
        self.reason = None
        if recompute is None:
            recompute = n_steps * n_batch * n_hid * w1.element_size() > single.RECOMPUTE_ABOVE_BYTES
        if recompute:
            self.reason = "keeping the membrane of every step would take too much memory (recompute)"
            return
        dtype = w1.dtype
        width = single.padded_width(n_out, w2.element_size())
        cfg1, cfg2 = (_config(p, s, name, False) for _, _, p, s, name in (first, second))
        self.layers = l1, l2 = (
            single.Layer.at_rest(cfg1, w1.detach(), b1, _param_values(params1), n_batch,
                                 wt=torch.empty((n_in, n_hid), dtype=dtype)),
            single.Layer.at_rest(cfg2, w2.detach(), b2, _param_values(params2), n_batch, pad=True,
                                 wt=torch.empty((n_hid, width), dtype=dtype)))
        if not single.direct_scatter(l2.wt):
            self.reason = "the output layer's weight gradient does not fit in L1"
            return
        set_threads()
        n_chunks = max(1, min(n_batch, nb.get_num_threads()))
        one = _one(w1)
        bufs = _forward_buffers(n_steps, n_batch, n_in, l1, l2, 1, lambda n, dt: torch.empty(n, dtype=dt).numpy())
        self.out_shape, self.dtype = bufs.out.shape, dtype
        self.v_t = bufs.v1_t, bufs.v2_t
        self.inp, self.hid = bufs.inp, bufs.hid
        # the forward's flags of each row, NaN/inf and values other than 1, in one array: one pass clears
        # them, one tells whether any is set
        self.flags = np.zeros((2, n_steps * n_batch), np.bool_)
        self.bad, self.non_binary = self.flags
        self.g_out = torch.empty(bufs.out.shape, dtype=dtype)
        # dL/dv after the last step: 0 (the kernel copies it, never writes it)
        self.g_v = np.zeros((n_batch, n_hid), one.dtype), np.zeros((n_batch, width), one.dtype)
        self.no_values = self.values = bufs.inp[3][:0]  # values: the last forward's active inputs' (none: all 1)
        parts1, parts2 = _grad_parts(n_chunks, n_in, n_hid, dtype), _grad_parts(n_chunks, n_hid, width, dtype)
        self.parts = [q.numpy() for q in (*parts1[:2], *parts2[:2])]
        self.grads = self.new_grads()
        self._grad_arrays = [g.numpy() for pair in self.grads for g in pair]
        self._adam_kernels = (adam.adam_from_parts, adam.adam_bias_from_parts) * 2
        h1_st, v1_ck, h2_st, v2_ck = (k.numpy() for k in bufs.kept)
        # the kernels' arguments around those that change from call to call
        self.forward_args = ((*l1.args(), *l2.args(), 1, SEGMENT, one, n_chunks),
                             (bufs.inp, bufs.hid, self.bad, self.non_binary, h1_st, v1_ck, h2_st, v2_ck,
                              bufs.v1_t.numpy(), bufs.v2_t.numpy(), (single.NO_BYTES,) * 4,
                              np.zeros(n_chunks, np.bool_)))
        g_v0 = np.empty((n_batch, n_hid), one.dtype), np.empty((n_batch, width), one.dtype)
        self.backward_args = ((h1_st, h2_st), (l1.p, l2.p, _lif_args(cfg1, one), _lif_args(cfg2, one), one,
                                               one.dtype.type(math.pi / 2),
                                               *self.parts, *g_v0, single.direct_scatter(l1.wt)))
        self.fixed_params = all(isinstance(v, float) for params in (params1, params2)
                                for v in _param_values(params))

    def run(self, x, w1, b1, w2, b2, params, loss_grad):
        """Spikes ``[T, B, out]`` of ``x`` (a fresh tensor) and the loss; then ``reduce`` (or ``adam``)
        writes the weight and bias gradients into ``self.grads`` (``(dL/dW1, dL/db1), (dL/dW2,
        dL/db2)``), overwritten by the next call. ``params`` as ``forward_pass``'s. ``loss_grad(spikes,
        g_out)`` returns the loss and writes ``dL/dspikes`` into ``g_out``."""
        out = self.forward_pass(x, w1, b1, w2, b2, params)
        loss = loss_grad(out, self.g_out)
        self.backward_pass(self.g_out.numpy())
        return out, loss

    def forward_pass(self, x, w1, b1, w2, b2, params):
        """Spikes ``[T, B, out]`` of ``x`` (a fresh tensor), both final membranes in ``self.v_t``, and
        what ``backward_pass`` reads in the step's buffers. ``params``: both layers' ``LIFParams``, or
        ``None`` when they are the floats the step was made with (``self.fixed_params``)."""
        set_threads()
        for layer, w, b, p in zip(self.layers, (w1, w2), (b1, b2), params or (None, None)):
            layer.reload(w, b, None if p is None else _param_values(p))
        out = torch.empty(self.out_shape, dtype=self.dtype)
        self.flags[:] = False
        before, after = self.forward_args
        forward(_rows(x), *before, out.numpy(), *after)
        self.values = self.no_values
        if self.flags.any():
            _check_finite(self.bad, self.layers[0])
            self.values = _input_values(self.inp, self.non_binary)
        return out

    def backward_pass(self, g_out, g_v=None) -> None:
        """The threads' gradient parts of the last ``forward_pass`` from ``g_out`` (``dL/dspikes``, a
        ``[T, B, out]`` array) and ``g_v`` (both layers' ``dL/dv`` after the last step, the output
        layer's padded to its width; ``None``: zeros)."""
        kept, rest = self.backward_args
        backward(g_out, *(g_v or self.g_v), *self.inp[:3], self.values, *self.hid, *kept, self.layers[1].source,
                 *rest)

    def new_grads(self):
        """Tensors for ``reduce``'s gradients: ``(dL/dW1, dL/db1), (dL/dW2, dL/db2)``."""
        (n_hid, n_in), n_out = self.layers[0].wt.shape[::-1], self.layers[1].n
        return tuple((torch.empty(shape, dtype=self.dtype), torch.empty(shape[0], dtype=self.dtype))
                     for shape in ((n_hid, n_in), (n_out, n_hid)))

    def reduce(self, grads=None) -> None:
        """The weight and bias gradients of the last backward into ``grads`` (``new_grads``; default
        ``self.grads``), from the threads' parts."""
        (g_w1, g_b1), (g_w2, g_b2) = grads or self.grads
        single.sum_transposed(self.parts[0], g_w1.numpy())
        single.sum_transposed(self.parts[2], g_w2.numpy())
        self.parts[1].sum(0, out=g_b1.numpy())
        self.parts[3][:, :self.layers[1].n].sum(0, out=g_b2.numpy())

    def adam(self, params, terms) -> None:
        """``reduce`` with Adam's update of ``params`` (``(W1, b1, W2, b2)``) in the same calls
        (``kernels.adam``); ``terms``: each one's moments and scalars (``train.fused_adam.adam_terms``)."""
        for kernel, part, grad, param, (m, v, scalars) in zip(self._adam_kernels, self.parts, self._grad_arrays,
                                                              params, terms):
            kernel(part, grad, param.detach().numpy(), m, v, *scalars)
