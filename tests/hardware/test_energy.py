"""Energy and latency on a hand-countable network equal the hand computation, in both clock modes."""

import dataclasses
import re

import numpy as np
import pytest

from spikeflow.errors import ConfigError
from spikeflow.hardware import PROFILES, chip_cost, compile_network, get_profile, run_integer
from spikeflow.hardware.profiles import COST_FIELDS
from tests.hardware.hw_nets import chain, dense, if_

PJ, NS = 1e-12, 1e-9

# Two inputs -> two IF neurons (threshold 0.9, reset to 0). Weights: n0 <- 1.0 * in0; n1 <- 0.5 * (in0 + in1).
W = np.array([[1.0, 0.0], [0.5, 0.5]])
X = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)[:, None, :]  # [T=4, B=1, 2]


def _profile(neurons_per_core):
    return dataclasses.replace(
        get_profile("loihi"), neurons_per_core=neurons_per_core, mesh=(1, 4), cores=4,
        e_synop=1 * PJ, e_update_active=10 * PJ, e_update_inactive=100 * PJ, e_spike_local=0.0, e_hop=1000 * PJ,
        static_power=1.0, t_synop=1 * NS, t_update=10 * NS, t_hop=100 * NS)


def _run(profile):
    graph = chain(2, dense(2, 2), if_(2, th=0.9))
    graph.nodes["linear"].weight = W
    compiled = compile_network(graph, profile, dt=1e-3, reset="to_reset", latency="same-step")
    return compiled, run_integer(compiled, X)


def test_spikes_and_counts_by_hand_one_core():
    compiled, res = _run(_profile(neurons_per_core=2))
    # n0 fires at steps 0 and 1 (each in0 event alone crosses 0.9); n1 needs two half-weight events: fires at step 1.
    np.testing.assert_array_equal(res.output[:, 0], [[1, 0], [1, 1], [0, 0], [0, 0]])
    # Synaptic ops: in0 has 2 targets, in1 has 1: step0 2, step1 3, step2 1 -> 6.
    assert res.synops.sum() == 6
    # Updates: active when input arrived or the membrane is off rest: 2, 2, 1 (n1 got in1), 1 (n1 holds 0.5) = 6.
    assert res.updates_active.sum() == 6 and res.updates_inactive.sum() == 2
    # Every input spike is one packet to core 0, one hop from the input port: 4 input events -> 4 hops.
    assert res.hops.sum() == 4 and res.spikes.sum() == 3
    cost = chip_cost(res, compiled.profile)
    # Latency: step0 2*1 + 2*10 + 1*100 = 122 ns; step1 3 + 20 + 100 = 123; step2 1 + 20 + 100 = 121; step3 20.
    assert cost.latency_s == pytest.approx(386 * NS)
    dynamic = (6 * 1 + 6 * 10 + 2 * 100 + 4 * 1000) * PJ
    assert cost.dynamic_j == pytest.approx(dynamic)
    assert cost.energy_j == pytest.approx(dynamic + 1.0 * 386 * NS)


def test_counts_by_hand_two_cores_with_routing():
    compiled, res = _run(_profile(neurons_per_core=1))
    assert compiled.cores_used == 2  # n0 on core (0,0), n1 on core (0,1); input port west of (0,0)
    # in0 reaches both cores: 1 + 2 = 3 hops per event (steps 0, 1); in1 reaches core 1 only: 2 hops (steps 1, 2).
    assert res.hops.sum() == 3 + 3 + 2 + 2
    np.testing.assert_array_equal(res.max_route[:, 0], [2, 2, 2, 0])
    cost = chip_cost(res, compiled.profile)
    # Slowest core per step: step0 max(1+10, 1+10)=11; step1 max(1+10, 2+10)=12; step2 max(10, 1+10)=11; step3 10.
    assert cost.latency_s == pytest.approx((11 + 200) * NS + (12 + 200) * NS + (11 + 200) * NS + 10 * NS)
    assert cost.dynamic_j == pytest.approx((6 * 1 + 6 * 10 + 2 * 100 + 10 * 1000) * PJ)


