"""The reflex comparison's deterministic parts: hand-counted decisions, scoring, and early <= full window."""

import math

import numpy as np
import pytest

from spikeflow.control.reflex import EVENT_DTYPE, ReflexTask, _score, compare_controllers, detector_graph, run_trial
from spikeflow.errors import ConfigError
from spikeflow.runtime.stream import Stream


def _events(pairs):
    ev = np.zeros(len(pairs), dtype=EVENT_DTYPE)
    ev["t"] = [t for t, _ in pairs]
    ev["x"] = [c for _, c in pairs]
    return ev


def _stream(confidence=0.9):
    return Stream(detector_graph(), engine="event", decoder="count", confidence=confidence)


def test_hand_counted_withdrawal_times():
    # reference (channel 0) at 1.2 ms, nociceptor (channel 1) at 3.5, 4.5, 5.5, 6.5 ms. Each event makes its
    # neuron spike in the same 1 ms step, so after step s the counts are (1, s - 3) for s = 4..7. The softmax
    # confidence of "withdraw" is e^(n1 - n0) / (1 + e^(n1 - n0)): 0.73 after 5 ms, 0.88 after 6 ms,
    # 0.95 >= 0.9 after 7 ms. The full window (10 ms) says withdraw (4 > 1) at its end.
    assert 1 / (1 + math.exp(-2)) < 0.9 < 1 / (1 + math.exp(-3))
    ev = _events([(1200, 0), (3500, 1), (4500, 1), (5500, 1), (6500, 1)])
    assert run_trial(_stream(), ev, window_ms=10, length_ms=30) == {"early": 7, "full_window": 10}
    # a stricter threshold (0.99 needs a lead of 5) is never reached: the early controller acts at the window end
    assert run_trial(_stream(0.99), ev, window_ms=10, length_ms=30) == {"early": 10, "full_window": 10}


def test_an_early_burst_is_a_false_alarm_only_for_the_early_controller():
    # three nociceptor events first (lead 3 -> 0.95 after 3 ms), then six reference events: the whole window
    # says stay, and nothing follows
    ev = _events([(500, 1), (1500, 1), (2500, 1)] + [(3500 + 1000 * k, 0) for k in range(6)])
    assert run_trial(_stream(), ev, window_ms=10, length_ms=30) == {"early": 3, "full_window": None}


def test_scoring():
    s = _score([5, 20, 150, None], onsets=[10, 10, 10, 10], damage_ms=80)
    assert s["false_alarm_rate"] == 0.25 and s["too_late_rate"] == 0.5 and s["success_rate"] == 0.25
    assert s["reaction_ms_median"] == 10.0


def test_early_is_never_later_on_seeded_trials():
    task = ReflexTask(window_ms=20, onset_min_ms=30, onset_max_ms=60, damage_ms=40)
    r = compare_controllers(task, trials=3, seed=0)
    assert r["early_never_later"]
    for e, f in zip(r["per_trial"]["early_ms"], r["per_trial"]["full_window_ms"]):
        assert e is not None and (f is None or e <= f)
        assert f is None or f % 20 == 0  # the full-window controller acts on window ends only
    # the trials are reproducible; a threshold of 1 is never reached by a softmax of two finite counts, so the
    # early controller then acts exactly as the full-window one
    again = compare_controllers(task, trials=3, seed=0, sweep=(1.0,))
    assert again["per_trial"] == r["per_trial"]
    assert again["sweep"]["1"] == again["full_window"]


def test_trial_rates_follow_the_task():
    task = ReflexTask(onset_min_ms=200, onset_max_ms=200, base_hz=0.0, ref_hz=1000.0, slope_hz_per_ms=0.0)
    ev, onset = task.trial(0)
    assert onset == 200
    assert np.all(ev["x"] == 0) and np.all(np.diff(ev["t"]) >= 0)
    assert abs(len(ev) - task.length_ms) < 5 * math.sqrt(task.length_ms)  # Poisson, mean 1 per ms


def test_bad_task():
    with pytest.raises(ConfigError, match="window_ms"):
        ReflexTask(window_ms=0)


def test_reflex_command(capsys):
    import json

    from spikeflow.cli import main

    assert main(["control", "reflex", "--trials", "2", "--window-ms", "20", "--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trials"] == 2 and r["task"]["window_ms"] == 20 and r["early_never_later"]
    assert main(["control", "reflex", "--trials", "2", "--window-ms", "20"]) == 0
    out = capsys.readouterr().out
    assert "early: success" in out and "full_window: success" in out
