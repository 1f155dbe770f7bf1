"""Neuron layers, time folding, recurrent layers and Sequential."""

import math

import pytest
import torch

import spikeflow.nn as snn
from spikeflow.errors import InputError, ParameterError, ShapeError
from spikeflow.neurons import lif


def test_layer_equals_reference_loop_and_returns_trace():
    torch.manual_seed(1)
    x = torch.rand(30, 4, 6, dtype=torch.float64) * 3
    layer = snn.LIF(tau_mem=5e-3, return_state=True)
    out, v = layer(x)
    p = lif.LIFParams(tau_mem=5e-3)
    state = lif.init_state((4, 6), p, torch.float64)
    for t in range(30):
        z, state = lif.step(x[t], state, p)
        assert torch.equal(out[t], z)
        assert torch.equal(v[t], state.v)


def test_streaming_step_equals_multistep():
    torch.manual_seed(2)
    x = torch.rand(25, 3, 5) * 2
    for layer in (snn.LIF(), snn.ALIF(), snn.CubaLIF(), snn.IF(), snn.LI(), snn.CubaLI()):
        full = layer(x)
        state, outs = None, []
        for t in range(25):
            o, state = layer.step(x[t], state)
            outs.append(o)
        assert torch.allclose(torch.stack(outs), full), type(layer).__name__


def test_learnable_tau_and_threshold_get_gradients():
    layer = snn.LIF(8, learn_tau=True, learn_threshold=True, tau_mem=10e-3)
    assert layer.tau_mem.shape == (8,) and layer.v_threshold.shape == (8,)
    x = torch.rand(20, 2, 8) * 4
    layer(x).sum().backward()
    assert layer.tau_mem.grad is not None and layer.tau_mem.grad.abs().sum() > 0
    assert layer.v_threshold.grad is not None and layer.v_threshold.grad.abs().sum() > 0


def test_timefold_equals_per_step_application():
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    x = torch.rand(7, 3, 2, 8, 8)
    folded = snn.TimeFold(conv)(x)
    assert folded.shape == (7, 3, 4, 8, 8)
    for t in range(7):
        assert torch.allclose(folded[t], conv(x[t]), atol=1e-6)


def test_sequential_wraps_torch_layers_and_streams():
    torch.manual_seed(4)
    net = snn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), snn.LIF(), torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3), snn.LI(),
    )
    assert isinstance(net[0], snn.TimeFold)
    x = (torch.rand(12, 2, 1, 8, 8) < 0.4).float()
    full = net(x)
    net.reset()
    streamed = torch.stack([net.step(x[t]) for t in range(12)])
    assert torch.allclose(streamed, full, atol=1e-6)
    net.reset()
    assert torch.allclose(net.step(x[0]), full[0], atol=1e-6)  # reset() really starts from rest


def test_recurrent_layer_uses_previous_spikes():
    torch.manual_seed(5)
    layer = snn.RLIF(4, tau_mem=10e-3, reset="to_reset")
    with torch.no_grad():
        layer.recurrent.weight.copy_(torch.eye(4) * 50.0)
    x = torch.zeros(10, 1, 4)
    x[0, 0, 0] = 100.0  # one kick to neuron 0
    out = layer(x)
    # neuron 0 fires, then its own recurrent weight keeps it firing; the others stay silent
    assert out[:, 0, 0].sum() >= 5 and out[:, 0, 1:].sum() == 0
    plain = snn.LIF(tau_mem=10e-3, reset="to_reset")(x)
    assert plain[:, 0, 0].sum() == 1


def test_errors_name_the_problem():
    with pytest.raises(ShapeError, match=r"\[T, B, \.\.\.\]"):
        snn.LIF()(torch.rand(5))  # rank 1 is not time-major
    with pytest.raises(ShapeError, match="layer shape"):
        snn.LIF(8)(torch.rand(3, 2, 7))
    with pytest.raises(InputError, match="NaN or inf"):
        snn.ALIF()(torch.full((2, 1, 3), float("inf")))
    with pytest.raises(ParameterError, match="tau_syn"):
        snn.CubaLIF(tau_syn=-1.0)
    with pytest.raises(ParameterError, match="v_threshold"):
        snn.IF(v_threshold=-1.0, v_reset=0.0)
    with pytest.raises(ShapeError, match="shape"):
        snn.LIF(learn_tau=True)  # learnable parameters need a shape
    with pytest.raises(ParameterError, match="backend"):
        snn.LIF(backend="fpga")(torch.rand(2, 1, 3))


def test_dt_changes_integration_exactly():
    """Same physical input, two step sizes: the membrane at t = 10 ms agrees (exact decay)."""
    x1 = torch.full((10, 1, 1), 0.5, dtype=torch.float64)
    x2 = torch.full((40, 1, 1), 0.5, dtype=torch.float64)
    v1 = snn.LI(tau_mem=20e-3, dt=1e-3, return_state=True)(x1)[1][-1]
    v2 = snn.LI(tau_mem=20e-3, dt=0.25e-3, return_state=True)(x2)[1][-1]
    assert v1.item() == pytest.approx(v2.item(), rel=1e-12)
    assert v1.item() == pytest.approx(0.5 * (1 - math.exp(-0.5)), rel=1e-12)


def test_izhikevich_layer_preset_matches_functional_model():
    from spikeflow.neurons import izhikevich

    x = torch.full((200, 1, 1), 10.0, dtype=torch.float64)
    out = snn.Izhikevich(preset="chattering", dt=0.5e-3)(x)
    p = izhikevich.IzhikevichParams.preset("chattering", dt=0.5e-3)
    state = izhikevich.init_state((1, 1), p, torch.float64)
    expected = []
    for t in range(200):
        z, state = izhikevich.step(x[t], state, p)
        expected.append(z)
    assert out.sum() > 0 and torch.equal(out, torch.stack(expected))


def test_readme_quick_start_runs():
    """The README's quick-start block is real code."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    code = re.search(r"## Quick start\s+```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["out"].shape == (50, 32, 10)
