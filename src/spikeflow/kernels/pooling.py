"""Average pooling of channels-last frames in whole vectors of channels, forward and backward, for the
fused kernels that pool what their neurons just fired (``conv_lif_pool``, ``pool_lif``).

A frame is flat ``[H, W, O]`` memory: the ``O`` channels of a pixel are contiguous, so a window's
pixels add as whole 64-byte vectors of channels, and the last channels that fill no vector one by
one, in the same order: the results equal the plain loops' bit for bit.
"""

from __future__ import annotations

import numba as nb

from spikeflow.kernels.simd import lanes, vadd, vdiv, vload, vsplat, vstore


@nb.njit(inline="always")
def pool_frame(cur, o, ph, pw, k, ow, n_out, kk):
    """``o`` (flat ``[PH, PW, O]``) = the means of the ``k x k`` windows of ``cur`` (flat ``[OH, OW, O]``),
    each window summed row by row from zero, then divided by ``kk``; rows and columns past the last
    whole window are dropped. Whole vectors of ``O`` while they fill one (numba's loops over the ``O``
    values of each pixel stayed scalar: W2's first layer spent 1.8 of its 3.9 ms forward there)."""
    lw = lanes(cur)
    kf = cur.dtype.type(kk)  # the window's size
    zero = kf - kf
    d = vsplat(kf)
    for py in range(ph):
        for px in range(pw):
            p0 = (py * pw + px) * n_out
            j = (py * k * ow + px * k) * n_out
            m = 0
            while m + lw <= n_out:
                acc = vsplat(zero)
                for dy in range(k):
                    for dx in range(k):
                        acc = vadd(acc, vload(cur, j + (dy * ow + dx) * n_out + m))
                vstore(o, p0 + m, vdiv(acc, d))
                m += lw
            for mm in range(m, n_out):
                s = zero
                for dy in range(k):
                    for dx in range(k):
                        s += cur[j + (dy * ow + dx) * n_out + mm]
                o[p0 + mm] = s / kf


@nb.njit(inline="always")
def unpool_row(go, p, gz, pw, k, n_out, kk):
    """``gz`` (flat ``[PW * k, O]``): every pixel of a window's row gets the window's pooled gradient
    (``go[p:]``, flat ``[PW, O]``) divided by ``kk``, in whole vectors of ``O`` while they fill one (the
    scalar loops cost W2's first-layer backward 0.7 of its 2.5 ms and its second LIF + pool backward 0.45
    of 0.75 ms)."""
    lw = lanes(gz)
    kf = gz.dtype.type(kk)
    d = vsplat(kf)
    for px in range(pw):
        p0 = p + px * n_out
        m = 0
        while m + lw <= n_out:
            g = vdiv(vload(go, p0 + m), d)
            for dx in range(k):
                vstore(gz, (px * k + dx) * n_out + m, g)
            m += lw
        for mm in range(m, n_out):
            g1 = go[p0 + mm] / kf
            for dx in range(k):
                gz[(px * k + dx) * n_out + mm] = g1
