"""Brian2 side of test_brian2_exact.py (run in benchmarks/.venv-brian2): a small CUBA-style
network with spike-generator input, numpy target, float64. Writes spikes and v traces to argv[1]."""

import sys

import brian2 as b2
import numpy as np

b2.prefs.codegen.target = "numpy"
b2.defaultclock.dt = 0.1 * b2.ms
ms, mV = b2.ms, b2.mV
eqs = """
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
"""
ns = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV, El=-49 * mV)
group = b2.NeuronGroup(3, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact", namespace=ns)
group.v = [-60, -55, -51] * mV
src = b2.SpikeGeneratorGroup(2, [0, 1, 0, 0, 1], [3, 7, 20, 21, 40] * ms)
syn = b2.Synapses(src, group, "w : volt", on_pre="ge_post += w")
syn.connect(i=[0, 0, 1, 1], j=[0, 2, 1, 2])
syn.w = [3, 2, 4, -1] * mV
spikes = b2.SpikeMonitor(group)
trace = b2.StateMonitor(group, "v", record=True)
b2.run(100 * ms)
np.savez(sys.argv[1], i=np.asarray(spikes.i), t=np.asarray(spikes.t / b2.second), v=np.asarray(trace.v / mV))
