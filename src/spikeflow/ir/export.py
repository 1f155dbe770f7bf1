"""Export spikeflow modules to NIR graphs (``to_nir``).

Every parameter is written per neuron (arrays of the layer's batch-free shape) and the
Input/Output types are batch-free, so the graph passes ``nir``'s type check. The graph's
metadata holds ``dt`` (seconds). Time conversions (docs/architecture.md, "Time and units"):

* LIF/LI/CubaLIF/CubaLI: spikeflow's parameters *are* NIR's (tau in seconds, r, v_leak,
  w_in); spikeflow's exact-decay step is the exact solution of NIR's ODE for an input
  held constant over one step, so no conversion is needed.
* IF: spikeflow's step is ``v += r * x`` (x = charge per step); NIR's IF is
  ``dv/dt = R I``, whose exact step for a held input is ``v += R * I * dt``; so
  ``R = r / dt`` on export and ``r = R * dt`` on import.
* Reset: NIR resets to ``v_reset``. spikeflow's ``reset="subtract"`` (and ``"none"``) is
  written to the node's metadata ``spikeflow_reset``; spikeflow honours it on import,
  other readers reset to ``v_reset`` (a warning says so). LIF refractoriness is kept
  the same way (``spikeflow_refractory``, seconds).
"""

from __future__ import annotations

import warnings
from typing import Dict, List, Sequence, Tuple

import nir
import numpy as np
import torch
from torch import nn

from spikeflow import __version__
from spikeflow.errors import NIRError
from spikeflow.nn.elementwise import Delay, Scale, SumPool2d, Threshold
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.neuron import NeuronLayer
from spikeflow.nn.recurrent import Recurrent

NIR_NEURONS = ("lif", "if", "li", "cubalif", "cubali")
SKIPPED = (nn.Identity, nn.Dropout)
_TIME_AWARE = (NeuronLayer, Recurrent, Scale, Threshold, Delay)


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy().astype(np.float32)
    return np.asarray(t, dtype=np.float32)


