"""Interop with snnTorch 1.0.0 and Norse 1.1.0 (run in .venv-interop by `make test-interop`).

Both libraries simulate NIR graphs with forward Euler, snnTorch at dt = 1e-4 s and Norse at
dt = 1e-3 s. Once that convention is applied (``from_nir(..., convention=...)`` or
``discretization="euler"`` with the same dt), spikes must be identical in both directions.
"""

import warnings

import nir
import pytest
import torch

import spikeflow.nn as sfn
from spikeflow import ir

pytestmark = pytest.mark.interop

T, B = 80, 4


def _input(seed=0, n=4, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) < p).float()


def _sf_net(dt, taus, rs, gain):
    torch.manual_seed(5)
    net = sfn.Sequential(
        torch.nn.Linear(4, 6), sfn.LIF(6, tau_mem=taus[0], r=rs[0], reset="to_reset", dt=dt),
        torch.nn.Linear(6, 3), sfn.LIF(3, tau_mem=taus[1], r=rs[1], reset="to_reset", dt=dt),
    )
    with torch.no_grad():
        net[0].layer.weight.mul_(gain)
        net[2].layer.weight.mul_(gain)
    return net


def test_snntorch_export_imports_with_same_spikes(tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    leaky = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)  # NIR's reset: to v_reset, same step
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6), snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), **leaky),
        torch.nn.Linear(6, 3), snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), **leaky),
    )
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    x = _input()
    snn_utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(x[t]) for t in range(T)])
    graph = export_to_nir(net, torch.randn(1, 4), ignore_dims=[0])
    path = tmp_path / "snntorch.nir"
    nir.write(str(path), graph)
    with pytest.warns(UserWarning, match=r"snntorch file.*dt = 0\.0001 s"):
        module = ir.from_nir(path)
    y = module(x)
    assert ref.sum() > 20
    assert torch.equal(y, ref)


def test_norse_export_imports_with_same_spikes(tmp_path):
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(1)
    net = nt.SequentialState(torch.nn.Linear(4, 5), nt.LIFBoxCell(), torch.nn.Linear(5, 3), nt.LIFBoxCell())
    with torch.no_grad():
        net[0].weight.mul_(20)
        net[2].weight.mul_(20)
    x = _input(1)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = net(x[t], state)
            outs.append(o)
    ref = torch.stack(outs)
    graph = nt.to_nir(net, torch.randn(1, 4), dt=1e-3)
    path = tmp_path / "norse.nir"
    with pytest.raises(TypeError, match="Scalar datasets"):  # Norse's 0-d parameters break nir.write's gzip
        nir.write(str(path), graph)
    ir.write(graph, path)  # spikeflow's writer stores 0-d arrays uncompressed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = ir.from_nir(path)
    text = " ".join(str(w.message) for w in caught)
    assert "batch axis" in text and "norse file" in text and "dt = 0.001 s" in text
    y = module(x)
    assert ref.sum() > 20
    assert torch.equal(y, ref)


def test_spikeflow_export_runs_in_snntorch_with_same_spikes(tmp_path):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    net = _sf_net(1e-4, (1e-3, 2e-3), (10.0, 20.0), 3.0)  # r = tau / dt: snnTorch's own input scaling
    path = tmp_path / "sf.nir"
    ir.write(net, path)
    peer = import_from_nir(nir.read(str(path), type_check=True))
    x = _input(2)
    with torch.no_grad():
        outs = [peer(x[t]) for t in range(T)]
    ref = torch.stack([o[0] if isinstance(o, tuple) else o for o in outs])
    y = ir.from_nir(path, discretization="euler")(x)  # the file's dt (1e-4 s) is snnTorch's
    assert ref.sum() > 20
    assert torch.equal(y, ref)
    # spikeflow's own (exact) policy is close to Euler at this dt, not identical
    exact = ir.from_nir(path)(x)
    assert abs(exact.sum() - ref.sum()) <= 0.2 * ref.sum()


def test_spikeflow_export_runs_in_norse_with_same_spikes(tmp_path):
    nt = pytest.importorskip("norse.torch")
    net = _sf_net(1e-3, (10e-3, 10e-3), (1.0, 1.0), 20.0)  # Norse ignores r (needs r = 1)
    path = tmp_path / "sf.nir"
    ir.write(net, path)
    peer = nt.from_nir(nir.read(str(path), type_check=True), dt=1e-3)
    x = _input(3)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = peer(x[t], state)
            outs.append(o)
    ref = torch.stack(outs)
    y = ir.from_nir(path, discretization="euler")(x)
    assert ref.sum() > 20
    assert torch.equal(y, ref)
    exact = ir.from_nir(path)(x)
    assert abs(exact.sum() - ref.sum()) <= 0.3 * ref.sum()


def test_snntorch_recurrent_export_imports_with_same_spikes(tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        snn.RLeaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), linear_features=6, all_to_all=True, **kw),
        torch.nn.Linear(6, 3), snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), **kw),
    )
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
        net[1].recurrent.weight.mul_(2)
    x = _input(4)
    snn_utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(x[t]) for t in range(T)])
    graph = export_to_nir(net, torch.randn(1, 4), ignore_dims=[0])
    path = tmp_path / "rleaky.nir"
    nir.write(str(path), graph)
    with pytest.warns(UserWarning, match="snntorch file"):
        module = ir.from_nir(path)
    assert any(c.cyclic for c in module.components)  # the recurrent loop is a cycle in the graph
    assert ref.sum() > 20
    assert torch.equal(module(x), ref)


def test_norse_if_export_and_import_match(tmp_path):
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(2)
    net = nt.SequentialState(torch.nn.Linear(4, 5), nt.IAFCell())
    with torch.no_grad():
        net[0].weight.mul_(2)
    x = _input(5)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = net(x[t], state)
            outs.append(o)
    ref = torch.stack(outs)
    path = tmp_path / "norse_if.nir"
    ir.write(nt.to_nir(net, torch.randn(1, 4), dt=1e-3), path)
    with pytest.warns(UserWarning, match="IF's r is divided by dt"):
        module = ir.from_nir(path)
    assert ref.sum() > 20
    assert torch.equal(module(x), ref)
    # and back: spikeflow's IF (v += r x per step, written as R = r / dt) runs in Norse's IAFCell
    sf = sfn.Sequential(torch.nn.Linear(4, 5), sfn.IF(5, reset="to_reset", dt=1e-3))
    with torch.no_grad():
        sf[0].layer.weight.copy_(net[0].weight)
        sf[0].layer.bias.copy_(net[0].bias)
    ir.write(sf, tmp_path / "sf_if.nir")
    peer = nt.from_nir(nir.read(str(tmp_path / "sf_if.nir")), dt=1e-3, ignore_warnings=True)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = peer(x[t], state)
            outs.append(o)
    assert torch.equal(torch.stack(outs), sf(x))
    assert torch.equal(sf(x), ref)
