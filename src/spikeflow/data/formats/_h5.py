"""Opening HDF5 files from a path or bytes with errors that name the file."""

from __future__ import annotations

import io
import os

import h5py

from spikeflow.data.formats._common import MAX_FILE_BYTES, Source, fail


def open_h5(src: Source):
    """``(h5py.File, name)``; anything that is not HDF5 raises ``DataFormatError``."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        name = "<bytes>"
        if len(src) > MAX_FILE_BYTES:
            raise fail(name, 0, f"data is over the cap of {MAX_FILE_BYTES} bytes")
        target = io.BytesIO(bytes(src))
    else:
        name = str(src)
        if not os.path.isfile(name):
            raise fail(name, 0, "no such file")
        target = name
    try:
        return h5py.File(target, "r"), name
    except Exception as err:  # h5py raises OSError, ValueError, KeyError... on garbage
        raise fail(name, 0, f"not a readable HDF5 file ({type(err).__name__}: {str(err)[:120]})") from None


def dataset(f, key: str, name: str):
    try:
        obj = f[key]
    except Exception:
        raise fail(name, 0, f"missing HDF5 dataset '{key}'") from None
    if not isinstance(obj, h5py.Dataset):
        raise fail(name, 0, f"'{key}' is not an HDF5 dataset")
    return obj


def read_array(ds, name: str, key: str, index=()):
    try:
        return ds[index]
    except Exception as err:
        raise fail(name, 0, f"cannot read HDF5 dataset '{key}' ({type(err).__name__}: {str(err)[:120]})") from None
