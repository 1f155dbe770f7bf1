"""Invalid configurations raise ConfigError with a message that names the problem, before allocating."""

import tracemalloc

import numpy as np
import pytest

from spikeflow import cli, sim
from spikeflow.errors import ConfigError


def small_net():
    net = sim.Network(dt=1e-4)
    a = net.add(sim.LIF(10))
    b = net.add(sim.LIF(10))
    return net, a, b


@pytest.mark.parametrize("delay,match", [(-1e-3, "negative"), (0.5e-4, r">= dt"), (0.0, r">= dt"),
                                         (float("nan"), "finite")])
def test_bad_delays(delay, match):
    net, a, b = small_net()
    with pytest.raises(ConfigError, match=match):
        net.connect(a, b, sim.FixedProbability(0.1), weight=1.0, delay=delay)


def test_bad_delay_array():
    net, a, b = small_net()
    with pytest.raises(ConfigError, match="negative"):
        net.connect(a, b, sim.FromArrays([0, 1], [1, 2]), weight=1.0, delay=np.array([1e-3, -1e-3]))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_probability(p):
    net, a, b = small_net()
    with pytest.raises(ConfigError, match=r"'p' must be in \[0, 1\]"):
        net.connect(a, b, sim.FixedProbability(p), weight=1.0)


def test_bad_channel_degree_and_arrays():
    net, a, b = small_net()
    with pytest.raises(ConfigError, match="no synaptic channel 'ampa'"):
        net.connect(a, b, sim.OneToOne(), weight=1.0, channel="ampa")
    with pytest.raises(ConfigError, match="out-degree"):
        net.connect(a, b, sim.FixedOutDegree(11), weight=1.0)
    with pytest.raises(ConfigError, match="targets"):
        net.connect(a, b, sim.FromArrays([0], [10]), weight=1.0)
    with pytest.raises(ConfigError, match="FromArrays"):
        net.connect(a, b, sim.FixedProbability(0.5), weight=np.ones(3))
    with pytest.raises(ConfigError, match="size 'n'"):
        sim.LIF(0)
    with pytest.raises(ConfigError, match="int32"):
        sim.LIF(2**31)
    with pytest.raises(ConfigError, match="'dt'"):
        sim.Network(dt=-1.0)


def test_too_large_for_memory_fails_before_allocating():
    net = sim.Network(dt=1e-4)
    a = net.add(sim.LIF(1_000_000_000))
    net.connect(a, a, sim.FixedProbability(0.01), weight=1.0)
    tracemalloc.start()
    with pytest.raises(ConfigError, match=r"GiB .*available"):
        net.run(0.01, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20  # it refused before allocating (a wall-clock bound would depend on the machine's load)
    small = sim.Network(dt=1e-4, memory_limit=10_000)  # an explicit limit is honoured too
    small.add(sim.LIF(10_000))
    with pytest.raises(ConfigError, match="GiB"):
        small.build()


def test_cli_reports_config_errors(capsys):
    assert cli.main(["sim", "cuba", "--neurons", "0", "--no-progress"]) == 2  # refused by the parser
    err = capsys.readouterr().err
    assert "argument --neurons" in err and "'0'" in err and err.count("\n") == 1
    assert cli.main(["sim", "cuba", "--neurons", "100", "--dt", "0.5", "--no-progress"]) == 2  # by the network
    err = capsys.readouterr().err
    assert err.startswith("spikeflow: error: sim cuba: dt") and "0.5" in err and err.count("\n") == 1
