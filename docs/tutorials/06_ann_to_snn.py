# %% [markdown]
# # 6. ANN to SNN conversion
#
# Instead of training a spiking network directly, train an ordinary ReLU network and convert it:
# each ReLU becomes an integrate-and-fire (IF) neuron whose firing rate approximates the ReLU's
# output. `spikeflow.train.convert.convert` folds batch norm into the weights, measures each
# ReLU's activation scale on calibration data (a high percentile, robust to outliers), and
# rescales the weights so that the scale maps to one spike per step. A rate over `T` steps resolves
# an activation to `1 / T` of its scale, so the question is how many steps a task needs.

# %%
import os

import matplotlib.pyplot as plt
import torch

from spikeflow.data import load_dataset
from spikeflow.train import TrainConfig, Trainer, evaluate, seed_all, zoo
from spikeflow.train.convert import convert

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.set_num_threads(1)

x, y = load_dataset("digits", "train").as_tensors()
x_test, y_test = load_dataset("digits", "test").as_tensors()

# %% [markdown]
# ## Train the ANN
#
# `zoo.mlp(..., neuron="relu")` builds the same shape as the spiking MLP of tutorial 2, with ReLUs.

# %%
seed_all(0)
ann = zoo.mlp(64, 10, [128], neuron="relu")
config = TrainConfig(epochs=5 if FAST else 20, batch_size=64, lr=5e-3, loss="ce", progress=False)
Trainer(ann, (x, y), None, config).fit()
ann_acc = evaluate(ann, x_test, y_test, loss="ce")["accuracy"]
print(f"ANN test accuracy: {ann_acc:.3f}")

# %% [markdown]
# ## Convert, at several numbers of time steps
#
# The converted model is a zoo `Classifier` of IF neurons with `direct` encoding (the analog image
# is the input current at every step); its output is the last layer's input current at each step,
# and the class scores are its mean over the steps (`loss="ce_mean"`). Each IF membrane starts at
# half its threshold (`v_init=0.5`), which halves the rounding error of the rate code.

# %%
steps = [2, 4, 8, 16, 32] if FAST else [2, 4, 8, 16, 32, 64, 128]
accs = []
for T in steps:
    snn_model = convert(ann, x[:500], T=T, percentile=99.9)
    accs.append(evaluate(snn_model, x_test, y_test, loss="ce_mean")["accuracy"])
    print(f"T = {T:3d}: SNN test accuracy {accs[-1]:.3f}")
print(snn_model.net)

fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogx(steps, accs, "o-", base=2, label="converted SNN")
ax.axhline(ann_acc, color="k", ls="--", label="ANN")
ax.set_xlabel("time steps T"); ax.set_ylabel("test accuracy"); ax.legend()

# %% [markdown]
# On this small task a few steps already keep the ANN's accuracy (see the figure); the command
# `spikeflow convert` runs the same sweep on any dataset.
#
# ## Why it works
#
# For one layer, the IF neuron's spike rate times the activation scale `lambda` approaches the
# ReLU output, with an error of at most `lambda / T` per neuron (a rate of `k / T`). We can check
# that directly on the first layer:

# %%
T = 256
snn_model = convert(ann, x[:500], T=T, percentile=100.0)
with torch.no_grad():
    relu = ann.net[1](ann.net[0](x_test[:50].flatten(1)))
    lam = snn_model.spec["scales"][0]
    spikes = snn_model.net[1](snn_model.net[0](snn_model.encode(x_test[:50])))
    rate = spikes.mean(0) * lam
err = float((rate - relu).abs().max())
print(f"lambda = {lam:.3f}; largest |rate * lambda - ReLU| = {err:.4f} (bound lambda / T = {lam / T:.4f})")
print("within the bound lambda / T:", err <= lam / T * 1.01)
