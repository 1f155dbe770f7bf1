"""Shared pieces of the file-format readers: byte sources, caps, error messages.

Every reader takes a path or raw ``bytes`` (the fuzz tests feed bytes) and raises
``DataFormatError`` naming the file and the byte offset of the first problem.
"""

from __future__ import annotations

import os
from typing import Union

from spikeflow.errors import DataFormatError

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]

# Stated caps: a file that claims more is refused before anything is allocated.
MAX_EVENTS = 200_000_000          # events in one recording (~3.2 GB as EVENT_DTYPE)
MAX_HEADER_BYTES = 1 << 20        # text headers (EVT 2.0, AEDAT 2.0)
MAX_FILE_BYTES = 4 << 30          # raw file size read into memory
MAX_SAMPLES = 10_000_000          # recordings in one SHD-style file


def load_bytes(src: Source, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, str]:
    """The raw bytes of ``src`` and a name to put in error messages."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        name = "<bytes>"
    else:
        name = str(src)
        try:
            size = os.path.getsize(src)
        except OSError as err:
            raise DataFormatError(f"{name}: cannot open ({err.strerror or err})") from None
        if size > max_bytes:
            raise DataFormatError(f"{name}: file is {size} bytes, over the cap of {max_bytes} bytes")
        with open(src, "rb") as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataFormatError(f"{name}: data is over the cap of {max_bytes} bytes")
    return data, name


def fail(name: str, offset: int, what: str) -> DataFormatError:
    return DataFormatError(f"{name}: at byte offset {offset}: {what}")


def check_count(name: str, n: int, max_events: int, offset: int = 0) -> None:
    if n > max_events:
        raise fail(name, offset, f"{n} events is over the cap of {max_events} events (max_events=...)")


def parse_text_header(data: bytes, name: str, marker: bytes, end_line: bytes | None = None) -> tuple[list[str], int]:
    """Reads header lines that begin with ``marker``; returns the lines and the data offset.

    With ``end_line`` (EVT 2.0's ``% end``) the header stops after that line.
    """
    lines, pos = [], 0
    while pos < len(data) and data[pos:pos + len(marker)] == marker:
        nl = data.find(b"\n", pos, pos + MAX_HEADER_BYTES)
        if nl < 0:
            if len(data) - pos >= MAX_HEADER_BYTES or pos >= MAX_HEADER_BYTES:
                raise fail(name, pos, f"header line longer than the cap of {MAX_HEADER_BYTES} bytes")
            raise fail(name, pos, "header line has no end of line (truncated header)")
        line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if pos > MAX_HEADER_BYTES:
            raise fail(name, pos, f"header longer than the cap of {MAX_HEADER_BYTES} bytes")
        lines.append(line.decode("latin-1"))
        if end_line is not None and line.strip() == end_line:
            break
    return lines, pos
