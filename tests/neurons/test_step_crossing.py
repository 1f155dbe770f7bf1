"""``step_crossing``: one step with the reset at the threshold crossing inside the step, checked
against the continuous solution (reset at the true crossing time t*, then evolved to the step's end)."""

import math

import pytest
import torch

from spikeflow.neurons import cuba, if_, lif

F64 = torch.float64


def _t(x):
    return torch.tensor([x], dtype=F64)


@pytest.mark.parametrize("reset, v_reset", [("subtract", 0.0), ("to_reset", 0.2)])
def test_lif_bias_crossing_is_exact(reset, v_reset):
    # r * drive = 1.5, tau = 20 ms, v0 = 0.9, threshold 1: t* = tau ln((1.5 - 0.9) / (1.5 - 1)) = 3.65 ms
    # inside a 5 ms step; reset to 0 (subtract from 1) or 0.2, then v_end = 1.5 + (v_r - 1.5) e^{-(dt - t*)/tau}
    tau, dt, drive = 20e-3, 5e-3, 0.15
    p = lif.LIFParams(tau_mem=tau, r=10.0, dt=dt, reset=reset, v_reset=v_reset)
    t_star = tau * math.log(0.6 / 0.5)
    v_r = 0.0 if reset == "subtract" else v_reset
    expected = 1.5 + (v_r - 1.5) * math.exp(-(dt - t_star) / tau)
    z, s = lif.step_crossing(_t(drive), _t(drive), lif.LIFState(_t(0.9)), p)
    assert z.item() == 1.0
    assert s.v.item() == pytest.approx(expected, abs=1e-13)
    _, s_step = lif.step(_t(drive), lif.LIFState(_t(0.9)), p)
    assert abs(s_step.v.item() - expected) > 1e-3  # the end-of-step reset is not the continuous state


def test_lif_jump_crossing_is_the_end_of_step_reset():
    # no drive: an input jump crosses at the step's end, so both timings give the same state
    p = lif.LIFParams(tau_mem=20e-3, r=10.0, dt=1e-3, reset="to_reset", v_reset=0.1)
    x, zero = _t(2.0), _t(0.0)
    a = lif.step_crossing(x, zero, lif.LIFState(_t(0.5)), p)
    b = lif.step(x, lif.LIFState(_t(0.5)), p)
    assert a[0].item() == b[0].item() == 1.0 and a[1].v.item() == b[1].v.item() == pytest.approx(0.1)


def test_if_bias_crossing_keeps_the_charge_after_it():
    # v0 = 0.9, 0.3 per step from the drive: crosses 1 a third into the step; reset to 0.2 there,
    # then the remaining two thirds add 0.2: v_end = 0.4 (the end-of-step reset gives 0.2)
    p = if_.IFParams(r=1.0, dt=1e-3, reset="to_reset", v_reset=0.2)
    z, s = if_.step_crossing(_t(0.3), _t(0.3), if_.IFState(_t(0.9)), p)
    assert z.item() == 1.0 and s.v.item() == pytest.approx(0.4, abs=1e-15)
    assert if_.step(_t(0.3), if_.IFState(_t(0.9)), p)[1].v.item() == pytest.approx(0.2)


def _cuba_errors(dt, reset, frac=0.4):
    """|v_end - continuous| for step_crossing and for step: one step without input from I0 = 0.15
    (r I0 = 1.5, decaying with tau_syn = 5 ms: a strongly curved v) and the v0 for which the
    continuous membrane crosses 1 at t* = frac * dt; reset there, then evolved to dt."""
    ts, tm, r, th, v_reset = 5e-3, 20e-3, 10.0, 1.0, 0.2
    i0 = 0.15

    def v_cont(s, v_start, i_start):
        return v_start * math.exp(-s / tm) + r * i_start * ts / (ts - tm) * (math.exp(-s / ts) - math.exp(-s / tm))

    t_star = frac * dt
    v0 = (th - v_cont(t_star, 0.0, i0)) * math.exp(t_star / tm)  # v_cont(t*, v0, i0) = th
    assert v0 < th and v_cont(t_star, v0, i0) == pytest.approx(th, abs=1e-14)
    v_after = th - th if reset == "subtract" else v_reset
    truth = v_cont(dt - t_star, v_after, i0 * math.exp(-t_star / ts))
    p = cuba.CubaLIFParams(tau_syn=ts, tau_mem=tm, r=r, v_threshold=th, v_reset=v_reset, dt=dt, reset=reset)
    state = cuba.CubaState(_t(v0), _t(i0))
    zc, sc = cuba.step_crossing(_t(0.0), state, p)
    zs, ss = cuba.step(_t(0.0), state, p)
    assert zc.item() == zs.item() == 1.0
    assert sc.i.item() == ss.i.item()  # the current is not reset
    return abs(sc.v.item() - truth), abs(ss.v.item() - truth)


