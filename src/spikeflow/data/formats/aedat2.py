"""AEDAT 2.0 (jAER) files as recorded from a DVS128.

Header lines start with ``#`` (the first is ``#!AER-DAT2.0``). Then big-endian
8-byte records: a 32-bit address and a 32-bit timestamp in µs. DVS128 addresses
(jAER ``DVS128``): bit 0 polarity (1 = ON here), bits 7..1 x, bits 14..8 y,
bit 15 set for external (non-DVS) events, which are skipped. jAER's viewer mirrors x
(``127 - x``); pass ``flip_x=True`` for that orientation. A 32-bit timestamp that
wraps around is unwrapped (+2**32 µs).
"""

from __future__ import annotations

import numpy as np

from spikeflow.atomic import atomic_write_bytes
from spikeflow.data.events import Events, make_events_array
from spikeflow.data.formats._common import (
    MAX_EVENTS,
    Source,
    check_count,
    fail,
    load_bytes,
    parse_text_header,
)
from spikeflow.errors import DataFormatError

RECORD = 8
DVS128_SIZE = (128, 128, 2)
MAGIC = b"#!AER-DAT2.0"


def read_aedat2(src: Source, sensor_size=DVS128_SIZE, *, max_events: int = MAX_EVENTS, label=None,
                flip_x: bool = False) -> Events:
    """Events of an AEDAT 2.0 file (a path or bytes); DVS128 sensor ``(128, 128, 2)`` by default,
    timestamps in µs (32-bit wrap-arounds unwrapped). Malformed input raises ``DataFormatError``
    naming the file and the byte offset.
    """
    data, name = load_bytes(src)
    if not data.startswith(MAGIC):
        raise fail(name, 0, f"not an AEDAT 2.0 file (expected it to start with {MAGIC.decode()})")
    _, start = parse_text_header(data, name, b"#")
    body = len(data) - start
    if body % RECORD:
        raise fail(name, len(data) - body % RECORD, f"truncated record: {body} data bytes is not a "
                                                    f"multiple of {RECORD}")
    check_count(name, body // RECORD, max_events, start)
    rec = np.frombuffer(data, dtype=">u4", offset=start).reshape(-1, 2).astype(np.int64)
    addr, ts = rec[:, 0], rec[:, 1]
    wraps = np.concatenate([[0], np.cumsum(np.diff(ts) < -(1 << 31))])
    ts = ts + wraps * (1 << 32)
    dec = np.flatnonzero(np.diff(ts) < 0)
    if len(dec):
        raise fail(name, start + RECORD * int(dec[0] + 1), f"timestamp decreases ({int(ts[dec[0]])} "
                                                           f"-> {int(ts[dec[0] + 1])} µs)")
    dvs = (addr & 0x8000) == 0
    addr, ts = addr[dvs], ts[dvs]
    x = (addr >> 1) & 0x7F
    y = (addr >> 8) & 0x7F
    if flip_x:
        x = 127 - x
    p = addr & 1
    for field, v, lim in (("x", x, sensor_size[0]), ("y", y, sensor_size[1])):
        out = np.flatnonzero(v >= lim)
        if len(out):
            i = int(np.flatnonzero(dvs)[out[0]])
            raise fail(name, start + RECORD * i, f"{field}={int(v[out[0]])} outside sensor {tuple(sensor_size[:2])}")
    return Events(make_events_array(x, y, ts, p), sensor_size, label, validate=False)


def encode_aedat2(events: Events, *, flip_x: bool = False) -> bytes:
    """The bytes of an AEDAT 2.0 file (DVS128 addresses: x, y in 0..127, polarity 0/1; timestamps in µs)."""
    a = events.array
    if len(a) and (a["x"].max() > 127 or a["y"].max() > 127 or a["x"].min() < 0 or a["y"].min() < 0):
        raise DataFormatError("AEDAT 2.0 (DVS128): x and y must be 0..127")
    if len(a) and (a["p"].min() < 0 or a["p"].max() > 1):
        raise DataFormatError("AEDAT 2.0 (DVS128): polarity must be 0 or 1")
    t = a["t"].astype(np.int64)
    if len(t) and (t[0] < 0 or np.any(np.diff(t) < 0)):
        raise DataFormatError("AEDAT 2.0: timestamps must be >= 0 and non-decreasing")
    if len(t) > 1 and np.any(np.diff(t) >= 1 << 31):
        raise DataFormatError("AEDAT 2.0: a gap of 2**31 µs or more between events cannot be unwrapped")
    x = a["x"].astype(np.int64)
    if flip_x:
        x = 127 - x
    header = (b"#!AER-DAT2.0\r\n# This is a raw AE data file created by spikeflow\r\n"
              b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n")
    rec = np.empty((len(a), 2), dtype=">u4")
    rec[:, 0] = (a["y"].astype(np.int64) << 8) | (x << 1) | a["p"]
    rec[:, 1] = t & 0xFFFFFFFF
    return header + rec.tobytes()


def write_aedat2(path, events: Events, *, flip_x: bool = False) -> None:
    """Writes ``events`` as an AEDAT 2.0 file, atomically (see ``encode_aedat2``)."""
    atomic_write_bytes(path, encode_aedat2(events, flip_x=flip_x))
