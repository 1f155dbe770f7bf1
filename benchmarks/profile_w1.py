"""Where spikeflow's W1 training step and W3 inference call spend their time: the fused kernels
of the LinearLIF pair against the rest.

    python benchmarks/profile_w1.py [--steps 40] [--json benchmarks/results/profile-w1.json]

Builds W1 exactly as ``benchmarks/peers.py`` does (``bench_worker.build_spikeflow``: two
``LinearLIF`` layers in ``spikeflow.nn.Sequential``, run as one pair kernel), wraps the numba
kernels with timers and prints, after 3 warm-up steps (2 threads), the median per step of: the
pair's forward kernel, the backward kernel of each layer, the weight gradient's transposing sum of
each layer, the autograd functions around them, the whole forward and backward, and Adam; then the
kernels and the whole step of W1 by ``spikeflow.train.TrainStep`` (no autograd), with Adam's update
fused into the gradients' sums and with torch's ``Adam.step()``, and the same for W3 (the forward
without grad). Last, torch's own work in the usual step: the same loop with the pair replaced by
an autograd function that does no work (its spikes given, its gradients zeros), so that loss,
autograd and Adam remain. Wall-clock times: run it on an idle machine, and compare two trees by
alternating runs of both.
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
from bench_proc import save_json  # noqa: E402
from spikeflow.kernels import adam  # noqa: E402
from spikeflow.kernels import linear_lif as single  # noqa: E402
from spikeflow.kernels import linear_lif_pair as pair  # noqa: E402

TIMES = collections.defaultdict(list)


def timed(name, fn):
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        TIMES[name].append(time.perf_counter() - t0)
        return out
    return run


class NullPair(torch.autograd.Function):
    """The pair's place in the usual step with none of its work: the spikes ``out`` given, the
    weights' and biases' gradients zeros (fresh tensors, as the pair's backward hands autograd)."""

    @staticmethod
    def forward(ctx, out, *params):
        ctx.shapes = [p.shape for p in params]
        return out.clone()

    @staticmethod
    def backward(ctx, g_out):
        return (None, *[torch.zeros(shape) for shape in ctx.shapes])


def report(title, steps) -> dict:
    """Prints and returns the medians per step (ms); a kernel called once per layer and step is split
    by layer (the backward runs the output layer first, the gradients are summed for the hidden layer
    first)."""
    print(title)
    medians = {}
    for name, t in TIMES.items():
        t = np.array(t) * 1e3
        if len(t) == 2 * steps:
            first, second = (t[1::2], t[0::2]) if name == "kernel backward" else (t[0::2], t[1::2])
            medians[name] = {"layer 1": float(np.median(first)), "layer 2": float(np.median(second))}
            print(f"  {name:30s} layer 1 {np.median(first):6.2f}, layer 2 {np.median(second):6.2f}")
        else:
            medians[name] = float(np.median(t))
            print(f"  {name:30s} {np.median(t):6.2f}")
    TIMES.clear()
    return medians


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--json", default=None, help="write the medians here")
    args = ap.parse_args(argv)
    pair.forward = timed("kernel pair forward", pair.forward)
    pair.backward = timed("kernel pair backward", pair.backward)
    single.backward = timed("kernel backward", single.backward)
    single.sum_transposed = timed("kernel sum_transposed", single.sum_transposed)
    adam.adam_from_parts = timed("kernel adam_from_parts", adam.adam_from_parts)
    fn = pair.PairFunction
    fn.forward = staticmethod(timed("PairFunction.forward", fn.forward))
    fn.backward = staticmethod(timed("PairFunction.backward", fn.backward))
    torch.set_num_threads(2)
    net_forward, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    opt = torch.optim.Adam(list(params), lr=1e-3, fused=True)  # as benchmarks/peers.py
    data = [(x.to(bw.SPIKE_BYTES["spikeflow"]), y) for x, y in bw.make_data("mlp", 100, 32)]  # as peers.py: bytes

    def train(i):
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        loss = F.cross_entropy(net_forward(x)[0].sum(0), y)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        TIMES["whole forward (with loss)"].append(t1 - t0)
        TIMES["whole backward"].append(t2 - t1)
        TIMES["Adam step"].append(t3 - t2)
        TIMES["whole step"].append(t3 - t0)

    def infer(i):
        t0 = time.perf_counter()
        with torch.no_grad():
            net_forward(data[i % len(data)][0])
        TIMES["whole call"].append(time.perf_counter() - t0)

    from spikeflow.train import TrainStep

    steps = []
    for torch_adam in (False, True):
        net_b, _, params_b, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
        opt = torch.optim.Adam(list(params_b), lr=1e-3, fused=True)
        if torch_adam:  # a step hook: TrainStep leaves the update to optimizer.step()
            opt.register_step_pre_hook(lambda *_: None)
        steps.append(TrainStep(net_b.net, opt))

    def train_step(i, step):
        t0 = time.perf_counter()
        step(*data[i % len(data)])
        TIMES["whole step"].append(time.perf_counter() - t0)
        if i > 0:  # (Adam's first step, which makes its state, is torch's)
            assert step.fused and step.fused_update == (step is steps[0])

    null_params = [p.detach().clone().requires_grad_() for m in bw.shared_weights("mlp") for p in m.parameters()]
    null_opt = torch.optim.Adam(null_params, lr=1e-3, fused=True)
    with torch.no_grad():
        null_out = [net_forward(x)[0] for x, _ in data]  # the spikes the pair would give

    def train_null(i):
        t0 = time.perf_counter()
        loss = F.cross_entropy(NullPair.apply(null_out[i % len(data)], *null_params).sum(0), data[i % len(data)][1])
        null_opt.zero_grad(set_to_none=True)
        loss.backward()
        null_opt.step()
        TIMES["whole step"].append(time.perf_counter() - t0)

    found = {}
    for run, title in ((train, "W1 training step"),
                       (lambda i: train_step(i, steps[0]), "W1 training step by TrainStep (Adam's update fused)"),
                       (lambda i: train_step(i, steps[1]), "W1 training step by TrainStep, torch's Adam.step()"),
                       (infer, "W3 inference call"),
                       (train_null, "W1 training step around a pair that does no work (torch's own work)")):
        for i in range(3):
            run(i)
        TIMES.clear()
        for i in range(args.steps):
            run(i)
        found[title] = report(f"{title}, ms (median of {args.steps}, 2 threads)", args.steps)
    if args.json:
        save_json(args.json, "profile_w1.py", argv, threads=2, steps=args.steps, median_ms=found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
