"""Event-path convolution against torch's dense ``avg_pool2d`` + ``conv2d``: same outputs and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from spikeflow.errors import InputError, ParameterError, ShapeError
from spikeflow.kernels import conv as kconv
from spikeflow.kernels.fused import memory_order
from spikeflow.nn import LIF, Sequential, SpikeConv2d


def _dense(x, w, b, stride, padding, pool):
    if pool > 1:
        x = F.avg_pool2d(x, pool)
    return F.conv2d(x, w, b, stride, padding)


def _compare(x, w, b, stride, padding, pool, tol):
    """The event path and spikeflow's dense path (pooling folded in) against plain torch."""
    leaves = [t for t in (x, w, b) if t is not None and t.requires_grad]
    y_d = _dense(x, w, b, stride, padding, pool)
    g = torch.randn_like(y_d)
    gd = torch.autograd.grad(y_d, leaves, g) if leaves else ()
    scale = max(1.0, y_d.abs().max().item())
    for impl in (kconv.event_conv2d, kconv.dense_conv2d):
        y = impl(x, w, b, stride, padding, pool)
        assert y.shape == y_d.shape and y.dtype == y_d.dtype
        assert torch.allclose(y, y_d, rtol=tol, atol=tol * scale)
        for a, d in zip(torch.autograd.grad(y, leaves, g) if leaves else (), gd):
            assert a.shape == d.shape
            assert torch.allclose(a, d, rtol=tol, atol=tol * max(1.0, d.abs().max().item()))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 9),
    size=st.tuples(st.integers(1, 13), st.integers(1, 13)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    pool=st.integers(1, 3),
    p=st.floats(0.0, 1.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    bias=st.booleans(),
    input_grad=st.booleans(),
    binary=st.booleans(),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_event_conv_equals_dense(n, c_in, c_out, size, kernel, stride, padding, pool, p, dtype, bias, input_grad,
                                 binary, channels_last, seed):
    h, w = size[0] * pool + seed % pool, size[1] * pool  # rows beyond the last pooling window are dropped
    kernel = tuple(min(k, s + 2 * q) for k, s, q in zip(kernel, size, padding))
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, c_in, h, w, generator=g) < p
    x = mask.to(dtype) if binary else mask.to(dtype) * torch.randn(n, c_in, h, w, generator=g, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(input_grad)
    wt = torch.randn(c_out, c_in, *kernel, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(c_out, generator=g, dtype=dtype, requires_grad=True) if bias else None
    _compare(x, wt, b, stride, padding, pool, 1e-5 if dtype == torch.float32 else 1e-12)


def test_event_conv_hand_computed():
    """One spike under a 2x2 kernel of distinct weights lands on the four outputs it reaches."""
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = kconv.event_conv2d(x, w, torch.tensor([0.5]), (1, 1), (0, 0))
    # out[oy, ox] = sum w[ky, kx] x[oy + ky, ox + kx]: the spike at (1, 1) is tap (1-oy, 1-ox)
    expected = torch.tensor([[4.0, 3.0], [2.0, 1.0]]) + 0.5
    assert torch.equal(y[0, 0], expected)


def test_w2_layers_paths_agree():
    """The W2 benchmark's layers (10 % input, pooled second layer) agree on both paths."""
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 2, 32, 32) < 0.1).float()
    ev, de = SpikeConv2d(2, 16, 5, padding=2, event="always"), SpikeConv2d(2, 16, 5, padding=2, event="never")
    de.load_state_dict(ev.state_dict())
    y_e, y_d = ev(x), de(x)
    assert y_e.shape == (4, 3, 16, 32, 32)
    assert torch.allclose(y_e, y_d, atol=1e-5)
    y_e.square().sum().backward()
    y_d.square().sum().backward()
    assert torch.allclose(ev.weight.grad, de.weight.grad, rtol=1e-4, atol=1e-3)
    assert torch.allclose(ev.bias.grad, de.bias.grad, rtol=1e-4, atol=1e-3)

    s = (torch.rand(4, 3, 16, 32, 32) < 0.1).float().requires_grad_()
    p_e = SpikeConv2d(16, 32, 5, padding=2, pool=2, event="always")
    p_d = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(16, 32, 5, padding=2))
    p_d[1].load_state_dict(p_e.state_dict())
    z_e = p_e(s)
    z_d = p_d(s.reshape(12, 16, 32, 32)).reshape(4, 3, 32, 16, 16)
    assert torch.allclose(z_e, z_d, atol=1e-5)
    g_e = torch.autograd.grad(z_e.square().sum(), (s, p_e.weight))
    g_d = torch.autograd.grad(z_d.square().sum(), (s, p_d[1].weight))
    for a, d in zip(g_e, g_d):
        assert torch.allclose(a, d, rtol=1e-4, atol=1e-3)


