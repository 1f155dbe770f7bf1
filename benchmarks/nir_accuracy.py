"""NIR import: accuracy against NIR's ODE (exact vs Euler discretization) and file round-trip times.

Run: PYTHONPATH=src python benchmarks/nir_accuracy.py   (about 30 s)

Prints, for LIF, LI and CubaLIF nodes driven by a smooth current, the largest membrane error
against scipy's solve_ivp (before the first spike) and the largest spike-time error in steps,
for three dt values and both discretizations; then the time to export, write, read (validated)
and import a 784-500-10 LIF network and run it for 100 steps.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings

import nir
import numpy as np
import torch
from scipy.integrate import solve_ivp

import spikeflow.nn as snn
from spikeflow import ir

T_END = 0.2


def current(t):
    return 0.6 + 0.5 * np.sin(2 * np.pi * 25.0 * t) ** 8 + 0.2 * np.sin(2 * np.pi * 7.0 * t)


def reference(rhs, y0, threshold):
    t0, y, spikes, pieces = 0.0, np.array(y0, float), [], []
    while True:
        def ev(t, y):
            return y[-1] - threshold
        ev.terminal, ev.direction = True, 1
        sol = solve_ivp(rhs, (t0, T_END), y, method="DOP853", rtol=1e-10, atol=1e-12, max_step=2e-4,
                        events=ev if threshold is not None else None, dense_output=True)
        pieces.append((t0, sol.t[-1], sol.sol))
        if sol.status != 1:
            break
        t0 = float(sol.t_events[0][0])
        spikes.append(t0)
        y = sol.y_events[0][0].copy()
        y[-1] = 0.0
    return np.array(spikes), pieces


def v_at(pieces, t):
    for a, b, f in pieces:
        if a < t <= b:
            return f(t)[-1]
    return np.nan


def one(v):
    return np.array([v])


CASES = {
    "LIF": (nir.LIF(tau=one(5e-3), r=one(1.0), v_leak=one(0.0), v_threshold=one(1.0), v_reset=one(0.0)),
            lambda t, y: [(-y[0] + current(t)) / 5e-3], [0.0], 1.0),
    "LI": (nir.LI(tau=one(5e-3), r=one(1.0), v_leak=one(0.0)), lambda t, y: [(-y[0] + current(t)) / 5e-3], [0.0],
           None),
    "CubaLIF": (nir.CubaLIF(tau_syn=one(2e-3), tau_mem=one(5e-3), r=one(1.0), v_leak=one(0.0), v_threshold=one(1.0),
                            v_reset=one(0.0), w_in=one(1.0)),
                lambda t, y: [(-y[0] + current(t)) / 2e-3, (-y[1] + y[0]) / 5e-3], [0.0, 0.0], 1.0),
}


def accuracy() -> None:
    print(f"{'node':8s} {'disc':6s} {'dt':>8s} {'max |dv|':>10s} {'spikes':>7s} {'max |dt_spike|/dt':>18s}")
    for kind, (node, rhs, y0, th) in CASES.items():
        ref_spikes, pieces = reference(rhs, y0, th)
        for disc in ("exact", "euler"):
            for dt in (1e-3, 5e-4, 2.5e-4):
                g = nir.NIRGraph.from_list(node)
                g.metadata = {"dt": dt}
                m = ir.from_nir(g, discretization=disc).double()
                n = int(round(T_END / dt))
                x = torch.from_numpy(current((np.arange(n) + 0.5) * dt)).view(n, 1, 1)
                with torch.no_grad():
                    out, traces = m.run(x, record=True)
                v = next(iter(traces.values()))[:, 0, 0].numpy()
                t_end = (np.arange(n) + 1) * dt
                window = t_end < (ref_spikes[0] - 1e-3 if len(ref_spikes) else T_END + 1)
                dv = max(abs(v[i] - v_at(pieces, t_end[i])) for i in np.nonzero(window)[0])
                sp = t_end[out[:, 0, 0].numpy() > 0] if th is not None else np.array([])
                if th is None:
                    st = "-"
                elif len(sp) == len(ref_spikes):
                    st = f"{np.max(np.abs(sp - ref_spikes)) / dt:.2f}"
                else:
                    st = f"count {len(sp)} vs {len(ref_spikes)}"
                print(f"{kind:8s} {disc:6s} {dt:8.1e} {dv:10.2e} {len(ref_spikes):7d} {st:>18s}")


def timing() -> None:
    torch.manual_seed(0)
    net = snn.Sequential(torch.nn.Linear(784, 500), snn.LIF(500, reset="to_reset"), torch.nn.Linear(500, 10),
                         snn.LIF(10, reset="to_reset"))
    x = (torch.rand(100, 8, 784) < 0.1).float()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.nir")
        t0 = time.perf_counter()
        ir.write(net, path)
        t1 = time.perf_counter()
        graph = ir.read_graph(path)
        t2 = time.perf_counter()
        module = ir.from_nir(graph)
        t3 = time.perf_counter()
        with torch.no_grad():
            y = module(x)
            t4 = time.perf_counter()
            ref = net(x)
            t5 = time.perf_counter()
        size = os.path.getsize(path)
    assert torch.equal(y, ref)
    print(f"\n784-500-10 LIF net: file {size / 1e6:.2f} MB; export+write {1e3 * (t1 - t0):.0f} ms, "
          f"validated read {1e3 * (t2 - t1):.0f} ms, import {1e3 * (t3 - t2):.0f} ms; "
          f"run 100 steps x 8: imported {1e3 * (t4 - t3):.0f} ms, source module {1e3 * (t5 - t4):.0f} ms "
          "(identical spikes)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    accuracy()
    timing()
