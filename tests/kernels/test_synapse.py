"""Event-path Linear against the dense ``F.linear``: same outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from spikeflow.errors import ParameterError, ShapeError
from spikeflow.kernels import synapse
from spikeflow.nn import LIF, Sequential, SpikeLinear


def _compare(x, weight, bias, tol):
    leaves = [t for t in (x, weight, bias) if t is not None and t.requires_grad]
    y_e = synapse.event_linear(x, weight, bias)
    y_d = F.linear(x, weight, bias)
    assert y_e.shape == y_d.shape and y_e.dtype == y_d.dtype
    assert torch.allclose(y_e, y_d, rtol=tol, atol=tol)
    g = torch.randn_like(y_d)
    ge = torch.autograd.grad(y_e, leaves, g)
    gd = torch.autograd.grad(y_d, leaves, g)
    for a, b in zip(ge, gd):
        assert torch.allclose(a, b, rtol=tol, atol=tol * max(1.0, b.abs().max().item()))


@settings(max_examples=25, deadline=None)
@given(
    lead=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 20),
    p=st.floats(0.0, 1.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    bias=st.booleans(),
    input_grad=st.booleans(),
    binary=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_event_linear_equals_dense(lead, n_in, n_out, p, dtype, bias, input_grad, binary, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*lead, n_in, generator=g) < p
    x = mask.to(dtype) if binary else mask.to(dtype) * torch.randn(*lead, n_in, generator=g, dtype=dtype)
    x.requires_grad_(input_grad)
    w = torch.randn(n_out, n_in, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(n_out, generator=g, dtype=dtype, requires_grad=True) if bias else None
    _compare(x, w, b, 1e-5 if dtype == torch.float32 else 1e-12)


def test_spike_linear_paths_agree_on_w1_layer():
    torch.manual_seed(0)
    x = (torch.rand(20, 8, 700) < 0.05).float()
    ev = SpikeLinear(700, 256, event="always")
    de = SpikeLinear(700, 256, event="never")
    de.load_state_dict(ev.state_dict())
    y_e, y_d = ev(x), de(x)
    assert torch.allclose(y_e, y_d, atol=1e-5)
    y_e.square().sum().backward()
    y_d.square().sum().backward()
    assert torch.allclose(ev.weight.grad, de.weight.grad, rtol=1e-4, atol=1e-3)
    assert torch.allclose(ev.bias.grad, de.bias.grad, rtol=1e-4, atol=1e-3)


def test_loads_a_linear_state_dict_and_gives_its_gradient_in_the_weight_layout():
    torch.manual_seed(2)
    dense = torch.nn.Linear(700, 256)
    ev = SpikeLinear(700, 256, event="always")
    ev.load_state_dict(dense.state_dict())
    assert torch.equal(ev.weight, dense.weight)
    x = (torch.rand(10, 4, 700) < 0.05).float()
    ev(x).square().sum().backward()
    dense(x).square().sum().backward()
    # the event path's gradient (computed input-major) lands in the parameter's own layout
    assert ev.weight.grad.stride() == ev.weight.stride()
    assert torch.allclose(ev.weight.grad, dense.weight.grad, rtol=1e-4, atol=1e-3)


def test_auto_path_follows_crossover():
    x_sparse = (torch.rand(4, 3, 50) < 0.02).float()
    x_dense = torch.ones(4, 3, 50)
    assert synapse.use_event_path(x_sparse, 256, 0.1)
    assert not synapse.use_event_path(x_sparse, 8, 0.1)  # too narrow a layer
    assert not synapse.use_event_path(x_dense, 256, 0.1)
    assert not synapse.use_event_path(x_sparse.to(torch.float16), 256, 0.1)
    assert abs(synapse.activity((torch.rand(1000, 700) < 0.05).float()) - 0.05) < 0.01


def test_spike_linear_in_sequential_with_lif():
    torch.manual_seed(1)
    net = Sequential(SpikeLinear(30, 10), LIF(10, tau_mem=5e-3, r=5.0))
    x = (torch.rand(15, 2, 30) < 0.1).float()
    out = net(x)
    assert out.shape == (15, 2, 10)
    net.reset()
    steps = torch.stack([net.step(x[t]) for t in range(15)])
    assert torch.equal(steps, out)  # streaming equals multi-step


def test_spike_linear_bad_input_and_options():
    with pytest.raises(ParameterError, match="'event'"):
        SpikeLinear(3, 2, event="sometimes")
    with pytest.raises(ParameterError, match="'crossover'"):
        SpikeLinear(3, 2, crossover=2.0)
    with pytest.raises(ShapeError, match="last axis must be 3"):
        SpikeLinear(3, 2)(torch.zeros(4, 5))


def test_activity_estimate_matches_the_exact_fraction():
    g = torch.Generator().manual_seed(0)
    small = (torch.rand(50, 40, generator=g) < 0.3).float()
    assert synapse.activity(small) == torch.count_nonzero(small).item() / small.numel()  # counted exactly
    for p in (0.01, 0.05, 0.2):
        big = (torch.rand(100, 32, 700, generator=g) < p).float()
        assert abs(synapse.activity(big) - p) < 0.15 * p + 0.002
        # a non-contiguous view is sampled as the same values
        assert synapse.activity(big.transpose(0, 1)) == pytest.approx(p, rel=0.15, abs=0.002)
    # the sample spans the whole tensor: activity only in the last time steps is seen
    late = torch.zeros(100, 32, 700)
    late[80:] = 1.0
    assert synapse.activity(late) == pytest.approx(0.2, abs=0.03)
    # the numba count (float32/float64) and the torch one (other dtypes) sample the same entries
    for t in (small, big, late):
        assert synapse.activity(t.to(torch.float16)) == synapse.activity(t) == synapse.activity(t.double())
