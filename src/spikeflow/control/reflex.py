"""A reflex: withdraw from a stimulus that ramps up after a random onset, before it does damage.

Two sensor channels send events (Poisson, seeded): channel 1 a nociceptor whose rate is
``base_hz`` before the onset and grows by ``slope_hz_per_ms`` every ms after it; channel 0 a
reference at a constant ``ref_hz``. The stimulus does damage ``damage_ms`` after its onset. A
withdrawal before the onset is a false alarm, one after the damage is too late; success is a
withdrawal in between. Reaction time is withdrawal time minus onset.

The detector is a spiking network run as a ``spikeflow.runtime.Stream`` (event engine, 1 ms steps):
each channel drives one integrate-and-fire neuron (weight 1, threshold 1/2, reset to 0),
the output spike counts are the two class scores (0: stay, 1: withdraw) and the Stream's softmax
gives the confidence. The stream restarts every ``window_ms``. Two controllers read the same stream:

- ``full_window`` acts at each window's end on the whole window's answer;
- ``early`` (anytime) acts on the first answer within a window that says withdraw with confidence
  >= ``confidence``, else at the window's end on the whole window's answer, as ``full_window``.

So on the same events the early controller never withdraws later than the full-window one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import nir
import numpy as np

from spikeflow.errors import ConfigError

EVENT_DTYPE = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]


@dataclass(frozen=True)
class ReflexTask:
    """The reflex task's timing (ms) and event rates (Hz); see the module docstring."""
    window_ms: int = 50
    onset_min_ms: int = 100
    onset_max_ms: int = 400
    damage_ms: int = 80
    base_hz: float = 20.0
    slope_hz_per_ms: float = 8.0
    ref_hz: float = 100.0

    def __post_init__(self):
        if self.window_ms < 1 or self.damage_ms < 1 or not 0 <= self.onset_min_ms <= self.onset_max_ms:
            raise ConfigError(f"reflex: window_ms and damage_ms must be >= 1 and 0 <= onset_min_ms <= onset_max_ms, "
                              f"got {asdict(self)}")

    @property
    def length_ms(self) -> int:
        """Long enough for the last window after the damage to end."""
        end = self.onset_max_ms + self.damage_ms
        return (end // self.window_ms + 2) * self.window_ms

    def trial(self, seed: int):
        """``(events, onset_ms)`` of one seeded trial (events sorted by time, µs)."""
        rng = np.random.default_rng(seed)
        onset = int(rng.integers(self.onset_min_ms, self.onset_max_ms + 1))
        t_ms = np.arange(self.length_ms)
        rate = self.base_hz + self.slope_hz_per_ms * np.clip(t_ms + 0.5 - onset, 0, None)  # Hz, per 1 ms bin
        parts = []
        for ch, hz in ((1, rate), (0, np.full(self.length_ms, self.ref_hz))):
            n = rng.poisson(hz * 1e-3)
            times = np.repeat(t_ms * 1000, n) + rng.integers(0, 1000, int(n.sum()))
            parts.append((times, np.full(len(times), ch)))
        t = np.concatenate([p[0] for p in parts])
        x = np.concatenate([p[1] for p in parts])
        order = np.argsort(t, kind="stable")
        ev = np.zeros(len(t), dtype=EVENT_DTYPE)
        ev["t"], ev["x"] = t[order], x[order]
        return ev, onset


def detector_graph(dt: float = 1e-3) -> nir.NIRGraph:
    """Two integrate-and-fire neurons, one per channel (NIR's IF: R = 1/dt adds one event per step)."""
    nodes = {"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.eye(2)),
             "cell": nir.IF(r=np.full(2, 1.0 / dt), v_threshold=np.full(2, 0.5), v_reset=np.zeros(2),
),
             "output": nir.Output(output_type=np.array([2]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "cell"), ("cell", "output")],
                        metadata={"dt": dt})


def trace_trial(stream, events, window_ms: int, length_ms: int):
    """The stream's answer after every 1 ms step, restarting each window, until the full-window
    controller withdraws: ``(labels, confidences, full_window_ms or None)``."""
    t = events["t"]
    labels, confs = [], []
    full = None
    for w0 in range(0, length_ms, window_ms):
        stream.t0_us = w0 * 1000
        stream.reset()
        for s in range(1, window_ms + 1):
            lo, hi = np.searchsorted(t, [(w0 + s - 1) * 1000, (w0 + s) * 1000], "left")
            if hi > lo:
                stream.push(events[lo:hi])
            pred = stream.advance_to((w0 + s) * 1000)
            labels.append(pred.label)
            confs.append(pred.confidence)
        if labels[-1] == 1:
            full = w0 + window_ms
            break
    return np.asarray(labels), np.asarray(confs), full


def early_time(labels, confs, window_ms: int, threshold: float):
    """The early controller's withdrawal (ms): the first confident withdraw answer, else a window's
    final answer when it says withdraw; None if neither happens."""
    for i in range(len(labels)):
        if labels[i] == 1 and (confs[i] >= threshold or (i + 1) % window_ms == 0):
            return i + 1
    return None


def run_trial(stream, events, window_ms: int, length_ms: int) -> dict:
    """Withdrawal times (ms, or None) of both controllers on one trial's events (``stream.threshold``)."""
    labels, confs, full = trace_trial(stream, events, window_ms, length_ms)
    return {"early": early_time(labels, confs, window_ms, stream.threshold), "full_window": full}


def _score(times, onsets, damage_ms: int) -> dict:
    ok = late = false = 0
    reaction = []
    for t, onset in zip(times, onsets):
        if t is not None and t < onset:
            false += 1
        elif t is None or t > onset + damage_ms:
            late += 1
        else:
            ok += 1
            reaction.append(t - onset)
    n = max(len(times), 1)
    r = np.asarray(reaction, dtype=np.float64)
    return {"success_rate": ok / n, "false_alarm_rate": false / n, "too_late_rate": late / n,
            "reaction_ms_mean": float(r.mean()) if len(r) else None,
            "reaction_ms_median": float(np.median(r)) if len(r) else None,
            "reaction_ms_p90": float(np.percentile(r, 90)) if len(r) else None}


def compare_controllers(task: ReflexTask, trials: int = 200, seed: int = 0, confidence: float = 0.9,
                        sweep=()) -> dict:
    """Both controllers on ``trials`` seeded trials (trial ``i`` uses seed ``seed + i``); ``sweep``: more
    confidence thresholds for the early controller, scored on the same trials."""
    from spikeflow.runtime.stream import Stream

    stream = Stream(detector_graph(), engine="event", decoder="count", confidence=confidence)
    thresholds = sorted({float(confidence), *(float(c) for c in sweep)})
    onsets, full, early = [], [], {c: [] for c in thresholds}
    for i in range(trials):
        events, onset = task.trial(seed + i)
        labels, confs, f = trace_trial(stream, events, task.window_ms, task.length_ms)
        onsets.append(onset)
        full.append(f)
        for c in thresholds:
            early[c].append(early_time(labels, confs, task.window_ms, c))
    main = early[float(confidence)]
    never_later = all(all(e is not None and (f is None or e <= f) or (e is None and f is None)
                          for e, f in zip(times, full)) for times in early.values())
    return {"task": asdict(task), "trials": trials, "seed": seed, "confidence": confidence,
            "early": _score(main, onsets, task.damage_ms), "full_window": _score(full, onsets, task.damage_ms),
            "early_never_later": bool(never_later),
            "sweep": {f"{c:g}": _score(early[c], onsets, task.damage_ms) for c in thresholds},
            "per_trial": {"onset_ms": onsets, "early_ms": main, "full_window_ms": full}}
