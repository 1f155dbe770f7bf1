"""``spikeflow.nn.Sequential`` runs SpikeConv2d -> LIF -> AvgPool2d as one kernel (event path, input
without gradient) and gives what the layers give run one by one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeflow.nn.sequential as seq_mod
from spikeflow.errors import InputError
from spikeflow.kernels import conv as kconv
from spikeflow.nn import LIF, Sequential, SpikeConv2d


def _net(seed: int):
    torch.manual_seed(seed)
    conv = SpikeConv2d(2, 6, 3, padding=1, event="always")
    with torch.no_grad():
        conv.weight.mul_(3.0)
    return Sequential(conv, LIF(tau_mem=10e-3, dt=1e-3, r=10.0, v_threshold=1.0, reset="subtract"), nn.AvgPool2d(2),
                      nn.Flatten(), nn.Linear(6 * 4 * 4, 3))


def _apart(net, x):
    """The same layers, one by one (no fused pair or triple)."""
    out = x
    for layer in net:
        out = layer(out)
    return out


def test_sequential_fuses_conv_lif_pool_and_matches_layers_apart(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand((5, 3, 2, 8, 8), generator=g) < 0.2).float()
    calls = []
    real = seq_mod.conv_pooled_forward

    def spy(*args):
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(seq_mod, "conv_pooled_forward", spy)
    a, b = _net(1), _net(1)
    ya = a(x)
    yb = _apart(b, x)
    assert calls[0] is True  # the triple ran fused
    assert torch.equal(ya, yb)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert (pa.grad - pb.grad).abs().max() <= 1e-4 * pb.grad.abs().max()


def test_input_needing_gradient_runs_the_layers_apart(monkeypatch):
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((4, 2, 2, 8, 8), generator=g) < 0.2).float().requires_grad_()
    calls = []
    real = seq_mod.conv_pooled_forward
    monkeypatch.setattr(seq_mod, "conv_pooled_forward", lambda *a: calls.append(real(*a)) or calls[-1])
    net = _net(2)
    net(x).sum().backward()
    assert calls and calls[0] is None
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", [(0, 0, 0, 0, 0), (4, 2, 1, 7, 7)])
def test_nan_or_inf_input_names_the_neuron_layer(value, where):
    """The fused triple finds a NaN/inf on its scan for events (first or last frame, channel, row
    and column), and the layers apart then name the neuron layer that would see it."""
    x = torch.zeros((5, 3, 2, 8, 8))
    x[where] = value
    with pytest.raises(InputError, match=r"LIF\(lif\).*NaN or inf"):
        _net(3)(x)


def test_checked_events_flags_only_nan_and_inf():
    x = torch.zeros((3, 2, 4, 4))
    x[1, 1, 2, 3] = 1e38  # large but finite
    assert kconv.checked_events(x, 1)[1] and kconv.checked_events(x, 2)[1]
    for value in (float("nan"), float("inf"), float("-inf")):
        y = x.clone()
        y[2, 0, 3, 0] = value
        events, finite = kconv.checked_events(y, 1)
        assert not finite
        assert events[0][-1] == 2  # the events themselves as before: the large value and the NaN/inf
