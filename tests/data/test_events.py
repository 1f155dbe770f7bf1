import numpy as np
import pytest
import tonic

from spikeflow.data import EVENT_DTYPE, Events
from spikeflow.errors import InputError, ParameterError
from tests.data.data_helpers import random_events


def test_dtype_is_tonic_compatible_and_tonic_toframe_agrees():
    e = random_events(2000, seed=1)
    assert e.array.dtype == EVENT_DTYPE
    ours = e.to_frames(n_bins=5, t_start_us=0, duration_us=300_000)
    # tonic's ToFrame with a 60 ms window over the same events: the same counts.
    to_frame = tonic.transforms.ToFrame(sensor_size=e.sensor_size, time_window=60_000, start_time=0, end_time=300_000)
    theirs = to_frame(e.array)
    assert ours.shape == (5, 2, 34, 34)
    np.testing.assert_array_equal(ours.sum(0), theirs.sum(0))
    assert ours.sum() == 2000


def test_validation_names_field_and_event():
    with pytest.raises(InputError, match="field 'x' of event 1"):
        Events.from_arrays([1, 40], [0, 0], [0, 1], [0, 0], (34, 34, 2))
    with pytest.raises(InputError, match="timestamps decrease at event 1"):
        Events.from_arrays([1, 2], [0, 0], [5, 1], [0, 0], (34, 34, 2))
    with pytest.raises(InputError, match="field 'p'"):
        Events.from_arrays([1], [0], [0], [2], (34, 34, 2))
    e = Events.from_arrays([1, 2], [0, 0], [5, 1], [0, 1], (34, 34, 2), sort=True)
    assert e.t.tolist() == [1, 5] and e.x.tolist() == [2, 1]
    with pytest.raises(ParameterError):
        Events.empty((0, 1, 1))


def test_time_slice_and_concatenate():
    e = Events.from_arrays([0, 1, 2, 3], [0] * 4, [10, 20, 30, 40], [0, 1, 0, 1], (4, 1, 2))
    s = e.time_slice(20, 40)
    assert s.t.tolist() == [20, 30]
    c = Events.concatenate([e, e], offset_us=5)
    assert c.t.tolist() == [10, 20, 30, 40, 45, 55, 65, 75]


def test_binning_by_dt_hand_computed():
    e = Events.from_arrays([0, 0, 1, 2], [0] * 4, [0, 999, 1000, 2500], [0] * 4, (3, 1, 1))
    f = e.to_frames(dt=1e-3)             # bins [0,1ms) [1,2ms) [2,3ms)
    np.testing.assert_array_equal(f, [[2, 0, 0], [0, 1, 0], [0, 0, 1]])
    t = e.to_tensor(n_bins=1, binary=True)
    assert t.tolist() == [[1.0, 1.0, 1.0]]
    with pytest.raises(ParameterError):
        e.to_frames()
