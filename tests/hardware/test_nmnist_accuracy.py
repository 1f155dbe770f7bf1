"""Integer (8-bit, the generic model of the loihi2 profile) accuracy within 1 point of float on a trained
nmnist5k model (slow: trains one). The loihi profile computes as Lava's Loihi models, which refuse this
model's subtract reset and binned event counts (tests/hardware/test_loihi.py)."""

import numpy as np
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.slow


def test_loihi_8bit_accuracy_within_one_point_of_float(tmp_path):
    import spikeflow.nn as snn
    from spikeflow.data import load_dataset
    from spikeflow.hardware import compile_network
    from spikeflow.hardware.evaluate import evaluate
    from spikeflow.ir import read_graph, write

    T, dt, tau = 30, 10e-3, 50e-3

    def arrays(split, n):
        ds = load_dataset("nmnist5k", split, T=T)
        xs, ys = zip(*(ds[i] for i in range(n)))
        return torch.as_tensor(np.stack([np.asarray(x) for x in xs], axis=1)), torch.as_tensor(np.array(ys))

    torch.manual_seed(0)
    x_tr, y_tr = arrays("train", 2000)
    x_te, y_te = arrays("test", 500)
    net = snn.Sequential(nn.Flatten(), nn.Linear(2312, 64), snn.LIF(64, tau_mem=tau, dt=dt),
                         nn.Linear(64, 10), snn.LI(10, tau_mem=tau, dt=dt))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(2):
        for i in range(0, 2000, 64):
            loss = nn.functional.cross_entropy(net(x_tr[:, i:i + 64]).sum(0), y_tr[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = tmp_path / "m.nir"
    write(net, path, input_shape=(2, 34, 34))
    compiled = compile_network(read_graph(path), "loihi2")
    ev = evaluate(compiled, [(x_te[:, i:i + 100].numpy(), y_te[i:i + 100].numpy()) for i in range(0, 500, 100)],
                  progress=False)
    # Training through a spike threshold is chaotic: float summation order (another CPU) changes
    # where it ends as much as another seed does, and seeds 0, 1, 2 end at 62 %, 53 % and 24 %
    # float accuracy (chance 10 %). So the trained accuracy is only checked to be above chance
    # with room to spare; the claim is about the integer run against the float one, which held
    # with margin on all of them: accuracy gap 0.2, 0.2, 0.0 points, predictions equal on 99.2-99.8 %
    # of samples, spikes equal at 99.95 % of (step, sample, neuron).
    assert ev.float_accuracy > 0.15
    assert abs(ev.int_accuracy - ev.float_accuracy) <= 0.01
    assert ev.prediction_agreement >= 0.97
    assert ev.spike_agreement >= 0.99
