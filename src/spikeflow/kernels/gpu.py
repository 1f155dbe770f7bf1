"""Fused GPU neuron kernels (triton), import-guarded: without triton ``AVAILABLE`` is False.

Covers the fast path of ``spikeflow.kernels.cpu``: LIF and IF with one value per parameter,
no refractory period, float32, gradients for the input and the initial membrane. The same
float operations in the same order as the CPU kernels and the reference (on a GPU the
compiler may contract a multiply-add into an FMA, so membranes can differ in the last bit).
Each program owns ``BLOCK`` neurons and loops over all T steps; the forward stores only the
membrane before reset ``h`` (the spike is recomputed from it in the backward).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the package works without triton
    triton = None
    tl = None

AVAILABLE = triton is not None
BLOCK = 256

if AVAILABLE:

    # The neuron math shared by every triton kernel of spikeflow (kernels.gpu_linear_lif,
    # kernels.gpu_pool_lif): the operations of spikeflow.kernels.cpu's fast_step / fast_grad.
    @triton.jit
    def lif_step(v, x, a, c, r, vl, th, vr, RESET: tl.constexpr):
        """One step from membrane ``v`` and input ``x``: ``(h, spike, v after reset)``."""
        h = (vl + (v - vl) * a) + (r * x) * c
        z = tl.where(h - th > 0.0, 1.0, 0.0)
        return h, z, after_reset(h, z, th, vr, RESET)

    @triton.jit
    def after_reset(h, z, th, vr, RESET: tl.constexpr):
        if RESET == 0:
            v = h - z * th
        elif RESET == 1:
            v = h - z * (h - vr)
        else:
            v = h
        return v

    @triton.jit
    def surrogate_grad(u, scale, SG: tl.constexpr):
        """The surrogate derivatives of ``spikeflow.surrogate.surrogate_grad`` (``SG`` < 0: heaviside, 0)."""
        if SG == 0:
            d = scale * tl.abs(u) + 1.0
            sg = 1.0 / (d * d)
        elif SG == 1:
            q = 1.5707963267948966 * scale * u
            sg = (scale / 2.0) / (1.0 + q * q)
        elif SG == 2:
            sg = tl.maximum(1.0 - tl.abs(u) / scale, 0.0) / scale
        elif SG == 3:
            sg = tl.where(tl.abs(u) < scale / 2.0, 1.0, 0.0)
        else:
            sg = u * 0.0
        return sg

    @triton.jit
    def grad_step(h, g_spike, gv, th, vr, scale, RESET: tl.constexpr, DETACH: tl.constexpr, SG: tl.constexpr):
        """One reverse step from the stored membrane ``h``, the spike's gradient and the gradient of
        the membrane after the step: ``(dL/dh, dL/du)`` (``u = h - th``)."""
        u = h - th
        z = tl.where(u > 0.0, 1.0, 0.0)
        if RESET == 0:
            dvdh = 1.0
            dvdz = 0.0 if DETACH else -th
        elif RESET == 1:
            dvdh = 1.0 - z
            dvdz = 0.0 if DETACH else -(h - vr)
        else:
            dvdh = 1.0
            dvdz = 0.0
        gu = (g_spike + gv * dvdz) * surrogate_grad(u, scale, SG)
        return gv * dvdh + gu, gu

    @triton.jit
    def _forward(x_ptr, v0_ptr, out_ptr, h_ptr, trace_ptr, v_t_ptr, n, n_steps, a, c, r, vl, th, vr,
                 RESET: tl.constexpr, TRACE: tl.constexpr, BLOCK_N: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = offs < n
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
        for t in range(n_steps):
            x = tl.load(x_ptr + t * n + offs, mask=mask, other=0.0)
            h, z, v = lif_step(v, x, a, c, r, vl, th, vr, RESET)
            tl.store(out_ptr + t * n + offs, z, mask=mask)
            tl.store(h_ptr + t * n + offs, h, mask=mask)
            if TRACE:
                tl.store(trace_ptr + t * n + offs, v, mask=mask)
        tl.store(v_t_ptr + offs, v, mask=mask)

    @triton.jit
    def _backward(g_out_ptr, g_trace_ptr, g_v_t_ptr, h_ptr, g_x_ptr, g_v0_ptr, n, n_steps, a, c, r, th, vr,
                  scale, RESET: tl.constexpr, DETACH: tl.constexpr, SG: tl.constexpr, HAS_G_TRACE: tl.constexpr,
                  BLOCK_N: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = offs < n
        gv = tl.load(g_v_t_ptr + offs, mask=mask, other=0.0)
        for tt in range(n_steps):
            t = n_steps - 1 - tt
            if HAS_G_TRACE:
                gv += tl.load(g_trace_ptr + t * n + offs, mask=mask, other=0.0)
            h = tl.load(h_ptr + t * n + offs, mask=mask, other=0.0)
            go = tl.load(g_out_ptr + t * n + offs, mask=mask, other=0.0)
            gh, _gu = grad_step(h, go, gv, th, vr, scale, RESET, DETACH, SG)
            tl.store(g_x_ptr + t * n + offs, gh * (r * c), mask=mask)
            gv = gh * a
        tl.store(g_v0_ptr + offs, gv, mask=mask)


def _grid(n):
    return (triton.cdiv(n, BLOCK),)


def fast_forward(x, v0, scalars, cfg, out, h_st, trace, v_t):
    """Tensors are [T, N] / [N] float32 on the device; ``scalars`` = (a, c, r, vl, th, vr)."""
    n_steps, n = x.shape
    a, c, r, vl, th, vr = (float(s) for s in scalars)
    _forward[_grid(n)](x, v0, out, h_st, trace, v_t, n, n_steps, a, c, r, vl, th, vr,
                       RESET=int(cfg.reset_mode), TRACE=bool(cfg.return_trace), BLOCK_N=BLOCK)


def fast_backward(g_out, g_trace, has_g_trace, g_v_t, h_st, scalars, cfg):
    n_steps, n = h_st.shape
    a, c, r, vl, th, vr = (float(s) for s in scalars)
    g_x = torch.empty_like(h_st)
    g_v0 = torch.empty_like(g_v_t)
    _backward[_grid(n)](g_out, g_trace, g_v_t, h_st, g_x, g_v0, n, n_steps, a, c, r, th, vr, float(cfg.sg_scale),
                        RESET=int(cfg.reset_mode), DETACH=bool(cfg.detach), SG=int(cfg.sg_kind),
                        HAS_G_TRACE=bool(has_g_trace), BLOCK_N=BLOCK)
    return g_x, g_v0
