"""Where the event-path convolution stops paying: dense vs event forward + backward, by input activity.

    python benchmarks/conv_crossover.py [--threads 2] [--frames 160]

It ends with W2's pooled conv2 part by part (dense forward, input and weight gradients, and the
event weight gradient) at its 30 % activity: the parts that bound W2.

The two W2 layers (``T*B`` frames): conv1 ``2 -> 16, k5 p2`` on 32x32 (no input gradient, as
for a network's first layer) and the pooled conv2 ``AvgPool2 -> 16 -> 32, k5 p2`` (input
gradient included). Activity is the fraction of non-zero entries of the convolution's input
(after pooling). Times are CPU seconds of this process (``time.process_time``, min of the
repetitions), which a loaded shared machine disturbs less than wall time; at 2 threads they
include the threads' waiting. ``spikeflow.kernels.conv.CROSSOVER`` holds the value measured here.

Measured 2026-11-27 10:57 UTC, idle machine, ``--frames 320 --reps 3`` (the W2 size; 2 threads;
after the event kernels add each event's taps on an output row as one contiguous run): conv1
event/dense 0.13-0.34 at 2-30 % activity, 0.47 at 50 %; the pooled conv2 (its dense input gradient,
which both paths share, is the larger part) 0.63-0.82 at 2-10 %, 1.01 at 20 %, 1.11 at 30 %, 1.50 at
50 %. Hence ``CROSSOVER = 0.2``: W2's conv1 (10 %) takes the event path, its pooled conv2 (30 %
non-zero 2x2 windows) the dense one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from spikeflow.kernels import conv as kconv  # noqa: E402
from spikeflow.kernels.cpu import set_threads  # noqa: E402


def min_ms(fn, reps: int, clock=time.process_time) -> float:
    """Min over ``reps`` calls after one warm-up, in ms of ``clock`` (default: this process's CPU time)."""
    fn()
    out = []
    for _ in range(reps):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return min(out) * 1e3


def bernoulli_with_pooled_activity(shape, pooled: float, pool: int, gen) -> torch.Tensor:
    """Binary spikes whose ``pool x pool`` windows are non-zero with probability ``pooled``."""
    p = 1.0 - (1.0 - pooled) ** (1.0 / (pool * pool))
    return (torch.rand(shape, generator=gen) < p).float()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=160, help="T*B frames per call (W2: 320)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    set_threads()
    gen = torch.Generator().manual_seed(0)
    layers = [  # name, input shape, weight shape, pool, input needs a gradient
        ("conv1 2->16 k5 32x32", (args.frames, 2, 32, 32), (16, 2, 5, 5), 1, False),
        ("pool2+conv2 16->32 k5 16x16", (args.frames, 16, 32, 32), (32, 16, 5, 5), 2, True),
    ]
    print(f"threads={args.threads} frames={args.frames}; CPU ms of forward + backward (min of {args.reps})")
    print(f"{'layer':30s} {'activity':>8s} {'dense':>8s} {'event':>8s} {'event/dense':>11s}")
    for name, shape, wshape, pool, need_x in layers:
        w = (torch.randn(wshape, generator=gen) * 0.1).requires_grad_()
        b = torch.zeros(wshape[0], requires_grad=True)
        for act in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5):
            x = bernoulli_with_pooled_activity(shape, act, pool, gen).requires_grad_(need_x)
            times = {}
            for impl, fn in (("dense", kconv.dense_conv2d), ("event", kconv.event_conv2d)):
                def step(fn=fn, x=x, w=w, b=b, pool=pool):
                    y = fn(x, w, b, (1, 1), (2, 2), pool)
                    y.backward(torch.ones_like(y))
                times[impl] = min_ms(step, args.reps)
            print(f"{name:30s} {act:8.2f} {times['dense']:8.1f} {times['event']:8.1f} "
                  f"{times['event'] / times['dense']:11.2f}")
    print(f"spikeflow.kernels.conv.CROSSOVER = {kconv.CROSSOVER}")
    conv2_parts(args.frames, args.reps, gen)
    return 0


def conv2_parts(frames: int, reps: int, gen) -> None:
    """W2's pooled conv2 at its 30 % activity, part by part: what bounds W2 (wall ms, min of ``reps``)."""
    x = bernoulli_with_pooled_activity((frames, 16, 32, 32), 0.3, 2, gen).contiguous(
        memory_format=torch.channels_last)
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    w = torch.randn((32, 16, 5, 5), generator=gen) * 0.1
    g = torch.randn((frames, 32, 16, 16), generator=gen).contiguous(memory_format=torch.channels_last)
    ev = kconv.events(x, 2)
    g_flat = g.permute(0, 2, 3, 1).contiguous().view(-1).numpy()
    partial = torch.empty((2 * torch.get_num_threads(), 16 * 25 * 32))
    partial_b = torch.empty((partial.shape[0], 32))
    parts = {
        "dense forward": lambda: torch.nn.functional.conv2d(pooled, w, None, 1, 2),
        "dense input gradient": lambda: torch.nn.grad.conv2d_input(pooled.shape, w, g, 1, 2),
        "dense weight gradient": lambda: torch.nn.grad.conv2d_weight(pooled, w.shape, g, 1, 2),
        "event weight gradient": lambda: kconv._weight_grad(*ev, g_flat, 5, 5, 1, 1, 2, 2, 16, 16, 32,
                                                            partial.numpy(), partial_b.numpy()),
    }
    print(f"pool2+conv2 at 30 % activity, {frames} frames: wall ms (min of {reps})")
    for name, fn in parts.items():
        print(f"  {name:24s} {min_ms(fn, reps, time.perf_counter):7.1f}")


if __name__ == "__main__":
    sys.exit(main())
