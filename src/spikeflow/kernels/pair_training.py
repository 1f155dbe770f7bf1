"""The fused LinearLIF pair's training call under autograd through kept buffers (``PairStep``).

``linear_lif_pair.PairFunction`` makes both layers' operands, the forward's buffers and the
gradient parts afresh at every call: some forty tensors and arrays, each made with the caches
just filled by the kernels, about a tenth of a W1 training step. Where the pair's plain case
applies (no gradient for the input or a LIF parameter, every membrane kept), the call here runs the
same kernels on a ``PairStep`` made once per input shape and layers, which reloads the weights and
parameters into its own buffers at every call.

A forward's buffers must hold until its backward: a plan stays taken while the autograd context
that read it is alive (in a training loop, until the next step's loss replaces the last one's, so
two plans take turns), and a call that finds every plan of its shape taken runs ``PairFunction``.
"""

from __future__ import annotations

import weakref

import numba as nb
import numpy as np
import torch

from spikeflow.kernels import linear_lif_pair as pair
from spikeflow.kernels.cpu import set_threads

PLANS_PER_SHAPE = 2  # plans kept per shape and layers: one for the step in flight, one for the step before

# id of the first weight -> [a weak reference to it, the key, its plans as [PairStep, weak reference to
# the _Hold that took it last] (None: the plain case does not apply to this key)]: dropped with its weight
_PLANS: dict[int, tuple] = {}


class _Hold:
    """Kept by an autograd context: its plan is taken while it lives."""

    __slots__ = ("__weakref__",)


class PlanFunction(torch.autograd.Function):
    """Inputs: a ``PairStep`` and the ``_Hold`` that takes it, ``x [T, B, in]``, both layers' weight
    and bias (a bias may be ``None``), the ``LIFParams`` of both (or ``None`` for the floats the
    plan was made with). Outputs: spikes ``[T, B, out]`` and both final membranes."""

    @staticmethod
    def forward(ctx, step, hold, x, w1, b1, w2, b2, params):
        out = step.forward_pass(x, w1, b1, w2, b2, params)
        ctx.step, ctx.hold = step, hold
        ctx.save_for_backward(w1, w2)  # autograd's version check: the backward reads w2 as it was
        return out, step.v_t[0].clone(), step.v_t[1].clone()

    @staticmethod
    def backward(ctx, g_out, g_v1t, g_v2t):
        step = ctx.step
        ctx.saved_tensors  # noqa: B018 (raises if a weight changed in place since the forward)
        g_v = None
        if g_v1t is not None or g_v2t is not None:  # dL/dv after the last step, padded as the kernel reads it
            g_v = [np.zeros_like(g) for g in step.g_v]
            for to, g in zip(g_v, (g_v1t, g_v2t)):
                if g is not None:
                    to[:, :g.shape[1]] = g.detach().numpy()
        g = torch.zeros(step.out_shape, dtype=step.dtype) if g_out is None else g_out.contiguous()
        step.backward_pass(g.numpy(), g_v)
        grads = step.new_grads()
        step.reduce(grads)
        needs = ctx.needs_input_grad[3:7]
        return (None, None, None, *[g if need else None for g, need in zip((*grads[0], *grads[1]), needs)], None)


def linear_lif_pair(x, first, second, recompute=None):
    """``linear_lif_pair.linear_lif_pair`` (same arguments and result) through a kept plan; ``None``
    where that does not apply: no autograd call, the input or a LIF parameter needs a gradient, the
    membranes would be recomputed, or every plan of this shape is taken."""
    (w1, b1, params1, *_), (w2, b2, params2, *_) = first, second
    if not (torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                            for t in (w1, b1, w2, b2))):
        return None
    values = [pair._param_values(p) for p in (params1, params2)]
    if x.requires_grad or any(isinstance(v, torch.Tensor) and v.requires_grad for vals in values for v in vals):
        return None
    n_steps, batch, n_in = x.shape[0], x.shape[1:-1], x.shape[-1]
    x3 = x.reshape(n_steps, -1, n_in)
    set_threads()  # (the plans' thread shares follow torch's count)
    step, hold = _plan(x3, first, second, recompute)
    if step is None:
        return None
    out, v1_t, v2_t = PlanFunction.apply(step, hold, x3, w1, b1, w2, b2,
                                         None if step.fixed_params else (params1, params2))
    return out.reshape(n_steps, *batch, w2.shape[0]), v1_t.reshape(*batch, w1.shape[0]), \
        v2_t.reshape(*batch, w2.shape[0])


def _forget(key: int):
    return lambda _ref: _PLANS.pop(key, None)


def _plan(x3, first, second, recompute):
    """A free ``PairStep`` for this input shape and these layers and a ``_Hold`` that takes it, or
    ``(None, None)``; made when none is kept yet."""
    (w1, b1, params1, sg1, _), (w2, b2, params2, sg2, _) = first, second
    # a float parameter is taken into the plan when it is made (a tensor's values at every call)
    key = (tuple(x3.shape), x3.dtype, nb.get_num_threads(), recompute,
           *[(id(t), t.dtype, tuple(t.shape)) for t in (w1, b1, w2, b2) if t is not None], b1 is None, b2 is None,
           *[pair._config(p, s, "", False) for p, s in ((params1, sg1), (params2, sg2))],
           *[v if isinstance(v, float) else "tensor" for p in (params1, params2) for v in pair._param_values(p)])
    entry = _PLANS.get(id(w1))
    if entry is None or entry[0]() is not w1 or entry[1] != key:
        entry = [weakref.ref(w1, _forget(id(w1))), key, []]
        _PLANS[id(w1)] = entry
    plans = entry[2]
    if plans is None:
        return None, None
    for plan in plans:
        if plan[1]() is None:  # its last context is gone
            hold = _Hold()
            plan[1] = weakref.ref(hold)
            return plan[0], hold
    if len(plans) >= PLANS_PER_SHAPE:
        return None, None
    step = pair.PairStep(x3, first, second, recompute)
    if step.reason is not None:
        entry[2] = None
        return None, None
    hold = _Hold()
    plans.append([step, weakref.ref(hold)])
    return step, hold
