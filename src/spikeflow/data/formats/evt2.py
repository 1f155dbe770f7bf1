"""Prophesee EVT 2.0 raw files (Metavision "EVT 2.0 format" documentation).

A text header of lines starting with ``%`` (``% format EVT2;height=H;width=W`` or
``% geometry WxH``; ``% end`` closes it), then little-endian 32-bit words whose top
4 bits give the type: 0x0 CD_OFF, 0x1 CD_ON (bits 27..22 timestamp LSBs, 21..11 x,
10..0 y), 0x8 EVT_TIME_HIGH (bits 27..0 = timestamp bits 33..6), 0xA EXT_TRIGGER,
0xE OTHERS, 0xF CONTINUED. Triggers and vendor words are skipped.
"""

from __future__ import annotations

import re

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

CD_OFF, CD_ON, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF
KNOWN_TYPES = (CD_OFF, CD_ON, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED)
MAX_COORD = (1 << 11) - 1


def _geometry(lines: list[str], name: str):
    w = h = None
    for line in lines:
        m = re.search(r"geometry\s+(\d+)x(\d+)", line)
        if m:
            w, h = int(m.group(1)), int(m.group(2))
        fm = re.search(r"format\s+EVT2[^\n]*", line)
        if fm:
            mw, mh = re.search(r"width=(\d+)", line), re.search(r"height=(\d+)", line)
            if mw and mh:
                w, h = int(mw.group(1)), int(mh.group(1))
    if w is not None and not (1 <= w <= MAX_COORD + 1 and 1 <= h <= MAX_COORD + 1):
        raise fail(name, 0, f"header geometry {w}x{h} outside 1..{MAX_COORD + 1}")
    return w, h


def read_evt2(src: Source, sensor_size=None, *, max_events: int = MAX_EVENTS, label=None) -> Events:
    """Events of a Prophesee EVT 2.0 ``.raw`` file (a path or bytes); the sensor size comes from the
    header's geometry, timestamps in µs. Malformed input raises ``DataFormatError`` naming the byte offset.
    """
    data, name = load_bytes(src)
    lines, start = parse_text_header(data, name, b"%", end_line=b"% end")
    w, h = _geometry(lines, name)
    body = len(data) - start
    if body % 4:
        raise fail(name, len(data) - body % 4, f"truncated 32-bit word: {body} data bytes is not a multiple of 4")
    check_count(name, body // 4, max_events, start)
    words = np.frombuffer(data, dtype="<u4", offset=start).astype(np.int64)
    kind = words >> 28
    unknown = np.flatnonzero(~np.isin(kind, KNOWN_TYPES))
    if len(unknown):
        i = int(unknown[0])
        raise fail(name, start + 4 * i, f"unknown EVT 2.0 event type 0x{int(kind[i]):X}")
    is_high = kind == TIME_HIGH
    # The latest TIME_HIGH before each word (0 before the first one).
    high_idx = np.maximum.accumulate(np.where(is_high, np.arange(len(words)), -1))
    high = np.where(high_idx >= 0, words[np.maximum(high_idx, 0)] & 0x0FFFFFFF, 0)
    cd = np.flatnonzero(kind <= CD_ON)
    wd = words[cd]
    t = (high[cd] << 6) | ((wd >> 22) & 0x3F)
    x = (wd >> 11) & 0x7FF
    y = wd & 0x7FF
    p = kind[cd]
    dec = np.flatnonzero(np.diff(t) < 0)
    if len(dec):
        raise fail(name, start + 4 * int(cd[dec[0] + 1]), f"timestamp decreases ({int(t[dec[0]])} "
                                                          f"-> {int(t[dec[0] + 1])} µs)")
    if sensor_size is None:
        if w is None:
            w = int(x.max()) + 1 if len(x) else 1
            h = int(y.max()) + 1 if len(y) else 1
        sensor_size = (w, h, 2)
    for field, v, lim in (("x", x, sensor_size[0]), ("y", y, sensor_size[1])):
        out = np.flatnonzero(v >= lim)
        if len(out):
            raise fail(name, start + 4 * int(cd[out[0]]), f"{field}={int(v[out[0]])} outside sensor {sensor_size[:2]}")
    return Events(make_events_array(x, y, t, p), sensor_size, label, validate=False)


def encode_evt2(events: Events) -> bytes:
    """The bytes of a Prophesee EVT 2.0 file (sensor up to 2048x2048, 2 polarities; timestamps in µs)."""
    a = events.array
    w, h, npol = events.sensor_size
    if w > MAX_COORD + 1 or h > MAX_COORD + 1 or npol > 2:
        raise DataFormatError(f"EVT 2.0: sensor {events.sensor_size} exceeds 2048x2048 with 2 polarities")
    t = a["t"].astype(np.int64)
    if len(t) and (t[0] < 0 or np.any(np.diff(t) < 0) or t[-1] >= 1 << 34):
        raise DataFormatError("EVT 2.0: timestamps must be non-decreasing in 0..2**34-1 µs")
    header = f"% evt 2.0\n% format EVT2;height={h};width={w}\n% geometry {w}x{h}\n% end\n".encode()
    high = t >> 6
    new_high = np.ones(len(t), dtype=bool)
    new_high[1:] = high[1:] != high[:-1]
    n = len(t) + int(new_high.sum())
    out = np.zeros(n, dtype="<u4")
    pos = np.arange(len(t)) + np.cumsum(new_high)
    out[pos[new_high] - 1] = (TIME_HIGH << 28) | high[new_high]
    out[pos] = (a["p"].astype(np.int64) << 28) | ((t & 0x3F) << 22) | (a["x"].astype(np.int64) << 11) | a["y"]
    return header + out.tobytes()


def write_evt2(path, events: Events) -> None:
    """Writes ``events`` as an EVT 2.0 file, atomically (see ``encode_evt2``)."""
    atomic_write_bytes(path, encode_evt2(events))
