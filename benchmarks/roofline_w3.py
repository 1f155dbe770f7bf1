"""How close W3's fused pair kernel is to what its first layer alone must cost on this machine.

    python benchmarks/roofline_w3.py [--repeats 40]

On W3's input (``bench_worker.make_data``: T=100, B=32, 700 inputs at 5 %, about 112,000 active
inputs a step) and a 700 -> 256 float32 weight, 2 threads, median ms per call of:

- ``read``: one pass over the 9 MB input (an OR of its bit patterns): the memory floor of reading it;
- ``gather``: the first layer's currents alone, from input lists compressed beforehand (1 KB of
  weight row per active input, the kernel's own register-tiled sum);
- ``scan + gather``: the same, each row's active inputs found from the dense input first, in the
  kernel's time-major order (what any kernel reading the dense input must do at least);
- ``pair kernel``: ``linear_lif_pair.forward`` as W3 runs it (both layers, LIF steps, spikes out).

The inputs rotate over the benchmark's four batches, as in ``peers.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numba as nb
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import bench_worker as bw  # noqa: E402
from spikeflow.kernels import linear_lif as single  # noqa: E402
from spikeflow.kernels import linear_lif_pair as pair  # noqa: E402
from spikeflow.kernels import simd  # noqa: E402


@nb.njit(parallel=True)
def _read(bits, out):
    n = bits.shape[0]
    for ch in nb.prange(2):
        acc = np.uint32(0)
        for i in range(ch * n // 2, (ch + 1) * n // 2):
            acc |= bits[i]
        out[ch] = acc


@nb.njit(parallel=True)
def _gather(lo, hi, indices, values, wt, bias, n_batch, out):
    rows = lo.shape[0]
    for ch in nb.prange(2):
        cur = np.empty(wt.shape[1], wt.dtype)
        acc = wt.dtype.type(0)
        b0, b1 = ch * n_batch // 2, (ch + 1) * n_batch // 2
        for t in range(rows // n_batch):
            for b in range(b0, b1):
                r = t * n_batch + b
                single._current(indices, values, lo[r], hi[r], wt, bias, cur)
                acc += cur[0]
        out[ch] = acc


@nb.njit(parallel=True)
def _scan_gather(x, wt, bias, n_batch, out):
    rows, n_in = x.shape
    for ch in nb.prange(2):
        cur = np.empty(wt.shape[1], wt.dtype)
        idx = np.empty(n_in + 16, np.int32)
        ones = np.empty(0, wt.dtype)
        acc = wt.dtype.type(0)
        b0, b1 = ch * n_batch // 2, (ch + 1) * n_batch // 2
        for t in range(rows // n_batch):
            for b in range(b0, b1):
                m = simd.append_nonzero(x[t * n_batch + b], idx, 0)
                single._current(idx, ones, 0, m, wt, bias, cur)
                acc += cur[0]
        out[ch] = acc


def _median_ms(fn, repeats):
    fn(0)
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    nb.set_num_threads(2)
    data = bw.make_data("mlp", 100, 32)
    xs = [d[0].reshape(-1, 700).contiguous() for d in data]
    events = [single.compress_input(x, "x") for x in xs]
    weight = torch.randn(256, 700) * 0.1
    wt = torch.empty(700, 256)
    single.transpose_into(weight.numpy(), wt.numpy())
    bias = np.zeros(256, np.float32)
    out = np.zeros(2, np.float32)
    bits_out = np.zeros(2, np.uint32)
    net_forward, _, _, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    kernel_ms = []
    pair.forward = _timing(pair.forward, kernel_ms)

    def pick(k):
        return k % len(xs)

    rows = {
        "read": lambda k: _read(xs[pick(k)].numpy().view(np.uint32).reshape(-1), bits_out),
        "gather": lambda k: _gather(*events[pick(k)], wt.numpy(), bias, 32, out),
        "scan + gather": lambda k: _scan_gather(xs[pick(k)].numpy(), wt.numpy(), bias, 32, out),
    }
    n_active = np.mean([len(e.indices) for e in events])
    print(f"W3 input: {xs[0].shape[0]} rows x 700, {n_active:.0f} active inputs a call; 2 threads, "
          f"median ms of {args.repeats} calls")
    for name, fn in rows.items():
        print(f"  {name:14s} {_median_ms(fn, args.repeats):6.3f}")
    with torch.no_grad():
        whole = _median_ms(lambda k: net_forward(data[pick(k)][0]), args.repeats)
    print(f"  {'pair kernel':14s} {np.median(kernel_ms[1:]):6.3f}  (the whole W3 call {whole:.3f})")
    return 0


def _timing(fn, sink):
    def run(*a):
        t0 = time.perf_counter()
        fn(*a)
        sink.append((time.perf_counter() - t0) * 1e3)
    return run


if __name__ == "__main__":
    sys.exit(main())
