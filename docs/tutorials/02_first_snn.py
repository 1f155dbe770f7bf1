# %% [markdown]
# # 2. Train your first SNN
#
# This tutorial trains a small spiking network on scikit-learn's 8x8 handwritten digits
# (bundled, no download) with surrogate gradients: the model zoo builds the network, the
# `Trainer` runs the optimisation, `evaluate` measures it.

# %%
import os

import matplotlib.pyplot as plt
import torch

from spikeflow.data import load_dataset
from spikeflow.train import TrainConfig, Trainer, evaluate, seed_all, zoo
from spikeflow.train.datasets import holdout

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.set_num_threads(1)

# %% [markdown]
# ## The data
#
# `load_dataset("digits", split)` gives a fixed stratified split (1437 training and 360 test
# images); `as_tensors()` stacks a split into `x` `[N, 1, 8, 8]` (float32 in [0, 1]) and labels `y`.
# We hold out 10 % of the training split for validation.

# %%
x, y = load_dataset("digits", "train").as_tensors()
x_test, y_test = load_dataset("digits", "test").as_tensors()
train, val = holdout(x, y, 0.1, seed=0)
print("train", tuple(train[0].shape), "validation", tuple(val[0].shape), "test", tuple(x_test.shape))

# %% [markdown]
# ## The network
#
# `zoo.mlp(64, 10, hidden, T=...)` is `Linear -> LIF -> Linear -> LI readout`, run for `T` time
# steps of `dt = 1 ms`. With `encoding="rate"` each pixel value becomes the probability of an
# input spike at every step (Bernoulli), so the network only ever sees spikes. The readout is a
# leaky integrator whose membrane, maximised over time, gives the class scores (`loss="ce_max"`).

# %%
seed_all(0)                                   # the same initial weights every run
model = zoo.mlp(64, 10, [128], T=8, encoding="rate")
print(model.net)
print("parameters:", sum(p.numel() for p in model.parameters()))

# %% [markdown]
# ## Training
#
# `Trainer(model, train, val, config)` trains with AdamW and a cosine schedule. Give it an
# `out_dir` and it writes checkpoints and logs there, and `fit(resume=True)` continues an
# interrupted run; here we keep everything in memory.

# %%
config = TrainConfig(epochs=2 if FAST else 15, batch_size=64, lr=5e-3, seed=0, progress=False)
trainer = Trainer(model, train, val, config)
trainer.fit()
for h in trainer.history:
    print(f"epoch {h['epoch']:2d}: train acc {h['train_acc']:.3f}, validation acc {h['val_acc']:.3f}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot([h["epoch"] for h in trainer.history], [h["train_acc"] for h in trainer.history], "o-", label="train")
ax.plot([h["epoch"] for h in trainer.history], [h["val_acc"] for h in trainer.history], "s-", label="validation")
ax.set_xlabel("epoch"); ax.set_ylabel("accuracy"); ax.legend()

# %% [markdown]
# ## Testing, and how much the network spikes
#
# `evaluate(..., spikes=True)` also reports each spiking layer's firing rate (spikes per neuron
# per step) and the activation sparsity, the numbers that decide the cost on event-driven hardware.

# %%
result = evaluate(model, x_test, y_test, spikes=True)
print(f"test accuracy {result['accuracy']:.3f} on {result['samples']} images")
for layer, rate in result["spike_rates"].items():
    print(f"layer {layer}: {rate:.3f} spikes per neuron per step")
print(f"activation sparsity {result['activation_sparsity']:.3f}")

# %% [markdown]
# The same run from the command line is
# `spikeflow train --data digits --model mlp --epochs 15 --out runs/digits`, followed by
# `spikeflow eval runs/digits` and `spikeflow export runs/digits --nir digits.nir`
# (see the [command-line reference](../reference/cli.md)).
