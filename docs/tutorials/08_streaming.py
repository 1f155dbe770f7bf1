# %% [markdown]
# # 8. Streaming and early answers
#
# A sensor delivers events while the world changes; waiting for the whole recording before
# answering wastes time and energy. `spikeflow.runtime.Stream` runs a NIR model on events as they
# arrive and gives its current answer (label, class probabilities, confidence) after every chunk;
# once the confidence passes a threshold the answer is *decided* and the caller may stop.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from spikeflow import ir
from spikeflow.data import Events, load_dataset
from spikeflow.runtime import Stream, evaluate_over_time
from spikeflow.train import TrainConfig, Trainer, seed_all, zoo
from spikeflow.train.convert import fold_for_export

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
torch.set_num_threads(1)
T, DT = 20, 1e-3                             # 20 steps of 1 ms: a 20 ms recording

# %% [markdown]
# ## A model and its NIR file
#
# A spiking MLP on the 8x8 digits with rate-coded input (as in tutorial 2), exported to NIR the
# way `spikeflow export` does it. The export warns that the hidden layer's `reset="subtract"` travels
# as node metadata, because NIR itself resets to `v_reset`: spikeflow's engines honour it, other
# readers would not.

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

# %% [markdown]
# ## Images as event streams
#
# Each test image becomes a 20 ms recording: pixel `i` (intensity in [0, 1]) fires at each 1 ms
# step with that probability. An event's `x` is the input index (sensor size `(64, 1, 1)`), `t` its
# time in microseconds.

# %%
rng = np.random.default_rng(0)


def to_events(image, label):
    spikes = rng.random((T, 64)) < image.flatten().numpy()
    step, idx = np.nonzero(spikes)
    t_us = (step * DT * 1e6 + rng.integers(0, int(DT * 1e6), len(step))).astype(np.int64)
    order = np.argsort(t_us, kind="stable")
    return Events.from_arrays(idx[order], 0, t_us[order], 0, (64, 1, 1), label)


n_rec = 60 if FAST else 360
recordings = [(to_events(x_test[i], int(y_test[i])), int(y_test[i])) for i in range(n_rec)]
print(f"{n_rec} recordings, {np.mean([len(r.array) for r, _ in recordings]):.0f} events each on average")

# %% [markdown]
# ## One stream
#
# Push one recording in 1 ms chunks and watch the answer form. `engine="event"` does work only
# where spikes are; `"dense"` and `"clockfree"` are the other engines (see
# [Engines](../concepts/engines.md)).

# %%
stream = Stream(path, engine="event", decoder="max", confidence=0.9)
rec, label = recordings[0]
times, conf, labels = [], [], []
for t_end in range(1000, T * 1000 + 1, 1000):
    chunk = rec.array[(rec.t >= t_end - 1000) & (rec.t < t_end)]
    p = stream.push(chunk)
    p = stream.advance_to(t_end)              # no more events before t_end: run the step
    times.append(t_end / 1e3); conf.append(p.confidence); labels.append(p.label)
print(f"true label {label}; decided: {stream.decided}, answer {stream.decision.label if stream.decided else None} "
      f"at {stream.decision.t_us / 1e3 if stream.decided else float('nan'):.0f} ms")
fig, ax = plt.subplots(figsize=(6, 3))
ax.step(times, conf, where="post", label="confidence of the current answer")
ax.axhline(0.9, color="k", ls="--", label="threshold")
ax.set_xlabel("time (ms)"); ax.set_ylabel("confidence"); ax.set_ylim(0, 1.05); ax.legend()

# %% [markdown]
# ## Accuracy over time, and the early answers
#
# `evaluate_over_time` pushes every recording and scores the answer at fractions of the window,
# and the early-exit answer (the first with confidence >= 0.9).

# %%
report = evaluate_over_time(stream, recordings, duration_us=T * 1000, chunk_us=1000,
                            checkpoints=(0.1, 0.25, 0.5, 0.75, 1.0))
for f, a in zip(report.fractions, report.accuracy):
    print(f"after {f * 100:3.0f} % of the recording: accuracy {a:.3f}")
print(f"early answers: accuracy {report.early_accuracy:.3f}, {report.decided * 100:.0f} % decided, "
      f"using {np.mean(report.decision_fraction) * 100:.0f} % of the recording on average")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(report.fractions * 100, report.accuracy, "o-", label="answer at that time")
ax.axhline(report.early_accuracy, color="tab:orange", ls="--", label="early answers")
ax.set_xlabel("% of the recording seen"); ax.set_ylabel("accuracy"); ax.legend()
tmp.cleanup()
