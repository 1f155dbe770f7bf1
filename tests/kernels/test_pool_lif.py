"""The fused LIF/IF + AvgPool2d kernel against the unfused reference: the models' own torch ``step``
loop followed by ``torch.nn.functional.avg_pool2d``. Same pooled spikes, same final state, same
gradients for the input and the initial state, in both memory layouts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from spikeflow import kernels
from spikeflow.errors import InputError, ParameterError
from spikeflow.kernels import pool_lif
from spikeflow.neurons import MODELS
from spikeflow.nn import IF, LIF, Sequential, SpikeConv2d, sequential
from spikeflow.surrogate import Surrogate

SURROGATES = [Surrogate("fast_sigmoid", 10.0), Surrogate("atan", 2.0), Surrogate("triangle", 1.0),
              Surrogate("straight_through", 1.0)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


def _reference(model, x, v0, params, sg, k):
    state = model.init_state(x.shape[1:], params, dtype=x.dtype)
    state = state._replace(v=v0)
    out, final, _ = kernels.multistep(model, x, state, params, sg, backend="reference")
    t, b = x.shape[:2]
    pooled = F.avg_pool2d(out.reshape(t * b, *x.shape[2:]), k)
    return pooled.reshape(t, b, *pooled.shape[1:]), final.v


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(["lif", "if"]), dtype=st.sampled_from([torch.float32, torch.float64]),
       k=st.sampled_from([2, 3]), n_steps=st.integers(1, 12), batch=st.integers(1, 3), channels=st.integers(1, 5),
       rows=st.integers(1, 3), cols=st.integers(1, 3), channels_last=st.booleans(),
       reset=st.sampled_from(["subtract", "to_reset", "none"]), detach=st.booleans(),
       sg=st.sampled_from(SURROGATES), seed=st.integers(0, 2**16))
def test_fused_matches_lif_then_avgpool(model, dtype, k, n_steps, batch, channels, rows, cols, channels_last, reset,
                                        detach, sg, seed):
    _check_against_reference(model, dtype, k, n_steps, batch, channels, rows, cols, channels_last, reset, detach, sg,
                             seed)


@pytest.mark.parametrize("k,channels", [(2, 20), (3, 32)])
def test_channels_last_in_whole_vectors_matches_lif_then_avgpool(k, channels):
    """Channels-last maps with 16 channels or more spread the pooled gradient whole vectors of
    channels at a time (the property test's maps have at most 5)."""
    _check_against_reference("lif", torch.float32, k, 6, 2, channels, 2, 3, True, "subtract", False, SURROGATES[0], k)


def _check_against_reference(model, dtype, k, n_steps, batch, channels, rows, cols, channels_last, reset, detach, sg,
                             seed):
    """The fused kernel's pooled spikes, final membrane and gradients against the reference loop + ``avg_pool2d``."""
    g = torch.Generator().manual_seed(seed)
    m = MODELS[model]
    kw = dict(reset=reset, detach_reset=detach, v_threshold=0.9, r=2.0)
    if reset == "to_reset":
        kw["v_reset"] = -0.1
    if model == "lif":
        kw.update(tau_mem=6e-3, v_leak=0.05)
    params = m.params_cls(**kw)
    shape = (n_steps, batch, channels, rows * k, cols * k)
    x = torch.randn(shape, generator=g, dtype=dtype) * 0.8 + 0.3
    if channels_last:  # the layout of the event convolution's output
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    v0 = 0.5 * torch.rand(shape[1:], generator=g, dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    va, vb = v0.clone().requires_grad_(), v0.clone().requires_grad_()
    ref, ref_v = _reference(m, xa, va, params, sg, k)
    state = m.init_state(shape[1:], params, dtype=dtype)
    state = state._replace(v=vb)
    out, final = pool_lif.lif_avgpool(m, xb, state, params, sg, k)
    assert out.shape == ref.shape
    assert torch.equal(out, ref)
    assert (final.v - ref_v).abs().max().item() <= 1e-5
    g_out = torch.randn(ref.shape, generator=g, dtype=dtype)
    g_v = torch.randn(shape[1:], generator=g, dtype=dtype)
    torch.autograd.backward((ref, ref_v), (g_out, g_v))
    torch.autograd.backward((out, final.v), (g_out, g_v))
    assert _rel(xb.grad, xa.grad) <= 1e-4
    assert _rel(vb.grad, va.grad) <= 1e-4
    # written contiguous (for a Flatten next): the same values and gradients, bit for bit
    xc, vc = x.clone().requires_grad_(), v0.clone().requires_grad_()
    out_c, final_c = pool_lif.run_fused(m, xc, state._replace(v=vc), params, sg, k, contiguous=True)
    assert out_c.is_contiguous() and torch.equal(out_c, out) and torch.equal(final_c.v, final.v)
    torch.autograd.backward((out_c, final_c.v), (g_out, g_v))
    assert torch.equal(xc.grad, xb.grad) and torch.equal(vc.grad, vb.grad)


def test_pooled_values_by_hand():
    """IF neurons, threshold 1 (strict), r = 1, subtract reset, constant drive 0.75 (exact in binary):
    the membrane before reset runs 0.75, 1.5, 1.25, 1.0, 1.75, 1.5, 1.25, so the neuron spikes at
    steps 2, 3, 5, 6, 7; a 2x2 window with two such neurons and two undriven ones averages 0.5 there."""
    m = MODELS["if"]
    params = m.params_cls(v_threshold=1.0, r=1.0)
    x = torch.zeros(7, 1, 1, 2, 2)
    x[:, :, :, 0, :] = 0.75
    out, final = pool_lif.lif_avgpool(m, x, None, params, Surrogate("fast_sigmoid", 10.0), 2)
    assert torch.equal(out.reshape(7), torch.tensor([0, 0.5, 0.5, 0, 0.5, 0.5, 0.5]))
    assert torch.equal(final.v[0, 0], torch.tensor([[0.25, 0.25], [0.0, 0.0]]))


def test_out_of_scope_calls_are_refused():
    m = MODELS["lif"]
    sg = Surrogate("fast_sigmoid", 10.0)
    with pytest.raises(ParameterError, match="cannot run.*tile"):
        pool_lif.lif_avgpool(m, torch.zeros(3, 1, 2, 5, 4), None, m.params_cls(), sg, 2)
    with pytest.raises(ParameterError, match="refractory"):
        pool_lif.lif_avgpool(m, torch.zeros(3, 1, 2, 4, 4), None, m.params_cls(refractory=2e-3), sg, 2)
    with pytest.raises(ParameterError, match=r"\[T, B, C, H, W\]"):
        pool_lif.lif_avgpool(m, torch.zeros(3, 2, 4, 4), None, m.params_cls(), sg, 2)


def _conv_net(pool: nn.Module, neuron=None, head: bool = True):
    torch.manual_seed(3)
    layers = [SpikeConv2d(2, 4, 3, padding=1), neuron or LIF(tau_mem=5e-3, r=5.0), pool]
    return Sequential(*layers, *([nn.Flatten(), nn.Linear(4 * 4 * 4, 3)] if head else []))


@pytest.mark.parametrize("event", ["always", "never"])  # channels-last and contiguous conv output
def test_sequential_fuses_neuron_and_avgpool(monkeypatch, event):
    seq = _conv_net(nn.AvgPool2d(2))
    seq[0].event = event
    x = (torch.rand(9, 2, 2, 8, 8) < 0.3).float()
    calls = []
    real = pool_lif.run_fused
    monkeypatch.setattr(pool_lif, "run_fused", lambda *a, **k: calls.append(1) or real(*a, **k))
    # the pair alone: the conv + LIF + pool triple kernel (tests/kernels/test_conv_lif_pool.py) is off
    monkeypatch.setattr(sequential, "conv_pooled_forward", lambda *a: None)
    out = seq(x)
    out.square().sum().backward()
    assert calls == [1]
    grads = [p.grad.clone() for p in seq.parameters()]
    seq.zero_grad()
    ref = x
    for m in seq:  # layer by layer: the unfused path
        ref = m(ref)
    ref.square().sum().backward()
    assert torch.allclose(out, ref, rtol=1e-6, atol=1e-6)
    for a, p in zip(grads, seq.parameters()):
        assert _rel(a, p.grad) <= 1e-5


@pytest.mark.parametrize("pool", [nn.AvgPool2d(2, stride=1), nn.AvgPool2d(2, padding=1),
                                  nn.AvgPool2d(2, ceil_mode=True), nn.AvgPool2d(2, divisor_override=3),
                                  nn.MaxPool2d(2)])
def test_other_pooling_runs_unfused(monkeypatch, pool):
    seq = _conv_net(pool, head=False)
    monkeypatch.setattr(pool_lif, "run_fused", lambda *a, **k: pytest.fail("fused out of scope"))
    x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
    ref = x
    for m in seq:
        ref = m(ref)
    assert torch.equal(seq(x), ref)


def test_learned_threshold_and_hooks_run_unfused(monkeypatch):
    monkeypatch.setattr(pool_lif, "run_fused", lambda *a, **k: pytest.fail("fused out of scope"))
    x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
    _conv_net(nn.AvgPool2d(2), LIF((4, 8, 8), learn_threshold=True))(x)
    seq = _conv_net(nn.AvgPool2d(2), IF())
    seen = []
    seq[1].register_forward_hook(lambda m, i, o: seen.append(o))
    seq(x)
    assert len(seen) == 1


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("where", [(0, 0, 0, 0, 0), (1, 0, 1, 2, 2), (2, 1, 2, 3, 5)])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_bad_input_names_the_neuron_layer(channels_last, where, value):
    """The kernel finds a NaN/inf anywhere (first and last step, sample, channel, row and column),
    with or without a Flatten next (then the pooled spikes are written contiguous)."""
    for flatten in (False, True):
        seq = Sequential(LIF(tau_mem=5e-3), nn.AvgPool2d(2), *([nn.Flatten()] if flatten else []))
        x = torch.zeros(3, 2, 3, 4, 6)
        if channels_last:
            x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        x[where] = value
        with pytest.raises(InputError, match=r"LIF\(lif\).*NaN or inf"):
            seq(x)
        seq[0].validate = False  # not checked: runs
        assert seq(x).shape[:2] == (3, 2)
