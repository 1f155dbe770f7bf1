"""Compiling NIR graphs: a spikeflow model exported with spikeflow.ir runs in the engines with the
module's own outputs; malformed graphs raise NIRError naming the node."""

import nir
import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow.errors import NIRError
from spikeflow.ir import to_nir, write
from spikeflow.runtime import DenseEngine, EventEngine, compile_graph
from spikeflow.runtime.stream import load_model


def _model():
    torch.manual_seed(0)
    return snn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), snn.LIF(tau_mem=10e-3, dt=1e-3, reset="subtract"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 16), snn.RLIF(16, tau_mem=20e-3, dt=1e-3),
        torch.nn.Linear(16, 3), snn.LI(tau_mem=20e-3, dt=1e-3),
    )


def test_exported_spikeflow_model_matches_module(tmp_path):
    """spikeflow.nn module -> to_nir -> file -> read_graph -> dense and event engines = module output."""
    net = _model()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear) and m.in_features == 16 and m.out_features == 16:
                m.weight.mul_(3.0)  # a recurrent weight strong enough to matter
    path = tmp_path / "m.nir"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(to_nir(net, dt=1e-3, input_shape=(2, 8, 8)), path)
    graph = load_model(path)
    net = net.double()
    assert graph.cyclic
    x = (torch.rand(30, 2, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).double() * 2.0
    with torch.no_grad():
        ref = net(x).numpy()
    d = DenseEngine(graph).run(x.numpy())
    e = EventEngine(graph).run(x.numpy())
    # NIR files hold float32 parameters: the engines run the file, the module its float64 weights
    np.testing.assert_allclose(d.output, ref, atol=1e-4)
    np.testing.assert_allclose(e.output, d.output, atol=1e-12)
    assert np.abs(ref).max() > 0.05


def _lif(n):
    return nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def _graph(nodes, edges, dt=1e-3):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={} if dt is None else {"dt": dt}, type_check=False)


def test_missing_dt_is_asked_for():
    g = _graph({"input": nir.Input(np.array([2])), "l": _lif(2), "output": nir.Output(np.array([2]))},
               [("input", "l"), ("l", "output")], dt=None)
    with pytest.raises(NIRError, match="dt=..."):
        DenseEngine(g)
    assert DenseEngine(g, dt=1e-3).dt == 1e-3


def test_unsupported_node_named():
    g = _graph({"input": nir.Input(np.array([2])), "d": nir.Delay(np.ones(2)), "output": nir.Output(np.array([2]))},
               [("input", "d"), ("d", "output")])
    with pytest.raises(NIRError, match="'d' has type Delay"):
        compile_graph(g)


def test_algebraic_loop_rejected():
    g = _graph({"input": nir.Input(np.array([2])), "a": nir.Linear(np.eye(2)), "b": nir.Linear(np.eye(2)),
                "l": _lif(2), "output": nir.Output(np.array([2]))},
               [("input", "a"), ("a", "b"), ("b", "a"), ("b", "l"), ("l", "output")])
    with pytest.raises(NIRError, match="algebraic loop"):
        compile_graph(g)


def test_shape_mismatch_named():
    g = _graph({"input": nir.Input(np.array([3])), "fc": nir.Affine(np.ones((2, 4)), np.zeros(2)),
                "l": _lif(2), "output": nir.Output(np.array([2]))},
               [("input", "fc"), ("fc", "l"), ("l", "output")])
    with pytest.raises(NIRError, match="'fc'"):
        compile_graph(g)


def test_nan_parameter_named():
    bad = _lif(2)
    bad.tau = np.array([0.01, np.nan])
    g = _graph({"input": nir.Input(np.array([2])), "l": bad, "output": nir.Output(np.array([2]))},
               [("input", "l"), ("l", "output")])
    with pytest.raises(NIRError, match="'l'.*'tau'"):
        compile_graph(g)


def test_event_engine_needs_spikes_into_synapses():
    g = _graph({"input": nir.Input(np.array([2])),
                "li": nir.LI(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2)),
                "fc": nir.Linear(np.eye(2)), "l": _lif(2), "output": nir.Output(np.array([2]))},
               [("input", "li"), ("li", "fc"), ("fc", "l"), ("l", "output")])
    DenseEngine(g).run(np.ones((3, 1, 2)))  # fine clock-driven
    with pytest.raises(NIRError, match="'li'.*membrane"):
        EventEngine(g)


def test_input_shape_checked():
    g = _graph({"input": nir.Input(np.array([2])), "l": _lif(2), "output": nir.Output(np.array([2]))},
               [("input", "l"), ("l", "output")])
    from spikeflow.errors import InputError, ShapeError
    with pytest.raises(ShapeError, match=r"\[T, B, 2\]"):
        DenseEngine(g).run(np.ones((3, 1, 5)))
    with pytest.raises(InputError, match="NaN"):
        EventEngine(g).run(np.full((3, 1, 2), np.nan))
