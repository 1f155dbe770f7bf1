"""Integer execution: bit-accurate against a scalar event-driven reference, overflow, and float agreement."""

import dataclasses
import warnings

import numpy as np
import pytest

from spikeflow.errors import InputError, ShapeError
from spikeflow.hardware import QuantizationWarning, compile_network, float_run, get_profile, run_integer
from spikeflow.hardware.engine import run_aligned
from tests.hardware.hw_nets import chain, dense, if_, poisson, random_net


def scalar_reference(layers, x):
    """Plain-Python event-driven integer model: per spike, add one weight column; then leak, clamp, fire."""
    T, B, _ = x.shape
    cur = [[[int(v) for v in x[t, b]] for b in range(B)] for t in range(T)]
    for L in layers:
        lo, hi = L.state_min, L.state_max
        out = []
        v = [[int(L.v_leak[j]) for j in range(L.n_out)] for _ in range(B)]
        for t in range(T):
            row = []
            for b in range(B):
                acc = [0] * L.n_out
                for i, c in enumerate(cur[t][b]):
                    for _ in range(c):  # one event per count
                        for j in range(L.n_out):
                            acc[j] += int(L.weight[j, i]) << L.weight_shift
                z = []
                for j in range(L.n_out):
                    d = v[b][j] - int(L.v_leak[j])
                    if L.decay == "multiplicative":
                        mag = (abs(d) * int(L.decay_value[j])) // (1 << L.decay_bits)
                        d = mag if d >= 0 else -mag
                    elif L.decay == "shift":
                        d = d - (d >> int(L.decay_value[j]))
                    nv = int(L.v_leak[j]) + d + acc[j] + int(L.bias[j])
                    nv = min(max(nv, lo), hi)
                    s = 1 if (L.spiking and nv > int(L.threshold[j])) else 0
                    if s and L.reset == "subtract":
                        nv -= int(L.threshold[j])
                    elif s and L.reset == "to_reset":
                        nv = int(L.v_reset[j])
                    v[b][j] = nv
                    z.append(s if L.spiking else nv)
                row.append(z)
            out.append(row)
        cur = out
    return np.array(cur)


# The generic integer model (Loihi itself computes as Lava does: tests/hardware/test_loihi.py).
@pytest.mark.parametrize("chip,reset", [("loihi2", "subtract"), ("loihi2", "to_reset"), ("xylo", "subtract")])
def test_bit_accurate_against_scalar_reference(chip, reset):
    graph = random_net(3, n_in=12, hidden=10, n_out=4, sd=2.0)
    compiled = compile_network(graph, chip, dt=1e-3, reset=reset)
    x = poisson(4, 25, 2, 12, p=0.3)
    x[5] *= 3  # multi-event counts in one step
    res = run_integer(compiled, x)
    np.testing.assert_array_equal(res.output, scalar_reference(compiled.layers, x.astype(int)))


def test_saturation_and_wrap_by_hand():
    from spikeflow.hardware.engine import int_step

    graph = chain(1, dense(1, 1, w=1.0), if_(1, th=1e6))
    profile = dataclasses.replace(get_profile("loihi2"), state_bits=40, state_frac_bits=0)
    layer = compile_network(graph, profile, dt=1e-3).layers[0]
    layer.state_min, layer.state_max = -2048, 2047  # a 12-bit register
    layer.threshold[:] = 10 ** 9  # never fires: the membrane only grows by 127 per step
    for mode, expected in (("saturate", [min(127 * k, 2047) for k in range(1, 21)]),
                           ("wrap", [((127 * k + 2048) % 4096) - 2048 for k in range(1, 21)])):
        layer.overflow = mode
        v = np.zeros((1, 1), dtype=np.int64)
        seen = []
        for _ in range(20):
            _, v = int_step(layer, v, np.array([[127]]))
            seen.append(int(v[0, 0]))
        assert seen == expected
    assert dataclasses.replace(profile, state_bits=12).state_range == (-2048, 2047)


def spike_agreement(compiled, x):
    _, fl = float_run(compiled.float_net, x)
    res = run_aligned(compiled, x)  # Loihi: each layer a step later; aligned with the float steps
    pairs = [(f, i) for f, i, L in zip(fl, res.layer_spikes, compiled.layers) if L.spiking]
    same = sum(int((f == i).sum()) for f, i in pairs)
    total = sum(f.size for f, _ in pairs)
    return same / total, sum(float(f.sum()) for f, _ in pairs)


@pytest.mark.parametrize("chip", ["loihi", "loihi2", "spinnaker2", "xylo"])
def test_integer_matches_float_spikes(chip):
    # Xylo decays by bit shifts: tau chosen so that exp(-dt/tau) = 1 - 2**-4 is exact there.
    tau = -1e-3 / np.log(1 - 2.0 ** -4) if chip == "xylo" else 20e-3
    n_in = 16 if chip == "xylo" else 64
    agreements = []
    for seed in range(2):
        compiled = compile_network(random_net(seed, n_in=n_in, hidden=48, n_out=8, sd=1.5, tau=tau), chip, dt=1e-3)
        agree, n_spikes = spike_agreement(compiled, poisson(seed + 10, 60, 4, n_in, p=0.2))
        assert n_spikes > 50  # the nets are active, so agreement is not trivially about silence
        agreements.append(agree)
    assert min(agreements) >= 0.99, agreements


def test_quantisation_that_silences_a_layer_warns():
    # One large weight (on an input that never fires) sets the scale; the small weights round to zero.
    graph = chain(3, dense(3, 1), if_(1, th=0.5))
    graph.nodes["linear"].weight = np.array([[1000.0, 0.3, 0.3]])
    x = np.zeros((10, 2, 3))
    x[:, :, 1:] = 1
    _, fl = float_run(compile_network(graph, "loihi", dt=1e-3, allow_lossy=True).float_net, x)
    assert fl[0].sum() > 0
    with pytest.warns(QuantizationWarning, match="silences layer 'if'"):  # lossy (2 of 3 synapses zeroed)
        compile_network(graph, "loihi", dt=1e-3, calibration=x, allow_lossy=True)
    graph.nodes["linear"].weight = np.array([[1.0, 0.3, 0.3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        compile_network(graph, "loihi", dt=1e-3, calibration=x)


def test_bad_input_is_named():
    compiled = compile_network(random_net(0, n_in=8, hidden=4, n_out=2), "loihi", dt=1e-3)
    with pytest.raises(InputError, match="spike counts"):
        run_integer(compiled, np.full((3, 1, 8), 0.5))
    with pytest.raises(ShapeError, match="8"):
        run_integer(compiled, np.zeros((3, 1, 9)))


def test_runtime_float_reference_equals_neuron_reference_steps():
    from spikeflow.hardware.network import float_reference, from_nir

    net = from_nir(random_net(5, n_in=16, hidden=12, n_out=4, sd=2.0), dt=1e-3, reset="subtract")
    x = poisson(6, 40, 3, 16)
    out_rt, rec_rt = float_run(net, x)
    out_ref, rec_ref = float_reference(net, x)
    assert rec_rt[0].sum() > 0
    for a, b in zip(rec_rt, rec_ref):
        np.testing.assert_array_equal(a, b)
