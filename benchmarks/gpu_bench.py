"""W1-W4 on one device for spikeflow and its GPU peers; ``benchmarks/gpu_check.sh`` runs it on a GPU:

    python benchmarks/gpu_bench.py --device cuda --out benchmarks/results/gpu.json
    python benchmarks/gpu_bench.py --device cpu --dry-run --out /tmp/gpu.json   # the logic, on the CPU

The networks, initial weights and input spikes are ``bench_worker.py``'s (the CPU benchmark's): built
on the CPU from the same seeds, then moved to the device, so every library computes the same function
(the hidden-spike count of the first forward shows it). Each (library, workload) runs in its own
process (``--worker``), warm-up steps first (they hold triton/JIT compilation), then timed steps, each
ended by a device synchronisation; it reports the step times, the device's peak memory during the
timed steps and the hidden spike count. Libraries:

- ``spikeflow``: on CUDA tensors ``LinearLIF`` runs the fused triton Linear+LIF kernel, ``SpikeConv2d``
  torch's dense convolution (cuDNN) and each LIF + AvgPool2d pair the fused triton kernel.
- ``spikeflow-unfused``: the same layers kept apart (cuBLAS Linear, then the triton LIF kernel; no
  LIF + pool fusion), to see what the fusion buys on a GPU.
- ``spikingjelly``, ``snntorch``, ``norse``: ``bench_worker``'s networks (SpikingJelly picks its own
  CUDA/triton kernels for CUDA tensors).
- ``spyx`` (JAX): ``bench_worker_spyx.py`` in the interpreter given by ``--spyx-python`` (a venv
  whose JAX sees the GPU), on the arrays ``bench_worker.export_npz`` writes.

A library that cannot run (not installed, no GPU for JAX) is recorded with its one-line reason; the
whole run keeps within ``--budget-s`` (runs left when it is spent are recorded as skipped).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBS = ("spikeflow", "spikeflow-unfused", "spikingjelly", "spyx")
ALL_LIBS = LIBS + ("snntorch", "norse")
WORKLOADS = ("W1", "W2", "W3", "W4")
DRY = dict(T=4, B=2)  # --dry-run: every workload this small


def _pin_unfused():
    """Make the spikeflow builder's layers run apart: LinearLIF(event='never') and no LIF + pool fusion."""
    import spikeflow.nn as snn
    from spikeflow.nn import sequential

    init = snn.LinearLIF.__init__

    def unfused_init(self, *args, **kwargs):
        kwargs["event"] = "never"
        init(self, *args, **kwargs)

    snn.LinearLIF.__init__ = unfused_init
    for fused in ("pooled_forward", "conv_pooled_forward"):  # LIF + pool, and conv + LIF + pool where it exists
        if hasattr(sequential, fused):
            setattr(sequential, fused, lambda *args, **kwargs: None)


def _hidden_count(h) -> float | None:
    if h is None:
        return None
    if isinstance(h, (list, tuple)):  # bench_worker versions that give the hidden layers' counts
        return float(sum(h))
    return float(h.detach().double().sum())


