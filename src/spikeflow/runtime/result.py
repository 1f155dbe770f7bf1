"""What an engine run returns, and input checks shared by the stepped engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import numpy as np
import torch

from spikeflow.errors import InputError, ShapeError


@dataclass
class RunResult:
    """Outputs ``[T, B, *shape]`` per Output node; spikes per spiking node when recorded;
    ``counters``: ``neuron_updates``, ``spikes`` and ``synaptic_ops`` per node."""

    outputs: Dict[str, np.ndarray]
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    counters: Dict[str, Dict[str, int]] = field(default_factory=dict)
    dt: float = 0.0

    @property
    def output(self) -> np.ndarray:
        """The only output (the first when there are several)."""
        return next(iter(self.outputs.values()))

    def total(self, counter: str) -> int:
        return int(sum(self.counters.get(counter, {}).values()))


def as_time_major(x, graph, dtype=torch.float64) -> torch.Tensor:
    """Check ``x [T, B, *input_shape]`` (numpy or torch) and return a torch tensor."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise InputError(f"runtime: input must be a numpy array or torch tensor, got {type(x).__name__}")
    shape = graph.input_shape
    if x.dim() < 2 or int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise ShapeError(
            f"runtime: input must be time-major [T, B, {', '.join(map(str, shape))}], got shape {tuple(x.shape)}"
        )
    x = x.to(dtype).reshape(x.shape[0], x.shape[1], *shape)
    if not torch.isfinite(x).all():
        raise InputError("runtime: input contains NaN or inf values")
    return x


def as_time_major_numpy(x, graph) -> np.ndarray:
    """``as_time_major`` without torch: a float64 numpy array ``[T, B, *input_shape]``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise InputError(f"runtime: input must be a numpy array or torch tensor, got {type(x).__name__}")
    shape = graph.input_shape
    if x.ndim < 2 or int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise ShapeError(
            f"runtime: input must be time-major [T, B, {', '.join(map(str, shape))}], got shape {tuple(x.shape)}"
        )
    x = np.asarray(x, dtype=np.float64).reshape(x.shape[0], x.shape[1], *shape)
    if not np.isfinite(x).all():
        raise InputError("runtime: input contains NaN or inf values")
    return x
