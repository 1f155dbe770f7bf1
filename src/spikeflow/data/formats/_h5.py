"""Opening HDF5 files from a path or bytes with errors that name the file."""

from __future__ import annotations

import io
import os

import h5py

from spikeflow.data.formats._common import MAX_FILE_BYTES, Source, fail
from spikeflow.errors import DataFormatError


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


def run_isolated(fn, *args, name: str = "<bytes>", timeout: float = 600.0):
    """``fn(*args)`` (returning a dict of numpy arrays) in a forked child process.

    The HDF5 C library is not hardened against damaged files: a corrupt variable-length
    heap can crash the process (found by the fuzz tests). The child's crash becomes a
    ``DataFormatError``. Arrays come back as an ``.npz`` byte string (no pickle).
    """
    import multiprocessing as mp

    import numpy as np

    if "fork" not in mp.get_all_start_methods():  # e.g. Windows: read in-process
        return fn(*args)
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child():
        import faulthandler

        faulthandler.disable()  # a crash here is an expected outcome, reported by the parent
        try:
            out = fn(*args)
            buf = io.BytesIO()
            np.savez(buf, **out)
            send.send_bytes(b"K" + buf.getvalue())
        except DataFormatError as err:
            send.send_bytes(b"E" + str(err).encode())
        except Exception as err:
            text = f"{name}: at byte offset 0: cannot read ({type(err).__name__}: {str(err)[:200]})"
            send.send_bytes(b"E" + text.encode())
        finally:
            send.close()
            os._exit(0)

    proc = ctx.Process(target=child)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            proc.kill()
            raise fail(name, 0, f"reading took longer than {timeout} s (damaged HDF5 file?)")
        try:
            msg = recv.recv_bytes()
        except EOFError:
            msg = None
    finally:
        proc.join()
        recv.close()
    if msg is None:
        raise fail(name, 0, f"the HDF5 library crashed reading this file (exit code {proc.exitcode}): damaged file")
    if msg[:1] == b"E":
        raise DataFormatError(msg[1:].decode(errors="replace"))
    with np.load(io.BytesIO(msg[1:]), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
