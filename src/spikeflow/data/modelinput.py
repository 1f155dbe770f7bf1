"""Data cut to a model's time base: what every command after training feeds a model.

``model_steps(data, split, timebase)`` gives time-major inputs ``[T, N, *input_shape]``:
event data binned with the model's ``T`` over its window, static images encoded as it was
trained (``rate``: Bernoulli spikes drawn from a per-sample seed, so every command sees the
same spikes for the same sample; ``direct``: the value at every step), frame sequences as
they are. ``model_recordings`` gives the same inputs as event streams (static images via
their rate spikes, one event per spike at the start of its step). Data that do not fit the
model (geometry, classes, window) raise a one-line ``ConfigError`` naming the flag to fix it.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.timebase import TimeBase

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def seeded_rate(x: np.ndarray, T: int, seed: int = 0, start: int = 0) -> np.ndarray:
    """Bernoulli spikes ``[T, N, ...]`` with p = ``x`` clipped to [0, 1]; sample ``i``'s draws come
    from seed ``(seed, start + i)`` alone, so they do not depend on batching or on other samples."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    out = np.empty((int(T),) + x.shape, dtype=np.float32)
    for i in range(x.shape[0]):
        u = np.random.default_rng([int(seed), int(start + i)]).random((int(T),) + x.shape[1:], dtype=np.float32)
        out[:, i] = u < x[i]
    return out


def spread(n: int, limit: int | None, index: int | None = None) -> np.ndarray:
    """Indices of ``limit`` of ``n`` samples spread evenly over the split (all without a limit), the
    ``--limit`` selection of every command: splits stored sorted by label keep their class balance.
    ``index``: that one sample only."""
    if index is not None:
        if not 0 <= int(index) < n:
            raise ConfigError(f"--index {index} is outside 0..{n - 1}")
        return np.array([int(index)])
    if not limit or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, int(limit)).round().astype(np.int64))


def _sequence_sets() -> set:
    from spikeflow.data import DATASETS

    return {k for k, v in DATASETS.items() if v.get("kind") == "sequence"}


def _split(data, split: str, tb: TimeBase | None = None, **kw):
    """``data``/``split`` as a dataset; event files of your own (a path) are read in the model's
    geometry (channel data: its channel count, for a file whose top channels never fire) and,
    when their recordings are shorter, the model's window."""
    from spikeflow.data import load_dataset
    from spikeflow.data.datasets.byo import is_path, sensor_for_input

    if tb is None or not tb.is_events or not is_path(data):
        return load_dataset(data, split, **kw)
    kw.setdefault("sensor_size", sensor_for_input(tb.input_shape))
    ds = load_dataset(data, split, **kw)
    if tb.duration_us is not None and getattr(ds, "duration_us", tb.duration_us) < tb.duration_us:
        ds.duration_us = tb.duration_us
    return ds


def _classes(data, y: np.ndarray) -> int:
    from spikeflow.data import DATASETS

    info = DATASETS.get(str(data))
    return int(info["classes"]) if info is not None else int(y.max()) + 1 if len(y) else 0


def _check_events(data, ds, tb: TimeBase, overridden: bool, labels) -> None:
    """Event data against the model: sensor geometry, classes, then the recording window."""
    if not hasattr(ds, "events"):
        raise ConfigError(f"--data {data}: the model was trained on event data ({tb.describe()}); "
                          f"these data are not events")
    shape = tb.input_shape
    want = (shape[-1], shape[-2] if len(shape) > 1 else 1, shape[-3] if len(shape) > 2 else 1)
    sensor = tuple(int(s) for s in getattr(ds, "sensor_size", want))
    if sensor != want:
        raise ConfigError(f"--data {data}: sensor (W, H, P) = {sensor} but the model takes {want} "
                          f"(input {shape}, trained on {tb.data or 'other data'}); use --data with data of that "
                          f"geometry")
    tb.check_fits(shape, _classes(data, labels), f"--data {data}")
    window = int(getattr(ds, "duration_us", 0) or 0)
    if window and tb.duration_us is not None and window != tb.duration_us and not overridden:
        raise ConfigError(f"--data {data}: recordings span {window / 1e3:g} ms but the model was trained on "
                          f"{tb.duration_us / 1e3:g} ms windows ({tb.T} steps of {tb.dt * 1e3:g} ms); "
                          f"pass --dt (step width) or --T (steps) to choose the binning")


