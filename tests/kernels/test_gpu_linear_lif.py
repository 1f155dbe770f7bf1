"""The triton Linear+LIF kernel against the CPU ``LinearLIF`` (its public API). Interop tests: on a CUDA GPU
the compiled kernel runs on CUDA tensors, elsewhere triton's interpreter on CPU tensors (the layer's
``backend="gpu"`` sends them to it); without triton they fail."""

from __future__ import annotations

import copy

import pytest
import torch

from spikeflow.errors import InputError, ParameterError
from spikeflow.nn import LIF, LinearLIF, Sequential, SpikeLinear
from spikeflow.nn.linear_lif import fused_reason
from spikeflow.surrogate import Surrogate
from tests.peers import require

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# The GPU sums the current in another order (and may contract multiply-adds), so membranes differ from
# the CPU's in the last bits; the cases keep every membrane MARGIN away from the threshold (checked in
# float64), so their spikes are the same on every device.
MARGIN = 1e-3
LIF_KW = dict(tau_mem=5e-3, r=2.0, v_reset=-0.1)
GAIN = 6.0


def _h64(layer: LinearLIF, x, v0):
    """The membranes before reset of the layer over ``x``, in float64, by the LIF equations written out."""
    p = layer.lif.params
    a = torch.as_tensor(p.alpha, dtype=torch.float64)
    th = torch.as_tensor(p.v_threshold, dtype=torch.float64)
    cur = x.double() @ layer.linear.weight.double().t() + layer.linear.bias.double()
    v, hs = v0.double(), []
    for t in range(x.shape[0]):
        h = p.v_leak + (v - p.v_leak) * a + p.r * cur[t] * (1 - a)
        z = (h > th).double()
        v = {"subtract": h - z * th, "to_reset": h - z * (h - p.v_reset), "none": h}[p.reset]
        hs.append(h - th)
    return torch.stack(hs)


def _case(n_in, n_out, batch, reset, learn, binary=True, n_steps=8, **kw):
    """A CPU layer, an input and an initial membrane whose membranes keep MARGIN from the threshold:
    the first seed from 0 on that gives one (a fixed, deterministic choice) and spikes."""
    for seed in range(100):
        torch.manual_seed(seed)
        layer = LinearLIF(n_in, n_out, reset=reset, learn_tau=learn, learn_threshold=learn, **LIF_KW, **kw)
        with torch.no_grad():
            layer.linear.weight.mul_(GAIN)  # membranes spread well beyond MARGIN
            if learn:  # per-neuron values, not all equal
                layer.lif.tau_mem.mul_(torch.linspace(0.8, 1.2, n_out))
                layer.lif.v_threshold.add_(torch.linspace(-0.1, 0.1, n_out))
        x = (torch.rand(n_steps, *batch, n_in) < 0.3).float() if binary else torch.rand(n_steps, *batch, n_in)
        v0 = 0.5 * torch.rand(*batch, n_out)
        u = _h64(layer, x, v0)
        if u.abs().min().item() >= MARGIN and 0.05 < (u > 0).double().mean().item() < 0.9:
            return layer, x, v0
    raise AssertionError("no seed keeps the membranes clear of the threshold")


def _run(layer, x, v0, w):
    x = x.clone().requires_grad_()
    v0 = v0.clone().requires_grad_()
    out, final = layer.multistep(x, _state(v0))
    loss = (out * w).sum() + final.v.square().sum()
    params = [p for p in layer.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x, v0, *params])
    return out, final.v, grads, _made_by(out)


def _made_by(out) -> str:
    """The autograd node that made ``out``, past reshapes."""
    fn = out.grad_fn
    while type(fn).__name__ in ("ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0"):
        fn = fn.next_functions[0][0]
    return type(fn).__name__


def _state(v0):
    from spikeflow.neurons.lif import LIFState

    return LIFState(v0, None)


def _to_gpu(layer):
    """A copy that runs the GPU kernel: moved to CUDA, or (no GPU) asking for backend "gpu"."""
    g = copy.deepcopy(layer).to(DEVICE)
    g.lif.backend = "gpu"
    return g


