"""Multi-step neuron dynamics, dispatched by backend.

``multistep(model, x, state, params, spike_fn, backend="auto")`` runs a neuron model over
all T steps of a time-major input. Backends: ``"reference"`` (the model's torch ``step``
in a loop; the oracle and fallback), ``"cpu"`` (numba: LIF, IF, ALIF and CubaLIF) and ``"gpu"``
(triton, the optional ``gpu`` extra: LIF and IF only, see ``fused.GPU_SCOPE``) fused kernels.
``"auto"`` uses the fused kernel of the tensor's device when the model, dtype and spike function
are supported, else the reference loop.
"""

from __future__ import annotations

import os

import torch

from spikeflow.errors import ParameterError
from spikeflow.kernels import fused, reference

BACKENDS = ("auto", "reference", "cpu", "gpu")


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _has_triton() -> bool:
    try:
        from spikeflow.kernels import gpu
    except ImportError:
        return False
    return gpu.AVAILABLE


def _triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def available_backends() -> dict:
    """Which backends can run here (name -> bool); "gpu" needs triton and CUDA (or TRITON_INTERPRET=1)."""
    gpu_ok = _has_triton() and (torch.cuda.is_available() or _triton_interpret())
    return {"reference": True, "cpu": _has_numba(), "gpu": gpu_ok}


def runs_on_gpu(x, backend: str = "auto") -> bool:
    """Whether a fused layer (``LinearLIF``, LIF + ``AvgPool2d``) run on ``x`` belongs to the triton kernels:
    ``x`` is on a CUDA device, or the layer asked for ``backend="gpu"`` and triton runs its interpreter
    (``TRITON_INTERPRET=1``: CPU tensors, how the tests check those kernels without a GPU)."""
    return isinstance(x, torch.Tensor) and (x.device.type == "cuda" or (backend == "gpu" and _triton_interpret()))


def _device_backend(x) -> str:
    return "gpu" if x.device.type == "cuda" else "cpu"


def multistep(model, x, state, params, spike_fn, backend: str = "auto", return_trace: bool = False):
    """Run ``model.step`` over the time axis; ``model`` is a ``spikeflow.neurons.NeuronModel``."""
    if backend not in BACKENDS:
        raise ParameterError(f"kernels: 'backend' must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return reference.multistep(model.step, x, state, params, spike_fn, return_trace)
    available = available_backends()
    if backend == "auto":
        chosen = _device_backend(x)
        if not available[chosen] or fused.unsupported_reason(model, x, state, params, spike_fn, chosen) is not None:
            return reference.multistep(model.step, x, state, params, spike_fn, return_trace)
        return fused.multistep(model, x, state, params, spike_fn, chosen, return_trace)
    if not available[backend]:
        raise ParameterError(f"kernels: backend {backend!r} is not available here; use 'reference' or 'auto'")
    reason = fused.unsupported_reason(model, x, state, params, spike_fn, backend)
    if reason is None and backend == "cpu" and x.device.type != "cpu":
        reason = f"the 'cpu' backend needs CPU tensors, got {x.device}"
    if reason is None and backend == "gpu" and x.device.type != "cuda" and not _triton_interpret():
        reason = f"the 'gpu' backend needs CUDA tensors, got {x.device}"
    if reason is not None:
        raise ParameterError(f"kernels: backend {backend!r} cannot run this call: {reason}")
    return fused.multistep(model, x, state, params, spike_fn, backend, return_trace)
