"""Spike-driven (event) 2-D convolution: work proportional to the number of active input pixels.

An input pixel ``(c, y, x)`` with value ``v != 0`` adds ``v * W[:, c, ky, kx]`` to every output
pixel whose receptive field holds it at kernel tap ``(ky, kx)``. The output is laid out
channels-last (``[N, OH, OW, O]``), so one event adds a contiguous row of ``O`` weights per tap.
The weight gradient accumulates ``v * g[n, oy, ox, :]`` over the same (event, tap) pairs only.
The input gradient (when asked for) is the dense transposed convolution (torch/mkldnn).

Optional input average pooling (``pool`` > 1, windows ``pool x pool``, stride ``pool``, no
padding, rows/columns beyond the last whole window dropped, as ``nn.AvgPool2d``) is folded in:
the events are the non-zero pooled pixels, so binary spikes stay a short event list and the
pooled map is never materialised; its gradient is spread back to the ``pool x pool`` window.

Results equal ``F.conv2d(F.avg_pool2d(x, pool), W, b, stride, padding)`` up to float
summation order. ``CROSSOVER`` (fraction of non-zero entries of the conv's input, after
pooling) is measured by ``benchmarks/conv_crossover.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
import torch
from torch.nn import functional as F

from spikeflow.kernels.cpu import set_threads
from spikeflow.kernels.simd import append_nonzero

# Measured with benchmarks/conv_crossover.py (idle machine, W2 sizes; figures in that script's docstring):
# the pooled conv2 breaks even at 20 % non-zero input and loses from 30 %; conv1 wins up to 50 %.
CROSSOVER = 0.2


class ConvGeometry(NamedTuple):
    stride: tuple  # (sh, sw)
    padding: tuple  # (ph, pw)
    pool: int


def output_size(size: int, k: int, stride: int, pad: int, pool: int = 1) -> int:
    """Output length of one spatial axis (pooling by ``pool`` first, then the convolution)."""
    return (size // pool + 2 * pad - k) // stride + 1


@nb.njit(parallel=True, cache=True)
def _count(x, bad):
    """Per frame (row of ``x [N, M]``), the number of non-zero entries; ``bad[n]`` is set when frame
    ``n`` holds a NaN or inf (``x - x`` is NaN exactly there), on the same pass."""
    n_frames = x.shape[0]
    counts = np.zeros(n_frames + 1, np.int64)
    for n in nb.prange(n_frames):
        flat = x[n]
        k = 0
        nonfinite = False
        for i in range(flat.shape[0]):
            k += flat[i] != 0
            nonfinite |= flat[i] - flat[i] != 0
        counts[n + 1] = k
        bad[n] = nonfinite
    return counts


@nb.njit(parallel=True, cache=True)
def _fill(x, cl, n_ch, w, indptr, ey, ex, ec, ev, n_chunks):
    """Events of each frame of ``x`` (``[N, H*W*C]`` flat if ``cl``, else ``[N, C*H*W]``), in memory
    order: position, channel and value; ``n_chunks`` threads take a range of frames each."""
    for ch in nb.prange(n_chunks):
        _fill_frames(np.int64(ch), n_chunks, x, cl, n_ch, w, indptr, ey, ex, ec, ev)


@nb.njit
def _fill_frames(ch, n_chunks, x, cl, n_ch, w, indptr, ey, ex, ec, ev):
    """``_fill``'s work for chunk ``ch`` (a plain function, not the ``prange`` body: see
    ``linear_lif._backward_chunk``): each frame's non-zero positions are listed first, 16 entries at a
    time by ``simd.append_nonzero`` (W2's 10 % input: 0.45 -> 0.22 ms against a test of every entry)."""
    n = x.shape[0]
    if x.shape[1] == 0:
        return
    inner = n_ch if cl else x.shape[1] // n_ch
    pos = np.empty(x.shape[1] + 16, np.int32)
    for f in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
        row = x[f]
        k = indptr[f]
        for j in range(append_nonzero(row, pos, 0)):
            i = pos[j]
            o, q = i // inner, i % inner
            pix, c = (o, q) if cl else (q, o)
            ey[k], ex[k], ec[k], ev[k] = pix // w, pix % w, c, row[i]
            k += 1


def events(x: torch.Tensor, pool: int):
    """``(indptr, ey, ex, ec, ev)``: the non-zero (pooled) pixels of each frame of ``x [N, C, H, W]``,
    compressed by frame. ``ev`` holds the window *sum*; the caller folds ``1 / pool**2`` into the weights.

    Pooled sums come from torch's ``avg_pool2d`` (``divisor_override=1``), then one scan in memory
    order: channels-last memory is read as ``[N, H, W, C]``, anything else as contiguous ``[N, C, H, W]``."""
    return checked_events(x, pool)[0]


def checked_events(x: torch.Tensor, pool: int):
    """``(events(x, pool), finite)``: whether ``x`` (after the pooling) holds no NaN or inf, found on
    the same scan."""
    if pool > 1:
        x = F.avg_pool2d(x, pool, divisor_override=1)
    n, c, h, w = x.shape
    cl = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    arr = (x.permute(0, 2, 3, 1) if cl else x.contiguous()).reshape(n, c * h * w).numpy()
    bad = np.zeros(n, np.bool_)
    indptr = np.cumsum(_count(arr, bad))
    total = int(indptr[-1])
    ey = np.empty(total, np.int32)
    ex = np.empty(total, np.int32)
    ec = np.empty(total, np.int32)
    ev = np.empty(total, arr.dtype)
    _fill(arr, cl, c, w, indptr, ey, ex, ec, ev, max(1, min(n, nb.get_num_threads())))
    return (indptr, ey, ex, ec, ev), not bad.any()


@nb.njit(inline="always")
def _reach(i, k, s, n_out):
    """Outputs ``range(lo, hi)`` that padded input coordinate ``i`` reaches, through tap ``i - o * s``
    in ``[0, k)`` (two divisions per event and axis, none per tap)."""
    lo = 0
    if i - k + 1 > 0:
        lo = (i - k + s) // s  # ceil((i - k + 1) / s)
    hi = min(i // s + 1, n_out)
    return lo, hi


@nb.njit(inline="always")
def _event_runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out):
    """Where event ``e`` lands: output rows ``[y0, y1)``, run starts ``ox`` in ``[x0, x_end)`` and the run
    length. With stride 1 along x all of a row's taps are one contiguous run (``x_end = x0 + 1``,
    ``run = (x1 - x0) * n_out``) in both the output and the ``kx``-reversed weights; otherwise one run per tap."""
    iy = ey[e] + padh
    ix = ex[e] + padw
    y0, y1 = _reach(iy, kh, sh, oh)
    x0, x1 = _reach(ix, kw, sw, ow)
    if sw == 1:
        return iy, ix, y0, y1, x0, min(x1, x0 + 1), max(x1 - x0, 0) * n_out
    return iy, ix, y0, y1, x0, x1, n_out


@nb.njit(inline="always")
def _tap_offset(c, iy, ix, oy, ox, kh, kw, sh, sw, n_out):
    """Flat offset in the ``[C, KH, KW, O]`` (``kx`` reversed) weights of the tap joining input ``(iy, ix)`` of
    channel ``c`` to output ``(oy, ox)``."""
    return ((c * kh + iy - oy * sh) * kw + kw - 1 - (ix - ox * sw)) * n_out


@nb.njit(parallel=True, fastmath=True, cache=True)
def _forward(indptr, ey, ex, ec, ev, wt, bias, kh, kw, sh, sw, padh, padw, oh, ow, out):
    """``out`` (flat ``[N, OH, OW, O]``) = bias + per event and tap, ``v * wt[c, ky, kw - 1 - kx, :]`` (``wt`` flat
    ``[C, KH, KW, O]``, ``kx`` reversed), added by the runs of ``_event_runs``. Flat offsets and 1-D slices:
    numba array views per tap would cost more than the arithmetic."""
    n_frames = indptr.shape[0] - 1
    n_out = bias.shape[0]
    frame = oh * ow * n_out
    for n in nb.prange(n_frames):
        base = n * frame
        for i in range(oh * ow):
            out[base + i * n_out:base + (i + 1) * n_out] = bias
        for e in range(indptr[n], indptr[n + 1]):
            iy, ix, y0, y1, x0, x_end, run = _event_runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out)
            v, c = ev[e], ec[e]
            for oy in range(y0, y1):
                for ox in range(x0, x_end):
                    d = base + (oy * ow + ox) * n_out
                    w0 = _tap_offset(c, iy, ix, oy, ox, kh, kw, sh, sw, n_out)
                    dst = out[d:d + run]  # slices: loop indices >= 0, so no wrap-around and it vectorises
                    src = wt[w0:w0 + run]
                    for m in range(run):
                        dst[m] += v * src[m]


