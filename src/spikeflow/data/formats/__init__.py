"""Event file formats: one reader and one writer per format, plus dispatch by file type.

``read_events(path)`` picks the reader from the suffix (``.bin`` N-MNIST, ``.raw``
EVT 2.0, ``.aedat``/``.dat`` AEDAT 2.0, ``.npz`` spikeflow, ``.h5``/``.hdf5``: SHD or a
spikeflow bundle) or, failing that, from the file's first bytes. Formats that hold
many recordings (SHD, bundles) return a list; ``read_recordings`` always returns one.
"""

from __future__ import annotations

from pathlib import Path

from spikeflow.data.events import Events
from spikeflow.data.formats._common import MAX_EVENTS, MAX_FILE_BYTES, MAX_HEADER_BYTES, MAX_SAMPLES
from spikeflow.data.formats.aedat2 import encode_aedat2, read_aedat2, write_aedat2
from spikeflow.data.formats.evt2 import encode_evt2, read_evt2, write_evt2
from spikeflow.data.formats.native import EventBundle, read_npz, write_bundle, write_npz
from spikeflow.data.formats.nmnist_bin import encode_nmnist_bin, read_nmnist_bin, write_nmnist_bin
from spikeflow.data.formats.shd import SHDFile, read_shd, write_shd
from spikeflow.errors import DataFormatError

FORMATS = {
    "nmnist": (".bin",),
    "evt2": (".raw",),
    "aedat2": (".aedat", ".dat"),
    "npz": (".npz",),
    "shd": (".h5", ".hdf5"),
    "bundle": (".h5", ".hdf5"),
}
EVENT_SUFFIXES = (".bin", ".raw", ".aedat", ".dat", ".npz", ".h5", ".hdf5")


def detect_format(path) -> str:
    """The format of the event file ``path`` (``"nmnist"``, ``"evt2"``, ``"aedat2"``, ``"npz"``, ``"shd"`` or
    ``"bundle"``), from its first bytes, else from its suffix; ``DataFormatError`` when neither tells.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        raise DataFormatError(f"{path}: cannot open ({err.strerror or err})") from None
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"\x89HDF"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                fmt = f.attrs.get("format")
        except Exception:
            raise DataFormatError(f"{path}: at byte offset 0: not a readable HDF5 file") from None
        return "bundle" if fmt in ("spikeflow-bundle-1", b"spikeflow-bundle-1") else "shd"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"% "):
        return "evt2"
    suffix = path.suffix.lower()
    for name in ("nmnist", "evt2", "aedat2", "npz"):
        if suffix in FORMATS[name]:
            return name
    raise DataFormatError(f"{path}: unknown event file type; known suffixes: {', '.join(EVENT_SUFFIXES)}")


def read_recordings(path, fmt: str | None = None, **kw) -> list[Events]:
    """Every recording in ``path`` as a list of ``Events``."""
    fmt = fmt or detect_format(path)
    if fmt == "shd":
        return read_shd(path, **kw)
    if fmt == "bundle":
        b = EventBundle(path, **kw)
        return [b[i] for i in range(len(b))]
    reader = {"nmnist": read_nmnist_bin, "evt2": read_evt2, "aedat2": read_aedat2, "npz": read_npz}.get(fmt)
    if reader is None:
        raise DataFormatError(f"{path}: unknown format '{fmt}'; known: {', '.join(FORMATS)}")
    return [reader(path, **kw)]


def read_events(path, fmt: str | None = None, **kw):
    """One ``Events`` for single-recording formats, a list for SHD and bundles."""
    recs = read_recordings(path, fmt, **kw)
    fmt = fmt or detect_format(path)
    return recs if fmt in ("shd", "bundle") else recs[0]


def write_events(path, events, fmt: str | None = None) -> None:
    """Writes ``Events`` (or a list, for SHD and bundles) in the format of ``path``'s suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if fmt is None:
        fmt = {".bin": "nmnist", ".raw": "evt2", ".aedat": "aedat2", ".dat": "aedat2", ".npz": "npz",
               ".h5": "bundle", ".hdf5": "bundle"}.get(suffix)
    many = list(events) if isinstance(events, (list, tuple)) else [events]
    if fmt in ("shd", "bundle"):
        if fmt == "shd":
            write_shd(path, many)
        else:
            write_bundle(path, many, many[0].sensor_size)
        return
    if len(many) != 1:
        raise DataFormatError(f"{path}: format '{fmt}' holds one recording, got {len(many)}; use .h5 for many")
    writer = {"nmnist": write_nmnist_bin, "evt2": write_evt2, "aedat2": write_aedat2, "npz": write_npz}.get(fmt)
    if writer is None:
        raise DataFormatError(f"{path}: cannot tell the format from suffix '{suffix}'; use one of "
                              f"{', '.join(EVENT_SUFFIXES)}")
    writer(path, many[0])


__all__ = [
    "EventBundle", "FORMATS", "MAX_EVENTS", "MAX_FILE_BYTES", "MAX_HEADER_BYTES", "MAX_SAMPLES", "SHDFile",
    "detect_format", "encode_aedat2", "encode_evt2", "encode_nmnist_bin", "read_aedat2", "read_events",
    "read_evt2", "read_nmnist_bin", "read_npz", "read_recordings", "read_shd", "write_aedat2", "write_bundle",
    "write_events", "write_evt2", "write_nmnist_bin", "write_npz", "write_shd",
]
