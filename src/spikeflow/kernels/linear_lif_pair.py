"""Two fused ``LinearLIF`` layers in one kernel: the hidden spikes never leave their compressed form.

Run one after the other, the two layers of a spiking MLP write the hidden spikes as a dense
``[T, B, hidden]`` tensor, compress it again for the second layer, and in the backward build
the dense ``dL/dspikes = dL/dI2 @ W2`` before the first layer's backward reads it. Here each
``(t, b)`` runs both layers at once: the first layer's spikes are gathered into a list of
active hidden indices (kept for the backward: 4 bytes per hidden spike) and the second layer
adds the weight rows of that list; the backward goes through both layers step by step and
forms each step's ``dL/dspikes`` from the second layer's ``dL/dI2`` row in registers
(``sum_o dL/dI2[o] W2[o]``). Neither the hidden spike map nor its gradient is ever stored.

Same LIF and surrogate as ``spikeflow.kernels.linear_lif`` (its inline pieces are shared): the
spikes and membranes equal two chained ``linear_lif`` calls bit for bit; gradients agree to
rounding (``dL/dspikes`` is summed in another order than the matmul's).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from spikeflow.kernels import linear_lif as single
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
    _current,
    _lif_back,
    _lif_param_grads,
    _lif_step,
    _reset_partials,
    _scatter_window,
)


@nb.njit(inline="always")
def _gather_spikes(spk, hid_idx, p):
    """Appends the positions of ``spk``'s non-zero entries at ``hid_idx[p:]``; returns the new end."""
    zero = spk[0] - spk[0]
    for j in range(spk.shape[0]):  # branch-free: every position is written, the count moves on spikes
        hid_idx[p] = j
        p += spk[j] != zero
    return p


