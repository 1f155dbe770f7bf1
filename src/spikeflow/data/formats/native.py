"""spikeflow's own event files.

- ``.npz`` — one recording: arrays ``x, y, t, p``, ``sensor_size`` (3,), ``label``
  (-1 = none) and ``format`` = "spikeflow-events-1". Read with ``allow_pickle=False``.
- ``.h5`` bundle — many recordings in flat arrays: ``x, y, t, p`` concatenated,
  ``offsets`` (N+1), ``labels`` (N); attributes ``format`` = "spikeflow-bundle-1"
  and ``sensor_size``. The dataset cache uses it; ``EventBundle`` reads it lazily
  and bins whole splits at once.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np

from spikeflow.atomic import atomic_output
from spikeflow.data.events import Events, make_events_array
from spikeflow.data.formats._common import MAX_EVENTS, MAX_SAMPLES, Source, fail, load_bytes
from spikeflow.data.formats._h5 import dataset, open_h5, read_array
from spikeflow.errors import DataFormatError

NPZ_FORMAT = "spikeflow-events-1"
BUNDLE_FORMAT = "spikeflow-bundle-1"
FIELDS = ("x", "y", "t", "p")


def read_npz(src: Source, *, max_events: int = MAX_EVENTS) -> Events:
    """Events of a spikeflow ``.npz`` (arrays x, y, t in µs, p, sensor_size, label), read without
    unpickling; array shapes are checked from the headers before any data is read.
    """
    data, name = load_bytes(src)
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:
        raise fail(name, 0, f"not a readable .npz ({type(err).__name__}: {str(err)[:120]})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise fail(name, 0, "a single .npy array, not an .npz archive")
    with z:
        missing = [k for k in (*FIELDS, "sensor_size") if k not in z.files]
        if missing:
            raise fail(name, 0, f"missing arrays {missing}; a spikeflow .npz holds x, y, t, p, sensor_size, label")
        try:
            # The archive's own header states each array's shape: refuse before reading.
            for k in (*FIELDS, "sensor_size", "label"):
                if k in z.files:
                    _check_npy_header(z, k, name, max_events)
            cols = {k: z[k] for k in FIELDS}
            size = z["sensor_size"]
            label = z["label"] if "label" in z.files else np.array(-1)
        except DataFormatError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile) as err:
            raise fail(name, 0, f"corrupt array in .npz ({type(err).__name__}: {str(err)[:120]})") from None
        except Exception as err:  # zlib.error and friends
            raise fail(name, 0, f"corrupt .npz ({type(err).__name__}: {str(err)[:120]})") from None
    return _assemble(name, cols, size, label)


def _check_npy_header(z, key: str, name: str, max_events: int) -> None:
    """Reads the member's .npy header (shape, dtype) and refuses object or oversized arrays."""
    fmt = np.lib.format
    info = z.zip.getinfo(key + ".npy")
    with z.zip.open(info) as fh:
        version = fmt.read_magic(fh)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = reader(fh)
    if dtype.hasobject or dtype.names is not None:
        raise fail(name, info.header_offset, f"array '{key}' has dtype {dtype}; only plain numbers are read")
    n = int(np.prod(shape, dtype=object)) if shape else 1
    if n > max_events:
        raise fail(name, info.header_offset, f"array '{key}' claims {n} entries, over the cap of {max_events}")


def _assemble(name, cols, size, label, check_order: bool = True) -> Events:
    n = None
    for k, v in cols.items():
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer):
            raise fail(name, 0, f"array '{k}' must be a 1-D integer array, got {v.dtype} {v.shape}")
        if n is None:
            n = len(v)
        elif len(v) != n:
            raise fail(name, 0, f"arrays x, y, t, p must have equal lengths, '{k}' has {len(v)} not {n}")
    size = np.asarray(size)
    if size.shape != (3,) or not np.issubdtype(size.dtype, np.integer) or size.min() < 1 or size.max() > 1 << 15:
        raise fail(name, 0, f"sensor_size must be 3 integers in 1..32768, got {size.tolist()}")
    label = np.asarray(label)
    if label.shape != () or not np.issubdtype(label.dtype, np.integer):
        raise fail(name, 0, f"label must be one integer, got {label.dtype} {label.shape}")
    for k, lim in (("x", size[0]), ("y", size[1]), ("p", size[2])):
        v = cols[k]
        if len(v) and (v.min() < 0 or v.max() >= lim):
            raise fail(name, 0, f"field '{k}' outside 0..{int(lim) - 1}")
    t = cols["t"]
    if check_order and len(t) and np.any(np.diff(t.astype(np.int64)) < 0):
        raise fail(name, 0, "timestamps decrease")
    arr = make_events_array(cols["x"], cols["y"], cols["t"], cols["p"])
    lab = int(label)
    return Events(arr, tuple(int(s) for s in size), lab if lab >= 0 else None, validate=False)


