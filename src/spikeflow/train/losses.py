"""Losses for spiking classifiers and the readouts they decode.

Output conventions: ``[T, B, C]`` membrane (LI readout) or spikes, or ``[B, C]`` ANN logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spikeflow.errors import ConfigError, ShapeError

LOSSES = ("ce_max", "ce_mean", "ce_last", "ce_count", "mse_count", "first_spike", "ce")


def _check(out: torch.Tensor, name: str) -> None:
    if out.dim() != 3:
        raise ShapeError(f"loss {name!r}: needs time-major output [T, B, classes], got shape {tuple(out.shape)}")


def logits(out: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-class scores ``[B, C]`` the loss ``loss`` trains (argmax is the prediction)."""
    if out.dim() == 2:
        return out
    _check(out, loss)
    if loss == "ce_max":
        return out.max(0).values
    if loss == "ce_mean":
        return out.mean(0)
    if loss == "ce_last":
        return out[-1]
    if loss in ("ce_count", "mse_count"):
        return out.sum(0)
    if loss == "first_spike":
        return -first_spike_times(out)
    raise ConfigError(f"unknown loss {loss!r}; valid losses: {LOSSES}")


def first_spike_times(spikes: torch.Tensor) -> torch.Tensor:
    """Differentiable first-spike step per neuron ``[B, C]`` (``T`` when it never spikes).

    ``t_first = sum_t prod_{t' <= t} (1 - s_t')``: each step before the first spike adds
    one; gradients flow through the surrogate of every spike.
    """
    silent = torch.cumprod(1.0 - spikes, dim=0)
    return silent.sum(0)


def mse_count_loss(out: torch.Tensor, target: torch.Tensor, correct_rate: float = 0.8,
                   incorrect_rate: float = 0.1) -> torch.Tensor:
    """MSE between spike counts and target counts (``correct_rate * T`` for the label)."""
    _check(out, "mse_count")
    t, _, c = out.shape
    goal = torch.full_like(out[0], incorrect_rate * t)
    goal.scatter_(1, target.view(-1, 1), correct_rate * t)
    return F.mse_loss(out.sum(0), goal) / t


def classification_loss(out: torch.Tensor, target: torch.Tensor, loss: str = "ce_max") -> torch.Tensor:
    """The loss named ``loss`` for output ``out`` and integer labels ``target`` ``[B]``."""
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; valid losses: {LOSSES}")
    if out.dim() == 2 or loss == "ce":
        return F.cross_entropy(out if out.dim() == 2 else out.mean(0), target)
    if loss == "mse_count":
        return mse_count_loss(out, target)
    if loss == "first_spike":
        # the label neuron should fire first: softmax over negative first-spike times
        return F.cross_entropy(-first_spike_times(out), target)
    return F.cross_entropy(logits(out, loss), target)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Knowledge distillation (Hinton et al., arXiv:1503.02531): ``temperature**2 * KL(p_teacher || p_student)``
    of the softened class distributions ``softmax(logits / temperature)``, averaged over the batch.

    ``student``, ``teacher``: logits ``[B, C]`` (the student's decoded readout, the teacher's output).
    """
    if student.shape != teacher.shape or student.dim() != 2:
        raise ShapeError(f"distillation: student logits {tuple(student.shape)} and teacher logits "
                         f"{tuple(teacher.shape)} must both be [batch, classes]")
    if not temperature > 0:
        raise ConfigError(f"distillation: temperature must be > 0, got {temperature!r}")
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher.detach() / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return temperature ** 2 * kl


def rate_regularizer(rates: list[torch.Tensor], target: float = 0.1, weight: float = 1.0) -> torch.Tensor:
    """``weight * sum_l mean((rate_l - target)^2 over neurons)``: keeps layers near ``target`` spikes/step."""
    if not rates:
        return torch.zeros(())
    return weight * sum(((r - target) ** 2).mean() for r in rates)


def spike_regularizer(rates: list[torch.Tensor], weight: float, targets: list[float] | None = None) -> torch.Tensor:
    """Spike regularisation over layers, from each layer's per-neuron rates (spikes per neuron per step).

    Without ``targets``: ``weight * sum_l mean(rate_l)``, an L1 penalty on spikes. With one target per
    layer: ``weight * sum_l (mean(rate_l) - target_l)^2``, which pulls each layer's mean rate to its target.
    """
    if not rates:
        return torch.zeros(())
    if targets is None:
        return weight * sum(r.mean() for r in rates)
    if len(targets) != len(rates):
        raise ConfigError(f"spike regularisation: {len(targets)} target rates for {len(rates)} spiking layers")
    return weight * sum((r.mean() - t) ** 2 for r, t in zip(rates, targets))