@pytest.mark.parametrize("reset", ["subtract", "to_reset"])
def test_cubalif_interpolated_crossing_is_second_order(reset):
    """The linearly interpolated crossing time is O(dt^2) off, and so is the membrane after the
    step (halving dt divides its error by about 4), where the end-of-step reset is O(dt) off."""
    errs = [_cuba_errors(dt, reset) for dt in (8e-4, 4e-4, 2e-4, 1e-4)]
    for (e_cross, e_step) in errs:
        assert e_cross < e_step / 5
    for (e1, _), (e2, _) in zip(errs, errs[1:]):
        assert 3.5 < e1 / e2 < 4.5


def test_lif_and_if_crossing_lags():
    """The lag a spike carries, (t_n - t*) / dt, for the crossings solved above: LIF's bias
    crossing at t* = tau ln(0.6/0.5) of a 5 ms step, IF's a third into the step, jumps at the end."""
    p = lif.LIFParams(tau_mem=20e-3, r=10.0, dt=5e-3)
    *_, lag = lif.step_crossing(_t(0.15), _t(0.15), lif.LIFState(_t(0.9)), p, return_lag=True)
    assert lag.item() == pytest.approx(1.0 - 20e-3 * math.log(0.6 / 0.5) / 5e-3, abs=1e-12)
    *_, lag = lif.step_crossing(_t(2.0), _t(0.0), lif.LIFState(_t(0.5)), p, return_lag=True)
    assert lag.item() == 0.0
    q = if_.IFParams(r=1.0, dt=1e-3)
    *_, lag = if_.step_crossing(_t(0.3), _t(0.3), if_.IFState(_t(0.9)), q, return_lag=True)
    assert lag.item() == pytest.approx(2.0 / 3.0, abs=1e-12)
    *_, lag = if_.step_crossing(_t(2.0), _t(0.0), if_.IFState(_t(0.5)), q, return_lag=True)
    assert lag.item() == 0.0


def _dirac_response(lag, dt, ts, tm, r, w_in):
    """Step-end (i, v) of a CubaLIF at rest after a unit charge at ``lag * dt`` before the step's
    end (closed form: I jumps by w_in / ts, then v = r dI K(s); equal taus: K(s) = (s/tm) e^{-s/tm})."""
    s, di = lag * dt, w_in / ts
    k = s / tm * math.exp(-s / tm) if ts == tm else ts / (ts - tm) * (math.exp(-s / ts) - math.exp(-s / tm))
    return di * math.exp(-s / ts), r * di * k


@pytest.mark.parametrize("ts, tm", [(5e-3, 20e-3), (20e-3, 5e-3), (10e-3, 10e-3)])
def test_cubalif_lag_gains_are_the_dirac_response_derivative(ts, tm):
    """``lag_gains``: per unit of held input (charge dt), the derivative of the closed-form Dirac
    response with respect to its lag at the step's middle (central difference). For a unit charge
    at lag 0.9, the held step (a Dirac at the middle) is O(dt) off the closed form in ``v`` (error
    ratio ~2 per halving of dt); with the lag term, ``v`` and ``i`` are O(dt^2) off (ratio ~4)."""
    r, w_in = 10.0, 1.5
    for dt in (1e-3, 1e-4):
        p = cuba.CubaLIFParams(tau_syn=ts, tau_mem=tm, r=r, w_in=w_in, dt=dt)
        g_i, g_v = p.lag_gains
        h = 1e-4
        hi, lo = _dirac_response(0.5 + h, dt, ts, tm, r, w_in), _dirac_response(0.5 - h, dt, ts, tm, r, w_in)
        # a unit held input x is the charge dt: dt * d(response to a unit charge)/dlam = w_in G_i, r w_in G_v
        assert w_in * g_i == pytest.approx(dt * (hi[0] - lo[0]) / (2 * h), rel=1e-6)
        assert r * w_in * g_v == pytest.approx(dt * (hi[1] - lo[1]) / (2 * h), rel=1e-6)
    lag = 0.9
    errs = []
    for dt in (4e-4, 2e-4, 1e-4):
        p = cuba.CubaLIFParams(tau_syn=ts, tau_mem=tm, r=r, w_in=w_in, dt=dt, v_threshold=1e9)
        x = _t(1.0 / dt)  # unit charge
        rest = cuba.CubaState(_t(0.0), _t(0.0))
        _, with_lag = cuba.step_crossing(x, rest, p, lag_input=x * (lag - 0.5))
        _, held = cuba.step(x, rest, p)
        i_true, v_true = _dirac_response(lag, dt, ts, tm, r, w_in)
        errs.append((abs(with_lag.v.item() - v_true), abs(held.v.item() - v_true),
                     abs(with_lag.i.item() - i_true)))
    for (e1, h1, c1), (e2, h2, c2) in zip(errs, errs[1:]):
        assert 3.5 < e1 / e2 < 4.5 and 3.5 < c1 / c2 < 4.5  # second order with the lag term
        assert 1.8 < h1 / h2 < 2.2  # first order without it
        assert e1 < h1 / 50
