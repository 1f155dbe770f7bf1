"""The two-layer LinearLIF kernel against the same two layers run one after the other, in one process.

    PYTHONPATH=src python benchmarks/pair_speed.py [--workloads W1,W3,W4] [--repeats 15] [--threads 2]
        [--json benchmarks/results/pair-speed.json]

The networks, weights and inputs are benchmarks/peers.py's W1 (train), W3 (inference) and W4 (train,
T=1000). ``pair``: ``spikeflow.nn.Sequential(LinearLIF, LinearLIF)``, which runs them as one kernel
(``spikeflow.kernels.linear_lif_pair``); ``apart``: each ``LinearLIF`` called on its own (the hidden
spike map is written, compressed again and its gradient built by a matmul). The two alternate step by
step, so the host's drifting speed reaches both alike; the median ms per step of each is reported, with
the hidden spike count of both (equal: the same function) and the other processes' CPU load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_worker  # noqa: E402
import spikeflow.nn as snn  # noqa: E402
from bench_proc import DECAY, workload  # noqa: E402
from clockfree_speed import cpu_busy_jiffies  # noqa: E402
from spikeflow.atomic import atomic_write_text  # noqa: E402
from spikeflow.provenance import commit, machine  # noqa: E402


def compare(name: str, repeats: int) -> dict:
    wl = workload(name)
    lif = dict(tau_mem=-1e-3 / math.log(DECAY), r=1.0 / (1.0 - DECAY), dt=1e-3, v_threshold=1.0, reset="subtract")
    m1, m2 = snn.LinearLIF(700, 256, **lif), snn.LinearLIF(256, 20, **lif)
    for m, layer in zip((m1, m2), bench_worker.shared_weights("mlp")):
        m.linear.load_state_dict(layer.state_dict())
    net = snn.Sequential(m1, m2)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, fused=True) if wl["train"] else None
    data = bench_worker.make_data("mlp", wl["T"], wl["B"])
    runs = {"pair": lambda x: net(x), "apart": lambda x: m2(m1(x))}
    hidden = int(m1(data[0][0]).sum().item())

    def step(i: int, how: str) -> float:
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        if opt is None:
            with torch.no_grad():
                runs[how](x)
        else:
            loss = F.cross_entropy(runs[how](x).sum(0), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) * 1e3

    for i in range(2):  # warm-up: compilation, allocator
        step(i, "pair"), step(i, "apart")
    times = {"pair": [], "apart": []}
    busy0, t0 = cpu_busy_jiffies(), time.perf_counter()
    cpu0 = time.process_time()
    for i in range(repeats):
        for how in ("pair", "apart") if i % 2 == 0 else ("apart", "pair"):
            times[how].append(step(i, how))
    wall = time.perf_counter() - t0
    other = ((cpu_busy_jiffies() - busy0) / 100.0 - (time.process_time() - cpu0)) / (wall * (os.cpu_count() or 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"workload": name, "T": wl["T"], "B": wl["B"], "train": wl["train"], "hidden_spikes": hidden,
            "median_ms": med, "speedup": med["apart"] / med["pair"], "other_load": max(0.0, other)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W3,W4")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name in [w.strip().upper() for w in args.workloads.split(",") if w.strip()]:
        r = compare(name, args.repeats)
        print(f"{name}: pair {r['median_ms']['pair']:.2f} ms, apart {r['median_ms']['apart']:.2f} ms "
              f"({r['speedup']:.2f}x), other load {r['other_load']:.0%}", flush=True)
        results.append(r)
    if args.json:
        out = {"command": "PYTHONPATH=src python " + " ".join([sys.argv[0]] + sys.argv[1:]), "commit": commit(),
               "machine": machine(), "threads": args.threads, "repeats": args.repeats, "results": results}
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
