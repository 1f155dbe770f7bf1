"""When ``TrainStep`` may do ``torch.optim.Adam``'s update itself, in the fused backward's last pass
(``spikeflow.kernels.adam``), and the per-parameter terms of that update.

Only the plain update is taken over: one parameter group holding exactly the pair's weights and
biases, float32 on the CPU, no weight decay, AMSGrad, ``maximize``, ``capturable`` or
``differentiable``, no step hooks, and every parameter past its first step (the first step, which
makes the optimizer's state, is torch's own). The state stays torch's (``step``, ``exp_avg``,
``exp_avg_sq`` in ``optimizer.state``), so that the optimizer's ``state_dict``, learning-rate
schedulers and torch's own step before or after go on from it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.optim import optimizer as _optimizer

_PLAIN = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False,
          "decoupled_weight_decay": False}


def adam_terms(optimizer, params, kept=None):
    """For each of ``params`` (the pair's trained tensors), ``(exp_avg, exp_avg_sq, scalars)`` as numpy
    arrays and the float32 scalars ``adam.adam_from_parts`` takes, with the state's ``step`` advanced
    by one, as torch's step does; ``None`` (nothing changed) when ``optimizer.step()`` must run.

    ``kept``: a list the caller keeps from step to step (empty at first). The checks of the tensors'
    layout and their numpy views are kept in it, and taken again while the parameters and the state
    are the same tensors over the same memory: a step then touches no tensor but to read its
    address (``TrainStep`` calls this between two kernels, where every operation runs with cold
    caches)."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1 or _hooked(optimizer):
        return None
    group = optimizer.param_groups[0]
    if (group["weight_decay"] != 0 or any(group.get(k, v) != v for k, v in _PLAIN.items())
            or len(group["params"]) != len(params) or {id(p) for p in group["params"]} != {id(p) for p in params}):
        return None
    state = optimizer.state
    tensors = []
    for p in params:
        s = state.get(p)
        if not s:
            return None  # before the first step
        tensors += (p, s.get("step"), s.get("exp_avg"), s.get("exp_avg_sq"))
    kept = [] if kept is None else kept
    if not _same(kept, tensors):
        if not all(_plain_state(state[p], p) for p in params):
            kept.clear()
            return None
        kept[:] = [tensors, _addresses(tensors),
                   [tuple(t.numpy() for t in tensors[k + 1:k + 4]) for k in range(0, len(tensors), 4)]]
    terms, scalars = [], {}  # the scalars of each step count (one, unless the states were loaded apart)
    for step, m, v in kept[2]:
        step += 1  # a 0-d tensor of torch's, advanced in place
        t = float(step)
        if t not in scalars:
            scalars[t] = _scalars(group["lr"], group["betas"], group["eps"], t)
        terms.append((m, v, scalars[t]))
    if getattr(optimizer.step, "_wrapped_by_lr_sched", False):
        optimizer._opt_called = True  # what the scheduler's wrapper of step() records
    return terms


def _same(kept, tensors) -> bool:
    """Whether ``kept`` was made for these very tensors, each still over the same memory (``.data``
    assigned, or ``set_``, keeps a tensor but moves it)."""
    return bool(kept) and len(kept[0]) == len(tensors) and all(a is b for a, b in zip(kept[0], tensors)) \
        and kept[1] == _addresses(tensors)


def _addresses(tensors) -> list:
    return [t.data_ptr() for t in tensors]


def _scalars(lr, betas, eps, t: float) -> tuple:
    """``adam_from_parts``' scalars at step ``t`` (from 1), the bias corrections in float64."""
    lr, beta1, beta2, f = float(lr), float(betas[0]), float(betas[1]), np.float32
    return (f(lr / (1.0 - beta1 ** t)), (f(beta1), f(1.0 - beta1)), (f(beta2), f(1.0 - beta2)), f(eps),
            f(math.sqrt(1.0 - beta2 ** t)))


def _plain_state(state, p) -> bool:
    """A float32 CPU parameter past its first step, it and its moments contiguous (the kernel's layout),
    its step count a CPU tensor."""
    step = state.get("step")
    return (isinstance(step, torch.Tensor) and step.device.type == "cpu" and p.dtype == torch.float32
            and p.device.type == "cpu" and p.is_contiguous() and state["exp_avg"].is_contiguous()
            and state["exp_avg_sq"].is_contiguous())


def _hooked(optimizer) -> bool:
    """Step hooks, or a ``step`` wrapped by anything but a learning-rate scheduler (which only notes
    that a step was taken), that the fused update would bypass."""
    wrapped = "step" in optimizer.__dict__ and not getattr(optimizer.step, "_wrapped_by_lr_sched", False)
    return bool(wrapped or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or _optimizer._global_optimizer_pre_hooks or _optimizer._global_optimizer_post_hooks)