@nb.njit(parallel=True, cache=True)
def forward(indptr, indices, values, wt1, bias1, v01, p1, reset1, wt2, bias2, v02, p2, reset2, store, seg, one,
            n_chunks, out, hid_lo, hid_hi, hid_idx, h1_st, v1_ck, h2_st, v2_ck, v1_t, v2_t):
    """Both layers over all T, each of ``n_chunks`` threads taking a range of samples time-major.

    ``p1``/``p2``: the layers' ``PARAMS`` as ``[6, n]`` rows. ``store``: 0 nothing for a backward,
    1 keep both layers' ``h`` of every step, 2 keep both membranes every ``seg`` steps. Sample
    ``b``'s hidden spikes at step ``t`` go to ``hid_idx[hid_lo[r]:hid_hi[r]]`` (``r = t * B + b``),
    each thread writing its own region of ``hid_idx`` (``T * hidden`` slots per sample, touched
    only where written). ``wt2``/``bias2`` may carry zero columns past the layer's ``out`` outputs
    (``Layer(pad=True)``): a narrow output layer then adds whole vectors only."""
    n_steps, n_batch, _ = out.shape
    n_hid = wt1.shape[1]
    no_values = np.empty(0, wt2.dtype)  # hidden spikes are 1
    for ch in nb.prange(n_chunks):
        b0, b1, v1s = _chunk(v01, ch, n_chunks)
        _, _, v2s = _chunk(v02, ch, n_chunks)
        cur1 = np.empty(n_hid, wt1.dtype)
        cur2p = np.empty(wt2.shape[1], wt2.dtype)
        cur2 = cur2p[:out.shape[2]]
        spk = np.empty(n_hid, wt1.dtype)
        p = b0 * n_steps * n_hid
        for t in range(n_steps):
            for b in range(b0, b1):
                if store == 2 and t % seg == 0:
                    v1_ck[t // seg, b] = v1s[b - b0]
                    v2_ck[t // seg, b] = v2s[b - b0]
                row = t * n_batch + b
                _current(indices, values, indptr[row], indptr[row + 1], wt1, bias1, cur1)
                _lif_step(cur1, v1s[b - b0], p1[A], p1[C], p1[R], p1[VL], p1[TH], p1[VR], reset1, one, spk)
                hid_lo[row] = p
                p = _gather_spikes(spk, hid_idx, p)
                hid_hi[row] = p
                _current(hid_idx, no_values, hid_lo[row], p, wt2, bias2, cur2p)
                _lif_step(cur2, v2s[b - b0], p2[A], p2[C], p2[R], p2[VL], p2[TH], p2[VR], reset2, one, out[t, b])
                if store == 1:
                    h1_st[t, b] = cur1
                    h2_st[t, b] = cur2
        v1_t[b0:b1] = v1s
        v2_t[b0:b1] = v2s


@nb.njit(inline="always")
def _window(seg, nbc):
    """Steps per weight-gradient window: about 128 rows, a divisor of ``seg``."""
    tw = 1
    while tw * 2 * nbc <= 128 and tw * 2 <= seg and seg % (tw * 2) == 0:
        tw *= 2
    return tw


@nb.njit(parallel=True, cache=True)
def backward(g_out, g_v1t, g_v2t, indptr, indices, values, wt1, bias1, v01, p1, reset1, detach1, sg1, sgs1,
             w2, wt2, bias2, v02, p2, reset2, detach2, sg2, sgs2, hid_lo, hid_hi, hid_idx,
             h1_st, v1_ck, h2_st, v2_ck, seg, one, half_pi, need_p1, need_p2, need_gi,
             g_wt1_parts, g_b1_parts, g_p1_parts, g_wt2_parts, g_b2_parts, g_p2_parts, g_i, g_v01, g_v02):
    """Reverse pass through both layers, segment by segment of ``seg`` steps, time-major over each
    thread's samples: the second layer's ``dL/dI2`` row gives the step's ``dL/dspikes`` of the
    hidden layer (``w2 [out, hidden]``), which feeds the first layer's LIF backward at once. When
    ``v1_ck``/``v2_ck`` hold the membranes at each segment start, both layers' ``h`` of the segment
    are recomputed first (the second layer from the kept hidden spikes)."""
    n_steps, n_batch, n_out = g_out.shape
    n_hid = wt1.shape[1]
    n_in = wt1.shape[0]
    recompute = v1_ck.shape[0] > 0
    n_seg = (n_steps + seg - 1) // seg
    n_chunks = g_wt1_parts.shape[0]
    zero = one - one
    ks1, kt1, kz1 = _reset_partials(reset1, detach1, one)
    ks2, kt2, kz2 = _reset_partials(reset2, detach2, one)
    rc1 = p1[R] * p1[C]
    rc2 = p2[R] * p2[C]
    lo1 = indptr[:-1]
    hi1 = indptr[1:]
    no_values = np.empty(0, wt2.dtype)
    for ch in nb.prange(n_chunks):
        gw1, gb1, gp1 = g_wt1_parts[ch], g_b1_parts[ch], g_p1_parts[ch]
        gw2, gb2, gp2 = g_wt2_parts[ch], g_b2_parts[ch], g_p2_parts[ch]
        gw1[:] = zero
        gb1[:] = zero
        gp1[:] = zero
        gw2[:] = zero
        gb2[:] = zero
        gp2[:] = zero
        b0, b1, gv1s = _chunk(g_v1t, ch, n_chunks)  # dL/dv of each sample, carried backwards in time
        _, _, gv2s = _chunk(g_v2t, ch, n_chunks)
        nbc = b1 - b0
        tw = _window(seg, nbc)
        gwin1 = np.empty((tw * nbc, n_hid), wt1.dtype)
        gwin2 = np.empty((tw * nbc, n_out), wt2.dtype)
        start1 = np.empty(n_in + 1, np.int64)
        fill1 = np.empty(n_in, np.int64)
        ev_row1 = np.empty(tw * nbc * n_in, np.int32)
        ev_val1 = np.empty(tw * nbc * n_in if values.shape[0] > 0 else 0, wt1.dtype)
        start2 = np.empty(n_hid + 1, np.int64)
        fill2 = np.empty(n_hid, np.int64)
        ev_row2 = np.empty(tw * nbc * n_hid, np.int32)
        gs = np.empty(n_hid, wt1.dtype)  # dL/dspikes of the hidden layer at one step
        gh1, gu1, gvi1 = np.empty(n_hid, wt1.dtype), np.empty(n_hid, wt1.dtype), np.empty(n_hid, wt1.dtype)
        cur1, spk1 = np.empty(n_hid, wt1.dtype), np.empty(n_hid, wt1.dtype)
        gh2, gu2, gvi2 = np.empty(n_out, wt2.dtype), np.empty(n_out, wt2.dtype), np.empty(n_out, wt2.dtype)
        cur2p, spk2 = np.empty(wt2.shape[1], wt2.dtype), np.empty(n_out, wt2.dtype)
        cur2 = cur2p[:n_out]
        hb1 = np.empty((seg if recompute else 1, nbc, n_hid), wt1.dtype)
        hb2 = np.empty((seg if recompute else 1, nbc, n_out), wt2.dtype)
        vr1 = np.empty((nbc, n_hid), wt1.dtype)
        vr2 = np.empty((nbc, n_out), wt2.dtype)
        for s in range(n_seg - 1, -1, -1):
            t0 = s * seg
            t1 = min(n_steps, t0 + seg)
            if recompute:
                for b in range(b0, b1):
                    vr1[b - b0] = v1_ck[s, b]
                    vr2[b - b0] = v2_ck[s, b]
                for t in range(t0, t1):
                    for b in range(b0, b1):
                        row = t * n_batch + b
                        h = hb1[t - t0, b - b0]
                        _current(indices, values, indptr[row], indptr[row + 1], wt1, bias1, h)
                        _lif_step(h, vr1[b - b0], p1[A], p1[C], p1[R], p1[VL], p1[TH], p1[VR], reset1, one, spk1)
                        h = hb2[t - t0, b - b0]
                        _current(hid_idx, no_values, hid_lo[row], hid_hi[row], wt2, bias2, cur2p)
                        h[:] = cur2
                        _lif_step(h, vr2[b - b0], p2[A], p2[C], p2[R], p2[VL], p2[TH], p2[VR], reset2, one, spk2)
            for t in range(t1 - 1, t0 - 1, -1):
                for b in range(b0, b1):
                    row = t * n_batch + b
                    lr = (t % tw) * nbc + b - b0
                    first = t == t0 if recompute else t == 0
                    # the second layer
                    ht = hb2[t - t0, b - b0] if recompute else h2_st[t, b]
                    gv = gv2s[b - b0]
                    gi2 = gwin2[lr]
                    if need_p2:
                        gvi2[:] = gv
                    _lif_back(ht, g_out[t, b], gv, gi2, gb2, gu2, gh2, p2[A], rc2, p2[TH], p2[VR], ks2, kt2, kz2, sg2,
                              sgs2, one, half_pi)
                    if need_p2:
                        hp = hb2[max(t - 1 - t0, 0), b - b0] if recompute else h2_st[max(t - 1, 0), b]
                        _current(hid_idx, no_values, hid_lo[row], hid_hi[row], wt2, bias2, cur2p)
                        _lif_param_grads(ht, hp, v2_ck[s, b] if recompute else v02[b], first, gvi2, gu2, gh2, cur2,
                                         gp2, p2[A], p2[C], p2[R], p2[VL], p2[TH], p2[VR], ks2, kt2, one)
                    # dL/dspikes of the hidden layer: the rows of w2 weighted by dL/dI2
                    gs[:] = zero
                    for o in range(n_out):
                        g = gi2[o]
                        for j in range(n_hid):
                            gs[j] += g * w2[o, j]
                    # the first layer
                    ht = hb1[t - t0, b - b0] if recompute else h1_st[t, b]
                    gv = gv1s[b - b0]
                    gi1 = gwin1[lr]
                    if need_p1:
                        gvi1[:] = gv
                    _lif_back(ht, gs, gv, gi1, gb1, gu1, gh1, p1[A], rc1, p1[TH], p1[VR], ks1, kt1, kz1, sg1, sgs1,
                              one, half_pi)
                    if need_gi:
                        g_i[t, b] = gi1
                    if need_p1:
                        hp = hb1[max(t - 1 - t0, 0), b - b0] if recompute else h1_st[max(t - 1, 0), b]
                        _current(indices, values, indptr[row], indptr[row + 1], wt1, bias1, cur1)
                        _lif_param_grads(ht, hp, v1_ck[s, b] if recompute else v01[b], first, gvi1, gu1, gh1, cur1,
                                         gp1, p1[A], p1[C], p1[R], p1[VL], p1[TH], p1[VR], ks1, kt1, one)
                if t % tw == 0:
                    t_hi = min(t + tw, n_steps)
                    _scatter_window(lo1, hi1, indices, values, t, t_hi, n_batch, b0, b1, gwin1, gw1, start1, fill1,
                                    ev_row1, ev_val1)
                    _scatter_window(hid_lo, hid_hi, hid_idx, no_values, t, t_hi, n_batch, b0, b1, gwin2, gw2, start2,
                                    fill2, ev_row2, no_values)
        g_v01[b0:b1] = gv1s
        g_v02[b0:b1] = gv2s


class Layer:
    """One layer's operands for the kernels: weight input-major, bias, initial membrane, ``PARAMS`` rows.

    ``pad``: the weight and bias get zero columns up to a whole number of 64-byte vectors (the
    same sums in the real columns; a 20-output layer then adds two vectors per event instead of
    one vector and four scalars)."""

    def __init__(self, cfg: single.Config, weight, bias, v0, params, pad: bool = False):
        self.cfg = cfg
        self.n = weight.shape[0]
        self.wt, self.bias, self.v0, p = single._kernel_operands(weight, bias, v0, params)
        self.p = torch.stack([q.expand(self.n) for q in p]).contiguous()
        lanes = 64 // weight.element_size()
        width = -(-self.n // lanes) * lanes
        if pad and width != self.n:
            self.wt = torch.nn.functional.pad(self.wt, (0, width - self.n))
            self.bias = torch.nn.functional.pad(self.bias, (0, width - self.n))

    def args(self):
        return self.wt.numpy(), self.bias.numpy(), self.v0.numpy(), self.p.numpy(), self.cfg.reset_mode


def _run_forward(events, l1: Layer, l2: Layer, n_steps: int, n_batch: int, store: int, one):
    """Spikes ``[T, B, out]``, both final membranes and what the backward keeps (see ``forward``)."""
    n_hid, n_out = l1.n, l2.n
    dtype = l1.wt.dtype
    n_chunks = max(1, min(n_batch, nb.get_num_threads()))
    n_seg = (n_steps + SEGMENT - 1) // SEGMENT

    def kept(n, mode):
        return torch.empty((n_steps, n_batch, n) if store == mode == 1 else
                           (n_seg, n_batch, n) if store == mode == 2 else (0, 1, 1), dtype=dtype)

    out = torch.empty((n_steps, n_batch, n_out), dtype=dtype)
    hid = (np.empty(n_steps * n_batch, np.int64), np.empty(n_steps * n_batch, np.int64),
           np.empty(n_steps * n_batch * n_hid, np.int32))
    h1_st, v1_ck, h2_st, v2_ck = kept(n_hid, 1), kept(n_hid, 2), kept(n_out, 1), kept(n_out, 2)
    v1_t, v2_t = torch.empty((n_batch, n_hid), dtype=dtype), torch.empty((n_batch, n_out), dtype=dtype)
    forward(*events, *l1.args(), *l2.args(), store, SEGMENT, one, n_chunks, out.numpy(), *hid, h1_st.numpy(),
            v1_ck.numpy(), h2_st.numpy(), v2_ck.numpy(), v1_t.numpy(), v2_t.numpy())
    return out, v1_t, v2_t, hid, (h1_st, v1_ck, h2_st, v2_ck)


class PairFunction(torch.autograd.Function):
    """Inputs: cfg1, cfg2, events (of x), x [T, B, in], then per layer weight, bias, v0 and the
    ``PARAMS`` tensors. Outputs: spikes [T, B, out], v_T of the hidden layer, v_T of the output layer."""

    @staticmethod
    def forward(ctx, cfg1, cfg2, events, x, w1, b1, v01, a1, c1, r1, vl1, th1, vr1, w2, b2, v02, a2, c2, r2, vl2,
                th2, vr2):
        set_threads()
        n_steps, n_batch, _ = x.shape
        l1 = Layer(cfg1, w1, b1, v01, (a1, c1, r1, vl1, th1, vr1))
        l2 = Layer(cfg2, w2, b2, v02, (a2, c2, r2, vl2, th2, vr2), pad=True)
        store = 2 if cfg1.recompute else 1
        out, v1_t, v2_t, hid, kept = _run_forward(events, l1, l2, n_steps, n_batch, store, _one(x))
        ctx.layers = (l1, l2)
        ctx.events, ctx.hid = events, hid
        ctx.w2 = w2.detach().contiguous()
        ctx.save_for_backward(*kept)
        ctx.shape = (n_steps, n_batch, x.shape[2])
        return out, v1_t, v2_t

    @staticmethod
    def backward(ctx, g_out, g_v1t, g_v2t):
        set_threads()
        l1, l2 = ctx.layers
        n_steps, n_batch, n_in = ctx.shape
        n_hid, n_out = l1.n, l2.n
        dtype = l1.wt.dtype
        needs = ctx.needs_input_grad[3:]  # x, then per layer weight, bias, v0 and the 6 parameters
        need_x, need_l1, need_l2 = needs[0], needs[1:10], needs[10:19]
        need_p1, need_p2 = any(need_l1[3:]), any(need_l2[3:])

        def zeros_if_none(g, shape):
            return torch.zeros(shape, dtype=dtype) if g is None else g.contiguous()

        g_out = zeros_if_none(g_out, (n_steps, n_batch, n_out))
        g_v1t, g_v2t = zeros_if_none(g_v1t, (n_batch, n_hid)), zeros_if_none(g_v2t, (n_batch, n_out))
        n_chunks = max(1, min(n_batch, nb.get_num_threads()))

        def parts(n_in_, n_out_):
            return (torch.empty((n_chunks, n_in_, n_out_), dtype=dtype), torch.empty((n_chunks, n_out_), dtype=dtype),
                    torch.empty((n_chunks, len(PARAMS), n_out_), dtype=dtype))

        parts1, parts2 = parts(n_in, n_hid), parts(n_hid, n_out)
        g_i = torch.empty((n_steps, n_batch, n_hid) if need_x else (1, 1, 1), dtype=dtype)
        g_v01, g_v02 = torch.empty((n_batch, n_hid), dtype=dtype), torch.empty((n_batch, n_out), dtype=dtype)
        one = _one(g_out)
        c1, c2 = l1.cfg, l2.cfg
        backward(g_out.numpy(), g_v1t.numpy(), g_v2t.numpy(), *ctx.events,
                 l1.wt.numpy(), l1.bias.numpy(), l1.v0.numpy(), l1.p.numpy(), c1.reset_mode, c1.detach, c1.sg_kind,
                 one.dtype.type(c1.sg_scale), ctx.w2.numpy(), l2.wt.numpy(), l2.bias.numpy(), l2.v0.numpy(),
                 l2.p.numpy(), c2.reset_mode, c2.detach, c2.sg_kind, one.dtype.type(c2.sg_scale), *ctx.hid,
                 *[k.numpy() for k in ctx.saved_tensors], SEGMENT, one, one.dtype.type(math.pi / 2), need_p1, need_p2,
                 need_x, *[q.numpy() for q in parts1], *[q.numpy() for q in parts2], g_i.numpy(), g_v01.numpy(),
                 g_v02.numpy())
        g_x = g_i @ l1.wt.t() if need_x else None
        return (None, None, None, g_x, *_layer_grads(need_l1, parts1, g_v01, n_in, n_hid),
                *_layer_grads(need_l2, parts2, g_v02, n_hid, n_out))


def _layer_grads(needs, parts, g_v0, n_in: int, n_out: int):
    """weight, bias, v0 and the 6 parameter gradients of one layer from the threads' parts."""
    g_wt, g_b, g_p = parts
    g_w = None
    if needs[0]:
        g_w = torch.empty((n_out, n_in), dtype=g_wt.dtype)
        single.sum_transposed(g_wt.numpy(), g_w.numpy())
    g_ps = g_p.sum(0) if any(needs[3:]) else None
    return (g_w, g_b.sum(0) if needs[1] else None, g_v0 if needs[2] else None,
            *[g_ps[k] if needs[3 + k] else None for k in range(len(PARAMS))])


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
    dtype = x.dtype
    inputs, cfgs = [], []
    for weight, bias, params, spike_fn, layer in (first, second):
        n = weight.shape[0]
        a = params.alpha
        vec = {k: single._vector(v, dtype, n) for k, v in
               dict(a=a, c=1.0 - a, r=params.r, vl=params.v_leak, th=params.v_threshold, vr=params.v_reset).items()}
        v0 = vec["vl"].detach().expand(n_batch, n).contiguous()
        inputs.append([weight, torch.zeros(n, dtype=dtype) if bias is None else bias, v0, *[vec[k] for k in PARAMS]])
        cfgs.append((params, spike_fn, layer))
    if recompute is None:
        recompute = n_steps * n_batch * first[0].shape[0] * x.element_size() > single.RECOMPUTE_ABOVE_BYTES
    cfg1, cfg2 = (_config(p, s, name, bool(recompute)) for p, s, name in cfgs)
    events = single.compress_input(x3, first[4])
    if torch.is_grad_enabled() and any(t.requires_grad for t in [x3, *inputs[0], *inputs[1]]):
        out, v1_t, v2_t = PairFunction.apply(cfg1, cfg2, events, x3, *inputs[0], *inputs[1])
    else:
        set_threads()
        l1, l2 = Layer(cfg1, *inputs[0][:3], inputs[0][3:]), Layer(cfg2, *inputs[1][:3], inputs[1][3:], pad=True)
        out, v1_t, v2_t, _, _ = _run_forward(events, l1, l2, n_steps, n_batch, 0, _one(x))
    n_hid, n_out = first[0].shape[0], second[0].shape[0]
    return out.reshape(n_steps, *batch, n_out), v1_t.reshape(*batch, n_hid), v2_t.reshape(*batch, n_out)
