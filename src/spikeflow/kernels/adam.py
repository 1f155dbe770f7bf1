"""Adam's update of a fused layer's weight straight from the threads' gradient parts.

The fused backward leaves each thread's weight gradient input-major (``linear_lif.backward``'s
parts); torch's Adam would read the summed gradient, the weight and both moments again in a pass of
its own, after Python work between the two (``spikeflow.train.TrainStep``). Here each block of 16 x
16 weights is summed over the parts, transposed in registers into the gradient's ``[out, in]`` place
(as ``linear_lif.sum_transposed``) and updated while it is in L1.

The update is Adam's (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
Algorithm 1) in the form ``torch.optim.Adam`` computes it without weight decay, AMSGrad or
``maximize``: ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
``w -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
"""

from __future__ import annotations

import math

import numba as nb

from spikeflow.kernels.linear_lif import block_bounds, summed, summed_block
from spikeflow.kernels.simd import lanes, vadd, vdiv, vload, vmul, vsplat, vsqrt, vstore, vstore_rows, vsub


@nb.njit(inline="always")
def _update(g, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """One weight's new ``(w, m, v)`` (scalars, or vectors of splatted scalars)."""
    m = vadd(vmul(beta1[0], m), vmul(beta1[1], g))
    v = vadd(vmul(beta2[0], v), vmul(beta2[1], vmul(g, g)))
    return vsub(w, vdiv(vmul(step_size, m), vadd(vdiv(vsqrt(v), bc2_sqrt), eps))), m, v


@nb.njit(inline="always")
def _scalar_update(g, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    m = beta1[0] * m + beta1[1] * g
    v = beta2[0] * v + beta2[1] * (g * g)
    return w - step_size * m / (math.sqrt(v) / bc2_sqrt + eps), m, v


@nb.njit(parallel=True, cache=True)
def adam_from_parts(parts, grad, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """``grad[o, i] = sum over c of parts[c, i, o]`` (``parts [C, in, width >= out]``), then Adam's
    update of ``w [out, in]`` and its moments ``m``, ``v`` in place. The scalars are of the arrays'
    dtype: ``step_size = lr / (1 - beta1^t)``, ``beta1 = (beta1, 1 - beta1)``, ``beta2`` likewise,
    ``eps``, ``bc2_sqrt = sqrt(1 - beta2^t)``. Blocks of one vector a side; the edges element by element."""
    n_in, n_out = parts.shape[1], grad.shape[0]
    lw = lanes(grad)
    n_blocks = (n_in + lw - 1) // lw
    for blk in nb.prange(n_blocks):
        i0, i1, o_end = block_bounds(blk, lw, n_in, n_out)
        s_step, s_eps, s_bc2 = vsplat(step_size), vsplat(eps), vsplat(bc2_sqrt)
        s_b1, s_b2 = (vsplat(beta1[0]), vsplat(beta1[1])), (vsplat(beta2[0]), vsplat(beta2[1]))
        for o0 in range(0, o_end, lw):
            vstore_rows(grad, o0, i0, summed_block(parts, i0, o0))
            for o in range(o0, o0 + lw):
                g_row, w_row, m_row, v_row = grad[o], w[o], m[o], v[o]
                new_w, new_m, new_v = _update(vload(g_row, i0), vload(w_row, i0), vload(m_row, i0),
                                              vload(v_row, i0), s_step, s_b1, s_b2, s_eps, s_bc2)
                vstore(w_row, i0, new_w)
                vstore(m_row, i0, new_m)
                vstore(v_row, i0, new_v)
        for o in range(o_end, n_out):
            for i in range(i0, i1):
                g = summed(parts, i, o)
                grad[o, i] = g
                w[o, i], m[o, i], v[o, i] = _scalar_update(g, w[o, i], m[o, i], v[o, i], step_size, beta1,
                                                           beta2, eps, bc2_sqrt)


@nb.njit(cache=True)
def adam_bias_from_parts(parts, grad, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """``adam_from_parts`` for a bias: ``grad[o] = sum over c of parts[c, o]`` (``parts [C, width]``)."""
    for o in range(grad.shape[0]):
        g = parts[0, o]
        for c in range(1, parts.shape[0]):
            g += parts[c, o]
        grad[o] = g
        w[o], m[o], v[o] = _scalar_update(g, w[o], m[o], v[o], step_size, beta1, beta2, eps, bc2_sqrt)
