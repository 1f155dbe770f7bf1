"""The triton LIF/IF + AvgPool2d kernel against the CPU one (``spikeflow.kernels.pool_lif``) and, through
``spikeflow.nn.Sequential``, against the CPU layers. Interop tests: on a CUDA GPU the compiled kernel runs
on CUDA tensors, elsewhere triton's interpreter on CPU tensors; without triton they fail."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeflow import kernels
from spikeflow.errors import ParameterError
from spikeflow.kernels import pool_lif
from spikeflow.neurons import MODELS, heaviside
from spikeflow.nn import LIF, Sequential, SpikeConv2d
from spikeflow.surrogate import Surrogate
from tests.peers import require

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# as tests/kernels/test_gpu.py: membranes kept MARGIN from the threshold (in float64) spike alike everywhere
MARGIN = 1e-3


def _params(model, reset, detach):
    kw = dict(reset=reset, detach_reset=detach, v_threshold=0.9, r=2.0, v_reset=-0.1)
    if model == "lif":
        kw.update(tau_mem=6e-3, v_leak=0.05)
    return MODELS[model].params_cls(**kw)


def _min_margin(model, params, x, v0) -> float:
    seen = []

    def spike_fn(u):
        seen.append(float(u.abs().min()))
        return heaviside(u)

    m = MODELS[model]
    st = m.init_state(x.shape[1:], params, dtype=torch.float64)._replace(v=v0.double())
    kernels.multistep(m, x.double(), st, params, spike_fn, backend="reference")
    return min(seen)


def _case(model, params, shape, channels_last):
    """The first seed from 0 on whose membranes keep MARGIN from the threshold (a fixed choice)."""
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(shape, generator=g) * 0.8 + 0.3
        v0 = 0.5 * torch.rand(shape[1:], generator=g)
        w = torch.randn(shape, generator=g)
        if _min_margin(model, params, x, v0) >= MARGIN:
            if channels_last:  # the layout of a channels-last convolution's output
                x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
            return x, v0, w
    raise AssertionError("no seed keeps the membranes clear of the threshold")


CASES = [  # model, reset, detach, k, channels_last, surrogate
    ("lif", "subtract", False, 2, False, Surrogate("fast_sigmoid", 10.0)),
    ("if", "to_reset", False, 3, True, Surrogate("atan", 2.0)),
    ("lif", "none", False, 2, True, Surrogate("triangle", 1.0)),
    ("lif", "to_reset", True, 2, False, Surrogate("straight_through", 1.0)),
]


@pytest.mark.interop
@pytest.mark.parametrize("model, reset, detach, k, channels_last, sg", CASES)
def test_gpu_pool_lif_matches_the_cpu_kernel(model, reset, detach, k, channels_last, sg, monkeypatch):
    require("triton")
    from spikeflow.kernels import gpu_pool_lif

    monkeypatch.setattr(gpu_pool_lif, "BLOCK", 16)  # several programs even for these small maps
    m, params = MODELS[model], _params(model, reset, detach)
    x, v0, _ = _case(model, params, (6, 2, 3, 2 * k, 2 * k), channels_last)
    res = []
    for fn, dev in ((pool_lif.lif_avgpool, "cpu"), (gpu_pool_lif.lif_avgpool, DEVICE)):
        xd = x.to(dev).requires_grad_()
        vd = v0.to(dev).requires_grad_()
        st = m.init_state(x.shape[1:], params, device=dev)._replace(v=vd)
        out, final = fn(m, xd, st, params, sg, k)
        w = torch.linspace(-1.0, 1.0, out.numel(), device=dev).reshape(out.shape)
        loss = (out * w).sum() + final.v.square().sum()
        res.append((out, final.v, torch.autograd.grad(loss, (xd, vd))))
    (o1, v1, g1), (o2, v2, g2) = res
    assert 0 < o1.mean() < 0.9  # spikes, not all
    assert o2.is_contiguous() == o1.is_contiguous()  # the layout comes back as it went in
    assert torch.equal(o1, o2.cpu())
    assert (v1 - v2.cpu()).abs().max().item() < 1e-5
    for a, b in zip(g1, g2):
        assert (a - b.cpu()).abs().max().item() <= 1e-4 * max(1.0, a.abs().max().item())


@pytest.mark.interop
def test_gpu_pool_lif_in_sequential_with_a_conv(monkeypatch):
    """Sequential(SpikeConv2d, LIF, AvgPool2d): on the GPU the conv is torch's dense one and the LIF+pool
    pair the triton kernel; the same pooled spikes and weight gradients as the CPU layers."""
    require("triton")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # cuDNN's default TF32 would move spikes
    for seed in range(100):  # the first seed whose LIF membranes keep MARGIN from the threshold (in float64)
        torch.manual_seed(seed)
        cpu = Sequential(SpikeConv2d(2, 4, 3, padding=1, event="never"), LIF((4, 8, 8), tau_mem=6e-3, r=3.0),
                         nn.AvgPool2d(2))
        x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
        with torch.no_grad():
            h = copy.deepcopy(cpu[0]).double()(x.double())
        if _min_margin("lif", cpu[1].params, h, torch.zeros(h.shape[1:], dtype=torch.float64)) >= MARGIN:
            break
    gpu = copy.deepcopy(cpu).to(DEVICE)
    gpu[1].backend = "gpu"
    o1, o2 = cpu(x), gpu(x.to(DEVICE))
    fn = o2.grad_fn
    while type(fn).__name__ in ("ViewBackward0", "PermuteBackward0"):
        fn = fn.next_functions[0][0]
    assert type(fn).__name__ == "GPUPooledNeuronBackward"
    assert 0 < o1.mean() < 0.9
    assert torch.equal(o1, o2.cpu())
    (o1 * o1.detach().roll(1, -1)).sum().backward()
    (o2 * o2.detach().roll(1, -1)).sum().backward()
    assert (cpu[0].weight.grad - gpu[0].weight.grad.cpu()).abs().max().item() < 1e-4


@pytest.mark.interop
def test_gpu_pool_lif_scope():
    require("triton")
    from spikeflow.kernels import gpu_pool_lif

    m = MODELS["lif"]
    p = m.params_cls()
    with pytest.raises(ParameterError, match="do not tile the 5x4 map"):
        gpu_pool_lif.lif_avgpool(m, torch.zeros(2, 1, 1, 5, 4, device=DEVICE), None, p, Surrogate(), 2)
    with pytest.raises(ParameterError, match="float32"):
        gpu_pool_lif.lif_avgpool(m, torch.zeros(2, 1, 1, 4, 4, dtype=torch.float64, device=DEVICE), None, p,
                                 Surrogate(), 2)
