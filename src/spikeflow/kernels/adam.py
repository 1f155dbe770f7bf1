"""Adam's update of a fused layer's weight straight from the threads' gradient parts.

The fused backward leaves each thread's weight gradient input-major (``linear_lif.backward``'s
parts); ``torch.optim.Adam`` would need them summed into ``.grad`` first and then run after Python
work of its own (``spikeflow.train.TrainStep``). Here one compiled call sums the parts into the
gradient's ``[out, in]`` place and updates the weight and its moments from it.

The update is Adam's (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
Algorithm 1) in the form ``torch.optim.Adam`` computes it without weight decay, AMSGrad or
``maximize``: ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
``w -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
"""

from __future__ import annotations

import math

import numba as nb

from spikeflow.kernels.linear_lif import sum_transposed
from spikeflow.kernels.simd import lanes, vadd, vdiv, vload, vmul, vsplat, vsqrt, vstore, vsub


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


@nb.njit(cache=True)
def adam_from_parts(parts, grad, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """``grad[o, i] = sum over c of parts[c, i, o]`` (``parts [C, in, width >= out]``), then Adam's
    update of ``w [out, in]`` and its moments ``m``, ``v`` in place. The scalars are of the arrays'
    dtype: ``step_size = lr / (1 - beta1^t)``, ``beta1 = (beta1, 1 - beta1)``, ``beta2`` likewise,
    ``eps``, ``bc2_sqrt = sqrt(1 - beta2^t)``.

    Two passes: the parts summed and transposed into ``grad`` (``linear_lif.sum_transposed``), then
    the update over the four arrays as flat runs of 64 vectors shared among the threads. The update done
    block by block as the sums are made touches 64 lines 2.8 KB apart per block of W1's weight, and
    took about twice as long in W1's training step (``benchmarks/profile_w1.py`` times this kernel)."""
    sum_transposed(parts, grad)
    _update_flat(grad.reshape(-1), w.reshape(-1), m.reshape(-1), v.reshape(-1), step_size, beta1, beta2, eps,
                 bc2_sqrt)


@nb.njit(parallel=True)
def _update_flat(g, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """Adam's update of the flat arrays: runs of 64 vectors shared among the threads, the last
    elements one by one."""
    n = g.shape[0]
    lw = lanes(g)
    run = 64 * lw
    n_whole = n // lw * lw
    for r in nb.prange((n_whole + run - 1) // run):
        s_step, s_eps, s_bc2 = vsplat(step_size), vsplat(eps), vsplat(bc2_sqrt)
        s_b1, s_b2 = (vsplat(beta1[0]), vsplat(beta1[1])), (vsplat(beta2[0]), vsplat(beta2[1]))
        for j in range(r * run, min(n_whole, (r + 1) * run), lw):
            new_w, new_m, new_v = _update(vload(g, j), vload(w, j), vload(m, j), vload(v, j), s_step, s_b1, s_b2,
                                          s_eps, s_bc2)
            vstore(w, j, new_w)
            vstore(m, j, new_m)
            vstore(v, j, new_v)
    for j in range(n_whole, n):
        w[j], m[j], v[j] = _scalar_update(g[j], w[j], m[j], v[j], step_size, beta1, beta2, eps, bc2_sqrt)


@nb.njit(cache=True)
def adam_bias_from_parts(parts, grad, w, m, v, step_size, beta1, beta2, eps, bc2_sqrt):
    """``adam_from_parts`` for a bias: ``grad[o] = sum over c of parts[c, o]`` (``parts [C, width]``)."""
    for o in range(grad.shape[0]):
        g = parts[0, o]
        for c in range(1, parts.shape[0]):
            g += parts[c, o]
        grad[o] = g
        w[o], m[o], v[o] = _scalar_update(g, w[o], m[o], v[o], step_size, beta1, beta2, eps, bc2_sqrt)
