"""Neuron models: one source of truth each (parameters, state, reference ``step``).

Every model module exposes ``<Model>Params`` (a dataclass, seconds for tau and dt),
a ``NamedTuple`` state, ``init_state(shape, params)`` and a plain reference
``step(x, state, params, spike_fn=heaviside) -> (out, state)``. Fused kernels are
tested against these steps.
"""

from spikeflow.neurons import alif, cuba, euler, if_, izhikevich, li, lif
from spikeflow.neurons.alif import ALIFParams, ALIFState
from spikeflow.neurons.base import heaviside
from spikeflow.neurons.cuba import CubaLIFParams, CubaLIParams, CubaState
from spikeflow.neurons.if_ import IFParams, IFState
from spikeflow.neurons.izhikevich import PRESETS as IZHIKEVICH_PRESETS
from spikeflow.neurons.izhikevich import IzhikevichParams, IzhikevichState
from spikeflow.neurons.li import LIParams, LIState
from spikeflow.neurons.lif import LIFParams, LIFState
from spikeflow.neurons.registry import MODELS, NeuronModel, get_model

__all__ = [
    "ALIFParams", "ALIFState", "CubaLIFParams", "CubaLIParams", "CubaState", "IFParams",
    "IFState", "IZHIKEVICH_PRESETS", "IzhikevichParams", "IzhikevichState", "LIParams",
    "LIState", "LIFParams", "LIFState", "alif", "cuba", "euler", "heaviside", "if_", "izhikevich",
    "li", "lif", "MODELS", "NeuronModel", "get_model",
]
