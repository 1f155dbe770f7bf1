"""Per-neuron elementwise layers that NIR names as nodes: ``Scale``, ``Threshold``, ``Delay``,
and ``SumPool2d`` (torch has average pooling only).

``Scale`` and ``Threshold`` act on each time step independently; ``Delay`` shifts the
sequence by whole steps (``round(delay / dt)``) and keeps a buffer of past inputs in
streaming mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikeflow import surrogate as surrogates
from spikeflow.errors import ParameterError, ShapeError
from spikeflow.neurons.base import check_time_major


def _as_buffer(value, name: str, layer: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()
    if not torch.isfinite(t).all():
        raise ParameterError(f"{layer}: parameter '{name}' must be finite")
    return t


class _Stepwise(nn.Module):
    """A layer without state: ``multistep`` and ``step`` apply ``forward`` (kept out of TimeFold)."""

    def multistep(self, x: torch.Tensor, state=None):
        return self.forward(x), None

    def step(self, x_t: torch.Tensor, state=None):
        return self.forward(x_t), None


class Scale(_Stepwise):
    """``y = x * scale`` elementwise (NIR ``Scale``); ``scale`` is a float or a per-neuron tensor."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer("scale", _as_buffer(scale, "scale", "Scale"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Threshold(_Stepwise):
    """``z = 1 if x > threshold else 0`` (NIR ``Threshold``), with a surrogate gradient."""

    def __init__(self, threshold, surrogate=None):
        super().__init__()
        self.register_buffer("threshold", _as_buffer(threshold, "threshold", "Threshold"))
        self.surrogate = surrogates.get(surrogate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate(x - self.threshold)


class Delay(nn.Module):
    """``y(t) = x(t - delay)`` (NIR ``Delay``); ``delay`` in seconds, per neuron or one value.

    A delay becomes ``round(delay / dt)`` whole steps; the first steps output zeros.
    """

    def __init__(self, delay, dt: float = 1e-3):
        super().__init__()
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ParameterError(f"Delay: parameter 'dt' must be a number > 0 (seconds), got {dt!r}")
        d = _as_buffer(delay, "delay", "Delay")
        if (d < 0).any():
            raise ParameterError(f"Delay: parameter 'delay' must be >= 0 seconds, got min {d.min().item():g}")
        self.dt = float(dt)
        self.register_buffer("delay", d)
        self.register_buffer("steps", torch.round(d.double() / self.dt).long())

    @property
    def max_steps(self) -> int:
        return int(self.steps.max().item()) if self.steps.numel() else 0

    def _index(self, x: torch.Tensor, n_time: int) -> torch.Tensor:
        try:
            steps = self.steps.expand(x.shape[2:])
        except RuntimeError:
            raise ShapeError(
                f"Delay: per-neuron delays of shape {tuple(self.steps.shape)} do not fit input of shape "
                f"{tuple(x.shape)} (time-major [T, B, ...])"
            ) from None
        t = torch.arange(n_time, device=x.device).view(-1, *([1] * (x.dim() - 1)))
        return (t + self.max_steps - steps).expand(n_time, *x.shape[1:])

    def multistep(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """All steps of ``x [T, B, ...]``; ``state`` holds the last ``max_steps`` inputs."""
        check_time_major(x, "Delay")
        m = self.max_steps
        if state is None:
            state = x.new_zeros((m, *x.shape[1:]))
        full = torch.cat([state, x], 0)
        out = torch.gather(full, 0, self._index(x, x.shape[0]))
        return out, full[full.shape[0] - m:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multistep(x)[0]

    def step(self, x_t: torch.Tensor, state=None):
        out, state = self.multistep(x_t.unsqueeze(0), state)
        return out[0], state

    def extra_repr(self) -> str:
        return f"max_steps={self.max_steps}, dt={self.dt}"


class SumPool2d(nn.Module):
    """Sum pooling over 2-D windows (NIR ``SumPool2d``): average pooling times the window size."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
