"""Graph structure of a NIR graph: flattening subgraphs, cycles and the execution order.

A subgraph node ``rec`` becomes nodes ``rec.<inner>``; its inner ``Input`` and ``Output``
nodes stay as pass-through nodes, joined to the parent's edges. The flat graph is then
split into strongly connected components (Tarjan): a component without a cycle runs on
the whole time series at once; a component with a cycle runs step by step, and the
edges that close a cycle ("back edges") carry the value of the previous time step
(a one-step delay, zero at the first step). The back edges are the ones leaving a
neuron node where the cycle has one, so a recurrent weight acts on the previous step's
spikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Set, Tuple

import nir

from spikeflow.errors import NIRError

NEURONS = ("LIF", "IF", "LI", "CubaLIF", "CubaLI", "I")


@dataclass
class FlatGraph:
    nodes: Dict[str, nir.NIRNode]
    edges: List[Tuple[str, str]]
    inputs: List[str]  # top-level Input nodes, in file order
    outputs: List[str]  # top-level Output nodes, in file order
    metadata: dict = field(default_factory=dict)

    def sources(self, name: str) -> List[str]:
        return [a for a, b in self.edges if b == name]


@dataclass
class Component:
    nodes: List[str]  # execution order inside the component
    cyclic: bool
    back_edges: Set[Tuple[str, str]]


def flatten(graph: nir.NIRGraph, source: str = "graph") -> FlatGraph:
    """The graph with subgraphs inlined (node names joined with ``.``): all nodes, edges, top-level inputs
    and outputs, and the metadata.
    """
    nodes: Dict[str, nir.NIRNode] = {}
    edges: List[Tuple[str, str]] = []
    _flatten_into(graph, "", nodes, edges, source)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    return FlatGraph(nodes, edges, inputs, outputs, dict(graph.metadata or {}))


def _ports(sub: nir.NIRGraph, name: str, kind, source: str) -> str:
    found = [k for k, n in sub.nodes.items() if isinstance(n, kind)]
    if len(found) != 1:
        raise NIRError(
            f"{source}: subgraph '{name}' must have exactly one {kind.__name__} node to be connected, "
            f"found {len(found)}"
        )
    return found[0]


def _flatten_into(graph: nir.NIRGraph, prefix: str, nodes, edges, source: str) -> None:
    entry, exit_ = {}, {}
    for key, node in graph.nodes.items():
        name = prefix + key
        if isinstance(node, nir.NIRGraph):
            _flatten_into(node, name + ".", nodes, edges, source)
            entry[key] = name + "." + _ports(node, name, nir.Input, source)
            exit_[key] = name + "." + _ports(node, name, nir.Output, source)
        else:
            nodes[name] = node
            entry[key] = exit_[key] = name
    for a, b in graph.edges:
        if a not in exit_ or b not in entry:
            missing = a if a not in exit_ else b
            raise NIRError(f"{source}: edge ({prefix + a!r} -> {prefix + b!r}) refers to missing node "
                           f"{prefix + missing!r}")
        edges.append((exit_[a], entry[b]))


def strongly_connected(names: List[str], succ: Dict[str, List[str]]) -> List[List[str]]:
    """Tarjan's strongly connected components (iterative), in reverse topological order.

    Each component lists its members with its root (first visited) last."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    found: List[List[str]] = []
    counter = [0]

    def strongconnect(v0: str) -> None:  # iterative Tarjan, so deep chains do not hit the recursion limit
        work = [(v0, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter[0]
                counter[0] += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(succ[v])):
                w = succ[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                found.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])

    for v in names:
        if v not in index:
            strongconnect(v)
    return found


def components(flat: FlatGraph) -> List[Component]:
    """Strongly connected components in topological order (sources first)."""
    succ: Dict[str, List[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        succ[a].append(b)
    found = strongly_connected(list(flat.nodes), succ)
    found.reverse()  # Tarjan emits components in reverse topological order
    file_order = {n: i for i, n in enumerate(flat.nodes)}
    out = []
    for comp in found:
        members = set(comp)
        self_loop = any(a == b and a in members for a, b in flat.edges)
        if len(comp) == 1 and not self_loop:
            out.append(Component(comp, False, set()))
            continue
        order = _order_inside(comp, members, flat, file_order)
        pos = {n: i for i, n in enumerate(order)}
        back = {(a, b) for a, b in flat.edges if a in members and b in members and pos[a] >= pos[b]}
        out.append(Component(order, True, back))
    return out


def _order_inside(comp, members, flat: FlatGraph, file_order) -> List[str]:
    """Depth-first order from the nodes fed from outside the component (then file order)."""
    # Start right after the neurons, so that the delay sits on the edges leaving a neuron: a recurrent
    # weight then sees the previous step's spikes (as in snnTorch's RLeaky and spikeflow's Recurrent,
    # where even a recurrent bias acts from the first step). Otherwise start where outside input enters.
    entries = sorted(
        {b for a, b in flat.edges if a in members and b in members and type(flat.nodes[a]).__name__ in NEURONS},
        key=file_order.get,
    ) or sorted(
        {b for a, b in flat.edges if b in members and a not in members}, key=file_order.get
    ) or [min(comp, key=file_order.get)]
    succ = {n: sorted([b for a, b in flat.edges if a == n and b in members], key=file_order.get) for n in comp}
    seen: Set[str] = set()
    order: List[str] = []
    for start in entries + sorted(comp, key=file_order.get):
        if start in seen:
            continue
        # reverse post-order gives a topological order of the forward edges
        post: List[str] = []
        work = [(start, iter(succ[start]))]
        seen.add(start)
        while work:
            v, it = work[-1]
            nxt = next((w for w in it if w not in seen), None)
            if nxt is None:
                work.pop()
                post.append(v)
            else:
                seen.add(nxt)
                work.append((nxt, iter(succ[nxt])))
        order = list(reversed(post)) + order
    return order
