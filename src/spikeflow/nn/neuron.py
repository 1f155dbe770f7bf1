"""Neuron layers: torch modules over the reference models in ``spikeflow.neurons``.

Multi-step input is time-major ``[T, B, ...]``; the time loop runs inside
``spikeflow.kernels`` (fused where a kernel exists). ``step`` advances one time step
with explicit state, for streaming.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence, Union

import torch
from torch import nn

from spikeflow import kernels
from spikeflow import surrogate as surrogates
from spikeflow.errors import ShapeError
from spikeflow.neurons.base import check_input, check_time_major
from spikeflow.neurons.registry import NeuronModel, get_model


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    """The field names of a params dataclass (``dataclasses.fields`` walks the class every call)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _unchecked(cls, fields: dict):
    """A params dataclass built without re-running its (already passed) validation."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


class NeuronLayer(nn.Module):
    """A layer of neurons of one model.

    Args:
        model: model name (``"lif"``, ``"if"``, ``"li"``, ``"alif"``, ``"cubalif"``,
            ``"cubali"``, ``"izhikevich"``) or a ``NeuronModel``.
        shape: per-neuron shape (e.g. ``256`` or ``(16, 32, 32)``); needed for learnable
            or per-neuron parameters, and then checked against the input.
        learn_tau / learn_threshold: make the time constants / threshold per-neuron
            ``nn.Parameter``s (needs ``shape``).
        surrogate: a ``spikeflow.surrogate.Surrogate`` or its kind name.
        backend: ``"auto"``, ``"reference"``, ``"cpu"`` or ``"gpu"`` (see ``spikeflow.kernels``).
        return_state: ``forward`` also returns the membrane trace ``[T, B, ...]``.
        **params: the model's parameters (tau in seconds, ``dt`` in seconds, ...).
    """

    def __init__(
        self,
        model: Union[str, NeuronModel],
        shape: Optional[Union[int, Sequence[int]]] = None,
        *,
        learn_tau: bool = False,
        learn_threshold: bool = False,
        surrogate=None,
        backend: str = "auto",
        return_state: bool = False,
        validate: bool = True,
        **params,
    ):
        super().__init__()
        self.model = get_model(model) if isinstance(model, str) else model
        self.shape = None if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
        self.surrogate = surrogates.get(surrogate)
        self.backend = backend
        self.return_state = return_state
        self.validate = validate
        checked = self.model.params_cls(**params)  # validates, names bad parameters
        learn = (self.model.tau_fields if learn_tau else ()) + (
            (self.model.threshold_field,) if learn_threshold and self.model.threshold_field else ()
        )
        if learn and self.shape is None:
            raise ShapeError(f"{self._name()}: learnable parameters {learn} need the layer's 'shape'")
        self._fixed = {}
        for f in dataclasses.fields(checked):
            value = getattr(checked, f.name)
            if f.name in learn:
                full = torch.as_tensor(value, dtype=torch.get_default_dtype()).expand(self.shape).clone()
                self.register_parameter(f.name, nn.Parameter(full))
            elif isinstance(value, torch.Tensor):
                self.register_buffer(f.name, value.detach().clone())
            else:
                self._fixed[f.name] = value

    def _name(self) -> str:
        return f"{type(self).__name__}({self.model.name})"

    @property
    def params(self):
        """The model's parameter dataclass with the current (learned) values."""
        fields = dict(self._fixed)
        for name in _field_names(self.model.params_cls):
            if name not in fields:
                fields[name] = getattr(self, name)
        return _unchecked(self.model.params_cls, fields)

    def init_state(self, batch_shape, dtype=None, device=None):
        """Fresh state for input of shape ``batch_shape`` (one time step: ``[B, ...]``)."""
        return self.model.init_state(tuple(batch_shape), self.params, dtype=dtype, device=device)

    def _check(self, x: torch.Tensor, feature_dims: int):
        if self.validate:
            check_input(x, self._name())
        self._check_shape(x)

    def _check_shape(self, x: torch.Tensor):
        if self.shape is not None and tuple(x.shape[x.dim() - len(self.shape):]) != self.shape:
            raise ShapeError(
                f"{self._name()}: input's trailing shape must be the layer shape {self.shape}, "
                f"got input of shape {tuple(x.shape)}"
            )

    def multistep(self, x: torch.Tensor, state=None, return_trace: bool = False):
        """All T steps of ``x [T, B, ...]`` from ``state``; returns ``(out, final_state, trace)``."""
        check_time_major(x, self._name())
        self._check(x, x.dim() - 2)
        if state is None:
            state = self.init_state(x.shape[1:], x.dtype, x.device)
        return kernels.multistep(
            self.model, x, state, self.params, self.surrogate, backend=self.backend, return_trace=return_trace
        )

    def forward(self, x: torch.Tensor):
        out, _, trace = self.multistep(x, None, return_trace=self.return_state)
        return (out, trace) if self.return_state else out

    def step(self, x_t: torch.Tensor, state=None):
        """One time step of ``x_t [B, ...]``; returns ``(out, new_state)``."""
        self._check(x_t, x_t.dim() - 1)
        if state is None:
            state = self.init_state(x_t.shape, x_t.dtype, x_t.device)
        return self.model.step(x_t, state, self.params, self.surrogate)

    def extra_repr(self) -> str:
        fixed = ", ".join(f"{k}={v}" for k, v in self._fixed.items() if k not in ("detach_reset",))
        return f"shape={self.shape}, {fixed}, surrogate={self.surrogate.kind}"


def _layer(model_name: str, doc: str):
    class Layer(NeuronLayer):
        def __init__(self, shape=None, **kwargs):
            super().__init__(model_name, shape, **kwargs)

    Layer.__doc__ = doc + "\n\nSee ``NeuronLayer`` for the common arguments."
    return Layer


LIF = _layer("lif", "Leaky integrate-and-fire layer (``spikeflow.neurons.lif``).")
IF = _layer("if", "Integrate-and-fire layer without leak (``spikeflow.neurons.if_``).")
LI = _layer("li", "Leaky integrator readout: outputs the membrane (``spikeflow.neurons.li``).")
ALIF = _layer("alif", "Adaptive-threshold LIF layer, Bellec et al. 2018 (``spikeflow.neurons.alif``).")
CubaLIF = _layer("cubalif", "Current-based LIF layer (``spikeflow.neurons.cuba``).")
CubaLI = _layer("cubali", "Current-based leaky integrator readout (``spikeflow.neurons.cuba``).")


class Izhikevich(NeuronLayer):
    """Izhikevich 2003 layer (``spikeflow.neurons.izhikevich``); ``preset`` names a published
    parameter set (``regular_spiking``, ``fast_spiking``, ``intrinsically_bursting``, ``chattering``...).
    Spikes carry no surrogate gradient."""

    def __init__(self, shape=None, preset=None, **kwargs):
        if preset is not None:
            from spikeflow.neurons.izhikevich import IzhikevichParams

            p = IzhikevichParams.preset(preset, dt=kwargs.pop("dt", 1e-3))
            kwargs = {"a": p.a, "b": p.b, "c": p.c, "d": p.d, "dt": p.dt, **kwargs}
        super().__init__("izhikevich", shape, **kwargs)

for _cls, _n in ((LIF, "LIF"), (IF, "IF"), (LI, "LI"), (ALIF, "ALIF"), (CubaLIF, "CubaLIF"), (CubaLI, "CubaLI")):
    _cls.__name__ = _cls.__qualname__ = _n
