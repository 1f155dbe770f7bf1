"""W1's training step and W3's inference call of this tree against another git revision.

    python benchmarks/ab_w1w3.py REV [--pairs 8]

Checks ``REV`` out into a temporary git worktree and runs ``--pairs`` pairs of processes, ``REV``'s
then this tree's, each building W1/W3 as ``peers.py`` does (``bench_worker.build_spikeflow``, 2
threads) and timing 60 W3 calls, 30 W1 steps and 60 W1 steps by ``spikeflow.train.TrainStep`` (the same
network and Adam) after 5 warm-up ones; prints each process's medians,
per tree the median and range of them, and the median of the pairs' differences. Processes alternate
because a shared machine's speed drifts by tens of percent within minutes: a difference that holds
pair after pair is the change's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV = dict(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", NUMBA_NUM_THREADS="2",
           MALLOC_TRIM_THRESHOLD_="1099511627776", MALLOC_MMAP_THRESHOLD_="33554432")
NAMES = ("W3", "W1", "W1-TrainStep")


def worker(src: str) -> None:
    """Prints the medians ``W3_ms W1_ms W1-TrainStep_ms`` for the spikeflow under ``src``."""
    sys.path[:0] = [HERE, src]
    import numpy as np
    import torch
    from torch.nn import functional as F

    import bench_worker as bw

    torch.set_num_threads(2)
    net_forward, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    opt = torch.optim.Adam(list(params), lr=1e-3, fused=True)
    data = bw.make_data("mlp", 100, 32)

    def infer(i):
        with torch.no_grad():
            net_forward(data[i % len(data)][0])

    def train(i):
        x, y = data[i % len(data)]
        loss = F.cross_entropy(net_forward(x)[0].sum(0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    from spikeflow.train import TrainStep

    net_s, _, params_s, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    train_step = TrainStep(net_s.net, torch.optim.Adam(list(params_s), lr=1e-3, fused=True))
    data_bytes = [(x.to(bw.SPIKE_BYTES["spikeflow"]), y) for x, y in data]  # as peers.py's TrainStep row

    def fused(i):
        train_step(*data_bytes[i % len(data_bytes)])

    medians = []
    for step, n in ((infer, 60), (train, 30), (fused, 60)):
        for i in range(5):
            step(i)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            step(i)
            times.append(time.perf_counter() - t0)
        medians.append(float(np.median(times)) * 1e3)
    print(*(f"{m:.3f}" for m in medians))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the git revision to compare with")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    import numpy as np

    env = {**os.environ, **ENV}
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "rev")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", tree, args.rev], check=True)
        try:
            sides = {args.rev: os.path.join(tree, "src"), "this tree": os.path.join(ROOT, "src")}
            results = {name: [] for name in sides}
            for pair in range(args.pairs):
                for name, src in sides.items():
                    out = subprocess.run([sys.executable, __file__, args.rev, "--worker", src], env=env,
                                         check=True, capture_output=True, text=True).stdout.split()
                    results[name].append([float(v) for v in out])
                    print(f"pair {pair + 1} {name:12s} " + "  ".join(f"{w} {v} ms" for w, v in zip(NAMES, out)),
                          flush=True)
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], check=True)
    for name, rows in results.items():
        a = np.array(rows)
        print(f"{name:12s} " + ", ".join(f"{w} median {np.median(a[:, k]):.3f} ms ({a[:, k].min():.3f}-"
                                         f"{a[:, k].max():.3f})" for k, w in enumerate(NAMES)))
    # pair by pair, this tree's time minus REV's: a shift that holds while both drift with the machine
    diff = np.array(results["this tree"]) - np.array(results[args.rev])
    for k, name in enumerate(NAMES):
        print(f"{name} this tree minus {args.rev}, per pair: median {np.median(diff[:, k]):+.3f} ms, "
              f"this tree faster in {int((diff[:, k] < 0).sum())} of {len(diff)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
