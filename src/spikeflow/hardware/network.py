"""A NIR graph as a chain of float layers (synapse matrix + neuron population).

This is the hardware compiler's plain view of a feed-forward NIR graph: every
synaptic node between two neuron populations (Affine, Linear, Conv2d, Flatten,
Scale) is folded into one matrix ``W [n_out, n_in]`` and bias, so the integer
model and the float reference work on the same objects. Neuron parameters are
turned into ``spikeflow.neurons`` parameter dataclasses (the single source of
neuron math); ``float_reference`` runs them with the models' reference ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import nir
import numpy as np
import torch

from spikeflow.errors import NIRError, ShapeError
from spikeflow.neurons import if_, li, lif

NEURON_TYPES = {nir.LIF: "lif", nir.IF: "if", nir.LI: "li"}
SYNAPSE_TYPES = (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.Scale)


@dataclass
class ConvInfo:
    """What a conv-only chip needs to know about a layer's convolution."""
    kernel: Tuple[int, int]
    in_channels: int
    out_channels: int


@dataclass
class FloatLayer:
    name: str  # the neuron node's name
    synapse: str  # name(s) of the synaptic node(s) feeding it
    kind: str  # lif | if | li
    weight: np.ndarray  # [n_out, n_in] float64, as written in the graph
    bias: np.ndarray  # [n_out]
    params: object  # LIFParams | IFParams | LIParams (spikeflow.neurons)
    synapse_types: Tuple[str, ...] = ()
    conv: Optional[ConvInfo] = None
    out_shape: Tuple[int, ...] = ()

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def spiking(self) -> bool:
        return self.kind != "li"

    def gain(self) -> np.ndarray:
        """Per-neuron factor from synaptic current to membrane increment in one step."""
        p = self.params
        if self.kind == "if":
            return np.broadcast_to(np.asarray(_np(p.r), dtype=np.float64), (self.n_out,)).copy()
        a = _np(p.alpha)
        return np.broadcast_to(_np(p.r) * (1.0 - a), (self.n_out,)).astype(np.float64)


@dataclass
class FloatNet:
    layers: List[FloatLayer]
    input_shape: Tuple[int, ...]
    dt: float
    metadata: dict = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))


def _np(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().double().numpy()
    return np.asarray(v, dtype=np.float64)


def _t(a) -> torch.Tensor:
    return torch.tensor(np.array(a, dtype=np.float64).reshape(-1))


def _shape(type_dict) -> Tuple[int, ...]:
    arr = next(iter(type_dict.values()))
    return tuple(int(s) for s in np.asarray(arr).reshape(-1)) if arr is not None else ()


def _conv_matrix(node: nir.Conv2d, in_shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray, Tuple[int, ...]]:
    """Unroll a Conv2d into a dense matrix by convolving the identity basis."""
    if len(in_shape) != 3:
        if node.input_shape is None:
            raise NIRError(f"hardware: Conv2d needs a (C, H, W) input shape, got {in_shape}")
        in_shape = (int(node.weight.shape[1]), *[int(s) for s in node.input_shape])
    n_in = int(np.prod(in_shape))
    w = torch.as_tensor(np.asarray(node.weight, dtype=np.float64))
    pad = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in node.padding)
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape)
    out = torch.nn.functional.conv2d(eye, w, None, tuple(node.stride), pad, tuple(node.dilation), int(node.groups))
    out_shape = tuple(out.shape[1:])
    bias = np.repeat(np.asarray(node.bias, dtype=np.float64).reshape(-1), out_shape[1] * out_shape[2])
    return out.reshape(n_in, -1).T.numpy().copy(), bias, out_shape


def _neuron_params(node, kind: str, n: int, dt: float, reset: str):
    def per(x):
        return _t(np.broadcast_to(np.asarray(x, dtype=np.float64).reshape(-1), (n,)))

    if kind == "lif":
        return lif.LIFParams(tau_mem=per(node.tau), v_threshold=per(node.v_threshold), v_leak=per(node.v_leak),
                             v_reset=per(node.v_reset), r=per(node.r), dt=dt, reset=reset)
    if kind == "if":
        # NIR IF is dv/dt = R I, so the charge per step is R * dt (spikeflow.neurons.if_ docstring).
        return if_.IFParams(v_threshold=per(node.v_threshold), v_reset=per(node.v_reset), r=per(node.r) * dt,
                            dt=dt, reset=reset)
    return li.LIParams(tau_mem=per(node.tau), v_leak=per(node.v_leak), r=per(node.r), dt=dt)


def _compose(w: np.ndarray, acc) -> np.ndarray:
    return w if acc is None else w @ acc


