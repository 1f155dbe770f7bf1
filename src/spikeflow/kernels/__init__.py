"""Multi-step neuron dynamics, dispatched by backend.

``multistep(model, x, state, params, spike_fn, backend="auto")`` runs a neuron model over
all T steps of a time-major input. Backends: ``"reference"`` (the model's torch ``step``
in a loop; the oracle and fallback), plus fused kernels where available. ``"auto"``
picks the fastest available one for the tensor's device and model.
"""

from __future__ import annotations

from spikeflow.errors import ParameterError
from spikeflow.kernels import reference

BACKENDS = ("auto", "reference", "cpu", "gpu")


def available_backends() -> dict:
    """Which backends can run here (name -> bool)."""
    return {"reference": True, "cpu": False, "gpu": False}


def multistep(model, x, state, params, spike_fn, backend: str = "auto", return_trace: bool = False):
    """Run ``model.step`` over the time axis; ``model`` is a ``spikeflow.neurons.NeuronModel``."""
    if backend not in BACKENDS:
        raise ParameterError(f"kernels: 'backend' must be one of {BACKENDS}, got {backend!r}")
    if backend in ("cpu", "gpu") and not available_backends()[backend]:
        raise ParameterError(f"kernels: backend {backend!r} is not available here; use 'reference' or 'auto'")
    return reference.multistep(model.step, x, state, params, spike_fn, return_trace)
