"""Event convolution, LIF/IF and ``k x k`` average pooling fused into one CPU kernel (numba).

``avg_pool2d(LIF(event_conv2d(x)), k)`` over time-major ``[T, B, C, H, W]`` input that needs no
gradient (a network's first layer): for each sample the kernel steps through time, building one
frame of the convolution's output from the input's events (``spikeflow.kernels.conv``), stepping
the neurons on it and writing only the pooled spikes. Neither the convolution's output nor the
full-size spike map is ever stored; the forward keeps the membranes before reset for the backward
(4 bytes per neuron and step), or with ``recompute`` nothing but the events.

The backward walks back in time per sample (recomputing that sample's membranes into a
thread-local buffer first, with ``recompute``) and adds each frame's input events times the
membrane gradient into the weight gradient.

Same float operations as the unfused path (``EventConv2d`` then ``PooledFastNeuron``): the
forward is bit-identical; the weight gradient sums in another order.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from spikeflow.kernels import conv as kconv
from spikeflow.kernels import fused
from spikeflow.kernels.cpu import fast_grad, fast_step, set_threads
from spikeflow.kernels.pooling import pool_frame, unpool_row
from spikeflow.kernels.simd import lanes, vadd, vload, vstore


@nb.njit(inline="always")
def _runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out):
    """``kconv._event_runs``, without its integer divisions when both strides are 1."""
    if sh == 1 and sw == 1:
        iy = ey[e] + padh
        ix = ex[e] + padw
        x0 = max(ix - kw + 1, 0)
        return (iy, ix, max(iy - kh + 1, 0), min(iy + 1, oh), x0, x0 + 1, max(min(ix + 1, ow) - x0, 0) * n_out)
    return kconv._event_runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out)


@nb.njit(inline="always")
def _fill_bias(cur, bias, n_pix):
    """``cur`` (flat ``[n_pix, O]``) = ``bias [O]`` at every pixel, whole vectors of ``O`` at a time while
    they fill one (copying a frame-sized tiled bias, 64 KB a frame in W2's first layer, by numba's
    slice assignment took a quarter of that layer's forward kernel)."""
    n_out = bias.shape[0]
    lw = lanes(cur)
    m = 0
    while m + lw <= n_out:
        bv = vload(bias, m)
        for i in range(n_pix):
            vstore(cur, i * n_out + m, bv)
        m += lw
    for mm in range(m, n_out):
        bm = bias[mm]
        for i in range(n_pix):
            cur[i * n_out + mm] = bm


@nb.njit(inline="always")
def _frame(n, indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, cur):
    """``cur`` (flat ``[OH, OW, O]``) = ``bias [O]`` + the events of frame ``n`` scattered as in
    ``kconv._forward``."""
    n_out = bias.shape[0]
    _fill_bias(cur, bias, oh * ow)
    for e in range(indptr[n], indptr[n + 1]):
        iy, ix, y0, y1, x0, x_end, run = _runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out)
        v, c = ev[e], ec[e]
        for oy in range(y0, y1):
            for ox in range(x0, x_end):
                d = (oy * ow + ox) * n_out
                w0 = kconv._tap_offset(c, iy, ix, oy, ox, kh, kw, sh, sw, n_out)
                dst = cur[d:d + run]
                src = wt[w0:w0 + run]
                for m in range(run):
                    dst[m] += v * src[m]


@nb.njit(inline="always")
def _neurons(cur, v, a, c, r, vl, th, vr, reset_mode, one, h_out):
    """One LIF/IF step of every neuron of the frame: ``cur`` (input) becomes the spikes, ``v`` the
    membrane after reset, ``h_out`` the membrane before reset."""
    if reset_mode == 0:
        for j in range(cur.shape[0]):
            h_out[j], cur[j], v[j] = fast_step(v[j], cur[j], a, c, r, vl, th, vr, 0, one)
    elif reset_mode == 1:
        for j in range(cur.shape[0]):
            h_out[j], cur[j], v[j] = fast_step(v[j], cur[j], a, c, r, vl, th, vr, 1, one)
    else:
        for j in range(cur.shape[0]):
            h_out[j], cur[j], v[j] = fast_step(v[j], cur[j], a, c, r, vl, th, vr, 2, one)


@nb.njit(parallel=True, cache=True)
def forward(indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c, r, vl, th, vr,
            reset_mode, one, k, store, out, h_st, v_t):
    """``out [T, B, PH*PW*O]`` (pooled spikes, channels-last), ``v_t [B, OH*OW*O]`` from ``v0`` (same shape,
    or ``[1, OH*OW*O]``: every sample starts there) and, if ``store``, the membranes before reset
    ``h_st [T, B, OH*OW*O]``; frame ``n = t * B + b`` of the events is step ``t`` of sample ``b``."""
    for b in nb.prange(out.shape[1]):
        _forward_sample(np.int64(b), indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c, r,
                        vl, th, vr, reset_mode, one, k, store, out, h_st, v_t)


