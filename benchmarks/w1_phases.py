"""W1's training step in fresh processes one after another, with what the host gives each process
at that moment: to tell the host's slow phases from a change in spikeflow.

    python benchmarks/w1_phases.py [--processes 8] [--steps 100] [--json benchmarks/results/w1-phases.json]

Each process (the environment ``benchmarks/peers.py`` gives spikeflow: 2 threads, glibc keeping freed
memory) times, after warm-up:

- one thread's speed: ``core_probe``'s chain of multiply-adds held in registers and its W1-like
  reads of 1 KB weight rows, one share on one thread (a core whose other hardware thread is busy,
  or a cache shared with busy neighbours, makes these slower, and spikeflow's code has not changed);
- an empty two-thread numba kernel: waking the thread pool;
- one thread reading a W1-sized buffer that the same thread, or the other one, has just written
  (before and after the steps): what handing data from one core to the other costs now (every step
  does it: Adam writes each weight in two halves, and each thread's forward reads all of it);
- ``TrainStep``'s step on W1 (``benchmarks/bench_worker.py``'s network and batches) and, inside it,
  each kernel: the pair's forward and backward, Adam's update, the weight's transpose, the loss;
- the usual autograd step (``loss.backward()``, torch's fused Adam) on the same network.

The medians of each process are printed one line per process; the processes differ only in when
they ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "src")]

KERNELS = {"forward": ("linear_lif_pair", "forward"), "backward": ("linear_lif_pair", "backward"),
           "adam": ("adam", "adam_from_parts"), "transpose": ("linear_lif", "transpose_into")}


def measure(steps: int) -> dict:
    """One process's medians (ms; the probes in us)."""
    import importlib

    import numba as nb
    import numpy as np
    import torch
    from torch.nn import functional as F

    import bench_worker as bw
    import core_probe
    import profile_w1

    for name, (module, attr) in KERNELS.items():
        mod = importlib.import_module(f"spikeflow.kernels.{module}")
        setattr(mod, attr, profile_w1.timed(name, getattr(mod, attr)))
    import spikeflow.train.step as step_module
    from spikeflow.train import TrainStep

    step_module.count_cross_entropy = profile_w1.timed("loss", step_module.count_cross_entropy)

    @nb.njit(parallel=True)
    def empty(a):
        for i in nb.prange(a.shape[0]):
            a[i] += 1.0

    @nb.njit(parallel=True)
    def write_by(buf, writer):
        for share in nb.prange(2):
            if share == writer:
                buf[:] = share + 1.0

    @nb.njit(parallel=True)
    def read_by(buf, reader, out):
        for share in nb.prange(2):
            if share == reader:  # an xor of the bits: vectorised, so the reads, not the adds, take the time
                acc = np.int32(0)
                for i in range(buf.shape[0]):
                    acc ^= buf[i]
                out[share] = acc

    def handoff_us(same: bool):
        """One thread reading a W1-sized buffer (700 x 256 float32) that the same or the other
        thread of the pool has just written (each share goes to the same thread at every call)."""
        buf, out = np.zeros(core_probe.N_IN * core_probe.N_OUT, np.int32), np.zeros(2, np.int32)
        times = []
        for _ in range(40):
            write_by(buf, 0)
            t0 = time.perf_counter()
            read_by(buf, 0 if same else 1, out)
            times.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(times[1:])

    def median_us(fn, repeats):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(times[1:])

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    w = rng.random((core_probe.N_IN, core_probe.N_OUT), dtype=np.float32)
    idx = rng.integers(0, core_probe.N_IN, (1, 400, core_probe.PER_ROW)).astype(np.int32)
    one = np.zeros(1, np.float32)
    two = np.zeros(2)
    result = {
        "one thread: multiply-adds us": median_us(lambda: core_probe._compute(20_000, one), 40),
        "one thread: weight-row reads us": median_us(lambda: core_probe._l2_rows(w, idx, one), 40),
        "empty two-thread kernel us": median_us(lambda: empty(two), 400),
        "read what the same thread wrote us": handoff_us(True),
        "read what the other thread wrote us": handoff_us(False),
    }
    data = [(x.to(torch.uint8), y) for x, y in bw.make_data("mlp", 100, 32)]
    net_forward, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    train_step = TrainStep(net_forward.net, torch.optim.Adam(list(params), lr=1e-3, fused=True))
    usual_forward, _, usual_params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    usual_opt = torch.optim.Adam(list(usual_params), lr=1e-3, fused=True)

    def usual(x, y):
        loss = F.cross_entropy(usual_forward(x)[0].sum(0), y)
        usual_opt.zero_grad(set_to_none=True)
        loss.backward()
        usual_opt.step()

    for name, step in (("TrainStep", train_step), ("usual step", usual)):
        for i in range(10):
            step(*data[i % len(data)])
        profile_w1.TIMES.clear()
        whole = []
        for i in range(steps):
            t0 = time.perf_counter()
            step(*data[i % len(data)])
            whole.append(time.perf_counter() - t0)
        result[f"{name} ms"] = 1e3 * statistics.median(whole)
        if name == "TrainStep":  # each kernel's time per step (Adam's and the transpose's: both layers)
            for kernel, times in profile_w1.TIMES.items():
                per_step = len(times) // steps
                result[f"TrainStep: {kernel} ms"] = 1e3 * per_step * statistics.median(times)
    result["after the steps: read what the same thread wrote us"] = handoff_us(True)
    result["after the steps: read what the other thread wrote us"] = handoff_us(False)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--json", default=None, help="write every process's medians here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.processes < 1 or args.steps < 1:
        ap.error("--processes and --steps must be >= 1")
    if args.child:
        print("RESULT " + json.dumps(measure(args.steps)), flush=True)
        return 0
    from bench_proc import save_json
    from peers import MALLOC_KEEP

    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", NUMBA_NUM_THREADS="2", **MALLOC_KEEP)
    rows = []
    for k in range(args.processes):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps)],
                              env=env, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise SystemExit(f"w1_phases: process {k + 1} failed (exit {proc.returncode}): {proc.stderr[-500:]}")
        rows.append(json.loads(line[len("RESULT "):]))
        print(f"process {k + 1}: " + ", ".join(f"{name} {v:.2f}" for name, v in rows[-1].items()), flush=True)
    if args.json:
        save_json(args.json, "w1_phases.py", argv, threads=2, steps=args.steps, processes=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
