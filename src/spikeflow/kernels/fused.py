"""Fused multi-step neuron dynamics as one ``torch.autograd.Function``, for every LIF-family model.

``pack`` turns a model's parameters and state into the kernels' uniform form (see
``spikeflow.kernels.cpu``): every part a model lacks gets parameters that make it an exact
identity, and every value is computed with the same torch expressions as the reference
``step`` (``params.alpha``, ``1.0 - alpha``, ...), so the fused forward reproduces the
reference bit for bit. Gradients flow to the input, the initial state and every parameter
tensor (autograd then maps ``alpha`` back to ``tau`` and sums expanded parameters).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch

from spikeflow.errors import ParameterError, ShapeError
from spikeflow.neurons.alif import ALIFState
from spikeflow.neurons.base import heaviside
from spikeflow.neurons.cuba import CubaState
from spikeflow.neurons.if_ import IFState
from spikeflow.neurons.lif import LIFState

FUSED_MODELS = ("lif", "if", "alif", "cubalif")
RESET_CODES = {"subtract": 0, "to_reset": 1, "none": 2}
SURROGATE_CODES = {"heaviside": -1, "fast_sigmoid": 0, "atan": 1, "triangle": 2, "straight_through": 3}
# Order of the parameter tensors handed to the kernels.
PARAM_NAMES = ("a", "c", "b", "cb", "w", "r", "vl", "th", "beta", "rho", "vr", "k")
# The model parameter each kernel tensor comes from (for error messages).
SOURCE_FIELD = dict(a="tau_mem", c="tau_mem", b="tau_syn", cb="tau_syn", w="w_in", r="r", vl="v_leak",
                    th="v_threshold", beta="beta", rho="tau_adapt", vr="v_reset", k="tau_syn")


class Config(NamedTuple):
    model: str
    reset_mode: int
    detach: bool
    use_refr: bool
    refr_steps: int
    sg_kind: int
    sg_scale: float
    return_trace: bool
    backend: str


GPU_SCOPE = "LIF/IF with one value per parameter (none learned), float32, no refractory period"


def unsupported_reason(model, x, state, params, spike_fn, backend: str = "cpu") -> str | None:
    """Why the fused kernels of ``backend`` cannot run this call (``None`` when they can)."""
    reason = _unsupported(model, x, state, params, spike_fn)
    if reason is None and backend == "gpu" and _fast_scalars(model, x, state, params, backend) is None:
        reason = f"the GPU kernel covers {GPU_SCOPE}"
    return reason


def _unsupported(model, x, state, params, spike_fn) -> str | None:
    if model.name not in FUSED_MODELS:
        return f"model {model.name!r} has no fused kernel (fused: {FUSED_MODELS})"
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.float32, torch.float64):
        return "input must be a float32 or float64 tensor"
    if x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        return f"input must be time-major [T, B, ...] with T >= 1 and neurons, got {tuple(x.shape)}"
    if _surrogate_code(spike_fn) is None:
        return f"spike_fn {spike_fn!r} is neither a spikeflow Surrogate nor heaviside"
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, torch.Tensor):
            if not value.is_floating_point():
                return f"parameter {f.name!r} is not a floating-point tensor"
            if value.dim() > 0 and torch.promote_types(value.dtype, x.dtype) != x.dtype:
                return f"per-neuron parameter {f.name!r} ({value.dtype}) would promote the {x.dtype} input"
            if value.device != x.device:
                return f"parameter {f.name!r} is on {value.device}, input on {x.device}"
    for s in state:
        if s is not None and (s.shape != x.shape[1:] or s.device != x.device):
            return "state tensors must have the shape of one input step and its device"
    return None


def _surrogate_code(spike_fn):
    if spike_fn is heaviside:
        return SURROGATE_CODES["heaviside"], 1.0
    kind = getattr(spike_fn, "kind", None)
    scale = getattr(spike_fn, "scale", None)
    if kind in SURROGATE_CODES and scale is not None and callable(spike_fn):
        return SURROGATE_CODES[kind], float(scale)
    return None


def _full(name: str, value, dtype, shape) -> torch.Tensor:
    """A parameter as a flat ``[N]`` tensor of ``dtype`` (expanded; autograd sums it back)."""
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(float(value), dtype=dtype)
    try:
        full = value.to(dtype).expand(shape)
    except RuntimeError:
        raise ShapeError(
            f"kernels: parameter {SOURCE_FIELD[name]!r} of shape {tuple(value.shape)} does not broadcast to the "
            f"neurons' shape {tuple(shape)}"
        ) from None
    return full.reshape(-1)


def pack(model, x, state, params):
    """``(tensors, flat_state, refr)``: parameters and state in the kernels' uniform form."""
    dtype, shape = x.dtype, x.shape[1:]
    zeros = torch.zeros(shape, dtype=dtype, device=x.device)
    name = model.name
    if name == "if":
        a = c = 1.0
        vl = 0.0
    else:
        a = params.alpha
        c = 1.0 - a  # the reference's own expression (rounded in alpha's dtype)
        vl = params.v_leak
    if name == "cubalif":  # the exact coupled step of neurons.cuba: input gain E, current coupling K
        b = params.alpha_syn
        cb, w = 1.0 - b, params.w_in
        c, k = params.input_gain, params.coupling
    else:
        b, cb, w, k = 0.0, 1.0, 1.0, 0.0
    if name == "alif":
        beta, rho = params.beta, params.rho
    else:
        beta, rho = 0.0, 0.0
    values = dict(a=a, c=c, b=b, cb=cb, w=w, r=params.r, vl=vl, th=params.v_threshold, beta=beta, rho=rho,
                  vr=params.v_reset, k=k)
    tensors = [_full(k, values[k], dtype, shape) for k in PARAM_NAMES]
    v0 = state.v
    i0 = state.i if name == "cubalif" else zeros
    s0 = state.a if name == "alif" else zeros
    refr = state.refractory if name == "lif" else None
    flat = [t.to(dtype).reshape(-1) for t in (v0, i0, s0)]
    return tensors, flat, refr