def model_steps(data, split: str, tb: TimeBase, *, limit: int | None = None, seed: int = 0,
                overridden: bool = False, index: int | None = None, load: dict | None = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """``(x [T, N, *input_shape] float32, y [N] int64)`` of ``data``/``split`` for a model of time base ``tb``
    (``overridden``: ``--dt``/``--T`` were given, so a different event window is accepted; ``limit``: that
    many samples spread over the split; ``index``: one sample; ``load``: options for the loader of event
    files, e.g. their test part ``test_frac``/``test_path``)."""
    if tb.is_events:
        ds = _split(data, split, tb, **(load or {}))
        keep = spread(len(ds), limit, index)
        ys = np.asarray(ds.labels[keep], dtype=np.int64) if hasattr(ds, "labels") else np.zeros(0, np.int64)
        _check_events(data, ds, tb, overridden, ys)
        window = tb.window_us
        xs = np.stack([ds.events(int(i)).to_frames(n_bins=tb.T, t_start_us=0, duration_us=window)
                       for i in keep]) if len(keep) else np.zeros((0, tb.T) + tb.input_shape, np.float32)
        return np.ascontiguousarray(xs.transpose(1, 0, *range(2, xs.ndim)), dtype=np.float32), ys
    if tb.encoding == "sequence":
        ds = _split(data, split, **({"max_frames": tb.T} if str(data) in _sequence_sets() else {}))
        x, y = (np.asarray(v) for v in ds.as_tensors())
        keep = spread(len(y), limit, index)
        x, y = x[keep], y[keep]
        if x.ndim < 3:
            raise ConfigError(f"--data {data}: the model takes frame sequences ({tb.describe()}); "
                              f"these samples have shape {tuple(x.shape[1:])}")
        tb.check_fits(x.shape[2:], _classes(data, y), f"--data {data}")
        if x.shape[1] != tb.T:
            raise ConfigError(f"--data {data}: samples have {x.shape[1]} frames but the model takes {tb.T}; "
                              f"pass --T {x.shape[1]} or data with {tb.T} frames")
        return np.ascontiguousarray(x.transpose(1, 0, *range(2, x.ndim)), dtype=np.float32), y
    ds = _split(data, split)
    if hasattr(ds, "events"):
        raise ConfigError(f"--data {data}: these are event data but the model takes static inputs "
                          f"({tb.describe()}); use --data with images of shape {tb.input_shape}")
    x, y = (np.asarray(v) for v in ds.as_tensors())
    keep = spread(len(y), limit, index)
    x, y = x[keep].astype(np.float32), y[keep]
    tb.check_fits(x.shape[1:], _classes(data, y), f"--data {data}")
    x = x.reshape((len(x),) + tb.input_shape)
    if tb.encoding == "rate":  # each sample's spikes drawn from its index in the split
        out = np.empty((tb.T,) + x.shape, np.float32)
        for j, i in enumerate(keep):
            out[:, j] = seeded_rate(x[j:j + 1], tb.T, seed, start=int(i))[:, 0]
        return out, y
    return np.ascontiguousarray(np.broadcast_to(x[None], (tb.T,) + x.shape), dtype=np.float32), y


def spikes_to_events(spikes: np.ndarray, dt: float) -> np.ndarray:
    """Events (``x, y, t µs, p``) of one sample's spike counts ``[T, *shape]``: one event per count at
    the start of its step; shape ``(P, H, W)`` maps to ``(p, y, x)``, ``(H, W)`` to ``(y, x)``, ``(N,)`` to ``x``."""
    counts = np.rint(np.asarray(spikes)).astype(np.int64)
    if (counts < 0).any():
        raise ConfigError("spikes_to_events: negative spike counts")
    idx = np.nonzero(counts)
    reps = counts[idx]
    k = np.repeat(idx[0], reps)
    t = np.rint(k * dt * 1e6).astype(np.int64)
    coords = [np.repeat(a, reps) for a in idx[1:]]
    ev = np.zeros(len(t), EVENT_DTYPE)
    ev["t"] = t
    names = {1: ("x",), 2: ("y", "x"), 3: ("p", "y", "x")}.get(len(coords))
    if names is None:
        raise ConfigError(f"spikes_to_events: inputs of rank {len(coords)} cannot be events (rank 1-3)")
    for name, c in zip(names, coords):
        ev[name] = c
    order = np.argsort(ev["t"], kind="stable")
    return ev[order]


def model_recordings(data, split: str, tb: TimeBase, *, limit: int | None = None, seed: int = 0,
                     overridden: bool = False, index: int | None = None, load: dict | None = None
                     ) -> Tuple[Iterator, np.ndarray, int]:
    """``(recordings, labels, window_us)``: event data's own recordings, or static/sequence inputs as
    the events of their steps (rate-coded images: their spikes); ``recordings`` yields ``(events, label)``;
    ``load`` as in ``model_steps``."""
    if tb.is_events:
        ds = _split(data, split, tb, **(load or {}))
        keep = spread(len(ds), limit, index)
        labels = np.asarray(ds.labels[keep], dtype=np.int64) if hasattr(ds, "labels") else np.zeros(0, np.int64)
        _check_events(data, ds, tb, overridden, labels)
        window = tb.window_us
        return ((ds.events(int(i)), int(y)) for i, y in zip(keep, labels)), labels, window
    if tb.encoding == "direct":
        raise ConfigError(f"--data {data}: the model takes analog inputs at every step (encoding 'direct'); "
                          f"they have no event stream (train with --encoding rate to stream static data)")
    x, y = model_steps(data, split, tb, limit=limit, seed=seed, overridden=overridden, index=index)
    if tb.encoding == "sequence" and not np.array_equal(x, np.rint(x)):
        raise ConfigError(f"--data {data}: the frames hold non-integer values; only spike counts can be streamed")
    return ((spikes_to_events(x[:, i], tb.dt), int(y[i])) for i in range(len(y))), y, tb.window_us
