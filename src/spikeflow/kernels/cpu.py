"""Fused CPU neuron kernels (numba): one forward call over all T, one reverse pass for the backward.

All four spiking models (IF, LIF, ALIF, CubaLIF) are one "LIF family" recurrence; a model
that lacks a part gets parameters that make that part an exact identity, so the float
operations are the reference's, in the reference's order (see ``spikeflow.kernels.fused``):

    i' = i * b + (w * x) * cb                      # CubaLIF synaptic current (else b=0, w=cb=1: i' = x)
    h  = (vl + (v - vl) * a) + (r * i) * k + (r * (w * x)) * c
                                                    # leak + current + input; CubaLIF: k = coupling K,
                                                    # c = input gain E (neurons.cuba); else k = 0,
                                                    # c = 1 - a (IF: vl=0, a=c=1: h = v + r x)
    theta = th + beta * s                           # ALIF adaptive threshold (else beta = 0)
    z  = h - theta > 0  (and not refractory)
    v' = reset(h, z, theta);  s' = rho * s + z

Every array is ``[T, N]`` or ``[N]`` (N = all neurons of all samples, parameters expanded),
parallel over neurons. The forward stores only what the backward needs: ``h`` (one float per
neuron-step), a flags byte (bit 0 spike, bit 1 refractory), plus the current ``i'`` (CubaLIF) or
adaptation ``s'`` (ALIF), and ``x`` only when a parameter that multiplies it is learned.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

RESET_CODES = {"subtract": 0, "to_reset": 1, "none": 2}
SURROGATE_CODES = {"heaviside": -1, "fast_sigmoid": 0, "atan": 1, "triangle": 2, "straight_through": 3}
_HALF_PI = math.pi / 2.0


def set_threads() -> None:
    """Numba's thread count follows torch's (``torch.set_num_threads``). Numba's first call starts
    its OpenMP threads, which sets the process's OpenMP thread count, torch's too, to numba's
    default: torch's own count is put back."""
    want = torch.get_num_threads()
    n = max(1, min(want, nb.config.NUMBA_NUM_THREADS))
    if nb.get_num_threads() != n:
        nb.set_num_threads(n)
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


@nb.njit(cache=True)
def surrogate_grad(kind, u, scale):
    """The surrogates of ``spikeflow.surrogate.surrogate_grad``, by code (-1: Heaviside, no gradient)."""
    if kind == 0:
        d = scale * abs(u) + 1.0
        return 1.0 / (d * d)
    if kind == 1:
        q = _HALF_PI * scale * u
        return (scale / 2.0) / (1.0 + q * q)
    if kind == 2:
        return max(0.0, 1.0 - abs(u) / scale) / scale
    if kind == 3:
        return 1.0 if abs(u) < scale / 2.0 else 0.0
    return 0.0


BLOCK = 32  # neurons per work item: the inner loop over a block is contiguous and vectorises


@nb.njit(parallel=True, cache=True)
def forward(x, v0, i0, s0, refr0, a, c, b, cb, w, r, vl, th, beta, rho, vr, kc,
            reset_mode, use_refr, refr_steps, store_i, store_s, store_trace, one,
            out, h_st, flags, i_st, s_st, trace, v_t, i_t, s_t, refr_t):
    n_blocks = (x.shape[1] + BLOCK - 1) // BLOCK
    for blk in nb.prange(n_blocks):
        _forward_block(np.int64(blk), x, v0, i0, s0, refr0, a, c, b, cb, w, r, vl, th, beta, rho, vr, kc, reset_mode,
                       use_refr, refr_steps, store_i, store_s, store_trace, one, out, h_st, flags, i_st, s_st, trace,
                       v_t, i_t, s_t, refr_t)


