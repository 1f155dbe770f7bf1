"""Fused CPU neuron kernels (numba): one forward call over all T, one reverse pass for the backward.

All four spiking models (IF, LIF, ALIF, CubaLIF) are one "LIF family" recurrence; a model
that lacks a part gets parameters that make that part an exact identity, so the float
operations are the reference's, in the reference's order (see ``spikeflow.kernels.fused``):

    i' = i * b + (w * x) * cb                      # CubaLIF synaptic current (else b=0, w=cb=1: i' = x)
    h  = (vl + (v - vl) * a) + (r * i') * c         # leak + input (IF: vl=0, a=c=1: h = v + r x)
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
import torch

RESET_CODES = {"subtract": 0, "to_reset": 1, "none": 2}
SURROGATE_CODES = {"heaviside": -1, "fast_sigmoid": 0, "atan": 1, "triangle": 2, "straight_through": 3}
_HALF_PI = math.pi / 2.0


def set_threads() -> None:
    """Numba's thread count follows torch's (``torch.set_num_threads``)."""
    n = max(1, min(torch.get_num_threads(), nb.config.NUMBA_NUM_THREADS))
    if nb.get_num_threads() != n:
        nb.set_num_threads(n)


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


@nb.njit(parallel=True, cache=True)
def forward(x, v0, i0, s0, refr0, a, c, b, cb, w, r, vl, th, beta, rho, vr,
            reset_mode, use_refr, refr_steps, store_i, store_s, store_trace, one,
            out, h_st, flags, i_st, s_st, trace, v_t, i_t, s_t, refr_t):
    n_steps, n = x.shape
    zero = one - one
    for k in nb.prange(n):
        v = v0[k]
        i = i0[k]
        s = s0[k]
        rc = refr0[k]
        ak, ck, bk, cbk, wk, rk = a[k], c[k], b[k], cb[k], w[k], r[k]
        vlk, thk, betak, rhok, vrk = vl[k], th[k], beta[k], rho[k], vr[k]
        for t in range(n_steps):
            ip = i * bk + (wk * x[t, k]) * cbk
            h = (vlk + (v - vlk) * ak) + (rk * ip) * ck
            active = True
            if use_refr:
                active = rc <= 0
                if not active:
                    h = v
            theta = thk + betak * s
            spike = active and (h - theta > zero)
            if spike:
                out[t, k] = one
                if reset_mode == 0:
                    v = h - theta
                elif reset_mode == 1:
                    v = h - (h - vrk)
                else:
                    v = h
                s = rhok * s + one
            else:
                out[t, k] = zero
                v = h
                s = rhok * s + zero
            if use_refr:
                rc = refr_steps if spike else max(rc - 1, 0)
            h_st[t, k] = h
            flags[t, k] = (1 if spike else 0) | (0 if active else 2)
            if store_i:
                i_st[t, k] = ip
            if store_s:
                s_st[t, k] = s
            if store_trace:
                trace[t, k] = v
            i = ip
        v_t[k] = v
        i_t[k] = i
        s_t[k] = s
        refr_t[k] = rc


@nb.njit(cache=True)
def _s_at(step, k, s_st, has_s, s0, zero):
    """Adaptation after ``step`` (``s0`` before the first step)."""
    if step < 0:
        return s0[k]
    return s_st[step, k] if has_s else zero


@nb.njit(cache=True)
def _i_at(step, k, i_st, has_i, x, has_x, i0, zero):
    """Current ``i'`` after ``step``: stored (CubaLIF), else the input itself (i' = x)."""
    if step < 0:
        return i0[k]
    if has_i:
        return i_st[step, k]
    if has_x:
        return x[step, k]
    return zero


@nb.njit(parallel=True, cache=True)
def backward(g_out, g_trace, has_g_trace, g_v_t, g_i_t, g_s_t,
             x, has_x, h_st, flags, i_st, has_i, s_st, has_s, v0, i0, s0,
             a, c, b, cb, w, r, vl, th, beta, rho, vr,
             reset_mode, detach, sg_kind, sg_scale, one,
             g_x, g_v0, g_i0, g_s0, g_a, g_c, g_b, g_cb, g_w, g_r, g_vl, g_th, g_beta, g_rho, g_vr):
    n_steps, n = h_st.shape
    zero = one - one
    for k in nb.prange(n):
        ak, ck, bk, cbk, wk, rk = a[k], c[k], b[k], cb[k], w[k], r[k]
        vlk, thk, betak, rhok, vrk = vl[k], th[k], beta[k], rho[k], vr[k]
        gv = g_v_t[k]
        gi = g_i_t[k]
        gs = g_s_t[k]
        acc_a = acc_c = acc_b = acc_cb = acc_w = acc_r = zero
        acc_vl = acc_th = acc_beta = acc_rho = acc_vr = zero
        for t in range(n_steps - 1, -1, -1):
            h = h_st[t, k]
            f = flags[t, k]
            z = one if (f & 1) else zero
            active = (f & 2) == 0
            s_prev = _s_at(t - 1, k, s_st, has_s, s0, zero)
            theta = thk + betak * s_prev
            if has_g_trace:
                gv = gv + g_trace[t, k]
            # partials of the reset v' = reset(h, z, theta)
            if reset_mode == 0:
                dvdh = one
                dvdz = zero if detach else -theta
                dvdth = -z
                dvdvr = zero
            elif reset_mode == 1:
                dvdh = one - z
                dvdz = zero if detach else -(h - vrk)
                dvdth = zero
                dvdvr = z
            else:
                dvdh = one
                dvdz = zero
                dvdth = zero
                dvdvr = zero
            gz = g_out[t, k] + gv * dvdz + gs
            gu = gz * surrogate_grad(sg_kind, h - theta, sg_scale) if active else zero
            gh = gv * dvdh + gu
            gtheta = gv * dvdth - gu
            acc_th += gtheta
            acc_beta += gtheta * s_prev
            acc_rho += gs * s_prev
            acc_vr += gv * dvdvr
            gs = gtheta * betak + gs * rhok
            if active:
                if t > 0:
                    hp = h_st[t - 1, k]
                    if flags[t - 1, k] & 1:
                        if reset_mode == 0:
                            v_prev = hp - (thk + betak * _s_at(t - 2, k, s_st, has_s, s0, zero))
                        elif reset_mode == 1:
                            v_prev = hp - (hp - vrk)
                        else:
                            v_prev = hp
                    else:
                        v_prev = hp
                else:
                    v_prev = v0[k]
                ip = _i_at(t, k, i_st, has_i, x, has_x, i0, zero)
                acc_a += gh * (v_prev - vlk)
                acc_vl += gh * (one - ak)
                acc_c += gh * (rk * ip)
                acc_r += gh * (ip * ck)
                gip = gi + gh * (rk * ck)
                gv = gh * ak
            else:
                gip = gi
                gv = gh
            acc_b += gip * _i_at(t - 1, k, i_st, has_i, x, has_x, i0, zero)
            gwx = gip * cbk
            if has_x:
                xt = x[t, k]
                acc_cb += gip * (wk * xt)
                acc_w += gwx * xt
            g_x[t, k] = gwx * wk
            gi = gip * bk
        g_v0[k] = gv
        g_i0[k] = gi
        g_s0[k] = gs
        g_a[k] = acc_a
        g_c[k] = acc_c
        g_b[k] = acc_b
        g_cb[k] = acc_cb
        g_w[k] = acc_w
        g_r[k] = acc_r
        g_vl[k] = acc_vl
        g_th[k] = acc_th
        g_beta[k] = acc_beta
        g_rho[k] = acc_rho
        g_vr[k] = acc_vr


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


def _one(t: torch.Tensor):
    return t.new_ones(()).numpy()[()]  # a numpy scalar of the tensor's dtype


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
