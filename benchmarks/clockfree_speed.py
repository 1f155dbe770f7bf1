"""Clock-free engine throughput: the compiled engine against the Python reference, on N-MNIST recordings.

    PYTHONPATH=src python benchmarks/clockfree_speed.py [--model runs/runtime/nmnist5k.nir] [--recordings 64]
        [--repeats 5] [--json benchmarks/results/clockfree-speed-nmnist5k.json]

The model is the runtime's demo model (``benchmarks/runtime_demo_model.py`` writes it: AvgPool2d(2) ->
Linear(578, 256) -> LIF -> Linear(256, 10) -> LI, trained on nmnist5k). The input is the first
``--recordings`` recordings of nmnist5k's test split, as recorded (µs timestamps, index ``(p H + y) W + x``).
Input events per second of wall time and per CPU second (what the work costs when other processes share
the cores: the CPU time of this process, all its threads), median of ``--repeats`` runs, for:

- the Python engine (``impl="python"``), one sample at a time (its first ``--python-recordings``);
- the numba engine, one sample at a time (``run_events``);
- the numba engine, all recordings at once (``run_events_batch``: one queue per sample, numba threads
  over samples), with 1 thread and with every core.

Before timing, every recording the Python engine runs is checked against the numba engine: the same
spikes of every node (count, neuron, order) at the same times to 1 ns. The other processes' CPU load
during each measurement is recorded (as benchmarks/peers.py does); quote medians of side-by-side runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numba
import numpy as np

from spikeflow.atomic import atomic_write_text
from spikeflow.data.datasets import load_dataset
from spikeflow.ir import read_graph
from spikeflow.provenance import commit, machine
from spikeflow.runtime.clockfree import ClockFreeEngine


def cpu_busy_jiffies() -> int:
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    return sum(vals[:8]) - vals[3] - (vals[4] if len(vals) > 4 else 0)


def timed(fn, repeats: int):
    """Median wall and CPU seconds of ``fn()`` and the other processes' share of the CPUs meanwhile."""
    hz = os.sysconf("SC_CLK_TCK")
    walls, cpus, loads = [], [], []
    for _ in range(repeats):
        b0, c0, t0 = cpu_busy_jiffies(), time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        own = time.process_time() - c0
        busy = (cpu_busy_jiffies() - b0) / hz
        walls.append(wall)
        cpus.append(own)
        loads.append(max(0.0, (busy - own) / (wall * os.cpu_count())))
    return float(np.median(walls)), float(np.median(cpus)), float(np.median(loads)), walls


def recordings(n: int):
    split = load_dataset("nmnist5k", "test")
    out = []
    for i in range(n):
        ev = split.events(i)
        idx = (ev["p"].astype(np.int64) * 34 + ev["y"].astype(np.int64)) * 34 + ev["x"].astype(np.int64)
        t = ev["t"].astype(np.int64)
        order = np.argsort(t, kind="stable")
        out.append((t[order] * 1e-6, idx[order]))
    return out


def same_spikes(a: dict, b: dict, tol: float = 1e-9) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0].size == b[k][0].size and np.array_equal(a[k][1], b[k][1])
        and bool(np.all(np.abs(a[k][0] - b[k][0]) <= tol)) for k in a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/runtime/nmnist5k.nir")
    ap.add_argument("--recordings", type=int, default=64)
    ap.add_argument("--python-recordings", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"clockfree_speed: no model at {args.model}; run benchmarks/runtime_demo_model.py --out {args.model}")
    graph = read_graph(args.model)
    recs = recordings(args.recordings)
    until = 0.3
    n_ev = sum(t.size for t, _ in recs)
    n_py = args.python_recordings
    py_ev = sum(t.size for t, _ in recs[:n_py])
    nb = ClockFreeEngine(graph)
    py = ClockFreeEngine(graph, impl="python")
    print(f"model {args.model}: {args.recordings} nmnist5k test recordings, {n_ev} input events "
          f"({n_ev / len(recs):.0f} per recording); load average {os.getloadavg()[0]:.2f}", flush=True)

    # equality first (this also compiles the numba code)
    t0 = time.perf_counter()
    nb.run_events(*recs[0], until=until)
    nb.run_events_batch(recs[:2], until=until)
    compile_s = time.perf_counter() - t0
    n_spikes, equal = 0, True
    for rec, b in zip(recs[:n_py], nb.run_events_batch(recs[:n_py], until=until)):
        ref = py.run_events(*rec, until=until)
        one = nb.run_events(*rec, until=until)
        equal &= same_spikes(ref, one) and same_spikes(ref, b)
        n_spikes += sum(v[0].size for v in ref.values())
    print(f"numba == python on {n_py} recordings ({n_spikes} spikes): {equal}; first calls {compile_s:.1f} s")

    def py_run():
        for rec in recs[:n_py]:
            py.run_events(*rec, until=until)

    def nb_single():
        for rec in recs:
            nb.run_events(*rec, until=until)

    def nb_batch():
        nb.run_events_batch(recs, until=until)

    rows = {}

    def row(n, wall, cpu, load, walls):
        return {"events_per_second": n / wall, "events_per_cpu_second": n / cpu, "events": n, "median_wall_s": wall,
                "median_cpu_s": cpu, "walls_s": walls, "other_load": load}

    rows["python_single"] = row(py_ev, *timed(py_run, max(1, args.repeats // 2)))
    rows["numba_single"] = row(n_ev, *timed(nb_single, args.repeats))
    cores = os.cpu_count()
    for threads in sorted({1, cores}):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        rows[f"numba_batch_{threads}_threads"] = row(n_ev, *timed(nb_batch, args.repeats))
        rows[f"numba_batch_{threads}_threads"]["threads"] = numba.get_num_threads()
    base = rows["python_single"]
    for name, r in rows.items():
        r["speedup_vs_python"] = r["events_per_second"] / base["events_per_second"]
        print(f"  {name:22s} {r['events_per_second']:10.4g} input events/s of wall time, "
              f"{r['events_per_cpu_second']:10.4g} per CPU second ({r['speedup_vs_python']:6.1f}x python; "
              f"other-process load {r['other_load']:.0%})")
    if args.json:
        result = {"command": "PYTHONPATH=src python " + " ".join([sys.argv[0]] + sys.argv[1:]), "commit": commit(),
                  "machine": machine(), "model": args.model, "recordings": args.recordings,
                  "python_recordings": n_py, "until_s": until, "numba_equals_python": bool(equal),
                  "spikes_compared": n_spikes, "first_call_s": compile_s, "results": rows}
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