def config(model, params, spike_fn, refr, return_trace: bool, backend: str) -> Config:
    sg_kind, sg_scale = _surrogate_code(spike_fn)
    use_refr = refr is not None
    return Config(
        model=model.name,
        reset_mode=RESET_CODES[params.reset],
        detach=bool(params.detach_reset),
        use_refr=use_refr,
        refr_steps=int(params.refractory_steps) if use_refr else 0,
        sg_kind=sg_kind,
        sg_scale=sg_scale,
        return_trace=bool(return_trace),
        backend=backend,
    )


def bytes_per_neuron_step(model_name: str, dtype=torch.float32, fast: bool = False, saves_input: bool = False) -> int:
    """Bytes the fused forward keeps for the backward, per neuron and time step.

    Fast path (LIF/IF, one value per parameter, no refractory period): the membrane before reset
    only (the spike is recomputed from it). General kernel: a flags byte (spike, refractory) and
    that membrane, plus the current (CubaLIF) or adaptation (ALIF), plus the input when a
    parameter multiplying it (tau_mem or r; for CubaLIF also tau_syn or w_in) is learned.
    """
    item = torch.empty((), dtype=dtype).element_size()
    if fast:
        return item
    extra = item if model_name in ("alif", "cubalif") else 0
    return 1 + item + extra + (item if saves_input else 0)


def _kernels(backend: str):
    if backend == "cpu":
        from spikeflow.kernels import cpu

        cpu.set_threads()
        return cpu
    from spikeflow.kernels import gpu

    return gpu


