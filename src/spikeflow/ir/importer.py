"""Import NIR graphs as runnable spikeflow modules (``from_nir``).

Time policy: each neuron node becomes a spikeflow ``NeuronLayer`` whose step is the exact
solution of the node's ODE over one step of ``dt`` with the input held constant: leak
``exp(-dt / tau)``, input ``r * I * (1 - exp(-dt / tau))``; IF gets ``r_spikeflow = R * dt``.
NIR resets to ``v_reset``; a spikeflow file's ``spikeflow_reset`` metadata (``"subtract"``) is
honoured.

``discretization="euler"`` reproduces forward Euler's decays (``v += dt / tau * (v_leak - v + r I)``)
with the same spikeflow step: forward Euler's decay ``1 - dt / tau`` is the exact decay of
``tau' = -dt / log(1 - dt / tau)`` and its input gain ``dt / tau = 1 - exp(-dt / tau')``, so only
the time constants change. (For CubaLIF/CubaLI the membrane keeps the exact coupled step of
``neurons.cuba``, which differs from Euler's coupling at second order in dt/tau.)
``discretization="snntorch"`` / ``"norse"`` step forward Euler as those libraries do
(``neurons.euler``: current first, their arithmetic), with coefficients computed in float64
from the file's values and rounded once; the conventions of ``ir.conventions`` choose them.

``dt`` comes from the caller, else the convention's, else the graph's metadata ``dt``, else
``DEFAULT_DT`` with a warning that says so. A tau below ``dt`` is warned about, naming the node.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from typing import Dict, List, Tuple, Union

import nir
import numpy as np
import torch
from torch import nn

from spikeflow.errors import NIRError, SpikeflowError
from spikeflow.ir import conventions
from spikeflow.ir import shapes as shape_rules
from spikeflow.ir.conventions import CONVENTIONS
from spikeflow.ir.topology import Component, components, flatten
from spikeflow.nn.elementwise import Delay, Scale, SumPool2d, Threshold
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.neuron import NeuronLayer

DEFAULT_DT = 1e-3  # seconds; spikeflow's default step (and Norse's NIR convention)
DISCRETIZATIONS = ("exact", "euler", "snntorch", "norse")
PASS_THROUGH = (nir.Input, nir.Output)
_STEPPABLE = (NeuronLayer, Delay, Scale, Threshold, TimeFold)


def graph_dt(graph: nir.NIRGraph) -> float | None:
    """The ``dt`` stored in a graph's metadata (seconds), or None."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    v = meta.get("dt")
    if v is None:
        return None
    try:
        d = float(np.asarray(v).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise NIRError(f"NIR graph: metadata 'dt' must be a number of seconds, got {v!r}") from None
    if not (math.isfinite(d) and d > 0):
        raise NIRError(f"NIR graph: metadata 'dt' must be > 0 seconds, got {d}")
    return d


def resolve_dt(graph: nir.NIRGraph, dt: float | None, source: str = "NIR graph") -> float:
    if dt is not None:
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise NIRError(f"from_nir: dt must be a number of seconds > 0, got {dt!r}")
        return float(dt)
    d = graph_dt(graph)
    if d is not None:
        return d
    warnings.warn(
        f"{source}: no dt given and none in the graph's metadata; assuming dt = {DEFAULT_DT} s "
        "(spikeflow's default; snnTorch 1.0 runs NIR files at 1e-4 s, Norse 1.1 at 1e-3 s). "
        "Pass dt=... to choose.",
        stacklevel=3,
    )
    return DEFAULT_DT


def guess_convention(graph: nir.NIRGraph, dt: float | None = None) -> str | None:
    """'snntorch' or 'norse' when a graph that declares nothing carries that library's signature
    (a proposal: ``from_nir`` warns when it follows one)."""
    if graph_dt(graph) is not None or conventions.declared(graph) is not None:
        return None
    return conventions.guess(graph, dt)[0]


def resolve_convention(graph: nir.NIRGraph, convention: str = "auto", dt: float | None = None,
                       source: str = "NIR graph") -> str | None:
    """The convention to read ``graph`` with (None: spikeflow's, the file as written): the
    caller's, else the metadata's, else none when the metadata has ``dt``, else a guess, with a
    warning that says what was assumed and how to turn it off."""
    if convention not in ("auto",) + conventions.NAMES:
        raise NIRError(f"from_nir: convention must be 'auto', {', '.join(map(repr, conventions.NAMES))}; "
                       f"got {convention!r}")
    if convention != "auto":
        return None if convention == "spikeflow" else convention
    said = conventions.declared(graph)
    if said is not None:
        return None if said == "spikeflow" else said
    if graph_dt(graph) is not None:
        return None
    conv, evidence = conventions.guess(graph, dt)
    off = ("pass convention='spikeflow' (CLI: --convention spikeflow) to read it as written, or store metadata "
           "convention='...' in the file to say how it is meant")
    if conv is not None:
        c = CONVENTIONS[conv]
        step = c["dt"] if dt is None else dt
        warnings.warn(
            f"{source}: recognised as a {conv} file by its shape ({evidence}; {c['note']}); assuming dt = {step} s, "
            f"discretization = {c['discretization']!r}. To turn this off, {off}.",
            stacklevel=3,
        )
    elif evidence:
        warnings.warn(f"{source}: looks like a Norse file ({evidence}); read as written. Pass convention='norse' "
                      "(CLI: --convention norse) for Norse's discretization.", stacklevel=3)
    return conv


def from_nir(graph_or_path: Union[nir.NIRGraph, str, os.PathLike], *, dt: float | None = None,
             discretization: str | None = None, convention: str = "auto",
             reset: str | None = None) -> GraphModule:
    """A runnable module for a NIR graph (or a NIR file, read safely with ``read_graph``).

    ``convention`` (see ``spikeflow.ir.conventions``): ``"auto"`` (the file's metadata
    ``convention``, else its metadata ``dt`` means spikeflow's, else the shape heuristics propose
    snnTorch 1.0 or Norse 1.1, with a warning), ``"spikeflow"`` (the file as written),
    ``"snntorch"`` or ``"norse"`` (that library's dt, units and discretization).
    ``discretization``: ``"exact"`` (spikeflow's policy, the default), ``"euler"`` (forward Euler's
    decays, see the module doc), ``"snntorch"`` or ``"norse"`` (forward Euler in that library's
    update order and arithmetic, ``spikeflow.neurons.euler``; a convention sets its own).
    ``reset``: None (a node's ``spikeflow_reset`` metadata, else NIR's reset to ``v_reset``), or
    ``"to_reset"`` / ``"subtract"`` for every spiking node. With ``v_reset = 0``, subtracting the
    threshold at the end of the step is the exact grid form of NIR's IF reset (the overshoot since
    the crossing is kept), while ``"to_reset"`` loses it; the peers reset to ``v_reset``.
    """
    if reset not in (None, "to_reset", "subtract", "none"):
        raise NIRError(f"from_nir: reset must be None, 'to_reset', 'subtract' or 'none', got {reset!r}")
    if discretization is not None and discretization not in DISCRETIZATIONS:
        raise NIRError(f"from_nir: discretization must be one of {DISCRETIZATIONS}, got {discretization!r}")
    if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NIRError(f"from_nir: dt must be a number of seconds > 0, got {dt!r}")
    if isinstance(graph_or_path, nir.NIRGraph):
        graph, source = graph_or_path, "NIR graph"
    elif isinstance(graph_or_path, (str, os.PathLike)):
        from spikeflow.ir.reader import read_graph

        graph, source = read_graph(graph_or_path), f"NIR file {os.fspath(graph_or_path)}"
    else:
        raise NIRError(f"from_nir: expected a nir.NIRGraph or a path, got {type(graph_or_path).__name__}")
    conv = resolve_convention(graph, convention, dt, source)
    if conv is not None:
        step = float(dt) if dt is not None else CONVENTIONS[conv]["dt"]
        discretization = discretization or CONVENTIONS[conv]["discretization"]
    else:
        step = resolve_dt(graph, dt, source)
    return GraphModule(graph, step, discretization=discretization or "exact", source=source, convention=conv,
                       reset=reset)


def _key(name: str) -> str:
    return name.replace(".", "__")


class GraphModule(nn.Module):
    """Executes a NIR graph on time-major input ``[T, B, *input_shape]``.

    Nodes run in topological order; a node outside any cycle runs on all T steps at once,
    the nodes of a cycle run step by step and each edge that closes the cycle delivers the
    previous step's value (zero at the first step). Several edges into a node are summed.
    ``forward`` returns the output tensor (a dict when the graph has several outputs);
    ``run(x, record=True)`` also returns every neuron node's membrane trace.
    """

    def __init__(self, graph: nir.NIRGraph, dt: float, *, discretization: str = "exact",
                 source: str = "NIR graph", convention: str | None = None, reset: str | None = None):
        super().__init__()
        self.dt = float(dt)
        self.discretization = discretization
        self.source = source
        graph = copy.copy(graph)  # quirk fixes below replace nodes; the caller's graph is left as it was
        graph.nodes = dict(graph.nodes)
        shape_rules.strip_batch_axis(graph, source)
        flat = flatten(graph, source)
        if convention == "norse":
            changed = conventions.norse_units(flat, self.dt)
            if not changed:
                warnings.warn(f"{source}: read with Norse's discretization, but every tau is >= dt = {self.dt:g} s: "
                              "the parameters are taken as seconds already and not divided by dt", stacklevel=3)
        self.convention = convention
        self.flat = flat
        self.shapes = shape_rules.infer(flat, source)
        self.components: List[Component] = components(flat)
        looped = {n for c in self.components if c.cyclic for n in c.nodes}
        self.layers = nn.ModuleDict()
        for name, node in flat.nodes.items():
            if name not in flat.inputs and not flat.sources(name):
                raise NIRError(f"{source}: node '{name}' ({type(node).__name__}) has no incoming edge and is not "
                               "a graph Input")
            in_shape = self._in_shape(name)
            self.layers[_key(name)] = _build(name, node, in_shape, self.shapes[name], self.dt, discretization,
                                             source, reset, in_cycle=name in looped)
        if not flat.inputs:
            raise NIRError(f"{source}: the graph has no Input node")
        if not flat.outputs:
            raise NIRError(f"{source}: the graph has no Output node")

    def _in_shape(self, name: str):
        for src in self.flat.sources(name):
            if self.shapes.get(src) is not None:
                return self.shapes[src]
        return None

    @property
    def input_shapes(self) -> Dict[str, Tuple[int, ...] | None]:
        return {n: self.shapes[n] for n in self.flat.inputs}

    @property
    def output_shapes(self) -> Dict[str, Tuple[int, ...] | None]:
        return {n: self.shapes[n] for n in self.flat.outputs}

    def forward(self, x):
        return self.run(x)[0]

    def run(self, x, record: bool = False):
        """Returns ``(outputs, traces)``; ``traces`` maps neuron nodes to membranes ``[T, B, ...]``."""
        feeds = self._feeds(x)
        values: Dict[str, torch.Tensor] = {}
        traces: Dict[str, torch.Tensor] = {}
        for comp in self.components:
            if comp.cyclic:
                self._run_cycle(comp, values, feeds, traces, record)
            else:
                name = comp.nodes[0]
                inp = feeds[name] if name in feeds else self._sum([values[s] for s in self.flat.sources(name)])
                values[name] = self._run_node(name, inp, traces, record)
        outs = {n: values[n] for n in self.flat.outputs}
        result = outs[self.flat.outputs[0]] if len(outs) == 1 else outs
        return result, traces

    def reset(self) -> None:
        """Forget the streaming state: the next ``step`` starts from rest."""
        self._stream = None

    def step(self, x_t):
        """Advance one time step of input ``[B, ...]`` (or a dict of them); state is kept until ``reset``.

        Gives the same outputs, step by step, as ``forward`` on the whole sequence."""
        if getattr(self, "_stream", None) is None:
            self._stream = {"states": {}, "prev": {}}
        states, prev = self._stream["states"], self._stream["prev"]
        seq = self._feeds({k: v.unsqueeze(0) for k, v in x_t.items()} if isinstance(x_t, dict) else x_t.unsqueeze(0))
        feeds = {k: v[0] for k, v in seq.items()}
        ref = next(iter(feeds.values()))
        cur: Dict[str, torch.Tensor] = {}
        back = set().union(*(c.back_edges for c in self.components))
        for comp in self.components:
            for n in comp.nodes:
                parts = [feeds[n]] if n in feeds else []
                for src in self.flat.sources(n):
                    if (src, n) in back:
                        shp = (ref.shape[0],) + tuple(self.shapes[src])
                        parts.append(prev.get(src, ref.new_zeros(shp)))
                    else:
                        parts.append(cur[src])
                layer = self.layers[_key(n)]
                x = self._sum(parts)
                if isinstance(layer, _STEPPABLE):
                    cur[n], states[n] = layer.step(x, states.get(n))
                else:
                    cur[n] = layer(x)
        self._stream["prev"] = {src: cur[src] for src, _ in back}
        outs = {n: cur[n] for n in self.flat.outputs}
        return outs[self.flat.outputs[0]] if len(outs) == 1 else outs

    def _feeds(self, x) -> Dict[str, torch.Tensor]:
        names = self.flat.inputs
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise NIRError(f"{self.source}: inputs {missing} not given; the graph's inputs are {names}")
            feeds = dict(x)
        elif len(names) == 1:
            feeds = {names[0]: x}
        else:
            raise NIRError(f"{self.source}: the graph has inputs {names}; pass a dict name -> tensor")
        for n in names:
            t = feeds[n]
            want = self.shapes[n]
            if not isinstance(t, torch.Tensor) or t.dim() < 2:
                raise NIRError(f"{self.source}: input '{n}' must be a time-major tensor [T, B, ...]")
            if want is not None and tuple(t.shape[2:]) != tuple(want):
                raise NIRError(f"{self.source}: input '{n}' must have shape [T, B, {', '.join(map(str, want))}], "
                               f"got {tuple(t.shape)}")
            if not t.is_floating_point():
                feeds[n] = t.float()
        return feeds

    @staticmethod
    def _sum(vals: List[torch.Tensor]) -> torch.Tensor:
        acc = vals[0]
        for v in vals[1:]:
            acc = acc + v
        return acc

    def _run_node(self, name, x, traces, record):
        layer = self.layers[_key(name)]
        if isinstance(layer, NeuronLayer):
            out, _, trace = layer.multistep(x, None, return_trace=record)
            if record:
                traces[name] = trace
            return out
        return layer(x)

    def _run_cycle(self, comp: Component, values, feeds, traces, record) -> None:
        members = set(comp.nodes)
        sources = {n: self.flat.sources(n) for n in comp.nodes}
        ext = [values[s] for n in comp.nodes for s in sources[n] if s not in members]
        ext += [feeds[n] for n in comp.nodes if n in feeds]
        if not ext:
            raise NIRError(f"{self.source}: the cycle {comp.nodes} has no input from outside")
        n_steps, batch = ext[0].shape[0], ext[0].shape[1]
        ref = ext[0]
        prev: Dict[str, torch.Tensor] = {}
        for n in comp.nodes:
            shp = self.shapes.get(n)
            if shp is None:
                raise NIRError(f"{self.source}: cannot tell the shape of node '{n}' inside a cycle")
            prev[n] = ref.new_zeros((batch,) + tuple(shp))
        states = {n: None for n in comp.nodes}
        outs = {n: [] for n in comp.nodes}
        trs = {n: [] for n in comp.nodes}
        for t in range(n_steps):
            cur: Dict[str, torch.Tensor] = {}
            for n in comp.nodes:
                parts = [feeds[n][t]] if n in feeds else []
                for s in sources[n]:
                    if (s, n) in comp.back_edges:
                        parts.append(prev[s])
                    elif s in members:
                        parts.append(cur[s])
                    else:
                        parts.append(values[s][t])
                layer = self.layers[_key(n)]
                x_t = self._sum(parts)
                if isinstance(layer, _STEPPABLE):
                    y, states[n] = layer.step(x_t, states[n])
                    if record and isinstance(layer, NeuronLayer):
                        trs[n].append(states[n][0])
                else:
                    y = layer(x_t)
                cur[n] = y
                outs[n].append(y)
            prev = cur
        for n in comp.nodes:
            values[n] = torch.stack(outs[n])
            if record and trs[n]:
                traces[n] = torch.stack(trs[n])


def _t(v, shape) -> torch.Tensor:
    a = np.asarray(v, dtype=np.float32)
    if shape is not None:
        a = np.broadcast_to(a, shape)
    return torch.from_numpy(np.ascontiguousarray(a).copy())


def _param(v, shape):
    """A uniform float64 array (spikeflow writes Python-number parameters so) becomes a Python float,
    anything else a float32 tensor of the layer's shape: the source layer is rebuilt exactly."""
    a = np.asarray(v)
    if a.dtype == np.float64 and a.size > 0 and np.all(a == a.reshape(-1)[0]):
        return float(a.reshape(-1)[0])
    return _t(a, shape)


def _euler_tau(tau: torch.Tensor, dt: float, name: str, field: str, source: str) -> torch.Tensor:
    """The time constant whose exact decay equals forward Euler's ``1 - dt / tau``."""
    if (tau <= dt).any():
        raise NIRError(f"{source}: node '{name}': forward Euler needs {field} > dt = {dt} s, got min "
                       f"{tau.min().item():g} s (it would not decay)")
    return -dt / torch.log1p(-dt / tau.double()).to(tau.dtype)


def node_module(name, node, in_shape, out_shape, dt, discretization="exact", source="NIR graph",
                reset=None, in_cycle=False) -> nn.Module:
    """The spikeflow module that runs one (flat) NIR node under the time policy; for engines that
    execute graphs themselves (``GraphModule`` uses it for every node). ``in_cycle``: the node is
    part of a recurrent loop (snnTorch's discretization resets a looped CubaLIF one step late)."""
    return _build(name, node, in_shape, out_shape, dt, discretization, source, reset, in_cycle)


def _build(name, node, in_shape, out_shape, dt, discretization, source, reset=None, in_cycle=False) -> nn.Module:
    try:
        return _module(name, node, in_shape, out_shape, dt, discretization, source, reset, in_cycle)
    except NIRError:
        raise
    except (SpikeflowError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise NIRError(f"{source}: node '{name}' ({type(node).__name__}) cannot be built: {err}") from None


def _meta(node) -> dict:
    return node.metadata if isinstance(getattr(node, "metadata", None), dict) else {}


def _reset(node) -> str:
    r = _meta(node).get("spikeflow_reset", "to_reset")
    r = r.decode() if isinstance(r, bytes) else str(r)
    return r


def _ints(v, n: int) -> Tuple[int, ...]:
    return shape_rules._pair(v, n)


def _padding(p, n: int):
    if isinstance(p, bytes):
        p = p.decode()
    if isinstance(p, np.ndarray) and p.dtype.kind in "SUO":
        p = p.reshape(-1)[0]
        p = p.decode() if isinstance(p, bytes) else str(p)
    if isinstance(p, str):
        return p
    return _ints(p, n) if n > 1 else _ints(p, 1)[0]


def _module(name, node, in_shape, out_shape, dt, discretization, source, reset=None, in_cycle=False) -> nn.Module:
    kind = type(node).__name__
    if isinstance(node, PASS_THROUGH):
        return nn.Identity()
    if kind in ("Affine", "Linear"):
        w = torch.from_numpy(np.asarray(node.weight, dtype=np.float32).copy())
        lin = nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine")
        with torch.no_grad():
            lin.weight.copy_(w)
            if kind == "Affine":
                lin.bias.copy_(_t(node.bias, (w.shape[0],)))
        return TimeFold(lin)
    if kind in ("Conv1d", "Conv2d"):
        w = torch.from_numpy(np.asarray(node.weight, dtype=np.float32).copy())
        n = 1 if kind == "Conv1d" else 2
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        cls = nn.Conv1d if n == 1 else nn.Conv2d
        conv = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride, n),
                   padding=_padding(node.padding, n), dilation=_ints(node.dilation, n), groups=groups, bias=True)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(_t(node.bias, (w.shape[0],)))
        return TimeFold(conv)
    if kind == "AvgPool2d":
        return TimeFold(nn.AvgPool2d(_ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)))
    if kind == "SumPool2d":
        return TimeFold(SumPool2d(_ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)))
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        # NIR's dims count from the first batch-free axis; torch's from the (folded) batch axis
        return TimeFold(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))
    if kind == "Scale":
        return Scale(_t(node.scale, out_shape))
    if kind == "Threshold":
        return Threshold(_t(node.threshold, out_shape))
    if kind == "Delay":
        return Delay(_t(node.delay, out_shape), dt=dt)
    if kind in ("LIF", "LI", "CubaLIF", "CubaLI", "IF"):
        return _neuron(name, node, kind, out_shape, dt, discretization, source, reset, in_cycle)
    raise NIRError(f"{source}: node '{name}' has type {kind}, which spikeflow cannot run; supported: Input, Output, "
                   "Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, Threshold, Delay, LIF, IF, "
                   "LI, CubaLIF, CubaLI (and subgraphs)")


