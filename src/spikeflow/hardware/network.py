"""A NIR graph as a chain of float layers (synapse matrix + neuron population).

Built on the runtime's compiled graph (``spikeflow.runtime.graph``: validation,
shapes, reset modes, neuron parameters): every synaptic node between two neuron
populations (Affine, Linear, Conv2d, pooling, Flatten, Scale) becomes one synapse
(``spikeflow.hardware.synapse``) and bias. A convolution, alone or composed with
pooling, stays a kernel (``ConvSynapse``: its kernel read off the runtime's own ops,
checked against them on a random input); anything else is folded into a matrix
``W [n_out, n_in]`` by applying the runtime's linear ops to the identity basis, so
the integer model sees exactly the float network's synapses.
``float_reference`` runs the chain with the ``spikeflow.neurons`` reference steps
(a cross-check of the runtime's dense engine, which is the float reference).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

from spikeflow.errors import NIRError
from spikeflow.hardware.synapse import DENSE_FALLBACK_MAX, ConvSynapse, DenseSynapse, Synapse
from spikeflow.neurons import if_, li, lif
from spikeflow.runtime.graph import CompiledGraph, Node, apply_linear, compile_graph, neuron_params

HW_NEURON_KINDS = ("lif", "if", "li", "cubalif", "cubali")  # cubalif/cubali: Loihi only (current state u)
SYNAPSE_TYPE = {"affine": "linear", "conv2d": "conv2d", "sumpool2d": "pool", "avgpool2d": "pool"}
KERNEL_KINDS = ("conv2d", "sumpool2d", "avgpool2d")
REVERSE_FOLD_MIN = 4096  # inputs above which a multi-node dense chain is folded in reverse mode


@dataclass
class ConvInfo:
    """What a conv-only chip needs to know about a layer's convolution."""
    kernel: Tuple[int, int]
    in_channels: int
    out_channels: int


class LayerShape:
    """Sizes and spiking flag derived from a layer's synapse ``syn`` and neuron ``kind``; ``weight``
    (the dense matrix) is kept for dense layers and ``None`` for kernel (conv) layers."""

    def __setattr__(self, name, value):
        # ``weight`` and ``syn`` describe one synapse: setting either keeps the other in step.
        object.__setattr__(self, name, value)
        if name == "weight" and value is not None:
            syn = getattr(self, "syn", None)
            if syn is not None and not (isinstance(syn, DenseSynapse) and syn.weight is value):
                object.__setattr__(self, "syn", DenseSynapse(value))
        elif name == "syn" and value is not None:
            object.__setattr__(self, "weight", value.weight if isinstance(value, DenseSynapse) else None)

    def _link_synapse(self) -> None:
        if self.syn is None:
            if self.weight is None:
                raise ValueError(f"layer {self.name!r}: give a weight matrix or a synapse")
            self.syn = DenseSynapse(self.weight)
        elif self.weight is None and isinstance(self.syn, DenseSynapse):
            self.weight = self.syn.weight

    @property
    def n_in(self) -> int:
        return self.syn.n_in

    @property
    def n_out(self) -> int:
        return self.syn.n_out

    @property
    def spiking(self) -> bool:
        return self.kind not in ("li", "cubali")


@dataclass
class FloatLayer(LayerShape):
    """One neuron layer of a ``FloatNet``: the synaptic nodes before it as one synapse ``syn`` (a kernel
    for convolutions, else ``weight [n_out, n_in]``) and ``bias`` ``[n_out]`` (float64), the neuron kind
    (lif, if, li) and its parameters.
    """
    name: str  # the neuron node's name
    synapse: str  # name(s) of the synaptic node(s) feeding it
    kind: str  # lif | if | li
    weight: np.ndarray | None  # [n_out, n_in] float64 for dense layers; None for kernel layers (see syn)
    bias: np.ndarray  # [n_out]
    params: object  # LIFParams | IFParams | LIParams (spikeflow.neurons)
    synapse_types: Tuple[str, ...] = ()
    conv: ConvInfo | None = None
    out_shape: Tuple[int, ...] = ()
    syn: Synapse | None = None  # DenseSynapse(weight) or ConvSynapse; built from weight when not given
    # A self-recurrent layer: the loop's synaptic nodes folded into ``rec_weight [n_out, n_out]``, applied to
    # the layer's previous-step spikes (the one-step delay of spikeflow.nn.Recurrent and the runtime engines).
    rec_weight: np.ndarray | None = None
    rec_synapse: str = ""

    def __post_init__(self):
        self._link_synapse()

    def gain(self) -> np.ndarray:
        """Per-neuron factor from synaptic current to membrane increment in one step."""
        p = self.params
        if self.kind == "if":
            return np.broadcast_to(_np(p.r).reshape(-1), (self.n_out,)).astype(np.float64)
        a = _np(p.alpha).reshape(-1)
        g = _np(p.r).reshape(-1) * (1.0 - a)
        if self.kind in ("cubalif", "cubali"):  # steady state of the current and voltage filters
            g = g * _np(p.w_in).reshape(-1) * (1.0 - _np(p.alpha_syn).reshape(-1))
        return np.broadcast_to(g, (self.n_out,)).astype(np.float64)