@nb.njit(error_model="numpy")
def _forward_block(blk, x, v0, i0, s0, refr0, a, c, b, cb, w, r, vl, th, beta, rho, vr, kc, reset_mode, use_refr,
                   refr_steps, store_i, store_s, store_trace, one, out, h_st, flags, i_st, s_st, trace, v_t, i_t, s_t,
                   refr_t):
    """``forward``'s work for ``blk`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, n = x.shape
    zero = one - one
    k0 = blk * BLOCK
    m = min(BLOCK, n - k0)
    k1 = k0 + m
    v = v0[k0:k1].copy()
    i = i0[k0:k1].copy()
    s = s0[k0:k1].copy()
    rc = refr0[k0:k1].copy()
    ak, ck, bk, cbk, wk, rk = a[k0:k1], c[k0:k1], b[k0:k1], cb[k0:k1], w[k0:k1], r[k0:k1]
    vlk, thk, betak, rhok, vrk = vl[k0:k1], th[k0:k1], beta[k0:k1], rho[k0:k1], vr[k0:k1]
    kck = kc[k0:k1]
    for t in range(n_steps):
        xt = x[t, k0:k1]
        for j in range(m):
            wx = wk[j] * xt[j]
            ip = i[j] * bk[j] + wx * cbk[j]
            h = ((vlk[j] + (v[j] - vlk[j]) * ak[j]) + (rk[j] * i[j]) * kck[j]) + (rk[j] * wx) * ck[j]
            active = True
            if use_refr:
                active = rc[j] <= 0
                h = h if active else v[j]
            theta = thk[j] + betak[j] * s[j]
            spike = active & (h - theta > zero)
            zf = one if spike else zero
            if reset_mode == 0:
                vn = h - zf * theta
            elif reset_mode == 1:
                vn = h - zf * (h - vrk[j])
            else:
                vn = h
            s[j] = rhok[j] * s[j] + zf
            if use_refr:
                rc[j] = refr_steps if spike else max(rc[j] - 1, 0)
            out[t, k0 + j] = zf
            h_st[t, k0 + j] = h
            flags[t, k0 + j] = (1 if spike else 0) | (0 if active else 2)
            if store_i:
                i_st[t, k0 + j] = ip
            if store_s:
                s_st[t, k0 + j] = s[j]
            if store_trace:
                trace[t, k0 + j] = vn
            v[j] = vn
            i[j] = ip
    v_t[k0:k1] = v
    i_t[k0:k1] = i
    s_t[k0:k1] = s
    refr_t[k0:k1] = rc


@nb.njit(parallel=True, cache=True)
def backward(g_out, g_trace, has_g_trace, g_v_t, g_i_t, g_s_t,
             x, has_x, h_st, flags, i_st, has_i, s_st, has_s, v0, i0, s0,
             a, c, b, cb, w, r, vl, th, beta, rho, vr, kc,
             reset_mode, detach, sg_kind, sg_scale, one,
             g_x, g_v0, g_i0, g_s0, g_a, g_c, g_b, g_cb, g_w, g_r, g_vl, g_th, g_beta, g_rho, g_vr, g_kc):
    n_blocks = (h_st.shape[1] + BLOCK - 1) // BLOCK
    for blk in nb.prange(n_blocks):
        _backward_block(np.int64(blk), g_out, g_trace, has_g_trace, g_v_t, g_i_t, g_s_t, x, has_x, h_st, flags, i_st,
                        has_i, s_st, has_s, v0, i0, s0, a, c, b, cb, w, r, vl, th, beta, rho, vr, kc, reset_mode,
                        detach, sg_kind, sg_scale, one, g_x, g_v0, g_i0, g_s0, g_a, g_c, g_b, g_cb, g_w, g_r, g_vl,
                        g_th, g_beta, g_rho, g_vr, g_kc)


@nb.njit(error_model="numpy")
def _backward_block(blk, g_out, g_trace, has_g_trace, g_v_t, g_i_t, g_s_t, x, has_x, h_st, flags, i_st, has_i, s_st,
                    has_s, v0, i0, s0, a, c, b, cb, w, r, vl, th, beta, rho, vr, kc, reset_mode, detach, sg_kind,
                    sg_scale, one, g_x, g_v0, g_i0, g_s0, g_a, g_c, g_b, g_cb, g_w, g_r, g_vl, g_th, g_beta, g_rho,
                    g_vr, g_kc):
    """``backward``'s work for ``blk`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, n = h_st.shape
    zero = one - one
    k0 = blk * BLOCK
    m = min(BLOCK, n - k0)
    k1 = k0 + m
    ak, ck, bk, cbk, wk, rk = a[k0:k1], c[k0:k1], b[k0:k1], cb[k0:k1], w[k0:k1], r[k0:k1]
    vlk, thk, betak, rhok, vrk = vl[k0:k1], th[k0:k1], beta[k0:k1], rho[k0:k1], vr[k0:k1]
    kck = kc[k0:k1]
    zeros = np.zeros(m, h_st.dtype)
    gv = g_v_t[k0:k1].copy()
    gi = g_i_t[k0:k1].copy()
    gs = g_s_t[k0:k1].copy()
    acc_a, acc_c, acc_b, acc_cb = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    acc_w, acc_r, acc_vl, acc_th = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    acc_beta, acc_rho, acc_vr, acc_kc = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    for t in range(n_steps - 1, -1, -1):
        # the rows this step reads: adaptation before step t and t-1, the current i'(t-1)
        s_prev = s0[k0:k1] if t == 0 else (s_st[t - 1, k0:k1] if has_s else zeros)
        s_prev2 = s0[k0:k1] if t <= 1 else (s_st[t - 2, k0:k1] if has_s else zeros)
        if t == 0:
            i_prev = i0[k0:k1]
        else:
            i_prev = i_st[t - 1, k0:k1] if has_i else (x[t - 1, k0:k1] if has_x else zeros)
        for j in range(m):
            k = k0 + j
            h = h_st[t, k]
            f = flags[t, k]
            z = one if (f & 1) else zero
            active = (f & 2) == 0
            theta = thk[j] + betak[j] * s_prev[j]
            gvj = gv[j] + g_trace[t, k] if has_g_trace else gv[j]
            # partials of the reset v' = reset(h, z, theta)
            if reset_mode == 0:
                dvdh = one
                dvdz = zero if detach else -theta
                dvdth = -z
                dvdvr = zero
            elif reset_mode == 1:
                dvdh = one - z
                dvdz = zero if detach else -(h - vrk[j])
                dvdth = zero
                dvdvr = z
            else:
                dvdh = one
                dvdz = zero
                dvdth = zero
                dvdvr = zero
            gsj = gs[j]
            gz = g_out[t, k] + gvj * dvdz + gsj
            gu = gz * surrogate_grad(sg_kind, h - theta, sg_scale) if active else zero
            gh = gvj * dvdh + gu
            gtheta = gvj * dvdth - gu
            acc_th[j] += gtheta
            acc_beta[j] += gtheta * s_prev[j]
            acc_rho[j] += gsj * s_prev[j]
            acc_vr[j] += gvj * dvdvr
            gs[j] = gtheta * betak[j] + gsj * rhok[j]
            gip = gi[j]  # d loss / d i'(t), from step t + 1
            gwx = gip * cbk[j]  # ... / d (w x)
            gi_prev = gip * bk[j]  # ... / d i'(t - 1)
            if active:
                if t > 0:
                    hp = h_st[t - 1, k]
                    if flags[t - 1, k] & 1:
                        if reset_mode == 0:
                            v_prev = hp - (thk[j] + betak[j] * s_prev2[j])
                        elif reset_mode == 1:
                            v_prev = hp - (hp - vrk[j])
                        else:
                            v_prev = hp
                    else:
                        v_prev = hp
                else:
                    v_prev = v0[k]
                wxj = wk[j] * x[t, k] if has_x else zero
                acc_a[j] += gh * (v_prev - vlk[j])
                acc_vl[j] += gh * (one - ak[j])
                acc_c[j] += gh * (rk[j] * wxj)
                acc_r[j] += gh * (wxj * ck[j] + i_prev[j] * kck[j])
                acc_kc[j] += gh * (rk[j] * i_prev[j])
                gwx += gh * (rk[j] * ck[j])
                gi_prev += gh * (rk[j] * kck[j])
                gv[j] = gh * ak[j]
            else:
                gv[j] = gh
            acc_b[j] += gip * i_prev[j]
            if has_x:
                xt = x[t, k]
                acc_cb[j] += gip * (wk[j] * xt)
                acc_w[j] += gwx * xt
            g_x[t, k] = gwx * wk[j]
            gi[j] = gi_prev
    g_v0[k0:k1] = gv
    g_i0[k0:k1] = gi
    g_s0[k0:k1] = gs
    g_a[k0:k1] = acc_a
    g_c[k0:k1] = acc_c
    g_b[k0:k1] = acc_b
    g_cb[k0:k1] = acc_cb
    g_w[k0:k1] = acc_w
    g_r[k0:k1] = acc_r
    g_vl[k0:k1] = acc_vl
    g_th[k0:k1] = acc_th
    g_beta[k0:k1] = acc_beta
    g_rho[k0:k1] = acc_rho
    g_vr[k0:k1] = acc_vr
    g_kc[k0:k1] = acc_kc


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


