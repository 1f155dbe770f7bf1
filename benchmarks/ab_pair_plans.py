"""W1's usual training loop (``loss.backward()``, torch's fused Adam) with the fused pair's autograd
call on kept buffers (``spikeflow.kernels.pair_training``) against the same loop with every call
made afresh (``linear_lif_pair.PairFunction``), in one process.

    python benchmarks/ab_pair_plans.py [--rounds 16] [--steps 25]

One W1 network (``bench_worker.build_spikeflow``, uint8 input as ``peers.py``'s spikeflow row, 2
threads) trains in blocks of ``--steps`` steps, the kept plans on and off in turn (off: the plan
call is replaced by one that declines, so ``spikeflow.nn.Sequential`` takes the fresh call), for
``--rounds`` rounds of both; the medians of all their steps are printed. Both ways compute the same
function bit for bit (``tests/kernels/test_pair_training.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "src")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    import bench_worker as bw
    from spikeflow.kernels import pair_training

    torch.set_num_threads(2)
    forward, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    opt = torch.optim.Adam(list(params), lr=1e-3, fused=True)  # as peers.py
    data = [(x.to(bw.SPIKE_BYTES["spikeflow"]), y) for x, y in bw.make_data("mlp", 100, 32)]
    ways = {"kept plans": pair_training.linear_lif_pair, "fresh calls": lambda *args, **kwargs: None}

    def train(i):
        bw.usual_step(forward, opt, *data[i % len(data)])

    times = {name: [] for name in ways}
    try:
        for r in range(args.rounds):
            for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                pair_training.linear_lif_pair = ways[name]
                for i in range(3):  # (untimed: the first steps after a switch make or take the plans)
                    train(i)
                for i in range(args.steps):
                    t0 = time.perf_counter()
                    train(i)
                    times[name].append(time.perf_counter() - t0)
    finally:
        pair_training.linear_lif_pair = ways["kept plans"]
    ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    for name, m in ms.items():
        print(f"{name:12s} W1 step median {m:.3f} ms")
    print(f"kept plans over fresh calls: {ms['kept plans'] / ms['fresh calls']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