CASES = [  # n_in, n_out, batch, reset, learn, binary, surrogate, small tiles
    (20, 24, (5,), "subtract", False, True, Surrogate("fast_sigmoid", 10.0), False),
    (20, 24, (2, 3), "to_reset", True, True, Surrogate("atan", 2.0), False),
    (20, 20, (17,), "none", True, False, Surrogate("triangle", 1.0), True),  # 2 x 2 tiles, 2 input chunks
    (20, 24, (5,), "subtract", True, False, Surrogate("straight_through", 1.0), False),
]


@pytest.mark.interop
@pytest.mark.parametrize("n_in, n_out, batch, reset, learn, binary, sg, small", CASES)
def test_gpu_linear_lif_matches_the_cpu_layer(n_in, n_out, batch, reset, learn, binary, sg, small, monkeypatch):
    require("triton")
    from spikeflow.kernels import gpu_linear_lif

    if small:  # the smallest tiles tl.dot takes, so a small layer spans several in every direction
        for name in ("BLOCK_B", "BLOCK_O", "BLOCK_K"):
            monkeypatch.setattr(gpu_linear_lif, name, 16)
    layer, x, v0 = _case(n_in, n_out, batch, reset, learn, binary, surrogate=sg)
    gpu = _to_gpu(layer)
    w = torch.randn(x.shape[0], *batch, n_out, generator=torch.Generator().manual_seed(1))
    o1, v1, g1, fn1 = _run(layer, x, v0, w)
    o2, v2, g2, fn2 = _run(gpu, x.to(DEVICE), v0.to(DEVICE), w.to(DEVICE))
    assert fn2 == "GPULinearLIFFunctionBackward" != fn1  # the triton kernel ran
    assert torch.equal(o1, o2.cpu())
    assert (v1 - v2.cpu()).abs().max().item() < 1e-5
    assert len(g1) == len(g2) == 2 + len(list(layer.parameters()))
    for a, b in zip(g1, g2):
        assert a.shape == b.shape
        assert (a - b.cpu()).abs().max().item() <= 1e-4 * max(1.0, a.abs().max().item())


@pytest.mark.interop
def test_gpu_linear_lif_without_grad_and_in_sequential():
    require("triton")
    layer, x, v0 = _case(20, 24, (5,), "subtract", False)
    gpu = _to_gpu(layer)
    with torch.no_grad():
        o1, f1 = layer.multistep(x, _state(v0))
        o2, f2 = gpu.multistep(x.to(DEVICE), _state(v0.to(DEVICE)))
    assert torch.equal(o1, o2.cpu()) and (f1.v - f2.v.cpu()).abs().max().item() < 1e-5
    # Sequential fuses a SpikeLinear + LIF pair into the same kernel
    seq = Sequential(SpikeLinear(20, 24), LIF(24, **LIF_KW))
    seq.load_state_dict({"0.weight": layer.linear.weight, "0.bias": layer.linear.bias})
    seq_gpu = copy.deepcopy(seq).to(DEVICE)
    seq_gpu[1].backend = "gpu"
    out = seq_gpu(x.to(DEVICE))
    assert _made_by(out) == "GPULinearLIFFunctionBackward"
    assert torch.equal(out.cpu(), seq(x))


@pytest.mark.interop
def test_gpu_linear_lif_bad_input_and_scope():
    require("triton")
    gpu = _to_gpu(LinearLIF(4, 3, **LIF_KW))
    x = torch.zeros(3, 2, 4, device=DEVICE)
    x[1, 0, 2] = float("nan")
    with pytest.raises(InputError, match=r"LinearLIF\(4->3\).*NaN"):
        gpu(x)
    # outside the kernel's scope "always" names the reason, "auto" runs the layers apart (same result)
    always = _to_gpu(LinearLIF(4, 3, event="always", refractory=2e-3, **LIF_KW))
    with pytest.raises(ParameterError, match="refractory"):
        always(torch.ones(3, 2, 4, device=DEVICE))
    wide = _to_gpu(LinearLIF(4, 3, **LIF_KW)).double()
    reason = fused_reason(torch.ones(3, 2, 4, dtype=torch.float64, device=DEVICE), wide.linear, wide.lif)
    assert "float32" in reason
