"""SHD/SSC HDF5 files (Cramer et al. 2020, "The Heidelberg Spiking Data Sets").

``spikes/times`` (variable-length float arrays, seconds), ``spikes/units`` (variable-
length integer arrays, the channel), ``labels`` (one integer per sample). Each sample
becomes an ``Events`` with ``x = unit``, ``y = p = 0``, ``t`` in µs and sensor size
``(channels, 1, 1)``. The channel count comes from the file: its ``channels`` attribute
when present, else the largest unit + 1 over all samples (700 for the published SHD
files, whose cochlea model has 700 channels; 24 for a 24-channel recording).
"""

from __future__ import annotations

import h5py
import numpy as np

from spikeflow.atomic import atomic_output
from spikeflow.data.events import Events, make_events_array
from spikeflow.data.formats._common import MAX_EVENTS, MAX_SAMPLES, Source, fail
from spikeflow.data.formats._h5 import dataset, open_h5, read_array, run_isolated
from spikeflow.errors import DataFormatError

MAX_CHANNELS = 1 << 15


class SHDFile:
    """Lazy random access to the samples of one SHD-style file (``len``, ``[i]``)."""

    def __init__(self, src: Source, *, channels: int | None = None, max_events: int = MAX_EVENTS):
        self.file, self.name = open_h5(src)
        try:
            self.times = dataset(self.file, "spikes/times", self.name)
            self.units = dataset(self.file, "spikes/units", self.name)
            self.labels = read_array(dataset(self.file, "labels", self.name), self.name, "labels")
            n = len(self.labels)
            if self.labels.ndim != 1 or n > MAX_SAMPLES:
                raise fail(self.name, 0, f"'labels' must be 1-D with at most {MAX_SAMPLES} entries, "
                                         f"got shape {self.labels.shape}")
            if self.times.shape != (n,) or self.units.shape != (n,):
                raise fail(self.name, 0, f"'spikes/times' {self.times.shape} and 'spikes/units' {self.units.shape} "
                                         f"must both have shape ({n},) like 'labels'")
            if not np.issubdtype(self.labels.dtype, np.integer):
                raise fail(self.name, 0, f"'labels' must be integers, got {self.labels.dtype}")
            try:
                attr = self.file.attrs.get("channels", None)
            except Exception:
                attr = None
            if attr is not None and not _is_int(attr):
                raise fail(self.name, 0, f"attribute 'channels' must be an integer in 1..{MAX_CHANNELS}, got {attr!r}")
        except DataFormatError:
            self.file.close()
            raise
        except Exception as err:  # h5py raises OSError, KeyError, TypeError... on damaged files
            self.file.close()
            raise fail(self.name, 0, f"damaged HDF5 file ({type(err).__name__}: {str(err)[:120]})") from None
        self._channels = int(channels) if channels else (int(attr) if attr is not None else None)
        self.max_events = max_events

    @property
    def channels(self) -> int:
        """The channel count: given, the file's ``channels`` attribute, else the largest unit + 1."""
        if self._channels is None:
            top = -1
            for i in range(len(self)):
                u = np.asarray(read_array(self.units, self.name, "spikes/units", i))
                if u.size and np.issubdtype(u.dtype, np.integer):
                    top = max(top, int(u.max()))
            if top >= MAX_CHANNELS:
                raise fail(self.name, 0, f"unit {top} is over the cap of {MAX_CHANNELS - 1}")
            self._channels = max(top + 1, 1)
        return self._channels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Events:
        if not 0 <= i < len(self):
            raise IndexError(i)
        t = np.asarray(read_array(self.times, self.name, "spikes/times", i))
        u = np.asarray(read_array(self.units, self.name, "spikes/units", i))
        where = f"sample {i}"
        if t.ndim != 1 or u.shape != t.shape:
            raise fail(self.name, 0, f"{where}: times {t.shape} and units {u.shape} differ")
        if len(t) > self.max_events:
            raise fail(self.name, 0, f"{where}: {len(t)} events is over the cap of {self.max_events}")
        if not np.issubdtype(t.dtype, np.number) or not np.issubdtype(u.dtype, np.integer):
            raise fail(self.name, 0, f"{where}: times must be numbers and units integers, got {t.dtype}, {u.dtype}")
        t = t.astype(np.float64)
        if len(t) and (not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > 9e12):
            raise fail(self.name, 0, f"{where}: times must be finite seconds in 0..9e12")
        if len(u) and (u.min() < 0 or u.max() >= self.channels):
            raise fail(self.name, 0, f"{where}: unit {int(u.max()) if u.max() >= self.channels else int(u.min())} "
                                     f"outside 0..{self.channels - 1}")
        t_us = np.rint(t.astype(np.float64) * 1e6).astype(np.int64)
        order = np.argsort(t_us, kind="stable")
        arr = make_events_array(u[order], 0, t_us[order], 0)
        label = int(self.labels[i])
        return Events(arr, (self.channels, 1, 1), label if label >= 0 else None, validate=False)

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_int(v) -> bool:
    try:
        return float(v) == int(v) and 0 < int(v) <= MAX_CHANNELS
    except (TypeError, ValueError, OverflowError):
        return False


