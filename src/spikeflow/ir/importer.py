"""Import NIR graphs as runnable spikeflow modules (``from_nir``).

Time policy (docs/architecture.md, "Time and units"): each neuron node becomes a spikeflow
``NeuronLayer`` whose step is the exact solution of the node's ODE over one step of
``dt`` with the input held constant: leak ``exp(-dt / tau)``, input
``r * I * (1 - exp(-dt / tau))``; IF gets ``r_spikeflow = R * dt``. NIR resets to
``v_reset``; a spikeflow file's ``spikeflow_reset`` metadata (``"subtract"``) is honoured.

``discretization="euler"`` reproduces forward Euler (``v += dt / tau * (v_leak - v + r I)``),
the scheme snnTorch and Norse use, with the same spikeflow step: forward Euler's decay
``1 - dt / tau`` is the exact decay of ``tau' = -dt / log(1 - dt / tau)`` and its input gain
``dt / tau = 1 - exp(-dt / tau')``, so only the time constants change. (For CubaLIF/CubaLI
this reproduces Euler's decays and the current's input gain; the membrane keeps the exact
coupled step of ``neurons.cuba``, which differs from Euler's coupling at second order in dt/tau.)

``dt`` comes from the caller, else the graph's metadata ``dt``, else ``DEFAULT_DT`` with a
warning that says so (snnTorch 1.0 simulates its NIR files at 1e-4 s, Norse 1.1 at 1e-3 s).
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
from spikeflow.ir import shapes as shape_rules
from spikeflow.ir.topology import Component, FlatGraph, components, flatten
from spikeflow.nn.elementwise import Delay, Scale, SumPool2d, Threshold
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.neuron import NeuronLayer

DEFAULT_DT = 1e-3  # seconds; spikeflow's default step (and Norse's NIR convention)
DISCRETIZATIONS = ("exact", "euler")
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


# What the peers' NIR files assume (read from snntorch 1.0.0 export_nir/import_nir and
# norse 1.1.0 torch/utils/export_nir.py, import_nir.py, functional/lif_box.py).
CONVENTIONS = {
    "snntorch": dict(
        dt=1e-4, discretization="euler", tau_in_dt_units=False,
        note="snnTorch 1.0 writes LIF/CubaLIF with r = tau / 1e-4 s and simulates NIR graphs with forward Euler "
             "at dt = 1e-4 s",
    ),
    "norse": dict(
        dt=1e-3, discretization="euler", tau_in_dt_units=True,
        note="Norse 1.1 simulates with forward Euler at dt = 1e-3 s and writes every tau as dt / tau_inv "
             "(= dt * tau), so tau is divided by dt here; its IF adds the input once per step (r per step, "
             "not per second), so IF's r is divided by dt",
    ),
}


def guess_convention(graph: nir.NIRGraph) -> str | None:
    """'snntorch' or 'norse' when a graph without ``dt`` metadata carries that library's signature."""
    if graph_dt(graph) is not None:
        return None
    neurons = [n for n in _all_nodes(graph) if isinstance(n, (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF))]
    if not neurons:
        return None
    snn_sig = [n for n in neurons if isinstance(n, (nir.LIF, nir.CubaLIF))]
    if snn_sig and len(snn_sig) == len(neurons) and all(
        np.allclose(np.asarray(n.r, np.float64) * 1e-4, np.asarray(getattr(n, "tau", getattr(n, "tau_mem", 0.0)),
                                                                    np.float64), rtol=1e-4)
        for n in snn_sig
    ):
        return "snntorch"
    zero_d = any(np.ndim(getattr(n, "v_leak", getattr(n, "r", None))) == 0 for n in neurons)
    batch_input = any(
        isinstance(n, nir.Input) and np.size(n.input_type.get("input")) >= 2
        and int(np.asarray(n.input_type["input"]).reshape(-1)[0]) == 1
        for n in graph.nodes.values()
    )
    return "norse" if (zero_d or batch_input) else None


def _all_nodes(graph: nir.NIRGraph):
    for n in graph.nodes.values():
        if isinstance(n, nir.NIRGraph):
            yield from _all_nodes(n)
        else:
            yield n


