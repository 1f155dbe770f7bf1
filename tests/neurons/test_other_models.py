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


def cuba_step_response(t, tau_syn, tau_mem, r=1.0, w_in=1.0, level=1.0):
    """Closed-form membrane (relative to v_leak) of NIR's CubaLIF ODEs from rest, for an input
    switched on at t = 0: I(t) = w_in x (1 - e^{-t/ts}),
    u(t) = r w_in x [1 - e^{-t/tm} - ts / (ts - tm) (e^{-t/ts} - e^{-t/tm})]; equal taus:
    u(t) = r w_in x [1 - e^{-t/tau} (1 + t/tau)]."""
    if t <= 0:
        return 0.0
    g = r * w_in * level
    if tau_syn == tau_mem:
        return g * (1.0 - math.exp(-t / tau_mem) * (1.0 + t / tau_mem))
    es, em = math.exp(-t / tau_syn), math.exp(-t / tau_mem)
    return g * (1.0 - em - tau_syn / (tau_syn - tau_mem) * (es - em))


CUBA_TAUS = [(5e-3, 20e-3), (30e-3, 8e-3), (10e-3, 10e-3)]


@pytest.mark.parametrize("tau_syn, tau_mem", CUBA_TAUS)
def test_cubalif_membrane_is_exact_for_constant_input(tau_syn, tau_mem):
    """At every step the membrane equals the closed-form solution of the coupled ODE."""
    dt, r, w_in, vl, level = 1e-3, 2.5, 1.5, 0.1, 0.8
    p = cuba.CubaLIParams(tau_syn=tau_syn, tau_mem=tau_mem, r=r, w_in=w_in, v_leak=vl, dt=dt)
    out, states = simulate(cuba.step_li, cuba.init_state((1,), p, torch.float64), p, [level] * 200)
    for k in range(1, 201):
        expected = vl + cuba_step_response(k * dt, tau_syn, tau_mem, r, w_in, level)
        assert out[k - 1] == pytest.approx(expected, rel=1e-12, abs=1e-14)
        assert states[k - 1].i.item() == pytest.approx(w_in * level * (1 - math.exp(-k * dt / tau_syn)), rel=1e-12)


@pytest.mark.parametrize("tau_syn, tau_mem", CUBA_TAUS)
def test_cubalif_membrane_is_exact_for_pulse_input(tau_syn, tau_mem):
    """A pulse held for 3 steps is the difference of two step responses (superposition)."""
    dt, r, level = 0.5e-3, 4.0, 2.0
    p = cuba.CubaLIParams(tau_syn=tau_syn, tau_mem=tau_mem, r=r, dt=dt)
    xs = [level] * 3 + [0.0] * 150
    out, _ = simulate(cuba.step_li, cuba.init_state((1,), p, torch.float64), p, xs)
    for k in range(1, len(xs) + 1):
        t = k * dt
        expected = (cuba_step_response(t, tau_syn, tau_mem, r, 1.0, level)
                    - cuba_step_response(t - 3 * dt, tau_syn, tau_mem, r, 1.0, level))
        assert out[k - 1] == pytest.approx(expected, rel=1e-11, abs=1e-14)


def test_cubalif_nearly_equal_time_constants_are_stable():
    """tau_syn = tau_mem (1 + 1e-10): the naive ts / (ts - tm) (b - a) loses ~6 digits; the step
    must match the equal-tau closed form to 1e-12."""
    tau, dt = 10e-3, 1e-3
    p = cuba.CubaLIParams(tau_syn=tau * (1 + 1e-10), tau_mem=tau, dt=dt)
    out, _ = simulate(cuba.step_li, cuba.init_state((1,), p, torch.float64), p, [1.0] * 100)
    for k in range(1, 101):
        assert out[k - 1] == pytest.approx(cuba_step_response(k * dt, tau, tau), rel=1e-9, abs=1e-14)
    # learned (tensor) time constants: same value, finite gradients at exact equality
    ts = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    tm = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    k_coef = cuba.CubaLIParams(tau_syn=ts, tau_mem=tm, dt=dt).coupling
    assert k_coef.item() == pytest.approx(dt / tau * math.exp(-dt / tau), rel=1e-15)
    k_coef.backward()
    assert torch.isfinite(ts.grad) and torch.isfinite(tm.grad)
    # d K / d tau_syn at equality, by central differences of the unequal closed form
    h = 1e-6  # 1e-4 of tau: far enough from equality for the naive form, close enough for O(h^2)

    def k_of(ts_):
        return ts_ / (ts_ - tau) * (math.exp(-dt / ts_) - math.exp(-dt / tau))

    assert ts.grad.item() == pytest.approx((k_of(tau + h) - k_of(tau - h)) / (2 * h), rel=1e-4)


def test_cubalif_spikes_follow_the_closed_form_with_subtractive_reset():
    """Reset by subtraction is linear: v_n = v_step(n dt) - th * sum over earlier spikes k of a^(n-k),
    so the spike train follows from the closed form alone."""
    ts, tm, th, dt = 5e-3, 10e-3, 0.5, 1e-3
    p = cuba.CubaLIFParams(tau_syn=ts, tau_mem=tm, w_in=1.0, r=1.0, v_threshold=th, dt=dt)
    out, states = simulate(cuba.step, cuba.init_state((1,), p, torch.float64), p, [2.0] * 60)
    a = math.exp(-dt / tm)
    spikes, expected = [], []
    for n in range(1, 61):
        v = cuba_step_response(n * dt, ts, tm, level=2.0) - th * sum(a ** (n - k) for k in spikes)
        s = 1.0 if v > th else 0.0
        if s:
            spikes.append(n)
            v -= th
        expected.append(s)
        assert states[n - 1].v.item() == pytest.approx(v, abs=1e-12)
    assert out == expected and sum(out) >= 5


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
