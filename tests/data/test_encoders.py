import math

import pytest
import torch

from spikeflow.data import decoders as dec
from spikeflow.data import encoders as enc
from spikeflow.errors import InputError, ParameterError


def test_rate_bernoulli_mean_within_three_standard_errors():
    x = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]])
    T = 4000
    s = enc.rate(x, T, seed=0)
    assert s.shape == (T, 1, 5)
    mean = s.mean(0)[0]
    for p, m in zip(x[0].tolist(), mean.tolist()):
        se = math.sqrt(p * (1 - p) / T)
        assert abs(m - p) <= 3 * se + 1e-12
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 4].sum() == T   # p = 0 never, p = 1 always


def test_rate_poisson_mean_and_variance():
    x = torch.full((1, 3), 0.5)
    s = enc.rate(x, 5000, mode="poisson", max_rate=1000.0, dt=1e-3, seed=1)   # mean 0.5 per step
    m = s.mean().item()
    assert abs(m - 0.5) <= 3 * math.sqrt(0.5 / s.numel())
    assert s.max() >= 2   # counts, not just 0/1
    assert torch.equal(enc.rate(x, 10, seed=3), enc.rate(x, 10, seed=3))   # seeded


def test_rate_rejects_out_of_range():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        enc.rate(torch.tensor([1.5]), 3)
    with pytest.raises(ParameterError, match="max_rate"):
        enc.rate(torch.tensor([1.0]), 3, max_rate=2000.0, dt=1e-3)


def test_latency_linear_and_log_hand_computed():
    x = torch.tensor([[1.0, 0.5, 0.0]])
    s = enc.latency(x, 5)                              # steps round((1-x)*4): 0, 2, none
    assert s[:, 0].T.tolist() == [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    s = enc.latency(torch.tensor([[1.0, 0.1]]), 11, mode="log", threshold=0.01)
    # x = 0.1: 10 * ln(10) / ln(100) = 5
    assert s[:, 0, 0].argmax().item() == 0 and s[:, 0, 1].argmax().item() == 5


@pytest.mark.parametrize("mode", ["linear", "log"])
def test_latency_is_monotonic(mode):
    x = torch.linspace(0.02, 1.0, 200).unsqueeze(0)
    s = enc.latency(x, 50, mode=mode)
    assert torch.all(s.sum(0) == 1)                    # one spike each
    first = dec.first_spike_time(s)[0]
    assert torch.all(first[1:] <= first[:-1])          # larger value → not later


def test_delta_hand_computed():
    sig = torch.tensor([0.0, 0.05, 0.2, 0.2, 0.05, -0.2]).view(6, 1, 1)
    s = enc.delta(sig, threshold=0.1)
    assert s.shape == (6, 1, 2, 1)
    assert s[:, 0, 0, 0].tolist() == [0, 0, 1, 0, 0, 0]   # up at 0.2 (ref 0 → 0.2)
    assert s[:, 0, 1, 0].tolist() == [0, 0, 0, 0, 1, 1]   # down at 0.05 (ref 0.2), at -0.2 (ref 0.05)


def test_population_gaussian_fields_hand_computed():
    r = enc.gaussian_fields(torch.tensor([0.5]), 5, beta=1.5)
    sigma = 1.0 / (1.5 * 3)
    centres = [0.0, 0.25, 0.5, 0.75, 1.0]
    expected = [math.exp(-((0.5 - c) ** 2) / (2 * sigma**2)) for c in centres]
    assert torch.allclose(r[0], torch.tensor(expected))
    s = enc.population(torch.tensor([[0.5]]), 10, 5)
    assert s.shape == (10, 1, 1, 5)
    assert s[0, 0, 0, 2] == 1                          # the neuron centred on 0.5 fires first


def test_direct():
    x = torch.rand(2, 3)
    d = enc.direct(x, 4)
    assert d.shape == (4, 2, 3) and torch.equal(d[3], x)


def test_decoders_hand_computed():
    s = torch.tensor([[[0, 1, 0, 0]], [[1, 1, 0, 0]], [[0, 0, 0, 1]]], dtype=torch.float32)  # [T=3, B=1, N=4]
    assert dec.spike_count(s).tolist() == [[1, 2, 0, 1]]
    assert torch.allclose(dec.mean_rate(s, dt=1e-3), torch.tensor([[1, 2, 0, 1]]) / 3 / 1e-3)
    assert dec.first_spike_time(s).tolist() == [[1, 0, 3, 2]]
    assert dec.predict(dec.first_spike_time(s), lower_is_better=True).item() == 1
    assert dec.population_vote(s, 2).tolist() == [[3, 1]]
    v = torch.tensor([[[0.1, 0.5]], [[0.7, 0.2]]])
    assert dec.max_membrane(v).tolist() == [[pytest.approx(0.7), pytest.approx(0.5)]]
    assert dec.last_membrane(v).tolist() == [[pytest.approx(0.7), pytest.approx(0.2)]]


def test_li_readout_matches_exact_decay():
    x = torch.zeros(5, 1, 1)
    x[0] = 1.0
    v = dec.li_membrane(x, tau_mem=10e-3, dt=1e-3)
    a = math.exp(-0.1)
    expected = [(1 - a) * a**k for k in range(5)]
    assert torch.allclose(v[:, 0, 0], torch.tensor(expected), atol=1e-7)
