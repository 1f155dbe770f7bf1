"""LIF/IF followed by ``k x k`` average pooling on the GPU (triton): the GPU twin of
``spikeflow.kernels.pool_lif``.

``AvgPool2d(k)(LIF(x))`` over time-major ``[T, B, C, H, W]``: each program owns ``BLOCK`` pooled
outputs and the ``k*k`` neurons of each one's window (a ``[BLOCK, k*k]`` tile in registers), steps
them over all T and writes only the pooled spike map; the full-size spike map is never stored. The
forward keeps the membrane before reset ``h`` for the backward, which gives every neuron of a window
the window's pooled gradient divided by ``k*k`` (the pooling's backward folded into the neuron's).
The neuron math is that of ``spikeflow.kernels.gpu`` (LIF and IF with one value per parameter,
float32, no refractory period); window sums of 0/1 spikes are exact, so the pooled map equals the
unfused pair's. Both ``x``'s contiguous and channels-last layouts are read in place.

The convolution before it is not here: on a GPU ``spikeflow.nn.SpikeConv2d`` runs torch's dense
convolution (cuDNN), whose output this kernel takes. Without a CUDA device the kernels run under
triton's interpreter (``TRITON_INTERPRET=1``) on CPU tensors, which is how the tests check them.
"""

from __future__ import annotations

import torch

from spikeflow.errors import ParameterError
from spikeflow.kernels import fused
from spikeflow.kernels.gpu import AVAILABLE, tl, triton

BLOCK = 64  # pooled outputs per program

if AVAILABLE:
    from spikeflow.kernels.gpu import grad_step, lif_step

    @triton.jit
    def _window(o, n_pooled, height, width_q, rows_out, cols_q, q, K: tl.constexpr, KP: tl.constexpr):
        """The addresses (within one step) of the ``K*K`` neurons of pooled outputs ``o`` and their mask."""
        mo = o < n_pooled
        p = o // (rows_out * cols_q)
        rest = o % (rows_out * cols_q)
        py = rest // cols_q
        cq = rest % cols_q
        px = cq // q
        m = cq % q
        d = tl.arange(0, KP)
        dy = d // K
        dx = d % K
        addr = (p[:, None].to(tl.int64) * height * width_q + (py[:, None] * K + dy[None, :]) * width_q
                + (px[:, None] * K + dx[None, :]) * q + m[:, None])
        return addr, mo[:, None] & (d < K * K)[None, :]

    @triton.jit
    def _forward(x_ptr, v0_ptr, out_ptr, h_ptr, v_t_ptr, n_steps, n_pooled, n, height, width_q, rows_out, cols_q,
                 q, a, c, r, vl, th, vr, RESET: tl.constexpr, STORE_H: tl.constexpr, K: tl.constexpr,
                 KP: tl.constexpr, BLOCK: tl.constexpr):
        o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        addr, mask = _window(o, n_pooled, height, width_q, rows_out, cols_q, q, K, KP)
        v = tl.load(v0_ptr + addr, mask=mask, other=0.0)
        for t in range(n_steps):
            step = tl.cast(t, tl.int64) * n
            x = tl.load(x_ptr + step + addr, mask=mask, other=0.0)
            h, z, v = lif_step(v, x, a, c, r, vl, th, vr, RESET)
            if STORE_H:
                tl.store(h_ptr + step + addr, h, mask=mask)
            pooled = tl.sum(tl.where(mask, z, 0.0), axis=1) / (K * K)
            tl.store(out_ptr + tl.cast(t, tl.int64) * n_pooled + o, pooled, mask=o < n_pooled)
        tl.store(v_t_ptr + addr, v, mask=mask)

    @triton.jit
    def _backward(g_out_ptr, g_v_t_ptr, h_ptr, g_x_ptr, g_v0_ptr, n_steps, n_pooled, n, height, width_q, rows_out,
                  cols_q, q, a, rc, th, vr, scale, RESET: tl.constexpr, DETACH: tl.constexpr, SG: tl.constexpr,
                  K: tl.constexpr, KP: tl.constexpr, BLOCK: tl.constexpr):
        o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        addr, mask = _window(o, n_pooled, height, width_q, rows_out, cols_q, q, K, KP)
        gv = tl.load(g_v_t_ptr + addr, mask=mask, other=0.0)
        for tt in range(n_steps):
            t = n_steps - 1 - tt
            step = tl.cast(t, tl.int64) * n
            h = tl.load(h_ptr + step + addr, mask=mask, other=0.0)
            go = tl.load(g_out_ptr + tl.cast(t, tl.int64) * n_pooled + o, mask=o < n_pooled, other=0.0) / (K * K)
            gh, _gu = grad_step(h, go[:, None], gv, th, vr, scale, RESET, DETACH, SG)
            tl.store(g_x_ptr + step + addr, gh * rc, mask=mask)
            gv = gh * a
        tl.store(g_v0_ptr + addr, gv, mask=mask)


def _launch_shape(x4, k: int, q: int):
    """``(grid, n_pooled, n, height, width_q, rows_out, cols_q)`` of ``x4 [T, P, H, W*q]``."""
    _, n_planes, height, width_q = x4.shape
    rows_out, cols_q = height // k, (width_q // q) // k * q
    n_pooled = n_planes * rows_out * cols_q
    return (triton.cdiv(n_pooled, BLOCK),), n_pooled, n_planes * height * width_q, height, width_q, rows_out, cols_q


