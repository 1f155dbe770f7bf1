"""The one way spikeflow writes files: atomically, durably, with the modes ``open()`` would give.

* A whole file is written to a temp file beside its target (unique name, created with mode
  ``0o666`` so the umask applies exactly as for ``open()``: 0644 under umask 022, 0600 under
  077), fsynced, ``os.replace``d into place, and then the folder is fsynced. A reader sees the
  old file or the new one, never a part; an exception leaves no temp file behind.
  ``atomic_output`` yields a temp path (for libraries that want a file name: h5py,
  matplotlib) or a file object; ``atomic_write_bytes`` / ``atomic_write_text`` take data.
* A line log (``append_line``) writes each line with one ``write()`` on an ``O_APPEND``
  descriptor and fsyncs it, so a killed writer loses at most the line it was writing; a
  partial last line (left by a crash inside that one write) is cut off by the next append.
* Folders are made like ``os.makedirs`` (mode ``0o777`` less the umask: 0755 under 022);
  ``make_temp_dir`` is ``tempfile.mkdtemp`` with that mode, for folders built and then renamed
  into place (``sync_tree`` makes their contents durable first).
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TRIES = 100


def fsync_dir(folder) -> None:
    """Make a rename or a new entry in ``folder`` durable (a no-op where folders cannot be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return  # e.g. Windows, where a folder cannot be opened
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def make_dirs(folder) -> Path:
    """``os.makedirs(folder, exist_ok=True)`` that also syncs each new folder's parent."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o777)
        except FileExistsError:
            if not d.is_dir():
                raise
        fsync_dir(d.parent)
    return folder


def make_temp_dir(parent, prefix: str) -> Path:
    """A new empty folder ``<parent>/<prefix><random>`` with the umask's folder mode."""
    parent = Path(parent)
    for _ in range(_TRIES):
        d = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            os.mkdir(d, 0o777)
            return d
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temp folder name in {parent}")


def sync_tree(folder) -> None:
    """fsync every file and folder under ``folder`` (before it is renamed into place)."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                _fsync_path(path)
        fsync_dir(root)


def _fsync_path(path) -> None:
    fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temp(path: Path, suffix: str) -> tuple[int, Path]:
    """An exclusive new file beside ``path`` opened for writing, created with 0o666 less the umask."""
    for _ in range(_TRIES):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temp file name beside {path}")


@contextmanager
def atomic_output(path, mode: str = "path", *, parents: bool = True) -> Iterator[Union[Path, object]]:
    """Write ``path`` atomically: ``with atomic_output(p) as tmp: lib.save(tmp)``.

    ``mode="path"`` yields the temp file's path (it ends with the target's suffix, so libraries
    that pick a format from it still do); ``"wb"`` or ``"w"`` (UTF-8) yield an open file. On a
    normal exit the temp file is fsynced and renamed to ``path``; on an exception it is removed.
    """
    if mode not in ("path", "wb", "w"):
        raise ValueError(f"atomic_output: mode must be 'path', 'wb' or 'w', got {mode!r}")
    path = Path(os.fspath(path))
    if parents:
        make_dirs(path.parent)
    fd, tmp = _new_temp(path, path.suffix if mode == "path" else "")
    fh = None
    try:
        if mode == "path":
            os.close(fd)
            fd = -1
            yield tmp
            _fsync_path(tmp)
        else:
            fh = os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {}))
            fd = -1
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        os.replace(tmp, path)
    except BaseException:
        if fh is not None:
            fh.close()
        elif fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path, data: bytes, *, parents: bool = True) -> None:
    with atomic_output(path, "wb", parents=parents) as fh:
        fh.write(data)


def atomic_write_text(path, text: str, *, parents: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), parents=parents)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _trim_torn_tail(fd: int, size: int) -> None:
    """Cut a last line that has no newline (a write cut short by a crash)."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        nl = os.pread(fd, end - start, start).rfind(b"\n")
        if nl >= 0:
            os.ftruncate(fd, start + nl + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def append_line(path, line: str, *, header: str | None = None) -> None:
    """Append one line to a log with a single writer (e.g. ``steps.csv``), durably.

    The line (with ``header`` first when the file is new or empty) goes out in one ``write()``
    on an ``O_APPEND`` descriptor and is fsynced before this returns.
    """
    path = Path(os.fspath(path))
    data = line if line.endswith("\n") else line + "\n"
    created = False
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        created = True
    except FileExistsError:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | _CLOEXEC)
    except FileNotFoundError:
        make_dirs(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        created = True
    try:
        size = os.fstat(fd).st_size
        _trim_torn_tail(fd, size)
        if header is not None and os.fstat(fd).st_size == 0:
            data = (header if header.endswith("\n") else header + "\n") + data
        _write_all(fd, data.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
