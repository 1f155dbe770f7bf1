"""N-MNIST / N-Caltech101 binary files (``.bin``), Orchard et al. 2015.

Each event is 40 bits, big-endian: byte 0 = x, byte 1 = y, byte 2 bit 7 = polarity
(1 = ON), then a 23-bit timestamp in µs (byte 2 bits 6..0, bytes 3 and 4). A record
with ``y == 240`` is a timestamp-overflow marker that adds 2**13 µs to every later
event (as in the dataset authors' ``Read_Ndataset.m``).
"""

from __future__ import annotations

import numpy as np

from spikeflow.atomic import atomic_write_bytes
from spikeflow.data.events import Events, make_events_array
from spikeflow.data.formats._common import MAX_EVENTS, Source, check_count, fail, load_bytes
from spikeflow.errors import DataFormatError

RECORD = 5
OVERFLOW_Y = 240
OVERFLOW_STEP = 1 << 13   # µs added per overflow marker (Read_Ndataset.m)
TS_BITS = 23
NMNIST_SIZE = (34, 34, 2)


def read_nmnist_bin(src: Source, sensor_size=None, *, max_events: int = MAX_EVENTS, label=None) -> Events:
    """Events of an N-MNIST ``.bin`` file (5-byte records; a path or bytes); sensor at least
    ``(34, 34, 2)``, timestamps in µs. Malformed input raises ``DataFormatError`` naming the byte offset.
    """
    data, name = load_bytes(src, max_bytes=max_events * RECORD + RECORD)
    if len(data) % RECORD:
        whole = len(data) - len(data) % RECORD
        raise fail(name, whole, f"truncated record: file length {len(data)} is not a multiple of {RECORD}")
    check_count(name, len(data) // RECORD, max_events)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    ts = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    overflow = y == OVERFLOW_Y
    ts = ts + np.cumsum(overflow) * OVERFLOW_STEP
    keep = ~overflow
    x, y, p, ts = x[keep], y[keep], p[keep], ts[keep]
    bad = np.flatnonzero(np.diff(ts) < 0)
    if len(bad):
        rec = int(np.flatnonzero(keep)[bad[0] + 1])
        raise fail(name, rec * RECORD, f"timestamp decreases ({int(ts[bad[0]])} -> {int(ts[bad[0] + 1])} µs)")
    if sensor_size is None:
        w = max(int(x.max()) + 1 if len(x) else 1, NMNIST_SIZE[0])
        h = max(int(y.max()) + 1 if len(y) else 1, NMNIST_SIZE[1])
        sensor_size = (w, h, 2)
    else:
        for field, v, lim in (("x", x, sensor_size[0]), ("y", y, sensor_size[1])):
            out = np.flatnonzero(v >= lim)
            if len(out):
                rec = int(np.flatnonzero(keep)[out[0]])
                raise fail(name, rec * RECORD, f"{field}={int(v[out[0]])} outside sensor_size {tuple(sensor_size)}")
    return Events(make_events_array(x, y, ts, p), sensor_size, label, validate=False)


def encode_nmnist_bin(events: Events) -> bytes:
    """The bytes of ``events`` in the N-MNIST format (overflow markers as needed)."""
    a = events.array
    if len(a) and (a["x"].min() < 0 or a["x"].max() > 255 or a["y"].min() < 0 or a["y"].max() > 239):
        raise DataFormatError("N-MNIST .bin: x must be 0..255 and y 0..239 (y=240 is the overflow marker)")
    if len(a) and (a["p"].min() < 0 or a["p"].max() > 1):
        raise DataFormatError("N-MNIST .bin: polarity must be 0 or 1")
    t = a["t"].astype(np.int64)
    if len(t) and (t[0] < 0 or np.any(np.diff(t) < 0)):
        raise DataFormatError("N-MNIST .bin: timestamps must be >= 0 and non-decreasing")
    # Markers before each event so that t - markers * STEP fits in 23 bits.
    need = np.maximum(t - ((1 << TS_BITS) - 1) + OVERFLOW_STEP - 1, 0) // OVERFLOW_STEP
    n_markers = np.diff(np.concatenate([[0], need]))
    total = len(t) + int(need[-1] if len(need) else 0)
    out = np.zeros((total, RECORD), dtype=np.uint8)
    pos = np.arange(len(t)) + need                      # row of each real event
    rows = np.repeat(pos, n_markers) - _ranks(n_markers)  # marker rows just before it
    out[rows, 1] = OVERFLOW_Y
    rel = t - need * OVERFLOW_STEP
    out[pos, 0] = a["x"]
    out[pos, 1] = a["y"]
    out[pos, 2] = (a["p"].astype(np.int64) << 7) | ((rel >> 16) & 0x7F)
    out[pos, 3] = (rel >> 8) & 0xFF
    out[pos, 4] = rel & 0xFF
    return out.tobytes()


def _ranks(counts: np.ndarray) -> np.ndarray:
    """For ``np.repeat(.., counts)``: counts-1 .. 0 within each group (markers fill backwards)."""
    if counts.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(int(counts.sum())) - starts
    return np.repeat(counts, counts) - within


def write_nmnist_bin(path, events: Events) -> None:
    """Writes ``events`` as an N-MNIST ``.bin`` file, atomically."""
    atomic_write_bytes(path, encode_nmnist_bin(events))
