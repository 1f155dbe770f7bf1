"""Populations: groups of neurons of one model, and spike inputs (Poisson, spike sources).

Neuron math comes from :mod:`spikeflow.neurons`: ``LIF`` is the exact-decay LIF with
exponential current synapses of :mod:`spikeflow.neurons.expsyn` (Brian2's CUBA model),
``CubaLIF`` is :mod:`spikeflow.neurons.cuba`, ``Izhikevich`` is
:mod:`spikeflow.neurons.izhikevich`. Synaptic channels are named (``"exc"``, ``"inh"``);
a projection adds its weights to one channel of its target population.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from spikeflow.errors import ConfigError

MAX_NEURONS = 2**31 - 1  # int32 indices


def _check_size(n, kind):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ConfigError(f"{kind}: population size 'n' must be a positive integer, got {n!r}")
    if n > MAX_NEURONS:
        raise ConfigError(f"{kind}: population size 'n' = {n} exceeds the int32 index limit {MAX_NEURONS}")


def _check_positive(name, value, kind):
    if not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{kind}: '{name}' must be a finite number > 0 (seconds for time constants), got {value!r}")


class Population:
    kind = "population"
    name: str | None
    n: int

    @property
    def channels(self) -> Tuple[str, ...]:
        return ()


@dataclass
class LIF(Population):
    """Exact-decay LIF with exponential current synapses (``neurons.expsyn``); v in volts or any unit."""

    n: int
    tau_mem: float = 20e-3
    v_threshold: float = 1.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    refractory: float = 0.0
    reset: str = "to_reset"
    tau_syn: Dict[str, float] = field(default_factory=lambda: {"exc": 5e-3, "inh": 10e-3})
    v_init: object = None  # None (v_leak), a number, ("uniform", lo, hi) or an array of length n
    name: str | None = None
    kind = "LIF"

    def __post_init__(self):
        _check_size(self.n, self.kind)
        _check_positive("tau_mem", self.tau_mem, self.kind)
        if not self.tau_syn:
            raise ConfigError("LIF: 'tau_syn' needs at least one synaptic channel, e.g. {'exc': 5e-3}")
        for ch, tau in self.tau_syn.items():
            _check_positive(f"tau_syn[{ch!r}]", tau, self.kind)
        if not np.isfinite(self.refractory) or self.refractory < 0:
            raise ConfigError(f"LIF: 'refractory' must be >= 0 seconds, got {self.refractory!r}")
        if self.reset not in ("to_reset", "subtract", "none"):
            raise ConfigError(f"LIF: 'reset' must be 'to_reset', 'subtract' or 'none', got {self.reset!r}")
        if not self.v_threshold > self.v_reset:
            raise ConfigError(f"LIF: 'v_threshold' ({self.v_threshold}) must be > 'v_reset' ({self.v_reset})")

    @property
    def channels(self):
        return tuple(self.tau_syn)


@dataclass
class CubaLIF(Population):
    """``neurons.cuba`` CubaLIF; every channel's arrivals are summed into its input ``x``."""

    n: int
    tau_syn: float = 5e-3
    tau_mem: float = 20e-3
    v_threshold: float = 1.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    r: float = 1.0
    w_in: float = 1.0
    reset: str = "subtract"
    input_channels: Tuple[str, ...] = ("exc", "inh")
    v_init: object = None
    name: str | None = None
    kind = "CubaLIF"

    def __post_init__(self):
        _check_size(self.n, self.kind)
        _check_positive("tau_syn", self.tau_syn, self.kind)
        _check_positive("tau_mem", self.tau_mem, self.kind)
        if self.reset not in ("to_reset", "subtract", "none"):
            raise ConfigError(f"CubaLIF: 'reset' must be 'to_reset', 'subtract' or 'none', got {self.reset!r}")

    @property
    def channels(self):
        return tuple(self.input_channels)


@dataclass
class Izhikevich(Population):
    """``neurons.izhikevich`` (ms/mV units inside); input current from exponential channels."""

    n: int
    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    v_peak: float = 30.0
    tau_syn: Dict[str, float] = field(default_factory=lambda: {"exc": 5e-3, "inh": 10e-3})
    v_init: object = None  # None: -65 mV, u = b v (the paper's start)
    name: str | None = None
    kind = "Izhikevich"

    def __post_init__(self):
        _check_size(self.n, self.kind)
        for ch, tau in self.tau_syn.items():
            _check_positive(f"tau_syn[{ch!r}]", tau, self.kind)

    @property
    def channels(self):
        return tuple(self.tau_syn)


@dataclass
class PoissonInput(Population):
    """``n`` independent Poisson spike trains at ``rate`` Hz (one Bernoulli draw per step)."""

    n: int
    rate: float = 10.0
    name: str | None = None
    kind = "PoissonInput"

    def __post_init__(self):
        _check_size(self.n, self.kind)
        if not isinstance(self.rate, (int, float)) or not np.isfinite(self.rate) or self.rate < 0:
            raise ConfigError(f"PoissonInput: 'rate' must be a finite number >= 0 Hz, got {self.rate!r}")


@dataclass
class SpikeSource(Population):
    """Given spikes: ``indices[k]`` fires at ``times[k]`` seconds (rounded to the step)."""

    n: int
    indices: object = None
    times: object = None
    name: str | None = None
    kind = "SpikeSource"

    def __post_init__(self):
        _check_size(self.n, self.kind)
        idx = np.asarray(self.indices if self.indices is not None else [], dtype=np.int64)
        t = np.asarray(self.times if self.times is not None else [], dtype=np.float64)
        if idx.ndim != 1 or t.shape != idx.shape:
            raise ConfigError(f"SpikeSource: 'indices' and 'times' must be 1-D of equal length, "
                              f"got shapes {idx.shape} and {t.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise ConfigError(f"SpikeSource: 'indices' must lie in [0, {self.n}), got [{idx.min()}, {idx.max()}]")
        if t.size and (not np.isfinite(t).all() or t.min() < 0):
            raise ConfigError("SpikeSource: 'times' must be finite and >= 0 seconds")
        self.indices, self.times = idx, t
