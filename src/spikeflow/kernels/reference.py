"""The reference time loop: the neuron model's own ``step`` applied T times in torch.

It is the oracle every fused kernel is tested against, and the fallback on any
device. Autograd flows through it (surrogate gradients come from ``spike_fn``).
"""

from __future__ import annotations

import torch


def multistep(step, x: torch.Tensor, state, params, spike_fn, return_trace: bool = False):
    """Run ``step`` over the leading time axis of ``x``.

    Returns ``(out [T, ...], final_state, v_trace [T, ...] or None)``.
    """
    outs, trace = [], [] if return_trace else None
    for t in range(x.shape[0]):
        out, state = step(x[t], state, params, spike_fn)
        outs.append(out)
        if return_trace:
            trace.append(state[0])
    return torch.stack(outs), state, (torch.stack(trace) if return_trace else None)
