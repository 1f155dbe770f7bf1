"""The fused pair's forward on silent and sparse W1 batches, another git revision's kernels against
this tree's, in one process.

    python benchmarks/ab_silent.py REV [--rounds 8] [--calls 25]

W1's network (``bench_worker.build_spikeflow``, 2 threads) and three uint8 batches of its shape
(``[100, 32, 700]``): all zero (a sensor with nothing to report), 0.05 % active and W1's 5 %. For
each, a ``PairStep`` of ``REV``'s kernels (``kernels/simd.py``, ``linear_lif.py`` and
``linear_lif_pair.py`` as ``REV`` has them, loaded as ``ab_step.py`` loads them) and one of this
tree's run ``forward_pass`` in turn, ``--calls`` calls each, for ``--rounds`` rounds; each
``PairStep`` is made fresh, so its list buffers come from the OS unwritten, as a new plan's do.
The medians per call are printed, with the hidden spike count of both trees (equal: the same
function). Only large differences show: the same code against itself (``REV`` = ``HEAD``, clean
tree) gave 0.86 and 0.99 on the 5 % batch.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "src")]

KERNELS = ("kernels/simd.py", "kernels/linear_lif.py", "kernels/linear_lif_pair.py")  # in import order


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the git revision to compare with")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=25)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    import bench_worker as bw
    from ab_step import _modules_at
    from spikeflow.kernels import linear_lif_pair
    from spikeflow.nn.linear_lif import pair_operands
    from spikeflow.nn.sequential import pair_units

    torch.set_num_threads(2)
    net = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))[0].net
    first, second, _ = pair_units(net)
    operands = pair_operands(first, second)
    (w1, b1, *_), (w2, b2, *_) = operands
    g = torch.Generator().manual_seed(0)
    batches = {f"{p:g} % active": (torch.rand((100, 32, 700), generator=g) < p / 100).to(torch.uint8)
               for p in (0, 0.05, 5)}
    with tempfile.TemporaryDirectory() as folder:
        rev_pair = _modules_at(args.rev, KERNELS, folder)["kernels/linear_lif_pair.py"]
        with torch.no_grad():
            for batch, x in batches.items():
                steps = {name: module.PairStep(x, *operands)
                         for name, module in ((args.rev, rev_pair), ("this tree", linear_lif_pair))}
                for step in steps.values():  # (untimed: REV's kernels compile in their first call)
                    step.forward_pass(x, w1, b1, w2, b2, None)
                times = {name: [] for name in steps}
                for r in range(args.rounds):
                    for name, step in (steps.items() if r % 2 == 0 else reversed(steps.items())):
                        for _ in range(args.calls):
                            t0 = time.perf_counter()
                            step.forward_pass(x, w1, b1, w2, b2, None)
                            times[name].append(time.perf_counter() - t0)
                spikes = {name: int((step.hid[1] - step.hid[0]).sum()) for name, step in steps.items()}
                ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
                print(f"{batch:16s} " + "  ".join(f"{name} {m:.3f} ms" for name, m in ms.items())
                      + f"  this tree over {args.rev}: {ms['this tree'] / ms[args.rev]:.3f}"
                      + f"  (hidden spikes {spikes})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
