"""Every limit of every chip profile is tripped by some graph, with an error naming layer, limit and value."""

import dataclasses

import nir
import numpy as np
import pytest

from spikeflow.errors import ConfigError, HardwareLimitError
from spikeflow.hardware import PROFILES, compile_network, get_profile
from tests.hardware.hw_nets import chain, conv, dense, if_, li, lif, recurrent_chain


def _neuron(profile, n, **kw):
    return if_(n, **kw) if "lif" not in profile.neuron_models else lif(n, **kw)


def _syn(profile, n_in, n_out, w=0.5):
    """A dense synapse the chip accepts: Linear, or a full-size 1x1-image conv on conv-only chips."""
    if "linear" in profile.synapse_types:
        return dense(n_in, n_out, w), (n_in,)
    return nir.Conv2d(input_shape=(1, 1), weight=np.full((n_out, n_in, 1, 1), w), stride=1, padding=0, dilation=1,
                      groups=1, bias=np.zeros(n_out)), (n_in, 1, 1)


def _graph(profile, sizes, w=0.5):
    """A chain through layer sizes; layers are named by nir.from_list (linear/conv2d, lif/if ...)."""
    nodes = []
    in_shape = None
    for a, b in zip(sizes[:-1], sizes[1:]):
        syn, shape = _syn(profile, a, b, w)
        in_shape = in_shape or shape
        nodes += [syn, _neuron(profile, b)]
    return nir.NIRGraph.from_list(nir.Input(np.array(in_shape)), *nodes, nir.Output(np.array([sizes[-1]])),
                                  type_check=False)


def violating_graph(profile, limit):
    """A graph that breaks exactly ``limit`` of ``profile`` (and passes the checks made before it)."""
    p = profile
    if limit == "cores":
        if p.name == "speck":  # one conv layer per core: one layer too many
            return _graph(p, [1] * (p.cores + 2))
        return _graph(p, [1, p.cores * p.neurons_per_core + 1])
    if limit == "reset":  # compiled with a subtract reset, which Loihi does not have
        return _graph(p, [4, 4])
    if limit == "threshold_range":
        return _graph(p, [4, 4], w=1e-12)
    if limit == "neuron_model":
        bad = "lif" if "lif" not in p.neuron_models else "li"
        syn, shape = _syn(p, 4, 4)
        node = lif(4) if bad == "lif" else li(4)
        return nir.NIRGraph.from_list(nir.Input(np.array(shape)), syn, node, nir.Output(np.array([4])),
                                      type_check=False)
    if limit == "recurrent":  # a loop on the last layer: no chip without "any" recurrence maps it
        return recurrent_chain(np.full((4, 4), 0.5), np.full((4, 4), 0.5), _neuron(p, 4))
    if limit == "synapse_type":
        return chain(4, dense(4, 4), _neuron(p, 4))
    if limit in ("axons_per_core", "synapses_per_core"):
        return _graph(p, [getattr(p, limit) + 1, 2])
    if limit == "max_fan_in":
        return _graph(p, [min(p.max_input_channels or 8, 8), p.max_fan_in + 1, 2])
    if limit == "fan_out_cores":
        return _graph(p, [4, 10, p.neurons_per_core + 1])
    if limit == "max_hidden_neurons":
        return _graph(p, [4, p.max_hidden_neurons + 1, 2])
    if limit == "max_input_channels":
        return _graph(p, [p.max_input_channels + 1, 2])
    if limit == "max_output_neurons":
        return _graph(p, [4, p.max_output_neurons + 1])
    if limit == "max_kernel":
        k = p.max_kernel + 1
        return nir.NIRGraph.from_list(nir.Input(np.array([1, k, k])), conv(1, 1, k, k), if_(1),
                                      nir.Output(np.array([1])), type_check=False)
    if limit == "max_channels":
        c = p.max_channels + 1
        return nir.NIRGraph.from_list(nir.Input(np.array([1, 1, 1])), conv(1, c, 1, 1), if_(c),
                                      nir.Output(np.array([c])), type_check=False)
    if limit in ("core_neuron_memory", "core_kernel_memory", "max_output_side", "max_input_side"):
        # (input shape C, H, W; out channels; kernel side): sinabs rounds each side up to a power of two
        shape, c_out, k = {
            "core_neuron_memory": ((1, 5, 9), 1024, 1),  # 1024 x 8 x 16 = 128 Ki neuron words > 64 Ki
            "core_kernel_memory": ((65, 1, 1), 1024, 1),  # 65 x 2**(0 + 10) kernel words > 64 Ki
            "max_output_side": ((1, 65, 1), 1, 1),  # a 65-pixel-high feature map > 64
            "max_input_side": ((1, 129, 1), 1, 1),  # a 129-pixel-high input > 128
        }[limit]
        out = (c_out, shape[1] - k + 1, shape[2] - k + 1)
        node = nir.Conv2d(input_shape=shape[1:], weight=np.full((c_out, shape[0], k, k), 0.5), stride=1, padding=0,
                          dilation=1, groups=1, bias=np.zeros(c_out))
        return nir.NIRGraph.from_list(nir.Input(np.array(shape)), node, if_(int(np.prod(out))),
                                      nir.Output(np.array(out)), type_check=False)
    raise AssertionError(f"no violating graph for {limit}")


CASES = [(name, limit) for name, prof in PROFILES.items() for limit in prof.limits()]


