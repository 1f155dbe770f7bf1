"""Encoders: values → spike tensors, time-major ``[T, B, ...]``.

Static inputs (images, features) come as ``[B, ...]`` with values in ``[0, 1]`` and a
number of steps ``T``; signals that already vary in time (``delta``) come as
``[T, B, ...]``. Randomness takes a ``seed`` (or a ``torch.Generator``).
"""

from __future__ import annotations

import math

import torch

from spikeflow.errors import InputError, ParameterError


def _gen(seed, device) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _check_T(T) -> int:
    if int(T) != T or int(T) < 1:
        raise ParameterError(f"encoder: T (number of steps) must be an integer >= 1, got {T}")
    return int(T)


def _check_unit(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.get_default_dtype() if not torch.is_tensor(x) else None)
    if not x.is_floating_point():
        x = x.float()
    if not torch.isfinite(x).all():
        raise InputError(f"{name}: input holds NaN or inf")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise InputError(f"{name}: input must lie in [0, 1] (got "
                         f"{float(x.min()):.3g}..{float(x.max()):.3g}); scale it first")
    return x


def rate(x, T: int, *, mode: str = "bernoulli", max_rate: float | None = None, dt: float = 1e-3, seed=None):
    """Rate coding. ``bernoulli``: at each step a spike with probability ``p``; ``poisson``:
    a Poisson count with mean ``p`` per step. ``p = x`` or, with ``max_rate`` (Hz),
    ``p = x * max_rate * dt``."""
    T = _check_T(T)
    x = _check_unit(x, "rate")
    p = x if max_rate is None else x * (max_rate * dt)
    g = _gen(seed, x.device)
    shape = (T, *x.shape)
    if mode == "bernoulli":
        if p.numel() and p.max() > 1:
            raise ParameterError(f"rate: max_rate * dt = {max_rate * dt} > 1 spike per step; use "
                                 f"mode='poisson' or a smaller dt")
        return (torch.rand(shape, generator=g, device=x.device, dtype=x.dtype) < p).to(x.dtype)
    if mode == "poisson":
        return torch.poisson(p.expand(shape).contiguous(), generator=g)
    raise ParameterError(f"rate: mode must be 'bernoulli' or 'poisson', got {mode!r}")


def latency(x, T: int, *, mode: str = "linear", threshold: float = 0.01):
    """Time-to-first-spike: one spike per input, earlier for larger values; none at or below ``threshold``.

    ``linear``: step ``round((1 - x) * (T - 1))``; ``log``: step
    ``round((T - 1) * ln(1 / x) / ln(1 / threshold))`` (x = 1 at step 0, x = threshold at T - 1).
    """
    T = _check_T(T)
    x = _check_unit(x, "latency")
    if not 0 < threshold < 1:
        raise ParameterError(f"latency: threshold must be in (0, 1), got {threshold}")
    if mode == "linear":
        steps = torch.round((1 - x) * (T - 1))
    elif mode == "log":
        steps = torch.round((T - 1) * torch.log(1 / x.clamp(min=threshold)) / math.log(1 / threshold))
    else:
        raise ParameterError(f"latency: mode must be 'linear' or 'log', got {mode!r}")
    steps = steps.clamp(0, T - 1).long()
    out = torch.zeros((T, *x.shape), dtype=x.dtype, device=x.device)
    fire = x > threshold
    out.scatter_(0, steps.unsqueeze(0), fire.to(x.dtype).unsqueeze(0))
    return out


def delta(x, threshold: float = 0.1):
    """Delta modulation of a signal ``[T, B, ...]`` → ``[T, B, 2, ...]`` (channel 0 up, 1 down).

    A step emits an up (down) spike when the signal is at least ``threshold`` above (below)
    the reference; the reference starts at ``x[0]`` and jumps to the signal at each spike.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    if x.ndim < 2:
        raise InputError(f"delta: input must be time-major [T, B, ...], got shape {tuple(x.shape)}")
    if not threshold > 0:
        raise ParameterError(f"delta: threshold must be > 0, got {threshold}")
    out = torch.zeros((x.shape[0], x.shape[1], 2, *x.shape[2:]), dtype=x.dtype, device=x.device)
    ref = x[0].clone()
    for t in range(1, x.shape[0]):
        up = x[t] - ref >= threshold
        down = ref - x[t] >= threshold
        out[t, :, 0] = up.to(x.dtype)
        out[t, :, 1] = down.to(x.dtype)
        ref = torch.where(up | down, x[t], ref)
    return out


def gaussian_fields(x, n_neurons: int, *, vmin: float = 0.0, vmax: float = 1.0, beta: float = 1.5):
    """Responses ``[..., n_neurons]`` of Gaussian receptive fields: centres evenly spaced from
    ``vmin`` to ``vmax``, width ``sigma = (vmax - vmin) / (beta * (n - 2))`` (the width rule
    of Bohte, Kok & La Poutre 2002, with beta = 1.5)."""
    if int(n_neurons) < 3:
        raise ParameterError(f"population: n_neurons must be >= 3, got {n_neurons}")
    if not vmax > vmin:
        raise ParameterError(f"population: need vmax > vmin, got {vmin}, {vmax}")
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    n = int(n_neurons)
    centres = torch.linspace(vmin, vmax, n, dtype=x.dtype, device=x.device)
    sigma = (vmax - vmin) / (beta * (n - 2))
    return torch.exp(-((x.unsqueeze(-1) - centres) ** 2) / (2 * sigma**2))


def population(x, T: int, n_neurons: int, *, vmin: float = 0.0, vmax: float = 1.0, beta: float = 1.5,
               encoding: str = "latency", seed=None):
    """Population coding: each value drives ``n_neurons`` Gaussian receptive fields whose
    responses (0..1) are then coded by ``latency`` (strong response fires first), ``rate``
    (Bernoulli) or ``current`` (the responses repeated). Output ``[T, B, ..., n_neurons]``."""
    r = gaussian_fields(x, n_neurons, vmin=vmin, vmax=vmax, beta=beta)
    if encoding == "latency":
        return latency(r, T)
    if encoding == "rate":
        return rate(r, T, seed=seed)
    if encoding == "current":
        return direct(r, T)
    raise ParameterError(f"population: encoding must be 'latency', 'rate' or 'current', got {encoding!r}")


def direct(x, T: int):
    """Direct (current) coding: the analogue input repeated at every step, ``[T, B, ...]``."""
    T = _check_T(T)
    x = torch.as_tensor(x)
    return x.unsqueeze(0).expand(T, *x.shape).clone()


__all__ = ["delta", "direct", "gaussian_fields", "latency", "population", "rate"]
