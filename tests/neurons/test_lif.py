"""LIF against the analytic solution of tau dv/dt = -v + R I."""

import math

import pytest
import torch

from spikeflow.errors import InputError, ParameterError
from spikeflow.neurons import lif


def run_lif(params, current, steps):
    state = lif.init_state((1,), params, dtype=torch.float64)
    spikes, vs = [], []
    x = torch.full((1,), current, dtype=torch.float64)
    for _ in range(steps):
        z, state = lif.step(x, state, params)
        spikes.append(z.item())
        vs.append(state.v.item())
    return spikes, vs


@pytest.mark.parametrize("dt", [1e-3, 2.5e-4, 1e-4])
@pytest.mark.parametrize("current", [1.5, 3.0])
def test_firing_period_matches_analytic(dt, current):
    tau, r, vth = 20e-3, 1.0, 1.0
    p = lif.LIFParams(tau_mem=tau, r=r, v_threshold=vth, v_reset=0.0, v_leak=0.0, dt=dt, reset="to_reset")
    spikes, _ = run_lif(p, current, int(0.3 / dt))
    times = [i * dt for i, s in enumerate(spikes) if s]
    assert len(times) >= 3
    period = tau * math.log(r * current / (r * current - vth))
    isis = [b - a for a, b in zip(times, times[1:])]
    for isi in isis:
        assert abs(isi - period) <= dt + 1e-12
    # the first spike comes at the first step the exact solution is above threshold
    assert abs((times[0] + dt) - period) <= dt + 1e-12


def test_subthreshold_settles_at_leak_plus_ri():
    p = lif.LIFParams(tau_mem=10e-3, r=2.0, v_leak=-0.2, v_threshold=1.0, v_reset=-0.5, dt=1e-3)
    spikes, vs = run_lif(p, 0.4, 300)  # v_inf = -0.2 + 0.8 = 0.6 < 1
    assert sum(spikes) == 0
    assert vs[-1] == pytest.approx(-0.2 + 2.0 * 0.4, abs=1e-9)
    # exact at every step: v(k dt) = v_inf + (v0 - v_inf) exp(-k dt / tau)
    for k in (1, 5, 20):
        expected = 0.6 + (-0.2 - 0.6) * math.exp(-k * 1e-3 / 10e-3)
        assert vs[k - 1] == pytest.approx(expected, abs=1e-12)


def test_reset_by_subtraction_keeps_the_excess():
    p = lif.LIFParams(tau_mem=1e9, r=1.0, v_threshold=1.0, dt=1e-3)  # practically no leak
    alpha = math.exp(-1e-3 / 1e9)
    state = lif.init_state((1,), p, dtype=torch.float64)
    x = torch.tensor([1.3 / (1 - alpha)], dtype=torch.float64)  # one step adds 1.3
    z, state = lif.step(x, state, p)
    assert z.item() == 1.0
    assert state.v.item() == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize("refractory_steps", [1, 3, 7])
@pytest.mark.parametrize("current", [1.2, 2.0, 5.0, 50.0])
def test_no_spike_inside_refractory_period(refractory_steps, current):
    dt = 1e-3
    p = lif.LIFParams(tau_mem=5e-3, v_threshold=1.0, reset="to_reset", refractory=refractory_steps * dt, dt=dt)
    spikes, _ = run_lif(p, current, 200)
    idx = [i for i, s in enumerate(spikes) if s]
    assert idx, "strong input must fire"
    assert all(b - a > refractory_steps for a, b in zip(idx, idx[1:]))
    if current == 50.0:  # input strong enough to fire on the first free step: ISI is exactly refractory + 1
        assert all(b - a == refractory_steps + 1 for a, b in zip(idx, idx[1:]))


def test_membrane_held_during_refractory():
    dt = 1e-3
    p = lif.LIFParams(tau_mem=5e-3, v_threshold=1.0, reset="to_reset", v_reset=0.0, refractory=3 * dt, dt=dt)
    spikes, vs = run_lif(p, 50.0, 10)
    first = spikes.index(1.0)
    assert vs[first : first + 4] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"tau_mem": 0.0}, "tau_mem"),
        ({"tau_mem": -1e-3}, "tau_mem"),
        ({"dt": 0.0}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"v_threshold": -1.0, "v_reset": 0.0}, "v_threshold"),
        ({"refractory": -1e-3}, "refractory"),
        ({"reset": "sideways"}, "reset"),
        ({"tau_mem": torch.tensor([1e-3, -2e-3])}, "tau_mem"),
    ],
)
def test_bad_parameters_are_named(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        lif.LIFParams(**kwargs)


def test_nan_input_rejected_by_layer():
    from spikeflow.nn import LIF

    with pytest.raises(InputError, match="NaN"):
        LIF()(torch.tensor([[[float("nan")]]]))
