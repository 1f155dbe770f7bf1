"""STDP (Diehl & Cook style) learns separable input patterns without labels."""

import pytest
import torch

from spikeflow.errors import ConfigError, ShapeError
from spikeflow.train.stdp import STDPConfig, STDPNetwork


def _patterns(n, gen):
    """4 classes; class k lights inputs 16k..16k+15 of 64 (plus a little noise)."""
    y = torch.randint(0, 4, (n,), generator=gen)
    x = torch.rand(n, 64, generator=gen) * 0.1
    for k in range(4):
        x[y == k, 16 * k:16 * (k + 1)] = 0.9
    return x, y


def test_learns_receptive_fields_and_classifies():
    gen = torch.Generator().manual_seed(0)
    x, y = _patterns(400, gen)
    xt, yt = _patterns(100, gen)
    net = STDPNetwork(64, STDPConfig(neurons=12, steps=40, inhibition=10.0, theta_plus=0.03, eta_post=0.05,
                                     progress=False, seed=1)).fit(x, y)
    assert (net.predict(xt) == yt).float().mean() >= 0.95
    # neurons that won a class concentrate their (normalised) weight on that class's inputs
    for j in range(12):
        k = int(net.labels[j])
        if k >= 0:
            w = net.weights[:, j]
            assert w[16 * k:16 * (k + 1)].sum() > 0.5 * w.sum()
    assert torch.allclose(net.weights.sum(0), torch.full((12,), 0.1 * 64), rtol=1e-4)  # normalisation
    assert (net.theta >= 0).all() and net.theta.max() > 0  # thresholds adapted


def test_bad_input():
    with pytest.raises(ConfigError, match="'neurons'"):
        STDPConfig(neurons=0)
    net = STDPNetwork(10, STDPConfig(neurons=2, progress=False))
    with pytest.raises(ShapeError, match="10 input features"):
        net.responses(torch.rand(3, 11))
