"""spikeflow.metrics against hand-computed NeuroBench-definition values."""

import pytest
import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow.errors import ShapeError
from spikeflow.metrics import connection_sparsity, footprint, workload_metrics


def _net():
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    return snn.Sequential(lin, snn.IF(2, v_threshold=0.9, reset="to_reset")), lin


def test_footprint_counts_parameters_and_buffers():
    m = nn.Linear(3, 2)  # 6 + 2 float32 parameters
    m.register_buffer("extra", torch.zeros(5, dtype=torch.float64))
    assert footprint(m) == 8 * 4 + 5 * 8


def test_connection_sparsity_counts_zero_weights():
    net, _ = _net()
    assert connection_sparsity(net) == pytest.approx(1 / 4)


def test_workload_by_hand():
    net, _ = _net()
    # in0 fires at steps 0, 1; in1 at steps 1, 2 (one sample).
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])[:, None, :]
    m = workload_metrics(net, [x])
    syn = m["synaptic_operations"]
    # in0 reaches 2 targets, in1 reaches 1 (w[0,1] = 0): 2 + 3 + 1 + 0 = 6 ACs; dense 4 per step.
    assert syn == {"Effective_MACs": 0.0, "Effective_ACs": 6.0, "Dense": 16.0}
    # IF, threshold 0.9, reset to 0: n0 spikes at 0 and 1, n1 (0.5 + 0.5) at step 1 -> 3 spikes of 8 outputs.
    assert m["activation_sparsity"] == pytest.approx(5 / 8)
    # Membranes after reset: n0: 0, 0, 0, 0; n1: 0.5, 0, 0.5, 0.5 -> 2 first step + changes (n1 at 1, 2) = 4.
    assert m["membrane_updates"] == 4


def test_non_spike_input_counts_macs_and_averages_per_sample():
    net, _ = _net()
    x = torch.full((3, 2, 2), 0.25)  # graded input: MACs; 3 nonzero weights x 3 steps per sample
    syn = workload_metrics(net, [x, x])["synaptic_operations"]
    assert syn["Effective_MACs"] == 9.0 and syn["Effective_ACs"] == 0.0 and syn["Dense"] == 12.0


def test_batches_must_be_time_major():
    net, _ = _net()
    with pytest.raises(ShapeError, match="time-major"):
        workload_metrics(net, [torch.zeros(2, 2)])


def test_readout_membrane_counts_as_updates_not_as_activations():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    net = snn.Sequential(lin, snn.LI(1, tau_mem=20e-3, dt=1e-3))
    x = torch.tensor([[1.0], [0.0], [0.0]])[:, None, :]
    m = workload_metrics(net, [x])
    # the leaky membrane changes at every step (rise, then decay): 1 + 2 updates; no spiking layer
    assert m["membrane_updates"] == 3 and m["activation_sparsity"] == 0.0
