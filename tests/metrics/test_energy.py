"""The energy model against hand counts on a 3-4-2 network with given weights and spikes."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow.errors import ConfigError
from spikeflow.metrics import energy as E

ROOT = Path(__file__).resolve().parents[2]

# Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm), written out here independently of the library.
ADD, MULT = 0.9, 3.7  # pJ, float32
SRAM_8K = 10.0  # pJ per 64-bit access


def hand_net(neuron: str = "snn"):
    """3 -> 4 -> 2, no biases. Non-zero fan-out: input 0 -> h0, h3; input 1 -> h1, h3; input 2 -> h1;
    h0 -> o0; h1 -> o0, o1; h2 -> o1; h3 -> o1 (h2 has no input at all)."""
    w1 = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.6, 0.6], [0.0, 0.0, 0.0], [0.3, 0.3, 0.0]])
    w2 = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, -1.0, 1.0, 1.0]])
    l1, l2 = nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        l1.weight.copy_(w1)
        l2.weight.copy_(w2)
    if neuron == "ann":
        return nn.Sequential(l1, nn.ReLU(), l2)
    return snn.Sequential(l1, snn.IF(4), l2, snn.LI(2))


# input spikes: step 0 inputs 0 and 2, step 1 inputs 0 and 1 (one sample)
SPIKES = torch.tensor([[[1.0, 0.0, 1.0]], [[1.0, 1.0, 0.0]]])


def test_snn_counts_by_hand():
    c = E.measure(hand_net(), SPIKES, kind="snn")
    # layer 1: step 0: 2 (input 0) + 1 (input 2); step 1: 2 + 2. IF (threshold 1, subtract): h0 spikes at both
    # steps (v = 2, then 1 + 2), h1 at step 1 (0.6 + 0.6); layer 2: step 0: h0 -> 1; step 1: h0 -> 1, h1 -> 2.
    l1, l2 = c.synapses
    assert l1.ops[:, 0].tolist() == [3, 4] and l2.ops[:, 0].tolist() == [1, 3]
    assert l1.events[:, 0].tolist() == [2, 2] and l2.events[:, 0].tolist() == [1, 2]
    assert c.neurons[0].spikes[:, 0].tolist() == [1, 2]
    p = c.per_inference()
    assert (p["acs"], p["macs"], p["dense_ops"], p["spikes"]) == (11, 0, 40, 3)


def test_snn_energy_by_hand():
    r = E.energy(E.measure(hand_net(), SPIKES), "45nm")
    # All memories fit 8 kB: weights 20 x 4 B, state 6 x 4 B, events (3 + 4) x 2 B.
    w = s = SRAM_8K * 32 / 64  # 32-bit word
    ev = SRAM_8K * 16 / 64  # 16-bit event word
    synapses = 11 * (ADD + w + 2 * s) + 4 * ev + 3 * ev  # ACs with their reads/writes; input events read
    hidden = 4 * 2 * (ADD + 2 * s) + 3 * ev  # IF: compare (no decay), v read + write; spikes written
    readout = 2 * 2 * (MULT + 2 * s)  # LI: decay multiply, v read + write
    assert r.total_j / 1e-12 == pytest.approx(synapses + hidden + readout, rel=1e-12)
    assert r.total_j / 1e-12 == pytest.approx(341.9, rel=1e-12)
    assert r.breakdown_j["weights"] / 1e-12 == pytest.approx(11 * w)
    assert r.breakdown_j["state"] / 1e-12 == pytest.approx(11 * 2 * s + 12 * 2 * s)
    assert r.acs == 11 and r.macs == 0
    assert {m["tier"] for m in r.memories.values()} == {"8 kB SRAM"}


def test_ann_energy_by_hand():
    x = SPIKES.sum(0)  # the ANN sees the frames summed: [2, 1, 1]
    c = E.measure(hand_net("ann"), x, kind="ann")
    r = E.energy(c, "45nm")
    w = a = SRAM_8K * 32 / 64
    macs = 3 * 4 + 4 * 2  # dense: every weight once
    expected = macs * (ADD + MULT + w + a) + 6 * (2 * ADD + a)
    assert r.macs == macs and r.acs == 0
    assert r.total_j / 1e-12 == pytest.approx(expected, rel=1e-12)
    assert r.total_j / 1e-12 == pytest.approx(332.8, rel=1e-12)
    # skipping zeros: non-zero inputs x non-zero weights: layer 1 5 (all inputs non-zero); hidden ReLU outputs
    # h0 = 4, h1 = 1.2, h2 = 0, h3 = 0.9 -> h0 (1) + h1 (2) + h3 (1) = 4
    assert E.energy(c, skip_zeros=True).macs == 9


def test_memory_tiers():
    t = E.TECH_45NM
    assert t.memory(8 * 1024) == ("8 kB SRAM", 10e-12)
    assert t.memory(8 * 1024 + 1) == ("32 kB SRAM", 20e-12)
    assert t.memory(1024 * 1024) == ("1 MB SRAM", 100e-12)
    assert t.memory(1024 * 1024 + 1) == ("DRAM", 1300e-12)
    # a network whose float32 weights (3000 x 1 + 1 x 2 + biases = 3005 x 4 B = 12 kB) need the 32 kB tier
    net = snn.Sequential(nn.Linear(3000, 1), snn.IF(1), nn.Linear(1, 2), snn.LI(2))
    c = E.measure(net, torch.zeros(1, 1, 3000))
    mem = E.memory_sizes(c, t)
    assert mem["weights"]["bytes"] == (3000 + 1 + 2 + 2) * 4 and mem["weights"]["tier"] == "32 kB SRAM"
    assert E.memory_sizes(c, E.TECH_45NM_INT8)["weights"]["tier"] == "8 kB SRAM"  # 3 kB at int8


def test_early_exit_counts_equal_truncated_input():
    torch.manual_seed(0)
    net = snn.Sequential(nn.Linear(20, 30), snn.LIF(30, tau_mem=5e-3), nn.Linear(30, 4), snn.LI(4))
    with torch.no_grad():
        net[0].layer.weight.mul_(4)
    x = (torch.rand(8, 3, 20) < 0.3).float()
    full = E.measure(net, x)
    for k in (1, 3, 8):
        cut = E.counts_until(full, [k, k, k])
        short = E.measure(net, x, steps=k)
        assert cut.per_inference() == pytest.approx(short.per_inference())
        assert E.energy(cut).total_j == pytest.approx(E.energy(short).total_j)
    # per-sample decision steps: the mean of each sample's truncated run
    steps = [2, 5, 8]
    mixed = E.energy(E.counts_until(full, steps)).total_j
    single = [E.energy(E.measure(net, x[:k, i:i + 1])).total_j for i, k in enumerate(steps)]
    assert mixed == pytest.approx(np.mean(single))
    assert full.spike_rate() > 0


def test_decision_steps_follow_the_stream_rule():
    # two classes; sample 0: the max-membrane softmax reaches 0.9 at step 2, sample 1 never
    readout = torch.tensor([[[0.0, 1.0], [0.0, 0.1]], [[0.0, 3.0], [0.0, 0.2]], [[0.0, 0.0], [0.0, 0.1]]])
    # softmax([0, 1]) top = 0.731; softmax([0, 3]) top = 0.953
    assert E.decision_steps(readout, 0.9).tolist() == [2, 3]
    assert E.decision_steps(readout, 0.7).tolist() == [1, 3]
    with pytest.raises(ConfigError, match="confidence"):
        E.decision_steps(readout, 1.5)


def test_chip_profile_prices_synops_and_updates():
    from spikeflow.hardware.profiles import PROFILES

    p = PROFILES["loihi"]
    r = E.energy(E.measure(hand_net(), SPIKES), "loihi")
    # updates: hidden 8 neuron-steps, of which received input: step 0 h0, h1, h3; step 1 h0, h1, h3 -> 6 active;
    # readout 4 neuron-steps, received: step 0 o0; step 1 o0, o1 -> 3 active; 3 spikes delivered
    expected = 11 * p.e_synop + 9 * p.e_update_active + 3 * p.e_update_inactive + 3 * p.e_spike_local
    assert r.total_j == pytest.approx(expected + 2 * p.e_step)
    xylo = PROFILES["xylo"]  # a synchronous chip: a fixed cost every step
    assert xylo.e_step > 0
    assert E.energy(E.measure(hand_net(), SPIKES), "xylo").per_layer_j["per step"]["compute"] == 2 * xylo.e_step
    with pytest.raises(ConfigError, match="spiking"):
        E.energy(E.measure(hand_net("ann"), SPIKES.sum(0), kind="ann"), "loihi")
    with pytest.raises(ConfigError, match="unknown technology"):
        E.energy(E.measure(hand_net(), SPIKES), "7nm")


def test_pooled_spikes_count_their_events():
    # 4 spikes average-pooled 2x2 into one pixel of 1.0 reach the next conv as 4 events
    net = snn.Sequential(nn.Conv2d(1, 1, 1, bias=False), snn.IF((1, 2, 2)), nn.AvgPool2d(2),
                         nn.Conv2d(1, 3, 1, bias=False), snn.LI((3, 1, 1)))
    with torch.no_grad():
        net[0].layer.weight.fill_(2.0)
        net[3].layer.weight.fill_(1.0)
    c = E.measure(net, torch.ones(1, 1, 1, 2, 2))
    assert c.synapses[1].events.tolist() == [[4.0]] and c.synapses[1].ops.tolist() == [[12.0]]
    assert c.synapses[1].spike_input.tolist() == [True]


def test_docs_worked_example_matches_the_library():
    page = (ROOT / "docs" / "energy.md").read_text()
    snn_pj = E.energy(E.measure(hand_net(), SPIKES)).total_j / 1e-12
    ann_pj = E.energy(E.measure(hand_net("ann"), SPIKES.sum(0), kind="ann")).total_j / 1e-12
    assert re.search(rf"SNN total [ |]*\*\*{snn_pj:.1f} pJ\*\*", page)
    assert re.search(rf"ANN total [ |]*\*\*{ann_pj:.1f} pJ\*\*", page)
    for row in E.rate_table([784, 256, 10], T_values=(1, 4, 16)):
        assert f"| {row['T']} | {row['45nm']:.3f} | {row['45nm-int8']:.3f} |" in page


def test_direct_encoding_counts_macs_in_the_first_layer():
    from spikeflow.train import zoo

    torch.manual_seed(0)
    model = zoo.mlp(4, 2, [3], T=2, encoding="direct")
    x = torch.tensor([[1.0, 0.0, 2.0, 1.0]])  # whole numbers, yet a current: 3 non-zero inputs x 3 = 9 MACs a step
    c = E.measure(model, x)
    assert c.synapses[0].spike_input.tolist() == [False, False]
    assert c.per_inference()["macs"] == 18
    assert E.measure(zoo.mlp(4, 2, [3], T=2, encoding="rate"), x).synapses[0].spike_input.tolist() == [True, True]


def test_rate_table_model_is_the_measured_model():
    """The break-even table's closed form equals measuring an MLP whose every layer's input fires at the rate."""
    import math

    a = math.exp(-0.1)  # LIF decay at dt = 1 ms, tau = 10 ms
    l1, l2 = nn.Linear(3, 3, bias=False), nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        l1.weight.copy_(torch.full((3, 3), 1e-3) + 2 * torch.eye(3))  # hidden j copies input j's spikes
        l2.weight.fill_(0.5)
    net = snn.Sequential(l1, snn.LIF(3, tau_mem=10e-3, r=1 / (1 - a)), l2, snn.LI(2))
    x = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 1.0]]])  # rate 3 / 6
    c = E.measure(net, x)
    assert c.spike_rate() == pytest.approx(0.5)
    for tech in ("45nm", "45nm-int8"):
        t = E.TECHNOLOGIES[tech]
        assert E.energy(c, tech).total_j == pytest.approx(E._layer_energies([3, 3, 2], 2, 0.5, t, "snn"))
        ann = nn.Sequential(l1, nn.ReLU(), l2)
        assert E.energy(E.measure(ann, x[0], kind="ann"), tech).total_j == pytest.approx(
            E._layer_energies([3, 3, 2], 2, 0.0, t, "ann"))
    rate = E.break_even_rate([3, 3, 2], 2)
    assert E._layer_energies([3, 3, 2], 2, rate, E.TECH_45NM, "snn") == pytest.approx(
        E._layer_energies([3, 3, 2], 2, 0.0, E.TECH_45NM, "ann"))


def test_bad_arguments_are_named():
    net = hand_net()
    with pytest.raises(ConfigError, match="kind"):
        E.measure(net, SPIKES, kind="cnn")
    with pytest.raises(ConfigError, match="steps"):
        E.measure(net, SPIKES, steps=0)
    with pytest.raises(ConfigError, match="decision_steps"):
        E.measure(net, SPIKES).until([3])
    with pytest.raises(ConfigError, match="LinearLIF"):
        E.measure(snn.Sequential(snn.LinearLIF(3, 2)), SPIKES)


def test_synaptic_operations_equal_neurobench_effective_counts():
    """On binary spikes (no pooling) the model's ACs are NeuroBench's effective ACs; an ANN skipping zeros
    does NeuroBench's effective MACs."""
    from spikeflow.metrics import workload_metrics

    torch.manual_seed(0)
    net = snn.Sequential(nn.Linear(12, 16), snn.LIF(16, tau_mem=5e-3), nn.Linear(16, 4), snn.LI(4))
    with torch.no_grad():
        net[0].layer.weight.mul_(5)
        net[0].layer.weight[:, :3] = 0  # pruned inputs do no work
    x = (torch.rand(6, 5, 12) < 0.4).float()
    ops = workload_metrics(net, [x])["synaptic_operations"]
    c = E.measure(net, x).per_inference()
    assert c["acs"] == pytest.approx(ops["Effective_ACs"]) and ops["Effective_ACs"] > 0
    assert c["spikes"] > 0 and c["macs"] == ops["Effective_MACs"] == 0
    ann = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    xa = torch.rand(5, 12) * (torch.rand(5, 12) < 0.5)
    ops = workload_metrics(ann, [xa.unsqueeze(0)])["synaptic_operations"]
    assert E.energy(E.measure(ann, xa, kind="ann"), skip_zeros=True).macs == pytest.approx(ops["Effective_MACs"])