def _per_neuron(value, shape) -> np.ndarray:
    """Per-neuron array: float32 for tensor parameters, float64 for Python numbers, so that the
    importer can rebuild each exactly (a float parameter's decay is computed in double precision)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return np.ascontiguousarray(np.broadcast_to(_np(value), shape)).astype(np.float32)
    return np.full(shape, float(value), dtype=np.float64)


def _layers(module: nn.Module, prefix: str = "") -> List[Tuple[str, nn.Module]]:
    """(name, layer) pairs in order, with nested Sequentials expanded and TimeFold unwrapped."""
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _layers(child, f"{prefix}{name}_" if isinstance(child, nn.Sequential) else prefix + name)
        return out
    return [(prefix or "0", module.layer if isinstance(module, TimeFold) else module)]


def _layer_dt(layer: nn.Module) -> float | None:
    if isinstance(layer, Recurrent):
        layer = layer.neuron
    if isinstance(layer, NeuronLayer):
        return float(layer.params.dt)
    if isinstance(layer, Delay):
        return layer.dt
    return None


def _common_dt(layers, dt: float | None) -> float | None:
    found = {}
    for name, layer in layers:
        d = _layer_dt(layer)
        if d is not None:
            found[name] = d
    values = set(found.values())
    if len(values) > 1:
        raise NIRError(f"to_nir: layers use different dt values {found}; a NIR graph has one dt")
    if dt is not None:
        for name, d in found.items():
            if not np.isclose(d, dt, rtol=1e-9, atol=0):
                raise NIRError(f"to_nir: dt={dt} s was given but layer '{name}' runs at dt={d} s")
        return float(dt)
    return values.pop() if values else None


def _first_shape(layers) -> Tuple[int, ...] | None:
    name, layer = layers[0]
    if isinstance(layer, nn.Linear):
        return (layer.in_features,)
    if isinstance(layer, NeuronLayer) and layer.shape is not None:
        return tuple(layer.shape)
    if isinstance(layer, Recurrent):
        return (layer.size,)
    for attr in ("scale", "threshold", "delay"):
        v = getattr(layer, attr, None)
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return tuple(v.shape)
    return None


def to_nir(module: nn.Module, *, dt: float | None = None, input_shape: Sequence[int] | None = None
           ) -> nir.NIRGraph:
    """A NIR graph of ``module`` (see the module docstring for the time conversions).

    ``input_shape`` is the batch-free shape of one time step (needed when the first layer
    does not fix it, e.g. a convolution); ``dt`` defaults to the layers' own dt.
    """
    if not isinstance(module, nn.Module):
        raise NIRError(f"to_nir: expected a torch.nn.Module, got {type(module).__name__}")
    layers = [(n, m) for n, m in _layers(module) if not isinstance(m, SKIPPED)]
    if not layers:
        raise NIRError("to_nir: the module has no layers to export")
    dt = _common_dt(layers, dt)
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else _first_shape(layers)
    if shape is None:
        raise NIRError(
            f"to_nir: cannot tell the input shape from the first layer '{layers[0][0]}' "
            f"({type(layers[0][1]).__name__}); pass input_shape=(C, H, W) or (N,) without batch and time"
        )
    nodes: Dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(shape))}
    notes: List[str] = []
    x = torch.zeros((1, 1) + shape)
    prev = "input"
    edges = []
    with torch.no_grad():
        for name, layer in layers:
            node = _node(name, layer, shape, dt, notes)
            try:
                x = layer(x) if isinstance(layer, _TIME_AWARE) else TimeFold(layer)(x)
                x = x[0] if isinstance(x, tuple) else x
            except Exception as err:
                raise NIRError(f"to_nir: layer '{name}' ({type(layer).__name__}) does not accept input of "
                               f"shape {shape} (batch-free): {err}") from None
            shape = tuple(x.shape[2:])
            nodes[name] = node
            edges.append((prev, name))
            prev = name
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((prev, "output"))
    if notes:
        warnings.warn("to_nir: " + "; ".join(notes), stacklevel=2)
    metadata = {"source": f"spikeflow {__version__}"}
    if dt is not None:
        metadata["dt"] = float(dt)
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except Exception as err:
        # e.g. nir 1.0.8 sizes Conv2d outputs from weight.shape[2] alone (non-square kernels) and
        # takes a conv's input channels from weight.shape[1] (grouped convolutions)
        warnings.warn(f"to_nir: nir's type check rejects the graph ({err}); it is exported unchecked by nir "
                      "(spikeflow's own shape check passed); readers need nir.read(..., type_check=False)",
                      stacklevel=2)
    for node in nodes.values():
        if isinstance(node, (nir.Conv1d, nir.Conv2d)) and node.input_shape is None:
            raise NIRError("to_nir: a grouped convolution needs nir's type inference, which failed")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def _node(name: str, layer: nn.Module, shape: Tuple[int, ...], dt, notes: List[str]) -> nir.NIRNode:
    if isinstance(layer, TimeFold):
        layer = layer.layer
    if isinstance(layer, nn.Linear):
        w = _np(layer.weight)
        return nir.Affine(weight=w, bias=_np(layer.bias)) if layer.bias is not None else nir.Linear(weight=w)
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        return _conv(name, layer, shape)
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode or layer.divisor_override is not None or (
            not layer.count_include_pad and np.any(np.asarray(layer.padding) > 0)
        ):
            raise NIRError(f"to_nir: layer '{name}' (AvgPool2d): ceil_mode, divisor_override and "
                           "count_include_pad=False have no NIR equivalent")
        return nir.AvgPool2d(kernel_size=_pair(layer.kernel_size), stride=_pair(layer.stride),
                             padding=_pair(layer.padding))
    if isinstance(layer, SumPool2d):
        return nir.SumPool2d(kernel_size=_pair(layer.kernel_size), stride=_pair(layer.stride),
                             padding=_pair(layer.padding))
    if isinstance(layer, nn.Flatten):
        n = len(shape)
        start = layer.start_dim if layer.start_dim >= 0 else layer.start_dim + n + 1
        end = layer.end_dim if layer.end_dim >= 0 else layer.end_dim + n + 1
        if start < 1:
            raise NIRError(f"to_nir: layer '{name}' (Flatten) must not flatten the batch axis (start_dim >= 1)")
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start - 1, end_dim=end - 1)
    if isinstance(layer, Scale):
        return nir.Scale(scale=_per_neuron(layer.scale, shape))
    if isinstance(layer, Threshold):
        return nir.Threshold(threshold=_per_neuron(layer.threshold, shape))
    if isinstance(layer, Delay):
        return nir.Delay(delay=_per_neuron(layer.delay, shape))
    if isinstance(layer, NeuronLayer):
        return neuron_node(name, layer, shape, dt, notes)
    if isinstance(layer, Recurrent):
        return _recurrent(name, layer, shape, dt, notes)
    raise NIRError(
        f"to_nir: layer '{name}' ({type(layer).__name__}) has no NIR equivalent; exportable: Linear, Conv1d, "
        "Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, Delay, Threshold, LIF, IF, LI, CubaLIF, CubaLI, Recurrent"
    )


def _pair(v) -> np.ndarray:
    a = np.asarray(v, dtype=np.int64).reshape(-1)
    return np.repeat(a, 2) if a.size == 1 else a


def _conv(name: str, layer, shape) -> nir.NIRNode:
    if layer.padding_mode != "zeros":
        raise NIRError(f"to_nir: layer '{name}' ({type(layer).__name__}): padding_mode "
                       f"{layer.padding_mode!r} has no NIR equivalent (only 'zeros')")
    bias = _np(layer.bias) if layer.bias is not None else np.zeros(layer.out_channels, np.float32)
    pad = layer.padding if isinstance(layer.padding, str) else layer.padding
    if isinstance(layer, nn.Conv1d):
        return nir.Conv1d(input_shape=int(shape[-1]) if layer.groups == 1 else None, weight=_np(layer.weight),
                          stride=int(layer.stride[0]), padding=pad if isinstance(pad, str) else int(pad[0]),
                          dilation=int(layer.dilation[0]), groups=int(layer.groups), bias=bias)
    # nir 1.0.8's Conv nodes derive their input type from weight.shape[1] (= C_in / groups), so a
    # grouped convolution is left to nir's type inference here; files with one fail nir.read's type
    # check (a nir limitation); spikeflow's reader checks them with the right channel count
    spatial = tuple(int(s) for s in shape[-2:]) if layer.groups == 1 else None
    return nir.Conv2d(input_shape=spatial, weight=_np(layer.weight),
                      stride=tuple(layer.stride), padding=pad if isinstance(pad, str) else tuple(pad),
                      dilation=tuple(layer.dilation), groups=int(layer.groups), bias=bias)


def neuron_node(name: str, layer: NeuronLayer, shape, dt, notes: List[str]) -> nir.NIRNode:
    """The NIR node of a neuron layer with per-neuron parameter arrays of ``shape``."""
    model = layer.model.name
    if model not in NIR_NEURONS:
        raise NIRError(f"to_nir: layer '{name}' ({model}) has no NIR node; NIR 1.0 defines "
                       f"{', '.join(m.upper() for m in NIR_NEURONS)}")
    if layer.shape is not None and tuple(layer.shape) != tuple(shape):
        raise NIRError(f"to_nir: layer '{name}' ({model}) has shape {layer.shape} but receives {shape}")
    p = layer.params
    a = lambda v: _per_neuron(v, shape)  # noqa: E731
    meta = {}
    reset = getattr(p, "reset", None)
    if reset is not None and reset != "to_reset":
        meta["spikeflow_reset"] = reset
        notes.append(f"node '{name}' ({model.upper()}) uses reset={reset!r}: NIR resets to v_reset, so it is "
                     "stored as metadata 'spikeflow_reset' (spikeflow honours it; other readers reset to v_reset)")
    if getattr(p, "refractory", 0.0):
        meta["spikeflow_refractory"] = float(p.refractory)
        notes.append(f"node '{name}' (LIF) has a refractory period of {p.refractory} s: NIR has none; kept as "
                     "metadata 'spikeflow_refractory' (only spikeflow honours it)")
    if model == "lif":
        return nir.LIF(tau=a(p.tau_mem), r=a(p.r), v_leak=a(p.v_leak), v_threshold=a(p.v_threshold),
                       v_reset=a(p.v_reset), metadata=meta)
    if model == "if":
        # spikeflow: v += r * x per step; NIR: dv/dt = R I  =>  R = r / dt (module docstring)
        r_per_s = p.r / p.dt if not isinstance(p.r, torch.Tensor) else _np(p.r) / np.float32(p.dt)
        return nir.IF(r=a(r_per_s), v_threshold=a(p.v_threshold), v_reset=a(p.v_reset),
                      metadata=meta)
    if model == "li":
        return nir.LI(tau=a(p.tau_mem), r=a(p.r), v_leak=a(p.v_leak), metadata=meta)
    if model == "cubalif":
        return nir.CubaLIF(tau_syn=a(p.tau_syn), tau_mem=a(p.tau_mem), r=a(p.r), v_leak=a(p.v_leak),
                           v_threshold=a(p.v_threshold), v_reset=a(p.v_reset), w_in=a(p.w_in), metadata=meta)
    return nir.CubaLI(tau_syn=a(p.tau_syn), tau_mem=a(p.tau_mem), r=a(p.r), v_leak=a(p.v_leak), w_in=a(p.w_in),
                      metadata=meta)


def _recurrent(name: str, layer: Recurrent, shape, dt, notes) -> nir.NIRGraph:
    if tuple(shape) != (layer.size,):
        raise NIRError(f"to_nir: layer '{name}' (Recurrent of size {layer.size}) receives shape {shape}")
    nodes = {
        "input": nir.Input(input_type=np.array(shape)),
        "neuron": neuron_node(f"{name}.neuron", layer.neuron, shape, dt, notes),
        "recurrent": nir.Linear(weight=_np(layer.recurrent.weight)),
        "output": nir.Output(output_type=np.array(shape)),
    }
    edges = [("input", "neuron"), ("neuron", "recurrent"), ("recurrent", "neuron"), ("neuron", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={}, type_check=False)


def retimed(module: nn.Module, dt: float, same_steps: bool = True) -> nn.Module:
    """A copy of ``module`` whose neuron layers step at ``dt`` seconds.

    ``same_steps``: the same dynamics per step. A model trained with neuron ``dt_model`` but fed one
    input bin per step really steps at the bin width. Every time constant (and refractory period)
    is scaled by ``dt / dt_model``, so ``exp(-dt / tau)`` and the input gains ``r``, ``w_in`` stay as
    they were and the copy computes the same numbers per step; NIR readers then see the true ``dt``.
    Otherwise only the step changes and the time constants stay (steps of another width).
    """
    import copy

    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise NIRError(f"retimed: dt must be a number of seconds > 0, got {dt!r}")
    out = copy.deepcopy(module)
    for layer in out.modules():
        if not isinstance(layer, NeuronLayer):
            if isinstance(layer, Delay):
                raise NIRError("retimed: a Delay layer counts in seconds; retime it by hand")
            continue
        if layer.model.name == "izhikevich":
            raise NIRError("retimed: Izhikevich parameters are per millisecond; it cannot be retimed")
        old = float(layer.params.dt)
        k = float(dt) / old
        names = tuple(layer.model.tau_fields) + ("refractory",) if same_steps else ()
        for name in names:
            if name in layer._fixed:
                v = layer._fixed[name]
                if isinstance(v, torch.Tensor):
                    layer._fixed[name] = v * k
                elif v:
                    layer._fixed[name] = float(dt) / (old / float(v))  # dt / tau kept to the last bit
            elif hasattr(layer, name) and isinstance(getattr(layer, name), torch.Tensor):
                getattr(layer, name).data.mul_(k)
        layer._fixed["dt"] = float(dt)
    return out
