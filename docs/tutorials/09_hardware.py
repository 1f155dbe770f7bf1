# %% [markdown]
# # 9. Will it fit on a chip, and what will it cost?
#
# `spikeflow.hardware` takes a NIR model to a neuromorphic chip on paper: it quantises the weights
# and states to the chip's number formats, checks every limit (neurons, fan-in, synapse memory,
# supported neuron models), maps the layers onto cores, runs the network bit-accurately in
# integers, and prices the counted work (synaptic operations, neuron updates, spike packets and
# router hops) with each chip's published energy and time per operation
# (see [the hardware model](../hardware.md) and [the energy model](../energy.md)).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from spikeflow import ir
from spikeflow.data import load_dataset
from spikeflow.errors import HardwareLimitError
from spikeflow.hardware import PROFILES, chip_cost, compile_network, dense_costs, float_run, run_integer
from spikeflow.train import TrainConfig, Trainer, seed_all, zoo
from spikeflow.train.convert import fold_for_export

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.set_num_threads(1)
T, DT = 16, 1e-3

# %% [markdown]
# ## A trained model as NIR
#
# The spiking MLP of tutorial 2 (64 inputs, 64 LIF neurons, 10 leaky-integrator outputs).

# %%
x, y = load_dataset("digits", "train").as_tensors()
x_test, y_test = load_dataset("digits", "test").as_tensors()
seed_all(0)
model = zoo.mlp(64, 10, [64], T=T, encoding="rate", dt=DT)
Trainer(model, (x, y), None, TrainConfig(epochs=2 if FAST else 10, lr=5e-3, progress=False)).fit()
model.eval()
tmp = tempfile.TemporaryDirectory()
path = Path(tmp.name) / "digits.nir"
ir.write(fold_for_export(model.net), path, dt=DT, input_shape=[64])
graph = ir.read_graph(path)

# The chips run on spikes: the rate-coded test images, [T, B, 64] (0/1).
n = 100 if FAST else 360
rng = np.random.default_rng(0)
spikes = (rng.random((T, n, 64)) < x_test[:n].flatten(1).numpy()).astype(np.int64)
labels = y_test[:n].numpy()

# %% [markdown]
# ## Which chips can hold it?
#
# `compile_network(graph, chip, calibration=...)` either returns the compiled network or raises a
# `HardwareLimitError` that names the layer and the limit it breaks. With calibration spikes it
# also warns if quantisation silences a layer that was active in float.
#
# Quantisation also loses weights: `c.precision` lists, per layer, the synapses rounded to zero or
# clipped at the largest integer and the relative RMS error of the weights. A layer that loses more
# than 5 % of its synapses or 10 % RMS is refused (`PrecisionLossError`) unless `allow_lossy=True`;
# here we allow it, to compare every chip, and print the loss.

# %%
compiled = {}
for name, profile in PROFILES.items():
    try:
        c = compile_network(graph, name, dt=DT, calibration=spikes[:, :20], allow_lossy=True)
    except HardwareLimitError as err:
        print(f"{profile.title:22s} does not fit: {err}")
        continue
    compiled[name] = c
    worst = max(c.precision, key=lambda p: p.zeroed_frac)
    lossy = [p.layer for p in c.precision if p.lossy]
    print(f"{profile.title:22s} fits on {c.cores_used} core(s); worst layer {worst.layer}: "
          f"{worst.zeroed_frac:.1%} of synapses zeroed, {worst.weight_error:.1%} RMS weight error"
          + (f" (lossy: {', '.join(lossy)})" if lossy else ""))

# %% [markdown]
# ## Integer runs: same answers?
#
# `run_integer` runs the quantised network as the chip would; `float_run` runs the unquantised one
# on the same spikes. A class is the time-summed output (readout membrane).

# %%
results = {}
for name, c in compiled.items():
    res = run_integer(c, spikes)
    f_out, _ = float_run(c.float_net, spikes)
    int_pred = res.output.sum(0).argmax(-1)
    float_pred = np.asarray(f_out).sum(0).argmax(-1)
    results[name] = (res, chip_cost(res, c.profile, clock="realtime", dt=DT))
    print(f"{name:10s} accuracy: integer {np.mean(int_pred == labels):.3f}, float {np.mean(float_pred == labels):.3f}, "
          f"same answer {np.mean(int_pred == float_pred) * 100:.0f} %")

# %% [markdown]
# ## Energy and latency per inference
#
# `chip_cost` prices the counts of the integer run: dynamic energy (synaptic operations, neuron
# updates, packets, hops) plus static power over the time the chip is powered. With
# `clock="realtime"` each step lasts `DT`, as on a chip fed by a sensor, so the chip is powered for
# T x DT per inference; `clock="afap"` would charge static power only over the modelled compute
# time ([clock modes](../hardware.md#clock-modes)). For comparison,
# `dense_costs` prices the same network run once as an ANN on conventional hardware
# (every multiply-accumulate computed).

# %%
print(f"clock: {next(iter(results.values()))[1].describe_clock()}")
print(f"{'per inference':16s} {'energy':>10s} {'dynamic':>10s} {'static':>10s} {'latency':>9s} {'synaptic ops':>12s}")
for name, (_res, cost) in results.items():
    print(f"{name:16s} {cost.energy_j * 1e6:7.2f} uJ {cost.dynamic_j * 1e6:7.2f} uJ {cost.static_j * 1e6:7.2f} uJ "
          f"{cost.latency_s * 1e6:6.1f} us {cost.counts['synops']:12.0f}")
any_chip = next(iter(compiled.values()))
for ref, joules in dense_costs(any_chip, steps=1).items():
    print(f"{'dense ' + ref:16s} {joules * 1e6:7.4f} uJ   (one ANN pass)")

fig, ax = plt.subplots(figsize=(6, 3))
names = list(results) + [f"dense {k}" for k in dense_costs(any_chip, 1)]
values = [c.energy_j for _, c in results.values()] + list(dense_costs(any_chip, 1).values())
ax.bar(range(len(values)), values, color=["tab:blue"] * len(results) + ["tab:gray"] * (len(values) - len(results)))
ax.set_xticks(range(len(values)), names, rotation=45, ha="right")
ax.set_yscale("log"); ax.set_ylabel("energy per inference (J)")

# %% [markdown]
# In this run, static power over the 16 ms the chip is powered is nearly all of each chip's energy,
# and one ANN pass on a 45 nm int8 multiply-accumulate array costs less than the spiking network
# on any chip: a small network with
# dense, rate-coded input over 16 steps is not where spiking hardware wins. The dynamic part scales
# with the counted spikes and steps, so sparser activity and early answers (tutorial 8) cut it.
#
# The same from the command line: `spikeflow hw chips`, `spikeflow hw compile model.nir --chip
# loihi` and `spikeflow hw run model.nir --chip loihi2 --data PATH --plot energy.png`
# ([command-line reference](../reference/cli.md)).

# %%
tmp.cleanup()