@pytest.mark.parametrize("tag, reg, seeds", [("ch16", 1, (0, 1, 2)), ("ch16-reg0.5", 0.5, range(5)),
                                            ("ch24-reg0.5", 0.5, range(5))])
def test_docs_wider_frontier_tables_match_the_committed_runs(tag, reg, seeds):
    """Each row of the conv 16-32 and 24-48 frontier tables in docs/energy.md is read from its committed run."""
    import json

    page = (ROOT / "docs" / "energy.md").read_text()
    results = ROOT / "benchmarks" / "results"
    for seed in seeds:
        run = json.loads((results / f"frontier-nmnist5k-2ann-{tag}-seed{seed}.json").read_text())
        acc = {p["name"]: 100 * p["accuracy"] for p in run["points"]}
        ann_after, ann_first = (acc[n] for n in run["comparison"]["ann"])
        full, early = run["comparison"]["rows"]
        verdict = "no"
        if run["comparison"]["met"]:
            verdict = "yes (full T)" if run["comparison"]["best"]["name"] == full["name"] else "yes (early exit)"
        row = (f"| {reg:g} | {seed} | {ann_after:.1f} % | {ann_first:.1f} % | {acc[full['name']]:.1f} % | "
               f"{acc[early['name']]:.1f} % | {full['accuracy_gap_points']:.1f} / {early['accuracy_gap_points']:.1f} | "
               f"{full['energy_ratio']:.3f} / {early['energy_ratio']:.3f} | "
               f"{full['synops_ratio']:.2f} / {early['synops_ratio']:.2f} | {verdict} |")
        assert row in page, row
