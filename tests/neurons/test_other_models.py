"""IF, LI, ALIF, CubaLIF/CubaLI and Izhikevich against hand-computed or independently integrated results."""

import math

import numpy as np
import pytest
import torch

from spikeflow.errors import ParameterError
from spikeflow.neurons import alif, cuba, if_, izhikevich, li


def simulate(model_step, state, params, xs):
    outs, states = [], []
    for x in xs:
        out, state = model_step(torch.as_tensor(x, dtype=torch.float64).reshape(1), state, params)
        outs.append(out.item())
        states.append(state)
    return outs, states


@pytest.mark.parametrize("charge, threshold, steps", [(0.37, 1.0, 101), (0.123, 0.5, 251), (0.7, 0.9, 40)])
def test_if_count_is_floor_of_charge_over_threshold(charge, threshold, steps):
    """Holds while the charge per step is below threshold (at most one spike per step)."""
    p = if_.IFParams(v_threshold=threshold)
    out, states = simulate(if_.step, if_.init_state((1,), p, torch.float64), p, [charge] * steps)
    assert sum(out) == math.floor(charge * steps / threshold)
    # reset by subtraction conserves charge: what is left is the remainder
    assert states[-1].v.item() == pytest.approx(charge * steps - sum(out) * threshold, abs=1e-9)


def test_if_reset_to_value():
    p = if_.IFParams(v_threshold=1.0, v_reset=-0.5, reset="to_reset")
    out, states = simulate(if_.step, if_.init_state((1,), p, torch.float64), p, [0.6, 0.6, 0.6])
    assert out == [0.0, 1.0, 0.0]
    assert states[1].v.item() == -0.5
    assert states[2].v.item() == pytest.approx(0.1)


def test_li_step_response_is_exact_exponential():
    p = li.LIParams(tau_mem=8e-3, r=3.0, dt=0.5e-3)
    out, _ = simulate(li.step, li.init_state((1,), p, torch.float64), p, [0.5] * 40)
    for k in (1, 10, 40):
        assert out[k - 1] == pytest.approx(1.5 * (1 - math.exp(-k * 0.5e-3 / 8e-3)), abs=1e-12)


def test_alif_threshold_rises_by_beta_and_relaxes_with_tau_adapt():
    dt, tau_a, beta = 1e-3, 50e-3, 0.2
    p = alif.ALIFParams(tau_mem=10e-3, tau_adapt=tau_a, beta=beta, v_threshold=1.0, dt=dt)
    state = alif.init_state((1,), p, torch.float64)
    kick = torch.tensor([20.0], dtype=torch.float64)  # one step adds 20 * (1 - e^-0.1) = 1.9
    z, state = alif.step(kick, state, p)
    assert z.item() == 1.0
    assert alif.threshold(state, p).item() == pytest.approx(1.0 + beta)
    zero = torch.zeros(1, dtype=torch.float64)
    for k in range(1, 60):
        z, state = alif.step(zero, state, p)
        assert z.item() == 0.0
        assert alif.threshold(state, p).item() == pytest.approx(1.0 + beta * math.exp(-k * dt / tau_a), abs=1e-12)


def test_alif_spikes_less_than_lif_under_constant_drive():
    p = alif.ALIFParams(tau_mem=20e-3, tau_adapt=200e-3, beta=0.5, dt=1e-3)
    p0 = alif.ALIFParams(tau_mem=20e-3, tau_adapt=200e-3, beta=0.0, dt=1e-3)
    a, _ = simulate(alif.step, alif.init_state((1,), p, torch.float64), p, [3.0] * 500)
    b, _ = simulate(alif.step, alif.init_state((1,), p0, torch.float64), p0, [3.0] * 500)
    assert 0 < sum(a) < sum(b)
    isis = np.diff(np.flatnonzero(a))
    assert isis[-1] > isis[0]  # spike-frequency adaptation


def test_cuba_current_decays_with_tau_syn_exactly():
    dt, tau_syn = 1e-3, 7e-3
    p = cuba.CubaLIParams(tau_syn=tau_syn, tau_mem=20e-3, w_in=2.0, dt=dt)
    state = cuba.init_state((1,), p, torch.float64)
    _, state = cuba.step_li(torch.tensor([1.0], dtype=torch.float64), state, p)
    i0 = state.i.item()
    assert i0 == pytest.approx(2.0 * (1 - math.exp(-dt / tau_syn)))
    for k in range(1, 30):
        _, state = cuba.step_li(torch.zeros(1, dtype=torch.float64), state, p)
        assert state.i.item() == pytest.approx(i0 * math.exp(-k * dt / tau_syn), rel=1e-12)


