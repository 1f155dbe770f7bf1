"""Weight precision lost per layer: zeroed and clipped synapses and RMS error by hand, the lossy error, allow_lossy."""

import numpy as np
import pytest

from spikeflow.hardware import compile_network
from spikeflow.hardware.precision import MAX_ZEROED, PrecisionLossError
from tests.hardware.hw_nets import chain, dense, if_, recurrent_chain


def _layer(weights, n_out=1):
    """One IF layer (gain 1 at dt = 1 ms) with the given weight rows."""
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    graph = chain(w.shape[1], dense(w.shape[1], w.shape[0]), if_(w.shape[0], th=0.5))
    graph.nodes["linear"].weight = w
    return graph


def test_8bit_counts_by_hand():
    # Scale = 100 / 127: 0.3 is below half a step (0.394) and becomes 0; the zero weight is not a synapse.
    c = compile_network(_layer([100.0, 0.3, 0.3, 0.0, 50.0]), "loihi2", dt=1e-3, allow_lossy=True)
    p = c.precision[0]
    assert (p.synapses, p.zeroed, p.clipped) == (4, 2, 0)
    step = 100 / 127
    deq = np.array([127, 0, 0, 0, round(50 / step)]) * step
    want = np.linalg.norm(deq - [100, 0.3, 0.3, 0, 50]) / np.linalg.norm([100, 0.3, 0.3, 0, 50])
    assert p.weight_error == pytest.approx(want)
    assert p.zeroed_frac == 0.5 and p.lossy


def test_ternary_counts_by_hand():
    # TrueNorth ternary (Li & Liu): threshold 0.7 x mean|w| = 0.7 x 5.1 / 4 = 0.8925 zeroes 0.1; the scale is the
    # kept mean 5 / 3; 3 lies beyond 1.5 steps (2.5) and is clipped to one step.
    c = compile_network(_layer([3.0, 1.0, 1.0, 0.1]), "truenorth", dt=1e-3, allow_lossy=True)
    p = c.precision[0]
    assert (p.synapses, p.zeroed, p.clipped) == (4, 1, 1)
    s = 5 / 3
    want = np.sqrt(((3 - s) ** 2 + 2 * (1 - s) ** 2 + 0.1 ** 2) / (9 + 1 + 1 + 0.01))
    assert p.weight_error == pytest.approx(want)


def test_lossy_compile_is_a_one_line_error_naming_layer_and_figures():
    with pytest.raises(PrecisionLossError) as info:
        compile_network(_layer([3.0, 1.0, 1.0, 0.1]), "truenorth", dt=1e-3)
    msg = str(info.value)
    assert "\n" not in msg and info.value.layer == "if"
    assert "layer 'if': 1 of 4 synapses zeroed (25.0%), 1 clipped (25.0%), weight error 49.3% RMS" in msg
    assert "--allow-lossy" in msg and "IBM TrueNorth: 2-bit" in msg


def test_threshold_is_more_than_five_percent_zeroed():
    # 20 synapses, scale 100/127: one 0.3 zeroed is 5 % (allowed), two are 10 % (refused).
    ok = [100.0] + [50.0] * 18 + [0.3]
    assert compile_network(_layer(ok), "loihi2", dt=1e-3).precision[0].zeroed_frac == MAX_ZEROED
    with pytest.raises(PrecisionLossError, match=r"2 of 20 synapses zeroed \(10.0%\)"):
        compile_network(_layer([100.0] + [50.0] * 17 + [0.3, 0.3]), "loihi2", dt=1e-3)


def test_exact_weights_lose_nothing():
    p = compile_network(_layer([[1.0, -0.5], [0.25, 0.0]]), "loihi2", dt=1e-3).precision[0]
    # Scale 1/127: 0.5 and 0.25 are not multiples, but within half a step; none zeroed or clipped.
    assert (p.synapses, p.zeroed, p.clipped) == (3, 0, 0) and p.weight_error < 0.5 / 127


def test_recurrent_weights_are_counted():
    # The loop's 0.001 weights fall below half a step of the layer's scale (1/127): 4 of its 6 synapses zeroed.
    graph = recurrent_chain(np.eye(2), np.full((2, 2), 0.001), if_(2), (np.ones((1, 2)), if_(1)))
    with pytest.raises(PrecisionLossError, match=r"layer 'rec': 4 of 6 synapses zeroed"):
        compile_network(graph, "loihi", dt=1e-3)


def test_conv_kernel_counts_equal_its_dense_matrix():
    import nir

    from spikeflow.hardware.network import from_nir

    rng = np.random.default_rng(0)
    k = rng.normal(0, 1, (4, 2, 3, 3))
    k[0, 0, 0, 0] = 40.0  # sets the scale: small weights round to zero
    g = nir.NIRGraph.from_list(
        nir.Input(np.array([2, 6, 6])), nir.Conv2d(input_shape=(6, 6), weight=k, stride=1, padding=1, dilation=1,
                                                   groups=1, bias=np.zeros(4)),
        if_(4 * 36), nir.Output(np.array([4 * 36])), type_check=False)
    kern = compile_network(g, "loihi2", dt=1e-3, allow_lossy=True)
    dense_net = compile_network(from_nir(g, dt=1e-3, kernels=False), "loihi2", allow_lossy=True)
    assert kern.layers[0].weight is None  # stored as a kernel
    a, b = kern.precision[0], dense_net.precision[0]
    w = dense_net.float_net.layers[0].weight
    assert a.synapses == b.synapses == int((w != 0).sum())
    assert a.zeroed == b.zeroed > 0 and a.weight_error == pytest.approx(b.weight_error)