class FusedNeuron(torch.autograd.Function):
    """Inputs: cfg, x [T, N], v0, i0, s0 [N], refr0 [N] int32, then ``PARAM_NAMES`` tensors [N].

    Outputs: spikes [T, N], v_T, i_T, s_T, refr_T, trace [T, N] (empty unless asked).
    """

    @staticmethod
    def forward(ctx, cfg: Config, x, v0, i0, s0, refr0, *params):
        k = _kernels(cfg.backend)
        n_steps, n = x.shape
        dtype, dev = x.dtype, x.device
        is_cuba, is_alif = cfg.model == "cubalif", cfg.model == "alif"
        needs = dict(zip(PARAM_NAMES, ctx.needs_input_grad[6:]))
        # x is needed by the backward only for the gradients of parameters that multiply it.
        save_x = needs["c"] or needs["r"] or (is_cuba and (needs["cb"] or needs["w"]))
        out = torch.empty((n_steps, n), dtype=dtype, device=dev)
        h_st = torch.empty((n_steps, n), dtype=dtype, device=dev)
        flags = torch.empty((n_steps, n), dtype=torch.uint8, device=dev)
        dummy = torch.empty((1, 1), dtype=dtype, device=dev)
        i_st = torch.empty((n_steps, n), dtype=dtype, device=dev) if is_cuba else dummy
        s_st = torch.empty((n_steps, n), dtype=dtype, device=dev) if is_alif else dummy
        trace = torch.empty((n_steps, n), dtype=dtype, device=dev) if cfg.return_trace else dummy
        v_t, i_t, s_t = (torch.empty(n, dtype=dtype, device=dev) for _ in range(3))
        refr_t = torch.empty(n, dtype=torch.int32, device=dev)
        x_c = x.detach().contiguous()
        k.run_forward(
            x_c, v0.detach(), i0.detach(), s0.detach(), refr0, [p.detach() for p in params], cfg,
            is_cuba, is_alif, out, h_st, flags, i_st, s_st, trace, v_t, i_t, s_t, refr_t,
        )
        ctx.cfg = cfg
        ctx.flags_saved = (save_x, is_cuba, is_alif)
        ctx.save_for_backward(x_c if save_x else None, h_st, flags, i_st if is_cuba else None,
                              s_st if is_alif else None, v0, i0, s0, *params)
        ctx.mark_non_differentiable(refr_t)
        if not cfg.return_trace:
            trace = torch.empty((0, n), dtype=dtype, device=dev)
        return out, v_t, i_t, s_t, refr_t, trace

    @staticmethod
    def backward(ctx, g_out, g_v_t, g_i_t, g_s_t, _g_refr, g_trace):
        cfg = ctx.cfg
        k = _kernels(cfg.backend)
        save_x, is_cuba, is_alif = ctx.flags_saved
        x, h_st, flags, i_st, s_st, v0, i0, s0, *params = ctx.saved_tensors
        n_steps, n = h_st.shape
        dtype, dev = h_st.dtype, h_st.device
        dummy = torch.empty((1, 1), dtype=dtype, device=dev)

        def vec(g):
            return torch.zeros(n, dtype=dtype, device=dev) if g is None else g.contiguous()

        g_out = torch.zeros((n_steps, n), dtype=dtype, device=dev) if g_out is None else g_out.contiguous()
        has_g_trace = cfg.return_trace and g_trace is not None
        grads = k.run_backward(
            g_out, g_trace.contiguous() if has_g_trace else dummy, has_g_trace, vec(g_v_t), vec(g_i_t), vec(g_s_t),
            x if save_x else dummy, save_x, h_st, flags, i_st if is_cuba else dummy, is_cuba,
            s_st if is_alif else dummy, is_alif, v0.detach(), i0.detach(), s0.detach(),
            [p.detach() for p in params], cfg,
        )
        g_x, g_v0, g_i0, g_s0, *g_params = grads
        g_params = [g if need else None for g, need in zip(g_params, ctx.needs_input_grad[6:])]
        return (None, g_x, g_v0, g_i0, g_s0, None, *g_params)


FAST_FIELDS = ("a", "c", "r", "vl", "th", "vr")


class FastNeuron(torch.autograd.Function):
    """LIF/IF with one value per parameter, no refractory period, gradients for x and v0 only.

    Inputs: cfg, scalars (a, c, r, vl, th, vr as numpy scalars of x's dtype), x [T, N], v0 [N].
    Outputs: spikes [T, N], v_T [N], trace [T, N] (empty unless asked). Stores only ``h``.
    """

    @staticmethod
    def forward(ctx, cfg: Config, scalars, x, v0):
        n_steps, n = x.shape
        out = torch.empty((n_steps, n), dtype=x.dtype, device=x.device)
        h_st = torch.empty((n_steps, n), dtype=x.dtype, device=x.device)
        trace = torch.empty((n_steps, n) if cfg.return_trace else (1, 1), dtype=x.dtype, device=x.device)
        v_t = torch.empty(n, dtype=x.dtype, device=x.device)
        ctx.cfg, ctx.scalars = cfg, scalars
        ctx.save_for_backward(h_st)
        if cfg.backend == "gpu":
            from spikeflow.kernels import gpu

            gpu.fast_forward(x.detach().contiguous(), v0.detach().contiguous(), scalars, cfg, out, h_st, trace, v_t)
            if not cfg.return_trace:
                trace = torch.empty((0, n), dtype=x.dtype, device=x.device)
            return out, v_t, trace
        from spikeflow.kernels import cpu

        cpu.set_threads()
        cpu.fast_forward(x.detach().contiguous().numpy(), v0.detach().contiguous().numpy(), *scalars,
                         int(cfg.reset_mode), bool(cfg.return_trace), scalars[0].dtype.type(1),
                         out.numpy(), h_st.numpy(), trace.numpy(), v_t.numpy())
        if not cfg.return_trace:
            trace = torch.empty((0, n), dtype=x.dtype)
        return out, v_t, trace

    @staticmethod
    def backward(ctx, g_out, g_v_t, g_trace):
        cfg = ctx.cfg
        (h_st,) = ctx.saved_tensors
        n_steps, n = h_st.shape
        a, c, r, vl, th, vr = ctx.scalars
        g_out = torch.zeros_like(h_st) if g_out is None else g_out.contiguous()
        g_v_t = torch.zeros(n, dtype=h_st.dtype, device=h_st.device) if g_v_t is None else g_v_t.contiguous()
        has_g_trace = cfg.return_trace and g_trace is not None
        g_trace = (g_trace.contiguous() if has_g_trace
                   else torch.empty((1, 1), dtype=h_st.dtype, device=h_st.device))
        if cfg.backend == "gpu":
            from spikeflow.kernels import gpu

            g_x, g_v0 = gpu.fast_backward(g_out, g_trace, has_g_trace, g_v_t, h_st, ctx.scalars, cfg)
            return None, None, g_x, g_v0
        from spikeflow.kernels import cpu

        cpu.set_threads()
        g_x = torch.empty_like(h_st)
        g_v0 = torch.empty(n, dtype=h_st.dtype)
        cpu.fast_backward(g_out.numpy(), g_trace.numpy(), has_g_trace, g_v_t.numpy(), h_st.numpy(), a, c, r, th,
                          vr, int(cfg.reset_mode), bool(cfg.detach), int(cfg.sg_kind), a.dtype.type(cfg.sg_scale),
                          a.dtype.type(1), a.dtype.type(math.pi / 2), g_x.numpy(), g_v0.numpy())
        return None, None, g_x, g_v0


