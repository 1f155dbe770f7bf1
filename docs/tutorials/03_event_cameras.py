# %% [markdown]
# # 3. Event cameras: the DVS emulator, file formats and tonic transforms
#
# An event camera (DVS) reports, per pixel and asynchronously, when the log intensity changed by
# more than a contrast threshold: an *event* `(x, y, t, p)` with the time `t` in microseconds and
# the polarity `p` (1 = brighter, ON; 0 = darker, OFF). spikeflow holds a recording as
# `spikeflow.data.Events`: a structured numpy array (tonic's layout) plus the sensor size
# `(width, height, polarities)`.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from spikeflow.data import formats, transforms
from spikeflow.data.dvs import DVSEmulator, saccade_events

FAST = os.environ.get("SPIKEFLOW_FAST") == "1"

# %% [markdown]
# ## Emulating a sensor
#
# `DVSEmulator` turns video frames into events: each pixel keeps the log intensity at its last
# event and emits ON/OFF events whenever the change exceeds its threshold (0.2 log units here,
# with 3 % mismatch between pixels). Our video: a bright bar sliding right over a dark
# background, 32x32 pixels at 1000 frames per second.

# %%
n_frames = 60 if FAST else 200
frames = np.full((n_frames, 32, 32), 0.1, dtype=np.float32)
for i in range(n_frames):
    x0 = 2 + 24 * i / n_frames
    cols = np.arange(32)
    frames[i][:, (cols >= x0) & (cols < x0 + 4)] = 0.9

emulator = DVSEmulator(contrast_threshold=0.2, threshold_sigma=0.03, seed=0)
ev = emulator.emulate(frames, fps=1000.0)
on, off = ev.array[ev.p == 1], ev.array[ev.p == 0]
print(f"{len(ev.array)} events over {ev.duration_us / 1e3:.1f} ms, sensor {ev.sensor_size}")
print(f"ON events: {len(on)}, mean x {on['x'].mean():.1f};  OFF events: {len(off)}, mean x {off['x'].mean():.1f}")

# %% [markdown]
# The bar's leading edge brightens pixels (ON) and its trailing edge darkens them (OFF), so in
# every time window the ON events lie about one bar width to the right of the OFF events.
# `to_frames(n_bins=...)` bins a recording into counts `[T, P, H, W]`, what a network consumes:

# %%
binned = ev.to_frames(n_bins=4)
print("frames:", binned.shape, binned.dtype)
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for k, ax in enumerate(axes):
    ax.imshow(binned[k, 1] - binned[k, 0], cmap="bwr", vmin=-2, vmax=2)
    ax.set_title(f"bin {k}: ON red, OFF blue", fontsize=8)
    ax.set_xticks([]); ax.set_yticks([])

# %% [markdown]
# ## N-MNIST-style recordings of a still image
#
# A still image makes no events; N-MNIST was recorded by moving the sensor along three saccades.
# `saccade_events` does the same in emulation (this is how the bundled `nmnist5k` dataset is made
# from MNIST images). Here a digit from scikit-learn, scaled up to 24x24 pixels:

# %%
from sklearn.datasets import load_digits

digit = np.kron(load_digits().images[0] / 16.0, np.ones((3, 3)))     # 8x8 -> 24x24, values in [0, 1]
sacc = saccade_events(digit, DVSEmulator(seed=0), sensor_size=(34, 34), duration=0.3)
frame = sacc.to_frames(n_bins=1)[0]
print(f"{len(sacc.array)} events in {sacc.duration_us / 1e3:.0f} ms on a {sacc.sensor_size} sensor")
fig, ax = plt.subplots(1, 2, figsize=(6, 3))
ax[0].imshow(digit, cmap="gray"); ax[0].set_title("image"); ax[0].axis("off")
ax[1].imshow(frame[1] - frame[0], cmap="bwr"); ax[1].set_title("events (ON - OFF)"); ax[1].axis("off")

# %% [markdown]
# ## File formats
#
# `spikeflow.data.formats` reads and writes N-MNIST `.bin`, Prophesee EVT 2.0 `.raw`, AEDAT 2.0
# `.aedat`, spikeflow `.npz` and HDF5 (SHD and spikeflow bundles). `write_events` picks the format
# from the suffix, `read_events` from the file's first bytes. Every format carries `(x, y, t, p)`
# exactly, so a round trip returns the same events:

# %%
with tempfile.TemporaryDirectory() as tmp:
    for suffix in (".bin", ".raw", ".aedat", ".npz"):
        path = Path(tmp) / f"saccade{suffix}"
        formats.write_events(path, sacc)
        back = formats.read_events(path)
        same = all(np.array_equal(back.array[f], sacc.array[f]) for f in ("x", "y", "t", "p"))
        print(f"{suffix:7s} {formats.detect_format(path):7s} {path.stat().st_size:8d} bytes, identical events: {same}")

# %% [markdown]
# ## tonic transforms
#
# `transforms.Tonic(t)` wraps any `tonic.transforms` object so that it takes and returns `Events`
# (the sensor size follows `Downsample` and crops). The same wrapper goes into
# `load_dataset(..., transform=...)`. Here a noisy sensor (shot noise at 20 Hz per pixel), cleaned
# by tonic's `Denoise`, which drops events with no neighbour event within `filter_time` µs:

# %%
noisy_sensor = DVSEmulator(seed=0, shot_noise_rate_hz=20.0)
noisy = noisy_sensor.emulate(frames, fps=1000.0, noise_seed=1)
denoise = transforms.Tonic(transforms.Denoise(filter_time=5000))
clean = denoise(noisy)
small = transforms.Tonic(transforms.Downsample(spatial_factor=0.5))(clean)
print(f"noisy: {len(noisy.array)} events, denoised: {len(clean.array)}, clean emulation: {len(ev.array)}")
print(f"downsampled sensor: {small.sensor_size}, {len(small.array)} events")
to_frame = transforms.Tonic(transforms.ToFrame(sensor_size=small.sensor_size, n_time_bins=3))
print("tonic ToFrame gives a numpy array:", to_frame(small).shape)
