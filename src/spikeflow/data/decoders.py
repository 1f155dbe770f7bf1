"""Decoders: time-major outputs ``[T, B, N]`` → per-class scores ``[B, N]`` (or times).

The LI readout uses ``spikeflow.neurons.li`` (the one source of neuron math).
"""

from __future__ import annotations

import torch

from spikeflow.errors import InputError, ParameterError


def _tm(x, name) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim < 2:
        raise InputError(f"{name}: input must be time-major [T, B, ...], got shape {tuple(x.shape)}")
    return x if x.is_floating_point() else x.float()


def spike_count(spikes):
    """Spikes summed over time."""
    return _tm(spikes, "spike_count").sum(0)


def mean_rate(spikes, dt: float | None = None):
    """Spikes per step, or per second when ``dt`` (s) is given."""
    s = _tm(spikes, "mean_rate")
    r = s.mean(0)
    return r / dt if dt else r


def li_membrane(current, *, tau_mem: float = 20e-3, dt: float = 1e-3):
    """Membrane ``[T, B, N]`` of a leaky-integrator readout driven by ``current`` ``[T, B, N]``."""
    from spikeflow.neurons import li

    x = _tm(current, "li_membrane")
    params = li.LIParams(tau_mem=tau_mem, dt=dt)
    state = li.init_state(x.shape[1:], params, dtype=x.dtype, device=x.device)
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        out[t], state = li.step(x[t], state, params)
    return out


def max_membrane(v):
    """Largest membrane value over time (a common readout for LI output layers)."""
    return _tm(v, "max_membrane").max(0).values


def last_membrane(v):
    """Scores ``[B, ...]`` from a membrane trace ``v [T, B, ...]``: its value at the last step."""
    return _tm(v, "last_membrane")[-1]


def first_spike_time(spikes, dt: float | None = None):
    """Step (or time in s with ``dt``) of each neuron's first spike; ``T`` (or ``T*dt``) if it never fires.
    The predicted class is the ``argmin``."""
    s = _tm(spikes, "first_spike_time")
    T = s.shape[0]
    fired = s > 0
    steps = torch.arange(T, device=s.device).view(T, *([1] * (s.ndim - 1))).expand_as(s)
    first = torch.where(fired, steps, torch.full_like(steps, T)).min(0).values.to(s.dtype)
    return first * dt if dt else first


def population_vote(spikes, n_classes: int):
    """Spike counts of ``[T, B, n_classes * k]`` summed within each class's group of ``k`` neurons."""
    s = _tm(spikes, "population_vote")
    n = s.shape[-1]
    if n_classes < 1 or n % n_classes:
        raise ParameterError(f"population_vote: {n} output neurons do not split into {n_classes} equal groups")
    return s.sum(0).reshape(*s.shape[1:-1], n_classes, n // n_classes).sum(-1)


def predict(scores, *, lower_is_better: bool = False):
    """Class index from decoder scores (``argmin`` for first-spike times)."""
    scores = torch.as_tensor(scores)
    return scores.argmin(-1) if lower_is_better else scores.argmax(-1)


__all__ = ["first_spike_time", "last_membrane", "li_membrane", "max_membrane", "mean_rate", "population_vote",
           "predict", "spike_count"]
