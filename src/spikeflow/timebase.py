"""A model's time base: how its input was made, recorded at training and read by every command after it.

A trained spiking model only answers correctly when its input is cut into the same steps it
learned on: the same step width ``dt`` (for event data, the bin width), the same number of
steps ``T``, the same encoding of static inputs, the same input geometry, and read out with
the same decoder. ``TimeBase`` holds those facts; it travels in the run directory's metadata
and ``result.json`` (``to_dict``) and in a NIR file's graph metadata (``to_nir_metadata``),
where ``dt`` is the graph's own ``dt`` and the other fields are ``timebase_*`` scalars,
strings and integer arrays (values ``nir``'s HDF5 layout stores and reads back as they were).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Optional, Tuple

from spikeflow.errors import ConfigError

ENCODINGS = ("events", "rate", "direct", "sequence")
DECODERS = ("max", "count", "mean", "last")
# the decoder that matches each training loss (how the loss turns outputs into class scores)
LOSS_DECODERS = {"ce_max": "max", "ce_mean": "mean", "ce_last": "last", "ce_count": "count",
                 "mse_count": "count", "first_spike": "count", "ce": "mean"}
_PREFIX = "timebase_"


@dataclass(frozen=True)
class TimeBase:
    """``dt``: seconds per step (event data: the bin width); ``T``: steps per sample;
    ``encoding``: ``events`` (binned event counts), ``rate`` (Bernoulli spikes, p = value),
    ``direct`` (the value at every step) or ``sequence`` (frames given by the data);
    ``input_shape``: one step's input without batch, e.g. ``(2, 34, 34)`` or ``(64,)``;
    ``classes``; ``decoder``: how outputs over time become class scores (``max`` of an LI
    readout, ``count`` of spikes, ``mean``, ``last``); ``duration_us``: the window of event
    data (``T * dt``); ``data``: the data set it was trained on."""

    dt: float
    T: int
    encoding: str
    input_shape: Tuple[int, ...]
    classes: int
    decoder: str
    duration_us: Optional[int] = None
    data: Optional[str] = None

    def __post_init__(self):
        def bad(field, want):
            raise ConfigError(f"time base: '{field}' must be {want}, got {getattr(self, field)!r}")

        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            bad("dt", "a number of seconds > 0")
        if not (isinstance(self.T, int) and self.T >= 1):
            bad("T", "an integer >= 1")
        if self.encoding not in ENCODINGS:
            bad("encoding", f"one of {ENCODINGS}")
        if self.decoder not in DECODERS:
            bad("decoder", f"one of {DECODERS}")
        if not self.input_shape or any(not isinstance(s, int) or s < 1 for s in self.input_shape):
            bad("input_shape", "a non-empty tuple of positive integers")
        if not (isinstance(self.classes, int) and self.classes >= 1):
            bad("classes", "an integer >= 1")
        if self.duration_us is not None and not (isinstance(self.duration_us, int) and self.duration_us >= 1):
            bad("duration_us", "a positive number of microseconds")

    # -- derived --------------------------------------------------------------------------
    @property
    def is_events(self) -> bool:
        return self.encoding == "events"

    @property
    def static(self) -> bool:
        """Static inputs (images) that the model encodes into ``T`` steps itself."""
        return self.encoding in ("rate", "direct")

    @property
    def window_us(self) -> int:
        """The time one sample spans: the event window, else ``T`` steps of ``dt``."""
        return self.duration_us if self.duration_us is not None else int(round(self.T * self.dt * 1e6))

    def with_overrides(self, dt: float | None = None, T: int | None = None) -> TimeBase:
        """This time base with ``--dt``/``--T`` applied. Event data keep their window: ``T``
        sets ``dt = window / T`` and ``dt`` sets ``T = ceil(window / dt)``."""
        if dt is not None and T is not None and self.is_events:
            if abs(dt * T * 1e6 - self.window_us) > 0.5:
                raise ConfigError(f"--dt {dt} and --T {T} span {dt * T * 1e3:g} ms but the event window is "
                                  f"{self.window_us / 1e3:g} ms; give one of them")
        if T is not None:
            tb = replace(self, T=int(T))
            return replace(tb, dt=self.window_us / int(T) * 1e-6) if self.is_events and dt is None else \
                (replace(tb, dt=float(dt)) if dt is not None else tb)
        if dt is not None:
            if self.is_events:
                return replace(self, dt=float(dt), T=max(1, math.ceil(self.window_us * 1e-6 / dt - 1e-9)))
            return replace(self, dt=float(dt))
        return self

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.input_shape)
        return (f"{self.encoding} input {shape}, T={self.T} steps of {self.dt * 1e3:g} ms, "
                f"{self.classes} classes, decoder {self.decoder}")

    def check_fits(self, sample_shape, classes: int | None, source: str) -> None:
        """Raise a one-line ``ConfigError`` when data (one step's ``sample_shape``, its number of
        ``classes``) cannot feed this model; the message says what differs and which flag fixes it."""
        shape = tuple(int(s) for s in sample_shape)
        if shape != self.input_shape and math.prod(shape) != math.prod(self.input_shape):
            raise ConfigError(f"{source}: samples have shape {shape} but the model takes {self.input_shape} "
                              f"(trained on {self.data or 'other data'}); use --data with data of that geometry")
        if shape != self.input_shape and len(shape) > 1 and len(self.input_shape) > 1:
            raise ConfigError(f"{source}: samples have shape {shape} but the model takes {self.input_shape}; "
                              f"use --data with data of that geometry")
        if classes is not None and classes > self.classes:
            raise ConfigError(f"{source}: the data have {classes} classes but the model has {self.classes} outputs "
                              f"(trained on {self.data or 'other data'}); use --data with at most {self.classes} "
                              f"classes")

    # -- dictionaries ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict, source: str = "time base") -> TimeBase:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a dictionary of time-base fields, got {type(d).__name__}")
        missing = [k for k in ("dt", "T", "encoding", "input_shape", "classes", "decoder") if k not in d]
        if missing:
            raise ConfigError(f"{source}: the time base lacks {missing}")
        try:
            return cls(dt=float(d["dt"]), T=int(d["T"]), encoding=_str(d["encoding"]),
                       input_shape=tuple(int(s) for s in _seq(d["input_shape"])), classes=int(d["classes"]),
                       decoder=_str(d["decoder"]),
                       duration_us=None if d.get("duration_us") is None else int(d["duration_us"]),
                       data=None if d.get("data") is None else _str(d["data"]))
        except (TypeError, ValueError) as err:
            if isinstance(err, ConfigError):
                raise ConfigError(f"{source}: {err}") from None
            raise ConfigError(f"{source}: a time-base field has the wrong type ({err})") from None

    def to_nir_metadata(self) -> dict:
        """Graph metadata entries: ``dt`` plus ``timebase_*`` fields (ints, strings, an int array)."""
        import numpy as np

        meta = {"dt": float(self.dt)}
        for k, v in self.to_dict().items():
            if k == "dt":
                continue
            meta[_PREFIX + k] = np.asarray(v, dtype=np.int64) if k == "input_shape" else v
        return meta

    @classmethod
    def from_nir_metadata(cls, meta, source: str = "NIR file") -> Optional[TimeBase]:
        """The time base in a graph's metadata, or ``None`` when the file carries none."""
        if not isinstance(meta, dict) or _PREFIX + "T" not in meta or "dt" not in meta:
            return None
        d = {k[len(_PREFIX):]: _plain(v) for k, v in meta.items() if k.startswith(_PREFIX)}
        d["dt"] = _plain(meta["dt"])
        return cls.from_dict(d, source)


def decoder_for_loss(loss: str | None, spiking_output: bool = False) -> str:
    """The decoder matching a training loss (``count`` for a spike readout when the loss is unknown)."""
    if loss in LOSS_DECODERS:
        return LOSS_DECODERS[loss]
    return "count" if spiking_output else "max"


def _plain(v):
    """numpy scalars/arrays and bytes read back from HDF5 as Python values."""
    if isinstance(v, bytes):
        return v.decode("utf8", "replace")
    return v.tolist() if hasattr(v, "tolist") else v


def _str(v) -> str:
    v = _plain(v)
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _seq(v):
    v = _plain(v)
    return v if isinstance(v, (list, tuple)) else [v]