@nb.njit(error_model="numpy")
def _forward_sample(b, indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c, r, vl, th, vr,
                    reset_mode, one, k, store, out, h_st, v_t):
    """``forward``'s work for ``b`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, n_batch = out.shape[0], out.shape[1]
    n_out = bias.shape[0]
    frame = oh * ow * n_out
    ph, pw = oh // k, ow // k
    cur = np.empty(frame, out.dtype)
    h = np.empty(frame, out.dtype)
    v = v0[b % v0.shape[0]].copy()
    for t in range(n_steps):
        _frame(t * n_batch + b, indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, cur)
        _neurons(cur, v, a, c, r, vl, th, vr, reset_mode, one, h_st[t, b] if store else h)
        pool_frame(cur, out[t, b], ph, pw, k, ow, n_out, k * k)
    v_t[b] = v


@nb.njit(inline="always")
def _add_pixels(cur, acc, n_pix):
    """``acc[m] += cur[i * O + m]`` over the pixels ``i`` in order (``cur`` flat ``[n_pix, O]``), whole
    vectors of ``O`` at a time while they fill one."""
    n_out = acc.shape[0]
    lw = lanes(acc)
    m = 0
    while m + lw <= n_out:
        s = vload(acc, m)
        for i in range(n_pix):
            s = vadd(s, vload(cur, i * n_out + m))
        vstore(acc, m, s)
        m += lw
    for mm in range(m, n_out):
        s1 = acc[mm]
        for i in range(n_pix):
            s1 += cur[i * n_out + mm]
        acc[mm] = s1


@nb.njit(parallel=True, cache=True)
def backward(indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c, r, vl, th, vr,
             reset_mode, detach, sg_kind, sg_scale, one, half_pi, k, stored, h_st, g_out, g_v_t, g_w, g_b):
    """Per sample ``b``: ``g_w[b]`` (flat ``[C, KH, KW, O]``, ``kx`` reversed, as ``wt``) and ``g_b[b]``, the
    weight and bias gradients from ``g_out [T, B, PH*PW*O]`` and ``g_v_t [B, OH*OW*O]`` (or ``[1, OH*OW*O]``,
    the same for every sample, as ``v0``), with the membranes ``h_st`` of the forward if ``stored``, else
    recomputed."""
    for b in nb.prange(g_out.shape[1]):
        _backward_sample(np.int64(b), indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c,
                         r, vl, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi, k, stored, h_st, g_out,
                         g_v_t, g_w, g_b)


@nb.njit(error_model="numpy")
def _backward_sample(b, indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, v0, a, c, r, vl, th, vr,
                     reset_mode, detach, sg_kind, sg_scale, one, half_pi, k, stored, h_st, g_out, g_v_t, g_w, g_b):
    """``backward``'s work for ``b`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, n_batch = g_out.shape[0], g_out.shape[1]
    n_out = bias.shape[0]
    frame = oh * ow * n_out
    ph, pw = oh // k, ow // k
    zero = one - one
    rc = r * c
    hs = np.empty((0 if stored else n_steps, frame), g_out.dtype)
    cur = np.empty(frame, g_out.dtype)
    v = v0[b % v0.shape[0]].copy()
    for t in range(0 if stored else n_steps):  # recompute the membranes
        _frame(t * n_batch + b, indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, cur)
        _neurons(cur, v, a, c, r, vl, th, vr, reset_mode, one, hs[t])
    gv = g_v_t[b % g_v_t.shape[0]].copy()
    acc = g_w[b]
    acc[:] = zero
    acc_b = g_b[b]
    acc_b[:] = zero
    row = ow * n_out
    gz = np.zeros(row, g_out.dtype)  # columns beyond the last whole window keep a zero spike gradient
    gz0 = np.zeros(row, g_out.dtype)  # rows beyond it
    for t in range(n_steps - 1, -1, -1):
        go = g_out[t, b]
        ht = h_st[t, b] if stored else hs[t]
        for oy in range(oh):
            if oy % k == 0 and oy < ph * k:  # every neuron of a window gets the window's gradient / k*k
                py = oy // k
                unpool_row(go, py * pw * n_out, gz, pw, k, n_out, k * k)
            grads(ht[oy * row:(oy + 1) * row], gz if oy < ph * k else gz0, gv[oy * row:(oy + 1) * row],
                  cur[oy * row:(oy + 1) * row], a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi)
        _add_pixels(cur, acc_b, oh * ow)
        n = t * n_batch + b
        for e in range(indptr[n], indptr[n + 1]):
            iy, ix, y0, y1, x0, x_end, run = _runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out)
            val, ch = ev[e], ec[e]
            for oy in range(y0, y1):
                for ox in range(x0, x_end):
                    s0 = (oy * ow + ox) * n_out
                    w0 = kconv._tap_offset(ch, iy, ix, oy, ox, kh, kw, sh, sw, n_out)
                    dst = acc[w0:w0 + run]
                    src = cur[s0:s0 + run]
                    for m in range(run):
                        dst[m] += val * src[m]