def _check_taus(name, node, kind, dt, discretization, source) -> None:
    """Time constants must be > 0; one below ``dt`` makes the neuron degenerate at this step: warn."""
    for field in conventions.TAU_FIELDS:
        if getattr(node, field, None) is None:
            continue
        t = np.asarray(getattr(node, field), np.float64)
        if not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise NIRError(f"{source}: node '{name}' ({kind}): '{field}' must be > 0 seconds")
        if np.any(t < dt):
            what = ("forward Euler's decay 1 - dt/tau is negative" if discretization != "exact"
                    else "the neuron forgets its state within one step")
            warnings.warn(f"{source}: node '{name}' ({kind}): {field} = {t.min():g} s is below dt = {dt:g} s "
                          f"({what}); check the file's units and dt", stacklevel=2)


_ONE_ULPS = 4 * 2.0 ** -24  # a float32 product that is 1 to within a few roundings is 1


def _coef(v, shape, snap_one=False) -> torch.Tensor:
    """A per-step coefficient computed in float64, rounded once to float32 of the layer's shape."""
    a = np.asarray(v, np.float64)
    if snap_one:
        a = np.where(np.abs(a - 1.0) <= _ONE_ULPS, 1.0, a)
    return _t(a, shape)


def _rate(tau, dt, discretization) -> np.ndarray:
    """``dt / tau``; Norse keeps ``1 / tau`` as a float32 parameter and multiplies by ``dt`` in float32."""
    tau = np.asarray(tau, np.float64)
    if discretization == "norse":
        return (np.float32(dt) * (1.0 / tau).astype(np.float32)).astype(np.float64)
    return dt / tau


