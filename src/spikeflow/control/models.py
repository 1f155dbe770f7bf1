"""Rebuild a policy's torch model from its spec and weights file (never unpickled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeflow.errors import ConfigError


def actor_from_spec(spec: dict):
    """A ``SpikingActor`` with the architecture the spec records (weights not loaded)."""
    from spikeflow.control.network import SpikingActor

    m = spec["model"]
    enc = spec["encoding"]
    return SpikingActor(int(m["n_obs"]), int(spec["n_out"]), encoding=enc["kind"], dt=float(spec["dt"]),
                        scale=np.asarray(m["scale"]), thresholds=enc.get("thresholds"), hidden=int(m["hidden"]),
                        tau_mem=float(m["tau_mem"]), tau_out=float(m["tau_out"]))


def build_sequential(spec: dict, model_path: Path):
    """The policy's ``spikeflow.nn.Sequential`` (float64) with its trained weights."""
    from spikeflow.train.checkpoint import load_state

    model_path = Path(model_path)
    kind = spec["model"].get("kind")
    state = load_state(model_path)
    if kind == "spiking_actor":
        actor = actor_from_spec(spec)
        actor.load_state_dict(state)
        return actor.to_sequential()
    if kind == "converted":
        from spikeflow.control.convert import converted_sequential

        return converted_sequential(spec, state)
    raise ConfigError(f"policy spec: 'model.kind' must be 'spiking_actor' or 'converted', got {kind!r}")
