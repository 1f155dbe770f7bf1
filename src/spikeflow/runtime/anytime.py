"""Accuracy against time observed, and time to decision, of a ``Stream`` over labelled recordings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from spikeflow.runtime.stream import Stream


def latency_percentiles(seconds: Sequence[float], name: str = "latency_per_chunk_ms") -> Dict:
    """``{p50_<name>, p99_<name>, max_<name>}`` in ms of per-chunk wall times (None when there are none)."""
    if not len(seconds):
        return {f"{q}_{name}": None for q in ("p50", "p99", "max")}
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {f"p50_{name}": float(np.percentile(ms, 50)), f"p99_{name}": float(np.percentile(ms, 99)),
            f"max_{name}": float(ms.max())}


@dataclass
class AnytimeReport:
    """Accuracy over time of a ``Stream``: accuracy at each checkpoint (fraction of the recording window),
    the early-exit answers' accuracy and share decided, and per recording the fraction used to decide.
    """
    fractions: np.ndarray  # fraction of the recording window at each checkpoint
    accuracy: np.ndarray  # accuracy at each checkpoint
    early_accuracy: float  # accuracy of the first answer with confidence >= threshold (else the final one)
    decided: float  # share of recordings that reached the threshold
    decision_fraction: np.ndarray  # per recording: fraction of the window used to decide (1.0 if never)
    n: int
    threshold: float
    events: int
    push_seconds: List[float] = field(default_factory=list)  # wall time of every push
    push_events: List[int] = field(default_factory=list)

    def accuracy_at(self, fraction: float) -> float:
        i = int(np.argmin(np.abs(self.fractions - fraction)))
        return float(self.accuracy[i])

    @property
    def mean_fraction(self) -> float:
        return float(self.decision_fraction.mean()) if self.n else float("nan")

    @property
    def events_per_second(self) -> float:
        total = sum(self.push_seconds)
        return float(sum(self.push_events) / total) if total > 0 else float("nan")

    def as_dict(self) -> Dict:
        return {
            "n": self.n, "threshold": self.threshold,
            "accuracy_vs_fraction": {f"{f:.3f}": float(a) for f, a in zip(self.fractions, self.accuracy)},
            "early_exit_accuracy": self.early_accuracy, "decided": self.decided,
            "mean_fraction_needed": self.mean_fraction,
            "decision_fraction_quantiles": {q: float(np.quantile(self.decision_fraction, q))
                                            for q in (0.1, 0.25, 0.5, 0.75, 0.9)} if self.n else {},
            "events_per_second": self.events_per_second,
            "mean_latency_per_push_ms": float(np.mean(self.push_seconds) * 1e3) if self.push_seconds else None,
            **latency_percentiles(self.push_seconds, "latency_per_push_ms"),
            "mean_latency_per_event_us": float(sum(self.push_seconds) / max(sum(self.push_events), 1) * 1e6),
        }


def evaluate_over_time(stream: Stream, recordings: Iterable[Tuple[object, int]], duration_us: int,
                       checkpoints: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0), chunk_us: int = 10_000,
                       progress: Optional[callable] = None) -> AnytimeReport:
    """Push each recording in ``chunk_us`` chunks over ``[t0, t0 + duration_us)``.

    At each checkpoint fraction ``f`` the stream is told that time ``f * duration`` has passed
    and its answer is scored. The early-exit answer is the stream's first prediction with
    confidence >= its threshold (checked after every chunk), else its final answer.
    """
    fr = sorted(set(float(f) for f in checkpoints) | {1.0})
    t0 = stream.t0_us
    grid = sorted(set([int(round(f * duration_us)) for f in fr] +
                      list(range(chunk_us, duration_us + 1, chunk_us))))
    marks = {int(round(f * duration_us)): i for i, f in enumerate(fr)}
    correct = np.zeros(len(fr))
    early_correct, decided, fractions, n, n_events = 0, 0, [], 0, 0
    push_s, push_ev = [], []
    for rec, label in recordings:
        arr = getattr(rec, "array", rec)
        t = arr["t"]
        stream.reset()
        lo = 0
        for b in grid:
            hi = int(np.searchsorted(t, t0 + b, "left"))
            tic = time.perf_counter()
            if hi > lo:
                stream.push(arr[lo:hi])
            pred = stream.advance_to(t0 + b)
            push_s.append(time.perf_counter() - tic)
            push_ev.append(hi - lo)
            lo = hi
            if b in marks:
                correct[marks[b]] += pred.label == label
        final = stream.prediction
        dec = stream.decision
        if dec is not None:
            decided += 1
            early_correct += dec.label == label
            fractions.append(min((dec.t_us - t0) / duration_us, 1.0))
        else:
            early_correct += final.label == label
            fractions.append(1.0)
        n += 1
        n_events += lo
        if progress is not None:
            progress(n)
    return AnytimeReport(np.array(fr), correct / max(n, 1), early_correct / max(n, 1), decided / max(n, 1),
                         np.array(fractions), n, stream.threshold, n_events, push_s, push_ev)