def _euler_coefs(node, kind, shape, dt, discretization, r=None, v_leak=None, tau=None):
    """The membrane's forward-Euler coefficients (``neurons.euler``) from float64 parameters."""
    k = _rate(tau, dt, discretization)
    decay = 1.0 - k
    if discretization == "snntorch":
        decay = np.clip(decay, 0.0, 1.0)  # snnTorch clamps beta to [0, 1]
    r64, vl = np.asarray(r, np.float64), np.asarray(v_leak, np.float64)
    return dict(decay=_coef(decay, shape), gain=_coef(r64 * k, shape, snap_one=True), bias=_coef(k * vl, shape),
                rate=_coef(k, shape), r=_coef(r64, shape, snap_one=True), v_leak=_coef(vl, shape),
                form="decay" if discretization == "snntorch" else "increment", dt=dt)


def _peer_neuron(name, node, kind, shape, dt, discretization, reset, in_cycle) -> NeuronLayer:
    """``discretization`` "snntorch" / "norse": forward Euler as that library steps (``neurons.euler``)."""
    if kind == "IF":  # no leak: v += R dt x in every scheme
        return NeuronLayer("if", shape, r=_coef(np.asarray(node.r, np.float64) * dt, shape, snap_one=True),
                           v_threshold=_t(node.v_threshold, shape), v_reset=_t(node.v_reset, shape), dt=dt,
                           reset=reset)
    tau = node.tau if kind in ("LIF", "LI") else node.tau_mem
    p = _euler_coefs(node, kind, shape, dt, discretization, r=node.r, v_leak=node.v_leak, tau=tau)
    if kind in ("CubaLIF", "CubaLI"):
        ks = _rate(node.tau_syn, dt, discretization)
        decay_s = np.clip(1.0 - ks, 0.0, 1.0) if discretization == "snntorch" else 1.0 - ks
        p.update(syn_decay=_coef(decay_s, shape), syn_rate=_coef(ks, shape),
                 in_gain=_coef(np.asarray(node.w_in, np.float64) * ks, shape, snap_one=True))
    if kind in ("LI", "CubaLI"):
        return NeuronLayer("li_euler" if kind == "LI" else "cubali_euler", shape, **p)
    spiking = dict(v_threshold=_t(node.v_threshold, shape), v_reset=_t(node.v_reset, shape), reset=reset)
    if kind == "LIF":
        return NeuronLayer("lif_euler", shape, **p, **spiking)
    # snnTorch 1.0's RSynaptic (its CubaLIF in a loop) resets one step late whatever its reset_delay
    delay = discretization == "snntorch" and in_cycle
    return NeuronLayer("cubalif_euler", shape, **p, **spiking, reset_delay=delay)


