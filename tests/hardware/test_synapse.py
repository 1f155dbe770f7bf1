"""Convolutions stored as kernels: equal to the dense matrices they replace, bit for bit, in far less memory."""

import dataclasses
import tracemalloc

import nir
import numpy as np
import pytest

from spikeflow.errors import HardwareLimitError
from spikeflow.hardware import ConvSynapse, DenseSynapse, compile_network, float_run, get_profile, run_integer
from spikeflow.hardware.network import float_reference, from_nir
from tests.hardware.hw_nets import poisson


def hand_matrix(kernel, in_shape, stride, padding, dilation, groups):
    """The convolution's dense matrix from its definition, one synapse at a time."""
    c, h, w = in_shape
    co_n, cig, kh, kw = kernel.shape
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    m = np.zeros((co_n * oh * ow, c * h * w))
    for co in range(co_n):
        g = co // (co_n // groups)
        for oy in range(oh):
            for ox in range(ow):
                for j in range(cig):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride - padding + ky * dilation, ox * stride - padding + kx * dilation
                            if 0 <= iy < h and 0 <= ix < w:
                                m[(co * oh + oy) * ow + ox, ((g * cig + j) * h + iy) * w + ix] = kernel[co, j, ky, kx]
    return m, (co_n, oh, ow)


