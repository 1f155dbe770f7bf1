"""Several chips of a board: cores filled chip by chip, inter-chip packets and links counted by hand, their cost,
and the errors for a network larger than the chips allowed or the whole board."""

import dataclasses

import numpy as np
import pytest

from spikeflow.errors import ConfigError, HardwareLimitError
from spikeflow.hardware import chip_cost, compile_network, get_profile, run_integer
from spikeflow.hardware.board import KAPOHO_POINT, board_report
from spikeflow.hardware.cost import step_latency
from tests.hardware.hw_nets import chain, dense, if_, poisson

# Tiny chip copies: 2 cores of 4 neurons per chip, so a small net spans chips of the (real) board grids:
# Loihi 2 on Kapoho Point (8 chips, 2 x 4) for runs, Loihi on Nahuku (32 chips, 4 x 8) for compiles.
TINY = dataclasses.replace(get_profile("loihi2"), cores=2, neurons_per_core=4, mesh=(1, 2))
TINY_LOIHI = dataclasses.replace(get_profile("loihi"), cores=2, neurons_per_core=4, mesh=(1, 2))


def _net():
    """4 inputs -> A (8 IF): neuron j copies input j % 4 (weight 1, threshold 0.5, reset to 0) -> B (12 IF)."""
    graph = chain(4, dense(4, 8), if_(8, th=0.5), dense(8, 12, w=0.1), if_(12, th=0.5))
    graph.nodes["linear"].weight = np.vstack([np.eye(4), np.eye(4)])
    return graph


def test_cores_fill_chip_by_chip_and_interchip_traffic_matches_hand_count():
    compiled = compile_network(_net(), TINY, dt=1e-3, reset="to_reset", chips=4)
    # A: cores 0, 1 (chip 0); B: 12 neurons -> cores 2, 3 (chip 1) and 4 (chip 2); chip 3 unused.
    assert compiled.chips_used == 3 and compiled.board.cores_per_chip == [2, 2, 1]
    np.testing.assert_array_equal(compiled.board.chip_pos, [[0, 0], [0, 1], [0, 2]])  # snake on a 2 x 4 grid
    x = poisson(7, 20, 3, 4, p=0.3)
    res = run_integer(compiled, x)
    np.testing.assert_array_equal(res.layer_spikes[0], np.concatenate([x, x], axis=2))  # A copies its input
    a_spikes = 2 * x.sum(axis=2)  # [T, B]
    # Each A spike sends one packet to each of B's three cores, all on other chips: 3 messages crossing
    # 1 + 1 + 2 = 4 chip links. Input spikes enter at chip 0, where A lives: no inter-chip traffic.
    np.testing.assert_array_equal(res.interchip.sum(axis=2), 3 * a_spikes)
    np.testing.assert_array_equal(res.chip_hops.sum(axis=2), 4 * a_spikes)
    np.testing.assert_array_equal(res.interchip[:, :, :2], 0)
    np.testing.assert_array_equal(res.max_chip_route, 2 * (a_spikes > 0))
    cost = chip_cost(res, compiled.profile, board=compiled.board)
    B = x.shape[1]
    assert cost.breakdown_j["interchip"] == pytest.approx(4 * a_spikes.sum() / B * TINY.e_interchip)
    assert cost.interchip_latency_s == pytest.approx(2 * (a_spikes > 0).sum() / B * KAPOHO_POINT.t_chip_hop)
    mesh_only = float(step_latency(res, compiled.profile).sum(axis=0).mean())
    assert cost.latency_s == pytest.approx(mesh_only + cost.interchip_latency_s)
    # the run carries its board: costing it without naming the board cannot leave the chips out
    assert chip_cost(res, compiled.profile).energy_j == cost.energy_j
    assert cost.static_j == pytest.approx(3 * TINY.static_power * cost.latency_s)  # three chips powered
    rep = board_report(compiled, cost, steps=x.shape[0])
    assert rep["chips_used"] == 3 and rep["cores_per_chip"] == [2, 2, 1]
    assert rep["interchip_messages"] == pytest.approx(3 * a_spikes.sum() / B)
    assert rep["interchip_messages_per_step"] == pytest.approx(3 * a_spikes.sum() / B / x.shape[0])
    assert rep["chip_hops"] == pytest.approx(4 * a_spikes.sum() / B)
    # Routes crossing chips: every (A neuron, B core) pair = 8 x 3.
    assert rep["interchip_routes"] == 24


def test_mesh_hops_exclude_chip_links():
    compiled = compile_network(_net(), TINY, dt=1e-3, reset="to_reset", chips=4)
    lm = compiled.mapping.layers[1]
    # Board-wide positions: chip k's cores at columns 2k, 2k + 1. A's core 0 at (0, 0) to B's core 4 at (0, 4):
    # 4 columns = 2 chip links + 2 mesh hops.
    src = int(np.flatnonzero(lm.src_core == 0)[0])
    col = list(lm.cores).index(4)
    assert lm.chip_dist[col, src] == 2 and lm.dist[col, src] == 2


def test_network_larger_than_the_chips_allowed_or_the_board():
    with pytest.raises(HardwareLimitError, match=r"'cores' \(needs at least 5 cores, allowed 4 on 2 chips\)"):
        compile_network(_net(), TINY, dt=1e-3, chips=2)
    with pytest.raises(HardwareLimitError, match=r"--chips N, up to 8 on the Intel Kapoho Point"):
        compile_network(_net(), TINY, dt=1e-3)
    with pytest.raises(HardwareLimitError, match=r"--chips N, up to 32 on the Intel Nahuku"):
        compile_network(_net(), TINY_LOIHI, dt=1e-3)
    for prof, chips, board in ((TINY, 8, "Kapoho Point"), (TINY_LOIHI, 32, "Nahuku")):
        n = chips * 2 * 4 + 1  # one neuron more than the whole board holds
        with pytest.raises(HardwareLimitError, match=f"larger than the whole Intel {board}") as info:
            compile_network(chain(1, dense(1, n), if_(n)), prof, dt=1e-3, chips=chips)
        assert "\n" not in str(info.value)
        assert compile_network(chain(1, dense(1, n - 1), if_(n - 1)), prof, dt=1e-3, chips=chips).chips_used == chips


def test_chips_argument_is_checked():
    with pytest.raises(ConfigError, match="holds 32 chips"):
        compile_network(_net(), "loihi", dt=1e-3, chips=33)
    with pytest.raises(ConfigError, match="no multi-chip board is modelled for SynSense Xylo"):
        compile_network(_net(), "xylo", dt=1e-3, chips=2)
    with pytest.raises(ConfigError, match="chips must be an integer"):
        compile_network(_net(), "loihi", dt=1e-3, chips=0)


def test_a_network_bigger_than_one_loihi_spans_two_chips_of_nahuku():
    n = 128 * 1024 + 5  # one more core than a Loihi chip holds
    compiled = compile_network(chain(2, dense(2, n), if_(n)), "loihi", dt=1e-3, chips=32)
    assert compiled.chips_used == 2 and compiled.board.cores_per_chip == [128, 1]
