"""Surrogate gradients equal their formulas; a small SNN learns with them."""

import math

import pytest
import torch

import spikeflow.nn as snn
from spikeflow import surrogate
from spikeflow.errors import ParameterError

U = torch.tensor([-1.0, -0.3, -0.05, 0.0, 0.02, 0.3, 2.0], dtype=torch.float64)

# Hand-written formulas (the papers'), independent of spikeflow's implementation.
FORMULAS = {
    "fast_sigmoid": (4.0, lambda u, k: 1.0 / (k * abs(u) + 1.0) ** 2),
    "atan": (2.0, lambda u, a: a / 2.0 / (1.0 + (math.pi / 2.0 * a * u) ** 2)),
    "triangle": (0.5, lambda u, w: max(0.0, 1.0 - abs(u) / w) / w),
    "straight_through": (1.0, lambda u, w: 1.0 if abs(u) < w / 2 else 0.0),
}


@pytest.mark.parametrize("kind", sorted(FORMULAS))
def test_gradient_equals_formula(kind):
    scale, formula = FORMULAS[kind]
    u = U.clone().requires_grad_(True)
    spikes = surrogate.Surrogate(kind, scale)(u)
    assert spikes.tolist() == [0, 0, 0, 0, 1, 1, 1]  # Heaviside forward, strict at 0
    spikes.sum().backward()
    expected = [formula(v, scale) for v in U.tolist()]
    assert u.grad.tolist() == pytest.approx(expected, rel=1e-12)


def test_bad_surrogate_arguments():
    with pytest.raises(ParameterError, match="scale"):
        surrogate.fast_sigmoid(slope=0.0)
    with pytest.raises(ParameterError, match="kind"):
        surrogate.Surrogate("sigmoidish")


@pytest.mark.parametrize("kind", sorted(FORMULAS))
def test_two_layer_snn_learns_separable_task(kind):
    """Two Gaussian clouds, rate-coded; the loss must fall 10x in 100 Adam steps."""
    torch.manual_seed(0)
    n, d, t = 64, 10, 10
    y = torch.arange(n) % 2
    centers = torch.randn(2, d)
    x = torch.sigmoid(2 * (centers[y] + 0.3 * torch.randn(n, d)))
    spikes = (torch.rand(t, n, d) < x).float()
    net = snn.Sequential(
        torch.nn.Linear(d, 32),
        snn.LIF(tau_mem=10e-3, surrogate=surrogate.get(kind) if kind != "triangle" else surrogate.triangle(1.0)),
        torch.nn.Linear(32, 2),
        snn.LI(tau_mem=10e-3),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(spikes).mean(0) * 5, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
