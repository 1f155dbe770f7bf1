"""The event-driven engine gives the same spikes as the dense clock-driven engine (float64),
whose neuron math is spikeflow.neurons' reference step; and it does less work when input is sparse."""

import nir
import numpy as np
import pytest
import torch

from spikeflow import neurons
from spikeflow.runtime import DenseEngine, EventEngine
from tests.runtime.rt_graphs import bernoulli, convnet, mlp


def _same(graph, x):
    d = DenseEngine(graph).run(x, record=True)
    e = EventEngine(graph).run(x, record=True)
    assert set(d.spikes) == set(e.spikes) and d.spikes
    for name in d.spikes:
        np.testing.assert_array_equal(e.spikes[name], d.spikes[name], err_msg=f"node {name}")
    np.testing.assert_allclose(e.output, d.output, rtol=0, atol=1e-12)
    for name, n in d.counters["spikes"].items():
        assert e.counters["spikes"][name] == n
    return d, e


@pytest.mark.parametrize("kind", ["lif", "cubalif", "if"])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_mlp_identical(kind, seed):
    rng = np.random.default_rng(seed)
    g = mlp(rng, kind=kind)
    d, _ = _same(g, bernoulli(rng, 40, 2, (40,), 0.08))
    assert d.spikes["h"].sum() > 20  # the comparison is not vacuous


@pytest.mark.parametrize("kind", ["lif", "cubalif", "if"])
def test_random_recurrent_identical(kind):
    rng = np.random.default_rng(5)
    g = mlp(rng, kind=kind, recurrent=True, reset="subtract")
    d, _ = _same(g, bernoulli(rng, 40, 2, (40,), 0.08))
    assert d.spikes["h"].sum() > 20


@pytest.mark.parametrize("kind,pool,stride,groups", [("lif", "sum", 1, 1), ("cubalif", "avg", 2, 2),
                                                      ("if", "sum", 1, 2)])
def test_random_conv_pool_identical(kind, pool, stride, groups):
    rng = np.random.default_rng(8)
    g = convnet(rng, kind=kind, pool=pool, stride=stride, groups=groups)
    d, _ = _same(g, bernoulli(rng, 25, 2, (2, 12, 12), 0.25))
    assert d.spikes["n1"].sum() > 20 and d.spikes["n2"].sum() > 5


def test_sparse_input_lazy_decay_identical_and_cheaper():
    """At 1 % input activity most neurons are never touched; spikes still agree exactly."""
    rng = np.random.default_rng(3)
    g = mlp(rng, sizes=(200, 100, 10), bias=0.0)
    g.nodes["fc1"].weight *= 3.0 * (rng.random(g.nodes["fc1"].weight.shape) < 0.1)  # 10 % connectivity
    x = bernoulli(rng, 100, 2, (200,), 0.01) * 3.0  # input values other than 1 are weights too
    d, e = _same(g, x)
    assert d.spikes["h"].sum() > 10
    assert e.counters["neuron_updates"]["h"] < 0.5 * d.counters["neuron_updates"]["h"]
    assert e.total("synaptic_ops") < 0.2 * d.total("synaptic_ops")


def test_dense_engine_matches_neurons_reference_step():
    """The dense engine's LIF layer is exactly spikeflow.neurons.lif.step on W x + b."""
    rng = np.random.default_rng(0)
    g = mlp(rng, sizes=(30, 20, 5), reset="subtract")
    x = bernoulli(rng, 30, 1, (30,), 0.2)
    d = DenseEngine(g).run(x, record=True)
    nd = g.nodes["h"]
    p = neurons.LIFParams(tau_mem=torch.tensor(nd.tau), v_threshold=torch.tensor(nd.v_threshold),
                          v_leak=torch.tensor(nd.v_leak), v_reset=torch.tensor(nd.v_reset), r=torch.tensor(nd.r),
                          dt=1e-3, reset="subtract")
    cur = torch.tensor(x[:, 0]) @ torch.tensor(g.nodes["fc1"].weight).T + torch.tensor(g.nodes["fc1"].bias)
    state = neurons.lif.init_state((20,), p, dtype=torch.float64)
    ref = []
    for t in range(30):
        z, state = neurons.lif.step(cur[t], state, p)
        ref.append(z.numpy())
    np.testing.assert_array_equal(d.spikes["h"][:, 0], np.array(ref))


def test_bias_driven_neuron_fires_without_input():
    """A neuron whose bias alone drives it above threshold is kept active by the event engine."""
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1])), "fc": nir.Affine(np.array([[0.0]]), np.array([2.0])),
               "lif": nir.LIF(tau=np.array([0.02]), r=np.array([1.0]), v_leak=np.zeros(1),
                              v_threshold=np.array([1.0])),
               "output": nir.Output(np.array([1]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1e-3}, type_check=False)
    x = np.zeros((60, 1, 1))
    d, e = _same(g, x)
    # period of a LIF driven by r*I = 2 from 0 to threshold 1: tau ln 2 = 13.86 ms -> every 14th step
    np.testing.assert_array_equal(np.flatnonzero(e.spikes["lif"][:, 0, 0]), [13, 27, 41, 55])


def test_streaming_advance_equals_one_run():
    rng = np.random.default_rng(4)
    g = mlp(rng, kind="cubalif", recurrent=True)
    x = bernoulli(rng, 40, 1, (40,), 0.1)
    whole = EventEngine(g).run(x, record=True)
    eng = EventEngine(g)
    parts = [eng.advance(x[a:b], record=True) for a, b in ((0, 7), (7, 8), (8, 40))]
    np.testing.assert_array_equal(np.concatenate([p.spikes["h"] for p in parts]), whole.spikes["h"])
    np.testing.assert_allclose(np.concatenate([p.output for p in parts]), whole.output, atol=1e-12)
    dense = DenseEngine(g)
    dparts = [dense.advance(x[a:b], record=True) for a, b in ((0, 7), (7, 8), (8, 40))]
    np.testing.assert_array_equal(np.concatenate([p.spikes["h"] for p in dparts]), whole.spikes["h"])