@nb.njit(parallel=True, fastmath=True, cache=True)
def _weight_grad(indptr, ey, ex, ec, ev, g, kh, kw, sh, sw, padh, padw, oh, ow, n_out, partial, partial_b):
    """``partial[p]`` (flat ``[C, KH, KW, O]``, ``kx`` reversed) = sum over the frames of chunk p of
    ``v * g[n, oy, ox, :]`` (``g`` flat ``[N, OH, OW, O]``), by the runs of ``_forward``; ``partial_b[p]`` =
    the chunk's sum of ``g`` over all positions (the bias gradient), from the frame just read."""
    n_parts = partial.shape[0]
    n_frames = indptr.shape[0] - 1
    frame = oh * ow * n_out
    for p in nb.prange(n_parts):
        acc = partial[p]
        acc[:] = 0
        acc_b = partial_b[p]
        acc_b[:] = 0
        for n in range(p * n_frames // n_parts, (p + 1) * n_frames // n_parts):
            base = n * frame
            for i in range(oh * ow):
                row = g[base + i * n_out:base + (i + 1) * n_out]
                for m in range(n_out):
                    acc_b[m] += row[m]
            for e in range(indptr[n], indptr[n + 1]):
                iy, ix, y0, y1, x0, x_end, run = _event_runs(e, ey, ex, kh, kw, sh, sw, padh, padw, oh, ow, n_out)
                v, c = ev[e], ec[e]
                for oy in range(y0, y1):
                    for ox in range(x0, x_end):
                        s0 = base + (oy * ow + ox) * n_out
                        w0 = _tap_offset(c, iy, ix, oy, ox, kh, kw, sh, sw, n_out)
                        dst = acc[w0:w0 + run]
                        src = g[s0:s0 + run]
                        for m in range(run):
                            dst[m] += v * src[m]


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    """A ``[N, C, H, W]`` tensor as an ``[N, H, W, C]`` view (no copy; any strides)."""
    return t.permute(0, 2, 3, 1)


def _unpool_grad(g_pooled: torch.Tensor, pool: int, size: tuple) -> torch.Tensor:
    """Gradient of ``avg_pool2d(x, pool)`` w.r.t. ``x [N, C, H, W]``: each window gets ``g / pool**2``."""
    n, c, ph, pw = g_pooled.shape
    h, w = size
    g = (g_pooled / (pool * pool)).permute(0, 2, 3, 1)  # [N, PH, PW, C]
    g = g[:, :, None, :, None, :].expand(n, ph, pool, pw, pool, c).reshape(n, ph * pool, pw * pool, c)
    if (ph * pool, pw * pool) != (h, w):
        g = F.pad(g, (0, 0, 0, w - pw * pool, 0, h - ph * pool))
    return g.permute(0, 3, 1, 2)  # [N, C, H, W] view of channels-last memory


class EventConv2d(torch.autograd.Function):
    """``conv2d(avg_pool2d(x, pool), weight, bias, stride, padding)`` for 4-D CPU ``x`` by events.

    Only the event list is kept for the backward, not the dense input. The output is a
    ``[N, O, OH, OW]`` tensor in channels-last memory.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, geom: ConvGeometry):
        set_threads()
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        (sh, sw), (ph, pw), pool = geom
        oh = output_size(h, kh, sh, ph, pool)
        ow = output_size(w, kw, sw, pw, pool)
        ev = events(x.detach(), pool)
        scale = 1.0 / (pool * pool)
        # [C, KH, KW, O] with kx reversed (see _forward)
        wt = (weight.detach() * scale if pool > 1 else weight.detach()).flip(3).permute(1, 2, 3, 0).contiguous()
        b = bias.detach().contiguous() if bias is not None else torch.zeros(o, dtype=x.dtype)
        out = torch.empty((n, oh, ow, o), dtype=x.dtype)
        _forward(*ev, wt.reshape(-1).numpy(), b.numpy(), kh, kw, sh, sw, ph, pw, oh, ow, out.view(-1).numpy())
        ctx.events = ev
        ctx.geom = geom
        ctx.in_shape = (n, c, h, w)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight)
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        (weight,) = ctx.saved_tensors
        (sh, sw), (ph, pw), pool = ctx.geom
        n, c, h, w = ctx.in_shape
        o, _, kh, kw = weight.shape
        g_nhwc = _nhwc(g).contiguous()
        g_x = g_w = g_b = None
        if ctx.needs_input_grad[0]:
            gin = torch.nn.grad.conv2d_input((n, c, h // pool, w // pool), weight, g_nhwc.permute(0, 3, 1, 2),
                                             (sh, sw), (ph, pw))
            g_x = _unpool_grad(gin, pool, (h, w)) if pool > 1 else gin
        if ctx.needs_input_grad[1]:
            set_threads()
            parts = max(1, min(n, 2 * torch.get_num_threads()))
            partial = torch.empty((parts, c * kh * kw * o), dtype=g.dtype)
            partial_b = torch.empty((parts, o), dtype=g.dtype)
            oh, ow = g_nhwc.shape[1], g_nhwc.shape[2]
            _weight_grad(*ctx.events, g_nhwc.view(-1).numpy(), kh, kw, sh, sw, ph, pw, oh, ow, o, partial.numpy(),
                         partial_b.numpy())
            gwt = (partial.sum(0) if parts > 1 else partial[0]).view(c, kh, kw, o).flip(2)
            if pool > 1:
                gwt = gwt / (pool * pool)
            g_w = gwt.permute(3, 0, 1, 2).contiguous()
            if ctx.has_bias and ctx.needs_input_grad[2]:
                g_b = partial_b.sum(0)
        if g_b is None and ctx.has_bias and ctx.needs_input_grad[2]:
            g_b = g_nhwc.sum((0, 1, 2))
        ctx.events = None
        return g_x, g_w, g_b, None


def event_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), pool: int = 1) -> torch.Tensor:
    """Event-path ``conv2d(avg_pool2d(x, pool), weight, bias, stride, padding)`` of ``x [N, C, H, W]``."""
    dtype = torch.promote_types(x.dtype, weight.dtype)
    return EventConv2d.apply(x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype),
                             ConvGeometry(tuple(stride), tuple(padding), int(pool)))


def dense_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), pool: int = 1) -> torch.Tensor:
    """The dense (torch) path of ``event_conv2d``."""
    if pool > 1:
        x = F.avg_pool2d(x, pool)
    return F.conv2d(x, weight, bias, stride, padding)


def pooled_activity(x: torch.Tensor, pool: int = 1, max_frames: int = 16) -> float:
    """Fraction of non-zero entries of ``avg_pool2d(x, pool)`` (the event count per input entry of the
    convolution), estimated on at most ``max_frames`` evenly strided frames of ``x [N, C, H, W]``."""
    step = max(1, x.shape[0] // max_frames)
    sample = x[::step]
    if pool > 1:
        sample = F.avg_pool2d(sample, pool, divisor_override=1)
    return torch.count_nonzero(sample).item() / max(1, sample.numel())
