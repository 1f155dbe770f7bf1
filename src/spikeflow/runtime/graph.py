"""Compile a ``nir.NIRGraph`` once into a plain, validated plan that every engine runs.

The plan holds, per node: its kind, numpy weights and bias, conv/pool geometry, neuron
parameters in NIR units, input/output shapes, and its predecessors split into
*direct* edges (same time step) and *delayed* edges (previous step's output).

Time and cycle policy (docs/architecture.md):
- ``dt`` comes from the caller, else the graph's ``metadata["dt"]``; without one the
  graph cannot be run by a stepped engine (``NIRError``).
- A cycle must contain a neuron node; edges leaving a neuron node inside a cycle carry
  the previous step's spikes (a one-step delay, as ``spikeflow.nn.Recurrent``:
  ``x_t + W s_{t-1}``). A cycle of linear nodes only is an algebraic loop (``NIRError``).
- NIR's LIF/IF/CubaLIF reset to ``v_reset``; a node's ``metadata["spikeflow_reset"]`` (as
  ``spikeflow.ir`` writes it) or ``metadata["reset"]`` (``"subtract"``, ``"to_reset"``,
  ``"none"``) overrides this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import nir
import numpy as np
import torch

from spikeflow.errors import NIRError
from spikeflow.ir.topology import strongly_connected

NEURON_KINDS = ("lif", "if", "li", "cubalif", "cubali")
SPIKING_KINDS = ("lif", "if", "cubalif")
LINEAR_KINDS = ("affine", "conv2d", "sumpool2d", "avgpool2d", "flatten", "scale")

_NIR_KIND = {
    nir.Input: "input", nir.Output: "output", nir.Affine: "affine", nir.Linear: "affine",
    nir.Conv2d: "conv2d", nir.SumPool2d: "sumpool2d", nir.AvgPool2d: "avgpool2d",
    nir.Flatten: "flatten", nir.Scale: "scale", nir.LIF: "lif", nir.IF: "if", nir.LI: "li",
    nir.CubaLIF: "cubalif", nir.CubaLI: "cubali",
}
_RESET_MODES = ("subtract", "to_reset", "none")


@dataclass
class Node:
    """One node of a compiled graph. Shapes are batch-free."""

    name: str
    kind: str
    inputs: List[str] = field(default_factory=list)  # same-step predecessors
    delayed: List[str] = field(default_factory=list)  # previous-step predecessors
    in_shape: Tuple[int, ...] = ()
    out_shape: Tuple[int, ...] = ()
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    kernel: Tuple[int, int] = (1, 1)
    params: Dict[str, np.ndarray] = field(default_factory=dict)  # neuron params, NIR units, out_shape
    reset: str = "to_reset"

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape)) if self.out_shape else 1

    @property
    def is_neuron(self) -> bool:
        return self.kind in NEURON_KINDS

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING_KINDS


@dataclass
class CompiledGraph:
    """A validated NIR graph as every engine runs it: nodes with numpy weights and NIR-unit parameters,
    the evaluation order, inputs, outputs, ``dt`` (seconds, or ``None``) and whether it has cycles.
    """
    nodes: Dict[str, Node]
    order: List[str]  # evaluation order within a step (delayed edges removed)
    inputs: List[str]
    outputs: List[str]
    dt: Optional[float]
    cyclic: bool

    def require_dt(self) -> float:
        if self.dt is None:
            raise NIRError(
                "runtime: the graph has no 'dt' in its metadata; pass dt=... (seconds) to the engine"
            )
        return self.dt

    @property
    def neuron_nodes(self) -> List[str]:
        return [n for n in self.order if self.nodes[n].is_neuron]

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return self.nodes[self.inputs[0]].out_shape


def compile_graph(graph, dt: Optional[float] = None) -> CompiledGraph:
    """Validate ``graph`` (a ``nir.NIRGraph``) and return its ``CompiledGraph``."""
    if isinstance(graph, CompiledGraph):
        if dt is not None and graph.dt != dt:
            graph = CompiledGraph(graph.nodes, graph.order, graph.inputs, graph.outputs, float(dt), graph.cyclic)
        return graph
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"runtime: expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes_in, edges = _flatten(graph, "")
    dt = _graph_dt(graph, dt)
    nodes = {name: _convert(name, node) for name, node in nodes_in.items()}
    preds: Dict[str, List[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        preds[dst].append(src)
    inputs = [n for n, nd in nodes.items() if nd.kind == "input"]
    outputs = [n for n, nd in nodes.items() if nd.kind == "output"]
    if len(inputs) != 1:
        raise NIRError(f"runtime: the graph must have exactly one Input node, found {len(inputs)}: {inputs}")
    if not outputs:
        raise NIRError("runtime: the graph has no Output node")
    delayed_edges = _delayed_edges(nodes, edges)
    for src, dst in edges:
        (nodes[dst].delayed if (src, dst) in delayed_edges else nodes[dst].inputs).append(src)
    order = _toposort(nodes)
    for name, nd in nodes.items():
        if nd.kind != "input" and not (nd.inputs or nd.delayed):
            raise NIRError(f"runtime: node '{name}' ({nd.kind}) has no incoming edge")
    _infer_shapes(nodes, order)
    for name in nodes:
        _check_neuron_params(nodes[name])
    return CompiledGraph(nodes, order, inputs, outputs, dt, bool(delayed_edges))


# ---------------------------------------------------------------- structure


def _flatten(graph, prefix: str):
    """Nodes and edges with nested subgraphs inlined (names joined by '.')."""
    nodes, edges = {}, []
    sub_in, sub_out = {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(node, full + ".")
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            sub_in[name] = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            sub_out[name] = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            for k in sub_in[name]:  # inner Input/Output become pass-through nodes
                nodes[k] = _Passthrough()
            for k in sub_out[name]:
                nodes[k] = _Passthrough()
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        srcs = sub_out.get(src, [prefix + src])
        dsts = sub_in.get(dst, [prefix + dst])
        for s in srcs:
            for d in dsts:
                if s not in nodes or d not in nodes:
                    raise NIRError(f"runtime: edge ({src!r}, {dst!r}) names a node that does not exist")
                edges.append((s, d))
    return nodes, edges


class _Passthrough:
    """The Input/Output node of an inlined subgraph: an identity."""


def _graph_dt(graph, dt):
    if dt is None:
        meta = getattr(graph, "metadata", None)
        if isinstance(meta, dict) and "dt" in meta:
            dt = meta["dt"]
    if dt is None:
        return None
    try:
        dt = float(np.asarray(dt).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise NIRError(f"runtime: 'dt' must be a positive number of seconds, got {dt!r}") from None
    if not math.isfinite(dt) or dt <= 0:
        raise NIRError(f"runtime: 'dt' must be a positive number of seconds, got {dt!r}")
    return dt


def _delayed_edges(nodes, edges):
    """Edges leaving a neuron node inside a strongly connected component."""
    succ = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
    comp = {n: c[-1] for c in strongly_connected(list(nodes), succ) for n in c}
    delayed = set()
    for s, d in edges:
        if comp[s] == comp[d] and nodes[s].is_neuron:
            delayed.add((s, d))
    return delayed


def _toposort(nodes):
    indeg = {n: len(nd.inputs) for n, nd in nodes.items()}
    succ = {n: [] for n in nodes}
    for n, nd in nodes.items():
        for p in nd.inputs:
            succ[p].append(n)
    ready = [n for n in nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(nodes):
        stuck = sorted(set(nodes) - set(order))
        raise NIRError(
            f"runtime: the graph has a cycle without a neuron node (an algebraic loop) through {stuck}; "
            "a recurrent loop must pass through a neuron node"
        )
    return order


# ---------------------------------------------------------------- node conversion


def _arr(node_name, field_name, value):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRError(f"runtime: node '{node_name}': parameter '{field_name}' is not numeric") from None
    if not np.all(np.isfinite(a)):
        raise NIRError(f"runtime: node '{node_name}': parameter '{field_name}' holds NaN or inf")
    return a


def _pair(node_name, field_name, value) -> Tuple[int, int]:
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or np.any(a < 0):
        raise NIRError(f"runtime: node '{node_name}': '{field_name}' must be one or two integers >= 0, got {value!r}")
    return int(a[0]), int(a[1])


def _convert(name: str, node) -> Node:
    if isinstance(node, _Passthrough):
        return Node(name, "flatten_id")
    kind = _NIR_KIND.get(type(node))
    if kind is None:
        raise NIRError(
            f"runtime: node '{name}' has type {type(node).__name__}, which the runtime engines do not run; "
            f"supported: {sorted({k.__name__ for k in _NIR_KIND})}"
        )
    nd = Node(name, kind)
    if kind == "input":
        nd.out_shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
    elif kind == "affine":
        w = _arr(name, "weight", node.weight)
        if w.ndim != 2:
            raise NIRError(f"runtime: node '{name}': weight must be 2-D (out, in), got shape {w.shape}")
        nd.weight = w
        nd.bias = _arr(name, "bias", node.bias).reshape(-1) if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
        if nd.bias.shape != (w.shape[0],):
            raise NIRError(f"runtime: node '{name}': bias must have shape ({w.shape[0]},), got {nd.bias.shape}")
    elif kind == "conv2d":
        w = _arr(name, "weight", node.weight)
        if w.ndim != 4:
            raise NIRError(f"runtime: node '{name}': Conv2d weight must be 4-D (out, in/groups, kh, kw)")
        nd.weight, nd.bias = w, _arr(name, "bias", node.bias).reshape(-1) * np.ones(w.shape[0])
        nd.stride = _pair(name, "stride", node.stride)
        nd.dilation = _pair(name, "dilation", node.dilation)
        nd.groups = int(node.groups)
        nd.kernel = (w.shape[2], w.shape[3])
        if isinstance(node.padding, str):
            if node.padding == "valid":
                nd.padding = (0, 0)
            elif nd.stride == (1, 1) and all(d * (k - 1) % 2 == 0 for d, k in zip(nd.dilation, nd.kernel)):
                nd.padding = tuple(d * (k - 1) // 2 for d, k in zip(nd.dilation, nd.kernel))
            else:
                raise NIRError(f"runtime: node '{name}': padding 'same' is supported for stride 1 and odd kernels")
        else:
            nd.padding = _pair(name, "padding", node.padding)
        if nd.groups < 1 or w.shape[0] % nd.groups:
            raise NIRError(f"runtime: node '{name}': groups={nd.groups} must divide out channels {w.shape[0]}")
    elif kind in ("sumpool2d", "avgpool2d"):
        nd.kernel = _pair(name, "kernel_size", node.kernel_size)
        nd.stride = _pair(name, "stride", node.stride)
        nd.padding = _pair(name, "padding", node.padding)
        if min(nd.kernel) < 1 or min(nd.stride) < 1:
            raise NIRError(f"runtime: node '{name}': kernel_size and stride must be >= 1")
    elif kind == "flatten":
        nd.params = {"start_dim": int(node.start_dim), "end_dim": int(node.end_dim)}
    elif kind == "scale":
        nd.weight = _arr(name, "scale", node.scale)
    elif kind in NEURON_KINDS:
        fields = {
            "lif": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
            "if": ("r", "v_threshold", "v_reset"),
            "li": ("tau", "r", "v_leak"),
            "cubalif": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
            "cubali": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
        }[kind]
        nd.params = {f: _arr(name, f, getattr(node, f)) for f in fields}
        if "tau" in nd.params:
            nd.params["tau_mem"] = nd.params.pop("tau")
        meta = getattr(node, "metadata", None) or {}
        reset = meta.get("spikeflow_reset", meta.get("reset", "to_reset"))  # spikeflow.ir writes spikeflow_reset
        refractory = float(np.asarray(meta.get("spikeflow_refractory", 0.0)).reshape(-1)[0])
        if refractory > 0:
            raise NIRError(f"runtime: node '{name}' has a refractory period ({refractory:g} s); the runtime "
                           "engines follow NIR's equations, which have none")
        reset = reset.decode() if isinstance(reset, bytes) else str(reset)
        if reset not in _RESET_MODES:
            raise NIRError(f"runtime: node '{name}': metadata 'reset' must be one of {_RESET_MODES}, got {reset!r}")
        nd.reset = reset
    return nd


# ---------------------------------------------------------------- shapes


def _infer_shapes(nodes, order):
    pending = [n for n in order if nodes[n].kind != "input"]
    while pending:
        progressed, left = False, []
        for name in pending:
            nd = nodes[name]
            preds = nd.inputs + nd.delayed
            known = [nodes[p].out_shape for p in preds if nodes[p].kind == "input" or nodes[p].out_shape]
            if not known:
                left.append(name)
                continue
            shape = known[0]
            for p in preds:
                s = nodes[p].out_shape
                if (nodes[p].kind == "input" or s) and int(np.prod(s)) != int(np.prod(shape)):
                    raise NIRError(
                        f"runtime: node '{name}' receives inputs of different sizes: {p!r} gives {s}, expected {shape}"
                    )
            nd.in_shape = shape
            nd.out_shape = _out_shape(nd, shape)
            progressed = True
        if not progressed:
            raise NIRError(f"runtime: cannot infer the shapes of nodes {left}")
        pending = left
    for name in order:  # every predecessor known now: check sizes once more
        nd = nodes[name]
        for p in nd.inputs + nd.delayed:
            if int(np.prod(nodes[p].out_shape)) != int(np.prod(nd.in_shape)):
                raise NIRError(
                    f"runtime: edge {p!r} -> {name!r}: shape {nodes[p].out_shape} does not match {nd.in_shape}"
                )


def _out_shape(nd: Node, shape):
    name = nd.name
    if nd.kind in ("output", "flatten_id") or nd.is_neuron:
        return shape
    if nd.kind == "affine":
        if int(np.prod(shape)) != nd.weight.shape[1]:
            raise NIRError(
                f"runtime: node '{name}': weight expects {nd.weight.shape[1]} inputs, receives shape {shape}"
            )
        return (nd.weight.shape[0],)
    if nd.kind == "scale":
        if nd.weight.size not in (1, int(np.prod(shape))):
            raise NIRError(f"runtime: node '{name}': scale has {nd.weight.size} values for input shape {shape}")
        return shape
    if nd.kind == "flatten":  # dims are batch-free, as nir's own shape inference counts them
        s, e = nd.params["start_dim"], nd.params["end_dim"]
        if not (-len(shape) <= s < len(shape) and -len(shape) <= e < len(shape)) or s % len(shape) > e % len(shape):
            return (int(np.prod(shape)),)
        s, e = s % len(shape), e % len(shape)
        return tuple(shape[:s]) + (int(np.prod(shape[s:e + 1])),) + tuple(shape[e + 1:])
    if len(shape) != 3:
        raise NIRError(f"runtime: node '{name}' ({nd.kind}) needs a (C, H, W) input, receives shape {shape}")
    c, h, w = shape
    if nd.kind == "conv2d":
        if c != nd.weight.shape[1] * nd.groups:
            raise NIRError(
                f"runtime: node '{name}': conv expects {nd.weight.shape[1] * nd.groups} input channels, receives {c}"
            )
        cout = nd.weight.shape[0]
    else:
        cout = c
    oh = (h + 2 * nd.padding[0] - nd.dilation[0] * (nd.kernel[0] - 1) - 1) // nd.stride[0] + 1
    ow = (w + 2 * nd.padding[1] - nd.dilation[1] * (nd.kernel[1] - 1) - 1) // nd.stride[1] + 1
    if oh < 1 or ow < 1:
        raise NIRError(f"runtime: node '{name}': output would be empty for input shape {shape}")
    return (cout, oh, ow)


def _check_neuron_params(nd: Node):
    if not nd.is_neuron:
        return
    for k, v in list(nd.params.items()):
        try:
            nd.params[k] = np.broadcast_to(v.reshape(v.shape if v.size > 1 else ()), nd.out_shape).copy()
        except ValueError:
            try:  # a flat per-neuron array for a multi-dim layer
                nd.params[k] = v.reshape(nd.out_shape).copy()
            except ValueError:
                raise NIRError(
                    f"runtime: node '{nd.name}': parameter '{k}' has shape {v.shape}, the layer has shape "
                    f"{nd.out_shape}"
                ) from None
    for k in ("tau_mem", "tau_syn"):
        if k in nd.params and np.any(nd.params[k] <= 0):
            raise NIRError(f"runtime: node '{nd.name}': '{k}' must be > 0 seconds")


# ---------------------------------------------------------------- linear ops (torch, shared by engines)


def apply_linear(nd: Node, x: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
    """Apply a linear node to ``x [N, *in_shape]`` (any batch), returning ``[N, *out_shape]``."""
    n = x.shape[0]
    if nd.kind in ("output", "flatten_id", "flatten"):
        return x.reshape(n, *nd.out_shape)
    if nd.kind == "affine":
        w = torch.as_tensor(nd.weight, dtype=x.dtype)
        b = torch.as_tensor(nd.bias, dtype=x.dtype) if with_bias else None
        return torch.nn.functional.linear(x.reshape(n, -1), w, b)
    if nd.kind == "scale":
        return x.reshape(n, *nd.out_shape) * torch.as_tensor(nd.weight, dtype=x.dtype).reshape(nd.out_shape)
    x = x.reshape(n, *nd.in_shape)
    if nd.kind == "conv2d":
        w = torch.as_tensor(nd.weight, dtype=x.dtype)
        b = torch.as_tensor(nd.bias, dtype=x.dtype) if with_bias else None
        return torch.nn.functional.conv2d(x, w, b, nd.stride, nd.padding, nd.dilation, nd.groups)
    if nd.kind == "avgpool2d":
        return torch.nn.functional.avg_pool2d(x, nd.kernel, nd.stride, nd.padding)
    if nd.kind == "sumpool2d":
        return torch.nn.functional.avg_pool2d(x, nd.kernel, nd.stride, nd.padding, divisor_override=1)
    raise NIRError(f"runtime: node '{nd.name}' ({nd.kind}) is not a linear node")


def dense_macs(nd: Node) -> int:
    """Multiply-accumulates a clock-driven step of a linear node costs (every input, every weight)."""
    if nd.kind == "affine":
        return int(nd.weight.size)
    if nd.kind == "conv2d":
        return int(np.prod(nd.out_shape)) * int(np.prod(nd.weight.shape[1:]))
    if nd.kind in ("sumpool2d", "avgpool2d"):
        return int(np.prod(nd.out_shape)) * nd.kernel[0] * nd.kernel[1]
    if nd.kind == "scale":
        return int(np.prod(nd.out_shape))
    return 0


def neuron_params(nd: Node, dt: float, dtype=torch.float64):
    """The ``spikeflow.neurons`` parameter dataclass of a neuron node for step ``dt``."""
    from spikeflow import neurons

    t = {k: torch.as_tensor(v, dtype=dtype) for k, v in nd.params.items()}
    if nd.kind == "lif":
        return neurons.LIFParams(tau_mem=t["tau_mem"], v_threshold=t["v_threshold"], v_leak=t["v_leak"],
                                 v_reset=t["v_reset"], r=t["r"], dt=dt, reset=nd.reset)
    if nd.kind == "if":  # NIR's IF is dv/dt = R I; spikeflow's step adds r x with r = R dt
        return neurons.IFParams(v_threshold=t["v_threshold"], v_reset=t["v_reset"], r=t["r"] * dt, dt=dt,
                                reset=nd.reset)
    if nd.kind == "li":
        return neurons.LIParams(tau_mem=t["tau_mem"], v_leak=t["v_leak"], r=t["r"], dt=dt)
    if nd.kind == "cubalif":
        return neurons.CubaLIFParams(tau_syn=t["tau_syn"], tau_mem=t["tau_mem"], v_threshold=t["v_threshold"],
                                     v_leak=t["v_leak"], v_reset=t["v_reset"], r=t["r"], w_in=t["w_in"], dt=dt,
                                     reset=nd.reset)
    return neurons.CubaLIParams(tau_syn=t["tau_syn"], tau_mem=t["tau_mem"], v_leak=t["v_leak"], r=t["r"],
                                w_in=t["w_in"], dt=dt)


def neuron_model(nd: Node):
    from spikeflow.neurons import get_model

    return get_model(nd.kind)


def constant_drive(cg: CompiledGraph) -> Dict[str, np.ndarray]:
    """Input each neuron/output node receives when every spiking source is silent (the biases)."""
    zero = {}
    for name in cg.order:
        nd = cg.nodes[name]
        if nd.kind == "input" or nd.is_neuron:
            zero[name] = torch.zeros(1, *nd.out_shape, dtype=torch.float64)
            continue
    drive = {}
    for name in cg.order:
        nd = cg.nodes[name]
        if nd.kind == "input":
            continue
        total = torch.zeros(1, *nd.in_shape, dtype=torch.float64)
        for p in nd.inputs + nd.delayed:
            total = total + zero[p].reshape(total.shape)
        if nd.is_neuron:
            drive[name] = total.reshape(nd.out_shape).numpy().copy()
        elif nd.kind == "output":
            drive[name] = total.reshape(nd.out_shape).numpy().copy()
            zero[name] = total
        else:
            zero[name] = apply_linear(nd, total)
    return drive