def test_auto_path_follows_crossover():
    sparse = (torch.rand(8, 2, 16, 16) < 0.02).float()
    dense = torch.ones(8, 2, 16, 16)
    layer = SpikeConv2d(2, 4, 3, crossover=0.1)
    assert layer.use_event_path(sparse)
    assert not layer.use_event_path(dense)
    assert not layer.use_event_path(sparse.double().half())
    pooled = SpikeConv2d(2, 4, 3, pool=2, crossover=0.1)
    # 5 % of pixels active: about 1 - 0.95**4 = 18.5 % of 2x2 windows hold one
    x = (torch.rand(64, 2, 32, 32) < 0.05).float()
    assert abs(kconv.pooled_activity(x, 2) - (1 - 0.95**4)) < 0.02
    assert not pooled.use_event_path(x)
    assert layer.use_event_path(x)


def test_lif_keeps_channels_last_memory_and_values():
    """A neuron layer on channels-last conv output runs in that memory order: same values, no copy."""
    torch.manual_seed(2)
    x = torch.randn(5, 2, 3, 4, 6).contiguous(memory_format=torch.channels_last_3d)
    assert memory_order(x) != list(range(5))
    lif = LIF(tau_mem=5e-3, r=5.0)
    x1 = x.clone().requires_grad_()
    x2 = x.contiguous().requires_grad_()
    y1, y2 = lif(x1), lif(x2)
    assert y1.stride() == x1.stride()
    assert torch.equal(y1, y2)
    g = torch.randn(y2.shape)
    assert torch.allclose(torch.autograd.grad(y1, x1, g)[0], torch.autograd.grad(y2, x2, g)[0])


def test_spike_conv_in_sequential_with_lif_matches_timefold():
    torch.manual_seed(3)
    lif = dict(tau_mem=-1e-3 / math.log(0.9), r=10.0, dt=1e-3)
    conv = SpikeConv2d(2, 4, 3, padding=1, event="always")
    ref = nn.Conv2d(2, 4, 3, padding=1)
    ref.load_state_dict(conv.state_dict())
    x = (torch.rand(6, 2, 2, 8, 8) < 0.2).float()
    out = Sequential(conv, LIF(**lif))(x)
    out_ref = Sequential(ref, LIF(**lif))(x)
    assert out.shape == (6, 2, 4, 8, 8)
    assert torch.equal(out, out_ref)
    step = Sequential(conv, LIF(**lif))
    assert torch.equal(torch.stack([step.step(x[t]) for t in range(6)]), out_ref)


@pytest.mark.parametrize("kwargs, field", [
    (dict(kernel_size=0), "kernel_size"), (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(stride=0), "stride"), (dict(padding=-1), "padding"), (dict(padding="same"), "padding"),
    (dict(pool=0), "pool"), (dict(event="sometimes"), "event"), (dict(crossover=1.5), "crossover"),
])
def test_bad_arguments_name_the_layer(kwargs, field):
    args = dict(kernel_size=3) | kwargs
    with pytest.raises(ParameterError, match=rf"SpikeConv2d\(2->4\).*'{field}'"):
        SpikeConv2d(2, 4, **args)


def test_bad_input_names_the_layer():
    layer = SpikeConv2d(2, 4, 3)
    with pytest.raises(ShapeError, match=r"SpikeConv2d\(2->4\).*\[N, 2, H, W\]"):
        layer(torch.zeros(3, 5, 8, 8))
    with pytest.raises(ShapeError, match=r"SpikeConv2d\(2->4\)"):
        layer(torch.zeros(3, 2, 8))
    with pytest.raises(ShapeError, match=r"SpikeConv2d\(2->4\).*smaller than the kernel"):
        layer(torch.zeros(1, 2, 2, 2))
    with pytest.raises(InputError, match=r"SpikeConv2d\(2->4\).*floating-point"):
        layer(torch.zeros(1, 2, 8, 8, dtype=torch.int64))
    with pytest.raises(ShapeError, match=r"SpikeConv2d\(2->4\).*1x1 is smaller than the 2x2 pooling window"):
        SpikeConv2d(2, 4, 3, padding=2, pool=2)(torch.ones(1, 2, 1, 1))
