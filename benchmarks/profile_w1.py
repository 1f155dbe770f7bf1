"""Where spikeflow's W1 training step spends its time: the fused LinearLIF kernels against the rest.

    python benchmarks/profile_w1.py [--steps 20]

Builds W1 exactly as ``benchmarks/peers.py`` does (``bench_worker.build_spikeflow``), wraps the numba
kernels of ``spikeflow.kernels.linear_lif`` with timers and prints, per training step (2 threads,
after 3 warm-up steps), the time in each kernel per layer, in the autograd functions around them,
in the whole forward and backward, and in Adam. Wall-clock times: run it on an idle machine.
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
from spikeflow.kernels import linear_lif as kernel  # noqa: E402

TIMES = collections.defaultdict(list)


def timed(name, fn):
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        TIMES[name].append(time.perf_counter() - t0)
        return out
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    for name in ("compress32", "forward", "backward", "sum_transposed"):
        setattr(kernel, name, timed(f"kernel {name}", getattr(kernel, name)))
    fn = kernel.LinearLIFFunction
    fn.forward = staticmethod(timed("LinearLIFFunction.forward", fn.forward))
    fn.backward = staticmethod(timed("LinearLIFFunction.backward", fn.backward))
    torch.set_num_threads(2)
    net_forward, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    opt = torch.optim.Adam(list(params), lr=1e-3, fused=True)  # as benchmarks/peers.py
    data = bw.make_data("mlp", 100, 32)

    def step(i):
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        loss = F.cross_entropy(net_forward(x)[0].sum(0), y)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        TIMES["whole forward (with loss)"].append(t1 - t0)
        TIMES["whole backward"].append(t2 - t1)
        TIMES["Adam step"].append(time.perf_counter() - t2)

    for i in range(3):
        step(i)
    TIMES.clear()
    for i in range(args.steps):
        step(i)
    print(f"W1 spikeflow, ms per training step (mean of {args.steps} steps, 2 threads)")
    for name, t in TIMES.items():
        t = np.array(t) * 1e3
        per_layer = ""
        if name.startswith("kernel"):  # calls alternate between layer 1 and layer 2
            first, second = (t[0::2], t[1::2]) if name not in ("kernel backward", "kernel sum_transposed") \
                else (t[1::2], t[0::2])
            per_layer = f"  (layer 1 {first.mean():.2f}, layer 2 {second.mean():.2f})"
        print(f"  {name:28s} {t.sum() / args.steps:6.2f}{per_layer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
