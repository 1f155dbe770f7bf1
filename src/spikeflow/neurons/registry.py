"""One table of the neuron models, so ``nn``, ``kernels`` and ``ir`` can treat them alike."""

from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

from spikeflow.errors import ParameterError
from spikeflow.neurons import alif, cuba, euler, if_, izhikevich, li, lif


class NeuronModel(NamedTuple):
    """A neuron model's entry in ``MODELS``: its parameter class, ``init_state``, reference ``step``,
    whether it spikes, the time constants that may be learned and its threshold field.
    """
    name: str
    params_cls: type
    init_state: Callable
    step: Callable  # step(x, state, params, spike_fn) -> (out, state)
    spiking: bool  # False: the output is the membrane (readouts)
    tau_fields: Tuple[str, ...]  # parameters that may be learned as time constants
    threshold_field: str | None


MODELS = {
    "lif": NeuronModel("lif", lif.LIFParams, lif.init_state, lif.step, True, ("tau_mem",), "v_threshold"),
    "if": NeuronModel("if", if_.IFParams, if_.init_state, if_.step, True, (), "v_threshold"),
    "li": NeuronModel("li", li.LIParams, li.init_state, li.step, False, ("tau_mem",), None),
    "alif": NeuronModel(
        "alif", alif.ALIFParams, alif.init_state, alif.step, True, ("tau_mem", "tau_adapt"), "v_threshold"
    ),
    "cubalif": NeuronModel(
        "cubalif", cuba.CubaLIFParams, cuba.init_state, cuba.step, True, ("tau_syn", "tau_mem"), "v_threshold"
    ),
    "cubali": NeuronModel(
        "cubali", cuba.CubaLIParams, cuba.init_state, cuba.step_li, False, ("tau_syn", "tau_mem"), None
    ),
    "izhikevich": NeuronModel(
        "izhikevich", izhikevich.IzhikevichParams, izhikevich.init_state, izhikevich.step, True, (), None
    ),
    # forward Euler by per-step coefficients, in the update orders of other libraries (NIR import)
    "lif_euler": NeuronModel("lif_euler", euler.EulerLIFParams, euler.init_state, euler.step_lif, True, (),
                             "v_threshold"),
    "li_euler": NeuronModel("li_euler", euler.EulerLIParams, euler.init_state, euler.step_li, False, (), None),
    "cubalif_euler": NeuronModel("cubalif_euler", euler.EulerCubaLIFParams, euler.init_cuba_state,
                                 euler.step_cubalif, True, (), "v_threshold"),
    "cubali_euler": NeuronModel("cubali_euler", euler.EulerCubaLIParams, euler.init_cuba_state, euler.step_cubali,
                                False, (), None),
}


def get_model(name: str) -> NeuronModel:
    """The ``NeuronModel`` called ``name`` (case-insensitive); ``ParameterError`` lists the valid models."""
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise ParameterError(f"neurons: unknown model {name!r}; valid models: {sorted(MODELS)}") from None
