"""``TrainStep``: one optimisation step of a spiking network on a batch, fused where it can be.

The usual PyTorch step (forward, loss, ``zero_grad``, ``backward``, ``optimizer.step()``) wraps the
fused kernels of a spiking MLP in autograd's graph, the checks each layer repeats at every call and
fresh tensors, and each of those operations runs with caches the kernels have just filled with their
own data. JAX users compile the whole step for the same reason. ``TrainStep`` runs the two-layer fused
MLP's kernels directly, with the loss's gradient computed between them in one compiled call, and falls
back to the autograd step elsewhere. ``benchmarks/profile_w1.py`` times both on W1's network.
"""

from __future__ import annotations

import torch
from torch.autograd.graph import increment_version

from spikeflow.errors import InputError
from spikeflow.kernels.count_loss import count_cross_entropy
from spikeflow.kernels.linear_lif_pair import PairStep
from spikeflow.nn.linear_lif import intercepted, pair_operands, pair_reason
from spikeflow.nn.sequential import pair_units
from spikeflow.train.fused_adam import adam_terms
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
    biases' ``.grad`` (the same tensors at every call, rewritten, as ``zero_grad(set_to_none=False)``
    keeps them); the spikes and gradients equal autograd's (the loss's gradient up to float rounding).
    With plain ``torch.optim.Adam`` (``train.fused_adam``) the update is done in the same compiled call as
    the gradients' sums, on the optimizer's state, instead of ``optimizer.step()`` (``self.fused_update``
    tells). Otherwise it runs the autograd step above. ``self.fused`` tells which path the last call took and
    ``self.reason`` why it was not fused.

    Whether the kernels apply (the layers' options, the input's dtype and its activity against the
    crossover) is decided on the first batch of each input shape, and again when the units of ``net``
    or torch's thread count change; hooks and learned LIF parameters are looked for at every call.
    """

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: str = "ce_count"):
        if loss not in LOSSES:
            raise InputError(f"TrainStep: 'loss' must be one of {LOSSES}, got {loss!r}")
        self.net, self.optimizer, self.loss = net, optimizer, loss
        self.fused, self.reason = False, None
        self.fused_update = False  # the last step's optimizer update done by the fused pass (plain Adam)
        self._plan = None  # (key, PairStep or None, reason): the fused step of the last input shape
        self._units = None  # (net's modules, pair_units of them, the modules whose hooks would be bypassed)
        self._adam_kept = []  # fused_adam.adam_terms' checks and views, from step to step

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        _check_labels(x, y)
        units = self._pair_units() if self.loss == "ce_count" else None
        self.reason = self._reason(x, units)
        if self.reason is None:
            first, second, recompute = units
            key = (tuple(x.shape), x.dtype, x.device, torch.get_num_threads(),  # threads: the kernels' shares
                   *(id(m) for unit in (first, second) for m in unit[:2]))
            if self._plan is None or self._plan[0] != key:
                reason = pair_reason(x, first, second)
                self._plan = key, None, reason
                if reason is None:
                    step = PairStep(x, *pair_operands(first, second), recompute)
                    self._plan = key, step if step.reason is None else None, step.reason
            _, step, self.reason = self._plan
        if self.reason is None:
            return self._fused(step, x, y, first, second)
        self.fused = self.fused_update = False
        self.optimizer.zero_grad(set_to_none=True)
        out = self.net(x)
        _check_classes(y, out.shape[-1])
        loss = classification_loss(out, y, self.loss)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), out.detach()

    def _fused(self, step: PairStep, x, y, first, second):
        labels = (y if y.dtype == torch.int64 else y.long()).numpy()
        (lin1, lif1, _), (lin2, lif2, _) = first, second
        out, loss = step.run(x, lin1.weight, lin1.bias, lin2.weight, lin2.bias,
                             None if step.fixed_params else (lif1.params, lif2.params),
                             lambda spikes, g_out: count_cross_entropy(spikes.numpy(), labels, g_out.numpy()))
        if loss < 0:  # a label outside the classes: nothing was changed yet
            _check_classes(y, lin2.out_features)
        ours = {}
        for (lin, _, _), grads in zip((first, second), step.grads):
            for param, grad in zip((lin.weight, lin.bias), grads):
                if param is not None and param.requires_grad:
                    ours[id(param)] = param, grad
        pair = [param for param, _ in ours.values()]
        terms = adam_terms(self.optimizer, pair, self._adam_kept) if len(pair) == 4 else None
        if terms is None:
            step.reduce()
        for group in self.optimizer.param_groups:  # zero_grad(set_to_none=True), ours replaced
            for param in group["params"]:
                _set_grad(param, ours.pop(id(param), (None, None))[1])
        for param, grad in ours.values():  # trained, though not given to this optimizer
            _set_grad(param, grad)
        self.fused_update = terms is not None
        if terms is None:
            self.optimizer.step()
        else:
            step.adam(pair, terms)
            increment_version(pair)  # changed in place, as by torch's step: autograd's version check sees it
        self.fused = True
        return torch.tensor(loss), out

    def _pair_units(self):
        """``pair_units(self.net)``, found again only when the network's modules change."""
        modules = tuple(self.net._modules.values()) if isinstance(self.net, torch.nn.Sequential) else None
        if self._units is None or self._units[0] != modules:
            units = pair_units(self.net)
            watched = [self.net] + ([] if units is None else
                                    [m for unit in units[:2] for m in unit[:2]] + list(modules))
            self._units = modules, units, watched
        return self._units[1]

    def _reason(self, x, units):
        """Why this call takes the autograd step, as far as it can be told without the kernels'
        own checks (``None``: the fused step may apply)."""
        if self.loss != "ce_count":
            return f"loss {self.loss!r} (only 'ce_count' is fused)"
        if units is None:
            return "the network is not a spikeflow.nn.Sequential of two fused Linear + LIF units"
        if any(intercepted(m) for m in self._units[2]):
            return "the network or one of its layers has forward hooks or a wrapped forward"
        if x.dim() != 3 or x.requires_grad:
            return "the input is not [T, B, features] or needs a gradient"
        if any(p.requires_grad for unit in units[:2] for p in unit[1]._parameters.values() if p is not None):
            return "a LIF parameter is learned"  # (a LIF layer has no submodules)
        return None


def _set_grad(param, grad) -> None:
    """``param.grad = grad``, skipped when it already is that tensor (the fused step's gradients are
    the same tensors at every call; torch checks every assignment)."""
    if param.grad is not grad:
        param.grad = grad


def _check_labels(x, y) -> None:
    """One-line errors for labels that do not fit the batch (their values: ``_check_classes``)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise InputError(f"TrainStep: input 'x' must be a time-major tensor [T, B, ...], got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else tuple(x.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise InputError(f"TrainStep: labels 'y' must be an integer tensor [B], got "
                         f"{y.dtype if isinstance(y, torch.Tensor) else type(y).__name__}")
    if tuple(y.shape) != (x.shape[1],):
        raise InputError(f"TrainStep: labels 'y' must have shape ({x.shape[1]},) for a batch of {x.shape[1]}, "
                         f"got {tuple(y.shape)}")


def _check_classes(y, n_classes: int) -> None:
    """``_check_labels``'s check of the label values against the classes (two reductions of ``y``)."""
    if y.numel() and int(y.min()) < 0:
        raise InputError(f"TrainStep: labels 'y' must be class indices >= 0, got {int(y.min())}")
    if y.numel() and int(y.max()) >= n_classes:
        raise InputError(f"TrainStep: labels 'y' must be below the network's {n_classes} outputs, got {int(y.max())}")
