"""Send-on-delta events against hand-computed counts; thresholds from the observation spaces."""

import numpy as np
import pytest

from spikeflow.control.encoding import DenseInput, SendOnDelta, default_thresholds
from spikeflow.control.envs import make_env
from spikeflow.errors import ConfigError, InputError, SpikeflowError


def test_send_on_delta_counts_whole_thresholds_by_hand():
    enc = SendOnDelta([0.5, 0.25])
    enc.reset()
    # from the origin: 1.2 / 0.5 = 2.4 -> 2 up; -0.3 / 0.25 = -1.2 -> 1 down
    np.testing.assert_array_equal(enc([1.2, -0.3]), [2, 0, 0, 1])
    np.testing.assert_array_equal(enc.level, [2, -1])
    # levels 1.0 and -0.25: 1.4 is 0.8 thresholds above, -0.3 is 0.2 below -> nothing
    np.testing.assert_array_equal(enc([1.4, -0.3]), [0, 0, 0, 0])
    # 0.9 is 0.2 thresholds below 1.0 -> nothing; 0.3 is 2.2 thresholds above -0.25 -> 2 up
    np.testing.assert_array_equal(enc([0.9, 0.3]), [0, 0, 2, 0])
    # 0.4 is 1.2 thresholds below 1.0 -> 1 down (level 0.5)
    np.testing.assert_array_equal(enc([0.4, 0.3]), [0, 1, 0, 0])
    np.testing.assert_array_equal(enc.level, [1, 1])
    # the up minus down events summed give the level, within one threshold of the value
    assert np.all(np.abs(enc.level * enc.thresholds - np.array([0.4, 0.3])) < enc.thresholds)


def test_reset_to_an_observation_reports_nothing_for_it():
    enc = SendOnDelta([0.5, 0.25])
    enc.reset([1.2, -0.3])
    np.testing.assert_array_equal(enc.level, [2, -1])
    np.testing.assert_array_equal(enc([1.2, -0.3]), [0, 0, 0, 0])
    np.testing.assert_array_equal(enc([-0.1, -0.3]), [0, 2, 0, 0])  # 1.0 -> 0.0: 2.2 thresholds down


def test_default_thresholds_from_bounds_or_typical_range():
    env = make_env("CartPole-v1")
    hi = env.observation_space.high.astype(np.float64)
    th = default_thresholds("CartPole-v1", levels=64)
    # cart position and pole angle have finite bounds; speed and rate are infinite: 2 m/s, 3 rad/s
    np.testing.assert_allclose(th, [hi[0] / 64, 2.0 / 64, hi[2] / 64, 3.0 / 64])
    np.testing.assert_allclose(default_thresholds(make_env("Pendulum-v1"), levels=8), [1 / 8, 1 / 8, 1.0])


def test_dense_input_is_the_observation():
    enc = DenseInput(3)
    np.testing.assert_array_equal(enc([0.5, -1.0, 2.0]), [0.5, -1.0, 2.0])


@pytest.mark.parametrize("call", [
    lambda: SendOnDelta([0.5, 0.0]),
    lambda: SendOnDelta([0.5, np.nan]),
    lambda: SendOnDelta([0.5])([1.0, 2.0]),
    lambda: SendOnDelta([0.5])([np.inf]),
    lambda: make_env("Walker-v9"),
    lambda: default_thresholds("CartPole-v1", levels=0),
])
def test_bad_input_is_a_one_line_error(call):
    with pytest.raises(SpikeflowError) as err:
        call()
    assert isinstance(err.value, (ConfigError, InputError))
    assert "\n" not in str(err.value)


def test_sparse_events_are_the_counts():
    """The policies' fast path gives the events of ``__call__`` (same levels afterwards)."""
    rng = np.random.default_rng(0)
    th = np.array([0.5, 0.25, 0.1])
    a, b = SendOnDelta(th), SendOnDelta(th)
    a.reset()
    b.reset()
    idx, val = np.zeros(6, np.int64), np.zeros(6)
    x = np.zeros(3)
    for _ in range(300):
        x = x + rng.normal(0, 0.3, 3)
        counts = a(x)
        m = b.sparse(x, idx, val)
        dense = np.zeros(6)
        dense[idx[:m]] = val[:m]
        np.testing.assert_array_equal(dense, counts)
        np.testing.assert_array_equal(a.level, b.level)
    with pytest.raises(InputError, match="NaN"):
        b.sparse([0.0, np.nan, 0.0], idx, val)
