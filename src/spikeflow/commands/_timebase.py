"""The time base of a run directory or NIR file, with ``--dt``/``--T`` applied (shared by the commands)."""

from __future__ import annotations

import math

import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.timebase import TimeBase


def run_timebase(model, meta: dict, run) -> TimeBase:
    """The run's recorded time base; for runs made before it was recorded, rebuilt from the model spec."""
    if isinstance(meta.get("timebase"), dict):
        return TimeBase.from_dict(meta["timebase"], f"run {run}")
    from spikeflow.data import DATASETS
    from spikeflow.train.datasets import data_kind, timebase_for

    spec = model.spec
    data = meta.get("data")
    if not data:
        raise ConfigError(f"run {run} records neither its time base nor its dataset; retrain it")
    if spec.get("arch") == "conv":
        shape = tuple(spec["in_shape"])
    else:
        known = DATASETS.get(str(data), {}).get("shape")
        n = int(spec["in_features"])
        shape = tuple(known) if known and all(isinstance(s, int) for s in known) and math.prod(known) == n else (n,)
    if spec.get("encoding") in ("sequence", "sum") or data_kind(data)[0] == "events":
        shape = (int(spec.get("T", 1)),) + shape
    loss = "ce_mean" if spec.get("converted") else meta.get("config", {}).get("loss", "ce_max")
    return timebase_for(model, data, shape, int(spec["classes"]), loss)


def nir_timebase(graph, path, *, required: bool = True) -> TimeBase | None:
    """The time base stored in a NIR graph's metadata (``None`` when absent and not ``required``)."""
    tb = TimeBase.from_nir_metadata(graph.metadata, f"NIR file {path}")
    if tb is None and required:
        raise ConfigError(f"NIR file {path} records no time base (T, encoding, input geometry); export it with "
                          f"'spikeflow export', or pass --T and --dt")
    return tb


def apply_overrides(tb: TimeBase, dt=None, T=None) -> tuple[TimeBase, bool]:
    """``(time base with --dt/--T, whether one was given)``."""
    for flag, v in (("--dt", dt), ("--T", T)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{flag} must be > 0, got {v}")
    return tb.with_overrides(dt=dt, T=T), dt is not None or T is not None


def decode(output, decoder: str) -> np.ndarray:
    """Class per sample from outputs ``[T, B, classes]`` with the model's decoder."""
    out = np.asarray(output, dtype=np.float64).reshape(output.shape[0], output.shape[1], -1)
    if decoder == "max":
        scores = out.max(axis=0)
    elif decoder == "last":
        scores = out[-1]
    else:  # count, mean: the same argmax
        scores = out.sum(axis=0)
    return scores.argmax(axis=-1)
