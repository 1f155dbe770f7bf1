# %% [markdown]
# # 10. A 100k-neuron cortical network, and going multi-process
#
# `spikeflow.sim` simulates large networks that are built rather than trained: populations of
# LIF, current-based LIF or Izhikevich neurons, Poisson and spike-source inputs, connectivity
# rules, synaptic delays and monitors, in one numba loop per run, and over several processes
# (`torch.distributed`) when one is not enough. Times are in seconds, voltages here in mV.
#
# The network: the CUBA benchmark (Vogels & Abbott 2005; Brette et al. 2007, Benchmark 2), 80 %
# excitatory and 20 % inhibitory LIF neurons with exponential current synapses, no external input
# (the resting potential lies above threshold, and the membranes start at random between reset and
# threshold). `spikeflow.sim.cuba.build(n)` builds it at any size (connection probability 2 % at
# 4,000 neurons, a fan-out of about 80 above).

# %%
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from spikeflow import sim
from spikeflow.sim import cuba, distributed

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
N = 4_000 if FAST else 100_000                 # neurons (the fast setting is a small network)
DURATION = 0.2 if FAST else 0.5                # seconds of biological time

# %% [markdown]
# ## Building it by hand
#
# This is what `cuba.build` does: two populations, four projections, monitors.

# %%
net = sim.Network(dt=1e-4, seed=1, threads=1)
common = dict(tau_mem=20e-3, v_threshold=-50.0, v_leak=-49.0, v_reset=-60.0, refractory=4.9e-3,
              reset="to_reset", tau_syn={"exc": 5e-3, "inh": 10e-3}, v_init=("uniform", -60.0, -50.0))
exc = net.add(sim.LIF(N * 4 // 5, name="exc", **common))
inh = net.add(sim.LIF(N // 5, name="inh", **common))
p = cuba.connection_probability(N)
for src, weight, channel in ((exc, 1.62, "exc"), (inh, -9.0, "inh")):
    for tgt in (exc, inh):
        net.connect(src, tgt, sim.FixedProbability(p), weight=weight, channel=channel, delay=1e-4)
mon_e, mon_i = net.spike_monitor(exc), net.spike_monitor(inh)
vm = net.state_monitor(exc, "v", [0, 1, 2], every=1e-4)

t0 = time.perf_counter()
net.run(DURATION, progress=False)
wall = time.perf_counter() - t0
idx = np.concatenate([mon_e.indices, mon_i.indices + exc.n])
times = np.concatenate([mon_e.times, mon_i.times])
print(f"{N} neurons, {net.n_synapses_local / 1e6:.2f} M synapses, {DURATION} s simulated in {wall:.1f} s wall")
print(f"mean rate {sim.mean_rate(idx, N, DURATION):.2f} Hz, "
      f"CV of the interspike intervals {sim.cv_isi(idx, times):.2f}")

# %%
fig, ax = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
show = idx < 1000
ax[0].plot(times[show] * 1e3, idx[show], ",k")
ax[0].set_ylabel("neuron (first 1000)")
for k in range(3):
    ax[1].plot(vm.times * 1e3, vm.values[:, k], lw=0.8)
ax[1].set_xlabel("time (ms)"); ax[1].set_ylabel("v (mV)")

# %% [markdown]
# ## Going multi-process
#
# A script joins a process group with `sim.distributed.init_from_env()` (the variables `torchrun`
# sets: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`); each rank then owns a slice of the
# neurons and every synapse onto them, and ranks exchange spikes every minimum delay. All random
# numbers are keyed by global neuron index, so the spike trains do not depend on the number of
# processes. We check that: the same network in this process and on two processes.

# %%
script = textwrap.dedent('''
    import sys
    import numpy as np
    from spikeflow.sim import cuba, distributed

    n, duration, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rank, world = distributed.init_from_env()
    net, mons = cuba.build(n, seed=3, threads=1)
    net.run(duration, progress=False)
    idx, t = cuba.spikes(net, mons)             # monitors are gathered on every rank
    if rank == 0:
        np.savez(out, idx=idx, steps=np.rint(t / 1e-4).astype(np.int64), world=world)
    distributed.shutdown()
''')
tmp = tempfile.TemporaryDirectory()
folder = Path(tmp.name)
(folder / "run_cuba.py").write_text(script)
n_mp = 2_000 if FAST else 20_000


def launch(world):
    out = folder / f"spikes_{world}.npz"
    env = dict(os.environ, WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(distributed.free_port()),
               NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(folder / "run_cuba.py"), str(n_mp), "0.1", str(out)],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(world)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("a rank failed:\n" + "\n".join(logs))
    with np.load(out) as z:
        order = np.lexsort((z["idx"], z["steps"]))
        return z["idx"][order], z["steps"][order]


net1, mons1 = cuba.build(n_mp, seed=3, threads=1)          # one process: this one
net1.run(0.1, progress=False)
i1, t1 = cuba.spikes(net1, mons1)
order = np.lexsort((i1, np.rint(t1 / 1e-4)))
one = i1[order], np.rint(t1 / 1e-4).astype(np.int64)[order]
two = launch(2)
print(f"{n_mp} neurons for 0.1 s: {len(one[0])} spikes on 1 process, {len(two[0])} on 2")
print("identical spike trains:", np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1]))
tmp.cleanup()

# %% [markdown]
# The command line runs the same network with `spikeflow sim cuba --neurons 400000 --nproc 2`,
# and across machines with `torchrun` (see [running across processes and
# machines](../sim-distributed.md)).
