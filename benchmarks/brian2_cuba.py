"""Brian2's CUBA network (run inside benchmarks/.venv-brian2, Python >= 3.13).

The COBA/CUBA benchmark of Vogels & Abbott (2005), J. Neurosci. 25(46), as Benchmark 2 in
Brette et al. (2007), J. Comput. Neurosci. 23(3), and in Brian2's ``examples/CUBA.py``:
taum 20 ms, taue 5 ms, taui 10 ms, Vt -50 mV, Vr -60 mV, El -49 mV, refractory 5 ms,
we = 60*0.27/10 mV, wi = -20*4.5/10 mV, p = 2 % (80/N above 4,000 neurons), 80 % excitatory.

Usage: python brian2_cuba.py --mode runtime|standalone --neurons N --seeds 1 2 ... --out result.npz
Writes per seed: build time, loop time, spike indices and times (seconds).
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def build_network(b2, n, p):
    ms, mV = b2.ms, b2.mV
    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    vt, vr, el = -50 * mV, -60 * mV, -49 * mV
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    ns = {"taum": taum, "taue": taue, "taui": taui, "Vt": vt, "Vr": vr, "El": el}
    group = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                           method="exact", namespace=ns, name="cuba")
    group.v = "Vr + rand() * (Vt - Vr)"
    n_exc = n * 4 // 5
    we = (60 * 0.27 / 10) * mV
    wi = (-20 * 4.5 / 10) * mV
    ce = b2.Synapses(group, group, on_pre="ge += we", namespace={"we": we}, name="ce")
    ci = b2.Synapses(group, group, on_pre="gi += wi", namespace={"wi": wi}, name="ci")
    ce.connect(f"i<{n_exc}", p=p)
    ci.connect(f"i>={n_exc}", p=p)
    mon = b2.SpikeMonitor(group, name="spikes")
    return [group, ce, ci, mon], mon


def run_runtime(n, p, seed):
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "cython"
    b2.defaultclock.dt = 0.1 * b2.ms
    b2.seed(seed)
    t0 = time.perf_counter()
    objs, mon = build_network(b2, n, p)
    net = b2.Network(*objs, name="net")
    net.run(0 * b2.ms)  # code generation, compilation (cached), synapse creation
    t1 = time.perf_counter()
    net.run(1 * b2.second)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, np.asarray(mon.i[:]), np.asarray(mon.t[:] / b2.second)


def run_standalone(n, p, seed, build_dir, threads):
    import brian2 as b2

    b2.set_device("cpp_standalone", build_on_run=False)
    b2.device.reinit()
    b2.device.activate(build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = threads
    b2.defaultclock.dt = 0.1 * b2.ms
    b2.seed(seed)
    objs, mon = build_network(b2, n, p)
    net = b2.Network(*objs, name="net")
    net.run(1 * b2.second)
    t0 = time.perf_counter()
    b2.device.build(directory=build_dir, compile=True, run=True, clean=False)
    total = time.perf_counter() - t0
    loop = float(b2.device._last_run_time)
    return total - loop, loop, np.asarray(mon.i[:]), np.asarray(mon.t[:] / b2.second)


def run_standalone_realisations(n, p, count, build_dir, threads):
    """One build, ``count`` runs of the binary; without ``seed()`` each run draws a fresh
    random seed, i.e. a new network realisation (connectivity and initial V)."""
    import brian2 as b2

    b2.set_device("cpp_standalone", build_on_run=False)
    b2.device.reinit()
    b2.device.activate(build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = threads
    b2.defaultclock.dt = 0.1 * b2.ms
    objs, mon = build_network(b2, n, p)
    net = b2.Network(*objs)
    net.run(1 * b2.second)
    b2.device.build(directory=build_dir, compile=True, run=False, clean=False)
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        b2.device.run(directory=build_dir, with_output=False)
        total = time.perf_counter() - t0
        loop = float(b2.device._last_run_time)
        out.append((total - loop, loop, np.asarray(mon.i[:]), np.asarray(mon.t[:] / b2.second)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["runtime", "standalone", "standalone-realisations"], required=True)
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=0, help="OpenMP threads for standalone (0: single thread)")
    ap.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(), "spikeflow_brian2_cuba"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    p = 0.02 if args.neurons <= 4000 else 80.0 / args.neurons
    rows = {}
    if args.mode == "standalone-realisations":  # seeds only count the realisations here
        res = run_standalone_realisations(args.neurons, p, len(args.seeds), f"{args.build_dir}_r{args.neurons}",
                                          args.threads)
        for seed, (build, loop, i, t) in zip(args.seeds, res):
            rows.update({f"build_{seed}": build, f"loop_{seed}": loop, f"i_{seed}": i.astype(np.int32),
                         f"t_{seed}": t})
            print(f"brian2 standalone realisation {seed}: loop {loop:.3f} s rate {len(i) / args.neurons:.3f} Hz",
                  flush=True)
    for seed in ([] if args.mode == "standalone-realisations" else args.seeds):
        if args.mode == "runtime":
            build, loop, i, t = run_runtime(args.neurons, p, seed)
        else:
            d = f"{args.build_dir}_{args.neurons}"
            build, loop, i, t = run_standalone(args.neurons, p, seed, d, args.threads)
        rows[f"build_{seed}"] = build
        rows[f"loop_{seed}"] = loop
        rows[f"i_{seed}"] = i.astype(np.int32)
        rows[f"t_{seed}"] = t
        print(f"brian2 {args.mode} n={args.neurons} seed={seed}: build {build:.3f} s loop {loop:.3f} s "
              f"rate {len(i) / args.neurons:.3f} Hz", flush=True)
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, seeds=np.asarray(args.seeds), neurons=args.neurons, mode=args.mode, **rows)
    os.replace(tmp, args.out)
    if args.mode == "standalone" and os.environ.get("SPIKEFLOW_BRIAN2_CLEAN"):
        shutil.rmtree(f"{args.build_dir}_{args.neurons}", ignore_errors=True)


if __name__ == "__main__":
    main()
