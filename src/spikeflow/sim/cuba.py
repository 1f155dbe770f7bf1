"""The CUBA benchmark network.

Vogels & Abbott (2005), J. Neurosci. 25(46):10786, as Benchmark 2 of Brette et al. (2007),
J. Comput. Neurosci. 23(3):349, in the form of Brian2's ``examples/CUBA.py``: 4,000 LIF
neurons (80 % excitatory), 2 % random connectivity, taum 20 ms, taue 5 ms, taui 10 ms,
Vt -50 mV, Vr -60 mV, El -49 mV, refractory 5 ms, we = 60*0.27/10 mV = 1.62 mV,
wi = -20*4.5/10 mV = -9 mV, initial V uniform in [Vr, Vt], dt 0.1 ms. Above 4,000 neurons
the connection probability is 80/N (fan-out about 80), as in Brian2's scaling benchmarks.

Relation to Brian2 (``method='exact'``): the same exact solution of the linear system per
step (see :mod:`spikeflow.neurons.expsyn`); Brian2's zero synaptic delay is our minimum
delay of one step; Brian2's ``refractory=5*ms`` holds ``v`` for 49 steps after the spike
step (integration resumes when ``t - lastspike`` reaches 50 steps), which is spikeflow's
``refractory = 4.9 ms`` (``lif``: held for ``round(refractory/dt)`` steps).
Voltages are in mV (float32 keeps 7 digits there).
"""

from __future__ import annotations

from spikeflow.errors import ConfigError
from spikeflow.sim.connectivity import FixedProbability
from spikeflow.sim.network import Network
from spikeflow.sim.populations import LIF
from spikeflow.sim.stats import cv_isi, mean_rate

TAUM, TAUE, TAUI = 20e-3, 5e-3, 10e-3
VT, VR, EL = -50.0, -60.0, -49.0  # mV
REFRACTORY = 5e-3
WE = 60 * 0.27 / 10  # mV
WI = -20 * 4.5 / 10  # mV


def connection_probability(n: int) -> float:
    return 0.02 if n <= 4000 else 80.0 / n


def build(n: int = 4000, seed: int = 0, dt: float = 1e-4, dtype: str = "float32", threads=None,
          record: bool = True, memory_limit=None):
    """The CUBA network; returns ``(net, monitors)`` with spike monitors of E and I (or None)."""
    if not 0 < dt <= TAUE:
        raise ConfigError(f"sim cuba: dt must be in (0, {TAUE}] seconds (the fastest synaptic time constant), "
                          f"got {dt}")
    if n < 5:
        raise ConfigError(f"sim cuba: the network needs at least 5 neurons (4 excitatory : 1 inhibitory), got {n}")
    net = Network(dt=dt, seed=seed, dtype=dtype, threads=threads, memory_limit=memory_limit)
    n_exc = n * 4 // 5
    kw = dict(tau_mem=TAUM, v_threshold=VT, v_leak=EL, v_reset=VR, refractory=REFRACTORY - dt, reset="to_reset",
              tau_syn={"exc": TAUE, "inh": TAUI}, v_init=("uniform", VR, VT))
    exc = net.add(LIF(n_exc, name="exc", **kw))
    inh = net.add(LIF(n - n_exc, name="inh", **kw))
    p = connection_probability(n)
    for src, w, ch in ((exc, WE, "exc"), (inh, WI, "inh")):
        for tgt in (exc, inh):
            net.connect(src, tgt, FixedProbability(p), weight=w, channel=ch, delay=dt)
    mons = (net.spike_monitor(exc), net.spike_monitor(inh)) if record else None
    return net, mons


def spikes(net, mons):
    """All recorded spikes as (index in 0..N-1, time in s)."""
    import numpy as np

    e, i = mons
    idx = np.concatenate([e.indices, i.indices + e.population.n])
    t = np.concatenate([e.times, i.times])
    return idx, t


def run(n: int = 4000, seed: int = 0, duration: float = 1.0, progress: bool = False, **kw) -> dict:
    """Build and run CUBA; statistics and timings."""
    net, mons = build(n, seed, **kw)
    net.run(duration, progress=progress)
    idx, t = spikes(net, mons)
    return {"neurons": n, "seed": seed, "spikes": int(idx.size), "rate_hz": mean_rate(idx, n, duration),
            "cv_isi": cv_isi(idx, t), "build_s": net.timings["build"], "compile_s": net.timings["compile"],
            "loop_s": net.timings["run"],
            "synapses": net.n_synapses_local, "indices": idx, "times": t}
