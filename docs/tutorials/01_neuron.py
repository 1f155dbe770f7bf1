# %% [markdown]
# # 1. A spiking neuron by hand
#
# Every neuron in spikeflow is defined once, as a plain function in `spikeflow.neurons`:
# `lif.step(x, state, params) -> (spikes, state)`. The fused CPU/GPU kernels, the torch layers in
# `spikeflow.nn`, the NIR importer and the engines are all tested against these functions. This
# tutorial steps a leaky integrate-and-fire (LIF) neuron by hand and checks it against the
# solution of its differential equation.
#
# The LIF membrane obeys `tau_mem * dv/dt = (v_leak - v) + r * I`. With the input `I` held
# constant over a step of length `dt`, the exact solution over one step is
# `v <- v_leak + (v - v_leak) * a + r * I * (1 - a)` with `a = exp(-dt / tau_mem)`; that is what
# `lif.step` computes. Times are in seconds.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from spikeflow.neurons import lif

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.manual_seed(0)

# %% [markdown]
# ## Charging below threshold
#
# A threshold far above the input keeps the neuron silent, so its membrane follows the charging
# curve `v(t) = r I (1 - exp(-t / tau_mem))`.

# %%
params = lif.LIFParams(tau_mem=20e-3, v_threshold=100.0, dt=1e-3)   # seconds
state = lif.init_state((1,), params)
current = torch.tensor([0.8])
steps = 100
v_trace = []
for _ in range(steps):
    spikes, state = lif.step(current, state, params)
    v_trace.append(float(state.v))
t = np.arange(1, steps + 1) * params.dt
analytic = 0.8 * (1 - np.exp(-t / params.tau_mem))
print(f"largest |stepped - analytic| over {steps} steps: {np.abs(np.array(v_trace) - analytic).max():.2e}")

# %% [markdown]
# The exact-decay step has no discretisation error for a constant input (only float32 rounding),
# whatever `dt` is. A forward-Euler step, `v += dt / tau * (r I - v)`, as some libraries use,
# drifts from the curve when `dt` is not small against `tau_mem`:

# %%
v_euler, v = [], 0.0
for _ in range(steps):
    v += params.dt / params.tau_mem * (0.8 - v)
    v_euler.append(v)
print(f"largest |Euler - analytic|: {np.abs(np.array(v_euler) - analytic).max():.2e}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(t * 1e3, analytic, "k-", label="analytic")
ax.plot(t * 1e3, v_trace, "o", ms=3, label="lif.step (exact decay)")
ax.plot(t * 1e3, v_euler, "--", label="forward Euler")
ax.set_xlabel("time (ms)"); ax.set_ylabel("membrane v"); ax.legend()

# %% [markdown]
# ## Firing
#
# With threshold 1 and a constant input `r I > 1` the neuron fires regularly. With
# `reset="to_reset"` the membrane restarts from `v_reset = 0` after each spike, so the time between
# spikes is the time the charging curve needs to reach the threshold:
# `T_isi = tau_mem * ln(r I / (r I - v_threshold))`. On a grid of `dt` the spike comes at the first
# step past that time: a spike every `k = ceil(T_isi / dt)` steps, `floor(steps / k)` spikes in a run.

# %%
DURATION = 0.3 if FAST else 1.0


def stepped_counts(current, duration=DURATION, dt=1e-3):
    p = lif.LIFParams(tau_mem=20e-3, v_threshold=1.0, reset="to_reset", dt=dt)
    s = lif.init_state((len(current),), p)
    x = torch.as_tensor(current, dtype=torch.float32)
    count = torch.zeros(len(current))
    for _ in range(int(round(duration / dt))):
        z, s = lif.step(x, s, p)
        count += z
    return count.numpy()


currents = np.linspace(1.05, 4.0, 12 if FAST else 40)
t_isi = 20e-3 * np.log(currents / (currents - 1.0))           # seconds
k = np.ceil(t_isi / 1e-3 - 1e-9)                              # steps per spike on the 1 ms grid
predicted = np.floor(round(DURATION / 1e-3) / k)
counts = stepped_counts(currents)
print(f"{'r*I':>5} {'lif.step':>9} {'predicted':>9} {'continuous rate':>16}")
for c, n, m, ti in list(zip(currents, counts, predicted, t_isi))[::3]:
    print(f"{c:5.2f} {n:9.0f} {m:9.0f} {1 / ti:13.1f} Hz")
print("counts equal to the prediction:", int((counts == predicted).sum()), "of", len(currents))

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(currents, 1 / t_isi, "k-", label="continuous neuron")
ax.plot(currents, predicted / DURATION, "--", label="prediction on the 1 ms grid")
ax.plot(currents, counts / DURATION, "o", ms=3, label="lif.step")
ax.set_xlabel("input r·I"); ax.set_ylabel("rate (Hz)"); ax.legend()

# %% [markdown]
# The stepped neuron matches the grid prediction; both sit below the continuous neuron because a
# spike can only happen at the end of a step.
# (The engines in `spikeflow.runtime` offer `reset_timing="crossing"`, which places the reset at
# the crossing time inside the step, and a clock-free engine with exact spike times.)
#
# ## The same neuron as a torch layer
#
# `spikeflow.nn.LIF` runs the same step over a whole time-major input `[T, B, n]` (fused into one
# CPU kernel when it can) and is differentiable through a surrogate gradient:

# %%
import spikeflow.nn as snn

layer = snn.LIF(3, tau_mem=20e-3, v_threshold=1.0, reset="to_reset", dt=1e-3)
x = torch.tensor([1.5, 2.0, 3.0]).expand(200, 1, 3)         # [T, B, n]
out = layer(x)
by_hand = stepped_counts([1.5, 2.0, 3.0], duration=0.2)
print("spikes per neuron in 200 ms:", out.sum(0).squeeze().tolist())
print("stepped by hand:            ", by_hand.tolist())
print("layer and hand-stepped neuron agree:", bool((out.sum(0).squeeze().numpy() == by_hand).all()))