def test_cubalif_fires_and_matches_two_stage_integration():
    p = cuba.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, w_in=1.0, r=1.0, v_threshold=0.5, dt=1e-3)
    out, states = simulate(cuba.step, cuba.init_state((1,), p, torch.float64), p, [2.0] * 50)
    assert sum(out) > 0
    # hand recursion of the two exact-decay stages, with reset by subtraction
    b, a = math.exp(-1 / 5), math.exp(-1 / 10)
    i = v = 0.0
    expected = []
    for _ in range(50):
        i = i * b + 2.0 * (1 - b)
        v = v * a + i * (1 - a)
        s = 1.0 if v > 0.5 else 0.0
        v -= s * 0.5
        expected.append(s)
    assert out == expected


def izhikevich_reference(a, b, c, d, current, duration_ms=1000.0):
    """Independent integration: scipy's adaptive RK45 with event detection at v = 30 mV."""
    from scipy.integrate import solve_ivp

    def rhs(t, y):
        v, u = y
        return [0.04 * v * v + 5 * v + 140 - u + current, a * (b * v - u)]

    def peak(t, y):
        return y[0] - 30.0

    peak.terminal, peak.direction = True, 1
    t, y, spikes = 0.0, [-65.0, b * -65.0], []
    while t < duration_ms:
        sol = solve_ivp(rhs, (t, duration_ms), y, events=peak, rtol=1e-8, atol=1e-8)
        if sol.status == 1:
            t = sol.t_events[0][0]
            spikes.append(t)
            v, u = sol.y_events[0][0]
            y = [c, u + d]
        else:
            break
    return np.array(spikes)


# Izhikevich (2003), Fig. 2: the firing patterns of the presets under a step of current.
PRESETS = ["regular_spiking", "fast_spiking", "intrinsically_bursting", "chattering"]


def izhikevich_counts(dt, current=10.0):
    """All four presets at once, as one layer with per-neuron parameters."""
    abcd = torch.tensor([izhikevich.PRESETS[n] for n in PRESETS], dtype=torch.float64)
    p = izhikevich.IzhikevichParams(a=abcd[:, 0], b=abcd[:, 1], c=abcd[:, 2], d=abcd[:, 3], dt=dt)
    state = izhikevich.init_state((4,), p, torch.float64)
    x = torch.full((4,), current, dtype=torch.float64)
    times = [[] for _ in PRESETS]
    for k in range(int(round(1.0 / dt))):
        z, state = izhikevich.step(x, state, p)
        for i in torch.nonzero(z).flatten().tolist():
            times[i].append(k * dt * 1e3)
    return [np.array(t) for t in times]


def test_izhikevich_presets_match_reference_integration():
    coarse, fine = izhikevich_counts(2e-4), izhikevich_counts(1e-4)
    for i, name in enumerate(PRESETS):
        ref = izhikevich_reference(*izhikevich.PRESETS[name], 10.0)
        # stated tolerance: over 1 s at dt = 0.1 ms, the spike count is within 10 % of the
        # adaptive-step reference, and the error shrinks as dt shrinks (forward Euler converges)
        err_fine, err_coarse = abs(len(fine[i]) - len(ref)), abs(len(coarse[i]) - len(ref))
        assert err_fine <= 0.1 * len(ref), (name, len(fine[i]), len(ref))
        assert err_fine <= err_coarse, (name, err_fine, err_coarse)
    isi = [np.diff(t) for t in fine]
    assert isi[0][-1] > isi[0][0]  # regular spiking: tonic with spike-frequency adaptation
    assert len(fine[1]) > 2 * len(fine[0])  # fast spiking: much higher rate than regular spiking
    for i in (2, 3):  # intrinsically bursting, chattering: short ISIs inside bursts, long between
        assert isi[i].min() < 0.3 * isi[i].max()


def test_izhikevich_unknown_preset():
    with pytest.raises(ParameterError, match="preset"):
        izhikevich.IzhikevichParams.preset("sleepy")
