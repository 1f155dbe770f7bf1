"""Runtime benchmark: event-driven vs dense engine, and streaming throughput/latency.

    PYTHONPATH=src python benchmarks/runtime.py [--model runs/runtime/nmnist5k.nir] [--repeats 5]

1. W1-size network (700 -> 256 -> 20 LIF, dt 1 ms, T = 100) at input activity 1 %, 5 %, 20 %:
   wall time per sample (median of repeats, batch 1, one torch thread) of the dense engine
   (torch float32, the clock-driven path) and of the event engine (numba, float64); speedup;
   synaptic operations (event: weight additions actually done; dense: every MAC).
2. Stream throughput (events/s) and latency per pushed chunk on the demo model
   (the trained nmnist5k model when --model exists, else a random model of the same shape)
   over synthetic N-MNIST-like recordings.
Timings depend on machine load: the script prints the load average; quote medians.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import nir
import numpy as np
import torch

from spikeflow.atomic import atomic_write_text
from spikeflow.runtime import DenseEngine, EventEngine
from spikeflow.runtime.stream import Stream


def w1_graph(seed=0, n_in=700, n_h=256, n_out=20):
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 20e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))

    # weights scaled so hidden neurons fire at a few % at 5 % input activity
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([n_in])),
               "fc1": nir.Affine(rng.normal(0.02, 0.8, (n_h, n_in)), np.zeros(n_h)), "lif1": lif(n_h),
               "fc2": nir.Affine(rng.normal(0.05, 2.0, (n_out, n_h)), np.zeros(n_out)), "lif2": lif(n_out),
               "output": nir.Output(np.array([n_out]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
        metadata={"dt": 1e-3}, type_check=False)


def _median_time(fn, repeats):
    """Median wall and CPU seconds (one thread: CPU time is what the work costs, even under load)."""
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(times)), float(np.median(cpu)), out


def bench_w1(repeats: int, T: int = 100):
    g = w1_graph()
    dense = DenseEngine(g, dtype=torch.float32)
    event = EventEngine(g)
    rng = np.random.default_rng(1)
    rows = []
    event.run(np.zeros((2, 1, 700)))  # compile numba
    for act in (0.01, 0.05, 0.20):
        x = (rng.random((T, 1, 700)) < act).astype(np.float32)
        td, cd, rd = _median_time(lambda x=x: dense.run(x), repeats)
        te, ce, re_ = _median_time(lambda x=x: event.run(x), repeats)
        xb = np.repeat(x, 32, axis=1)
        _, cdb, _ = _median_time(lambda xb=xb: dense.run(xb), max(1, repeats // 2))
        rows.append({
            "input_activity": act, "dense_ms": td * 1e3, "event_ms": te * 1e3, "speedup": td / te,
            "dense_cpu_ms": cd * 1e3, "event_cpu_ms": ce * 1e3, "speedup_cpu": cd / ce,
            "dense_batch32_cpu_ms_per_sample": cdb / 32 * 1e3,
            "synaptic_ops_event": re_.total("synaptic_ops"), "synaptic_ops_dense": rd.total("synaptic_ops"),
            "neuron_updates_event": re_.total("neuron_updates"), "neuron_updates_dense": rd.total("neuron_updates"),
            "hidden_spikes": re_.counters["spikes"]["lif1"],
        })
    return rows


def demo_model(path):
    if path and os.path.exists(path):
        return path, "trained"
    rng = np.random.default_rng(0)
    c, h = 8, 17
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, 34, 34])),
               "pool0": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
               "conv": nir.Conv2d(input_shape=(17, 17), weight=rng.normal(0, 0.5, (c, 2, 3, 3)), stride=1, padding=1,
                                  dilation=1, groups=1, bias=np.zeros(c)),
               "lif1": nir.LIF(tau=np.full((c, h, h), 0.02), r=np.ones((c, h, h)), v_leak=np.zeros((c, h, h)),
                               v_threshold=np.ones((c, h, h))),
               "flat": nir.Flatten(input_type={"input": np.array([c, h, h])}, start_dim=0, end_dim=-1),
               "fc": nir.Affine(rng.normal(0, 0.1, (10, c * h * h)), np.zeros(10)),
               "li": nir.LI(tau=np.full(10, 0.02), r=np.ones(10), v_leak=np.zeros(10)),
               "output": nir.Output(np.array([10]))},
        edges=[("input", "pool0"), ("pool0", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "fc"),
               ("fc", "li"), ("li", "output")], metadata={"dt": 10e-3}, type_check=False)
    return g, "random (no trained model found)"


def synthetic_recordings(n, rng, per_rec=4000, dur=300_000):
    """Saccade-like bursts: events concentrated on a random blob, 34x34x2, over 300 ms."""
    recs = []
    for _ in range(n):
        cx, cy = rng.uniform(8, 26, 2)
        x = np.clip(rng.normal(cx, 5, per_rec), 0, 33).astype(np.int16)
        y = np.clip(rng.normal(cy, 5, per_rec), 0, 33).astype(np.int16)
        ev = np.zeros(per_rec, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
        ev["x"], ev["y"], ev["p"] = x, y, rng.integers(0, 2, per_rec)
        ev["t"] = np.sort(rng.integers(0, dur, per_rec))
        recs.append(ev)
    return recs


def bench_stream(model_path, n_rec: int, chunk_us: int = 10_000):
    model, kind = demo_model(model_path)
    rng = np.random.default_rng(2)
    recs = synthetic_recordings(n_rec, rng)
    out = {"model": kind}
    for engine in ("event", "dense"):
        s = Stream(model, engine=engine)
        list(s.run(recs[0][:200], chunk_us=chunk_us))  # warm-up (numba compile)
        lat, n_ev, cpu = [], 0, 0.0
        for rec in recs:
            s.reset()
            lo = 0
            for b in range(chunk_us, 300_000 + 1, chunk_us):
                hi = int(np.searchsorted(rec["t"], b, "left"))
                c = time.process_time()
                t = time.perf_counter()
                s.push(rec[lo:hi])
                s.advance_to(b)
                lat.append(time.perf_counter() - t)
                cpu += time.process_time() - c
                n_ev += hi - lo
                lo = hi
        lat = np.array(lat)
        out[engine] = {"events_per_second": n_ev / lat.sum(), "chunk_us": chunk_us,
                       "mean_latency_per_chunk_ms": lat.mean() * 1e3,
                       "p99_latency_per_chunk_ms": float(np.quantile(lat, 0.99) * 1e3),
                       "mean_latency_per_event_us": lat.sum() / n_ev * 1e6,
                       "cpu_per_event_us": cpu / n_ev * 1e6, "events": n_ev}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="runs/runtime/nmnist5k.nir")
    ap.add_argument("--recordings", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine; > 1 means other work competes)")
    rows = bench_w1(args.repeats)
    print("W1 700->256->20 LIF, T=100, batch 1, median ms per sample: wall (CPU)")
    print(f"{'activity':>8} {'dense':>17} {'event':>17} {'speedup':>14} {'dense b32 cpu/sample':>21} "
          f"{'synops event':>13} {'synops dense':>13} {'updates ev/dense':>17}")
    for r in rows:
        print(f"{r['input_activity'] * 100:7.0f}% {r['dense_ms']:8.2f} ({r['dense_cpu_ms']:6.2f}) "
              f"{r['event_ms']:8.2f} ({r['event_cpu_ms']:6.2f}) {r['speedup']:5.1f}x ({r['speedup_cpu']:4.1f}x) "
              f"{r['dense_batch32_cpu_ms_per_sample']:21.3f} {r['synaptic_ops_event']:13d} "
              f"{r['synaptic_ops_dense']:13d} {r['neuron_updates_event']:8d}/{r['neuron_updates_dense']:d}")
    st = bench_stream(args.model, args.recordings)
    print(f"stream on the demo model ({st['model']}), {args.recordings} synthetic 300 ms recordings, 10 ms chunks:")
    for engine in ("event", "dense"):
        s = st[engine]
        print(f"  {engine:6s}: {s['events_per_second']:.3g} events/s; latency per chunk mean "
              f"{s['mean_latency_per_chunk_ms']:.3f} ms (p99 {s['p99_latency_per_chunk_ms']:.3f}); per event "
              f"{s['mean_latency_per_event_us']:.2f} µs (CPU {s['cpu_per_event_us']:.2f} µs)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"w1": rows, "stream": st}, indent=2))


if __name__ == "__main__":
    main()