def read_shd(src: Source, *, channels: int | None = None, max_events: int = MAX_EVENTS,
             isolate: bool = True) -> list[Events]:
    """Every sample of an SHD-style file. ``isolate`` (default) parses the HDF5 file in a forked
    child process, so a damaged file that crashes the HDF5 library raises ``DataFormatError``
    instead of killing the caller; ``SHDFile`` reads lazily in-process (trusted files)."""
    if not isolate:
        with SHDFile(src, channels=channels, max_events=max_events) as f:
            return [f[i] for i in range(len(f))]
    name = "<bytes>" if isinstance(src, (bytes, bytearray, memoryview)) else str(src)
    with SHDFile(src, channels=channels, max_events=max_events):
        pass  # structure and shapes checked in-process (fast refusal of most bad files)
    flat = run_isolated(_read_flat, src, channels, max_events, name=name)
    flat["events"] = make_events_array(flat["events_x"], flat["events_y"], flat["events_t"], flat["events_p"])
    offsets, size = flat["offsets"], tuple(int(s) for s in flat["sensor_size"])
    out = []
    for i in range(len(offsets) - 1):
        a = flat["events"][offsets[i]:offsets[i + 1]]
        lab = int(flat["labels"][i])
        out.append(Events(a.copy(), size, lab if lab >= 0 else None, validate=False))
    return out


def _read_flat(src, channels, max_events) -> dict:
    with SHDFile(src, channels=channels, max_events=max_events) as f:
        samples = [f[i] for i in range(len(f))]
        size = (f.channels, 1, 1)
    arrays = [e.array for e in samples]
    events = np.concatenate(arrays) if arrays else make_events_array([], [], [], [])
    return {"events_x": events["x"], "events_y": events["y"], "events_t": events["t"], "events_p": events["p"],
            "offsets": np.cumsum([0] + [len(a) for a in arrays]),
            "labels": np.array([-1 if e.label is None else e.label for e in samples], dtype=np.int64),
            "sensor_size": np.array(size)}


def write_shd(path, samples: list[Events], *, channels: int | None = None) -> None:
    """Writes recordings (with labels) as an SHD-style file; times stored as float64 seconds."""
    if not samples:
        raise DataFormatError(f"{path}: nothing to write")
    channels = channels or max(e.sensor_size[0] for e in samples)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        ft = h5py.vlen_dtype(np.float64)
        fu = h5py.vlen_dtype(np.uint16)
        times = f.create_dataset("spikes/times", (len(samples),), dtype=ft)
        units = f.create_dataset("spikes/units", (len(samples),), dtype=fu)
        for i, e in enumerate(samples):
            if e.sensor_size[1:] != (1, 1) or e.sensor_size[0] > channels:
                raise DataFormatError(f"{path}: sample {i} has sensor_size {e.sensor_size}; SHD "
                                      f"needs (channels<={channels}, 1, 1)")
            times[i] = e.t.astype(np.float64) / 1e6
            units[i] = e.x.astype(np.uint16)
        labels = np.array([-1 if e.label is None else e.label for e in samples], dtype=np.int32)
        f.create_dataset("labels", data=labels)
        f.attrs["channels"] = channels