@pytest.mark.parametrize("chip,limit", CASES, ids=[f"{c}-{lim}" for c, lim in CASES])
def test_every_limit_trips_with_named_error(chip, limit):
    profile = get_profile(chip)
    graph = violating_graph(profile, limit)
    with pytest.raises(HardwareLimitError) as info:
        # Loihi resets to 0 (a subtract reset is its own limit, "reset"); the others are tripped with subtract.
        reset = "to_reset" if profile.arithmetic == "lava-loihi" and limit != "reset" else "subtract"
        compile_network(graph, profile, dt=1e-3, reset=reset)
    err = info.value
    assert err.limit == limit
    msg = str(err)
    assert f"'{limit}'" in msg and profile.title in msg
    assert str(err.allowed).split()[0] in msg
    assert err.layer == "input" or err.layer in graph.nodes


def test_every_profile_has_its_documented_limits():
    assert set(PROFILES) == {"loihi", "loihi2", "truenorth", "spinnaker2", "speck", "xylo"}
    assert "max_fan_in" in PROFILES["xylo"].limits() and PROFILES["xylo"].max_fan_in == 63
    assert "fan_out_cores" in PROFILES["truenorth"].limits()
    assert {"max_kernel", "max_channels", "synapse_type", "neuron_model"} <= set(PROFILES["speck"].limits())
    for prof in PROFILES.values():
        assert "threshold_range" in prof.limits()


def test_fan_in_hint_names_layer_and_suggests_split():
    p = get_profile("xylo")
    graph = _graph(p, [8, 2312 // 36, 2])  # hidden layer of 64 neurons: the second linear has fan-in 64
    with pytest.raises(HardwareLimitError, match=r"split linear_1 \(fan-in 64\) — SynSense Xylo Audio 2 allows 63"):
        compile_network(graph, p, dt=1e-3)


def test_same_graph_fits_the_bigger_chip():
    graph = _graph(get_profile("loihi"), [300, 20, 2])  # 300 inputs break TrueNorth's 256 axons per core
    with pytest.raises(HardwareLimitError):
        compile_network(graph, "truenorth", dt=1e-3)
    assert compile_network(graph, "loihi", dt=1e-3).cores_used == 2


def test_unknown_chip_lists_valid_ones():
    with pytest.raises(ConfigError, match="loihi"):
        get_profile("tpu")


def test_profile_rejects_too_small_mesh():
    with pytest.raises(ConfigError, match="mesh"):
        dataclasses.replace(get_profile("loihi"), mesh=(2, 2))


# -- Speck: nine cores of different sizes, one layer each (sinabs' documented memories) ------------------------------


def _speck_chain(channels):
    """1x1 convolutions through ``channels`` on a 1x1 image: kernel words c_in * 2**ceil(log2 c_out)."""
    nodes = []
    for a, b in zip(channels[:-1], channels[1:]):
        nodes += [nir.Conv2d(input_shape=(1, 1), weight=np.full((b, a, 1, 1), 0.5), stride=1, padding=0, dilation=1,
                             groups=1, bias=np.zeros(b)), if_(b)]
    return nir.NIRGraph.from_list(nir.Input(np.array([channels[0], 1, 1])), *nodes,
                                  nir.Output(np.array([channels[-1], 1, 1])), type_check=False)


def test_speck_capacity_is_the_sum_of_its_core_memories():
    speck = get_profile("speck")
    assert speck.total_neurons == 3 * 65536 + 2 * 32768 + 4 * 16384 == 327680
    assert speck.neurons_per_core == max(speck.core_neuron_memory)


def test_speck_layer_memory_rounds_each_side_to_a_power_of_two():
    from spikeflow.hardware.corememory import layer_memory
    from spikeflow.hardware.network import from_nir

    graph = nir.NIRGraph.from_list(nir.Input(np.array([2, 8, 12])), conv_rect(2, 5, 3, (8, 12)), if_(5 * 6 * 10),
                                   nir.Output(np.array([5, 6, 10])), type_check=False)
    layer = from_nir(graph, dt=1e-3).layers[0]
    # kernel: 2 inputs x 2**(ceil log2 9 + ceil log2 5) = 2 * 2**(4 + 3); neurons: 5 x 2**(ceil log2 6 + ceil log2 10)
    assert layer_memory(layer) == (5 * 2 ** (3 + 4), 2 * 2 ** (4 + 3))


def test_speck_layers_need_distinct_cores_that_hold_them():
    # 33 x 1024 and 1024 x 2**6 kernel words: more than 32 Ki, so only the two 64 Ki-kernel cores hold these layers
    assert compile_network(_speck_chain([33, 1024, 33]), "speck", dt=1e-3).cores_used == 2
    with pytest.raises(HardwareLimitError) as info:
        compile_network(_speck_chain([33, 1024, 33, 1024]), "speck", dt=1e-3)
    assert info.value.limit == "cores" and "3 layers" in str(info.value)


def conv_rect(c_in, c_out, k, hw):
    return nir.Conv2d(input_shape=hw, weight=np.full((c_out, c_in, k, k), 0.5), stride=1, padding=0, dilation=1,
                      groups=1, bias=np.zeros(c_out))


def test_speck_pooling_layer_stored_as_a_kernel_fits_its_core_memory():
    # Pooling alone is a depthwise kernel (no weight matrix); its core memory comes from the kernel's fan-in.
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2, 8, 8])), conv(2, 4, 3, 8), if_(4 * 36),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])), if_(4 * 9),
        nir.Output(np.array([36])), type_check=False)
    compiled = compile_network(graph, "speck", dt=1e-3)
    assert compiled.layers[1].weight is None and int(compiled.layers[1].syn.fan_in().max()) == 4
