"""``Events``: a tonic-compatible structured event array plus its sensor size.

The array has the dtype ``EVENT_DTYPE`` (``x:int16, y:int16, t:int64`` in µs,
``p:int8``); audio events use ``x`` as the channel and leave ``y = p = 0``.
``sensor_size`` is ``(width, height, polarities)`` as in tonic, so tonic's
transforms apply to ``events.array`` unchanged (see ``spikeflow.data.transforms``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from spikeflow.errors import InputError, ParameterError

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def make_events_array(x, y, t, p) -> np.ndarray:
    """Builds an ``EVENT_DTYPE`` array from four equally long sequences."""
    n = len(t)
    arr = np.empty(n, dtype=EVENT_DTYPE)
    arr["x"], arr["y"], arr["t"], arr["p"] = x, y, t, p
    return arr


class Events:
    """Events of one recording: ``array`` (``EVENT_DTYPE``) and ``sensor_size`` (W, H, P).

    ``label`` is optional metadata (an int) carried by the file formats.
    Validation happens on construction: coordinates inside the sensor, polarity
    in ``[0, P)``, timestamps non-decreasing (``sort=True`` sorts them instead).
    """

    __slots__ = ("array", "sensor_size", "label")

    def __init__(self, array: np.ndarray, sensor_size: Sequence[int], label: int | None = None,
                 *, sort: bool = False, validate: bool = True):
        array = np.asarray(array)
        if array.dtype != EVENT_DTYPE:
            if array.dtype.names is None or not {"x", "y", "t", "p"} <= set(array.dtype.names):
                raise InputError(f"Events: array must be a structured array with fields x, y, t, p; "
                                 f"got dtype {array.dtype}")
            conv = np.empty(array.shape, dtype=EVENT_DTYPE)
            for name in ("x", "y", "t", "p"):
                conv[name] = array[name]
            array = conv
        if array.ndim != 1:
            raise InputError(f"Events: array must be 1-D, got shape {array.shape}")
        size = tuple(int(s) for s in sensor_size)
        if len(size) != 3 or min(size) < 1:
            raise ParameterError(f"Events: sensor_size must be (width, height, polarities) >= 1, got {sensor_size}")
        if sort and len(array) and np.any(np.diff(array["t"]) < 0):
            array = array[np.argsort(array["t"], kind="stable")]
        self.array = array
        self.sensor_size = size
        self.label = None if label is None else int(label)
        if validate:
            self.validate()

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, x, y, t, p, sensor_size, label=None, *, sort=False) -> Events:
        return cls(make_events_array(x, y, t, p), sensor_size, label, sort=sort)

    @classmethod
    def empty(cls, sensor_size, label=None) -> Events:
        return cls(np.empty(0, dtype=EVENT_DTYPE), sensor_size, label)

    def validate(self) -> None:
        a, (w, h, npol) = self.array, self.sensor_size
        if len(a) == 0:
            return
        for field, hi in (("x", w), ("y", h), ("p", npol)):
            v = a[field]
            lo_v, hi_v = int(v.min()), int(v.max())
            if lo_v < 0 or hi_v >= hi:
                bad = int(np.flatnonzero((v < 0) | (v >= hi))[0])
                raise InputError(f"Events: field '{field}' of event {bad} is {int(v[bad])}, valid is 0..{hi - 1} "
                                 f"for sensor_size {self.sensor_size}")
        dt = np.diff(a["t"])
        if np.any(dt < 0):
            bad = int(np.flatnonzero(dt < 0)[0]) + 1
            raise InputError(f"Events: timestamps decrease at event {bad} ({int(a['t'][bad - 1])} "
                             f"-> {int(a['t'][bad])} µs); "
                             "pass sort=True to sort them")

    # -- basic protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.array[key]
        sub = self.array[key]
        return Events(np.atleast_1d(sub), self.sensor_size, self.label, validate=False)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Events):
            return NotImplemented
        return (self.sensor_size == other.sensor_size and self.label == other.label
                and np.array_equal(self.array, other.array))

    def __repr__(self) -> str:
        dur = self.duration_us
        return f"Events(n={len(self)}, sensor_size={self.sensor_size}, duration={dur} µs, label={self.label})"

    @property
    def x(self):
        return self.array["x"]

    @property
    def y(self):
        return self.array["y"]

    @property
    def t(self):
        return self.array["t"]

    @property
    def p(self):
        return self.array["p"]

    @property
    def duration_us(self) -> int:
        return int(self.array["t"][-1] - self.array["t"][0]) if len(self) else 0

    # -- operations -------------------------------------------------------------------
    def time_slice(self, t_start_us: int, t_stop_us: int) -> Events:
        """Events with ``t_start <= t < t_stop`` (µs); binary search on the sorted times."""
        t = self.array["t"]
        i0, i1 = np.searchsorted(t, t_start_us, "left"), np.searchsorted(t, t_stop_us, "left")
        return Events(self.array[i0:i1], self.sensor_size, self.label, validate=False)

    @staticmethod
    def concatenate(parts: Sequence[Events], *, offset_us: int = 0) -> Events:
        """Joins recordings end to end; each later part is shifted so time keeps increasing.

        ``offset_us`` is the gap added between consecutive parts.
        """
        if not parts:
            raise InputError("Events.concatenate: nothing to concatenate")
        size = parts[0].sensor_size
        out, shift = [], 0
        for i, e in enumerate(parts):
            if e.sensor_size != size:
                raise InputError(f"Events.concatenate: part {i} has sensor_size {e.sensor_size}, expected {size}")
            a = e.array.copy()
            if len(a):
                a["t"] += shift - (a["t"][0] if i else 0)
                shift = int(a["t"][-1]) + offset_us
            out.append(a)
        return Events(np.concatenate(out), size, parts[0].label)

    def to_frames(self, *, n_bins: int | None = None, dt: float | None = None,
                  t_start_us: int | None = None, duration_us: int | None = None,
                  dtype=np.float32) -> np.ndarray:
        """Event counts per bin: ``[T, P, H, W]`` (audio sensors ``(C, 1, 1)`` give ``[T, C]``).

        Exactly one of ``n_bins`` (equal bins over the recording, or over ``duration_us``)
        and ``dt`` (bin width in seconds) is required.
        """
        w, h, npol = self.sensor_size
        a = self.array
        t0 = int(a["t"][0]) if (t_start_us is None and len(a)) else int(t_start_us or 0)
        span = duration_us if duration_us is not None else ((int(a["t"][-1]) - t0 + 1) if len(a) else 1)
        bins, idx = _bin_index(a["t"] - t0, span, n_bins, dt)
        frames = np.zeros((bins, npol, h, w), dtype=dtype)
        keep = (idx >= 0) & (idx < bins)
        np.add.at(frames, (idx[keep], a["p"][keep], a["y"][keep], a["x"][keep]), 1)
        if h == 1 and npol == 1:
            return frames.reshape(bins, w)
        return frames

    def to_tensor(self, *, n_bins: int | None = None, dt: float | None = None,
                  binary: bool = False, **kw) -> torch.Tensor:
        """The same as ``to_frames`` as a float32 torch tensor; ``binary`` clips counts to 0/1 spikes."""
        f = torch.from_numpy(self.to_frames(n_bins=n_bins, dt=dt, **kw))
        return f.clamp_(max=1) if binary else f


def _bin_index(rel_t: np.ndarray, span_us: int, n_bins: int | None, dt: float | None):
    """Bin count and per-event bin index for times relative to the window start."""
    if (n_bins is None) == (dt is None):
        raise ParameterError("binning: give exactly one of n_bins (number of bins) or dt (bin width, seconds)")
    if n_bins is not None:
        if int(n_bins) < 1:
            raise ParameterError(f"binning: n_bins must be >= 1, got {n_bins}")
        n_bins = int(n_bins)
        span = max(int(span_us), 1)
        idx = (rel_t.astype(np.int64) * n_bins) // span
        return n_bins, idx
    if not dt > 0:
        raise ParameterError(f"binning: dt must be > 0 seconds, got {dt}")
    width = dt * 1e6
    bins = max(int(np.ceil(max(int(span_us), 1) / width)), 1)
    return bins, np.floor(rel_t / width).astype(np.int64)
