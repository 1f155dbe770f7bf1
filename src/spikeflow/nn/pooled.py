"""The fusion of a LIF/IF layer with the ``AvgPool2d`` after it (``spikeflow.kernels.pool_lif``; on CUDA
tensors ``spikeflow.kernels.gpu_pool_lif``), and of an event ``SpikeConv2d`` with such a pair
(``spikeflow.kernels.conv_lif_pool``, CPU), applied by ``spikeflow.nn.Sequential``."""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.kernels import available_backends, conv_lif_pool, pool_lif, runs_on_gpu
from spikeflow.kernels.conv import ConvGeometry, checked_events, output_size
from spikeflow.nn.conv import SpikeConv2d
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.linear_lif import intercepted
from spikeflow.nn.neuron import NeuronLayer


def _as_int(v):
    if isinstance(v, (tuple, list)):
        return v[0] if len(v) == 2 and v[0] == v[1] else None
    return v


def fusable_window(pool: nn.Module):
    """``k`` when ``pool`` (or the layer of a ``TimeFold``) is an ``nn.AvgPool2d`` of square ``k x k``
    windows with stride ``k``, no padding, no ``ceil_mode`` and no ``divisor_override`` (the
    kernel's scope), and no hooks; else ``None``."""
    if isinstance(pool, TimeFold):  # how Sequential holds a torch layer
        if intercepted(pool):
            return None
        pool = pool.layer
    if type(pool) is not nn.AvgPool2d or intercepted(pool):
        return None
    k, stride, pad = _as_int(pool.kernel_size), _as_int(pool.stride), _as_int(pool.padding)
    if k is None or stride != k or pad != 0 or pool.ceil_mode or pool.divisor_override is not None:
        return None
    return k


def _neuron_fusable(neuron: nn.Module) -> bool:
    return (isinstance(neuron, NeuronLayer) and not intercepted(neuron) and not neuron.return_state
            and neuron.backend in ("auto", "cpu") and available_backends()["cpu"])


def conv_pooled_forward(x, conv: nn.Module, neuron: nn.Module, pool):
    """``pool(neuron(conv(x)))`` by one kernel (``spikeflow.kernels.conv_lif_pool``) from rest, or ``None``
    when the triple is out of its scope: a ``SpikeConv2d`` on its event path over time-major input that
    needs no gradient, then a neuron layer and a pooling layer as ``pooled_forward`` fuses them."""
    if (not isinstance(conv, SpikeConv2d) or intercepted(conv) or not _neuron_fusable(neuron)
            or not isinstance(x, torch.Tensor) or x.dim() != 5 or x.requires_grad or x.device.type != "cpu"):
        return None
    k = fusable_window(pool)
    if k is None:
        return None
    conv._check(x)
    t, b = x.shape[:2]
    if not conv.use_event_path(x.reshape(t * b, *x.shape[2:])):
        return None
    geom = ConvGeometry(tuple(conv.stride), tuple(conv.padding), int(conv.pool))
    h, w = x.shape[-2:]
    oh, ow = (output_size(n, kk, s, p, conv.pool)
              for n, kk, s, p in zip((h, w), conv.kernel_size, conv.stride, conv.padding))
    x = x.to(torch.promote_types(x.dtype, conv.weight.dtype))
    params = neuron.params
    if conv_lif_pool.unsupported_reason((conv.out_channels, oh, ow), neuron.model, x, params, neuron.surrogate,
                                        k) is not None:
        return None
    if neuron.shape is not None and tuple(neuron.shape) != (conv.out_channels, oh, ow)[3 - len(neuron.shape):]:
        return None  # the layers apart raise the neuron's shape error
    events, finite = checked_events(x.reshape(t * b, *x.shape[2:]), geom.pool)
    if neuron.validate and not (finite and torch.isfinite(conv.weight.detach().sum())):
        return None  # the layers apart name the NaN/inf the neuron would see
    return conv_lif_pool.conv_lif_pool(conv.weight, conv.bias, geom, neuron.model, x, params, neuron.surrogate, k,
                                       events=events)


def pooled_forward(x, neuron: nn.Module, pool, then=None):
    """``pool(neuron(x))`` by the fused kernel from rest, or ``None`` when the pair (a ``NeuronLayer``,
    then a layer ``fusable_window`` accepts) is out of its scope: then run the layers apart. ``then``:
    the layer after the pool; before a ``Flatten`` the pooled spikes are written contiguous."""
    if not isinstance(neuron, NeuronLayer) or not isinstance(x, torch.Tensor) or x.dim() != 5:
        return None
    k = fusable_window(pool)
    if (k is not None and not intercepted(neuron) and not neuron.return_state and neuron.backend in ("auto", "gpu")
            and runs_on_gpu(x, neuron.backend)):
        return _gpu_pooled(x, neuron, k)
    if (k is None or intercepted(neuron) or neuron.return_state or neuron.backend not in ("auto", "cpu")
            or not available_backends()["cpu"]):
        return None
    params = neuron.params
    state = neuron.model.init_state(x.shape[1:], params, dtype=x.dtype)
    if pool_lif.unsupported_reason(neuron.model, x, state, params, neuron.surrogate, k) is not None:
        return None
    neuron._check_shape(x)  # NaN/inf: the kernel checks on its pass over x
    flatten = isinstance(then, TimeFold) and type(then.layer) is nn.Flatten
    return pool_lif.run_fused(neuron.model, x, state, params, neuron.surrogate, k,
                              neuron._name() if neuron.validate else None, contiguous=flatten)[0]


def _gpu_pooled(x, neuron: NeuronLayer, k: int):
    """``pooled_forward`` by the triton kernel (CUDA input), or ``None`` when it is out of that kernel's scope."""
    from spikeflow.kernels import gpu_pool_lif

    params = neuron.params
    state = neuron.model.init_state(x.shape[1:], params, dtype=x.dtype, device=x.device)
    if gpu_pool_lif.unsupported_reason(neuron.model, x, state, params, neuron.surrogate, k) is not None:
        return None
    neuron._check(x, x.dim() - 2)
    return gpu_pool_lif.run_fused(neuron.model, x, state, params, neuron.surrogate, k)[0]
