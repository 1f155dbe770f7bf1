"""Dataset classes shared by the built-in sets and bring-your-own folders.

Each split is a ``torch.utils.data.Dataset`` yielding ``(x, y)`` with ``y`` an int,
plus ``as_tensors()`` returning the whole split stacked (``x``, ``y`` int64) so a
trainer can batch without Python per-sample overhead.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.data.events import Events
from spikeflow.data.formats.native import EventBundle
from spikeflow.errors import ConfigError, ParameterError


class ArraySplit(Dataset):
    """Samples stored as one array: images ``[N, 1, H, W]`` (uint8 with ``scale``) or MFCCs."""

    def __init__(self, x, y, *, scale: float = 1.0, lengths=None, max_frames: int | None = None,
                 transform: Callable | None = None, info: dict | None = None):
        self.x, self.y = x, np.asarray(y, dtype=np.int64)
        self.scale = scale
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.max_frames = max_frames
        self.transform = transform
        self.info = info or {}

    def __len__(self) -> int:
        return len(self.y)

    def _sample(self, i) -> torch.Tensor:
        x = self.x[i]
        if self.lengths is not None:
            x = x[: self.lengths[i]]
            if self.max_frames is not None:
                x = _fix_length(x, self.max_frames)
        return torch.from_numpy(np.asarray(x, dtype=np.float32) * np.float32(self.scale))

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        x = self._sample(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.y[i])

    def as_tensors(self):
        """``(x, y)``: images float32 ``[N, 1, H, W]``; sequences float32 ``[N, frames, features]``,
        padded with zeros (or cropped) to ``max_frames`` (default: the longest)."""
        if self.transform is not None:
            xs = [self[i][0] for i in range(len(self))]
            return torch.stack(xs), torch.from_numpy(self.y)
        if self.lengths is None:
            x = np.asarray(self.x, dtype=np.float32) * np.float32(self.scale)
            return torch.from_numpy(x), torch.from_numpy(self.y)
        frames = self.max_frames or int(self.lengths.max())
        out = np.stack([_fix_length(self.x[i][: self.lengths[i]], frames) for i in range(len(self))])
        return torch.from_numpy(out.astype(np.float32)), torch.from_numpy(self.y)


def _fix_length(x: np.ndarray, frames: int) -> np.ndarray:
    if len(x) >= frames:
        return x[:frames]
    pad = np.zeros((frames - len(x),) + x.shape[1:], dtype=x.dtype)
    return np.concatenate([x, pad])


class EventSplit(Dataset):
    """Event recordings (an ``EventBundle``, optionally a subset of its indices).

    Without ``T``/``dt`` a sample is an ``Events``; with one of them it is float32 counts
    ``[T, P, H, W]`` (audio ``[T, channels]``) over the window ``[0, duration_us)``.
    ``transform`` (a callable on ``Events``, e.g. ``spikeflow.data.transforms.Tonic(...)``)
    runs before binning.
    """

    def __init__(self, bundle: EventBundle, indices=None, *, T: int | None = None, dt: float | None = None,
                 duration_us: int | None = None, transform: Callable | None = None, info: dict | None = None):
        if T is not None and dt is not None:
            raise ConfigError("dataset: give T (number of bins) or dt (bin width, seconds), not both")
        if T is not None and int(T) < 1:
            raise ParameterError(f"dataset: T must be >= 1, got {T}")
        if dt is not None and not dt > 0:
            raise ParameterError(f"dataset: dt must be > 0 seconds, got {dt}")
        self.bundle = bundle
        self.indices = np.arange(len(bundle)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.T, self.dt = T, dt
        if duration_us is None:
            duration_us = int(bundle.events["t"].max()) + 1 if len(bundle.events) else 1
        self.duration_us = int(duration_us)
        self.transform = transform
        self.info = info or {}
        self.sensor_size = bundle.sensor_size

    @property
    def labels(self) -> np.ndarray:
        return self.bundle.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def events(self, i) -> Events:
        return self.bundle[int(self.indices[i])]

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        ev = self.events(i)
        label = int(self.bundle.labels[self.indices[i]])
        if self.transform is not None:
            ev = self.transform(ev)
        if self.T is None and self.dt is None:
            return ev, label
        if not isinstance(ev, Events):
            return ev, label
        frames = ev.to_frames(n_bins=self.T, dt=self.dt, t_start_us=0, duration_us=self.duration_us)
        return torch.from_numpy(frames), label

    def as_tensors(self, dtype=torch.uint8):
        """``(x, y)``: counts ``[N, T, P, H, W]`` (audio ``[N, T, C]``) in ``dtype`` (uint8 saturates
        at 255) and labels int64. Needs ``T`` or ``dt``."""
        if self.T is None and self.dt is None:
            raise ConfigError("as_tensors: the dataset needs T (number of bins) or dt (seconds) to stack events")
        y = torch.from_numpy(self.labels.astype(np.int64))
        if self.transform is not None:
            xs = [self[i][0] for i in range(len(self))]
            x = torch.stack(xs)
            if not dtype.is_floating_point:
                x = x.clamp(max=torch.iinfo(dtype).max)
            return x.to(dtype), y
        whole = np.array_equal(self.indices, np.arange(len(self.bundle)))
        sub = self.bundle if whole else self.bundle.subset(self.indices)
        np_dtype = {torch.uint8: np.uint8, torch.int16: np.int16, torch.int32: np.int32,
                    torch.float32: np.float32}.get(dtype)
        if np_dtype is None:
            raise ParameterError(f"as_tensors: dtype must be uint8, int16, int32 or float32, got {dtype}")
        x = sub.bin_all(n_bins=self.T, dt=self.dt, duration_us=self.duration_us, dtype=np_dtype, from_zero=True)
        return torch.from_numpy(x), y
