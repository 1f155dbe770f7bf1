"""Self-recurrent layers on Loihi and Xylo: exact against float with representable weights, against a
hand-written integer loop, the loop's weights counted in fan-in and synapse memory, and chips without loops."""

import numpy as np
import pytest
import torch

from spikeflow.errors import HardwareLimitError
from spikeflow.hardware import compile_network, float_run, run_integer
from spikeflow.hardware.engine import run_aligned  # Loihi's layers answer one step later each: aligned to float
from tests.hardware.hw_nets import if_, lif, poisson, recurrent_chain


def _dyadic(rng, shape, step=1 / 64):
    """Weights k * step with |k| <= 127 and one entry at 127: the generic 8-bit scale is exactly ``step``."""
    k = rng.integers(-127, 128, shape)
    k.flat[0] = 127
    return k * step


def _signs(rng, shape, w=0.375):
    """Weights in {-w, 0, +w}: exact in any weight format (each is the layer's largest integer or 0)."""
    return w * rng.integers(-1, 2, shape)


def _net(seed, n_in, n_hid, n_out, weights=_dyadic, neuron=if_):
    rng = np.random.default_rng(seed)
    w_in, w_rec, w_out = weights(rng, (n_hid, n_in)), weights(rng, (n_hid, n_hid)), weights(rng, (n_out, n_hid))
    return recurrent_chain(w_in, w_rec, neuron(n_hid), (w_out, neuron(n_out))), w_in, w_rec, w_out


def _equals_float(compiled, graph, x):
    res = run_aligned(compiled, x)
    f_out, f_rec = float_run(compiled.float_net, x)
    assert f_rec[0].sum() > 30 and f_out.sum() > 5  # active, so equality is not about silence
    np.testing.assert_array_equal(res.layer_spikes[0], f_rec[0])
    np.testing.assert_array_equal(res.output, f_out)
    # The loop matters: without it the float network spikes differently.
    graph.nodes["loop"].weight = np.zeros_like(graph.nodes["loop"].weight)
    _, ff = float_run(compile_network(graph, compiled.profile, dt=1e-3, reset="to_reset").float_net, x)
    assert (ff[0] != f_rec[0]).any()


@pytest.mark.parametrize("chip", ["loihi", "xylo"])
def test_recurrent_integer_run_equals_float(chip):
    # IF neurons (no decay), reset to 0, weights in {-0.375, 0, 0.375}: every membrane value is a multiple of
    # 0.375 in float and of the weight integer on the chip, and the threshold 1.0 lies between two multiples.
    graph, _, w_rec, _ = _net(1, 8, 12, 4, weights=_signs)
    compiled = compile_network(graph, chip, dt=1e-3, reset="to_reset")
    layer = compiled.layers[0]
    np.testing.assert_array_equal(np.sign(layer.rec_weight), np.sign(w_rec))
    assert len(np.unique(np.abs(layer.rec_weight[w_rec != 0]))) == 1  # one integer for 0.375, as the inputs
    assert compiled.layers[1].rec_weight is None
    _equals_float(compiled, graph, poisson(2, 40, 3, 8, p=0.3))


@pytest.mark.parametrize("chip", ["loihi2", "xylo"])
def test_recurrent_integer_run_equals_float_with_8bit_grid_weights(chip):
    # Weights k / 64 (|k| <= 127, one at 127) sit on the generic 8-bit grid: the loop's integers are the k.
    graph, _, w_rec, _ = _net(1, 8, 12, 4)
    compiled = compile_network(graph, chip, dt=1e-3, reset="to_reset")
    np.testing.assert_array_equal(compiled.layers[0].rec_weight, np.rint(w_rec * 64))
    _equals_float(compiled, graph, poisson(2, 40, 3, 8, p=0.3))


def _hand_loop(L, x):
    """Plain-Python integer LIF with a recurrent weight: leak, add W x_t + R s_{t-1}, clamp, fire, reset to 0."""
    T, B, _ = x.shape
    out = np.zeros((T, B, L.n_out), dtype=np.int64)
    for b in range(B):
        v, prev = [0] * L.n_out, [0] * L.n_out
        for t in range(T):
            for j in range(L.n_out):
                acc = sum(int(L.weight[j, i]) * int(x[t, b, i]) for i in range(L.n_in))
                acc += sum(int(L.rec_weight[j, i]) * prev[i] for i in range(L.n_out))
                d = v[j]
                if L.decay == "multiplicative":
                    mag = abs(d) * int(L.decay_value[j]) // (1 << L.decay_bits)
                    d = mag if d >= 0 else -mag
                else:  # shift
                    d = d - (d >> int(L.decay_value[j]))
                v[j] = min(max(d + (acc << L.weight_shift), L.state_min), L.state_max)
            prev = [int(v[j] > L.threshold[j]) for j in range(L.n_out)]
            v = [0 if prev[j] else v[j] for j in range(L.n_out)]
            out[t, b] = prev
    return out


