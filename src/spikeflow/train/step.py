"""``TrainStep``: one optimisation step of a spiking network on a batch, fused where it can be.

The usual PyTorch step (forward, loss, ``zero_grad``, ``backward``, ``optimizer.step()``) wraps the
fused kernels of a spiking MLP in autograd's graph, the checks each layer repeats at every call and
the tensors autograd needs: about a quarter of a millisecond-scale step. JAX users compile the whole
step for the same reason. ``TrainStep`` runs the two-layer fused MLP's kernels directly, with the
loss's gradient computed between them, and falls back to the autograd step for anything else.
"""

from __future__ import annotations

import numpy as np
import torch

from spikeflow.errors import InputError
from spikeflow.kernels import linear_lif_pair
from spikeflow.nn.linear_lif import intercepted, pair_operands, pair_reason
from spikeflow.nn.sequential import pair_units
from spikeflow.train.losses import LOSSES, classification_loss


class TrainStep:
    """``step(x, y)``: the same update as

        optimizer.zero_grad(set_to_none=True)
        out = net(x)
        classification_loss(out, y, loss).backward()
        optimizer.step()

    returning ``(loss, out)`` (both detached). Where ``net`` is a ``spikeflow.nn.Sequential`` of two
    fused Linear + LIF units (two ``LinearLIF``, or ``SpikeLinear`` + ``LIF`` pairs) that the pair
    kernel runs (CPU, sparse enough input, see ``spikeflow.nn.Sequential``), trained with
    ``loss="ce_count"`` (cross-entropy on the output spike counts) with no LIF parameter learned, the
    step runs the kernels of the forward and of the backward directly and sets the weights' and
    biases' ``.grad``; the spikes and gradients equal autograd's (the loss's gradient up to float
    rounding). Otherwise it runs the autograd step above. ``self.fused`` tells which path the last
    call took and ``self.reason`` why it was not fused.
    """

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: str = "ce_count"):
        if loss not in LOSSES:
            raise InputError(f"TrainStep: 'loss' must be one of {LOSSES}, got {loss!r}")
        self.net, self.optimizer, self.loss = net, optimizer, loss
        self.fused, self.reason = False, None

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        _check_labels(x, y)
        self.reason = self._fused_reason(x)
        if self.reason is None:
            first, second, recompute = pair_units(self.net)
            _check_classes(y, second[0].out_features)
            labels = y.long().numpy()
            loss = None

            def loss_grad(out):
                nonlocal loss
                loss, g = _count_cross_entropy(out.numpy(), labels)
                return torch.from_numpy(np.ascontiguousarray(np.broadcast_to(g, out.shape)))

            result = linear_lif_pair.train_step(x, *pair_operands(first, second), loss_grad, recompute)
            if result is not None:
                out, grads1, grads2 = result
                ours = {}
                for (lin, _, _), grads in ((first, grads1), (second, grads2)):
                    for param, grad in zip((lin.weight, lin.bias), grads):
                        if param is not None and param.requires_grad:
                            ours[id(param)] = param, grad
                for group in self.optimizer.param_groups:  # zero_grad(set_to_none=True), ours replaced
                    for param in group["params"]:
                        param.grad = ours[id(param)][1] if id(param) in ours else None
                for param, grad in ours.values():  # trained, though not given to this optimizer
                    param.grad = grad
                self.optimizer.step()
                self.fused = True
                return torch.tensor(loss), out
            self.reason = "the membranes of every step would not be kept (recompute) or the output layer is too wide"
        self.fused = False
        self.optimizer.zero_grad(set_to_none=True)
        out = self.net(x)
        _check_classes(y, out.shape[-1])
        loss = classification_loss(out, y, self.loss)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), out.detach()

    def _fused_reason(self, x):
        """Why this call takes the autograd step (``None``: fused)."""
        if self.loss != "ce_count":
            return f"loss {self.loss!r} (only 'ce_count' is fused)"
        units = pair_units(self.net)
        if units is None:
            return "the network is not a spikeflow.nn.Sequential of two fused Linear + LIF units"
        if intercepted(self.net):
            return "the network has forward hooks"
        if x.dim() != 3 or x.requires_grad:
            return "the input is not [T, B, features] or needs a gradient"
        first, second, _ = units
        if any(p.requires_grad for _, lif, _ in (first, second) for p in lif.parameters()):
            return "a LIF parameter is learned"
        return pair_reason(x, first, second)


def _check_labels(x, y) -> None:
    """One-line errors for labels that do not fit the batch."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise InputError(f"TrainStep: input 'x' must be a time-major tensor [T, B, ...], got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else tuple(x.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise InputError(f"TrainStep: labels 'y' must be an integer tensor [B], got "
                         f"{y.dtype if isinstance(y, torch.Tensor) else type(y).__name__}")
    if tuple(y.shape) != (x.shape[1],):
        raise InputError(f"TrainStep: labels 'y' must have shape ({x.shape[1]},) for a batch of {x.shape[1]}, "
                         f"got {tuple(y.shape)}")
    if y.numel() and int(y.min()) < 0:
        raise InputError(f"TrainStep: labels 'y' must be class indices >= 0, got {int(y.min())}")


def _check_classes(y, n_classes: int) -> None:
    if y.numel() and int(y.max()) >= n_classes:
        raise InputError(f"TrainStep: labels 'y' must be below the network's {n_classes} outputs, got {int(y.max())}")


def _count_cross_entropy(out: np.ndarray, labels: np.ndarray):
    """``F.cross_entropy(out.sum(0), labels)`` and its gradient with respect to ``out [T, B, C]``
    (the same for every step: ``(softmax(counts) - onehot(labels)) / B``), in numpy: a handful of
    small arrays, where torch's operators cost more to call than to run."""
    counts = out.sum(0, dtype=np.float64)
    shifted = counts - counts.max(1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(1)
    rows = np.arange(len(labels))
    loss = float((np.log(total) - shifted[rows, labels]).mean())
    p = e / total[:, None]
    p[rows, labels] -= 1.0
    return loss, (p / len(labels)).astype(out.dtype)
