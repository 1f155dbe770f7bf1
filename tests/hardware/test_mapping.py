"""Decay representations, core mapping and mesh placement against hand values."""

import nir
import numpy as np

from spikeflow.hardware import compile_network, float_run, get_profile, run_integer
from spikeflow.hardware.engine import leak
from spikeflow.hardware.mapping import place, snake_position
from tests.hardware.hw_nets import if_, poisson


def _one_neuron_layer(chip, tau):
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([1])), nir.Linear(np.ones((1, 1))),
        nir.LIF(tau=np.array([tau]), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1)),
        nir.Output(np.array([1])), type_check=False)
    return compile_network(graph, chip, dt=1e-3).layers[0]


def test_multiplicative_decay_is_12_bit_rounded_toward_zero():
    layer = _one_neuron_layer("loihi", 20e-3)
    assert layer.decay_value[0] == round(np.exp(-1 / 20) * 4096) == 3896
    v = np.array([[1000, -1000]])
    layer.v_leak = np.zeros(2, dtype=np.int64)
    layer.decay_value = np.array([3896, 3896])
    np.testing.assert_array_equal(leak(layer, v), [[951, -951]])  # 1000 * 3896 / 4096 = 951.17


def test_shift_decay_is_the_nearest_power_of_two():
    layer = _one_neuron_layer("xylo", -1e-3 / np.log(1 - 2.0 ** -4))  # alpha = 1 - 1/16 exactly
    assert layer.decay_value[0] == 4
    np.testing.assert_array_equal(leak(layer, np.array([[1000]])), [[1000 - (1000 >> 4)]])


def test_linear_leak_steps_towards_rest():
    layer = _one_neuron_layer("truenorth", 20e-3)
    step = int(layer.decay_value[0])
    assert step == round(layer.threshold[0] * (1 - np.exp(-1 / 20)))
    assert step >= 1
    np.testing.assert_array_equal(leak(layer, np.array([[step + 5, -step - 5, step]])), [[5, -5, 0]])


def test_snake_placement_keeps_consecutive_cores_adjacent():
    pos = place(40, get_profile("loihi"))
    assert [tuple(p) for p in pos[:3]] == [(0, 0), (0, 1), (0, 2)]
    assert tuple(pos[16]) == (1, 15) and snake_position(17, 16) == (1, 14)
    assert np.all(np.abs(np.diff(pos, axis=0)).sum(axis=1) == 1)


def test_layers_split_over_cores_by_synapse_memory():
    # dense weights that no 8-bit rounding zeroes: every neuron has fan-in 300
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([300])), nir.Linear(rng.choice([-1, 1], (600, 300)) * rng.uniform(0.5, 1, (600, 300))),
        if_(600),
        nir.Output(np.array([600])), type_check=False)
    c = compile_network(graph, "loihi", dt=1e-3)  # 65,536 synapses per core / 300 inputs -> 218 neurons per core
    assert c.cores_used == 3 and c.mapping.layers[0].neurons_per_core.tolist() == [218, 218, 164]
    assert c.mapping.layers[0].axons_per_core.tolist() == [300, 300, 300]
    c2 = compile_network(graph, "spinnaker2", dt=1e-3)  # 32768 synapses per core / 300 -> 109 neurons per core
    assert c2.mapping.layers[0].neurons_per_core.tolist() == [109] * 5 + [600 - 5 * 109]


def test_conv_network_runs_on_speck_bit_exact_when_weights_are_representable():
    # Weights k/128 with max 127/128: the scale is 1/128, 8-bit quantisation and the threshold (128 units)
    # are exact and float sums of k/128 are exact, so float and integer IF layers must spike identically.
    rng = np.random.default_rng(1)
    w = rng.integers(-40, 90, (4, 2, 3, 3)) / 128
    w[0, 0, 0, 0] = 127 / 128
    conv = nir.Conv2d(input_shape=(8, 8), weight=w, stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(4))
    graph = nir.NIRGraph.from_list(nir.Input(np.array([2, 8, 8])), conv, if_(4 * 6 * 6, th=1.0),
                                   nir.Output(np.array([4, 6, 6])), type_check=False)
    c = compile_network(graph, "speck", dt=1e-3, reset="subtract")
    assert c.float_net.layers[0].conv.kernel == (3, 3) and c.layers[0].n_in == 128
    # conv neighbours share inputs: each of the 144 neurons reads 18 of the 128 inputs
    assert c.layers[0].weight is None  # stored as a kernel
    assert int(c.layers[0].syn.fan_in().max()) == 18
    x = poisson(2, 40, 3, 128, p=0.2)
    _, fl = float_run(c.float_net, x)
    res = run_integer(c, x)
    assert fl[0].sum() > 50
    np.testing.assert_array_equal(fl[0], res.layer_spikes[0])
    # one synaptic op per (input event, nonzero synapse of that input)
    w = c.layers[0].syn.dense()
    expected = sum(int((w[:, x[t, b] > 0] != 0).sum()) for t in range(40) for b in range(3))
    assert res.synops.sum() == expected