def write_npz(path, events: Events) -> None:
    """Writes ``events`` as a spikeflow ``.npz`` (x, y, t in µs, p, sensor_size, label), atomically."""
    with atomic_output(Path(path).with_suffix(".npz") if Path(path).suffix != ".npz" else path, "wb") as fh:
        np.savez(fh, x=events.x, y=events.y, t=events.t, p=events.p,
                 sensor_size=np.array(events.sensor_size, dtype=np.int64),
                 label=np.array(-1 if events.label is None else events.label, dtype=np.int64),
                 format=np.array(NPZ_FORMAT))


# --------------------------------------------------------------------------------------
# Bundles (many recordings).


def _small_dtype(hi: int):
    return np.uint8 if hi <= 255 else np.int16


def write_bundle(path, samples, sensor_size, *, compression="lzf") -> None:
    """Writes recordings (``Events`` or arrays with ``.label``) to one HDF5 bundle."""
    sensor_size = tuple(int(s) for s in sensor_size)
    arrays = [e.array for e in samples]
    labels = np.array([-1 if e.label is None else e.label for e in samples], dtype=np.int64)
    events = np.concatenate(arrays) if arrays else make_events_array([], [], [], [])
    write_bundle_arrays(path, events,
                        np.cumsum([0] + [len(a) for a in arrays]), labels, sensor_size, compression=compression)


def write_bundle_arrays(path, events: np.ndarray, offsets, labels, sensor_size, *, compression="lzf",
                        attrs=None) -> None:
    offsets = np.asarray(offsets, dtype=np.int64)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        w, h, npol = sensor_size
        for k, hi in (("x", w - 1), ("y", h - 1), ("p", npol - 1)):
            f.create_dataset(k, data=events[k].astype(_small_dtype(hi)), compression=compression)
        t = events["t"]
        if len(t) and t.min() >= 0 and t.max() < 1 << 32:
            t = t.astype(np.uint32)                     # halves the size of most recordings
        f.create_dataset("t", data=t, compression=compression, shuffle=compression is not None)
        f.create_dataset("offsets", data=offsets)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        f.attrs["format"] = BUNDLE_FORMAT
        f.attrs["sensor_size"] = np.array(sensor_size, dtype=np.int64)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v


