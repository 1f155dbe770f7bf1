"""A Speck-sized DVS conv net (2 x 128 x 128 input) compiled for Speck and Loihi and run as integers.

One command (from the repository root):
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/hw_conv.py [--T 20] [--batch-size 2]

The network (IF neurons, as on Speck's DYNAP-CNN cores; seeded random weights):
    conv 2->8 k3 s2 p1 (128 -> 64) | conv 8->16 k3 s2 p1 (-> 32) | conv 16->32 k3 s2 p1 (-> 16)
    | sumpool 2 (-> 8) + conv 32->10 k8 (the readout, a full-size conv as Speck requires: -> 10 x 1 x 1)
Every convolution is stored as its kernel (``spikeflow.hardware.synapse.ConvSynapse``); the pooling
is folded into the readout kernel. The input is a synthetic DVS recording: a bright square moving
across a 128 x 128 sensor through ``spikeflow.data``'s DVS emulator, binned into T steps. Loihi
(computed as Lava's Loihi models) resets to 0 and takes binary spikes: its neurons reset to 0 and its
input is each bin's events clipped to one spike (Speck: subtract reset, event counts).

Measures per chip: compile time, run time (integer run, and the float reference), peak resident
memory of each stage (``ru_maxrss``, in a fresh process per stage so earlier stages do not mask it),
the peak of Python/numpy allocations during compile and integer run (``tracemalloc``; torch's own
buffers are not traced), the bytes of the stored synapses and what the dense matrices would take. Writes
``benchmarks/results/hw_conv.json`` (command, commit, machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE, DT = 128, 1e-3


def speck_graph(seed: int = 0, channels=(8, 16, 32)):
    """The 2 x 128 x 128 Speck-like conv net as a NIR graph (IF neurons, threshold 1, one unit per step)."""
    import nir

    rng = np.random.default_rng(seed)

    def conv(c_in, c_out, hw, k, s, p, mean, sd):
        return nir.Conv2d(input_shape=(hw, hw), weight=rng.normal(mean, sd, (c_out, c_in, k, k)), stride=s,
                          padding=p, dilation=1, groups=1, bias=np.zeros(c_out))

    def if_(shape):
        return nir.IF(r=np.full(shape, 1.0 / DT), v_threshold=np.ones(shape))

    a, b, c = channels
    nodes = [nir.Input(np.array([2, SIZE, SIZE])),
             conv(2, a, 128, 3, 2, 1, 0.35, 0.3), if_((a, 64, 64)),
             conv(a, b, 64, 3, 2, 1, 0.96 / a, 1.2 / a), if_((b, 32, 32)),
             conv(b, c, 32, 3, 2, 1, 0.96 / b, 1.6 / b), if_((c, 16, 16)),
             nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             conv(c, 10, 8, 8, 1, 0, 0.0, 1.6 / c), if_((10, 1, 1))]
    return nir.NIRGraph.from_list(*nodes, nir.Output(np.array([10, 1, 1])), type_check=False)


def dvs_input(T: int, batch: int, seed: int = 0) -> np.ndarray:
    """``[T, B, 2 * 128 * 128]`` event counts: a bright square crossing the sensor, through the DVS emulator."""
    from spikeflow.data.dvs import DVSEmulator

    xs = []
    for b in range(batch):
        n = 4 * T
        frames = np.full((n, SIZE, SIZE), 0.1, dtype=np.float32)
        for i in range(n):
            x0 = 10 + (i * 90) // n + 7 * b
            y0 = 30 + (i * 40) // n
            frames[i, y0:y0 + 40, x0:x0 + 30] = 0.9
        ev = DVSEmulator(seed=seed, shot_noise_rate_hz=0.5).emulate(frames, fps=1000.0, noise_seed=seed + b)
        xs.append(ev.to_frames(n_bins=T).reshape(T, -1))
    return np.stack(xs, axis=1).astype(np.float64)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def stage(chip: str, channels, what: str, T: int, batch: int) -> dict:
    """One measurement in this process: ``what`` is compile | run | float."""
    import torch

    from spikeflow.hardware import compile_network, float_run, run_integer

    torch.set_num_threads(1)
    graph = speck_graph(channels=channels)
    x = dvs_input(T, batch) if what != "compile" else None
    loihi = chip == "loihi"
    if loihi and x is not None:
        x = np.minimum(x, 1.0)  # binary spikes
    base = peak_rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    compiled = compile_network(graph, chip, dt=DT, reset="to_reset" if loihi else "subtract")
    out = {"compile_s": time.perf_counter() - t0, "compile_traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}
    tracemalloc.stop()
    if what == "compile":
        out["peak_rss_mb"] = peak_rss_mb()
        out["rss_before_mb"] = base
        out["cores_used"] = compiled.cores_used
        out["layers"] = [{"layer": q.name, "neurons": q.n_out, "inputs": q.n_in, "synapse": type(q.syn).__name__,
                          "stored_bytes": q.syn.nbytes, "dense_bytes_float64": 8 * q.n_out * q.n_in,
                          "fan_in_max": int(q.syn.fan_in().max()), "synapses": q.syn.nnz(),
                          "cores": int(len(lm.cores))}
                         for q, lm in zip(compiled.layers, compiled.mapping.layers)]
        return out
    base = peak_rss_mb()
    t0 = time.perf_counter()
    if what == "run":
        tracemalloc.start()
        res = run_integer(compiled, x)
        out["run_s"] = time.perf_counter() - t0
        out["run_traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out["spikes_per_layer"] = [int(s.sum()) for s in res.layer_spikes]
        out["synops"] = int(res.synops.sum())
        out["hops"] = int(res.hops.sum())
    else:
        _, rec = float_run(compiled.float_net, x)
        out["run_s"] = time.perf_counter() - t0
        out["spikes_per_layer"] = [int(s.sum()) for s in rec]
    out["input_events"] = int(x.sum())
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_before_mb"] = base
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        chip, ch, what = args.stage.split(":")
        print(json.dumps(stage(chip, tuple(int(c) for c in ch.split(",")), what, args.T, args.batch_size)))
        return
    cmd = " ".join(["python", "benchmarks/hw_conv.py"] + sys.argv[1:])
    # Speck takes the full net; Loihi's 128 cores do not hold it (the error is recorded), half the channels fit.
    configs = [("speck", "8,16,32"), ("loihi", "8,16,32"), ("loihi", "4,8,16")]
    results = []
    for chip, ch in configs:
        entry = {"chip": chip, "channels": [int(c) for c in ch.split(",")]}
        results.append(entry)
        for what in ("compile", "run", "float"):
            proc = subprocess.run([sys.executable, __file__, "--stage", f"{chip}:{ch}:{what}", "--T", str(args.T),
                                   "--batch-size", str(args.batch_size)], capture_output=True, text=True)
            if proc.returncode != 0:
                entry["error"] = proc.stderr.strip().splitlines()[-1]
                print(f"{chip} ({ch}) {what}: {entry['error']}")
                break
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            entry[what] = r
            extra = (f", run {r['run_s']:.2f} s, spikes per layer {r['spikes_per_layer']}" if "run_s" in r
                     else f", {r['cores_used']} cores")
            print(f"{chip:6s} ({ch}) {what:8s} compile {r['compile_s']:.2f} s{extra}, peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB (before: {r['rss_before_mb']:.0f} MB)")
        for L in entry.get("compile", {}).get("layers", []):
            print(f"    {L['layer']:5s} {L['neurons']:6d} neurons <- {L['inputs']:6d} inputs: {L['synapse']} "
                  f"{L['stored_bytes']:7d} B stored (dense: {L['dense_bytes_float64'] / 1e6:8.1f} MB), "
                  f"fan-in {L['fan_in_max']}, {L['cores']} cores")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    doc = {"command": f"OMP_NUM_THREADS=1 PYTHONPATH=src {cmd}", "commit": commit,
           "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
                      f"{platform.system()} {platform.release()}, load average {os.getloadavg()[0]:.1f}",
           "T": args.T, "batch_size": args.batch_size, "dt": DT,
           "network": "2x128x128 -> conv 2-a k3 s2 p1 -> IF -> conv a-b k3 s2 p1 -> IF -> conv b-c k3 s2 p1 -> IF "
                      "-> sumpool 2 + conv c-10 k8 -> IF; channels (a, b, c)", "runs": results}
    path = os.path.join(HERE, "results", "hw_conv.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
