"""Where spikeflow's W2 training step spends its time: the conv/LIF/pool kernels against the rest.

    python benchmarks/profile_w2.py [--steps 10] [--threads 1]

Builds W2 exactly as ``benchmarks/peers.py`` does (``bench_worker.build_spikeflow``), wraps the
numba kernels (event conv + LIF + pool of layer 1, LIF + pool of layer 2, the fused Linear+LIF
head) and torch's ``conv2d`` (layer 2's dense convolution) with timers, and prints per training
step (after 2 warm-up steps) the process CPU time in each, in the whole forward and backward
(the backward's remainder is mostly layer 2's dense convolution backward) and in Adam. CPU time,
not wall time, so that other processes on a shared machine disturb it less; with ``--threads 1``
it is the work done.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import bench_worker as bw  # noqa: E402
from spikeflow.kernels import conv as kconv  # noqa: E402
from spikeflow.kernels import conv_lif_pool, linear_lif, pool_lif  # noqa: E402

TIMES = collections.defaultdict(list)


def timed(name, owner, attr):
    fn = getattr(owner, attr)

    def run(*args, **kwargs):
        t0 = time.process_time()
        out = fn(*args, **kwargs)
        TIMES[name].append(time.process_time() - t0)
        return out
    setattr(owner, attr, run)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    timed("layer 1 conv+LIF+pool forward", conv_lif_pool, "forward")
    timed("layer 1 conv+LIF+pool backward", conv_lif_pool, "backward")
    timed("layer 1 input events", kconv, "events")
    timed("layer 2 conv2d forward (torch)", F, "conv2d")
    timed("layer 2 LIF+pool forward", pool_lif, "pooled_forward")
    timed("layer 2 LIF+pool backward", pool_lif, "pooled_backward")
    timed("head Linear+LIF forward", linear_lif, "forward")
    timed("head Linear+LIF backward", linear_lif, "backward")
    torch.set_num_threads(args.threads)
    net_forward, _, params, _ = bw.build_spikeflow("conv", bw.shared_weights("conv"))
    opt = torch.optim.Adam(list(params), lr=1e-3, fused=True)  # as benchmarks/peers.py
    data = bw.make_data("conv", bw.WORKLOADS["W2"]["T"], bw.WORKLOADS["W2"]["B"])

    def step(i):
        x, y = data[i % len(data)]
        t0 = time.process_time()
        loss = F.cross_entropy(net_forward(x)[0].sum(0), y)
        t1 = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.process_time()
        opt.step()
        TIMES["whole forward (with loss)"].append(t1 - t0)
        TIMES["whole backward"].append(t2 - t1)
        TIMES["Adam step"].append(time.process_time() - t2)

    for i in range(2):
        step(i)
    TIMES.clear()
    for i in range(args.steps):
        step(i)
    print(f"W2 spikeflow, process CPU ms per training step (mean of {args.steps} steps, {args.threads} thread(s))")
    for name, t in TIMES.items():
        print(f"  {name:34s} {np.sum(t) * 1e3 / args.steps:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