def _neuron(name, node, kind, shape, dt, discretization, source, reset_override=None, in_cycle=False) -> NeuronLayer:
    if shape is None:
        raise NIRError(f"{source}: node '{name}' ({kind}): cannot tell the number of neurons")
    _check_taus(name, node, kind, dt, discretization, source)
    reset = reset_override or _reset(node)
    if discretization in ("snntorch", "norse"):
        return _peer_neuron(name, node, kind, shape, dt, discretization, reset, in_cycle)
    p = lambda v: _param(v, shape)  # noqa: E731
    euler = discretization == "euler"

    def tau(v, field):
        t = p(v)
        if not euler:
            return t
        if isinstance(t, float):
            if t <= dt:
                raise NIRError(f"{source}: node '{name}': forward Euler needs {field} > dt = {dt} s, got {t:g} s")
            return -dt / math.log1p(-dt / t)
        return _euler_tau(t, dt, name, field, source)

    if kind == "LIF":
        refr = float(np.asarray(_meta(node).get("spikeflow_refractory", 0.0)))
        return NeuronLayer("lif", shape, tau_mem=tau(node.tau, "tau"), r=p(node.r), v_leak=p(node.v_leak),
                           v_threshold=p(node.v_threshold), v_reset=p(node.v_reset), dt=dt, reset=reset,
                           refractory=refr)
    if kind == "LI":
        return NeuronLayer("li", shape, tau_mem=tau(node.tau, "tau"), r=p(node.r), v_leak=p(node.v_leak), dt=dt)
    if kind == "IF":
        # NIR IF: dv/dt = R I; one step with I held: v += R * I * dt, spikeflow's r = R * dt (exact for
        # both discretizations: the ODE has no leak)
        return NeuronLayer("if", shape, r=p(node.r) * dt, v_threshold=p(node.v_threshold), v_reset=p(node.v_reset),
                           dt=dt, reset=reset)
    common = dict(tau_syn=tau(node.tau_syn, "tau_syn"), tau_mem=tau(node.tau_mem, "tau_mem"), r=p(node.r),
                  v_leak=p(node.v_leak), w_in=p(node.w_in), dt=dt)
    if kind == "CubaLI":
        return NeuronLayer("cubali", shape, **common)
    return NeuronLayer("cubalif", shape, v_threshold=p(node.v_threshold), v_reset=p(node.v_reset), reset=reset,
                       **common)
