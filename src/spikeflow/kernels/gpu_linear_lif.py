"""Fused Linear + LIF on the GPU (triton): the synaptic current is never stored.

Forward, one kernel over all T: each program owns a tile of ``BLOCK_B`` samples x ``BLOCK_O`` output
neurons and, step by step, computes the tile's current ``x_t @ W.T + bias`` with ``tl.dot`` in
full float32 (``input_precision="ieee"``, no TF32: a TF32 current would move spikes) and runs the
LIF step of ``spikeflow.neurons.lif`` on it in registers:

    h = (v_leak + (v - v_leak) * a) + (r * I) * c      # a = exp(-dt / tau_mem), c = 1 - a
    z = h - v_threshold > 0;  v' = reset(h, z)

keeping only the membrane before reset ``h`` for the backward (as the CPU kernel
``spikeflow.kernels.linear_lif`` does). The backward is one reverse kernel over T that gives
``dL/dI`` per step (and, when a LIF parameter is learned, its gradient, the current recomputed
tile by tile as the forward did); the weight, input and bias gradients are then dense matmuls
and a sum on ``dL/dI`` (cuBLAS on a GPU). On a GPU the spike input is multiplied densely: the
event (active-row) gather of the CPU kernel pays off on the CPU, not on tensor-parallel hardware.

Scope: LIF without a refractory period or membrane trace, float32, one value per parameter or one
per output neuron (learnable ``tau_mem``/``v_threshold`` included), every reset and surrogate.
``unsupported_reason`` says why a call is outside it. Without a CUDA device the kernels run under
triton's interpreter (``TRITON_INTERPRET=1``) on CPU tensors, which is how the tests check them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeflow.errors import InputError
from spikeflow.kernels.fused import RESET_CODES, _surrogate_code
from spikeflow.kernels.gpu import AVAILABLE, tl, triton

PARAMS = ("a", "c", "r", "vl", "th", "vr")  # the per-neuron vectors, in the kernels' argument order
BLOCK_B, BLOCK_O, BLOCK_K = 16, 64, 32  # tile: samples x output neurons, and the input chunk of one dot


class Config(NamedTuple):
    reset_mode: int
    detach: bool
    sg_kind: int
    sg_scale: float
    layer: str


if AVAILABLE:
    from spikeflow.kernels.gpu import after_reset, grad_step, lif_step

    @triton.jit
    def _current(x_ptr, w_ptr, bias, t, rb, ro, mb, mo, n_batch, n_in, BLOCK_B: tl.constexpr,
                 BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
        """The tile's current at step ``t``: ``x[t, rb] @ W[ro].T + bias`` (``[BLOCK_B, BLOCK_O]``)."""
        rk = tl.arange(0, BLOCK_K)
        x_row = x_ptr + tl.cast(t, tl.int64) * n_batch * n_in + rb[:, None].to(tl.int64) * n_in
        acc = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
        for k0 in range(0, n_in, BLOCK_K):
            kk = k0 + rk
            mk = kk < n_in
            xt = tl.load(x_row + kk[None, :], mask=mb[:, None] & mk[None, :], other=0.0)
            wt = tl.load(w_ptr + ro[None, :].to(tl.int64) * n_in + kk[:, None], mask=mk[:, None] & mo[None, :],
                         other=0.0)
            acc += tl.dot(xt, wt, input_precision="ieee")
        return acc + bias[None, :]

    @triton.jit
    def _forward(x_ptr, w_ptr, b_ptr, v0_ptr, a_ptr, c_ptr, r_ptr, vl_ptr, th_ptr, vr_ptr, out_ptr, h_ptr,
                 v_t_ptr, n_steps, n_batch, n_in, n_out, RESET: tl.constexpr, STORE_H: tl.constexpr,
                 BLOCK_B: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
        rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
        ro = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
        mb, mo = rb < n_batch, ro < n_out
        m2 = mb[:, None] & mo[None, :]
        a = tl.load(a_ptr + ro, mask=mo, other=0.0)[None, :]
        c = tl.load(c_ptr + ro, mask=mo, other=0.0)[None, :]
        r = tl.load(r_ptr + ro, mask=mo, other=0.0)[None, :]
        vl = tl.load(vl_ptr + ro, mask=mo, other=0.0)[None, :]
        th = tl.load(th_ptr + ro, mask=mo, other=0.0)[None, :]
        vr = tl.load(vr_ptr + ro, mask=mo, other=0.0)[None, :]
        bias = tl.load(b_ptr + ro, mask=mo, other=0.0)
        tile = rb[:, None].to(tl.int64) * n_out + ro[None, :]
        v = tl.load(v0_ptr + tile, mask=m2, other=0.0)
        for t in range(n_steps):
            cur = _current(x_ptr, w_ptr, bias, t, rb, ro, mb, mo, n_batch, n_in, BLOCK_B, BLOCK_O, BLOCK_K)
            h, z, v = lif_step(v, cur, a, c, r, vl, th, vr, RESET)
            step = tl.cast(t, tl.int64) * n_batch * n_out + tile
            tl.store(out_ptr + step, z, mask=m2)
            if STORE_H:
                tl.store(h_ptr + step, h, mask=m2)
        tl.store(v_t_ptr + tile, v, mask=m2)

    @triton.jit
    def _backward(g_out_ptr, g_v_t_ptr, h_ptr, v0_ptr, x_ptr, w_ptr, b_ptr, a_ptr, c_ptr, r_ptr, vl_ptr, th_ptr,
                  vr_ptr, g_i_ptr, g_v0_ptr, g_p_ptr, n_steps, n_batch, n_in, n_out, scale, RESET: tl.constexpr,
                  DETACH: tl.constexpr, SG: tl.constexpr, NEED_PARAMS: tl.constexpr, BLOCK_B: tl.constexpr,
                  BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
        """``g_i [T, B, out] = dL/dI``, ``g_v0``; with ``NEED_PARAMS`` each program's batch-summed
        parameter gradients into ``g_p [batch tiles, 6, out]`` (rows in ``PARAMS`` order)."""
        rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
        ro = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
        mb, mo = rb < n_batch, ro < n_out
        m2 = mb[:, None] & mo[None, :]
        a = tl.load(a_ptr + ro, mask=mo, other=0.0)[None, :]
        c = tl.load(c_ptr + ro, mask=mo, other=0.0)[None, :]
        r = tl.load(r_ptr + ro, mask=mo, other=0.0)[None, :]
        vl = tl.load(vl_ptr + ro, mask=mo, other=0.0)[None, :]
        th = tl.load(th_ptr + ro, mask=mo, other=0.0)[None, :]
        vr = tl.load(vr_ptr + ro, mask=mo, other=0.0)[None, :]
        tile = rb[:, None].to(tl.int64) * n_out + ro[None, :]
        gv = tl.load(g_v_t_ptr + tile, mask=m2, other=0.0)
        if NEED_PARAMS:
            bias = tl.load(b_ptr + ro, mask=mo, other=0.0)
            v0 = tl.load(v0_ptr + tile, mask=m2, other=0.0)
            g_a = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
            g_c = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
            g_r = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
            g_vl = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
            g_th = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
            g_vr = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
        for tt in range(n_steps):
            t = n_steps - 1 - tt
            step = tl.cast(t, tl.int64) * n_batch * n_out + tile
            h = tl.load(h_ptr + step, mask=m2, other=0.0)
            go = tl.load(g_out_ptr + step, mask=m2, other=0.0)
            gh, gu = grad_step(h, go, gv, th, vr, scale, RESET, DETACH, SG)
            tl.store(g_i_ptr + step, gh * (r * c), mask=m2)
            if NEED_PARAMS:
                z = tl.where(h - th > 0.0, 1.0, 0.0)
                if RESET == 0:
                    g_th += gv * (-z) - gu
                else:
                    g_th -= gu
                if RESET == 1:
                    g_vr += gv * z
                # the membrane before the step: v0, or the step before's h after its reset
                hp = tl.load(h_ptr + step - n_batch * n_out, mask=m2 & (t > 0), other=0.0)
                v_prev = tl.where(t > 0, after_reset(hp, tl.where(hp - th > 0.0, 1.0, 0.0), th, vr, RESET), v0)
                g_a += gh * (v_prev - vl)
                g_vl += gh * (1.0 - a)
                cur = _current(x_ptr, w_ptr, bias, t, rb, ro, mb, mo, n_batch, n_in, BLOCK_B, BLOCK_O, BLOCK_K)
                g_c += gh * (r * cur)
                g_r += gh * (cur * c)
            gv = gh * a
        tl.store(g_v0_ptr + tile, gv, mask=m2)
        if NEED_PARAMS:
            row = g_p_ptr + tl.program_id(0) * 6 * n_out + ro
            tl.store(row, tl.sum(tl.where(m2, g_a, 0.0), axis=0), mask=mo)
            tl.store(row + n_out, tl.sum(tl.where(m2, g_c, 0.0), axis=0), mask=mo)
            tl.store(row + 2 * n_out, tl.sum(tl.where(m2, g_r, 0.0), axis=0), mask=mo)
            tl.store(row + 3 * n_out, tl.sum(tl.where(m2, g_vl, 0.0), axis=0), mask=mo)
            tl.store(row + 4 * n_out, tl.sum(tl.where(m2, g_th, 0.0), axis=0), mask=mo)
            tl.store(row + 5 * n_out, tl.sum(tl.where(m2, g_vr, 0.0), axis=0), mask=mo)


def _grid(n_batch: int, n_out: int):
    return (triton.cdiv(n_batch, BLOCK_B), triton.cdiv(n_out, BLOCK_O))


class GPULinearLIFFunction(torch.autograd.Function):
    """Inputs: cfg, x [T, B, in], weight [out, in], bias [out], v0 [B, out], then ``PARAMS`` tensors [out].
    Outputs: spikes [T, B, out], v_T [B, out]."""

    @staticmethod
    def forward(ctx, cfg: Config, x, weight, bias, v0, *params):
        n_steps, n_batch, n_in = x.shape
        n_out = weight.shape[0]
        x, weight, bias, v0 = (t.detach().contiguous() for t in (x, weight, bias, v0))
        params = [q.detach().contiguous() for q in params]
        out = torch.empty((n_steps, n_batch, n_out), dtype=x.dtype, device=x.device)
        h_st = torch.empty_like(out)
        v_t = torch.empty_like(v0)
        _forward[_grid(n_batch, n_out)](x, weight, bias, v0, *params, out, h_st, v_t, n_steps, n_batch, n_in, n_out,
                                        RESET=cfg.reset_mode, STORE_H=True, BLOCK_B=BLOCK_B, BLOCK_O=BLOCK_O,
                                        BLOCK_K=BLOCK_K)
        ctx.cfg = cfg
        ctx.save_for_backward(x, weight, bias, v0, h_st, *params)
        return out, v_t

    @staticmethod
    def backward(ctx, g_out, g_v_t):
        cfg = ctx.cfg
        x, weight, bias, v0, h_st, *params = ctx.saved_tensors
        n_steps, n_batch, n_in = x.shape
        n_out = weight.shape[0]
        g_out = torch.zeros_like(h_st) if g_out is None else g_out.contiguous()
        g_v_t = torch.zeros_like(v0) if g_v_t is None else g_v_t.contiguous()
        needs = ctx.needs_input_grad[1:]  # x, weight, bias, v0, *params
        need_params = any(needs[4:])
        grid = _grid(n_batch, n_out)
        g_i = torch.empty_like(h_st)
        g_v0 = torch.empty_like(v0)
        g_p = torch.zeros((grid[0] if need_params else 1, len(PARAMS), n_out), dtype=x.dtype, device=x.device)
        _backward[grid](g_out, g_v_t, h_st, v0, x, weight, bias, *params, g_i, g_v0, g_p, n_steps, n_batch, n_in,
                        n_out, float(cfg.sg_scale), RESET=cfg.reset_mode, DETACH=cfg.detach, SG=cfg.sg_kind,
                        NEED_PARAMS=need_params, BLOCK_B=BLOCK_B, BLOCK_O=BLOCK_O, BLOCK_K=BLOCK_K)
        g_i2 = g_i.reshape(-1, n_out)
        g_x = (g_i2 @ weight).reshape(x.shape) if needs[0] else None
        g_w = g_i2.t() @ x.reshape(-1, n_in) if needs[1] else None
        g_b = g_i2.sum(0) if needs[2] else None
        g_p = g_p.sum(0)
        g_params = [g_p[k] if needs[4 + k] else None for k in range(len(PARAMS))]
        return (None, g_x, g_w, g_b, g_v0 if needs[3] else None, *g_params)


def _forward_without_grad(cfg: Config, x, weight, bias, v0, *params):
    n_steps, n_batch, n_in = x.shape
    n_out = weight.shape[0]
    out = torch.empty((n_steps, n_batch, n_out), dtype=x.dtype, device=x.device)
    v_t = torch.empty_like(v0)
    _forward[_grid(n_batch, n_out)](x, weight, bias, v0, *params, out, out, v_t, n_steps, n_batch, n_in, n_out,
                                    RESET=cfg.reset_mode, STORE_H=False, BLOCK_B=BLOCK_B, BLOCK_O=BLOCK_O,
                                    BLOCK_K=BLOCK_K)
    return out, v_t


def _vector(value, n_out: int, like: torch.Tensor):
    """A LIF parameter as an ``[n_out]`` float32 tensor on ``like``'s device (autograd sums an expanded one)."""
    if not isinstance(value, torch.Tensor):
        return torch.full((n_out,), float(value), dtype=like.dtype, device=like.device)
    return value.to(like.dtype).reshape(-1).expand(n_out)


def unsupported_reason(x, weight, bias, params, spike_fn, refractory: bool, return_trace: bool) -> str | None:
    """Why the GPU kernel cannot run this call, or ``None`` (``params``: ``spikeflow.neurons.lif.LIFParams``)."""
    if not AVAILABLE:
        return "triton is not installed (the 'gpu' extra: pip install 'spikeflow[gpu]')"
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        return "input must be time-major [T, B, ..., in_features] with T >= 1"
    if x.dtype != torch.float32 or weight.dtype != torch.float32 or (bias is not None and bias.dtype != x.dtype):
        kinds = f"input {x.dtype}, weight {weight.dtype}" + ("" if bias is None else f", bias {bias.dtype}")
        return f"the GPU kernel runs float32 ({kinds})"
    tensors = [("weight", weight)] + ([("bias", bias)] if bias is not None else [])
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
            if value.dtype not in (torch.float32, torch.float64):
                return f"parameter {name!r} is {value.dtype}, not float"
            tensors.append((f"parameter {name!r}", value))
    for what, t in tensors:
        if t.device != x.device:
            return f"{what} is on {t.device}, input on {x.device}"
    return None


def linear_lif(x, weight, bias, params, spike_fn, v0=None, layer: str = "LinearLIF"):
    """Spikes ``[T, *batch, out]`` and final membrane ``[*batch, out]`` of LIF(Linear(x)) over all T on
    the GPU; the caller has checked ``unsupported_reason``. Same results as the CPU kernel (to float
    rounding: the current sums in another order)."""
    n_steps, batch, n_in = x.shape[0], x.shape[1:-1], x.shape[-1]
    n_out = weight.shape[0]
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{layer}: input contains NaN or inf values")
    x3 = x.reshape(n_steps, -1, n_in)
    n_batch = x3.shape[1]
    a = params.alpha
    c = 1.0 - a  # the reference's own expression
    vec = {k: _vector(v, n_out, x) for k, v in
           dict(a=a, c=c, r=params.r, vl=params.v_leak, th=params.v_threshold, vr=params.v_reset).items()}
    if v0 is None:
        v0 = vec["vl"].detach().expand(n_batch, n_out).contiguous()
    else:
        v0 = v0.to(x.dtype).expand(*batch, n_out).reshape(n_batch, n_out)
    if bias is None:
        bias = torch.zeros(n_out, dtype=x.dtype, device=x.device)
    sg_kind, sg_scale = _surrogate_code(spike_fn)
    cfg = Config(RESET_CODES[params.reset], bool(params.detach_reset), sg_kind, sg_scale, layer)
    inputs = [x3, weight, bias, v0, *[vec[k] for k in PARAMS]]
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        out, v_t = GPULinearLIFFunction.apply(cfg, *inputs)
    else:
        out, v_t = _forward_without_grad(cfg, *[t.detach().contiguous() for t in inputs])
    return out.reshape(n_steps, *batch, n_out), v_t.reshape(*batch, n_out)
