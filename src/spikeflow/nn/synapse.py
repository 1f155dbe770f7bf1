"""Spike-driven synapses: a Linear whose binary, sparse input takes the event path."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spikeflow.errors import ParameterError, ShapeError
from spikeflow.kernels import synapse


class SpikeLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) over ``[..., in_features]`` input.

    When the input is on the CPU and its fraction of non-zero entries is below
    ``crossover`` (default: the measured ``spikeflow.kernels.synapse.CROSSOVER``), the
    forward adds only the weight rows of active inputs and the weight gradient
    accumulates only over them; otherwise it is the dense ``F.linear``. Both give the
    same result up to float summation order. ``event="always"|"never"`` forces a path.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, crossover: float | None = None,
                 event: str = "auto", device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if event not in ("auto", "always", "never"):
            raise ParameterError(f"SpikeLinear: 'event' must be 'auto', 'always' or 'never', got {event!r}")
        self.crossover = synapse.CROSSOVER if crossover is None else float(crossover)
        if not 0.0 <= self.crossover <= 1.0:
            raise ParameterError(f"SpikeLinear: 'crossover' must be a fraction in [0, 1], got {crossover}")
        self.event = event

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"SpikeLinear({self.in_features}->{self.out_features}): input's last axis must be "
                f"{self.in_features}, got shape {tuple(x.shape)}"
            )
        if x.dtype in (torch.bool, torch.uint8):  # spikes (or event counts) as bytes
            x = x.to(self.weight.dtype)
        auto = self.event == "auto" and synapse.use_event_path(x, self.out_features, self.crossover)
        if self.event == "always" or auto:
            if x.device.type != "cpu":
                raise ParameterError("SpikeLinear: the event path runs on the CPU; use event='never' on GPU")
            return synapse.event_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)

    # Time-major modules in spikeflow.nn.Sequential are not wrapped in TimeFold.
    def multistep(self, x: torch.Tensor, state=None):
        return self.forward(x), None

    def step(self, x_t: torch.Tensor, state=None):
        return self.forward(x_t), None

    def extra_repr(self) -> str:
        return super().extra_repr() + f", event={self.event}, crossover={self.crossover:g}"