_ONES = {torch.float32: np.float32(1), torch.float64: np.float64(1)}


def _one(t: torch.Tensor):
    """A numpy scalar 1 of the tensor's dtype (the kernels' typed constant)."""
    one = _ONES.get(t.dtype)
    return one if one is not None else t.new_ones(()).numpy()[()]


def run_forward(x, v0, i0, s0, refr0, params, cfg, store_i, store_s,
                out, h_st, flags, i_st, s_st, trace, v_t, i_t, s_t, refr_t):
    """Torch-facing wrapper of ``forward`` (outputs are written in place)."""
    forward(
        _np(x), _np(v0), _np(i0), _np(s0), _np(refr0), *[_np(p) for p in params],
        int(cfg.reset_mode), bool(cfg.use_refr), int(cfg.refr_steps), bool(store_i), bool(store_s),
        bool(cfg.return_trace), _one(x),
        out.numpy(), h_st.numpy(), flags.numpy(), i_st.numpy(), s_st.numpy(), trace.numpy(),
        v_t.numpy(), i_t.numpy(), s_t.numpy(), refr_t.numpy(),
    )


def run_backward(g_out, g_trace, has_g_trace, g_v_t, g_i_t, g_s_t, x, has_x, h_st, flags, i_st, has_i,
                 s_st, has_s, v0, i0, s0, params, cfg):
    """Torch-facing wrapper of ``backward``; returns ``(g_x, g_v0, g_i0, g_s0, *g_params)``."""
    n_steps, n = h_st.shape
    g_x = torch.empty((n_steps, n), dtype=h_st.dtype)
    vecs = [torch.empty(n, dtype=h_st.dtype) for _ in range(3 + len(params))]
    backward(
        _np(g_out), _np(g_trace), bool(has_g_trace), _np(g_v_t), _np(g_i_t), _np(g_s_t),
        _np(x), bool(has_x), _np(h_st), _np(flags), _np(i_st), bool(has_i), _np(s_st), bool(has_s),
        _np(v0), _np(i0), _np(s0), *[_np(p) for p in params],
        int(cfg.reset_mode), bool(cfg.detach), int(cfg.sg_kind), float(cfg.sg_scale), _one(h_st),
        g_x.numpy(), *[v.numpy() for v in vecs],
    )
    return (g_x, *vecs)


