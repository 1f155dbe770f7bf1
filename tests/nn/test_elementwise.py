"""Scale, Threshold, Delay and SumPool2d modules (NIR's elementwise and pooling nodes)."""

import pytest
import torch

import spikeflow.nn as snn
from spikeflow.errors import ParameterError


def test_scale_and_threshold_hand_values():
    x = torch.tensor([[[0.5, -1.0, 2.0]]])  # [T=1, B=1, 3]
    assert snn.Scale(torch.tensor([2.0, 3.0, -1.0]))(x).tolist() == [[[1.0, -3.0, -2.0]]]
    z = snn.Threshold(torch.tensor([0.5, -2.0, 1.0]))(x)
    assert z.tolist() == [[[0.0, 1.0, 1.0]]]  # strictly above the threshold


def test_threshold_has_a_surrogate_gradient():
    x = torch.tensor([0.9, 1.1], requires_grad=True)
    snn.Threshold(1.0)(x).sum().backward()
    assert (x.grad > 0).all()


def test_sum_pool_hand_values():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    y = snn.SumPool2d(2)(x)
    assert y.view(-1).tolist() == [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]


def test_sequential_keeps_time_aware_layers_unwrapped():
    net = snn.Sequential(torch.nn.Linear(2, 2), snn.Scale(2.0), snn.Delay(1e-3, dt=1e-3))
    assert isinstance(net[0], snn.TimeFold) and isinstance(net[1], snn.Scale) and isinstance(net[2], snn.Delay)
    x = torch.ones(3, 1, 2)
    with torch.no_grad():
        y = net(x)
    assert torch.equal(y[0], torch.zeros(1, 2)) and torch.equal(y[1], y[2])


def test_delay_rejects_negative_and_bad_dt():
    with pytest.raises(ParameterError, match="delay"):
        snn.Delay(-1e-3)
    with pytest.raises(ParameterError, match="dt"):
        snn.Delay(1e-3, dt=0)