def worker(lib: str, name: str, device: str, steps: int, warmup: int, dry: bool) -> dict:
    """One (library, workload) run in this process; the result dict."""
    import torch
    from torch.nn import functional as F

    sys.path.insert(0, str(HERE))
    import bench_worker as bw

    wl = dict(bw.WORKLOADS[name])
    if dry:
        wl.update(DRY)
    kind = wl["kind"]
    dev = torch.device(device)
    layers = [m.to(dev) for m in bw.shared_weights(kind)]
    data = [(x.to(dev), y.to(dev)) for x, y in bw.make_data(kind, wl["T"], wl["B"])]
    if lib == "spikeflow-unfused":
        _pin_unfused()
    with torch.device(dev):  # what a library allocates itself lands on the device
        forward, reset, params, version = bw.BUILDERS[lib.replace("-unfused", "")](kind, layers)
    params = list(params)
    record = len(inspect.signature(forward).parameters) > 1  # forward(x) or forward(x, record)
    opt = torch.optim.Adam(params, lr=1e-3) if wl["train"] else None
    hidden = None

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def one_step(i):
        nonlocal hidden
        x, y = data[i % len(data)]
        reset()
        args = (x, i == 0) if record else (x,)
        with torch.device(dev):
            if opt is None:
                with torch.no_grad():
                    out, h = forward(*args)
            else:
                out, h = forward(*args)
                loss = F.cross_entropy(out.sum(0), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if i == 0:  # the first forward is the same for every library
            hidden = _hidden_count(h)
        sync()

    warm = []
    for i in range(warmup):
        t0 = time.perf_counter()
        one_step(i)
        warm.append((time.perf_counter() - t0) * 1e3)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    times = []
    for i in range(warmup, warmup + steps):
        t0 = time.perf_counter()
        one_step(i)
        times.append((time.perf_counter() - t0) * 1e3)
    res = dict(lib=lib, workload=name, version=version, torch=torch.__version__, device=str(dev), T=wl["T"],
               batch=wl["B"], warmup_ms=warm, times_ms=times, median_ms=statistics.median(times),
               hidden_spikes_first=hidden)
    if dev.type == "cuda":
        res.update(gpu=torch.cuda.get_device_name(dev),
                   step_peak_mb=(torch.cuda.max_memory_allocated(dev) - base) / 2**20,
                   peak_mb=torch.cuda.max_memory_allocated(dev) / 2**20)
    return res


def _run(cmd, timeout_s: float, env=None) -> dict:
    """A worker process's ``RESULT {json}`` line, or ``{"error": one line}``."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout_s:.0f} s")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return dict(error=(tail[-1] if tail else f"exit code {proc.returncode}")[:300])


def _spyx(name: str, args, timeout_s: float) -> dict:
    """spyx's own worker (``bench_worker_spyx.py``) in ``--spyx-python``, on ``export_npz``'s arrays."""
    script = HERE / "bench_worker_spyx.py"
    if not args.spyx_python:
        return dict(error="no --spyx-python (a venv with spyx and a CUDA-enabled JAX)")
    if not script.exists():
        return dict(error="benchmarks/bench_worker_spyx.py is not in this checkout")
    sys.path.insert(0, str(HERE))
    import bench_worker as bw

    if not hasattr(bw, "export_npz"):
        return dict(error="bench_worker.export_npz is not in this checkout")
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, f"{name}.npz")
        bw.export_npz(name, npz, tiny=args.dry_run)
        cmd = [args.spyx_python, str(script), name, npz, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        # the worker defaults JAX to the CPU; on a GPU run it must take the GPU (or fail, saying so)
        env = {**os.environ, "JAX_PLATFORMS": "cuda" if args.device.startswith("cuda") else "cpu"}
        res = _run(cmd + (["--tiny"] if args.dry_run else []), timeout_s, env)
    if "times_ms" in res:
        res.setdefault("median_ms", statistics.median(res["times_ms"]))
        res["lib"] = "spyx"
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="torch device for the torch libraries (cuda, cuda:1, cpu)")
    ap.add_argument("--libs", default=",".join(LIBS), help=f"comma-separated, from {','.join(ALL_LIBS)}")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dry-run", action="store_true", help="tiny workloads (T=4, B=2), to check the logic anywhere")
    ap.add_argument("--budget-s", type=float, default=420.0, help="wall-clock budget of all runs together")
    ap.add_argument("--run-timeout-s", type=float, default=120.0, help="limit for one (library, workload) run")
    ap.add_argument("--spyx-python", default=os.environ.get("SPYX_GPU_PYTHON", ""))
    ap.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    libs = [s for s in args.libs.split(",") if s]
    wls = [s for s in args.workloads.split(",") if s]
    bad = [s for s in libs if s not in ALL_LIBS] + [s for s in wls if s not in WORKLOADS]
    if bad or args.steps < 1 or args.warmup < 0:
        ap.error(f"--libs from {ALL_LIBS}, --workloads from {WORKLOADS}, --steps >= 1, --warmup >= 0 "
                 f"(unknown: {bad})")
    if args.worker:
        res = worker(args.worker[0], args.worker[1], args.device, args.steps, args.warmup, args.dry_run)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    sys.path.insert(0, str(ROOT / "src"))
    from spikeflow import provenance
    from spikeflow.atomic import atomic_write_text

    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for name in wls:
        for lib in libs:
            left = args.budget_s - (time.perf_counter() - start)
            if left < 10:
                res = dict(error=f"skipped: the {args.budget_s:.0f} s budget was spent")
            elif lib == "spyx":
                res = _spyx(name, args, min(left, args.run_timeout_s))
            else:
                cmd = [sys.executable, __file__, "--worker", lib, name, "--device", args.device, "--steps",
                       str(args.steps), "--warmup", str(args.warmup)] + (["--dry-run"] if args.dry_run else [])
                res = _run(cmd, min(left, args.run_timeout_s), env)
            res.setdefault("lib", lib)
            res.setdefault("workload", name)
            runs.append(res)
            shown = f"{res['median_ms']:.2f} ms/step" if "median_ms" in res else res.get("error")
            print(f"{name} {lib}: {shown}", flush=True)
    report = dict(
        command="python " + " ".join([os.path.relpath(__file__, ROOT), *(argv if argv is not None else sys.argv[1:])]),
        commit=provenance.commit(), machine=provenance.machine(), python=platform.python_version(),
        device=args.device, dry_run=args.dry_run, steps=args.steps, warmup=args.warmup,
        wall_s=time.perf_counter() - start, runs=runs,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
