"""Train the runtime's demo model on nmnist5k and write it as NIR (for `spikeflow eval-time`).

    PYTHONPATH=src python benchmarks/runtime_demo_model.py [--out runs/runtime/nmnist5k.nir] [--epochs 8]

A small spiking MLP over 10 ms event-count bins (T = 30 over the 300 ms recordings):
AvgPool2d(2) -> Linear(578, 256) -> LIF -> Linear(256, 10) -> LI. It is trained for anytime
answers: the loss is the cross-entropy of the running mean of the readout membrane at every
step, which is what `Stream(decoder="mean")` reports after each step. Seeded; about 1-3 min
on 2 cores. Writes the NIR file atomically and prints test accuracy of the torch model.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import torch

import spikeflow.nn as snn
from spikeflow.atomic import make_dirs
from spikeflow.data.datasets import load_dataset
from spikeflow.ir import to_nir, write

DT = 10e-3


def build(seed: int, hidden: int = 256) -> snn.Sequential:
    torch.manual_seed(seed)
    return snn.Sequential(
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(2 * 17 * 17, hidden), snn.LIF(tau_mem=20e-3, dt=DT, reset="subtract"),
        torch.nn.Linear(hidden, 10), snn.LI(tau_mem=20e-3, dt=DT),
    )


def running_mean_logits(v: torch.Tensor) -> torch.Tensor:
    """``v [T, B, C]`` -> running mean over steps ``[T, B, C]`` (the stream's "mean" decoder)."""
    steps = torch.arange(1, v.shape[0] + 1, dtype=v.dtype).reshape(-1, 1, 1)
    return v.cumsum(0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/runtime/nmnist5k.nir")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    xtr, ytr = load_dataset("nmnist5k", "train", dt=DT).as_tensors()
    xte, yte = load_dataset("nmnist5k", "test", dt=DT).as_tensors()
    print(f"data: train {tuple(xtr.shape)}, test {tuple(xte.shape)} ({time.time() - t0:.1f} s)")
    net = build(args.seed, args.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            x = xtr[idx].float().transpose(0, 1)  # [T, B, P, H, W]
            logits = running_mean_logits(net(x))
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), ytr[idx].repeat(x.shape[0]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        sched.step()
        acc = evaluate(net, xte, yte)
        print(f"epoch {epoch + 1}: loss {total / n:.3f}, test accuracy (full window) {acc * 100:.2f} % "
              f"({time.time() - t0:.0f} s)")
    make_dirs(os.path.dirname(os.path.abspath(args.out)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(to_nir(net, dt=DT, input_shape=(2, 34, 34)), args.out)
    print(f"wrote {args.out}")


@torch.no_grad()
def evaluate(net, x, y) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(x), 250):
        logits = running_mean_logits(net(x[i:i + 250].float().transpose(0, 1)))[-1]
        correct += int((logits.argmax(1) == y[i:i + 250]).sum())
    return correct / len(x)


if __name__ == "__main__":
    main()
