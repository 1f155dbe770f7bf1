"""Data cut to a model's time base: seeded rate spikes, spikes as events, one-line errors for misfits."""

import numpy as np
import pytest

from spikeflow.data.modelinput import model_steps, seeded_rate, spikes_to_events, spread
from spikeflow.errors import ConfigError
from spikeflow.timebase import TimeBase


def test_seeded_rate_depends_on_the_sample_only():
    x = np.random.default_rng(0).random((7, 1, 4, 4)).astype(np.float32)
    whole = seeded_rate(x, 50, seed=3)
    assert whole.shape == (50, 7, 1, 4, 4) and set(np.unique(whole)) <= {0.0, 1.0}
    assert np.array_equal(whole[:, 4:6], seeded_rate(x[4:6], 50, seed=3, start=4))  # batching does not matter
    assert not np.array_equal(whole, seeded_rate(x, 50, seed=4))
    # the spike rate is the value: 50 steps x 7 x 16 draws, mean of (spikes - p) near 0 (sd ~ 0.01)
    assert abs(float((whole.mean(0) - x).mean())) < 0.03


def test_spikes_to_events_bins_back_to_the_same_counts():
    rng = np.random.default_rng(1)
    spikes = rng.poisson(0.4, (5, 2, 3, 4)).astype(np.float32)  # [T, P, H, W], some counts > 1
    ev = spikes_to_events(spikes, 0.05)
    assert np.all(np.diff(ev["t"]) >= 0) and len(ev) == int(spikes.sum())
    back = np.zeros_like(spikes)
    np.add.at(back, (ev["t"] // 50_000, ev["p"], ev["y"], ev["x"]), 1)
    assert np.array_equal(back, spikes)
    audio = spikes_to_events(np.eye(3, dtype=np.float32), 1e-3)  # [T, channels]
    assert list(audio["x"]) == [0, 1, 2] and list(audio["t"]) == [0, 1000, 2000]


def test_digits_model_refuses_mnist_and_event_data():
    tb = TimeBase(dt=1e-3, T=4, encoding="rate", input_shape=(1, 8, 8), classes=10, decoder="max", data="digits")
    with pytest.raises(ConfigError, match=r"shape \(1, 28, 28\) but the model takes \(1, 8, 8\)"):
        model_steps("mnist5k", "test", tb, limit=5)
    x, y = model_steps("digits", "test", tb, limit=5)
    assert x.shape == (4, 5, 1, 8, 8) and y.shape == (5,)
    assert list(spread(360, 5)) == [0, 90, 180, 269, 359]
    x2, _ = model_steps("digits", "test", tb, limit=2)  # samples 0 and 359: the first and last of 5 spread
    assert np.array_equal(x[:, [0, 4]], x2)  # the same spikes for the same sample whatever the limit