@nb.njit(inline="always")
def _grad_loop(ht, gz, gv, gx, a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi):
    for j in range(ht.shape[0]):
        gx[j], gv[j] = fast_grad(ht[j], gz[j], gv[j], a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one,
                                 half_pi)


@nb.njit(inline="always")
def grads(ht, gz, gv, gx, a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi):
    """``gx[j], gv[j] = fast_grad(ht[j], gz[j], gv[j], ...)`` over a row, with the reset mode and the surrogate
    as literals in each loop, so their branches fold away and the loop vectorises."""
    if reset_mode == 0:
        if sg_kind == 0:
            _grad_loop(ht, gz, gv, gx, a, rc, th, vr, 0, detach, 0, sg_scale, one, half_pi)
        elif sg_kind == 1:
            _grad_loop(ht, gz, gv, gx, a, rc, th, vr, 0, detach, 1, sg_scale, one, half_pi)
        else:
            _grad_loop(ht, gz, gv, gx, a, rc, th, vr, 0, detach, sg_kind, sg_scale, one, half_pi)
    elif reset_mode == 1:
        if sg_kind == 0:
            _grad_loop(ht, gz, gv, gx, a, rc, th, vr, 1, detach, 0, sg_scale, one, half_pi)
        else:
            _grad_loop(ht, gz, gv, gx, a, rc, th, vr, 1, detach, sg_kind, sg_scale, one, half_pi)
    else:
        _grad_loop(ht, gz, gv, gx, a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi)


