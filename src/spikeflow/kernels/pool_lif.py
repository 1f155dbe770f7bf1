"""LIF/IF followed by ``k x k`` average pooling, fused into one CPU kernel (numba).

``AvgPool2d(k)(LIF(x))`` over time-major ``[T, B, C, H, W]`` input: the kernel steps the neurons
of ``k`` input rows and writes only the pooled spike map, so the full-size spike map is never
stored and the pooling's backward (torch's is slow for channels-last maps) is folded into the
neuron backward: each neuron's spike gradient is its window's pooled gradient divided by ``k*k``.
Both directions keep ``x``'s memory layout (contiguous or channels-last), so a conv output flows
through without a copy.

The neuron math is the fast path of ``spikeflow.kernels.cpu`` (``fast_step``/``fast_grad``; LIF
and IF with one value per parameter, no refractory period): the same float operations as the
unfused layers, and the pooling divides window sums by ``k*k`` as ``torch.nn.AvgPool2d`` does,
so the results equal the unfused pair. The windows must tile the map (``H`` and ``W`` multiples
of ``k``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from spikeflow.errors import InputError, ParameterError
from spikeflow.kernels import fused
from spikeflow.kernels.cpu import fast_grad, fast_step, set_threads
from spikeflow.kernels.pooling import unpool_row


@nb.njit(inline="always")
def _pool_row(z, k, q, o):
    """Add the spikes ``z`` of one input row (``[W * q]``, pixel-major) into pooled row ``o``."""
    for px in range(o.shape[0] // q):
        for dx in range(k):
            base = (px * k + dx) * q
            for m in range(q):
                o[px * q + m] += z[base + m]


@nb.njit(parallel=True, cache=True)
def pooled_forward(x, v0, a, c, r, vl, th, vr, reset_mode, one, k, q, planar, out, h_st, v_t, bad):
    """``x, h_st [T, P, H, W*q]``, ``v0, v_t [P, H, W*q]``, ``out [T, P, H/k, W/k*q]``, or with
    ``planar`` ``[T, P, q, H/k*W/k]`` (each of the ``q`` channels a plane of its own); one work item
    per (plane, pooled row). ``bad[u]`` is set when work item ``u`` read a NaN or inf: the check
    rides on the pass over ``x`` instead of a pass of its own before the kernel."""
    n_rows = x.shape[2] // k
    for u in nb.prange(x.shape[1] * n_rows):
        _pooled_forward_rows(np.int64(u), x, v0, a, c, r, vl, th, vr, reset_mode, one, k, q, planar, out, h_st,
                             v_t, bad)


@nb.njit(error_model="numpy")
def _pooled_forward_rows(u, x, v0, a, c, r, vl, th, vr, reset_mode, one, k, q, planar, out, h_st, v_t, bad):
    """``pooled_forward``'s work for ``u`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, width = x.shape[0], x.shape[3]
    n_rows = x.shape[2] // k
    kk = one * (k * k)
    zero = one - one
    p, py = u // n_rows, u % n_rows
    y0 = py * k
    v = v0[p, y0:y0 + k].copy()
    z = np.empty(width, x.dtype)
    o = np.empty(width // k, x.dtype)  # the pooled row, pixel-major
    for t in range(n_steps):
        o[:] = zero
        for i in range(k):
            xr, hr, vi = x[t, p, y0 + i], h_st[t, p, y0 + i], v[i]
            if reset_mode == 0:
                for j in range(width):
                    hr[j], z[j], vi[j] = fast_step(vi[j], xr[j], a, c, r, vl, th, vr, 0, one)
            elif reset_mode == 1:
                for j in range(width):
                    hr[j], z[j], vi[j] = fast_step(vi[j], xr[j], a, c, r, vl, th, vr, 1, one)
            else:
                for j in range(width):
                    hr[j], z[j], vi[j] = fast_step(vi[j], xr[j], a, c, r, vl, th, vr, 2, one)
            _pool_row(z, k, q, o)
            nonfinite = False
            for j in range(width):  # x - x is NaN exactly where x is NaN or inf
                nonfinite |= xr[j] - xr[j] != zero
            bad[u] |= nonfinite
        if planar:
            n_px = o.shape[0] // q
            for px in range(n_px):
                for m in range(q):
                    out[t, p, m, py * n_px + px] = o[px * q + m] / kk
        else:
            ot = out[t, p, py]
            for j in range(o.shape[0]):
                ot[j] = o[j] / kk
    v_t[p, y0:y0 + k] = v


@nb.njit(parallel=True, cache=True)
def pooled_backward(g_out, g_v_t, h_st, a, c, r, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi,
                    k, q, planar, g_x, g_v0):
    """The reverse pass of ``pooled_forward`` (``g_out`` laid out as its ``out``): ``g_x [T, P, H, W*q]``,
    ``g_v0 [P, H, W*q]``."""
    n_rows = h_st.shape[2] // k
    for u in nb.prange(h_st.shape[1] * n_rows):
        _pooled_backward_rows(np.int64(u), g_out, g_v_t, h_st, a, c, r, th, vr, reset_mode, detach, sg_kind, sg_scale,
                              one, half_pi, k, q, planar, g_x, g_v0)


@nb.njit(error_model="numpy")
def _pooled_backward_rows(u, g_out, g_v_t, h_st, a, c, r, th, vr, reset_mode, detach, sg_kind, sg_scale, one, half_pi,
                          k, q, planar, g_x, g_v0):
    """``pooled_backward``'s work for ``u`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``)."""
    n_steps, width = h_st.shape[0], h_st.shape[3]
    n_rows = h_st.shape[2] // k
    rc = r * c
    p, py = u // n_rows, u % n_rows
    y0 = py * k
    gv = g_v_t[p, y0:y0 + k].copy()
    gz = np.empty(width, h_st.dtype)
    row = np.empty(width // k, h_st.dtype)  # a planar gradient's pooled row, pixel-major
    n_px = row.shape[0] // q
    for t in range(n_steps - 1, -1, -1):
        if planar:
            for px in range(n_px):
                for m in range(q):
                    row[px * q + m] = g_out[t, p, m, py * n_px + px]
            go = row
        else:
            go = g_out[t, p, py]
        unpool_row(go, 0, gz, go.shape[0] // q, k, q, k * k)  # every neuron of a window: its gradient / k*k
        for i in range(k):
            hr, gxr, gvi = h_st[t, p, y0 + i], g_x[t, p, y0 + i], gv[i]
            for j in range(width):
                gxr[j], gvi[j] = fast_grad(hr[j], gz[j], gvi[j], a, rc, th, vr, reset_mode, detach, sg_kind,
                                           sg_scale, one, half_pi)
    g_v0[p, y0:y0 + k] = gv


class PooledFastNeuron(torch.autograd.Function):
    """Inputs: cfg, scalars (``fused.FAST_FIELDS``), k, q, planar, name, x [T, P, H, W*q], v0 [P, H, W*q].
    Outputs: pooled spikes [T, P, H/k, W/k*q] (with ``planar``: [T, P, q, H/k*W/k]), v_T [P, H, W*q].
    Stores only the membrane ``h``. ``name``: raise ``InputError`` naming this layer when ``x`` holds
    a NaN or inf (``None``: no check)."""

    @staticmethod
    def forward(ctx, cfg, scalars, k, q, planar, name, x, v0):
        set_threads()
        n_steps, n_planes, height, width = x.shape
        out = torch.empty(_pooled_shape(x.shape, k, q, planar), dtype=x.dtype)
        h_st = torch.empty_like(x)
        v_t = torch.empty_like(v0)
        bad = np.zeros(n_planes * (height // k), np.bool_)
        pooled_forward(x.detach().numpy(), v0.detach().contiguous().numpy(), *scalars, int(cfg.reset_mode),
                       scalars[0].dtype.type(1), k, q, planar, out.numpy(), h_st.numpy(), v_t.numpy(), bad)
        if name is not None and bad.any():
            raise InputError(f"{name}: input contains NaN or inf values")
        ctx.cfg, ctx.scalars, ctx.k, ctx.q, ctx.planar = cfg, scalars, k, q, planar
        ctx.save_for_backward(h_st)
        return out, v_t

    @staticmethod
    def backward(ctx, g_out, g_v_t):
        (h_st,) = ctx.saved_tensors
        cfg, (a, c, r, _vl, th, vr) = ctx.cfg, ctx.scalars
        set_threads()
        g_out = (torch.zeros(_pooled_shape(h_st.shape, ctx.k, ctx.q, ctx.planar), dtype=h_st.dtype)
                 if g_out is None else g_out.contiguous())
        g_v_t = torch.zeros(h_st.shape[1:], dtype=h_st.dtype) if g_v_t is None else g_v_t.contiguous()
        g_x = torch.empty_like(h_st)
        g_v0 = torch.empty_like(g_v_t)
        pooled_backward(g_out.numpy(), g_v_t.numpy(), h_st.numpy(), a, c, r, th, vr, int(cfg.reset_mode),
                        bool(cfg.detach), int(cfg.sg_kind), a.dtype.type(cfg.sg_scale), a.dtype.type(1),
                        a.dtype.type(math.pi / 2), ctx.k, ctx.q, ctx.planar, g_x.numpy(), g_v0.numpy())
        return None, None, None, None, None, None, g_x, g_v0


def _pooled_shape(shape, k, q, planar):
    n_steps, n_planes, height, width = shape
    return (n_steps, n_planes, q, (height // k) * (width // q // k)) if planar else \
        (n_steps, n_planes, height // k, width // k)


def unsupported_reason(model, x, state, params, spike_fn, pool: int) -> str | None:
    """Why ``lif_avgpool`` cannot run this call (``None`` when it can); ``state`` ``None`` is rest."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        return "input must be a time-major [T, B, C, H, W] tensor"
    if x.device.type != "cpu":
        return f"the fused pooling kernel runs on the CPU, input is on {x.device}"
    if state is None:
        state = model.init_state(x.shape[1:], params, dtype=x.dtype)
    reason = fused.unsupported_reason(model, x, state, params, spike_fn, "cpu")
    if reason is None and fused._fast_scalars(model, x, state, params, "cpu") is None:
        reason = "only LIF/IF with one value per parameter (none learned) and no refractory period are fused"
    if reason is None and (x.shape[-2] % pool or x.shape[-1] % pool):
        reason = f"the {pool}x{pool} windows do not tile the {x.shape[-2]}x{x.shape[-1]} map"
    return reason


def _planes(x: torch.Tensor):
    """``(x4, q, channels_last)``: ``x [T, B, C, H, W]`` as ``[T, P, H, W*q]`` memory without a copy
    when it is contiguous (``P = B*C, q = 1``) or channels-last (``P = B, q = C``)."""
    t, b, c, h, w = x.shape
    cl = x.permute(0, 1, 3, 4, 2)
    if not x.is_contiguous() and cl.is_contiguous():
        return cl.reshape(t, b, h, w * c), c, True
    return x.contiguous().reshape(t, b * c, h, w), 1, False


def lif_avgpool(model, x, state, params, spike_fn, pool: int, name: str = "LIF+AvgPool2d"):
    """``(avg_pool2d(spikes, pool), final_state)`` of ``model`` (LIF or IF) over ``x [T, B, C, H, W]``
    from ``state`` (``None``: rest), fused; raises ``ParameterError`` naming the reason when it
    cannot run (``unsupported_reason``)."""
    if state is None and isinstance(x, torch.Tensor) and x.dim() == 5:
        state = model.init_state(x.shape[1:], params, dtype=x.dtype)
    reason = unsupported_reason(model, x, state, params, spike_fn, pool)
    if reason is not None:
        raise ParameterError(f"{name}: the fused kernel cannot run this call: {reason}")
    return run_fused(model, x, state, params, spike_fn, pool)


def run_fused(model, x, state, params, spike_fn, pool: int, name: str | None = None, contiguous: bool = False):
    """``lif_avgpool`` without its checks, for a caller that has had ``unsupported_reason`` return ``None``
    for these arguments (``state`` given, not ``None``). ``name``: the layer an ``InputError`` names
    when ``x`` holds a NaN or inf (``None``: not checked). The pooled spikes keep ``x``'s memory
    layout, or with ``contiguous`` are written contiguous (for a ``Flatten`` next, which would
    otherwise copy channels-last spikes, and copy its gradient back)."""
    from spikeflow.neurons.if_ import IFState
    from spikeflow.neurons.lif import LIFState

    t, b, c, h, w = x.shape
    scalars = fused._fast_scalars(model, x, state, params, "cpu")
    cfg = fused.config(model, params, spike_fn, None, False, "cpu")
    x4, q, channels_last = _planes(x)
    v0 = state.v.to(x.dtype).expand(x.shape[1:])
    v0 = (v0.permute(0, 2, 3, 1) if channels_last else v0).reshape(x4.shape[1:])
    planar = contiguous and channels_last
    out, v_t = PooledFastNeuron.apply(cfg, scalars, pool, q, planar, name, x4, v0)
    ph, pw = h // pool, w // pool
    if channels_last:
        out = out.view(t, b, c, ph, pw) if planar else out.view(t, b, ph, pw, c).permute(0, 1, 4, 2, 3)
        v_t = v_t.view(b, h, w, c).permute(0, 3, 1, 2)
    else:
        out, v_t = out.view(t, b, c, ph, pw), v_t.view(b, c, h, w)
    return out, (LIFState(v_t, None) if model.name == "lif" else IFState(v_t))
