"""The fused event convolution + LIF/IF + AvgPool2d kernel against the layers run apart: the event
convolution (``spikeflow.kernels.conv``, whose forward the kernel repeats operation for operation),
the models' own torch ``step`` loop and ``torch.nn.functional.avg_pool2d``. Same pooled spikes, same
weight and bias gradients up to float summation order; ``spikeflow.nn.Sequential`` picks the kernel
only where it applies."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from spikeflow import kernels
from spikeflow.kernels import conv as kconv
from spikeflow.kernels import conv_lif_pool
from spikeflow.neurons import MODELS
from spikeflow.surrogate import Surrogate

SURROGATES = [Surrogate("fast_sigmoid", 10.0), Surrogate("atan", 2.0), Surrogate("triangle", 1.0)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


def _apart(model, x, weight, bias, geom, params, sg, k):
    """The unfused layers: event conv per frame, the reference neuron loop, avg_pool2d."""
    t, b = x.shape[:2]
    (stride, padding, pool) = geom
    y = kconv.event_conv2d(x.reshape(t * b, *x.shape[2:]), weight, bias, stride, padding, pool)
    y = y.reshape(t, b, *y.shape[1:])
    state = model.init_state(y.shape[1:], params, dtype=y.dtype)
    spikes, _, _ = kernels.multistep(model, y, state, params, sg, backend="reference")
    pooled = F.avg_pool2d(spikes.reshape(t * b, *y.shape[2:]), k)
    return pooled.reshape(t, b, *pooled.shape[1:])


# The unit suite's fixed examples stay in float32 (compiling every kernel again for float64 doubles the
# test's time); `make test-slow` draws both dtypes afresh.
DTYPES = [torch.float32] if settings.default.derandomize else [torch.float32, torch.float64]


@settings(max_examples=20 if not settings.default.derandomize else 12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(["lif", "if"]), dtype=st.sampled_from(DTYPES),
       k=st.sampled_from([1, 2]), n_steps=st.integers(1, 6), batch=st.integers(1, 3),
       c_in=st.integers(1, 3), c_out=st.integers(1, 5), size=st.integers(4, 9), ksize=st.sampled_from([1, 3, 5]),
       stride=st.sampled_from([1, 2]), pad=st.integers(0, 2), pool=st.sampled_from([1, 2]),
       reset=st.sampled_from(["subtract", "to_reset", "none"]), detach=st.booleans(),
       sg=st.sampled_from(SURROGATES), rate=st.sampled_from([0.05, 0.3]), bias=st.booleans(),
       recompute=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_matches_layers_apart(model, dtype, k, n_steps, batch, c_in, c_out, size, ksize, stride, pad, pool,
                                    reset, detach, sg, rate, bias, recompute, seed):
    g = torch.Generator().manual_seed(seed)
    h = size * pool
    oh = kconv.output_size(h, ksize, stride, pad, pool)
    if oh < k or size + 2 * pad < ksize:
        return
    m = MODELS[model]
    kw = dict(reset=reset, detach_reset=detach, v_threshold=0.9, r=2.0)
    if reset == "to_reset":
        kw["v_reset"] = -0.1
    if model == "lif":
        kw.update(tau_mem=6e-3, v_leak=0.05)
    params = m.params_cls(**kw)
    x = (torch.rand((n_steps, batch, c_in, h, h), generator=g) < rate).to(dtype)
    w = (torch.randn((c_out, c_in, ksize, ksize), generator=g, dtype=dtype) * 0.8)
    b = torch.randn((c_out,), generator=g, dtype=dtype) * 0.3 if bias else None
    geom = kconv.ConvGeometry((stride, stride), (pad, pad), pool)
    wa, wb = w.clone().requires_grad_(), w.clone().requires_grad_()
    ba, bb = (b.clone().requires_grad_(), b.clone().requires_grad_()) if bias else (None, None)
    ref = _apart(m, x, wa, ba, geom, params, sg, k)
    out = conv_lif_pool.conv_lif_pool(wb, bb, geom, m, x, params, sg, k, recompute=recompute)
    # the pooled-spike map only drops the window's partial rows/columns when k does not tile it
    ref = ref[..., :out.shape[-2], :out.shape[-1]]
    assert out.shape == ref.shape
    assert torch.equal(out, ref)
    g_out = torch.randn(ref.shape, generator=g, dtype=dtype)
    torch.autograd.backward(ref, g_out)
    torch.autograd.backward(out, g_out)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert _rel(wb.grad, wa.grad) <= tol
    if bias:
        assert _rel(bb.grad, ba.grad) <= tol


@pytest.mark.parametrize("dtype,k,c_out", [
    (torch.float32, 2, 20),  # one whole vector of 16 channels, then 4 one by one
    (torch.float32, 3, 32),  # two whole vectors; 3x3 windows that leave a row and a column out
    pytest.param(torch.float64, 2, 10, marks=pytest.mark.slow),  # 8-lane vectors (float64 compiles again)
])
def test_pooling_in_whole_vectors_of_channels_matches_layers_apart(dtype, k, c_out):
    """Layers with 16 channels or more pool, and spread the pooled gradient back, whole vectors of
    channels at a time (the property test's layers have at most 5): the same pooled spikes as
    ``avg_pool2d`` of the reference's spikes, and the same weight and bias gradients."""
    g = torch.Generator().manual_seed(c_out)
    m = MODELS["lif"]
    params = m.params_cls(tau_mem=6e-3, v_leak=0.05, v_threshold=0.9, r=2.0)
    x = (torch.rand((5, 2, 2, 10, 10), generator=g) < 0.3).to(dtype)
    w = torch.randn((c_out, 2, 3, 3), generator=g, dtype=dtype) * 0.8
    b = torch.randn((c_out,), generator=g, dtype=dtype) * 0.3
    geom = kconv.ConvGeometry((1, 1), (1, 1), 1)
    sg = SURROGATES[0]
    wa, wb, ba, bb = (t.clone().requires_grad_() for t in (w, w, b, b))
    ref = _apart(m, x, wa, ba, geom, params, sg, k)
    out = conv_lif_pool.conv_lif_pool(wb, bb, geom, m, x, params, sg, k)
    ref = ref[..., :out.shape[-2], :out.shape[-1]]
    assert ref.abs().sum() > 0 and (ref != ref.amax()).any()  # spikes, and windows that are not all alike
    assert torch.equal(out, ref)
    g_out = torch.randn(ref.shape, generator=g, dtype=dtype)
    torch.autograd.backward(ref, g_out)
    torch.autograd.backward(out, g_out)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert _rel(wb.grad, wa.grad) <= tol and _rel(bb.grad, ba.grad) <= tol
