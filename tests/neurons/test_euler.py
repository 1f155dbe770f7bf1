"""Forward-Euler neurons by per-step coefficients (``neurons.euler``): hand-computed steps."""

import pytest
import torch

from spikeflow.errors import ParameterError
from spikeflow.neurons import euler, heaviside


def _run(step, params, xs, state):
    spikes, vs = [], []
    for x in xs:
        z, state = step(torch.tensor([x]), state, params, heaviside)
        spikes.append(int(z.item()))
        vs.append(state.v.item())
    return spikes, vs


def test_lif_decay_and_increment_forms_step_by_hand():
    # v <- 0.9 v + 0.5: 0.5, 0.95, 1.355 > 1 -> spike, reset to 0; then 0.5 again
    decay = euler.EulerLIFParams(decay=0.9, gain=1.0, bias=0.0, v_threshold=1.0, form="decay")
    inc = euler.EulerLIFParams(rate=0.1, r=10.0, v_threshold=1.0, form="increment")  # v + 0.1 (10 x - v)
    for p in (decay, inc):
        z, v = _run(euler.step_lif, p, [0.5] * 4, euler.EulerState(torch.zeros(1)))
        assert z == [0, 0, 1, 0]
        assert v == pytest.approx([0.5, 0.95, 0.0, 0.5], abs=1e-6)


def test_lif_reset_delay_resets_the_step_after_the_spike():
    p = euler.EulerLIFParams(decay=0.9, gain=1.0, bias=0.0, v_threshold=1.0, reset_delay=True)
    z, v = _run(euler.step_lif, p, [0.5] * 5, euler.EulerState(torch.zeros(1)))
    # 1.355 spikes and is kept; the next step's 0.9 * 1.355 + 0.5 is reset to 0 (no spike); then 0.5
    assert z == [0, 0, 1, 0, 0]
    assert v == pytest.approx([0.5, 0.95, 1.355, 0.0, 0.5], abs=1e-6)


def test_cubalif_current_first_in_both_forms():
    # decay form: i <- 0.5 i + x, v <- 0.5 v + i; increment form (rate 0.5, r 2): the same map
    xs = [1.0, 1.0, 0.0, 0.0]
    # i: 1, 1.5, 0.75, 0.375; v: 1, 2 -> spike (threshold 1.8), reset 0; 0.75; 0.375 + 0.375 = 0.75
    want_z, want_v = [0, 1, 0, 0], [1.0, 0.0, 0.75, 0.75]
    decay = euler.EulerCubaLIFParams(syn_decay=0.5, in_gain=1.0, decay=0.5, gain=1.0, bias=0.0, v_threshold=1.8)
    inc = euler.EulerCubaLIFParams(syn_rate=0.5, in_gain=1.0, rate=0.5, r=2.0, v_threshold=1.8, form="increment")
    for p in (decay, inc):
        z, v = _run(euler.step_cubalif, p, xs, euler.EulerCubaState(torch.zeros(1), torch.zeros(1)))
        assert z == want_z
        assert v == pytest.approx(want_v, abs=1e-6)


def test_bad_form_is_named():
    with pytest.raises(ParameterError, match="'form'"):
        euler.EulerLIFParams(form="midpoint")
