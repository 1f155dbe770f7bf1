"""Losses and metrics against hand-computed values."""

import math

import pytest
import torch

from spikeflow.errors import ConfigError, ShapeError
from spikeflow.train.losses import classification_loss, first_spike_times, logits, mse_count_loss, rate_regularizer
from spikeflow.train.metrics import activation_sparsity, synaptic_operations


def test_first_spike_times_by_hand():
    # T=4, B=1, C=3: neuron 0 fires at step 1, neuron 1 at step 3, neuron 2 never
    s = torch.zeros(4, 1, 3)
    s[1, 0, 0] = 1
    s[3, 0, 1] = 1
    s[2, 0, 0] = 1  # a later spike does not change the first time
    assert first_spike_times(s).tolist() == [[1.0, 3.0, 4.0]]


def test_logit_reductions():
    out = torch.tensor([[[1.0, 0.0]], [[3.0, 1.0]], [[2.0, 5.0]]])  # [T=3, B=1, C=2]
    assert logits(out, "ce_max").tolist() == [[3.0, 5.0]]
    assert logits(out, "ce_mean").tolist() == [[2.0, 2.0]]
    assert logits(out, "ce_last").tolist() == [[2.0, 5.0]]
    assert logits(out, "ce_count").tolist() == [[6.0, 6.0]]


def test_ce_max_equals_cross_entropy_of_max():
    out = torch.tensor([[[1.0, 0.0]], [[3.0, 1.0]]])
    expected = -math.log(math.exp(3) / (math.exp(3) + math.exp(1)))
    assert classification_loss(out, torch.tensor([0]), "ce_max").item() == pytest.approx(expected, rel=1e-6)


def test_mse_count_by_hand():
    s = torch.zeros(10, 1, 2)
    s[:8, 0, 0] = 1  # 8 spikes on the label neuron (the goal), 3 on the other (goal 1)
    s[:3, 0, 1] = 1
    # ((8-8)^2 + (3-1)^2) / 2 / T
    assert mse_count_loss(s, torch.tensor([0])).item() == pytest.approx(4 / 2 / 10)


def test_rate_regularizer_by_hand():
    r = [torch.tensor([0.1, 0.3]), torch.tensor([0.0])]
    assert rate_regularizer(r, target=0.1, weight=2.0).item() == pytest.approx(2 * ((0 + 0.04) / 2 + 0.01))


def test_bad_loss_inputs():
    with pytest.raises(ConfigError, match="valid losses"):
        classification_loss(torch.zeros(2, 1, 3), torch.tensor([0]), "hinge")
    with pytest.raises(ShapeError, match="T, B, classes"):
        logits(torch.zeros(2, 3, 4, 5), "ce_max")


def test_synaptic_operations_count_fanout():
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-10.0)  # ReLU output all zero: second layer does no work
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    ops = synaptic_operations(net, x)
    # batch 2: binary sample and analog sample are in one tensor -> counted as MAC (non-binary input)
    assert ops.macs == pytest.approx((2 * 5 + 2 * 5) / 2)
    assert ops.acs == 0
    spikes = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    ops = synaptic_operations(net, spikes)
    assert ops.acs == 3 * 5 and ops.macs == 0


def test_pooled_spikes_count_as_accumulates_for_snns():
    net = torch.nn.Sequential(torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    s = torch.zeros(1, 1, 4, 4)
    s[0, 0, 0, 0] = s[0, 0, 0, 1] = s[0, 0, 3, 3] = 1.0  # 3 spikes -> pooled values 0.5 and 0.25
    assert synaptic_operations(net, s).macs == 2 * 3  # NeuroBench rule: non-binary -> MAC per non-zero
    ops = synaptic_operations(net, s, spiking=True)
    assert ops.acs == 3 * 3 and ops.macs == 0  # one accumulate per spike and fan-out weight
    counts = torch.tensor([[2.0, 0.0, 1.0, 0.0]])  # event counts into a Linear: 3 events
    assert synaptic_operations(net[2], counts, spiking=True).acs == 3 * 3
    assert synaptic_operations(net[2], torch.tensor([[0.3, 0.0, 0.0, 0.0]]), spiking=True).macs == 3


def test_conv_synaptic_operations_match_brute_force():
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0  # a corner pixel reaches a 2x2 patch of outputs in each of 2 channels
    x[0, 0, 2, 1] = 1.0  # an inner pixel reaches a full 3x3 patch
    ops = synaptic_operations(conv, x)
    assert ops.acs == 2 * 4 + 2 * 9


def test_activation_sparsity():
    rec = {"a": [torch.tensor([1.0, 0.0, 0.0, 0.0])], "b": [torch.tensor([1.0, 1.0])]}
    assert activation_sparsity(rec) == pytest.approx(3 / 6)


def test_distillation_loss_by_hand():
    from spikeflow.train.losses import distillation_loss

    # teacher p = (3/4, 1/4) at temperature 2 (logits 2 ln 3, 0); student p = (1/2, 1/2)
    teacher = torch.tensor([[2 * math.log(3.0), 0.0]])
    student = torch.zeros(1, 2)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(distillation_loss(student, teacher, 2.0)) == pytest.approx(4 * kl, rel=1e-6)
    # the same distributions give zero; the mean is over the batch
    assert float(distillation_loss(teacher / 2, teacher / 2, 1.0)) == pytest.approx(0.0, abs=1e-7)
    both = distillation_loss(torch.cat([student, teacher / 2]), torch.cat([teacher, teacher]) / 2, 1.0)
    assert float(both) == pytest.approx(kl / 2, rel=1e-6)
    with pytest.raises(ShapeError, match="distillation"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="temperature"):
        distillation_loss(student, teacher, 0.0)
