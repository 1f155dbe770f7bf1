"""Shape inference and checking along the edges of a NIR graph (batch-free shapes).

spikeflow's own rules, so that a mismatch anywhere (not only where ``nir`` infers types)
raises ``NIRError`` naming the nodes: Affine/Linear act on the last axis; Conv and
pooling nodes follow torch's output-size formula; elementwise nodes (neurons, Scale,
Threshold, Delay) take per-neuron parameters of the input's shape, or 0-d parameters
that broadcast (a quirk of Norse's and snnTorch's files). Several edges into one node
are summed, so their shapes must agree. Edges that close a cycle are checked too.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Tuple

import nir
import numpy as np

from spikeflow.errors import NIRError
from spikeflow.ir.topology import FlatGraph, components, flatten

Shape = Optional[Tuple[int, ...]]  # noqa: UP045 (a runtime alias; py3.10 target)

ELEMENTWISE_FIELDS = {
    "Scale": ("scale",),
    "Threshold": ("threshold",),
    "Delay": ("delay",),
    "I": ("r",),
    "IF": ("r", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
}


def _tuple(x) -> Shape:
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype == object or a.ndim > 1:
        return None
    return tuple(int(v) for v in a.reshape(-1))


def _pair(v, n: int) -> Tuple[int, ...]:
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        return tuple(int(a[0]) for _ in range(n))
    if a.size != n:
        raise ValueError(f"expected {n} values, got {a.size}")
    return tuple(int(x) for x in a)


def param_shape(node: nir.NIRNode) -> Shape:
    """The per-neuron shape of an elementwise node's parameters (``()`` for 0-d)."""
    shp: Tuple[int, ...] = ()
    for f in ELEMENTWISE_FIELDS[type(node).__name__]:
        v = getattr(node, f, None)
        if v is None:
            continue
        s = np.shape(v)
        try:
            shp = tuple(np.broadcast_shapes(shp, s))
        except ValueError:
            raise ValueError(f"parameter '{f}' of shape {s} does not match the others ({shp})") from None
    return shp


def conv_out(size: Tuple[int, ...], kernel, stride, padding, dilation) -> Tuple[int, ...]:
    n = len(size)
    if isinstance(padding, (str, bytes)) or (isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO"):
        p = padding.decode() if isinstance(padding, bytes) else str(np.asarray(padding).reshape(-1)[0] if
                                                                     isinstance(padding, np.ndarray) else padding)
        if p == "same":
            return tuple(size)
        padding = 0
    k, s, p, d = _pair(kernel, n), _pair(stride, n), _pair(padding, n), _pair(dilation, n)
    out = tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n))
    if any(o <= 0 for o in out):
        raise ValueError(f"input of spatial size {size} is too small for the window (output {out})")
    return out


def flatten_out(shape: Tuple[int, ...], start: int, end: int) -> Tuple[int, ...]:
    n = len(shape)
    s = start + n if start < 0 else start
    e = end + n if end < 0 else end
    if not (0 <= s <= e < n):
        raise ValueError(f"start_dim={start}, end_dim={end} do not fit a {n}-D input")
    return shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]


def node_output(node: nir.NIRNode, shape: Shape) -> Shape:
    """Output shape of ``node`` for input ``shape`` (None: unknown); ValueError on a mismatch."""
    kind = type(node).__name__
    if kind == "Input":
        declared = _tuple(node.input_type.get("input"))
        if shape is not None and declared is not None and shape != declared:
            raise ValueError(f"receives shape {shape} but declares {declared}")
        return declared if declared is not None else shape
    if kind == "Output":
        declared = _tuple(node.output_type.get("output"))
        if shape is not None and declared is not None and shape != declared:
            raise ValueError(f"receives shape {shape} but declares {declared}")
        return shape if shape is not None else declared
    if kind in ("Affine", "Linear"):
        w = np.shape(node.weight)
        if kind == "Affine" and np.shape(node.bias) not in ((), (w[0],)):
            raise ValueError(f"bias of shape {np.shape(node.bias)} does not fit weight of shape {w}")
        if shape is None:
            return (w[0],)
        if len(shape) != 1 or shape[0] != w[1]:
            raise ValueError(f"weight of shape {w} expects input of shape ({w[1]},), got shape {shape}")
        return (w[0],)
    if kind in ("Conv1d", "Conv2d"):
        w = np.shape(node.weight)
        nsp = 1 if kind == "Conv1d" else 2
        if np.shape(node.bias) not in ((), (w[0],)):
            raise ValueError(f"bias of shape {np.shape(node.bias)} does not fit weight of shape {w}")
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        if groups < 1 or w[0] % groups:
            raise ValueError(f"groups={groups} must be >= 1 and divide the {w[0]} output channels")
        if shape is None and node.input_shape is not None:
            shape = (w[1] * groups,) + _pair(node.input_shape, nsp)
        if shape is None:
            return None
        if len(shape) != nsp + 1 or shape[0] != w[1] * groups:
            raise ValueError(f"weight of shape {w} (groups={groups}) expects input (C={w[1] * groups}, "
                             f"{'N' if nsp == 1 else 'H, W'}), got shape {shape}")
        return (w[0],) + conv_out(shape[1:], w[2:], node.stride, node.padding, node.dilation)
    if kind in ("AvgPool2d", "SumPool2d"):
        if shape is None:
            return None
        if len(shape) != 3:
            raise ValueError(f"expects input (C, H, W), got shape {shape}")
        return (shape[0],) + conv_out(shape[1:], node.kernel_size, node.stride, node.padding, 1)
    if kind == "Flatten":
        if shape is None:
            shape = _tuple(node.input_type.get("input")) if node.input_type else None
        if shape is None:
            return None
        return flatten_out(shape, int(node.start_dim), int(node.end_dim))
    if kind in ELEMENTWISE_FIELDS:
        p = param_shape(node)
        if shape is None:
            return p if p != () else None
        try:
            fits = tuple(np.broadcast_shapes(p, shape)) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"per-neuron parameters of shape {p} do not fit input of shape {shape}")
        return shape
    raise ValueError(f"node type {kind} is not supported")


