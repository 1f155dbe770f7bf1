"""spikeflow -> NIR file -> spikeflow gives identical outputs, for every node type."""

import warnings

import nir
import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow import ir
from spikeflow.errors import NIRError

DT = 1e-3


def _roundtrip(tmp_path, net, x, **kw):
    path = tmp_path / "model.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reset-mode notes
        ir.write(net, path, **kw)
    checked = nir.read(str(path), type_check=True)  # passes nir's own type check
    assert isinstance(checked, nir.NIRGraph)
    module = ir.from_nir(path)
    with torch.no_grad():
        return net(x), module(x), ir.read_graph(path)


def _spikes(shape, seed=0, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _dense(n_in=5, n=7, seed=0):
    """A Linear layer whose weights and bias are multiples of 1/64: with spike inputs every sum is
    exact in float32, so a folded [T*B] matrix product and a per-step one agree bit for bit on
    any CPU or BLAS, whatever order it sums in."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(n_in, n)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.round(p * 64) / 64)
    return layer


NEURONS = {
    "lif": lambda n: snn.LIF(n, tau_mem=torch.linspace(5e-3, 30e-3, n), v_threshold=0.3, dt=DT),
    "lif_to_reset": lambda n: snn.LIF(n, tau_mem=15e-3, v_threshold=0.3, v_reset=-0.1, reset="to_reset", dt=DT),
    "lif_refractory": lambda n: snn.LIF(n, tau_mem=15e-3, v_threshold=0.3, refractory=3e-3, dt=DT),
    "if": lambda n: snn.IF(n, v_threshold=0.5, r=torch.linspace(0.5, 1.5, n), dt=DT),
    "li": lambda n: snn.LI(n, tau_mem=10e-3, v_leak=0.1, dt=DT),
    "cubalif": lambda n: snn.CubaLIF(n, tau_syn=4e-3, tau_mem=12e-3, v_threshold=0.2, w_in=2.0, dt=DT),
    "cubali": lambda n: snn.CubaLI(n, tau_syn=4e-3, tau_mem=12e-3, r=1.5, dt=DT),
}


@pytest.mark.parametrize("kind", sorted(NEURONS))
def test_neuron_roundtrip_identical(tmp_path, kind):
    net = snn.Sequential(_dense(5, 7), NEURONS[kind](7))
    x = _spikes((40, 3, 5)) * 3.0
    y, y2, graph = _roundtrip(tmp_path, net, x)
    assert torch.equal(y, y2)
    if NEURONS[kind](7).model.spiking:
        assert 0 < y.sum() < y.numel()  # the comparison involves real spikes
    assert graph.metadata["dt"] == pytest.approx(DT)


@pytest.mark.parametrize(
    "layer, in_shape",
    [
        (torch.nn.Linear(6, 4, bias=False), (6,)),
        (torch.nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 9)),
        (torch.nn.Conv2d(2, 3, 3, stride=(2, 1), dilation=(1, 2), bias=False), (2, 7, 8)),
        (torch.nn.AvgPool2d(2), (3, 6, 6)),
        (snn.SumPool2d(2, stride=2), (3, 6, 6)),
        (torch.nn.Flatten(), (2, 3, 4)),
        (torch.nn.Flatten(2, 3), (2, 3, 4)),
        (snn.Scale(torch.linspace(-1, 2, 6)), (6,)),
        (snn.Threshold(torch.linspace(0.1, 0.9, 6)), (6,)),
        (snn.Delay(torch.tensor([0.0, 1e-3, 2e-3, 5e-3, 3e-3, 0.0]), dt=DT), (6,)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "x".join(map(str, v)),
)
def test_layer_roundtrip_identical(tmp_path, layer, in_shape):
    torch.manual_seed(1)
    net = snn.Sequential(layer)
    x = torch.rand((6, 2) + in_shape)
    y, y2, _ = _roundtrip(tmp_path, net, x, input_shape=in_shape, dt=DT)
    assert torch.equal(y, y2)


def test_grouped_conv_roundtrip(tmp_path):
    # nir 1.0.8 takes a conv's input channels from weight.shape[1] (C_in / groups), so its own type
    # check rejects grouped convolutions; spikeflow's reader checks C_in = weight.shape[1] * groups
    torch.manual_seed(1)
    net = snn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, groups=2))
    path = tmp_path / "g.nir"
    ir.write(net, path, input_shape=(2, 6, 6), dt=DT)
    with pytest.raises(ValueError):
        nir.read(str(path), type_check=True)
    x = torch.rand(4, 2, 2, 6, 6)
    with pytest.warns(UserWarning, match="type check fails"):
        module = ir.from_nir(path)
    assert torch.equal(module(x), net(x))


def test_non_square_kernel_exports_with_warning(tmp_path):
    # nir 1.0.8 sizes Conv2d outputs from weight.shape[2] alone, so its type check rejects this graph
    torch.manual_seed(1)
    net = snn.Sequential(torch.nn.Conv2d(2, 3, (3, 2), padding=(1, 0)))
    path = tmp_path / "k.nir"
    with pytest.warns(UserWarning, match="type check rejects"):
        ir.write(net, path, input_shape=(2, 5, 6), dt=DT)
    x = torch.rand(3, 2, 2, 5, 6)
    with pytest.warns(UserWarning, match="type check fails"):
        module = ir.from_nir(path)
    assert torch.equal(module(x), net(x))


def test_delay_shifts_by_whole_steps():
    d = snn.Delay(torch.tensor([0.0, 2e-3]), dt=DT)
    x = torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1).expand(5, 1, 2)
    y = d(x)
    assert y[:, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert y[:, 0, 1].tolist() == [0, 0, 1, 2, 3]
    # streaming gives the same
    state, outs = None, []
    for t in range(5):
        o, state = d.step(x[t], state)
        outs.append(o)
    assert torch.equal(torch.stack(outs), y)


def test_conv_net_roundtrip(tmp_path):
    torch.manual_seed(2)
    net = snn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        snn.LIF(tau_mem=10e-3, v_threshold=0.2, dt=DT),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(4, 4, 3),
        snn.CubaLIF(tau_syn=3e-3, tau_mem=10e-3, v_threshold=0.1, dt=DT),
        snn.SumPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
        snn.LI(tau_mem=20e-3, dt=DT),
    )
    x = _spikes((25, 2, 2, 12, 12), p=0.4) * 2
    y, y2, graph = _roundtrip(tmp_path, net, x, input_shape=(2, 12, 12))
    assert torch.equal(y, y2)
    assert y.abs().sum() > 0
    assert isinstance(graph.nodes["0"], nir.Conv2d) and isinstance(graph.nodes["5"], nir.SumPool2d)


def test_recurrent_net_roundtrip(tmp_path):
    torch.manual_seed(3)
    rec = snn.RLIF(8, tau_mem=10e-3, v_threshold=0.3, dt=DT)
    with torch.no_grad():
        rec.recurrent.weight.mul_(3)
    rcuba = snn.RCubaLIF(6, tau_syn=3e-3, tau_mem=10e-3, v_threshold=0.1, dt=DT)
    net = snn.Sequential(_dense(5, 8), rec, _dense(8, 6, seed=4), rcuba, _dense(6, 2, seed=5),
                         snn.LI(tau_mem=10e-3, dt=DT))
    x = _spikes((40, 3, 5)) * 2
    y, y2, graph = _roundtrip(tmp_path, net, x)
    assert torch.equal(y, y2)
    sub = graph.nodes["1"]
    assert isinstance(sub, nir.NIRGraph) and ("recurrent", "neuron") in sub.edges  # a cycle
    # the recurrent weight matters: zeroing it changes the output
    with torch.no_grad():
        rec.recurrent.weight.zero_()
    assert not torch.equal(net(x), y)


def test_if_export_converts_r_per_dt():
    layer = snn.IF(3, r=torch.tensor([0.5, 1.0, 2.0]), dt=2e-3)
    g = ir.to_nir(snn.Sequential(layer))
    np.testing.assert_allclose(g.nodes["0"].r, [250.0, 500.0, 1000.0], rtol=1e-6)  # R = r / dt


def test_subtract_reset_is_kept_in_metadata_with_warning():
    with pytest.warns(UserWarning, match="spikeflow_reset"):
        g = ir.to_nir(snn.Sequential(snn.LIF(4, dt=DT)))
    assert g.nodes["0"].metadata["spikeflow_reset"] == "subtract"


def test_export_errors_name_the_layer():
    with pytest.raises(NIRError, match="'1'.*alif"):
        ir.to_nir(snn.Sequential(torch.nn.Linear(3, 4), snn.ALIF(4)))
    with pytest.raises(NIRError, match="input_shape"):
        ir.to_nir(snn.Sequential(torch.nn.Conv2d(1, 2, 3)))
    with pytest.raises(NIRError, match="different dt"):
        ir.to_nir(snn.Sequential(torch.nn.Linear(3, 4), snn.LIF(4, dt=1e-3), snn.LIF(4, dt=2e-3)))
    with pytest.raises(NIRError, match="GRU"):
        ir.to_nir(snn.Sequential(torch.nn.GRU(3, 4)), input_shape=(3,))


def test_dt_from_caller_then_metadata_then_default(tmp_path):
    net = snn.Sequential(torch.nn.Linear(3, 4), snn.LIF(4, tau_mem=5e-3, dt=2e-3, reset="to_reset"))
    g = ir.to_nir(net)
    assert ir.from_nir(g).dt == 2e-3
    assert ir.from_nir(g, dt=5e-4).dt == 5e-4
    g.metadata = {}
    with pytest.warns(UserWarning, match="assuming dt = 0.001 s"):
        assert ir.from_nir(g).dt == ir.DEFAULT_DT


@pytest.mark.parametrize(
    "layer",
    [lambda: snn.LIF(4, tau_mem=8e-3, v_threshold=0.2, reset="to_reset", dt=DT),
     lambda: snn.RIF(4, v_threshold=0.5, dt=DT),
     lambda: snn.RCubaLIF(4, tau_syn=3e-3, tau_mem=8e-3, v_threshold=0.1, dt=DT)],
    ids=["LIF", "RIF", "RCubaLIF"],
)
def test_single_layer_exports(tmp_path, layer):
    torch.manual_seed(6)
    module = layer()
    x = _spikes((30, 2, 4), p=0.5)
    y, y2, _ = _roundtrip(tmp_path, module, x)
    assert torch.equal(y, y2) and y.sum() > 0


def test_streaming_step_equals_forward():
    torch.manual_seed(7)
    rec = snn.RLIF(6, tau_mem=10e-3, v_threshold=0.3, dt=DT)
    net = snn.Sequential(_dense(5, 6), rec, snn.Delay(torch.tensor([0.0, 2e-3] * 3), dt=DT), _dense(6, 3, seed=8),
                         snn.CubaLI(3, dt=DT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = ir.from_nir(ir.to_nir(net))
    x = _spikes((20, 2, 5), p=0.5) * 2
    with torch.no_grad():
        whole = module(x)
        module.reset()
        steps = torch.stack([module.step(x[t]) for t in range(20)])
        module.reset()
        again = module.step(x[0])
    assert torch.equal(steps, whole) and torch.equal(again, whole[0])
