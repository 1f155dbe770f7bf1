"""Cycles: execution order and the one-step delay, against hand-computed values."""

import nir
import numpy as np
import torch

from spikeflow import ir
from spikeflow.ir.topology import components, flatten


def _f(*v):
    return np.array(v, dtype=np.float32)


def test_cycle_delay_sits_after_the_neuron_and_bias_acts_from_step_zero():
    a = np.exp(-1e-3 / 10e-3)
    nodes = {
        "input": nir.Input(input_type=np.array([1])),
        "lif": nir.LIF(tau=_f(10e-3), r=_f(1.0), v_leak=_f(0.0), v_threshold=_f(100.0), v_reset=_f(0.0)),
        "rec": nir.Affine(weight=_f(0.0).reshape(1, 1), bias=_f(0.5)),
        "output": nir.Output(output_type=np.array([1])),
    }
    edges = [("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)
    comps = components(flatten(graph))
    cyc = [c for c in comps if c.cyclic]
    assert len(cyc) == 1 and cyc[0].nodes == ["rec", "lif"] and cyc[0].back_edges == {("lif", "rec")}
    module = ir.from_nir(graph).double()
    x = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64).view(3, 1, 1)
    _, traces = module.run(x, record=True)
    v, expected = 0.0, []
    for xt in (1.0, 0.0, 2.0):
        v = v * a + (xt + 0.5) * (1 - a)  # the bias of the recurrent weight reaches the neuron at every step
        expected.append(v)
    np.testing.assert_allclose(traces["lif"][:, 0, 0].detach().numpy(), expected, rtol=1e-6)


def test_recurrent_spikes_feed_back_one_step_later():
    # one IF neuron that fires at step 0 (input 1.5 > 1) and excites itself by 2 through the loop
    nodes = {
        "input": nir.Input(input_type=np.array([1])),
        "if": nir.IF(r=_f(1000.0), v_threshold=_f(1.0), v_reset=_f(0.0)),
        "w": nir.Linear(weight=_f(2.0).reshape(1, 1)),
        "output": nir.Output(output_type=np.array([1])),
    }
    edges = [("input", "if"), ("if", "w"), ("w", "if"), ("if", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)
    x = torch.tensor([1.5, 0.0, 0.0, 0.0]).view(4, 1, 1)
    out = ir.from_nir(graph)(x)[:, 0, 0].tolist()
    # r = R dt = 1; step 0 fires (1.5 > 1, reset to 0); each spike adds 2 at the next step: fires forever
    assert out == [1.0, 1.0, 1.0, 1.0]
    graph.nodes["w"] = nir.Linear(weight=_f(0.6).reshape(1, 1))
    x = torch.tensor([1.5, 0.5, 0.0, 0.0]).view(4, 1, 1)
    out = ir.from_nir(graph)(x)[:, 0, 0].tolist()
    # step 1: 0.5 + 0.6 (spike of step 0) = 1.1 fires; step 2: 0.6 stays below; step 3: 0.6 + 0 = 0.6
    assert out == [1.0, 1.0, 0.0, 0.0]