GEOMETRIES = [  # (in_shape, c_out, k, stride, padding, dilation, groups)
    ((2, 9, 7), 4, 3, 2, 1, 1, 1), ((4, 8, 8), 6, 3, 1, 0, 1, 2), ((3, 10, 10), 5, 2, 3, 2, 2, 1),
    ((2, 5, 5), 2, 3, 1, 4, 1, 1), ((1, 6, 6), 3, 6, 1, 0, 1, 1),
]


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_conv_synapse_equals_its_matrix_built_by_hand(geom):
    in_shape, co, k, s, p, d, g = geom
    rng = np.random.default_rng(0)
    kernel = rng.integers(-3, 4, (co, in_shape[0] // g, k, k)).astype(np.float64)
    m, out_shape = hand_matrix(kernel, in_shape, s, p, d, g)
    syn = ConvSynapse(kernel, in_shape, out_shape, (s, s), (p, p), (d, d), g)
    np.testing.assert_array_equal(syn.dense(), m)
    x = rng.integers(0, 3, (3, m.shape[1])).astype(np.float64)
    np.testing.assert_array_equal(syn.apply(x), x @ m.T)
    np.testing.assert_array_equal(syn.fan_in(), (m != 0).sum(axis=1))
    np.testing.assert_array_equal(syn.fan_out(), (m != 0).sum(axis=0))
    assert syn.nnz() == int((m != 0).sum())
    for o, row in enumerate(syn.rows()):
        assert sorted(row[row >= 0].tolist()) == np.flatnonzero(m[o]).tolist()
    vals, counts = syn.values()  # each kernel weight once per output that uses it
    assert (np.abs(vals) * counts).sum() == np.abs(m).sum() and ((vals != 0) * counts).sum() == (m != 0).sum()
    assert syn.macs() == out_shape[0] * out_shape[1] * out_shape[2] * in_shape[0] // g * k * k
    assert syn.nbytes == kernel.nbytes


def _if(shape, th=0.93):  # thresholds off round sums of pooled spikes: float ties would depend on summation order
    return nir.IF(r=np.full(shape, 1e3), v_threshold=np.full(shape, th))


def _lif(shape):
    return nir.LIF(tau=np.full(shape, 20e-3), r=np.full(shape, 1e3 / (1 - np.exp(-1 / 20))), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, 0.93))


def _conv(rng, c_in, c_out, hw, k, s=1, p=0, d=1, g=1, mean=0.2):
    return nir.Conv2d(input_shape=(hw, hw), weight=rng.normal(mean, 0.4, (c_out, c_in // g, k, k)), stride=s,
                      padding=p, dilation=d, groups=g, bias=rng.normal(0, 0.05, c_out))


def _pool(k, s, kind=nir.SumPool2d):
    return kind(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([0, 0]))


def conv_nets(neuron, seed=0):
    """Small conv nets: strides, padding, channels, groups, dilation, pooling before and after a conv, a linear end."""
    rng = np.random.default_rng(seed)
    n = neuron
    return {
        "stride-padding": [nir.Input(np.array([2, 11, 11])), _conv(rng, 2, 4, 11, 3, 2, 1), n((4, 6, 6)),
                           _conv(rng, 4, 3, 6, 3, 1, 1, mean=0.1), n((3, 6, 6))],
        "conv-pool-conv-flatten-linear": [
            nir.Input(np.array([2, 12, 12])), _conv(rng, 2, 4, 12, 3, 1, 1), n((4, 12, 12)), _pool(2, 2),
            _conv(rng, 4, 6, 6, 3, 1, 0, mean=0.1), n((6, 4, 4)), nir.Flatten(input_type=None, start_dim=0),
            nir.Linear(rng.normal(0.05, 0.3, (5, 96))), n((5,))],
        "conv+pool-groups-avgpool": [
            nir.Input(np.array([2, 13, 13])), _conv(rng, 2, 4, 13, 3, 1, 1), _pool(2, 2), n((4, 6, 6)),
            _conv(rng, 4, 4, 6, 3, 1, 1, g=2), n((4, 6, 6)), _pool(3, 3, nir.AvgPool2d), n((4, 2, 2))],
        "pool+dilated-conv": [nir.Input(np.array([3, 11, 11])), _pool(3, 2), _conv(rng, 3, 4, 5, 2, 1, 0, d=2),
                              n((4, 3, 3))],
        "pool+padded-conv": [nir.Input(np.array([2, 12, 12])), _conv(rng, 2, 3, 12, 3, 1, 1), n((3, 12, 12)),
                             _pool(2, 2), _conv(rng, 3, 4, 6, 3, 1, 1, mean=0.1), n((4, 6, 6))],
        "overlapping-pool+padded-conv (dense)": [
            nir.Input(np.array([2, 11, 11])), _conv(rng, 2, 3, 11, 3), n((3, 9, 9)), _pool(3, 2),
            _conv(rng, 3, 2, 4, 3, 1, 1, mean=0.1), n((2, 4, 4))],
    }


def _graph(nodes):
    return nir.NIRGraph.from_list(*nodes, nir.Output(np.array(nodes[-1].output_type["output"])), type_check=False)


def _small_loihi():
    # Small cores so the greedy mapping splits conv layers over several cores by axons and synapse memory.
    return dataclasses.replace(get_profile("loihi"), neurons_per_core=40, axons_per_core=200, synapses_per_core=3000)


def _assert_same(ck, cd, x):
    """Kernel-path and dense-path compilations agree on every integer, mapping figure, spike and count."""
    assert ck.cores_used == cd.cores_used
    for qk, qd, mk, md in zip(ck.layers, cd.layers, ck.mapping.layers, cd.mapping.layers):
        np.testing.assert_array_equal(qk.syn.dense(), qd.weight)
        for f in ("bias", "threshold", "v_reset", "v_leak", "decay_value"):
            np.testing.assert_array_equal(getattr(qk, f), getattr(qd, f))
        # composed kernels (pooling folded in) sum in another order than the matrix product: ulps apart
        assert qk.scale == pytest.approx(qd.scale, rel=1e-12)
        for f in ("core_of", "cores", "syn_per_core", "axons_per_core", "synapses_per_core", "neurons_per_core",
                  "src_hops", "src_packets", "src_local", "src_max_dist", "dist"):
            np.testing.assert_array_equal(getattr(mk, f), getattr(md, f))
    rk, rd = run_integer(ck, x), run_integer(cd, x)
    for a, b in zip(rk.layer_spikes, rd.layer_spikes):
        np.testing.assert_array_equal(a, b)
    for f in ("output", "synops", "updates_active", "updates_inactive", "spikes", "packets_local", "hops",
              "max_route"):
        np.testing.assert_array_equal(getattr(rk, f), getattr(rd, f))
    return rk


@pytest.mark.parametrize("name", list(conv_nets(_if)))
@pytest.mark.parametrize("chip", ["loihi-small", "speck", "truenorth", "spinnaker2"])
def test_kernel_path_equals_dense_path_bit_for_bit(name, chip):
    neuron = _if if chip in ("speck", "truenorth") else _lif
    nodes = conv_nets(neuron)[name]
    if chip == "speck" and any(isinstance(nd, nir.Linear) for nd in nodes):
        pytest.skip("Speck has no linear synapses")
    profile = _small_loihi() if chip == "loihi-small" else get_profile(chip)
    if chip == "truenorth":  # one core per layer keeps every neuron's spikes on one core (fan_out_cores = 1)
        profile = dataclasses.replace(profile, axons_per_core=None, neurons_per_core=1024)
    graph = _graph(nodes)
    reset = "to_reset" if chip == "loihi-small" else "subtract"  # Loihi resets v to 0 (Lava's arithmetic)
    kernel_net, dense_net = from_nir(graph, dt=1e-3, reset=reset), from_nir(graph, dt=1e-3, reset=reset,
                                                                             kernels=False)
    assert any(isinstance(L.syn, ConvSynapse) for L in kernel_net.layers)
    # a pooled map padded again for the next conv stays a kernel where the padding only covers the edge
    if "padded" in name:
        assert isinstance(kernel_net.layers[-1].syn, DenseSynapse if "dense" in name else ConvSynapse)
    assert all(isinstance(L.syn, DenseSynapse) for L in dense_net.layers)
    lossy = chip == "truenorth"  # ternary weights zero many synapses; both forms must lose the same ones
    ck, cd = compile_network(kernel_net, profile, allow_lossy=lossy), compile_network(dense_net, profile,
                                                                                       allow_lossy=lossy)
    assert [p.zeroed for p in ck.precision] == [p.zeroed for p in cd.precision]
    x = poisson(1, 12, 2, kernel_net.n_in, p=0.3)
    res = _assert_same(ck, cd, x)
    assert sum(int(s.sum()) for s in res.layer_spikes) > 20  # active, so equality is not about silence
    if chip == "loihi-small":
        assert max(len(m.cores) for m in ck.mapping.layers) > 1
    # the float references of both forms agree as well
    for a, b in zip(float_reference(kernel_net, x)[1], float_reference(dense_net, x)[1]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_kernel_layer_matches_float_run_where_weights_are_exact():
    # Kernel weights k/128 (max 127/128): 8-bit quantisation is exact, so the integer kernel path spikes as the
    # float network does, stride and padding included.
    rng = np.random.default_rng(3)
    w = rng.integers(-30, 90, (3, 2, 3, 3)) / 128
    w[0, 0, 0, 0] = 127 / 128
    conv = nir.Conv2d(input_shape=(9, 9), weight=w, stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(3))
    c = compile_network(_graph([nir.Input(np.array([2, 9, 9])), conv, _if((3, 5, 5), th=1.0)]), "speck", dt=1e-3,
                        reset="subtract")
    assert c.layers[0].weight is None and isinstance(c.layers[0].syn, ConvSynapse)
    x = poisson(5, 30, 2, 162, p=0.25)
    _, fl = float_run(c.float_net, x)
    assert fl[0].sum() > 50
    np.testing.assert_array_equal(fl[0], run_integer(c, x).layer_spikes[0])


def speck_128(seed=0):
    """2 x 128 x 128 DVS input -> conv 2-8 k3 s2 p1 -> conv 8-16 k3 s2 p1 -> conv 16-32 k3 s2 p1 -> sumpool 2 +
    conv 32-10 k8, IF neurons (the benchmark's Speck-sized network)."""
    rng = np.random.default_rng(seed)
    return _graph([nir.Input(np.array([2, 128, 128])), _conv(rng, 2, 8, 128, 3, 2, 1), _if((8, 64, 64)),
                   _conv(rng, 8, 16, 64, 3, 2, 1), _if((16, 32, 32)), _conv(rng, 16, 32, 32, 3, 2, 1),
                   _if((32, 16, 16)), _pool(2, 2), _conv(rng, 32, 10, 8, 8), _if((10, 1, 1))])


def test_speck_sized_dvs_net_compiles_and_runs_in_bounded_memory():
    graph = speck_128()
    tracemalloc.start()
    c = compile_network(graph, "speck", dt=1e-3, reset="subtract")
    compile_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    x = poisson(0, 3, 1, 2 * 128 * 128, p=0.05)
    res = run_integer(c, x)
    run_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Dense matrices would take 8 x (32768^2 + 16384 x 32768 + 8192 x 16384 + 10 x 8192) bytes = 14 GB.
    assert sum(q.syn.nbytes for q in c.layers) < 800_000
    assert compile_peak < 200e6 and run_peak < 200e6, (compile_peak, run_peak)
    assert c.cores_used == 4 and [q.n_out for q in c.layers] == [8 * 64 * 64, 16 * 32 * 32, 32 * 16 * 16, 10]
    # first layer: every input event reaches its 3x3 window in 8 channels (4 taps at stride 2, less at the border)
    assert int(c.layers[0].syn.fan_in().max()) == 18 and res.output.shape == (3, 1, 10)
    assert res.synops[:, :, 0].sum() == sum(int(c.layers[0].syn.fan_out()[x[t, 0] > 0].sum()) for t in range(3))


def test_fan_in_errors_name_the_conv_layer():
    rng = np.random.default_rng(0)
    big = _graph([nir.Input(np.array([64, 9, 9])), _conv(rng, 64, 2, 9, 9), _lif((2, 1, 1))])  # fan-in 64 x 81
    with pytest.raises(HardwareLimitError, match=r"layer 'lif' exceeds limit 'axons_per_core' \(needs fan-in 5\d\d\d"):
        compile_network(big, "loihi", dt=1e-3)
    tau = -1e-3 / np.log(1 - 2.0 ** -4)
    lif = [nir.LIF(tau=np.full(s, tau), r=np.ones(s), v_leak=np.zeros(s), v_threshold=np.ones(s))
           for s in ((8, 4, 4), (8, 4, 4), (4,))]
    xylo = _graph([nir.Input(np.array([1, 4, 4])), _conv(rng, 1, 8, 4, 3, 1, 1), lif[0], _conv(rng, 8, 8, 4, 3, 1, 1),
                   lif[1], nir.Flatten(input_type=None, start_dim=0), nir.Linear(rng.normal(0, 1, (4, 128))), lif[2]])
    with pytest.raises(HardwareLimitError, match=r"layer 'lif_1' exceeds limit 'max_fan_in' \(needs fan-in 72"):
        compile_network(xylo, "xylo", dt=1e-3)


def test_wide_chain_into_a_readout_folds_in_reverse_mode_to_the_same_matrix(monkeypatch):
    import spikeflow.hardware.network as network

    rng = np.random.default_rng(4)
    nodes = [nir.Input(np.array([3, 8, 8])), _conv(rng, 3, 4, 8, 3, 1, 1), _lif((4, 8, 8)), _pool(2, 2),
             nir.Flatten(input_type=None, start_dim=0), nir.Affine(rng.normal(0, 1, (5, 64)), rng.normal(0, 1, 5)),
             _lif((5,))]
    graph = _graph(nodes)
    forward = from_nir(graph, dt=1e-3).layers[1]
    monkeypatch.setattr(network, "REVERSE_FOLD_MIN", 16)
    reverse = from_nir(graph, dt=1e-3).layers[1]
    assert reverse.weight.shape == (5, 256)
    np.testing.assert_array_equal(reverse.weight, forward.weight)
    np.testing.assert_array_equal(reverse.bias, forward.bias)


def test_compile_report_reads_fan_in_and_zero_weights_from_the_kernel():
    from spikeflow.commands.hw import compile_report

    c = compile_network(_graph(conv_nets(_if)["stride-padding"]), "speck", dt=1e-3)
    rep = compile_report(c)["layers"]
    for L, q in zip(rep, c.layers):
        w = q.syn.dense()
        assert L["fan_in_max"] == int((w != 0).sum(axis=1).max()) and L["zero_weights"] == float((w == 0).mean())
    assert rep[0]["fan_in_max"] == 18  # 2 channels x 3 x 3


def test_per_position_gain_makes_a_small_conv_dense_and_a_large_one_an_error(monkeypatch):
    import spikeflow.hardware.synapse as synapse
    from spikeflow.errors import NIRError

    rng = np.random.default_rng(5)
    r = np.full((2, 4, 4), 1e3)
    r[0, 0, 0] = 2e3  # one neuron of channel 0 integrates twice as fast: weights are no longer shared
    graph = _graph([nir.Input(np.array([1, 6, 6])), _conv(rng, 1, 2, 6, 3), nir.IF(r=r, v_threshold=np.ones(r.shape))])
    c = compile_network(graph, "loihi2", dt=1e-3)  # the generic weight rounding (Loihi's mixed weights are even)
    w = c.layers[0].syn.dense()
    assert isinstance(c.layers[0].syn, DenseSynapse)
    np.testing.assert_array_equal(w[0], np.rint(2 * c.float_net.layers[0].syn.dense()[0] / c.layers[0].scale
                                                 / (1 << c.layers[0].weight_shift)))
    monkeypatch.setattr(synapse, "DENSE_FALLBACK_MAX", 100)
    with pytest.raises(NIRError, match=r"differ in gain within a channel.*\(layer 'if'\)"):
        compile_network(graph, "loihi2", dt=1e-3)


def test_a_large_chain_that_is_no_convolution_is_a_named_error(monkeypatch):
    import spikeflow.hardware.network as network
    from spikeflow.errors import NIRError

    nodes = conv_nets(_if)["overlapping-pool+padded-conv (dense)"]
    monkeypatch.setattr(network, "DENSE_FALLBACK_MAX", 1000)  # the 32 x 243 matrix is "large" here
    with pytest.raises(NIRError, match=r"\['sumpool2d', 'conv2d_1'\] are no single convolution .* 32 x 243"):
        from_nir(_graph(nodes), dt=1e-3)


def test_setting_weight_or_syn_keeps_the_other_in_step():
    c = compile_network(_graph(conv_nets(_if)["stride-padding"]), "loihi", dt=1e-3)
    q = c.layers[1]
    w = q.syn.dense().copy()
    w[:, :] = 0
    w[:, 0] = 127  # every neuron of layer 2 now listens only to neuron 0 of layer 1, with the largest weight
    q.weight = w
    assert isinstance(q.syn, DenseSynapse) and q.syn.weight is w
    x = poisson(1, 12, 2, c.layers[0].n_in, p=0.3)
    res = run_integer(c, x)
    first = res.layer_spikes[0][:, :, 0]
    assert first.sum() > 0 and res.synops[:, :, c.mapping.layers[1].cores].sum() == first.sum() * q.n_out
    q.syn = ConvSynapse(np.ones((3, 4, 1, 1), dtype=np.int64), (4, 6, 6), (3, 6, 6))
    assert q.weight is None and q.n_in == 144
