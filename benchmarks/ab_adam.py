"""W1's training step by ``spikeflow.train.TrainStep`` with this tree's fused Adam kernels
(``spikeflow.kernels.adam``) against those of another git revision, in one process.

    python benchmarks/ab_adam.py REV [--rounds 16] [--steps 25]

Two ``TrainStep`` on the same W1 network and Adam (``bench_worker.build_spikeflow``, uint8 input as
``peers.py``'s TrainStep row, 2 threads); one runs ``REV``'s ``kernels/adam.py`` (loaded from
``git show``, with this tree's imports). They take turns, ``--steps`` steps each, for ``--rounds``
rounds, and the medians of all their steps are printed. A change of a few percent in a step of
milliseconds is below the drift between processes on a shared machine (``ab_w1w3.py`` runs one
process per tree); blocks that alternate within one process see the same machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "src")]


def _kernels_of(rev: str):
    """``kernels/adam.py`` as it is at ``rev``, as a module of its own."""
    source = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:src/spikeflow/kernels/adam.py"], check=True,
                            capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("adam_at_rev", f.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(f.name)
    return module


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the git revision whose kernels/adam.py to compare with")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    import bench_worker as bw
    from spikeflow.kernels import adam
    from spikeflow.train import TrainStep

    torch.set_num_threads(2)
    data = [(x.to(bw.SPIKE_BYTES["spikeflow"]), y) for x, y in bw.make_data("mlp", 100, 32)]
    steps = {}
    for name, kernels in ((args.rev, _kernels_of(args.rev)), ("this tree", adam)):
        net, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
        step = TrainStep(net.net, torch.optim.Adam(list(params), lr=1e-3, fused=True))
        for i in range(2):  # the first step makes Adam's state (torch's step), the second the fused plan
            step(*data[i])
        step._plan[1]._adam_kernels = (kernels.adam_from_parts, kernels.adam_bias_from_parts) * 2
        for i in range(3):
            step(*data[i])
        assert step.fused_update
        steps[name] = step
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            for i in range(args.steps):
                t0 = time.perf_counter()
                step(*data[i % len(data)])
                times[name].append(time.perf_counter() - t0)
    ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    for name, m in ms.items():
        print(f"{name:12s} TrainStep median {m:.3f} ms")
    print(f"this tree over {args.rev}: {ms['this tree'] / ms[args.rev]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
