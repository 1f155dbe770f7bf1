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
import numpy as np
import torch

from spikeflow.kernels.cpu import set_threads
from spikeflow.kernels.simd import prefetch_row

# Measured with benchmarks/crossover.py (700->256, 3200 rows, 2 threads, on a loaded machine): the event
# forward + weight gradient was faster than dense up to 20 % activity and slower at 30 %.
CROSSOVER = 0.15
MIN_OUT_FEATURES = 64  # measured: a 256->20 layer at 7 % activity is ~3x faster dense


@nb.njit(parallel=True, cache=True)
def _to_csr(x):
    """Active entries of each row of ``x``: ``(indptr, indices, values)`` (compressed sparse rows)."""
    rows, n_in = x.shape
    counts = np.zeros(rows + 1, np.int64)
    for r in nb.prange(rows):
        c = 0
        for i in range(n_in):
            if x[r, i] != 0:
                c += 1
        counts[r + 1] = c
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[rows], np.int32)
    values = np.empty(indptr[rows], x.dtype)
    for r in nb.prange(rows):
        k = indptr[r]
        for i in range(n_in):
            if x[r, i] != 0:
                indices[k] = i
                values[k] = x[r, i]
                k += 1
    return indptr, indices, values


@nb.njit(parallel=True, fastmath=True, cache=True)
def _forward(indptr, indices, values, wt, bias, out):
    """``out[r] = bias + sum over active i of x[r, i] * wt[i]``: one weight row per event."""
    rows, n_out = out.shape
    for r in nb.prange(rows):
        o = out[r]
        for j in range(n_out):
            o[j] = bias[j]
        for k in range(indptr[r], indptr[r + 1]):
            xv = values[k]
            wi = wt[indices[k]]
            for j in range(n_out):
                o[j] += xv * wi[j]


@nb.njit(cache=True)
def _transpose(indptr, indices, values, n_in):
    """CSR of ``x`` -> CSC (events grouped by input), by counting sort in O(events)."""
    rows = indptr.shape[0] - 1
    colptr = np.zeros(n_in + 1, np.int64)
    for k in range(indices.shape[0]):
        colptr[indices[k] + 1] += 1
    colptr = np.cumsum(colptr)
    fill = colptr[:-1].copy()
    row_of = np.empty(indices.shape[0], np.int32)
    col_values = np.empty(indices.shape[0], values.dtype)
    for r in range(rows):
        for k in range(indptr[r], indptr[r + 1]):
            i = indices[k]
            row_of[fill[i]] = r
            col_values[fill[i]] = values[k]
            fill[i] += 1
    return colptr, row_of, col_values


@nb.njit(parallel=True, fastmath=True, cache=True)
def _weight_grad(colptr, row_of, col_values, g, gwt):
    """``gwt[i] = sum over rows r where input i was active of x[r, i] * g[r]`` (disjoint writes per i)."""
    n_in, n_out = gwt.shape
    for i in nb.prange(n_in):
        acc = gwt[i]
        for j in range(n_out):
            acc[j] = 0
        for k in range(colptr[i], colptr[i + 1]):
            xv = col_values[k]
            gr = g[row_of[k]]
            for j in range(n_out):
                acc[j] += xv * gr[j]


class EventLinear(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` for 2-D CPU ``x`` by events (see module docstring).

    Only the active inputs (compressed rows) are kept for the backward, not the dense input.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        set_threads()
        indptr, indices, values = _to_csr(x.detach().contiguous().numpy())
        wt = weight.detach().t().contiguous()
        b = bias.detach().contiguous() if bias is not None else torch.zeros(weight.shape[0], dtype=x.dtype)
        out = torch.empty((x.shape[0], weight.shape[0]), dtype=x.dtype)
        _forward(indptr, indices, values, wt.numpy(), b.numpy(), out.numpy())
        ctx.events = (indptr, indices, values)
        ctx.save_for_backward(weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        (weight,) = ctx.saved_tensors
        g = g.contiguous()
        g_x = g_w = g_b = None
        if ctx.needs_input_grad[0]:
            g_x = g @ weight
        if ctx.needs_input_grad[1]:
            set_threads()
            colptr, row_of, col_values = _transpose(*ctx.events, weight.shape[1])
            gwt = torch.empty((weight.shape[1], weight.shape[0]), dtype=g.dtype)
            _weight_grad(colptr, row_of, col_values, g.numpy(), gwt.numpy())
            g_w = gwt.t().contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            g_b = g.sum(0)
        ctx.events = None
        return g_x, g_w, g_b


def event_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Event-path linear over the last axis of ``x`` (any leading shape)."""
    lead = x.shape[:-1]
    dtype = torch.promote_types(x.dtype, weight.dtype)
    out = EventLinear.apply(x.reshape(-1, x.shape[-1]).to(dtype), weight.to(dtype),
                            None if bias is None else bias.to(dtype))
    return out.reshape(*lead, weight.shape[0])


@nb.njit(cache=True)
def _count_nonzero_runs(flat, blocks, run):
    """Non-zero entries in ``blocks`` evenly spaced runs of ``run`` entries of ``flat`` (one thread:
    a few microseconds, no thread pool to wake). Every run's lines are asked for first, so their
    memory latencies overlap instead of adding up (W1's 9 MB input, not in cache: 36 -> 23 us)."""
    step = (flat.shape[0] - run) // (blocks - 1) if blocks > 1 else 0
    for k in range(blocks):
        prefetch_row(flat[k * step:k * step + run])
    count = 0
    for k in range(blocks):
        for i in range(k * step, k * step + run):
            count += flat[i] != 0
    return count


def activity(x: torch.Tensor, max_samples: int = 1 << 13, blocks: int = 64) -> float:
    """Fraction of non-zero entries, estimated on at most ``max_samples`` entries taken as
    ``blocks`` evenly spaced contiguous runs (a strided sample would touch one cache line per entry)."""
    flat = x.detach().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.view(torch.uint8)
    if flat.device.type != "cpu" or flat.dtype not in (torch.float32, torch.float64, torch.uint8):
        flat = flat.to("cpu", torch.float32)  # non-zero stays non-zero
    n = flat.numel()
    blocks, run = (1, n) if n <= max_samples else (blocks, max_samples // blocks)
    return _count_nonzero_runs(flat.numpy(), blocks, run) / max(1, blocks * run)


def use_event_path(x: torch.Tensor, out_features: int, crossover: float = CROSSOVER) -> bool:
    """Event path for CPU float input whose activity is below ``crossover`` and a layer wide enough
    (``MIN_OUT_FEATURES``) that adding a weight row outweighs scanning the input."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0
            and out_features >= MIN_OUT_FEATURES and activity(x) < crossover)