def test_energy_grows_with_activity_not_layer_size():
    compiled, _ = _run(_profile(neurons_per_core=2))
    quiet = chip_cost(run_integer(compiled, np.zeros_like(X)), compiled.profile)
    busy = chip_cost(run_integer(compiled, X), compiled.profile)
    assert quiet.counts["synops"] == 0 and quiet.dynamic_j == pytest.approx(8 * 100 * PJ)
    assert busy.dynamic_j > quiet.dynamic_j


# -- clock modes: static power over the powered time ---------------------------------------------------------------


def _clocked(e_step=0.0):
    return dataclasses.replace(_profile(neurons_per_core=2), e_step=e_step)


def test_realtime_clock_charges_static_power_over_T_dt():
    compiled, res = _run(_clocked(e_step=50 * PJ))
    dt = 1e-3
    cost = chip_cost(res, compiled.profile, clock="realtime", dt=dt)
    dynamic = (6 * 1 + 6 * 10 + 2 * 100 + 4 * 1000) * PJ + 4 * 50 * PJ  # per-op counts as above + 4 steps x e_step
    assert cost.clock == "realtime" and cost.dt == dt and cost.overrun_steps == 0
    assert cost.powered_s == pytest.approx(4 * dt)  # every step (<= 123 ns of work) lasts dt
    assert cost.static_j == pytest.approx(1.0 * 4 * dt)
    assert cost.dynamic_j == pytest.approx(dynamic)
    assert cost.energy_j == pytest.approx(dynamic + 4e-3)
    assert cost.power_w == pytest.approx((dynamic + 4e-3) / 4e-3) and cost.throughput_hz == pytest.approx(250.0)
    assert cost.breakdown_j["steps"] == pytest.approx(4 * 50 * PJ)


def test_afap_clock_charges_static_power_over_the_modelled_latency():
    compiled, res = _run(_clocked())
    cost = chip_cost(res, compiled.profile, clock="afap")
    assert cost.clock == "afap" and cost.dt is None
    assert cost.powered_s == pytest.approx(386 * NS) and cost.latency_s == pytest.approx(386 * NS)
    assert cost.static_j == pytest.approx(1.0 * 386 * NS)
    assert cost.throughput_hz == pytest.approx(1 / (386 * NS))


def test_realtime_step_shorter_than_the_work_lasts_the_work():
    compiled, res = _run(_clocked())
    dt = 121.5 * NS  # steps of 122 and 123 ns overrun; 121 and 20 ns steps last dt
    cost = chip_cost(res, compiled.profile, clock="realtime", dt=dt)
    assert cost.overrun_steps == 2
    assert cost.powered_s == pytest.approx((122 + 123 + 121.5 + 121.5) * NS)


def test_clock_is_checked():
    compiled, res = _run(_clocked())
    with pytest.raises(ConfigError, match="clock"):
        chip_cost(res, compiled.profile, clock="wallclock")
    with pytest.raises(ConfigError, match="dt"):
        chip_cost(res, compiled.profile, clock="realtime")


# -- the profiles' figures: each cited, no double counts ----------------------------------------------------------


def test_every_cost_figure_has_a_source_or_is_an_estimate():
    for p in PROFILES.values():
        cite = p.citations()
        for f in COST_FIELDS:
            assert f in cite, f"{p.name}.{f} has no citation"
            text = cite[f]
            # a source names its year; anything else says it is an estimate, a design fact or folded into another
            assert text.startswith(("estimate: ", "by design: ", "included in ")) or re.search(r"(19|20)\d\d", text), \
                f"{p.name}.{f}: {text}"


def test_loihi_synaptic_op_is_davies_table_2_alone():
    loihi = get_profile("loihi")
    assert loihi.e_synop == pytest.approx(23.6 * PJ)  # no extra 3.5 pJ: hops are charged per hop
    assert "Table 2" in loihi.citations()["e_synop"] and loihi.e_hop == pytest.approx(3.5 * PJ)
    assert loihi.e_interchip > 0 and loihi.citations()["e_interchip"].startswith("estimate")


def test_truenorth_charges_its_whole_chip_event_energy_once():
    tn = get_profile("truenorth")
    assert tn.e_synop == pytest.approx(26 * PJ)
    # Merolla's 26 pJ already holds leakage, updates and routing: nothing else is charged
    assert tn.static_power == tn.e_update_active == tn.e_update_inactive == tn.e_hop == tn.e_step == 0