def from_nir(graph_or_path: Union[nir.NIRGraph, str, os.PathLike], *, dt: float | None = None,
             discretization: str | None = None, convention: str = "auto",
             reset: str | None = None) -> GraphModule:
    """A runnable module for a NIR graph (or a NIR file, read safely with ``read_graph``).

    ``convention``: ``"auto"`` (recognise snnTorch 1.0 and Norse 1.1 files that carry no
    ``dt``, with a warning saying what is assumed), ``"spikeflow"`` (no guessing),
    ``"snntorch"`` or ``"norse"`` (apply that library's dt, discretization and quirks).
    ``discretization``: ``"exact"`` (spikeflow's policy, the default) or ``"euler"``.
    ``reset``: None (a node's ``spikeflow_reset`` metadata, else NIR's reset to ``v_reset``), or
    ``"to_reset"`` / ``"subtract"`` for every spiking node. With ``v_reset = 0``, subtracting the
    threshold at the end of the step is the exact grid form of NIR's IF reset (the overshoot since
    the crossing is kept), while ``"to_reset"`` loses it; the peers reset to ``v_reset``.
    """
    if reset not in (None, "to_reset", "subtract", "none"):
        raise NIRError(f"from_nir: reset must be None, 'to_reset', 'subtract' or 'none', got {reset!r}")
    if discretization is not None and discretization not in DISCRETIZATIONS:
        raise NIRError(f"from_nir: discretization must be one of {DISCRETIZATIONS}, got {discretization!r}")
    if convention not in ("auto", "spikeflow") + tuple(CONVENTIONS):
        raise NIRError(f"from_nir: convention must be 'auto', 'spikeflow', {', '.join(map(repr, CONVENTIONS))}; "
                       f"got {convention!r}")
    if isinstance(graph_or_path, nir.NIRGraph):
        graph, source = graph_or_path, "NIR graph"
    elif isinstance(graph_or_path, (str, os.PathLike)):
        from spikeflow.ir.reader import read_graph

        graph, source = read_graph(graph_or_path), f"NIR file {os.fspath(graph_or_path)}"
    else:
        raise NIRError(f"from_nir: expected a nir.NIRGraph or a path, got {type(graph_or_path).__name__}")
    conv = guess_convention(graph) if convention == "auto" else (None if convention == "spikeflow" else convention)
    tau_div = None
    if conv is not None:
        c = CONVENTIONS[conv]
        step = float(dt) if dt is not None else c["dt"]
        discretization = discretization or c["discretization"]
        if c["tau_in_dt_units"]:
            tau_div = step
        how = "recognised as" if convention == "auto" else "treated as"
        warnings.warn(
            f"{source}: {how} a {conv} file ({c['note']}); assuming dt = {step} s, discretization = "
            f"{discretization!r}. Pass convention='spikeflow' and dt=... to override.",
            stacklevel=2,
        )
    else:
        step = resolve_dt(graph, dt, source)
    return GraphModule(graph, step, discretization=discretization or "exact", source=source, tau_divisor=tau_div,
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
                 source: str = "NIR graph", tau_divisor: float | None = None, reset: str | None = None):
        super().__init__()
        self.dt = float(dt)
        self.discretization = discretization
        self.source = source
        graph = copy.copy(graph)  # quirk fixes below replace nodes; the caller's graph is left as it was
        graph.nodes = dict(graph.nodes)
        shape_rules.strip_batch_axis(graph, source)
        flat = flatten(graph, source)
        if tau_divisor is not None:
            _divide_taus(flat, tau_divisor)
        self.flat = flat
        self.shapes = shape_rules.infer(flat, source)
        self.components: List[Component] = components(flat)
        self.layers = nn.ModuleDict()
        for name, node in flat.nodes.items():
            if name not in flat.inputs and not flat.sources(name):
                raise NIRError(f"{source}: node '{name}' ({type(node).__name__}) has no incoming edge and is not "
                               "a graph Input")
            in_shape = self._in_shape(name)
            self.layers[_key(name)] = _build(name, node, in_shape, self.shapes[name], self.dt, discretization,
                                             source, reset)
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


def _divide_taus(flat: FlatGraph, divisor: float) -> None:
    """Norse 1.1's units: tau written as dt * tau, IF's r per step; both divided by dt."""
    for name, node in list(flat.nodes.items()):
        fields = [f for f in ("tau", "tau_mem", "tau_syn") if getattr(node, f, None) is not None]
        if isinstance(node, nir.IF):
            fields = ["r"]
        if fields:
            node = copy.copy(node)
            for f in fields:
                setattr(node, f, (np.asarray(getattr(node, f), dtype=np.float64) / divisor).astype(np.float32))
            flat.nodes[name] = node


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
                reset=None) -> nn.Module:
    """The spikeflow module that runs one (flat) NIR node under the time policy; for engines that
    execute graphs themselves (``GraphModule`` uses it for every node)."""
    return _build(name, node, in_shape, out_shape, dt, discretization, source, reset)


def _build(name, node, in_shape, out_shape, dt, discretization, source, reset=None) -> nn.Module:
    try:
        return _module(name, node, in_shape, out_shape, dt, discretization, source, reset)
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


def _module(name, node, in_shape, out_shape, dt, discretization, source, reset=None) -> nn.Module:
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
        return _neuron(name, node, kind, out_shape, dt, discretization, source, reset)
    raise NIRError(f"{source}: node '{name}' has type {kind}, which spikeflow cannot run; supported: Input, Output, "
                   "Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, Threshold, Delay, LIF, IF, "
                   "LI, CubaLIF, CubaLI (and subgraphs)")


def _neuron(name, node, kind, shape, dt, discretization, source, reset_override=None) -> NeuronLayer:
    if shape is None:
        raise NIRError(f"{source}: node '{name}' ({kind}): cannot tell the number of neurons")
    p = lambda v: _param(v, shape)  # noqa: E731
    euler = discretization == "euler"

    def tau(v, field):
        t = p(v)
        tt = torch.as_tensor(t)
        if not torch.isfinite(tt).all() or (tt <= 0).any():
            raise NIRError(f"{source}: node '{name}' ({kind}): '{field}' must be > 0 seconds")
        if not euler:
            return t
        if isinstance(t, float):
            if t <= dt:
                raise NIRError(f"{source}: node '{name}': forward Euler needs {field} > dt = {dt} s, got {t:g} s")
            return -dt / math.log1p(-dt / t)
        return _euler_tau(t, dt, name, field, source)

    reset = reset_override or _reset(node)
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
