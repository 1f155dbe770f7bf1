"""Stream: chunked pushes give the same answer as one run of the binned recording; bad streams
raise clear errors or are repaired as documented; early exit; real-time pacing."""

import time

import nir
import numpy as np
import pytest

from spikeflow.errors import ConfigError, InputError
from spikeflow.runtime import DenseEngine
from spikeflow.runtime.stream import Stream
from tests.runtime.rt_graphs import convnet

EV = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]


def events(rng, n=400, size=12, dur=40_000):
    ev = np.zeros(n, dtype=EV)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, dur, n))
    return ev


def binned(ev, steps, dt_us=1000, size=12):
    x = np.zeros((steps, 1, 2, size, size))
    np.add.at(x, (ev["t"] // dt_us, 0, ev["p"], ev["y"], ev["x"]), 1.0)
    return x


@pytest.fixture(scope="module")
def graph():
    return convnet(np.random.default_rng(8), kind="lif", size=12)


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_chunked_stream_equals_batch_run(graph, engine):
    rng = np.random.default_rng(0)
    ev = events(rng)
    ref = DenseEngine(graph).run(binned(ev, 40)).output[:, 0]
    s = Stream(graph, engine=engine, decoder="max")
    cuts = [0, 3, 100, 101, 250, 400]
    for a, b in zip(cuts[:-1], cuts[1:]):
        s.push(ev[a:b])
    p = s.advance_to(40_000)
    assert s.steps == 40 and p.t_us == 40_000 and p.events_seen == 400
    logits = ref.max(0)
    expect = np.exp(logits - logits.max())
    np.testing.assert_allclose(p.probabilities, expect / expect.sum(), atol=1e-9)
    assert p.label == int(np.argmax(logits))


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_late_events_of_an_open_step_and_duplicates_are_binned(graph, engine):
    """Chunk 2 holds events earlier than chunk 1's last one but in a step not yet run, and repeated
    (pixel, step) events; the answer equals one run of the binned recording."""
    rng = np.random.default_rng(5)
    ev = events(rng, n=300)
    ev = np.concatenate([ev, ev[::7]])  # duplicates: the same pixel twice in a step
    ev = ev[np.argsort(ev["t"], kind="stable")]
    ref = DenseEngine(graph).run(binned(ev, 40)).output[:, 0]
    s = Stream(graph, engine=engine, decoder="mean")
    for k in range(40):  # step k's events in two chunks: its later half first, shuffled, then its earlier half
        part = ev[(ev["t"] >= k * 1000) & (ev["t"] < (k + 1) * 1000)]
        half = len(part) // 2
        s.push(part[half:][rng.permutation(len(part) - half)])
        assert s.steps == k  # step k is still open
        s.push(part[:half])
    p = s.advance_to(40_000)
    logits = ref.mean(0)
    expect = np.exp(logits - logits.max())
    np.testing.assert_allclose(p.probabilities, expect / expect.sum(), atol=1e-9)
    assert p.events_seen == len(ev)


def test_steps_run_only_when_complete(graph):
    ev = np.zeros(2, dtype=EV)
    ev["t"] = [500, 2500]
    s = Stream(graph)
    s.push(ev[:1])
    assert s.steps == 0  # the step [0, 1 ms) may still receive events
    s.push(ev[1:])
    assert s.steps == 2  # an event at 2.5 ms closes steps 0 and 1
    s.advance_to(10_000)
    assert s.steps == 10


def test_unsorted_chunk_is_sorted_and_same_answer(graph):
    rng = np.random.default_rng(1)
    ev = events(rng)
    a = Stream(graph)
    a.push(ev)
    shuffled = ev[rng.permutation(len(ev))]
    b = Stream(graph)
    b.push(shuffled)
    np.testing.assert_array_equal(a.advance_to(40_000).probabilities, b.advance_to(40_000).probabilities)
    with pytest.raises(InputError, match="decrease"):
        Stream(graph, on_unsorted="error").push(shuffled)


def test_event_before_processed_time_is_an_error(graph):
    ev = events(np.random.default_rng(2))
    s = Stream(graph)
    s.push(ev[ev["t"] < 20_000])
    s.advance_to(20_000)
    with pytest.raises(InputError, match="earlier than time already processed"):
        s.push(ev[:5])


@pytest.mark.parametrize("field,value,match", [("x", 12, "'x'"), ("y", -1, "'y'"), ("p", 2, "'p'")])
def test_coordinates_outside_sensor(graph, field, value, match):
    ev = events(np.random.default_rng(3), n=10)
    ev[field][4] = value
    with pytest.raises(InputError, match=match):
        Stream(graph).push(ev)


def test_nan_timestamp_and_wrong_dtype(graph):
    ev = np.zeros(3, dtype=[("x", np.int16), ("y", np.int16), ("t", np.float64), ("p", np.int8)])
    ev["t"] = [1.0, np.nan, 3.0]
    with pytest.raises(InputError, match="NaN"):
        Stream(graph).push(ev)
    with pytest.raises(InputError, match="fields x, y, t, p"):
        Stream(graph).push(np.zeros((3, 4)))


def test_empty_chunk_changes_nothing(graph):
    s = Stream(graph)
    s.push(events(np.random.default_rng(4), n=50))
    before = s.prediction
    after = s.push(np.zeros(0, dtype=EV))
    assert after is before and s.events_seen == 50


def test_sensor_size_mismatch(graph):
    class Ev:  # anything with .array and .sensor_size, like spikeflow.data.Events
        array = np.zeros(1, dtype=EV)
        sensor_size = (34, 34, 2)

    with pytest.raises(InputError, match="sensor of size"):
        Stream(graph).push(Ev())


def test_early_exit_flag_and_reset():
    # one input line drives output 1 strongly: confidence reaches 0.9 and the decision is kept
    w = np.array([[0.0, 0.0], [0.0, 40.0]])
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(w),
               "lif": nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1e-3}, type_check=False)
    ev = np.zeros(20, dtype=EV)
    ev["x"], ev["t"] = 1, np.arange(20) * 1000
    s = Stream(g, decoder="count", confidence=0.9)
    preds = list(s.run(ev, chunk_us=2000))
    assert s.decided and s.decision.label == 1 and s.decision.confidence >= 0.9
    first = next(p for p in preds if p.decided)
    assert first.t_us == s.decision.t_us and first.t_us < 20_000
    # softmax of counts (0, n): confidence >= 0.9 once n >= ln 9 = 2.2, i.e. after 3 spikes
    assert s.decision.probabilities[1] == pytest.approx(1 / (1 + np.exp(-3)))
    s.reset()
    assert not s.decided and s.steps == 0 and s.events_seen == 0
    stopped = list(s.run(ev, chunk_us=2000, stop_on_decision=True))
    assert stopped[-1].decided and len(stopped) < len(preds)


