"""Spike-driven (event) Linear synapse: work proportional to the number of active inputs.

Forward: each output row is the bias plus the weight rows of the active (non-zero) inputs,
scaled by their value. Weight gradient: ``dW[:, i]`` accumulates the output gradient only over
the rows where input ``i`` is active. Input gradient (only when the input needs one): the dense
``g @ W``. Results equal the dense ``F.linear`` up to float summation order.

Above ``CROSSOVER`` (fraction of non-zero inputs) the dense matmul is faster; the value is
measured by ``benchmarks/crossover.py`` on the 700->256 layer of the W1 benchmark, 2 threads.
"""

from __future__ import annotations

import numba as nb
import torch

from spikeflow.kernels.cpu import set_threads

# Measured with benchmarks/crossover.py (700->256, 3200 rows, 2 threads, on a loaded machine): the event
# forward + weight gradient was faster than dense up to 20 % activity and slower at 30 %.
CROSSOVER = 0.15
WGRAD_BLOCK = 200  # inputs per weight-gradient work item (their gradient rows stay in cache)
MIN_OUT_FEATURES = 64  # measured: a 256->20 layer at 7 % activity is ~3x faster dense


@nb.njit(parallel=True, cache=True)
def _forward(x, wt, bias, out):
    rows, n_in = x.shape
    n_out = wt.shape[1]
    for r in nb.prange(rows):
        for j in range(n_out):
            out[r, j] = bias[j]
        for i in range(n_in):
            xv = x[r, i]
            if xv != 0:
                for j in range(n_out):
                    out[r, j] += xv * wt[i, j]


@nb.njit(parallel=True, cache=True)
def _weight_grad(x, g, n_blocks, gwt):
    """``gwt[i, :] = sum_r x[r, i] * g[r, :]``, parallel over blocks of inputs (disjoint writes)."""
    rows, n_in = x.shape
    n_out = g.shape[1]
    for blk in nb.prange(n_blocks):
        i0 = blk * n_in // n_blocks
        i1 = (blk + 1) * n_in // n_blocks
        for i in range(i0, i1):
            for j in range(n_out):
                gwt[i, j] = 0
        for r in range(rows):
            gr = g[r]
            for i in range(i0, i1):
                xv = x[r, i]
                if xv != 0:
                    acc = gwt[i]
                    for j in range(n_out):
                        acc[j] += xv * gr[j]


class EventLinear(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` for 2-D CPU ``x`` by events (see module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        set_threads()
        x_c = x.detach().contiguous()
        wt = weight.detach().t().contiguous()
        b = bias.detach().contiguous() if bias is not None else torch.zeros(weight.shape[0], dtype=x.dtype)
        out = torch.empty((x_c.shape[0], weight.shape[0]), dtype=x.dtype)
        _forward(x_c.numpy(), wt.numpy(), b.numpy(), out.numpy())
        ctx.save_for_backward(x_c, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        g = g.contiguous()
        g_x = g_w = g_b = None
        if ctx.needs_input_grad[0]:
            g_x = g @ weight
        if ctx.needs_input_grad[1]:
            set_threads()
            gwt = torch.empty((weight.shape[1], weight.shape[0]), dtype=g.dtype)
            n_blocks = max(4 * nb.get_num_threads(), x.shape[1] // WGRAD_BLOCK)
            _weight_grad(x.numpy(), g.numpy(), n_blocks, gwt.numpy())
            g_w = gwt.t().contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            g_b = g.sum(0)
        return g_x, g_w, g_b


def event_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Event-path linear over the last axis of ``x`` (any leading shape)."""
    lead = x.shape[:-1]
    dtype = torch.promote_types(x.dtype, weight.dtype)
    out = EventLinear.apply(x.reshape(-1, x.shape[-1]).to(dtype), weight.to(dtype),
                            None if bias is None else bias.to(dtype))
    return out.reshape(*lead, weight.shape[0])


def activity(x: torch.Tensor, max_samples: int = 1 << 16) -> float:
    """Fraction of non-zero entries, estimated on an evenly strided sample of at most ``max_samples``."""
    flat = x.reshape(-1)
    step = max(1, flat.numel() // max_samples)
    sample = flat[::step]
    return torch.count_nonzero(sample).item() / max(1, sample.numel())


def use_event_path(x: torch.Tensor, out_features: int, crossover: float = CROSSOVER) -> bool:
    """Event path for CPU float input whose activity is below ``crossover`` and a layer wide enough
    (``MIN_OUT_FEATURES``) that adding a weight row outweighs scanning the input."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0
            and out_features >= MIN_OUT_FEATURES and activity(x) < crossover)