@dataclass
class FloatNet:
    """A NIR graph as a chain of ``FloatLayer``s with its input shape and ``dt`` (seconds): what the
    hardware compiler quantises.
    """
    layers: List[FloatLayer]
    input_shape: Tuple[int, ...]
    dt: float
    graph: CompiledGraph | None = None  # the runtime's compiled graph (float reference engine)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))


def _np(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().double().numpy()
    return np.asarray(v, dtype=np.float64)


def _linear_matrix(nd: Node) -> Tuple[np.ndarray, np.ndarray]:
    """A linear node as ``(M [n_out, n_in], b [n_out])``: the runtime's op applied to the identity basis."""
    if nd.kind == "affine":
        return np.asarray(nd.weight, dtype=np.float64), np.asarray(nd.bias, dtype=np.float64).reshape(-1)
    n_in = int(np.prod(nd.in_shape))
    if nd.kind == "scale":
        return np.diag(np.broadcast_to(np.asarray(nd.weight, dtype=np.float64).reshape(-1), (n_in,))), np.zeros(n_in)
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *nd.in_shape)
    m = apply_linear(nd, eye, with_bias=False).reshape(n_in, -1).T.numpy().copy()
    b = apply_linear(nd, torch.zeros(1, *nd.in_shape, dtype=torch.float64)).reshape(-1).numpy().copy()
    return m, b