class EventBundle:
    """All recordings of a bundle in memory: ``len``, ``[i] -> Events``, ``labels``, ``bin_all``."""

    def __init__(self, src: Source, *, max_events: int = MAX_EVENTS):
        f, name = open_h5(src)
        try:
            with f:
                if f.attrs.get("format") not in (BUNDLE_FORMAT, BUNDLE_FORMAT.encode()):
                    raise fail(name, 0, f"not a spikeflow bundle (attribute format must be '{BUNDLE_FORMAT}')")
                size = np.asarray(f.attrs.get("sensor_size", []))
                ds = {k: dataset(f, k, name) for k in (*FIELDS, "offsets", "labels")}
                n_ev = ds["t"].shape[0] if ds["t"].ndim == 1 else -1
                if n_ev < 0 or n_ev > max_events:
                    raise fail(name, 0, f"{n_ev} events (cap {max_events})")
                if any(ds[k].shape != (n_ev,) for k in FIELDS):
                    raise fail(name, 0, "arrays x, y, t, p must be 1-D and equally long")
                if ds["labels"].ndim != 1 or ds["labels"].shape[0] > MAX_SAMPLES \
                        or ds["offsets"].shape != (ds["labels"].shape[0] + 1,):
                    raise fail(name, 0, f"'labels' must be 1-D with at most {MAX_SAMPLES} entries, 'offsets' one more")
                cols = {k: read_array(ds[k], name, k) for k in FIELDS}
                offsets = read_array(ds["offsets"], name, "offsets")
                labels = read_array(ds["labels"], name, "labels")
                self.attrs = {k: f.attrs[k] for k in f.attrs}
        except DataFormatError:
            raise
        except Exception as err:  # h5py raises OSError, KeyError, TypeError... on damaged files
            raise fail(name, 0, f"damaged HDF5 bundle ({type(err).__name__}: {str(err)[:120]})") from None
        _assemble(name, cols, size, np.array(-1), check_order=False)  # fields and ranges
        if offsets.ndim != 1 or len(offsets) != len(labels) + 1 or not np.issubdtype(offsets.dtype, np.integer) \
                or offsets[0] != 0 or offsets[-1] != n_ev or np.any(np.diff(offsets) < 0):
            raise fail(name, 0, "'offsets' must run from 0 to the event count, non-decreasing, one more than 'labels'")
        dec = np.flatnonzero(np.diff(cols["t"].astype(np.int64)) < 0) + 1
        if len(dec) and not np.all(np.isin(dec, offsets)):
            raise fail(name, 0, "timestamps decrease inside a recording")
        self.name = name
        self.sensor_size = tuple(int(s) for s in size)
        self.events = make_events_array(cols["x"], cols["y"], cols["t"], cols["p"])
        self.offsets = offsets.astype(np.int64)
        self.labels = labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Events:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        a = self.events[self.offsets[i]:self.offsets[i + 1]]
        lab = int(self.labels[i])
        return Events(a, self.sensor_size, lab if lab >= 0 else None, validate=False)

    def subset(self, indices) -> EventBundle:
        """A new in-memory bundle with the recordings ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        starts, stops = self.offsets[idx], self.offsets[idx + 1]
        counts = stops - starts
        take = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(int(counts.sum()))
        return EventBundle.from_arrays(self.events[take], np.concatenate([[0], np.cumsum(counts)]),
                                       self.labels[idx], self.sensor_size, name=self.name)

    @classmethod
    def from_arrays(cls, events, offsets, labels, sensor_size, *, name="<memory>", attrs=None) -> EventBundle:
        self = cls.__new__(cls)
        self.name = name
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.events = events
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.attrs = attrs or {}
        return self

    @classmethod
    def from_events(cls, samples, sensor_size=None, *, name="<memory>") -> EventBundle:
        samples = list(samples)
        size = sensor_size or samples[0].sensor_size
        arrays = [e.array for e in samples]
        events = np.concatenate(arrays) if arrays else make_events_array([], [], [], [])
        labels = [-1 if e.label is None else e.label for e in samples]
        return cls.from_arrays(events, np.cumsum([0] + [len(a) for a in arrays]), labels, size, name=name)

    def bin_all(self, *, n_bins=None, dt=None, duration_us=None, dtype=np.uint8, from_zero: bool = False) -> np.ndarray:
        """Counts ``[N, T, P, H, W]`` (audio ``[N, T, C]``) for all recordings in one pass.

        Each recording's window starts at its first event (at t = 0 with ``from_zero``); with ``n_bins`` the window is
        ``duration_us`` (default: the longest recording) split in equal bins. Counts saturate
        at the dtype's maximum.
        """
        from spikeflow.data.events import _bin_index

        w, h, npol = self.sensor_size
        n = len(self)
        counts = np.diff(self.offsets)
        sample = np.repeat(np.arange(n), counts)
        t0 = np.zeros(n, dtype=np.int64)
        nz = counts > 0
        if not from_zero:
            t0[nz] = self.events["t"][self.offsets[:-1][nz]]
        rel = self.events["t"] - t0[sample]
        if duration_us is None:
            duration_us = int(rel.max()) + 1 if len(rel) else 1
        bins, idx = _bin_index(rel, duration_us, n_bins, dt)
        keep = (idx >= 0) & (idx < bins)
        cells = bins * npol * h * w
        flat = (((idx * npol + self.events["p"]) * h + self.events["y"]) * w + self.events["x"])
        hi = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else None
        out = np.zeros((n, cells), dtype=dtype)
        chunk = max(1, (1 << 23) // max(cells, 1))          # ~8M counters per bincount
        for s0 in range(0, n, chunk):
            s1 = min(n, s0 + chunk)
            e0, e1 = self.offsets[s0], self.offsets[s1]
            k = keep[e0:e1]
            local = (sample[e0:e1][k] - s0) * cells + flat[e0:e1][k]
            total = np.bincount(local, minlength=(s1 - s0) * cells)
            if hi is not None:
                np.minimum(total, hi, out=total)
            out[s0:s1] = total.reshape(s1 - s0, cells)
        out = out.reshape(n, bins, npol, h, w)
        if h == 1 and npol == 1:
            return out.reshape(n, bins, w)
        return out