class ConvLIFPool(torch.autograd.Function):
    """Inputs: cfg, scalars (``fused.FAST_FIELDS``), geometry, pool ``k``, recompute, the events of the input
    (``kconv.events``; the input needs no gradient), its shape [T, B, C, H, W], weight, bias, v0 [1, OH, OW, O]
    (a constant: the rest state of every sample). Output: pooled spikes as a ``[T, B, O, PH, PW]`` view of
    channels-last memory, and the final membrane ``[B, O, OH, OW]`` (no gradient)."""

    @staticmethod
    def forward(ctx, cfg, scalars, geom, k, recompute, ev, shape, weight, bias, v0):
        set_threads()
        ctx.set_materialize_grads(False)  # the final membrane's gradient is not used
        t, b, c, h, w = shape
        o, _, kh, kw = weight.shape
        (sh, sw), (ph, pw), pool = geom
        oh = kconv.output_size(h, kh, sh, ph, pool)
        ow = kconv.output_size(w, kw, sw, pw, pool)
        dtype = weight.dtype
        scale = 1.0 / (pool * pool)
        wt = (weight.detach() * scale if pool > 1 else weight.detach()).flip(3).permute(1, 2, 3, 0).contiguous()
        bb = bias.detach().contiguous() if bias is not None else torch.zeros(o, dtype=dtype)
        v0f = v0.detach().contiguous().reshape(1, oh * ow * o)
        out = torch.empty((t, b, (oh // k) * (ow // k) * o), dtype=dtype)
        v_t = torch.empty((b, oh * ow * o), dtype=dtype)
        h_st = torch.empty((t, b, oh * ow * o) if not recompute else (0, 0, 0), dtype=dtype)
        geo = (kh, kw, sh, sw, ph, pw, oh, ow)
        wtn, bn = wt.reshape(-1).numpy(), bb.numpy().copy()  # kept for a recompute: not the live bias
        forward(*ev, wtn, bn, *geo, v0f.numpy(), *scalars, int(cfg.reset_mode), scalars[0].dtype.type(1), k,
                not recompute, out.numpy(), h_st.numpy(), v_t.numpy())
        ctx.events, ctx.wt, ctx.bias, ctx.v0, ctx.geo = ev, wtn, bn, v0f.numpy(), geo
        ctx.cfg, ctx.scalars, ctx.k, ctx.pool = cfg, scalars, k, pool
        ctx.has_bias = bias is not None
        ctx.recompute = recompute
        ctx.save_for_backward(h_st)
        ctx.w_shape = weight.shape
        ctx.mark_non_differentiable(v_t)
        out = out.view(t, b, oh // k, ow // k, o).permute(0, 1, 4, 2, 3)
        return out, v_t.view(b, oh, ow, o).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g_out, _g_v_t):
        if g_out is None:  # the spikes were not used: no gradient
            return (None,) * 10
        set_threads()
        cfg, scalars, k = ctx.cfg, ctx.scalars, ctx.k
        a = scalars[0]
        o, c, kh, kw = ctx.w_shape
        t, b, _, p_h, p_w = g_out.shape
        go = g_out.permute(0, 1, 3, 4, 2).contiguous().reshape(t, b, -1)
        (h_st,) = ctx.saved_tensors
        g_v_t = np.zeros_like(ctx.v0)  # one frame: every sample's
        g_w = torch.empty((b, c * kh * kw * o), dtype=g_out.dtype)
        g_b = torch.empty((b, o), dtype=g_out.dtype)
        backward(*ctx.events, ctx.wt, ctx.bias, *ctx.geo, ctx.v0, *scalars, int(cfg.reset_mode), bool(cfg.detach),
                 int(cfg.sg_kind), a.dtype.type(cfg.sg_scale), a.dtype.type(1), a.dtype.type(math.pi / 2), k,
                 not ctx.recompute, h_st.numpy(), go.numpy(), g_v_t, g_w.numpy(), g_b.numpy())
        gwt = g_w.sum(0).view(c, kh, kw, o).flip(2)
        if ctx.pool > 1:
            gwt = gwt / (ctx.pool * ctx.pool)
        g_weight = gwt.permute(3, 0, 1, 2).contiguous() if ctx.needs_input_grad[7] else None
        g_bias = g_b.sum(0) if ctx.has_bias and ctx.needs_input_grad[8] else None
        ctx.events = ctx.wt = None
        return None, None, None, None, None, None, None, g_weight, g_bias, None


def unsupported_reason(conv_out_shape, model, x, params, spike_fn, pool: int) -> str | None:
    """Why ``conv_lif_pool`` cannot run (``None`` when it can): ``x`` must be a time-major CPU float tensor
    that needs no gradient; the neuron and the pooling must be in ``pool_lif``'s scope for a conv output of
    ``conv_out_shape`` ``[O, OH, OW]``."""
    from spikeflow.kernels import pool_lif

    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        return "input must be a time-major [T, B, C, H, W] tensor"
    if x.requires_grad:
        return "the input needs a gradient (the fused kernel computes only the parameters' gradients)"
    probe = torch.empty((), dtype=x.dtype, device=x.device).expand(*x.shape[:2], *conv_out_shape)
    return pool_lif.unsupported_reason(model, probe, None, params, spike_fn, pool)


def conv_lif_pool(conv_weight, conv_bias, geom, model, x, params, spike_fn, pool: int, recompute: bool = False,
                  events=None):
    """Pooled spikes ``[T, B, O, PH, PW]`` of ``avg_pool2d(neuron(event_conv2d(x)), pool)`` from rest, for a
    caller that has had ``unsupported_reason`` return ``None``. The backward uses the membranes the forward
    kept (4 bytes per neuron and step), or with ``recompute`` reruns the forward and keeps nothing.
    ``events``: ``kconv.events`` of ``x`` as ``[T * B, C, H, W]`` in the promoted dtype, when the caller
    has them."""
    t, b, _, h, w = x.shape
    o, _, kh, kw = conv_weight.shape
    (sh, sw), (ph, pw), cpool = geom
    oh = kconv.output_size(h, kh, sh, ph, cpool)
    ow = kconv.output_size(w, kw, sw, pw, cpool)
    dtype = torch.promote_types(x.dtype, conv_weight.dtype)
    x = x.to(dtype)
    probe = torch.empty((), dtype=dtype).expand(t, b, o, oh, ow)
    state = model.init_state(probe.shape[1:], params, dtype=dtype)
    scalars = fused._fast_scalars(model, probe, state, params, "cpu")
    cfg = fused.config(model, params, spike_fn, None, False, "cpu")
    v0 = state.v.to(dtype).expand(b, o, oh, ow)[:1].permute(0, 2, 3, 1)  # rest: the same for every sample
    bias = None if conv_bias is None else conv_bias.to(dtype)
    if events is None:
        events = kconv.events(x.detach().reshape(t * b, *x.shape[2:]), cpool)
    out, _ = ConvLIFPool.apply(cfg, scalars, geom, pool, bool(recompute), events, tuple(x.shape), conv_weight.to(dtype),
                               bias, v0)
    return out
