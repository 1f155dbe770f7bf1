"""Training for fewer operations: spike regularisation targets, magnitude pruning, quantisation-aware training.

- Pruning: each connection layer (Linear, Conv2d) keeps its largest-magnitude weights; exactly
  ``round(fraction * n)`` of its ``n`` weights are zero. The masks are re-drawn on a schedule
  (gradual pruning, Zhu & Gupta, arXiv:1710.01878, with a linear ramp) and then kept fixed
  while the remaining epochs fine-tune the surviving weights.
- Quantisation-aware training: the forward pass sees each layer's weights rounded to the chip's
  grid (symmetric, ``weight_bits`` signed, one scale per layer = max |w| / (2**(bits-1) - 1);
  2 bits: ternary as in ``spikeflow.hardware.quantize``); the gradient passes the rounding unchanged
  (straight-through estimator, Bengio et al., arXiv:1308.3432) to full-precision shadow weights.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Sequence

import torch
from torch import nn

from spikeflow.errors import ConfigError

CONNECTIONS = (nn.Linear, nn.Conv2d)


def connection_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """Name -> Linear/Conv2d layer, in order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, CONNECTIONS)}


def magnitude_mask(weight: torch.Tensor, fraction: float) -> torch.Tensor:
    """A 0/1 mask with exactly ``round(fraction * numel)`` zeros on the smallest ``|weight|``
    (ties broken by position, so the count is exact)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"prune: the fraction of zero weights must be in [0, 1), got {fraction!r}")
    n = weight.numel()
    k = int(round(fraction * n))
    mask = torch.ones(n, dtype=weight.dtype, device=weight.device)
    if k:
        order = torch.argsort(weight.detach().abs().reshape(-1), stable=True)
        mask[order[:k]] = 0
    return mask.reshape(weight.shape)


class Pruner:
    """Masks of every connection layer; ``update(fraction)`` re-draws them, ``apply()`` zeroes the pruned weights."""

    def __init__(self, model: nn.Module):
        self.layers = connection_layers(model)
        self.masks: Dict[str, torch.Tensor] = {}
        self.fraction = 0.0

    @torch.no_grad()
    def update(self, fraction: float) -> None:
        self.fraction = fraction
        for name, layer in self.layers.items():
            self.masks[name] = magnitude_mask(layer.weight, fraction)
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for name, mask in self.masks.items():
            self.layers[name].weight.mul_(mask)


def prune_schedule(target: float, epoch: int, epochs: int) -> float:
    """Fraction of zeros after ``epoch`` (0-based) of ``epochs``: a linear ramp over the first half of
    training (at least one epoch), then ``target`` for the rest (fine-tuning with fixed masks)."""
    ramp = max(1, epochs // 2)
    return target * min(1.0, (epoch + 1) / ramp)


def _ternary(w: torch.Tensor) -> torch.Tensor:
    a = w.abs()
    keep = a > 0.7 * a.mean()  # Li & Liu, arXiv:1605.04711 (as the chip compiler does)
    scale = a[keep].mean() if keep.any() else a.new_tensor(0.0)
    return torch.sign(w) * keep * scale


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` on a symmetric ``bits``-bit grid with one scale for the tensor (values only, no gradient)."""
    if bits < 2:
        raise ConfigError(f"qat: weight bits must be >= 2, got {bits}")
    if bits == 2:
        return _ternary(w)
    qmax = (1 << (bits - 1)) - 1
    m = w.abs().max()
    if m == 0:
        return w.clone()
    scale = m / qmax
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


@contextmanager
def quantized_weights(model: nn.Module, bits: int | None):
    """Within the block every connection layer's weight holds its quantised value; the full-precision
    values come back afterwards. A backward pass inside the block leaves in ``.grad`` the gradient with
    respect to the quantised weights: the straight-through estimator."""
    if not bits:
        yield
        return
    saved = []
    with torch.no_grad():
        for layer in connection_layers(model).values():
            saved.append((layer, layer.weight.detach().clone()))
            layer.weight.copy_(fake_quantize(layer.weight, bits))
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, w in saved:
                layer.weight.copy_(w)


@torch.no_grad()
def quantize_in_place(model: nn.Module, bits: int | None) -> None:
    """Round every connection layer's weights to the grid for good (the end of QAT)."""
    if bits:
        for layer in connection_layers(model).values():
            layer.weight.copy_(fake_quantize(layer.weight, bits))


def layer_targets(targets: Sequence[float] | None, layers: Sequence[str]) -> list[float] | None:
    """Per spiking layer target rates: one value for all, or one per layer (names the mismatch)."""
    if targets is None:
        return None
    targets = [float(t) for t in targets]
    if len(targets) == 1:
        return targets * len(layers)
    if len(targets) != len(layers):
        raise ConfigError(f"--target-rate: {len(targets)} rates given but the model has {len(layers)} spiking "
                          f"layers ({', '.join(layers)}); give one rate for all or one per layer")
    return targets
