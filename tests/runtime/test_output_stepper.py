"""``EventEngine.output_stepper``: the direct-call path equals ``advance_output`` step for step."""

import numpy as np
import pytest

from spikeflow.errors import ShapeError
from spikeflow.runtime.event import EventEngine
from tests.runtime.rt_graphs import mlp


@pytest.mark.parametrize("kind,readout_li,timing", [("lif", True, "step"), ("cubalif", True, "crossing"),
                                                     ("lif", False, "step")])
def test_stepper_equals_advance_output(kind, readout_li, timing):
    graph = mlp(np.random.default_rng(0), sizes=(12, 24, 3), kind=kind, recurrent=True, readout_li=readout_li)
    fast, ref = EventEngine(graph, reset_timing=timing), EventEngine(graph, reset_timing=timing)
    n = 3
    step = fast.output_stepper("output", n)
    assert step.spiking == (not readout_li)
    rng = np.random.default_rng(1)
    spikes = 0
    for i in range(60):
        if i == 25:  # new arrays after a reset: the stepper must bind them
            fast.reset(1)
            ref.reset(1)
        m = int(rng.integers(0, 6))
        idx = np.sort(rng.choice(12, m, replace=False)).astype(np.int64)
        val = rng.uniform(0.5, 2.0, m)
        ptr = np.arange(n + 1, dtype=np.int64) * m
        y = step(ptr, np.tile(idx, n), np.tile(val, n)).copy()
        y_ref = ref.advance_output(n, ptr, np.tile(idx, n), np.tile(val, n), "output")
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(fast.counters, ref.counters)
        assert fast.t == ref.t
        spikes += int(fast.counters[:, 2].sum())
    assert spikes > 0 and fast.counters[:, 0].sum() > 0  # the network did work


def test_stepper_unknown_output():
    graph = mlp(np.random.default_rng(0), sizes=(4, 5, 2))
    with pytest.raises(ShapeError, match="no Output node 'nope'"):
        EventEngine(graph).output_stepper("nope", 1)
