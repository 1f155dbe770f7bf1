"""Bring your own data: any event file or folder in a format ``spikeflow.data.formats`` reads.

- a file holding many labelled recordings (SHD-style HDF5, a spikeflow bundle);
- a folder of class folders (``folder/<class>/*.bin`` as N-MNIST ships; classes are the
  sorted folder names, so ``0``..``9`` map to 0..9), or of labelled ``.npz`` files;
- either of those with ``train``/``test`` sub-folders (or ``train.h5``/``test.h5``) gives the
  splits; otherwise the recordings are split 80/20, stratified, with ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeflow.data.datasets.base import EventSplit
from spikeflow.data.formats import EVENT_SUFFIXES, read_recordings
from spikeflow.data.formats.native import EventBundle
from spikeflow.errors import ConfigError, DataFormatError

MAX_FILES = 1_000_000


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


def _bundle(recs, source) -> EventBundle:
    if not recs:
        raise DataFormatError(f"{source}: no event recordings found (suffixes {', '.join(EVENT_SUFFIXES)})")
    size = tuple(max(r.sensor_size[k] for r in recs) for k in range(3))
    if any(r.label is None for r in recs):
        raise DataFormatError(f"{source}: some recordings have no label; put them in class folders")
    return EventBundle.from_events(recs, size, name=str(source))


def _recordings(path: Path) -> list:
    return _from_folder(path) if path.is_dir() else read_recordings(path)


def load_path(path, split="train", *, T=None, dt=None, seed=0, transform=None, duration_us=None, **options):
    if options:
        raise ConfigError(f"dataset {path}: unknown options {sorted(options)}")
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"dataset {path}: no such file or folder, and not a dataset name")
    for cand in (path / split, path / f"{split}.h5", path / f"{split}.hdf5"):
        if path.is_dir() and cand.exists():
            bundle = _bundle(_recordings(cand), cand)
            return EventSplit(bundle, T=T, dt=dt, duration_us=duration_us, transform=transform,
                              info={"name": str(path), "split": split})
    if split not in ("train", "test", "all"):
        raise ConfigError(f"dataset {path}: split must be 'train', 'test' or 'all', got {split!r}")
    bundle = _bundle(_recordings(path), path)
    if split == "all":
        idx = None
    else:
        from sklearn.model_selection import train_test_split

        all_idx = np.arange(len(bundle))
        counts = np.bincount(bundle.labels - bundle.labels.min())
        strat = bundle.labels if counts[counts > 0].min() >= 2 and len(bundle) >= 10 else None
        tr, te = train_test_split(all_idx, test_size=0.2, stratify=strat, random_state=seed)
        idx = np.sort(tr if split == "train" else te)
    return EventSplit(bundle, idx, T=T, dt=dt, duration_us=duration_us, transform=transform,
                      info={"name": str(path), "split": split})
