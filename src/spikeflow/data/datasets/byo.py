"""Bring your own data: any event file or folder in a format ``spikeflow.data.formats`` reads.

A *source* is one collection of labelled recordings:

- a file holding many recordings (SHD-style HDF5, a spikeflow ``.h5`` bundle);
- a folder of class folders (``folder/<class>/*.bin`` as N-MNIST ships; classes are the
  sorted folder names, so ``0``..``9`` map to 0..9), or of labelled single-recording files
  (``.npz``, ``.bin``, ``.raw``, ``.aedat``).

Splits are never made silently. A dataset has a test part when

- ``path`` is a folder holding a train and a test part: entries named ``train``/``test``
  (case-insensitive, a folder or ``.h5``/``.hdf5`` file; ``shd_train.h5``/``shd_test.h5`` and
  ``Train/``/``Test/`` count too), or
- ``test_path`` names the test source and ``path`` the training source, or
- ``test_frac`` holds out that fraction of a single source (stratified by label, ``seed``;
  the same fraction and seed always give the same recordings).

Otherwise only ``split="all"`` reads it. The sensor geometry (channel count) is the largest
over every part, so train and test bin to the same shape; ``sensor_size`` pins it: channel
data (``(C, 1, 1)``, SHD) whose top channels never fire fits a larger count, any other
difference is an error. The recording window is the longest recording over every part,
rounded up to a whole millisecond (and to whole steps of ``dt``), unless ``duration_us`` pins it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from spikeflow.data.datasets.base import EventSplit
from spikeflow.data.formats import EVENT_SUFFIXES, read_recordings
from spikeflow.data.formats.native import EventBundle
from spikeflow.errors import ConfigError, DataFormatError

MAX_FILES = 1_000_000
SPLITS = ("train", "test", "all")
_CACHE: dict = {}          # (path, size, mtime) -> recordings; a command reads a file once
_CACHE_FILES = 4


def _from_folder(folder: Path) -> list:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES)
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    recs = []
    for f in files:
        recs += read_recordings(f)
    for label, d in enumerate(class_dirs):
        members = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES)
        if len(members) > MAX_FILES:
            raise DataFormatError(f"{d}: more than {MAX_FILES} files")
        for f in members:
            for r in read_recordings(f):
                r.label = label
                recs.append(r)
    return recs


def _recordings(path: Path) -> list:
    if path.is_dir():
        return _from_folder(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_FILES:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = read_recordings(path)
    return _CACHE[key]


def _named(p: Path, split: str) -> bool:
    name = p.name.lower()
    stem = name.rsplit(".", 1)[0] if p.is_file() else name
    if p.is_file() and p.suffix.lower() not in (".h5", ".hdf5"):
        return False
    return stem == split or stem.endswith(("_" + split, "-" + split))


def split_parts(path, test_path=None) -> dict:
    """``{"train": Path, "test": Path}`` (either may be missing) or ``{"all": Path}`` for one source."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"dataset {path}: no such file or folder, and not a dataset name")
    if test_path is not None:
        test_path = Path(test_path)
        if not test_path.exists():
            raise ConfigError(f"test data {test_path}: no such file or folder")
        return {"train": path, "test": test_path}
    if path.is_dir():
        parts = {}
        for split in ("train", "test"):
            found = sorted(p for p in path.iterdir() if _named(p, split))
            if len(found) > 1:
                raise ConfigError(f"dataset {path}: more than one {split} part: {', '.join(p.name for p in found)}")
            if found:
                parts[split] = found[0]
        if parts:
            return parts
    return {"all": path}


def _bundle(recs, source, size) -> EventBundle:
    if any(r.label is None for r in recs):
        raise DataFormatError(f"{source}: some recordings have no label; put them in class folders")
    return EventBundle.from_events(recs, size, name=str(source))


def _fit_size(recs_by_part: dict, sensor_size) -> tuple:
    sizes = [r.sensor_size for recs in recs_by_part.values() for r in recs]
    data = tuple(max(s[k] for s in sizes) for k in range(3))
    if sensor_size is None:
        return data
    want = tuple(int(v) for v in sensor_size)
    channels = data[1:] == (1, 1) and len(want) == 3 and want[1:] == (1, 1) and data[0] <= want[0]
    if data != want and not channels:
        where = ", ".join(str(p) for p in recs_by_part)
        raise ConfigError(f"dataset {where}: recordings have sensor size {data} (W, H, P) but {want} is required "
                          f"(the model's input); the data does not fit the model")
    return want