def from_nir(graph: nir.NIRGraph, dt: Optional[float] = None, reset: Optional[str] = None) -> FloatNet:
    """Fold a feed-forward NIR graph into a chain of ``FloatLayer``.

    ``dt`` (seconds) defaults to ``graph.metadata['dt']``; ``reset`` to
    ``graph.metadata['reset']`` or NIR's reset-to-``v_reset``.
    """
    meta = dict(graph.metadata or {}) if isinstance(graph.metadata, dict) else {}
    dt = float(dt if dt is not None else meta.get("dt", 0) or 0)
    if dt <= 0:
        raise NIRError("hardware: the graph does not say its time step; pass dt (seconds), e.g. --dt 1e-3")
    reset = reset or meta.get("reset", "to_reset")
    if isinstance(reset, bytes):
        reset = reset.decode()
    succ = {name: [] for name in graph.nodes}
    pred = {name: [] for name in graph.nodes}
    for a, b in graph.edges:
        a, b = a.split(".")[0], b.split(".")[0]
        succ[a].append(b)
        pred[b].append(a)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRError(f"hardware: the compiler needs exactly one Input node, found {len(inputs)}")
    for name, s in succ.items():
        if len(s) > 1 or len(pred[name]) > 1:
            raise NIRError(f"hardware: node {name!r} branches or merges; the compiler supports feed-forward chains only")
    in_shape = _shape(graph.nodes[inputs[0]].output_type)
    name, shape = inputs[0], in_shape
    n_cur = int(np.prod(shape))
    w_acc, b_acc = None, np.zeros(n_cur)  # None: the identity (no synapse folded in yet)
    syn_names, syn_types, conv = [], [], None
    layers: List[FloatLayer] = []
    seen = {name}
    while succ[name]:
        name = succ[name][0]
        if name in seen:
            raise NIRError(f"hardware: node {name!r} closes a loop; recurrent graphs are not supported")
        seen.add(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            break
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != n_cur:
                raise ShapeError(f"hardware: node {name!r} weight {w.shape} does not take {n_cur} inputs")
            b = np.asarray(node.bias, dtype=np.float64).reshape(-1) if isinstance(node, nir.Affine) else 0.0
            w_acc, b_acc = _compose(w, w_acc), w @ b_acc + b
            shape = (w.shape[0],)
            syn_types.append("linear")
        elif isinstance(node, nir.Conv2d):
            w, b, out_shape = _conv_matrix(node, shape)
            if w.shape[1] != n_cur:
                raise ShapeError(f"hardware: node {name!r} takes {w.shape[1]} inputs, gets {n_cur}")
            w_acc, b_acc = _compose(w, w_acc), w @ b_acc + b
            conv = ConvInfo(tuple(int(k) for k in node.weight.shape[2:]), int(node.weight.shape[1]), int(node.weight.shape[0]))
            shape = out_shape
            syn_types.append("conv2d")
        elif isinstance(node, nir.Flatten):
            shape = (int(np.prod(shape)),)
        elif isinstance(node, nir.Scale):
            s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64).reshape(-1), (n_cur,))
            w_acc, b_acc = s[:, None] * (w_acc if w_acc is not None else np.eye(n_cur)), s * b_acc
        elif type(node) in NEURON_TYPES:
            kind = NEURON_TYPES[type(node)]
            if not syn_names:
                raise NIRError(f"hardware: neuron node {name!r} has no synaptic layer before it")
            if w_acc is None:
                raise NIRError(f"hardware: neuron node {name!r} has no weighted synapse before it")
            n = w_acc.shape[0]
            layers.append(FloatLayer(name=name, synapse="+".join(syn_names), kind=kind, weight=w_acc,
                                     bias=np.broadcast_to(b_acc, (n,)).astype(np.float64),
                                     params=_neuron_params(node, kind, n, dt, reset), synapse_types=tuple(syn_types),
                                     conv=conv, out_shape=tuple(shape)))
            w_acc, b_acc, n_cur = None, np.zeros(n), n
            syn_names, syn_types, conv = [], [], None
            continue
        else:
            raise NIRError(f"hardware: node {name!r} of type {type(node).__name__} is not supported; "
                           f"supported: Affine, Linear, Conv2d, Flatten, Scale, LIF, IF, LI")
        n_cur = int(np.prod(shape))
        syn_names.append(name)
    if not layers:
        raise NIRError("hardware: the graph has no neuron layer")
    return FloatNet(layers=layers, input_shape=in_shape, dt=dt, metadata=meta)


def float_reference(net: FloatNet, x: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Run the float network on input ``x [T, B, n_in]`` with the ``spikeflow.neurons`` reference steps.

    Returns ``(output [T, B, n_out], spikes per layer [T, B, n])``. The last
    layer's output is its spikes, or its membrane for a readout (LI).
    """
    x = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(x.shape[0], x.shape[1], -1))
    steps = {"lif": lif, "if": if_, "li": li}
    records = []
    cur = x
    for layer in net.layers:
        mod = steps[layer.kind]
        w = torch.as_tensor(layer.weight)
        b = torch.as_tensor(layer.bias)
        state = mod.init_state((cur.shape[1], layer.n_out), layer.params, dtype=torch.float64)
        outs = []
        for t in range(cur.shape[0]):
            out, state = mod.step(cur[t] @ w.T + b, state, layer.params)
            outs.append(out)
        cur = torch.stack(outs)
        records.append(cur.numpy())
    return cur.numpy(), records
