"""Export at the true step width: a zoo model trained with neuron dt = 1 ms but fed one 50 ms bin per step
is written with dt = 50 ms and time constants x50, and the NIR file run at its stored dt reproduces the
torch model bit for bit on the same binned input."""

import warnings

import numpy as np
import pytest
import torch

from spikeflow import ir
from spikeflow.ir.export import retimed
from spikeflow.train.convert import fold_for_export
from spikeflow.train.zoo import for_data

BIN = 0.05  # 300 ms window in 6 bins


def _events(seed=0, T=6, batch=5, shape=(2, 6, 6)):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((batch, T) + shape, 0.6), generator=g)  # counts per bin [B, T, P, H, W]


def _export(model, tmp_path, shape):
    net = retimed(fold_for_export(model.net), BIN)
    if model.spec["arch"] == "mlp":
        import spikeflow.nn as snn

        net = snn.Sequential(torch.nn.Flatten(), *net)
    path = tmp_path / "m.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reset-mode note
        ir.write(net, path, input_shape=shape)
    return path


@pytest.mark.parametrize("arch,neuron,readout", [("mlp", "lif", "li"), ("mlp", "lif", "spike"),
                                                 ("mlp", "cuba", "li"), ("conv", "lif", "li")])
def test_exported_file_at_its_stored_dt_equals_the_torch_model(tmp_path, arch, neuron, readout):
    torch.manual_seed(0)
    x = _events()
    kw = {"channels": [4]} if arch == "conv" else {"hidden": [32]}
    model = for_data(arch, x.shape[1:], 10, neuron=neuron, readout=readout, **kw)
    for p in model.parameters():  # strong enough weights that the hidden layer spikes
        p.data.mul_(3.0)
    model.eval()
    with torch.no_grad():
        want = model(x)  # [T, B, classes]
    path = _export(model, tmp_path, (2, 6, 6))
    graph = ir.read_graph(path)
    assert ir.graph_dt(graph) == BIN
    node = graph.nodes[[k for k, n in graph.nodes.items() if type(n).__name__ in ("LIF", "CubaLIF")][0]]
    tau = node.tau if hasattr(node, "tau") else node.tau_mem
    assert np.allclose(tau, model.spec["tau_mem"] * BIN / 1e-3, rtol=1e-12)  # 10 ms x 50 = 0.5 s
    module = ir.from_nir(graph)  # runs at the file's dt
    assert module.dt == BIN
    with torch.no_grad():
        got = module(x.transpose(0, 1).contiguous())
    assert torch.equal(got, want)
    if readout == "spike":
        assert 0 < float(want.sum()) < want.numel()  # spikes, not all silent or saturated
    else:
        assert float(want.abs().max()) > 0


def test_without_retiming_the_file_at_its_dt_would_differ(tmp_path):
    """The reason for retiming: the same weights with tau 10 ms at dt 50 ms forget within one step."""
    torch.manual_seed(0)
    x = _events()
    model = for_data("mlp", x.shape[1:], 10, hidden=[32])
    model.eval()
    path = tmp_path / "m.nir"
    import spikeflow.nn as snn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir.write(snn.Sequential(torch.nn.Flatten(), *fold_for_export(model.net)), path, input_shape=(2, 6, 6))
    with torch.no_grad(), pytest.warns(UserWarning, match="forgets its state within one step"):
        want = model(x)
        got = ir.from_nir(path, dt=BIN)(x.transpose(0, 1).contiguous())
    assert not torch.allclose(got, want)
