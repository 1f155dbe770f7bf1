"""tonic's transforms applied to ``Events`` (not rewritten: tonic does the work).

``Tonic(transform)`` wraps any ``tonic.transforms`` object so it takes and returns
``Events``; event→event transforms give ``Events`` (with the sensor size updated for
``Downsample`` and the crops), event→array transforms (``ToFrame``, ``ToTimesurface``,
``ToVoxelGrid``, ...) give their numpy array. ``apply(transform, events)`` does the same once.
The common transforms are re-exported from tonic under their own names.
"""

from __future__ import annotations

import math

import numpy as np
from tonic import transforms as _tt
from tonic.transforms import (  # noqa: F401  (re-exported)
    CenterCrop,
    Compose,
    Decimation,
    Denoise,
    Downsample,
    DropEvent,
    DropPixel,
    MergePolarities,
    RandomCrop,
    RandomFlipLR,
    RandomFlipPolarity,
    RandomTimeReversal,
    RefractoryPeriod,
    SpatialJitter,
    TimeAlignment,
    TimeJitter,
    ToFrame,
    ToTimesurface,
    ToVoxelGrid,
    UniformNoise,
)

from spikeflow.data.events import Events
from spikeflow.errors import InputError


def _new_size(transform, size):
    w, h, p = size
    if isinstance(transform, _tt.Downsample):
        f = transform.spatial_factor
        fx, fy = (f, f) if np.isscalar(f) else (f[0], f[1])
        return (max(1, math.ceil(w * fx)), max(1, math.ceil(h * fy)), p)
    if isinstance(transform, (_tt.CenterCrop, _tt.RandomCrop)):
        s = transform.size
        cw, ch = (s, s) if np.isscalar(s) else (s[0], s[1])
        return (int(cw), int(ch), p)
    if isinstance(transform, _tt.MergePolarities):
        return (w, h, 1)
    if isinstance(transform, _tt.Compose):
        for t in transform.transforms:
            size = _new_size(t, size)
        return size
    return size


def apply(transform, events: Events):
    """``transform(events.array)`` as ``Events`` (event→event) or the array it returns."""
    if not isinstance(events, Events):
        raise InputError(f"transforms.apply: expected Events, got {type(events).__name__}")
    out = transform(events.array.copy())
    if isinstance(out, np.ndarray) and out.dtype.names and {"x", "y", "t", "p"} <= set(out.dtype.names):
        size = _new_size(transform, events.sensor_size)
        out = np.sort(out, order="t", kind="stable") if len(out) and np.any(np.diff(out["t"]) < 0) else out
        return Events(out, size, events.label, validate=False)
    return out


class Tonic:
    """A tonic transform usable as ``load_dataset(..., transform=Tonic(...))``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, events: Events):
        return apply(self.transform, events)

    def __repr__(self) -> str:
        return f"Tonic({self.transform!r})"
