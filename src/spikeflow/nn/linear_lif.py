"""``LinearLIF``: a spike-driven Linear followed by a LIF layer, fused into one CPU kernel.

The fused kernel (``spikeflow.kernels.linear_lif``) adds the weight rows of the active inputs
and steps the LIF neurons in place, so the ``[T, B, out]`` synaptic current and its gradient
are never stored. ``spikeflow.nn.Sequential`` applies the same fusion to an adjacent
``SpikeLinear`` + ``LIF`` pair.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module

from spikeflow.errors import ParameterError, ShapeError
from spikeflow.kernels import linear_lif as kernel
from spikeflow.kernels import linear_lif_pair as pair_kernel
from spikeflow.kernels import pair_training, runs_on_gpu
from spikeflow.kernels import synapse as synapse_kernels
from spikeflow.neurons.base import check_time_major
from spikeflow.nn.neuron import LIF, NeuronLayer
from spikeflow.nn.synapse import SpikeLinear

EVENT_MODES = ("auto", "always", "never")


def fused_reason(x, linear: SpikeLinear, neuron: NeuronLayer, event: str = "auto"):
    """Why ``neuron(linear(x))`` cannot take the fused kernel here (``None`` when it can).

    The input's activity is not looked at here but by ``fused_multistep``.
    """
    if event == "never":
        return "event='never'"
    for m in (linear, neuron):
        if intercepted(m):
            return f"{type(m).__name__} has forward hooks or a wrapped forward/multistep (they must see the layer run)"
    if neuron.model.name != "lif":
        return f"the neuron model is {neuron.model.name!r}; only 'lif' is fused"
    p = neuron.params
    if runs_on_gpu(x, neuron.backend):
        from spikeflow.kernels import gpu_linear_lif

        return gpu_linear_lif.unsupported_reason(x, linear.weight, linear.bias, p, neuron.surrogate,
                                                 p.refractory_steps > 0, neuron.return_state)
    reason = kernel.unsupported_reason(x, linear.weight, p, neuron.surrogate, p.refractory_steps > 0,
                                       neuron.return_state)
    if reason is None and linear.bias is not None and linear.bias.dtype != linear.weight.dtype:
        reason = f"bias dtype {linear.bias.dtype} differs from the weight's {linear.weight.dtype}"
    return reason


def intercepted(m: nn.Module) -> bool:
    """Hooks or instance-level wrappers (metrics, recorders) that a fused run would bypass."""
    return bool(m._forward_hooks or m._forward_pre_hooks or "forward" in m.__dict__ or "multistep" in m.__dict__
                or _module._global_forward_hooks or _module._global_forward_pre_hooks)


def fused_multistep(x, linear: SpikeLinear, neuron: NeuronLayer, state=None, recompute=None, event: str = "auto"):
    """``neuron.multistep(linear(x))`` by the fused kernel: ``(spikes, LIFState)``; ``None`` when
    ``event="auto"`` and the input's fraction of non-zero entries (``synapse.activity``) is at or
    above ``linear.crossover`` (the dense matmul is faster there).

    Checks the input as both layers do (shape here; NaN/inf in the kernel)."""
    from spikeflow.neurons.lif import LIFState

    if x.shape[-1] != linear.in_features:
        raise ShapeError(
            f"SpikeLinear({linear.in_features}->{linear.out_features}): input's last axis must be "
            f"{linear.in_features}, got shape {tuple(x.shape)}"
        )
    check_time_major(x, neuron._name())
    if neuron.shape is not None and neuron.shape != (linear.out_features,):
        raise ShapeError(f"{neuron._name()}: layer shape {neuron.shape} does not match the {linear.out_features} "
                         f"outputs of the Linear before it")
    v0 = None if state is None else state.v
    name = f"LinearLIF({linear.in_features}->{linear.out_features})"
    if runs_on_gpu(x, neuron.backend):
        from spikeflow.kernels import gpu_linear_lif

        spikes, v_t = gpu_linear_lif.linear_lif(x, linear.weight, linear.bias, neuron.params, neuron.surrogate, v0,
                                                name)
        return spikes, LIFState(v_t, None)
    fused = kernel.linear_lif(x, linear.weight, linear.bias, neuron.params, neuron.surrogate, v0, name, recompute,
                              linear.crossover if event == "auto" else None)
    if fused is None:
        return None
    return fused[0], LIFState(fused[1], None)


def fused_pair(x, first, second, recompute=None):
    """``LIF2(Linear2(LIF1(Linear1(x))))`` by one kernel that keeps the hidden spikes compressed
    (``spikeflow.kernels.linear_lif_pair``), for ``first``/``second`` = ``(SpikeLinear, LIF, event)``
    units that each fuse on their own; ``None`` when the pair cannot take it (then run the units
    one after the other): on the GPU, when either unit is outside the fused kernel's scope or has
    ``event="never"``, or for ``event="auto"`` when the input is too dense for the first layer.
    The hidden layer always takes the event path (its spikes are gathered, never scanned)."""
    if pair_reason(x, first, second) is not None:
        return None
    operands = pair_operands(first, second)
    # under autograd, the plain case through kept buffers (pair_training); else the kernel's own call
    fused = pair_training.linear_lif_pair(x, *operands, recompute=recompute)
    return (fused or pair_kernel.linear_lif_pair(x, *operands, recompute=recompute))[0]


def pair_reason(x, first, second):
    """Why ``fused_pair(x, first, second)`` cannot take the pair kernel (``None`` when it can); checks
    that the input is time-major once it can."""
    (lin1, lif1, ev1), (lin2, lif2, ev2) = first, second
    if runs_on_gpu(x, lif1.backend) or "never" in (ev1, ev2):
        return "on the GPU, or event='never'"
    reason = fused_reason(x, lin1, lif1, ev1) or fused_reason(x, lin2, lif2, ev2)
    if reason is not None:
        return reason
    if (lin2.in_features != lin1.out_features or x.shape[-1] != lin1.in_features
            or any(lif.shape not in (None, (lin.out_features,)) for lin, lif in ((lin1, lif1), (lin2, lif2)))):
        return "the layer sizes do not chain"  # the unit-by-unit run names the mismatch
    if ev1 == "auto" and synapse_kernels.activity(x) >= lin1.crossover:
        return f"the input's activity is at or above the crossover {lin1.crossover}"
    check_time_major(x, lif1._name())
    return None


def pair_operands(first, second) -> list:
    """``linear_lif_pair``'s ``(weight, bias, params, spike_fn, name)`` of both units."""
    return [(lin.weight, lin.bias, lif.params, lif.surrogate, f"LinearLIF({lin.in_features}->{lin.out_features})")
            for lin, lif, _ in (first, second)]


