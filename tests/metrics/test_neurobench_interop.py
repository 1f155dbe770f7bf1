"""spikeflow.metrics equal the neurobench package's metrics on the same model and data.

Runs in the interop venv (`make test-interop`); a missing neurobench or snnTorch fails the test.
Static metrics and synaptic operations / activation sparsity are taken by neurobench on the
spikeflow model itself; membrane updates need snnTorch neurons (neurobench reads their `mem`),
so they are compared on an snnTorch twin (Leaky with beta = 1, same weights) whose spikes are
checked to equal spikeflow's first.
"""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import spikeflow.nn as snn_sf
from spikeflow.metrics import connection_sparsity, footprint, workload_metrics
from spikeflow.nn import NeuronLayer
from tests.peers import require

pytestmark = pytest.mark.interop


def _neurobench():
    """neurobench's pieces, imported inside the tests (never in the unit run; missing, the test fails)."""
    require("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
    from neurobench.models import SNNTorchModel, TorchModel

    return SimpleNamespace(Benchmark=Benchmark, ConnectionSparsity=ConnectionSparsity, Footprint=Footprint,
                           ActivationSparsity=ActivationSparsity, MembraneUpdates=MembraneUpdates,
                           SynapticOperations=SynapticOperations, SNNTorchModel=SNNTorchModel, TorchModel=TorchModel)

N_IN, HID, N_OUT, T, B = 20, 16, 5, 12, 6
TH = 2.0  # high enough that a membrane never stays above threshold after one subtraction


def weights(seed):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randint(-3, 4, (HID, N_IN), generator=g).float() / 8  # exact in float32; ~1/7 zeros
    w2 = torch.randint(-3, 4, (N_OUT, HID), generator=g).float() / 4
    return w1, w2


def spikeflow_net(w1, w2):
    l1, l2 = nn.Linear(N_IN, HID, bias=False), nn.Linear(HID, N_OUT, bias=False)
    with torch.no_grad():
        l1.weight.copy_(w1)
        l2.weight.copy_(w2)
    return snn_sf.Sequential(l1, snn_sf.IF(HID, v_threshold=TH), l2, snn_sf.IF(N_OUT, v_threshold=TH))


class Twin(nn.Module):
    """The same network in snnTorch: Leaky(beta=1) with same-step subtractive reset is spikeflow's IF.

    (snnTorch's reset_delay=False subtracts again when a membrane is still above threshold after a
    reset; TH keeps every membrane below that, so the two agree spike for spike, as asserted.)
    """

    def __init__(self, w1, w2):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(N_IN, HID, bias=False), nn.Linear(HID, N_OUT, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(w1)
            self.fc2.weight.copy_(w2)
        snntorch = require("snntorch")
        kw = dict(beta=1.0, threshold=TH, reset_mechanism="subtract", reset_delay=False)
        self.lif1, self.lif2 = snntorch.Leaky(**kw), snntorch.Leaky(**kw)

    def reset(self):
        self.lif1.reset_mem()
        self.lif2.reset_mem()

    def forward(self, x):
        spk1, _ = self.lif1(self.fc1(x))
        return self.lif2(self.fc2(spk1))


class BatchFirst(nn.Module):
    """neurobench feeds [B, T, ...]; spikeflow is time-major."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1)).transpose(0, 1)


def data(seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(2 * B, T, N_IN, generator=g) < 0.3).float()
    return x, torch.zeros(2 * B, dtype=torch.long)


def loader(x, y):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=B)


def batches_time_major(x):
    return [x[i:i + B].transpose(0, 1) for i in range(0, len(x), B)]


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_neurobench_on_spikeflow_model(seed):
    nb_ = _neurobench()
    w1, w2 = weights(seed)
    net = spikeflow_net(w1, w2)
    x, y = data(seed)
    model = nb_.TorchModel(BatchFirst(net))
    model.add_activation_module(NeuronLayer)
    nb = nb_.Benchmark(model, loader(x, y), [], [], [[nb_.Footprint, nb_.ConnectionSparsity],
                                                   [nb_.ActivationSparsity, nb_.SynapticOperations]]).run(quiet=True)
    ours = workload_metrics(net, batches_time_major(x))
    assert footprint(net) == nb["Footprint"]
    assert round(connection_sparsity(net), 4) == nb["ConnectionSparsity"]
    assert ours["activation_sparsity"] == pytest.approx(nb["ActivationSparsity"], abs=1e-12)
    assert ours["synaptic_operations"] == pytest.approx(nb["SynapticOperations"])
    assert ours["synaptic_operations"]["Effective_ACs"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_workload_metrics_equal_neurobench_on_snntorch_twin(seed):
    nb_ = _neurobench()
    w1, w2 = weights(seed)
    net, twin = spikeflow_net(w1, w2), Twin(w1, w2)
    x, y = data(seed)
    model = nb_.SNNTorchModel(twin)
    out_twin = model(x)  # [B, T, N_OUT]
    out_sf = net(x.transpose(0, 1)).transpose(0, 1)
    assert torch.equal(out_twin, out_sf) and out_sf.sum() > 0  # same network, same spikes
    nb = nb_.Benchmark(model, loader(x, y), [], [], [[], [nb_.ActivationSparsity, nb_.SynapticOperations,
                                                      nb_.MembraneUpdates]]).run(quiet=True)
    ours = workload_metrics(net, batches_time_major(x))
    assert ours["membrane_updates"] == pytest.approx(nb["MembraneUpdates"])
    assert ours["activation_sparsity"] == pytest.approx(nb["ActivationSparsity"], abs=1e-12)
    assert ours["synaptic_operations"] == pytest.approx(nb["SynapticOperations"])