@pytest.mark.parametrize("chip", ["loihi2", "xylo"])  # generic integer arithmetic (12-bit multiply, bit shift)
def test_recurrent_lif_equals_hand_written_integer_loop(chip):
    rng = np.random.default_rng(5)
    w_in, w_rec = rng.normal(0, 1.0, (10, 6)), rng.normal(0, 0.6, (10, 10))  # x gain r(1 - alpha) = 0.95
    graph = recurrent_chain(w_in, w_rec, lif(10, tau=10e-3, th=1.0, r=10.0), (rng.normal(0, 1, (3, 10)), lif(3)))
    compiled = compile_network(graph, chip, dt=1e-3, reset="to_reset")
    L = compiled.layers[0]
    assert L.decay == {"loihi2": "multiplicative", "xylo": "shift"}[chip] and L.reset == "to_reset"
    x = poisson(6, 50, 2, 6, p=0.3).astype(int)
    res = run_integer(compiled, x)
    hand = _hand_loop(L, x)
    assert hand.sum() > 20
    np.testing.assert_array_equal(res.layer_spikes[0], hand)


def test_exported_spikeflow_recurrent_layer_runs_exactly_on_loihi():
    from spikeflow import nn as snn
    from spikeflow.ir import to_nir

    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    model = snn.Sequential(torch.nn.Linear(5, 7, bias=False), snn.RIF(7, reset="to_reset"))
    with torch.no_grad():
        model[0].layer.weight.copy_(torch.as_tensor(_signs(rng, (7, 5), 0.75)))
        model[1].recurrent.weight.copy_(torch.as_tensor(_signs(rng, (7, 7), 0.75)))
    graph = to_nir(model, dt=1e-3, input_shape=(5,))
    compiled = compile_network(graph, "loihi")
    assert compiled.float_net.layers[0].rec_synapse.endswith("recurrent")
    x = poisson(4, 30, 2, 5, p=0.4)
    with torch.no_grad():
        torch_out = model(torch.as_tensor(x, dtype=torch.float32)).numpy()
    res = run_aligned(compiled, x)
    assert torch_out.sum() > 10
    np.testing.assert_array_equal(res.output, torch_out)


def test_recurrent_weights_count_in_fan_in_and_synapse_memory():
    rng = np.random.default_rng(0)
    graph = recurrent_chain(_dyadic(rng, (60, 8)), _dyadic(rng, (60, 60)), if_(60), (_dyadic(rng, (2, 60)), if_(2)))
    with pytest.raises(HardwareLimitError, match=r"'max_fan_in'.*fan-in 68"):  # 8 inputs + 60 recurrent > 63
        compile_network(graph, "xylo", dt=1e-3)
    lm = compile_network(graph, "loihi", dt=1e-3).mapping.layers[0]
    assert lm.syn_per_core.shape == (1, 8 + 60)  # sources: inputs, then the layer's own neurons
    assert int(lm.synapses_per_core[0]) == int((graph.nodes["fc"].weight != 0).sum() +
                                                (graph.nodes["loop"].weight != 0).sum())


def test_chips_without_recurrence_name_the_layer():
    rng = np.random.default_rng(0)
    graph = recurrent_chain(_dyadic(rng, (4, 4)), _dyadic(rng, (4, 4)), if_(4), (_dyadic(rng, (2, 4)), if_(2)))
    with pytest.raises(HardwareLimitError, match=r"IBM TrueNorth: layer 'rec' exceeds limit 'recurrent'") as info:
        compile_network(graph, "truenorth", dt=1e-3)
    assert "\n" not in str(info.value)
    loop_on_readout = recurrent_chain(_dyadic(rng, (4, 4)), _dyadic(rng, (4, 4)), if_(4))
    with pytest.raises(HardwareLimitError, match=r"layer 'rec' exceeds limit 'recurrent'.*readout"):
        compile_network(loop_on_readout, "xylo", dt=1e-3)


@pytest.mark.parametrize("chip", ["loihi2", "spinnaker2"])
def test_other_chips_with_any_recurrence_map_the_loop(chip):
    graph, _, w_rec, _ = _net(2, 8, 12, 4)
    compiled = compile_network(graph, chip, dt=1e-3, reset="to_reset")
    L = compiled.layers[0]
    # Same scale as the layer's input weights: integers proportional to the float loop weights.
    step = L.scale * (1 << L.weight_shift)
    np.testing.assert_allclose(L.rec_weight * step, w_rec, atol=step / 2 + 1e-12)
    assert compiled.mapping.layers[0].syn_per_core.shape[1] == 8 + 12  # inputs, then the layer's own neurons
