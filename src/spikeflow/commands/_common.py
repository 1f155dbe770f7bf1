"""Helpers shared by the training sub-commands (argument types, run-directory loading)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spikeflow.errors import CheckpointError, ConfigError


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,128, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def load_run(run_dir: str):
    """``(model, meta)`` from a run directory: its best model, else its latest checkpoint."""
    from spikeflow.train import checkpoint as ckpt
    from spikeflow.train.convert import rebuild
    from spikeflow.train.zoo import build

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run directory {run} does not exist")
    if (run / ckpt.BEST).is_file():
        state, meta = ckpt.read_model_file(run / ckpt.BEST)
    else:
        full, meta = ckpt.read_checkpoint(run)
        state = full.get("model")
        if state is None:
            raise CheckpointError(f"checkpoint in {run} holds no 'model' state")
    spec = meta.get("spec")
    if not isinstance(spec, dict):
        raise CheckpointError(f"run {run}: the model metadata lacks its 'spec' (cannot rebuild the model)")
    model = rebuild(spec) if spec.get("converted") else build(spec)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"run {run}: weights do not fit the model spec: {str(err).splitlines()[0]}") from None
    return model, meta
