"""Stream throughput and latency per 1 ms chunk on a dense, camera-like event stream.

    PYTHONPATH=src python benchmarks/stream_speed.py [--model runs/runtime/nmnist5k.nir] [--repeats 5]

The model is the runtime demo model (``benchmarks/runtime_demo_model.py``: nmnist5k, 2x34x34 input,
AvgPool2d(2) -> Linear(578, 256) -> LIF -> Linear(256, 10) -> LI, dt 10 ms). The input streams are
(1) ``replay``: the nmnist5k test recordings end to end, their timestamps compressed so that the
stream has the stated rate, and (2) ``poisson``: events at the stated rate with exponential gaps,
each at a uniformly drawn pixel and polarity. Each stream is cut at 1 ms boundaries and pushed chunk
by chunk into ``Stream(engine="event")``; the latency of a chunk is the wall time of its ``push()``;
throughput is events / summed push time (and / summed CPU time of the pushes, which other processes'
time slices do not inflate). ``--reference`` also times Stream's reference path
(per-step binning of the pending events, then ``EventEngine.advance_output``) side by side, its runs
interleaved with the fast path's.
Other processes' CPU use during each run is recorded (``other_load``: fraction of all cores).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np

from spikeflow.atomic import atomic_write_text
from spikeflow.provenance import commit, machine
from spikeflow.runtime.stream import Stream

EV = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]


def cpu_busy_jiffies() -> int:
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    return sum(vals[:8]) - vals[3] - (vals[4] if len(vals) > 4 else 0)


@functools.lru_cache(maxsize=1)
def _nmnist_test():
    from spikeflow.data.datasets import load_dataset

    return load_dataset("nmnist5k", "test")


def replay_stream(rate: float, duration_us: int) -> np.ndarray:
    """nmnist5k test recordings end to end (cycled), timestamps scaled to ``rate`` events/s."""
    split = _nmnist_test()
    parts, n_need, n, k = [], int(rate * duration_us * 1e-6), 0, 0
    span = int(split.duration_us)
    while n < n_need:
        a = split.events(k % len(split)).array.copy()
        a["t"] += k * span
        parts.append(a)
        n += len(a)
        k += 1
    ev = np.concatenate(parts)[:n_need]
    scale = (n / (k * span)) / (rate * 1e-6)  # stream time per recorded µs
    ev["t"] = np.floor(ev["t"] * scale).astype(np.int64)
    return ev[ev["t"] < duration_us]


def poisson_stream(rate: float, duration_us: int, rng) -> np.ndarray:
    n = rng.poisson(rate * duration_us * 1e-6)
    ev = np.zeros(n, dtype=EV)
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
    return ev


def time_stream(s: Stream, ev: np.ndarray, chunk_us: int):
    cuts = np.searchsorted(ev["t"], np.arange(chunk_us, int(ev["t"][-1]) + chunk_us + 1, chunk_us))
    chunks, lo = [], 0
    for hi in cuts:
        chunks.append(ev[lo:hi])
        lo = hi
    s.reset()
    lat, cpu = np.empty(len(chunks)), np.empty(len(chunks))
    clock, cpu_clock = time.perf_counter, time.thread_time
    for i, c in enumerate(chunks):
        c0 = cpu_clock()
        t0 = clock()
        s.push(c)
        lat[i] = clock() - t0
        cpu[i] = cpu_clock() - c0
    return lat, cpu, s.prediction


def measure(model, ev, chunk_us, repeats, paths, dt=None):
    """Time each path (True: the chunk kernel, False: the reference route), their runs interleaved so
    that both see the same machine load."""
    streams = {}
    for fast in paths:
        s = streams[fast] = Stream(model, engine="event", dt=dt)
        s._fast = fast
        time_stream(s, ev[:2000], chunk_us)  # warm-up: numba compile / cache load
    acc = {fast: {"runs": [], "cpu_runs": [], "lats": [], "cpus": [], "loads": [], "preds": []} for fast in paths}
    for _ in range(repeats):
        for fast in paths:
            a = acc[fast]
            j0, c0, w0 = cpu_busy_jiffies(), time.process_time(), time.perf_counter()
            lat, cpu, pred = time_stream(streams[fast], ev, chunk_us)
            wall, own = time.perf_counter() - w0, time.process_time() - c0
            other = (cpu_busy_jiffies() - j0) / os.sysconf("SC_CLK_TCK") - own
            a["loads"].append(max(0.0, other / (wall * os.cpu_count())))
            a["runs"].append(len(ev) / lat.sum())
            a["cpu_runs"].append(len(ev) / cpu.sum())
            a["lats"].append(lat)
            a["cpus"].append(cpu)
            a["preds"].append((pred.label, pred.probabilities.tobytes(), pred.t_us))

    def pct(v):
        return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "max": float(v.max()),
                "mean": float(v.mean())}

    out = {}
    for fast, a in acc.items():
        preds = a["preds"]
        assert all(p == preds[0] for p in preds), "repeated runs must give the same answer"
        lat, cpu = np.concatenate(a["lats"]) * 1e3, np.concatenate(a["cpus"]) * 1e3
        out[fast] = ({"events_per_second_median": float(np.median(a["runs"])), "events_per_second_runs": a["runs"],
                      "events_per_cpu_second_median": float(np.median(a["cpu_runs"])),
                      "latency_per_chunk_ms": pct(lat), "cpu_per_chunk_ms": pct(cpu),
                      "chunks_per_run": int(len(lat) // repeats), "other_load": a["loads"],
                      "final": {"label": int(preds[0][0]), "t_us": int(preds[0][2])}}, preds[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/runtime/nmnist5k.nir")
    ap.add_argument("--rates", default="1e5,1e6,5e6,1e7", help="input rates, events/s")
    ap.add_argument("--sources", default="replay,poisson")
    ap.add_argument("--duration-ms", type=int, default=200, help="stream time per run")
    ap.add_argument("--chunk-us", type=int, default=1000)
    ap.add_argument("--dts", default="model", help="step lengths (s) to run the model at; 'model': its own")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reference", action="store_true", help="also time the reference (pre-fast-path) route")
    ap.add_argument("--json", default="benchmarks/results/stream-speed.json")
    args = ap.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"{args.model} not found: train it with benchmarks/runtime_demo_model.py --out {args.model}")
    rates = [float(r) for r in args.rates.split(",")]
    rng = np.random.default_rng(0)
    dur = args.duration_ms * 1000
    rows = []
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for dt in args.dts.split(","):
        dt = None if dt == "model" else float(dt)
        for source in args.sources.split(","):
            for rate in rates:
                ev = replay_stream(rate, dur) if source == "replay" else poisson_stream(rate, dur, rng)
                row = {"source": source, "rate_events_per_second": rate, "events": len(ev),
                       "stream_ms": args.duration_ms, "dt": dt or Stream(args.model).dt}
                res = measure(args.model, ev, args.chunk_us, args.repeats, (True, False) if args.reference else (True,),
                              dt)
                row["fast"], ans = res[True]
                if args.reference:
                    row["reference"], ref = res[False]
                    row["same_answer_as_reference"] = ans == ref
                rows.append(row)
                for path in ("fast", "reference"):
                    if path in row:
                        r = row[path]
                        q, c = r["latency_per_chunk_ms"], r["cpu_per_chunk_ms"]
                        print(f"dt {row['dt'] * 1e3:g} ms {source:7s} {rate:8.0e} ev/s {path:9s}: "
                              f"{r['events_per_second_median']:9.3g} events/s (per CPU s "
                              f"{r['events_per_cpu_second_median']:.3g}); latency per {args.chunk_us} µs chunk "
                              f"p50 {q['p50']:.3f} ms, p99 {q['p99']:.3f} ms, max {q['max']:.3f} ms (CPU p50 "
                              f"{c['p50']:.3f}, p99 {c['p99']:.3f}); other load {np.median(r['other_load']):.0%}",
                              flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    out = {"command": "python benchmarks/stream_speed.py " + " ".join(sys.argv[1:]), "commit": commit(),
           "machine": machine(), "model": args.model, "chunk_us": args.chunk_us, "repeats": args.repeats,
           "results": rows}
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
