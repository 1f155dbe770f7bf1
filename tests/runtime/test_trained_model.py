"""A model trained with spikeflow.nn, exported with spikeflow.ir: the event engine's spikes are the
dense engine's, and a Stream over its events answers correctly, earlier than the end."""

import warnings

import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow.ir import to_nir
from spikeflow.runtime import DenseEngine, EventEngine, compile_graph
from spikeflow.runtime.stream import Stream

DT = 5e-3
T = 20
SIDE = 8


def _data(n, seed):
    """Class c: events concentrated on row band c of an 8x8x2 sensor, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (rng.random((n, T, 2, SIDE, SIDE)) < 0.01).astype(np.float32)
    for i, c in enumerate(y):
        band = rng.random((T, 2, 2, SIDE)) < 0.4
        x[i, :, :, 2 * c:2 * c + 2, :] += band
    return torch.from_numpy(np.minimum(x, 3.0)), torch.from_numpy(y)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = snn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), snn.LIF(tau_mem=20e-3, dt=DT, reset="subtract"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 4), snn.LI(tau_mem=20e-3, dt=DT),
    )
    x, y = _data(256, 0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    # Training through a spike threshold is chaotic (float summation order changes the path). With
    # 40 steps one initial seed in eight ended at 21 % test accuracy; with 120, seeds 0-9 all reach
    # 100 %, so the bar below (60 %) is far from where any of them ends.
    for step in range(120):
        idx = torch.arange(step * 32, step * 32 + 32) % 256
        v = net(x[idx].transpose(0, 1))
        mean = v.cumsum(0) / torch.arange(1, T + 1).reshape(-1, 1, 1)
        loss = torch.nn.functional.cross_entropy(mean.reshape(-1, 4), y[idx].repeat(T))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_nir(net, dt=DT, input_shape=(2, SIDE, SIDE))
    return net, compile_graph(graph)


def test_trained_model_event_equals_dense(trained):
    _, graph = trained
    x, _ = _data(8, 1)
    xs = x.transpose(0, 1).double().numpy()
    d = DenseEngine(graph).run(xs, record=True)
    e = EventEngine(graph).run(xs, record=True)
    assert d.spikes["1"].sum() > 50
    for k in d.spikes:
        np.testing.assert_array_equal(e.spikes[k], d.spikes[k])
    np.testing.assert_allclose(e.output, d.output, atol=1e-12)


def test_trained_model_streams_to_correct_answers(trained):
    net, graph = trained
    x, y = _data(24, 2)
    # a briefly trained model has small logits: a softmax temperature calibrates its confidence
    stream = Stream(graph, decoder="mean", confidence=0.9, temperature=0.1)
    correct, early = 0, []
    for i in range(len(y)):
        frames = x[i].numpy()
        t, p, r, c = np.nonzero(frames)
        reps = frames[t, p, r, c].astype(int)
        ev = np.zeros(reps.sum(), dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
        ev["t"] = np.repeat(t * int(DT * 1e6) + 100, reps)
        ev["p"], ev["y"], ev["x"] = np.repeat(p, reps), np.repeat(r, reps), np.repeat(c, reps)
        stream.reset()
        for _ in stream.run(ev, chunk_us=10_000):
            pass
        final = stream.advance_to(T * int(DT * 1e6))
        correct += final.label == int(y[i])
        if stream.decision is not None:
            early.append(stream.decision.t_us / (T * DT * 1e6))
        # the stream's final answer is the torch module's answer on the same binned input
        with torch.no_grad():
            v = net(x[i:i + 1].transpose(0, 1))
        assert final.label == int(v.mean(0).argmax())
    assert correct / len(y) >= 0.6, correct / len(y)  # chance is 0.25
    assert early and np.mean(early) < 0.9  # confident answers come before the end
