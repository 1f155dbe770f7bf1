"""Triton kernels against the reference. Interop tests (triton is in the interop venv): on a CUDA GPU
they run the compiled kernels, elsewhere triton's interpreter on CPU tensors (tests/conftest.py sets
``TRITON_INTERPRET=1`` when there is no GPU); without triton they fail."""

from __future__ import annotations

import pytest
import torch

from spikeflow import kernels
from spikeflow.neurons import MODELS, heaviside
from spikeflow.surrogate import Surrogate
from tests.peers import require

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
MODELS_RESETS = [(m, r) for m in ("lif", "if") for r in ("subtract", "to_reset", "none")]
SURROGATES = [Surrogate("fast_sigmoid", 10.0), Surrogate("atan", 2.0), Surrogate("triangle", 1.0),
              Surrogate("straight_through", 1.0)]
# A GPU may contract a multiply-add into an FMA, so its membranes can differ from the CPU's in the
# last bits (~1e-7 here). Cases whose membrane never comes within MARGIN of the threshold (checked in
# float64) therefore have the same spikes on every device: no spike comparison is left to chance.
MARGIN = 1e-3


def _params(model, reset):
    kw = dict(reset=reset, v_reset=-0.1)
    if model == "lif":
        kw.update(tau_mem=5e-3, r=3.0)
    return MODELS[model].params_cls(**kw)


def _min_margin(model, params, x, v0) -> float:
    """Smallest |membrane - threshold| over all neurons and steps of the float64 reference."""
    m = MODELS[model]
    seen = []

    def spike_fn(u):
        seen.append(float(u.abs().min()))
        return heaviside(u)

    st = m.init_state(x.shape[1:], params, dtype=torch.float64)._replace(v=v0.double())
    kernels.multistep(m, x.double(), st, params, spike_fn, backend="reference")
    return min(seen)


def _case(model, reset):
    """Input, initial membrane and output weights of the first seed from 5 on whose membranes keep
    MARGIN away from the threshold (a fixed, deterministic choice)."""
    params = _params(model, reset)
    for seed in range(5, 105):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(20, 3, 9, generator=g) * 0.8 + 0.4
        v0 = MODELS[model].init_state((3, 9), params).v + 0.3
        w = torch.randn(x.shape, generator=g)
        if _min_margin(model, params, x, v0) >= MARGIN:
            return params, x, v0, w
    raise AssertionError(f"no seed gives a {model}/{reset} case clear of the threshold")


@pytest.mark.parametrize("model, reset", MODELS_RESETS)
def test_cases_keep_clear_of_the_threshold_and_spike(model, reset):
    """Runs without triton: every case the GPU test uses exists and exercises spikes and resets."""
    params, x, v0, _ = _case(model, reset)
    m = MODELS[model]
    st = m.init_state(x.shape[1:], params)._replace(v=v0)
    out, _, _ = kernels.multistep(m, x, st, params, heaviside, backend="reference")
    assert 0 < out.mean() < 0.9


# every reset with every surrogate, the two models in turn (the interpreter takes ~0.3 s a case)
GPU_CASES = [(("lif", "if")[(i + j) % 2], reset, sg) for i, reset in enumerate(("subtract", "to_reset", "none"))
             for j, sg in enumerate(SURROGATES)]


@pytest.mark.interop
@pytest.mark.parametrize("model, reset, sg", GPU_CASES)
def test_triton_matches_reference(model, reset, sg):
    require("triton")
    assert kernels.available_backends()["gpu"]
    params, x, v0, w = _case(model, reset)
    m = MODELS[model]
    x, w = x.to(DEVICE).requires_grad_(), w.to(DEVICE)
    st = m.init_state(x.shape[1:], params, device=DEVICE)
    st = st._replace(v=v0.to(DEVICE).requires_grad_())
    res = []
    for backend in ("gpu", "reference"):
        out, final, trace = kernels.multistep(m, x, st, params, sg, backend=backend, return_trace=True)
        loss = (out * w).sum() + 0.1 * trace.square().sum() + final.v.sum()
        res.append((out, trace, torch.autograd.grad(loss, (x, st.v))))
    (o1, t1, g1), (o2, t2, g2) = res
    assert torch.equal(o1, o2)
    assert (t1 - t2).abs().max().item() < 1e-5
    for a, b in zip(g1, g2):
        assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())