def load_path(path, split="train", *, T=None, dt=None, seed=0, transform=None, duration_us=None, test_path=None,
              test_frac=None, sensor_size=None, **options):
    """An ``EventSplit`` of the recordings under ``path`` (see the module docstring for splits)."""
    if options:
        raise ConfigError(f"dataset {path}: unknown options {sorted(options)}")
    if split not in SPLITS:
        raise ConfigError(f"dataset {path}: split must be 'train', 'test' or 'all', got {split!r}")
    if test_frac is not None and not 0 < float(test_frac) < 1:
        raise ConfigError(f"dataset {path}: test fraction (--test-frac) must be in (0, 1), got {test_frac}")
    parts = split_parts(path, test_path)
    if test_frac is not None and "all" not in parts:
        raise ConfigError(f"dataset {path}: it has its own test part ({parts.get('test', parts.get('train'))}); "
                          f"a test fraction (--test-frac) applies to a single file or folder only")
    recs = {p: list(_recordings(p)) for p in parts.values()}
    for p, r in recs.items():
        if not r:
            raise DataFormatError(f"{p}: no event recordings found (suffixes {', '.join(EVENT_SUFFIXES)})")
    if split != "all" and split not in parts and not ("all" in parts and test_frac is not None):
        if "all" in parts:
            raise ConfigError(f"dataset {path}: one set of recordings with no separate test part; nothing is split "
                              f"silently: give a test file/folder (--test-data, or a folder holding train and test "
                              f"parts) or hold out a fraction (--test-frac F); to read it whole: --split all")
        raise ConfigError(f"dataset {path}: has no {split} part (found: {', '.join(str(p) for p in parts.values())})")
    size = _fit_size(recs, sensor_size)
    if duration_us is None:
        last = max(int(r.t[-1]) + 1 if len(r) else 1 for rr in recs.values() for r in rr)
        duration_us = -(-last // 1000) * 1000        # whole milliseconds: 0.49998 s of data is a 500 ms window
        if dt is not None:                           # ... and whole steps of dt, so every step is dt long
            duration_us = int(round(math.ceil(duration_us / (dt * 1e6) - 1e-9) * dt * 1e6))
    labels = [r.label for rr in recs.values() for r in rr if r.label is not None]
    info = {"name": str(path), "split": split, "parts": {k: str(v) for k, v in parts.items()},
            "classes": max(labels) + 1 if labels else 0}
    if "all" in parts:
        bundle = _bundle(recs[parts["all"]], parts["all"], size)
        idx = None
        if test_frac is not None and split != "all":
            idx = _hold_out(bundle.labels, float(test_frac), seed)[split == "test"]
            info["test_frac"] = float(test_frac)
    elif split == "all":
        bundle = _bundle([r for p in parts.values() for r in recs[p]], path, size)
        idx = None
    else:
        bundle = _bundle(recs[parts[split]], parts[split], size)
        idx = None
    return EventSplit(bundle, idx, T=T, dt=dt, duration_us=duration_us, transform=transform, info=info)


def _hold_out(labels: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices: ``frac`` held out, stratified when every class has 2 or more recordings."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    n_test = math.ceil(frac * len(labels))
    if n_test < 1 or n_test >= len(labels):
        raise ConfigError(f"test fraction {frac} of {len(labels)} recordings leaves an empty train or test part")
    counts = np.bincount(labels - labels.min())
    classes = int((counts > 0).sum())
    strat = labels if counts[counts > 0].min() >= 2 and classes <= n_test <= len(labels) - classes else None
    tr, te = train_test_split(idx, test_size=n_test, stratify=strat, random_state=seed)
    return np.sort(tr), np.sort(te)


def is_path(name) -> bool:
    """True when ``name`` is a file or folder to read (not a built-in dataset name)."""
    from spikeflow.data.datasets import DATASETS

    return not (isinstance(name, str) and name in DATASETS) and isinstance(name, (str, os.PathLike)) \
        and os.path.exists(name)


def sensor_for_input(shape) -> tuple[int, int, int]:
    """The sensor size ``(W, H, P)`` whose events fill a model input of ``shape``
    (``[C]`` channels, ``[H, W]`` or ``[P, H, W]``)."""
    shape = [int(s) for s in shape]
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 2:
        return (shape[1], shape[0], 1)
    if len(shape) == 3:
        return (shape[2], shape[1], shape[0])
    raise ConfigError(f"a model input of shape {shape} does not take events")


def file_options(name, input_shape=None, test_frac=None) -> dict:
    """Loader options for reading ``name`` into a model whose input has ``input_shape``: for
    files, the model's geometry (see ``sensor_size``) and the held-out fraction; built-in
    datasets take neither."""
    if not is_path(name):
        if test_frac is not None:
            raise ConfigError(f"--test-frac applies to data files and folders; dataset {name!r} has fixed splits")
        return {}
    opts = {} if input_shape is None else {"sensor_size": sensor_for_input(input_shape)}
    if test_frac is not None:
        opts["test_frac"] = float(test_frac)
    return opts
