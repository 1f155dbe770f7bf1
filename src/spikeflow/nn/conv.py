"""Spike-driven convolution: a Conv2d whose sparse (spike) input takes the event path."""

from __future__ import annotations

import torch
from torch import nn

from spikeflow.errors import InputError, ParameterError, ShapeError
from spikeflow.kernels import conv as kconv


def _pair(value, name: str, layer: str, minimum: int) -> tuple:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)):
        raise ParameterError(f"{layer}: '{name}' must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(pair)


class SpikeConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict), optionally after ``pool x pool`` average pooling
    of its input, over ``[N, C, H, W]`` or time-major ``[T, B, C, H, W]`` input.

    ``SpikeConv2d(16, 32, 5, padding=2, pool=2)`` computes ``Conv2d(16, 32, 5, padding=2)`` of
    ``AvgPool2d(2)`` of the input. When the input is on the CPU and the fraction of non-zero
    (pooled) input entries is below ``crossover`` (default: the measured
    ``spikeflow.kernels.conv.CROSSOVER``), the forward scatters the weights of active pixels
    only and the weight gradient accumulates over them only; otherwise it is the dense torch
    path. Both give the same result up to float summation order. The event path returns
    channels-last memory, which ``spikeflow.nn`` neuron layers keep (no copy).
    ``event="always"|"never"`` forces a path. Zero padding, no dilation, one group.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 pool: int = 1, crossover: float | None = None, event: str = "auto", device=None, dtype=None):
        name = f"SpikeConv2d({in_channels}->{out_channels})"
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name}: '{arg}' must be an int >= 1, got {value!r}")
        kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        stride = _pair(stride, "stride", name, 1)
        if isinstance(padding, str):
            raise ParameterError(f"{name}: 'padding' must be an int >= 0 or a pair of them, got {padding!r}")
        padding = _pair(padding, "padding", name, 0)
        if not isinstance(pool, int) or isinstance(pool, bool) or pool < 1:
            raise ParameterError(f"{name}: 'pool' must be an int >= 1 (average-pooling window), got {pool!r}")
        if event not in ("auto", "always", "never"):
            raise ParameterError(f"{name}: 'event' must be 'auto', 'always' or 'never', got {event!r}")
        self.crossover = kconv.CROSSOVER if crossover is None else float(crossover)
        if not 0.0 <= self.crossover <= 1.0:
            raise ParameterError(f"{name}: 'crossover' must be a fraction in [0, 1], got {crossover}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         device=device, dtype=dtype)
        self.pool = pool
        self.event = event

    def _name(self) -> str:
        return f"SpikeConv2d({self.in_channels}->{self.out_channels})"

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(f"{self._name()}: input must be [N, {self.in_channels}, H, W] or time-major "
                             f"[T, B, {self.in_channels}, H, W], got {shape}")
        h, w = x.shape[-2:]
        if min(h, w) < self.pool:
            raise ShapeError(f"{self._name()}: input of {h}x{w} is smaller than the {self.pool}x{self.pool} "
                             f"pooling window")
        for size, k, p in zip((h, w), self.kernel_size, self.padding):
            if size // self.pool + 2 * p < k:
                raise ShapeError(f"{self._name()}: input of {h}x{w} (pooled by {self.pool}) plus padding "
                                 f"{self.padding} is smaller than the kernel {self.kernel_size}")
        if not x.is_floating_point():
            raise InputError(f"{self._name()}: input must be a floating-point tensor, got {x.dtype}")

    def use_event_path(self, x: torch.Tensor) -> bool:
        if self.event != "auto":
            return self.event == "always"
        return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0
                and kconv.pooled_activity(x, self.pool) < self.crossover)

    def _conv4d(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_event_path(x):
            if x.device.type != "cpu":
                raise ParameterError(f"{self._name()}: the event path runs on the CPU; use event='never' on GPU")
            return kconv.event_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.pool)
        return kconv.dense_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if x.dim() == 4:
            return self._conv4d(x)
        t, b = x.shape[:2]
        y = self._conv4d(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])

    # Time-major modules in spikeflow.nn.Sequential are not wrapped in TimeFold.
    def multistep(self, x: torch.Tensor, state=None):
        return self.forward(x), None

    def step(self, x_t: torch.Tensor, state=None):
        return self.forward(x_t), None

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pool={self.pool}, event={self.event}, crossover={self.crossover:g}"