def _chain(nodes: List[Node], x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    for nd in nodes:
        x = apply_linear(nd, x, with_bias=with_bias)
    return x


def _conv_synapse(nodes: List[Node]) -> ConvSynapse | None:
    """Conv and pooling nodes as one convolution, or ``None`` when they are not one.

    The composed kernel is the Jacobian of the runtime's ops on one receptive field (reverse mode: one
    row per output channel), and the result is checked against the ops on a random full-size input.
    """
    ops = [nd for nd in nodes if nd.kind not in ("flatten", "flatten_id")]
    if not ops or any(nd.kind not in KERNEL_KINDS for nd in ops):
        return None
    first, last = ops[0], ops[-1]
    if len(ops) == 1 and first.kind == "conv2d":
        return ConvSynapse(np.asarray(first.weight, dtype=np.float64), first.in_shape, last.out_shape,
                           first.stride, first.padding, first.dilation, first.groups)
    ext, stride, pad = [1, 1], [1, 1], [0, 0]  # receptive field, stride and padding of the composition
    for nd in ops:
        k, d = (nd.weight.shape[2:], nd.dilation) if nd.kind == "conv2d" else (nd.kernel, (1, 1))
        for a in (0, 1):
            # A later node's padding is the composition's when it only covers inputs beyond the edge
            # (e.g. pooling then a padded conv); where it does not, the check below rejects the kernel.
            pad[a] += nd.padding[a] * stride[a]
            ext[a] += d[a] * (k[a] - 1) * stride[a]
            stride[a] *= nd.stride[a]
    c_in, c_out = int(first.in_shape[0]), int(last.out_shape[0])
    x = torch.zeros((c_out, c_in, *ext), dtype=torch.float64, requires_grad=True)
    y = x
    for nd in ops:
        patch = copy.copy(nd)
        patch.in_shape, patch.padding = tuple(y.shape[1:]), (0, 0)
        y = apply_linear(patch, y, with_bias=False)
    if tuple(y.shape[1:]) != (c_out, 1, 1):
        return None
    y.reshape(c_out, c_out).diagonal().sum().backward()
    kernel, groups = x.grad.numpy().copy(), 1
    off = ~np.eye(c_out, c_in, dtype=bool)
    if c_out == c_in > 1 and not np.any(kernel[off]):  # channel-diagonal (pooling only): depthwise
        kernel, groups = kernel[np.arange(c_out), np.arange(c_out)][:, None], c_out
    try:
        syn = ConvSynapse(kernel, first.in_shape, last.out_shape, tuple(stride), tuple(pad), (1, 1), groups)
    except ValueError:
        return None
    probe = torch.as_tensor(np.random.default_rng(0).random((1, *first.in_shape)))
    ref = _chain(ops, probe, with_bias=False).reshape(-1).numpy()
    got = syn.apply(probe.numpy()).reshape(-1)
    if not np.allclose(got, ref, rtol=1e-9, atol=1e-9 * (float(np.abs(ref).max()) + 1e-300)):
        return None
    return syn


def _synapse(nodes: List[Node], kernels: bool) -> Tuple[Synapse, np.ndarray]:
    """The synaptic nodes between two neuron layers as ``(synapse, bias [n_out])``."""
    syn = _conv_synapse(nodes) if kernels else None
    if syn is not None:
        zero = torch.zeros((1, *nodes[0].in_shape), dtype=torch.float64)
        return syn, _chain(nodes, zero, with_bias=True).reshape(-1).numpy().copy()
    ops = [nd for nd in nodes if nd.kind not in ("flatten", "flatten_id")]
    n_in, n_out = int(np.prod(ops[0].in_shape)), int(np.prod(ops[-1].out_shape))
    if kernels and any(nd.kind in KERNEL_KINDS for nd in ops) and n_in * n_out > DENSE_FALLBACK_MAX:
        raise NIRError(f"hardware: synaptic nodes {[nd.name for nd in ops]} are no single convolution and would "
                       f"make a {n_out} x {n_in} matrix ({8 * n_in * n_out / 1e9:.1f} GB); put a neuron layer "
                       "between them or pad only where the padding covers inputs beyond the edge")
    if len(ops) > 1 and n_in > max(n_out, REVERSE_FOLD_MIN):
        # A wide chain into few neurons (e.g. pooling -> Linear readout): one row per output neuron by
        # reverse mode, instead of an n_in x n_in identity basis.
        x = torch.zeros((n_out, *ops[0].in_shape), dtype=torch.float64, requires_grad=True)
        _chain(ops, x, with_bias=False).reshape(n_out, n_out).diagonal().sum().backward()
        zero = torch.zeros((1, *ops[0].in_shape), dtype=torch.float64)
        bias = _chain(ops, zero, with_bias=True).reshape(-1).detach().numpy().copy()
        return DenseSynapse(x.grad.reshape(n_out, n_in).numpy().copy()), bias
    w_acc = b_acc = None
    for nd in ops:
        m, b = _linear_matrix(nd)
        w_acc, b_acc = (m, b) if w_acc is None else (m @ w_acc, m @ b_acc + b)
    return DenseSynapse(w_acc), b_acc


def from_nir(graph, dt: float | None = None, reset: str | None = None, kernels: bool = True) -> FloatNet:
    """Fold a feed-forward NIR graph (or the runtime's ``CompiledGraph``) into a chain of ``FloatLayer``;
    a layer may have a self-recurrent loop (see ``recurrent_loops``).

    ``dt`` (seconds) defaults to the graph's metadata; ``reset`` overrides every neuron's reset
    mode (default: the node's metadata, else NIR's reset to ``v_reset``). ``kernels=False`` folds
    convolutions into dense matrices too (the reference the kernel form is checked against).
    """
    cg = copy.deepcopy(compile_graph(graph, dt))
    dt = cg.require_dt()
    loops = recurrent_loops(cg)
    in_loop = {n for names, _, _ in loops.values() for n in names}
    succ: Dict[str, List[str]] = {n: [] for n in cg.nodes}
    for name, nd in cg.nodes.items():
        if name not in in_loop:
            for p in nd.inputs:
                succ[p].append(name)
    for name, nd in cg.nodes.items():
        if name not in in_loop and (len([p for p in nd.inputs if p not in in_loop]) > 1 or len(succ[name]) > 1):
            raise NIRError(f"hardware: node {name!r} branches or merges; "
                           "the compiler supports feed-forward chains (with self-recurrent layers) only")
    layers: List[FloatLayer] = []
    syn_nodes, syn_names, syn_types, conv = [], [], [], None
    for name in cg.order:
        nd = cg.nodes[name]
        if nd.kind in ("input", "output") or name in in_loop:
            continue
        if nd.kind in ("flatten", "flatten_id"):
            if syn_nodes:
                syn_nodes.append(nd)
            continue
        if nd.is_neuron:
            if nd.kind not in HW_NEURON_KINDS:
                raise NIRError(f"hardware: node {name!r} is {nd.kind}; "
                               "the hardware compiler maps LIF, IF and LI neurons")
            if not syn_names:
                raise NIRError(f"hardware: neuron node {name!r} has no weighted synapse before it")
            if reset is not None:
                nd.reset = reset
            syn, bias = _synapse(syn_nodes, kernels)
            rec_names, rec_w, rec_b = loops.get(name, ([], None, 0.0))
            layers.append(FloatLayer(name=name, synapse="+".join(syn_names), kind=nd.kind,
                                     weight=syn.weight if isinstance(syn, DenseSynapse) else None, bias=bias + rec_b,
                                     params=neuron_params(nd, dt), synapse_types=tuple(syn_types), conv=conv,
                                     out_shape=tuple(nd.out_shape), syn=syn, rec_weight=rec_w,
                                     rec_synapse="+".join(rec_names)))
            syn_nodes, syn_names, syn_types, conv = [], [], [], None
            continue
        syn_nodes.append(nd)
        syn_names.append(name)
        if nd.kind in SYNAPSE_TYPE:
            syn_types.append(SYNAPSE_TYPE[nd.kind])
        if nd.kind == "conv2d":
            conv = ConvInfo(tuple(int(k) for k in nd.kernel), int(nd.in_shape[0]), int(nd.weight.shape[0]))
    if not layers:
        raise NIRError("hardware: the graph has no neuron layer")
    if syn_names:
        raise NIRError(f"hardware: synaptic nodes {syn_names} after the last neuron layer; end the graph with a "
                       "neuron layer (e.g. an LI readout)")
    return FloatNet(layers=layers, input_shape=tuple(cg.input_shape), dt=dt, graph=cg)


def recurrent_loops(cg: CompiledGraph) -> Dict[str, Tuple[List[str], np.ndarray, np.ndarray]]:
    """Self-recurrent loops: ``{neuron: (loop node names, R [n, n], bias [n])}``.

    A loop starts at a delayed edge leaving a spiking neuron node and runs through synaptic nodes
    (one input, one output each) back into the same neuron; they fold into one matrix as a chain does.
    Loops through other neuron layers are rejected with the nodes named.
    """
    succ: Dict[str, List[str]] = {n: [] for n in cg.nodes}
    for name, nd in cg.nodes.items():
        for p in nd.inputs:
            succ[p].append(name)
    loops: Dict[str, Tuple[List[str], np.ndarray, np.ndarray]] = {}
    for name, nd in cg.nodes.items():
        for src in nd.delayed:
            if nd.is_neuron:  # a neuron feeding a neuron directly: an identity loop
                path, end = [], name
            else:
                path, end = [name], name
                while not cg.nodes[end].is_neuron:
                    nxt = succ[end]
                    if len(nxt) != 1 or len(cg.nodes[end].inputs) + len(cg.nodes[end].delayed) != 1:
                        raise NIRError(f"hardware: recurrent loop from {src!r} branches at node {end!r}; the "
                                       "compiler maps self-recurrent layers (one synaptic path back into the layer)")
                    end = nxt[0]
                    if not cg.nodes[end].is_neuron:
                        path.append(end)
            if end != src:
                raise NIRError(f"hardware: recurrent loop from {src!r} closes at {end!r}, another layer; the compiler "
                               "maps self-recurrent layers only")
            if not cg.nodes[src].spiking:
                raise NIRError(f"hardware: layer {src!r} ({cg.nodes[src].kind}) feeds back its membrane; "
                               "recurrent layers must spike")
            if src in loops:
                raise NIRError(f"hardware: layer {src!r} has more than one recurrent loop; fold them into one weight")
            n = cg.nodes[src].size
            r, b = np.eye(n), np.zeros(n)
            for p in path:
                m, c = _linear_matrix(cg.nodes[p])
                r, b = m @ r, m @ b + c
            if r.shape != (n, n):
                raise NIRError(f"hardware: recurrent loop {path} of layer {src!r} maps {r.shape[1]} spikes to "
                               f"{r.shape[0]} inputs; expected {n}")
            loops[src] = (path, r, b)
    return loops


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
        b = torch.as_tensor(layer.bias)
        shape = (cur.shape[1], *(layer.out_shape or (layer.n_out,)))  # parameters may be per-neuron (C, H, W)
        state = mod.init_state(shape, layer.params, dtype=torch.float64)
        rec = None if layer.rec_weight is None else torch.as_tensor(layer.rec_weight)
        prev = torch.zeros(cur.shape[1], layer.n_out, dtype=torch.float64)
        outs = []
        for t in range(cur.shape[0]):
            i_t = torch.as_tensor(layer.syn.apply(cur[t].numpy())) + b + (prev @ rec.T if rec is not None else 0.0)
            out, state = mod.step(i_t.reshape(shape), state, layer.params)
            prev = out.reshape(cur.shape[1], -1)
            outs.append(prev)
        cur = torch.stack(outs)
        records.append(cur.numpy())
    return cur.numpy(), records