def _fast_scalars(model, x, state, params, backend):
    """The fast path's scalar parameters, or ``None`` when the general kernel is needed."""
    if model.name not in ("lif", "if") or getattr(state, "refractory", None) is not None:
        return None
    if backend == "gpu" and x.dtype != torch.float32:
        return None
    if model.name == "if":
        values = dict(a=1.0, c=1.0, vl=0.0)
    else:
        a = params.alpha
        values = dict(a=a, c=1.0 - a, vl=params.v_leak)
    values.update(r=params.r, th=params.v_threshold, vr=params.v_reset)
    out = []
    for k in FAST_FIELDS:
        v = values[k]
        if isinstance(v, torch.Tensor):
            if v.numel() != 1 or v.requires_grad:
                return None
            v = v.detach().to("cpu", x.dtype).reshape(())  # a CUDA layer's buffer too
        else:
            v = torch.as_tensor(float(v), dtype=x.dtype)
        out.append(v.numpy()[()])
    return tuple(out)


def memory_order(x: torch.Tensor) -> list:
    """The dims of ``x`` in memory order when ``x.permute(order)`` is contiguous with time still
    first (e.g. a channels-last ``[T, B, C, H, W]``); otherwise the identity (reshape copies)."""
    ident = list(range(x.dim()))
    if x.is_contiguous():
        return ident
    order = [0] + sorted(range(1, x.dim()), key=lambda d: (-x.stride(d), d))
    return order if x.permute(order).is_contiguous() else ident


def multistep(model, x, state, params, spike_fn, backend: str, return_trace: bool = False):
    """The fused equivalent of ``reference.multistep`` (same outputs, same gradients)."""
    if params.reset not in RESET_CODES:
        raise ParameterError(f"kernels: unknown reset mode {params.reset!r}; valid: {tuple(RESET_CODES)}")
    n_steps, shape = x.shape[0], x.shape[1:]
    scalars = _fast_scalars(model, x, state, params, backend)
    if scalars is not None:
        cfg = config(model, params, spike_fn, None, return_trace, backend)
        # elementwise in space: run in x's memory order (e.g. channels-last conv output), no copy
        perm = memory_order(x)
        xp = x.permute(perm)
        inv = sorted(range(len(perm)), key=perm.__getitem__)
        v0 = state.v.to(x.dtype).expand(shape).permute([d - 1 for d in perm[1:]]).reshape(-1)
        out, v_t, trace = FastNeuron.apply(cfg, scalars, xp.reshape(n_steps, -1), v0)
        v_t = v_t.reshape(xp.shape[1:]).permute([d - 1 for d in inv[1:]])
        final = LIFState(v_t, None) if model.name == "lif" else IFState(v_t)
        out = out.reshape(xp.shape).permute(inv)
        return out, final, (trace.reshape(xp.shape).permute(inv) if return_trace else None)
    tensors, (v0, i0, s0), refr = pack(model, x, state, params)
    cfg = config(model, params, spike_fn, refr, return_trace, backend)
    refr0 = (refr.to(torch.int32).reshape(-1).contiguous() if refr is not None
             else torch.zeros(v0.numel(), dtype=torch.int32, device=x.device))
    out, v_t, i_t, s_t, refr_t, trace = FusedNeuron.apply(cfg, x.reshape(n_steps, -1), v0, i0, s0, refr0, *tensors)
    v_t = v_t.reshape(shape)
    if model.name == "lif":
        final = LIFState(v_t, refr_t.reshape(shape).to(refr.dtype) if refr is not None else None)
    elif model.name == "if":
        final = IFState(v_t)
    elif model.name == "alif":
        final = ALIFState(v_t, s_t.reshape(shape))
    else:
        final = CubaState(v_t, i_t.reshape(shape))
    return out.reshape(x.shape), final, (trace.reshape(x.shape) if return_trace else None)
