# %% [markdown]
# # 4. Sound: the cochlea emulator
#
# A silicon cochlea splits sound into frequency channels and emits spikes per channel.
# `spikeflow.data.cochlea.Cochlea` emulates one: a mel-spaced bank of Butterworth band-pass
# filters (tonic's `MelButterFilterBank`), a rectified and compressed envelope per `dt` window,
# and one LIF neuron per channel. Its output is `Events` with `x` = channel and sensor size
# `(channels, 1, 1)`, the same container as camera events, so datasets, transforms and networks
# treat both alike.

# %%
import os
import shutil

import matplotlib.pyplot as plt
import numpy as np

from spikeflow.data.cochlea import Cochlea

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"
SR = 16000                                    # samples per second

# %% [markdown]
# ## Pure tones land in the channel of their frequency
#
# Channels are ordered from low to high frequency, so a higher tone drives a higher channel.

# %%
cochlea = Cochlea(channels=32, low_freq=100.0, dt=1e-3)
t = np.arange(int(0.2 * SR)) / SR
for freq in (300, 1000, 3000):
    ev = cochlea(0.5 * np.sin(2 * np.pi * freq * t), SR)
    counts = np.bincount(ev.x, minlength=32)
    print(f"{freq:5d} Hz: {len(ev.array):4d} spikes, busiest channel {counts.argmax():2d}")

# %% [markdown]
# ## A chirp
#
# A tone sweeping from 200 Hz to 5 kHz in half a second walks across the channels.
# `to_frames(dt=1e-3)` bins the events into `[T, channels]` spike counts, the input of a network.

# %%
duration = 0.3 if FAST else 0.5
t = np.arange(int(duration * SR)) / SR
f0, f1 = 200.0, 5000.0
phase = 2 * np.pi * f0 * duration / np.log(f1 / f0) * (np.exp(t / duration * np.log(f1 / f0)) - 1)
chirp = 0.5 * np.sin(phase)
ev = cochlea(chirp, SR)
counts = ev.to_frames(dt=1e-3)
print("spike counts:", counts.shape, "(time steps of 1 ms, channels)")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(ev.t / 1e3, ev.x, "|", ms=3)
ax.set_xlabel("time (ms)"); ax.set_ylabel("channel (low to high frequency)"); ax.set_title("cochlea spikes of a chirp")

# %% [markdown]
# ## Spoken digits
#
# The bundled `spoken-digits` dataset (`load_dataset("spoken-digits", split, T=...)`) speaks
# "zero" to "nine" with espeak-ng in 16 voices, 3 speeds and 3 pitches and sends each recording
# through this cochlea with 64 channels. espeak-ng is a system package
# (`apt-get update && apt-get install -y espeak-ng`); when it is installed this cell speaks one
# word, otherwise it says so.

# %%
if shutil.which("espeak-ng"):
    from spikeflow.data.datasets.builtin import speak

    sr, audio = speak("seven", "en-us", 160, 50)
    ev = Cochlea(channels=64)(audio, sr)
    print(f"'seven': {len(audio) / sr:.2f} s of audio -> {len(ev.array)} spikes in 64 channels")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(ev.t / 1e3, ev.x, "|", ms=3)
    ax.set_xlabel("time (ms)"); ax.set_ylabel("channel"); ax.set_title("'seven' (espeak-ng, en-us)")
else:
    print("espeak-ng is not installed here: the spoken-digits part is skipped")