def infer(graph_or_flat, source: str = "graph") -> Dict[str, Shape]:
    """Output shape of every node of the flattened graph; ``NIRError`` names the node on a mismatch."""
    flat = graph_or_flat if isinstance(graph_or_flat, FlatGraph) else flatten(graph_or_flat, source)
    out: Dict[str, Shape] = {}
    for comp in components(flat):
        for name in comp.nodes:
            node = flat.nodes[name]
            in_shape = None
            for src in flat.sources(name):
                if (src, name) in comp.back_edges:
                    continue
                s = out.get(src)
                if s is None:
                    continue
                if in_shape is not None and s != in_shape:
                    raise NIRError(f"{source}: node '{name}' ({type(node).__name__}) receives shape {s} from "
                                   f"'{src}' but shape {in_shape} from another edge; summed inputs must agree")
                in_shape = s
            out[name] = _output(node, name, in_shape, source)
        for src, dst in comp.back_edges:
            # the node's own output type fixes its input shape for elementwise nodes; check the loop's input
            s_in, s_src = _input_shape(flat, dst, out, comp.back_edges), out.get(src)
            if s_in is None and s_src is not None:
                node = flat.nodes[dst]
                s_in = s_src
                out[dst] = _output(node, dst, s_in, source)
            elif s_in is not None and s_src is not None and s_in != s_src:
                raise NIRError(f"{source}: node '{dst}' ({type(flat.nodes[dst]).__name__}) receives shape {s_src} "
                               f"from '{src}' (recurrent edge) but {s_in} from its other inputs")
    return out


def _input_shape(flat: FlatGraph, name: str, out, back) -> Shape:
    for src in flat.sources(name):
        if (src, name) not in back and out.get(src) is not None:
            return out[src]
    node = flat.nodes[name]
    if type(node).__name__ in ELEMENTWISE_FIELDS:
        p = param_shape(node)
        return p if p != () else None
    return None


def _output(node, name: str, in_shape: Shape, source: str) -> Shape:
    try:
        return node_output(node, in_shape)
    except (ValueError, TypeError, IndexError) as err:
        raise NIRError(f"{source}: node '{name}' ({type(node).__name__}): {err}") from None


def strip_batch_axis(graph: nir.NIRGraph, source: str = "graph") -> None:
    """Norse writes a batch axis into Input/Output types (``(1, N)`` before an Affine of N inputs).
    Drop a leading axis of 1 that the next node does not accept but accepts without, with a warning
    (in place, top-level Input and Output nodes only)."""
    for name, node in list(graph.nodes.items()):
        if not isinstance(node, nir.Input):
            continue
        shp = _tuple(node.input_type.get("input"))
        if shp is None or len(shp) < 2 or shp[0] != 1:
            continue
        targets = [graph.nodes[b] for a, b in graph.edges if a == name and b in graph.nodes]
        if not targets or any(isinstance(t, nir.NIRGraph) for t in targets) or _accepts(targets, shp):
            continue
        if not _accepts(targets, shp[1:]):
            continue  # not the batch quirk; the shape check reports the mismatch
        warnings.warn(f"{source}: Input node '{name}' declares shape {shp}; its leading axis is taken as a batch "
                      f"axis (as Norse 1.1 writes it), so the input shape is {shp[1:]}", stacklevel=3)
        graph.nodes[name] = nir.Input(input_type=np.array(shp[1:], dtype=np.int64))
        for oname, o in list(graph.nodes.items()):
            oshp = _tuple(o.output_type.get("output")) if isinstance(o, nir.Output) else None
            if oshp is not None and len(oshp) >= 2 and oshp[0] == 1:
                graph.nodes[oname] = nir.Output(output_type=np.array(oshp[1:], dtype=np.int64))


def _accepts(targets, shape) -> bool:
    try:
        for t in targets:
            node_output(t, shape)
    except (ValueError, TypeError, IndexError):
        return False
    return True
