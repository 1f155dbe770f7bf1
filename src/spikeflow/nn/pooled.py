"""The fusion of a LIF/IF layer with the ``AvgPool2d`` after it (``spikeflow.kernels.pool_lif``),
applied by ``spikeflow.nn.Sequential``."""

from __future__ import annotations

from torch import nn

from spikeflow.kernels import available_backends, pool_lif
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.linear_lif import _intercepted
from spikeflow.nn.neuron import NeuronLayer


def _as_int(v):
    if isinstance(v, (tuple, list)):
        return v[0] if len(v) == 2 and v[0] == v[1] else None
    return v


def fusable_window(pool: nn.Module):
    """``k`` when ``pool`` (or the layer of a ``TimeFold``) is an ``nn.AvgPool2d`` of square ``k x k``
    windows with stride ``k``, no padding, no ``ceil_mode`` and no ``divisor_override`` (the
    kernel's scope), and no hooks; else ``None``."""
    if isinstance(pool, TimeFold):
        if _intercepted(pool):
            return None
        pool = pool.layer
    if type(pool) is not nn.AvgPool2d or _intercepted(pool):
        return None
    k, stride, pad = _as_int(pool.kernel_size), _as_int(pool.stride), _as_int(pool.padding)
    if k is None or stride != k or pad != 0 or pool.ceil_mode or pool.divisor_override is not None:
        return None
    return k


def pooled_reason(x, neuron: NeuronLayer, pool: nn.Module):
    """Why ``pool(neuron(x))`` cannot take the fused kernel (``None`` when it can)."""
    k = fusable_window(pool)
    if k is None:
        return "the pooling is not a plain AvgPool2d(k) (square windows, stride k, no padding)"
    if _intercepted(neuron) or neuron.return_state or neuron.backend not in ("auto", "cpu"):
        return "the neuron layer has hooks, return_state or a forced backend"
    if not available_backends()["cpu"]:
        return "numba is not installed"
    return pool_lif.unsupported_reason(neuron.model, x, None, neuron.params, neuron.surrogate, k)


def pooled_multistep(x, neuron: NeuronLayer, pool: nn.Module):
    """``pool(neuron(x))`` by the fused kernel (after ``pooled_reason`` returned ``None``)."""
    neuron._check(x, x.dim() - 2)
    name = f"{neuron._name()}+AvgPool2d({fusable_window(pool)})"
    return pool_lif.lif_avgpool(neuron.model, x, None, neuron.params, neuron.surrogate, fusable_window(pool), name)[0]