class GPUPooledNeuron(torch.autograd.Function):
    """Inputs: cfg, scalars (``fused.FAST_FIELDS``), k, q, x [T, P, H, W*q], v0 [P, H, W*q].
    Outputs: pooled spikes [T, P, H/k, W/k*q], v_T [P, H, W*q]. Stores only the membrane ``h``."""

    @staticmethod
    def forward(ctx, cfg, scalars, k, q, x, v0):
        n_steps, n_planes, height, width_q = x.shape
        x, v0 = x.detach().contiguous(), v0.detach().contiguous()
        grid, n_pooled, n, *dims = _launch_shape(x, k, q)
        out = torch.empty((n_steps, n_planes, height // k, width_q // k), dtype=x.dtype, device=x.device)
        need_h = ctx.needs_input_grad[4] or ctx.needs_input_grad[5]  # a backward will come
        h_st = torch.empty_like(x) if need_h else out
        v_t = torch.empty_like(v0)
        a, c, r, vl, th, vr = (float(s) for s in scalars)
        _forward[grid](x, v0, out, h_st, v_t, n_steps, n_pooled, n, *dims, q, a, c, r, vl, th, vr,
                       RESET=int(cfg.reset_mode), STORE_H=bool(need_h), K=k, KP=triton.next_power_of_2(k * k),
                       BLOCK=BLOCK)
        ctx.cfg, ctx.scalars, ctx.k, ctx.q = cfg, scalars, k, q
        ctx.save_for_backward(h_st)
        return out, v_t

    @staticmethod
    def backward(ctx, g_out, g_v_t):
        (h_st,) = ctx.saved_tensors
        cfg, k, q = ctx.cfg, ctx.k, ctx.q
        a, c, r, _vl, th, vr = (float(s) for s in ctx.scalars)
        n_steps, n_planes, height, width_q = h_st.shape
        g_out = (torch.zeros((n_steps, n_planes, height // k, width_q // k), dtype=h_st.dtype, device=h_st.device)
                 if g_out is None else g_out.contiguous())
        g_v_t = torch.zeros_like(h_st[0]) if g_v_t is None else g_v_t.contiguous()
        g_x = torch.empty_like(h_st)
        g_v0 = torch.empty_like(g_v_t)
        grid, n_pooled, n, *dims = _launch_shape(h_st, k, q)
        rc = float(ctx.scalars[2] * ctx.scalars[1])  # r * c in float32, as the CPU kernel
        _backward[grid](g_out, g_v_t, h_st, g_x, g_v0, n_steps, n_pooled, n, *dims, q, a, rc, th, vr,
                        float(cfg.sg_scale), RESET=int(cfg.reset_mode), DETACH=bool(cfg.detach),
                        SG=int(cfg.sg_kind), K=k, KP=triton.next_power_of_2(k * k), BLOCK=BLOCK)
        return None, None, None, None, g_x, g_v0


def unsupported_reason(model, x, state, params, spike_fn, pool: int) -> str | None:
    """Why ``lif_avgpool`` cannot run this call (``None`` when it can); ``state`` ``None`` is rest."""
    if not AVAILABLE:
        return "triton is not installed (the 'gpu' extra: pip install 'spikeflow[gpu]')"
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        return "input must be a time-major [T, B, C, H, W] tensor"
    if state is None:
        state = model.init_state(x.shape[1:], params, dtype=x.dtype, device=x.device)
    reason = fused.unsupported_reason(model, x, state, params, spike_fn, "gpu")
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
    """``(avg_pool2d(spikes, pool), final_state)`` of ``model`` (LIF or IF) over ``x [T, B, C, H, W]`` from
    ``state`` (``None``: rest) on the GPU; ``ParameterError`` naming the reason when it cannot run."""
    if state is None and isinstance(x, torch.Tensor) and x.dim() == 5:
        state = model.init_state(x.shape[1:], params, dtype=x.dtype, device=x.device)
    reason = unsupported_reason(model, x, state, params, spike_fn, pool)
    if reason is not None:
        raise ParameterError(f"{name}: the fused GPU kernel cannot run this call: {reason}")
    return run_fused(model, x, state, params, spike_fn, pool)


def run_fused(model, x, state, params, spike_fn, pool: int):
    """``lif_avgpool`` without its checks (``unsupported_reason`` returned ``None``; ``state`` given)."""
    from spikeflow.neurons.if_ import IFState
    from spikeflow.neurons.lif import LIFState

    t, b, c, h, w = x.shape
    scalars = fused._fast_scalars(model, x, state, params, "gpu")
    cfg = fused.config(model, params, spike_fn, None, False, "gpu")
    x4, q, channels_last = _planes(x)
    v0 = state.v.to(x.dtype).expand(x.shape[1:])
    v0 = (v0.permute(0, 2, 3, 1) if channels_last else v0).reshape(x4.shape[1:])
    out, v_t = GPUPooledNeuron.apply(cfg, scalars, pool, q, x4, v0)
    ph, pw = h // pool, w // pool
    if channels_last:
        out = out.view(t, b, ph, pw, c).permute(0, 1, 4, 2, 3)
        v_t = v_t.view(b, h, w, c).permute(0, 3, 1, 2)
    else:
        out, v_t = out.view(t, b, c, ph, pw), v_t.view(b, c, h, w)
    return out, (LIFState(v_t, None) if model.name == "lif" else IFState(v_t))