# ---------------------------------------------------------------- fast path
# LIF and IF with one value per parameter, no refractory period and no parameter gradients:
# the same float operations in the same order as ``forward``/``backward`` above, laid out as
# a time-outer, neuron-inner loop that LLVM vectorises. The spike is recomputed in the backward
# from the stored membrane (the same comparison), so only ``h`` is stored: 4 bytes per neuron-step.

CHUNK = 512  # neurons per parallel work item


@nb.njit(inline="always")
def fast_step(v, x, a, c, r, vl, th, vr, reset_mode, one):
    """One fast-path neuron step: ``(h, spike, v')``. Call it with a literal ``reset_mode`` inside a
    loop so the branch folds away and the loop vectorises."""
    zero = one - one
    h = (vl + (v - vl) * a) + (r * x) * c
    zf = one if h - th > zero else zero
    if reset_mode == 0:
        return h, zf, h - zf * th
    if reset_mode == 1:
        return h, zf, h - zf * (h - vr)
    return h, zf, h


@nb.njit(parallel=True, cache=True)
def fast_forward(x, v0, a, c, r, vl, th, vr, reset_mode, store_trace, one, out, h_st, trace, v_t):
    n_steps, n = x.shape
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in nb.prange(n_chunks):
        k0 = ch * CHUNK
        k1 = min(n, k0 + CHUNK)
        v = v0[k0:k1].copy()
        for t in range(n_steps):
            xt = x[t, k0:k1]
            ot = out[t, k0:k1]
            ht = h_st[t, k0:k1]
            if reset_mode == 0:
                for j in range(k1 - k0):
                    ht[j], ot[j], v[j] = fast_step(v[j], xt[j], a, c, r, vl, th, vr, 0, one)
            elif reset_mode == 1:
                for j in range(k1 - k0):
                    ht[j], ot[j], v[j] = fast_step(v[j], xt[j], a, c, r, vl, th, vr, 1, one)
            else:
                for j in range(k1 - k0):
                    ht[j], ot[j], v[j] = fast_step(v[j], xt[j], a, c, r, vl, th, vr, 2, one)
            if store_trace:
                trace[t, k0:k1] = v
        v_t[k0:k1] = v