class LinearLIF(nn.Module):
    """``LIF(SpikeLinear(x))`` over time-major ``[T, B, ..., in_features]`` input, fused on the CPU.

    Args:
        in_features, out_features, bias: as ``nn.Linear`` (the weights live in ``self.linear``).
        event: ``"auto"`` fuses when the kernel supports the call and the input's fraction of
            non-zero entries is below ``crossover``; ``"always"`` fuses or raises
            ``ParameterError`` naming the unsupported option; ``"never"`` runs the two layers
            unfused (dense Linear, then the LIF kernels).
        crossover: activity above which ``"auto"`` uses the unfused dense path
            (default ``spikeflow.kernels.synapse.CROSSOVER``).
        learn_tau, learn_threshold, surrogate, **lif_params: as ``spikeflow.nn.LIF``
            (``tau_mem``, ``v_threshold``, ``reset``, ``dt`` ...; seconds).
        recompute: the fused backward needs the membrane of every step; ``False`` keeps it
            (4 bytes per neuron-step in float32), ``True`` keeps it only every 32 steps and
            recomputes the rest in the backward (one more pass over the active inputs, far less
            memory for long sequences); ``None`` recomputes when keeping it would take more than
            ``spikeflow.kernels.linear_lif.RECOMPUTE_ABOVE_BYTES`` (4 MiB).

    Fused: LIF without a refractory period and without ``return_state``, every reset mode,
    ``detach_reset``, all surrogates, learnable ``tau_mem`` and ``v_threshold``. Outside that
    scope ``"auto"`` falls back to the unfused layers (same results); so it does when
    ``self.linear`` or ``self.lif`` carries forward hooks or a wrapped ``multistep`` (spike
    recorders, metrics), which must see those layers run.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, event: str = "auto",
                 crossover: float | None = None, learn_tau: bool = False, learn_threshold: bool = False,
                 surrogate=None, backend: str = "auto", recompute: bool | None = None, **lif_params):
        super().__init__()
        if event not in EVENT_MODES:
            raise ParameterError(f"LinearLIF: 'event' must be one of {EVENT_MODES}, got {event!r}")
        self.event = event
        self.recompute = recompute
        self.linear = SpikeLinear(in_features, out_features, bias, crossover=crossover,
                                  event="never" if event == "never" else "auto")
        self.lif = LIF(out_features, learn_tau=learn_tau, learn_threshold=learn_threshold, surrogate=surrogate,
                       backend=backend, **lif_params)

    def multistep(self, x, state=None):
        """All T steps of ``x [T, B, ..., in]`` from ``state`` (a ``LIFState``); returns ``(spikes, final_state)``."""
        reason = fused_reason(x, self.linear, self.lif, self.event)
        if reason is None:  # None back from the fused run: "auto" and the input is too dense
            fused = fused_multistep(x, self.linear, self.lif, state, self.recompute, self.event)
            if fused is not None:
                return fused
        elif self.event == "always":
            raise ParameterError(f"LinearLIF: event='always' but the fused kernel cannot run this call: {reason}")
        out, final, _ = self.lif.multistep(self.linear(x), state)
        return out, final

    def forward(self, x):
        if intercepted(self.lif):  # hooks on the LIF (a spike recorder, a metric) must see it run: its call
            out = self.lif(self.linear(x))
            return out[0] if isinstance(out, tuple) else out
        return self.multistep(x)[0]

    def step(self, x_t, state=None):
        """One time step of ``x_t [B, ..., in]``; returns ``(spikes, new_state)`` (unfused)."""
        return self.lif.step(self.linear(x_t), state)

    def extra_repr(self) -> str:
        return f"event={self.event}, recompute={self.recompute}"
