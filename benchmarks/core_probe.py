"""Whether a virtual machine's CPUs are separate cores right now, in the two ways W1 depends on.

A cloud VM's "2 cores" can be two physical cores or, for a while, the two hardware threads of one:
the host may move them. Arithmetic barely notices, but W1's spike-driven kernels are bound by how fast
each core's L2 cache feeds it, and two hardware threads share one L2. So peers.py records, at the
start of every full run, two ratios: the time ``threads`` threads take when each does one share of
work, over the time one thread takes for one share (``probe``). 1.0 means the threads shared nothing; 2.0 that
they took turns on one unit. ``compute`` is a chain of float multiply-adds held in registers; ``l2``
reads random 1 KB rows of a 700 KB matrix, 35 per output row, as W1's hidden layer adds the weight
rows of its active inputs.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np

ROWS, PER_ROW, N_IN, N_OUT = 3200, 35, 700, 256  # W1: T * B rows, 5 % of 700 inputs active, 256 outputs


@nb.njit(parallel=True, cache=True)
def _compute(n, out):
    for share in nb.prange(out.shape[0]):
        acc = np.full(16, np.float32(share))
        for _ in range(n):
            for k in range(16):
                acc[k] = acc[k] * np.float32(0.999) + np.float32(0.5)
        out[share] = acc.sum()


@nb.njit(parallel=True, cache=True)
def _l2_rows(w, idx, out):
    for share in nb.prange(out.shape[0]):
        acc = np.zeros(w.shape[1], w.dtype)
        total = np.float32(0.0)
        for r in range(idx.shape[1]):
            acc[:] = 0
            for e in range(idx.shape[2]):
                row = w[idx[share, r, e]]
                for k in range(w.shape[1]):
                    acc[k] += row[k]
            total += acc[r % w.shape[1]]
        out[share] = total


def probe(threads: int = 2, rounds: int = 15, compute_steps: int = 500_000, rows: int = ROWS) -> dict:
    """``{"threads": threads, "compute": ratio, "l2": ratio}``: the median over ``rounds`` of the time
    ``threads`` shares take on ``threads`` threads over the time one share takes on one thread, the
    two timed one right after the other (the host's load changes within seconds). Numba's thread
    count is restored."""
    threads = min(threads, nb.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(0)
    w = rng.random((N_IN, N_OUT), dtype=np.float32)
    idx = rng.integers(0, N_IN, (threads, rows, PER_ROW)).astype(np.int32)
    out = np.zeros(threads, np.float32)
    kept = nb.get_num_threads()
    ratios = {"threads": threads}
    try:
        for name, run in (("compute", lambda n: _compute(compute_steps, out[:n])),
                          ("l2", lambda n: _l2_rows(w, idx[:n], out[:n]))):
            each = []
            for r in range(rounds + 1):
                times = {}
                for n in (1, threads):
                    nb.set_num_threads(n)
                    t0 = time.perf_counter()
                    run(n)
                    times[n] = time.perf_counter() - t0
                if r > 0:  # the first round compiles or loads the kernels and warms the caches
                    each.append(times[threads] / times[1])
            ratios[name] = float(np.median(each))
    finally:
        nb.set_num_threads(kept)
    return ratios


def describe(ratios: dict) -> str:
    return f"compute {ratios['compute']:.2f}x, L2-bound {ratios['l2']:.2f}x"
