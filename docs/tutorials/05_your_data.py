# %% [markdown]
# # 5. Bring your own data
#
# `spikeflow.data.load_dataset` takes a bundled dataset's name or a path to your own event files:
# a file with many labelled recordings (SHD-style HDF5, a spikeflow bundle), a folder of class
# folders (`folder/<class>/*.bin`, as N-MNIST ships), or either of those with `train`/`test`
# parts. This tutorial writes a small dataset in the format of the Spiking Heidelberg Digits
# (SHD) with plain h5py, loads it, and trains on it.
#
# ## The SHD layout
#
# One HDF5 file per split; each holds, per recording `i`, the spike times in seconds
# (`spikes/times[i]`, float) and the channel of each spike (`spikes/units[i]`, integer), and the
# class labels (`labels`); an optional file attribute `channels` gives the number of channels
# (when absent: the largest unit + 1 over the file's recordings). Our toy data: 3 classes of
# 40-channel recordings, 0.2 s long, where class `k` fires mostly in its own band of channels.

# %%
import os
import tempfile
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

from spikeflow.data import load_dataset
from spikeflow.train import TrainConfig, Trainer, evaluate, seed_all, zoo

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.set_num_threads(1)
CHANNELS, DURATION, CLASSES = 40, 0.2, 3


def recording(label, rng):
    """Spike times (s) and channels of one recording: background at 5 Hz, class band at 60 Hz."""
    rates = np.full(CHANNELS, 5.0)
    band = slice(label * 12 + 2, label * 12 + 12)
    rates[band] = 60.0
    n = rng.poisson(rates * DURATION)
    units = np.repeat(np.arange(CHANNELS), n)
    times = rng.uniform(0, DURATION, n.sum())
    order = np.argsort(times)
    return times[order], units[order]


def write_shd(path, n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float64))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i, lab in enumerate(labels):
            times[i], units[i] = recording(lab, rng)
        f.create_dataset("labels", data=labels.astype(np.int32))
        f.attrs["channels"] = CHANNELS      # optional: without it, the largest unit + 1


tmp = tempfile.TemporaryDirectory()
folder = Path(tmp.name) / "toy_shd"
folder.mkdir()
write_shd(folder / "train.h5", 120 if FAST else 600, seed=1)
write_shd(folder / "test.h5", 60 if FAST else 150, seed=2)
print(sorted(p.name for p in folder.iterdir()))

# %% [markdown]
# ## Loading it
#
# Point `load_dataset` at the folder; `train.h5` and `test.h5` are its splits. `T` cuts each
# recording into that many time bins (spike counts per bin and channel; `dt=` gives the bin width
# in seconds instead). A single file is never split silently: give a folder with `train`/`test`
# parts, `test_path=` (the test file), `test_frac=` (a held-out fraction), or read it whole (`"all"`).

# %%
train_split = load_dataset(folder, "train", T=20)
test_split = load_dataset(folder, "test", T=20)
x0, y0 = train_split[0]
print(f"{len(train_split)} training and {len(test_split)} test recordings; one sample: {tuple(x0.shape)}, label {y0}")
x, y = train_split.as_tensors()
x_test, y_test = test_split.as_tensors()
print("stacked:", tuple(x.shape), x.dtype, "labels", torch.bincount(y).tolist())

fig, axes = plt.subplots(1, CLASSES, figsize=(9, 2.6), sharey=True)
for k, ax in enumerate(axes):
    i = int((y == k).nonzero()[0])
    ax.imshow(x[i].T, aspect="auto", origin="lower", cmap="Greys")
    ax.set_title(f"class {k}", fontsize=9); ax.set_xlabel("time bin")
axes[0].set_ylabel("channel")

# %% [markdown]
# ## Training on it
#
# `zoo.for_data(arch, sample_shape, classes)` sizes a zoo model for the samples; `[T, channels]`
# sequences are fed one time bin per step. The command line does the same with
# `spikeflow train --data PATH`.

# %%
seed_all(0)
model = zoo.for_data("mlp", x.shape[1:], CLASSES, hidden=[32])
Trainer(model, (x.float(), y), None, TrainConfig(epochs=3 if FAST else 10, batch_size=20, lr=1e-2,
                                                progress=False)).fit()
print(f"test accuracy: {evaluate(model, x_test.float(), y_test)['accuracy']:.3f} (chance {1 / CLASSES:.3f})")

# %% [markdown]
# Files you did not write yourself are checked before use: a malformed file gives one line
# naming the file and the field, never a traceback or a silent wrong answer.

# %%
from spikeflow.errors import SpikeflowError

bad = folder / "bad.h5"
with h5py.File(bad, "w") as f:
    f.create_dataset("labels", data=np.zeros(3, np.int32))
try:
    load_dataset(bad, "all", T=20)
except SpikeflowError as err:
    print(f"{type(err).__name__}: {err}")
tmp.cleanup()