@nb.njit(inline="always")
def _sg_typed(kind, u, scale, one, half_pi):
    """``surrogate_grad`` in the dtype of ``one`` (no float64 promotion, so the loop vectorises)."""
    zero = one - one
    if kind == 0:
        d = scale * abs(u) + one
        return one / (d * d)
    if kind == 1:
        q = half_pi * scale * u
        return (scale / (one + one)) / (one + q * q)
    if kind == 2:
        return max(zero, one - abs(u) / scale) / scale
    if kind == 3:
        return one if abs(u) < scale / (one + one) else zero
    return zero


@nb.njit(inline="always")
def fast_grad(h, g_spike, gv, a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi):
    """One reverse fast-path step from the stored membrane ``h``, the spike's gradient and the
    gradient of the membrane after the step: ``(g_x, g_v before the step)``."""
    zero = one - one
    u = h - th
    if reset_mode == 0:
        dvdh = one
        dvdz = zero if detach else -th
    elif reset_mode == 1:
        dvdh = one - (one if u > zero else zero)
        dvdz = zero if detach else -(h - vr)
    else:
        dvdh = one
        dvdz = zero
    gh = gv * dvdh + (g_spike + gv * dvdz) * _sg_typed(sg_kind, u, sg_scale, one, half_pi)
    return gh * rc, gh * a


@nb.njit(parallel=True, cache=True)
def fast_backward(g_out, g_trace, has_g_trace, g_v_t, h_st, a, c, r, th, vr, reset_mode, detach, sg_kind,
                  sg_scale, one, half_pi, g_x, g_v0):
    n_steps, n = h_st.shape
    rc = r * c
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in nb.prange(n_chunks):
        k0 = ch * CHUNK
        k1 = min(n, k0 + CHUNK)
        gv = g_v_t[k0:k1].copy()
        for t in range(n_steps - 1, -1, -1):
            if has_g_trace:
                gv += g_trace[t, k0:k1]
            ht = h_st[t, k0:k1]
            go = g_out[t, k0:k1]
            gx = g_x[t, k0:k1]
            for j in range(k1 - k0):
                gx[j], gv[j] = fast_grad(ht[j], go[j], gv[j], a, rc, th, vr, reset_mode, detach, sg_kind, sg_scale,
                                         one, half_pi)
        g_v0[k0:k1] = gv