def test_realtime_pacing(graph):
    ev = events(np.random.default_rng(5), n=20, dur=60_000)
    s = Stream(graph)
    t = time.monotonic()
    list(s.run(ev, chunk_us=20_000, realtime=True))
    assert time.monotonic() - t >= 0.05  # the last chunk is due ~60 ms after the start


def test_clockfree_stream_runs_and_validates(graph):
    ev = events(np.random.default_rng(6), n=100)
    s = Stream(graph, engine="clockfree", decoder="max")
    p = s.push(ev)
    assert p.events_seen == 100 and p.probabilities.shape == (5,)
    with pytest.raises(InputError):
        s.push(ev[:3])


def test_bad_options(graph):
    with pytest.raises(ConfigError):
        Stream(graph, engine="gpu")
    with pytest.raises(ConfigError):
        Stream(graph, confidence=1.5)
    with pytest.raises(ConfigError):
        Stream(graph, decoder="median")


def test_generator_of_events_chunks(graph):
    """A live source: a generator yielding spikeflow.data.Events chunks gives the one-shot answer."""
    from spikeflow.data.events import Events

    ev = events(np.random.default_rng(7))

    def sensor():
        for lo in range(0, len(ev), 37):
            part = ev[lo:lo + 37]
            yield Events(part, (12, 12, 2))

    a = Stream(graph)
    preds = list(a.run(sensor()))
    assert len(preds) == int(np.ceil(len(ev) / 37)) and preds[-1].events_seen == len(ev)
    b = Stream(graph)
    b.push(ev)
    np.testing.assert_array_equal(a.advance_to(40_000).probabilities, b.advance_to(40_000).probabilities)
