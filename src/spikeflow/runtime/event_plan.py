"""Flatten a ``CompiledGraph`` into the arrays the event-driven kernel runs.

Populations are the graph's Input node, its neuron nodes, and one "identity" population
per Output node fed through synaptic nodes. A *projection* is one path of synaptic nodes
from a spiking population to a target population; each synaptic node becomes a *stage*:
a CSR matrix with one row per source neuron (Affine, Linear, pooling, Scale; neighbouring
CSR stages are multiplied into one), or an implicit convolution (Conv2d: the targets of a
spike are computed from the kernel, no matrix is stored). Flatten is free (C-order
indices are unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np
import scipy.sparse as sp

from spikeflow.errors import NIRError
from spikeflow.runtime.graph import CompiledGraph, Node, constant_drive, neuron_params

KIND_CODE = {"lif": 0, "if": 1, "li": 2, "cubalif": 3, "cubali": 4, "ident": 5, "input": 6}
RESET_CODE = {"subtract": 0, "to_reset": 1, "none": 2}
STAGE_CSR, STAGE_CONV = 0, 1
N_STAGE_INTS = 21
N_PRM = 14


@dataclass
class EventPlan:
    pop_names: List[str]
    pop_i: np.ndarray  # [P, 6]: offset, size, kind, record, trace column (-1: none), reset code
    # [N, 14]: alpha, beta(syn), r, v_leak, v_threshold, v_reset, w_in, drive, and for CubaLIF/CubaLI
    # the step's current coupling K and input gain E, dt/tau_mem and dt/tau_mem - dt/tau_syn, and the
    # lag gains G_i, G_v (``neurons.cuba``: precise spike times in ``reset_timing="crossing"``)
    prm: np.ndarray
    v0: np.ndarray  # [N] initial membrane
    proj_i: np.ndarray  # [K, 5]: src pop, dst pop, delay, first stage, end stage (sorted by dst)
    pop_proj_ptr: np.ndarray  # [P + 1]
    stage_i: np.ndarray  # [S, 21]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    weights: np.ndarray
    max_stage: int
    n_trace: int
    output_pop: Dict[str, int]  # Output node -> population
    input_pop: int
    has_delay: bool

    @property
    def n_neurons(self) -> int:
        return int(self.pop_i[-1, 0] + self.pop_i[-1, 1])


def build_plan(cg: CompiledGraph, dt: float) -> EventPlan:
    nodes = cg.nodes
    drive = constant_drive(cg)
    pops: List[str] = []
    kinds: List[str] = []
    for name in cg.order:
        nd = nodes[name]
        if nd.kind == "input" or nd.is_neuron:
            pops.append(name)
            kinds.append("input" if nd.kind == "input" else nd.kind)
    output_pop = {}
    for name in cg.outputs:
        nd = nodes[name]
        preds = nd.inputs + nd.delayed
        if len(preds) == 1 and not nd.delayed and preds[0] in pops:
            output_pop[name] = pops.index(preds[0])
        else:
            output_pop[name] = len(pops)
            pops.append(name)
            kinds.append("ident")
    index = {n: i for i, n in enumerate(pops)}

    # populations and per-neuron parameters
    sizes = [nodes[n].size for n in pops]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_total = int(offsets[-1])
    prm = np.zeros((n_total, N_PRM))
    v0 = np.zeros(n_total)
    pop_i = np.zeros((len(pops), 6), dtype=np.int64)
    n_trace = 0
    for p, name in enumerate(pops):
        nd, kind = nodes[name], kinds[p]
        lo, hi = offsets[p], offsets[p + 1]
        traced = kind in ("li", "cubali", "ident")
        pop_i[p] = (lo, hi - lo, KIND_CODE[kind], 1, n_trace if traced else -1, RESET_CODE.get(nd.reset, 1))
        if traced:
            n_trace += hi - lo
        if name in drive:
            prm[lo:hi, 7] = drive[name].reshape(-1)
        if nd.is_neuron:
            _fill_params(prm[lo:hi], v0[lo:hi], nd, dt)

    # projections, grouped by target population
    stage_rows, indptr_parts, idx_parts, data_parts, w_parts = [], [], [], [], []
    counts = {"ptr": 0, "nz": 0, "w": 0}
    projections = []
    for p, name in enumerate(pops):
        if kinds[p] == "input":
            continue
        target = nodes[name]
        for src, path, delayed in _paths(nodes, target, set(pops)):
            if kinds[index[src]] in ("li", "cubali", "ident"):
                raise NIRError(
                    f"runtime: node '{src}' ({nodes[src].kind}) outputs a membrane, not spikes, into '{name}'; "
                    "the event engine needs spikes into synaptic layers (use engine='dense')"
                )
            stages = _stages(nodes, src, path)
            first = len(stage_rows)
            for st in stages:
                row = np.zeros(N_STAGE_INTS, dtype=np.int64)
                row[1], row[2] = st["n_in"], st["n_out"]
                if st["kind"] == STAGE_CSR:
                    m = st["matrix"]
                    row[0], row[3], row[4] = STAGE_CSR, counts["ptr"], counts["nz"]
                    indptr_parts.append(m.indptr.astype(np.int64))
                    idx_parts.append(m.indices.astype(np.int64))
                    data_parts.append(m.data.astype(np.float64))
                    counts["ptr"] += len(m.indptr)
                    counts["nz"] += m.nnz
                else:
                    row[0], row[5] = STAGE_CONV, counts["w"]
                    row[6:21] = st["meta"]
                    w_parts.append(st["weight"].reshape(-1))
                    counts["w"] += st["weight"].size
                stage_rows.append(row)
            projections.append((index[src], p, int(delayed), first, len(stage_rows)))
    proj_i = np.array(projections, dtype=np.int64).reshape(-1, 5)
    ptr = np.zeros(len(pops) + 1, dtype=np.int64)
    for k in range(len(projections)):
        ptr[proj_i[k, 1] + 1] += 1
    ptr = np.cumsum(ptr)
    stage_i = np.array(stage_rows, dtype=np.int64).reshape(-1, N_STAGE_INTS)
    max_stage = int(max([1] + [int(r[2]) for r in stage_rows] + [int(r[1]) for r in stage_rows]))

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(1, dtype=dtype)

    return EventPlan(
        pops, pop_i, prm, v0, proj_i, ptr, stage_i, cat(indptr_parts, np.int64), cat(idx_parts, np.int64),
        cat(data_parts, np.float64), cat(w_parts, np.float64), max_stage, n_trace, output_pop,
        index[cg.inputs[0]], bool((proj_i[:, 2] > 0).any()) if len(projections) else False,
    )


def _fill_params(prm, v0, nd: Node, dt: float):
    """alpha/beta/r exactly as the reference step computes them (torch, float64)."""
    p = neuron_params(nd, dt)

    def col(value):
        return np.broadcast_to(np.asarray(value.detach().numpy() if hasattr(value, "detach") else value,
                                          dtype=np.float64), nd.out_shape).reshape(-1)

    if nd.kind in ("lif", "li", "cubalif", "cubali"):
        prm[:, 0] = col(p.alpha)
        prm[:, 3] = col(p.v_leak)
        v0[:] = col(p.v_leak)
    if nd.kind in ("cubalif", "cubali"):
        prm[:, 1] = col(p.alpha_syn)
        prm[:, 6] = col(p.w_in)
        prm[:, 8] = col(p.coupling)
        prm[:, 9] = col(p.input_gain)
        x_mem = dt / col(p.tau_mem)
        prm[:, 10] = x_mem
        prm[:, 11] = x_mem - dt / col(p.tau_syn)
        g_i, g_v = p.lag_gains
        prm[:, 12] = col(g_i)
        prm[:, 13] = col(g_v)
    prm[:, 2] = col(p.r)
    if nd.spiking:
        prm[:, 4] = col(p.v_threshold)
        prm[:, 5] = col(p.v_reset)


def _paths(nodes, target: Node, pops: set):
    """(source population, synaptic nodes from source to target, delayed?) for every path into target."""
    out = []

    def walk(name, path, delayed):
        nd = nodes[name]
        for preds, d in ((nd.inputs, False), (nd.delayed, True)):
            for p in preds:
                if p in pops and (nodes[p].kind == "input" or nodes[p].is_neuron):
                    if delayed and d:
                        raise NIRError(f"runtime: path into '{target.name}' crosses two recurrent delays")
                    out.append((p, list(reversed(path)), delayed or d))
                else:
                    if len(path) > 64:
                        raise NIRError(f"runtime: synaptic path into '{target.name}' is too long (a loop?)")
                    walk(p, path + [p], delayed or d)

    walk(target.name, [], False)
    return out


def _stages(nodes, src: str, path: List[str]):
    stages = []
    n_src = nodes[src].size
    for name in path:
        nd = nodes[name]
        n_in, n_out = int(np.prod(nd.in_shape)), int(np.prod(nd.out_shape))
        if nd.kind in ("flatten", "flatten_id", "output"):
            continue
        if nd.kind == "conv2d":
            cin, h, w = nd.in_shape
            cout, oh, ow = nd.out_shape
            meta = [cin, h, w, cout, oh, ow, nd.kernel[0], nd.kernel[1], nd.stride[0], nd.stride[1],
                    nd.padding[0], nd.padding[1], nd.dilation[0], nd.dilation[1], nd.groups]
            stages.append({"kind": STAGE_CONV, "n_in": n_in, "n_out": n_out, "meta": meta,
                           "weight": np.ascontiguousarray(nd.weight, dtype=np.float64)})
            continue
        m = _csr(nd)  # rows: inputs, columns: outputs
        if stages and stages[-1]["kind"] == STAGE_CSR:
            stages[-1]["matrix"] = (stages[-1]["matrix"] @ m).tocsr()
            stages[-1]["n_out"] = n_out
        else:
            stages.append({"kind": STAGE_CSR, "n_in": n_in, "n_out": n_out, "matrix": m})
    if not stages:  # neuron -> neuron directly: identity
        stages.append({"kind": STAGE_CSR, "n_in": n_src, "n_out": n_src, "matrix": sp.identity(n_src, format="csr")})
    for st in stages:
        if st["kind"] == STAGE_CSR:
            m = st["matrix"].tocsr()
            m.sum_duplicates()
            m.eliminate_zeros()
            m.sort_indices()
            st["matrix"] = m
    return stages


def _csr(nd: Node) -> sp.csr_matrix:
    n_in, n_out = int(np.prod(nd.in_shape)), int(np.prod(nd.out_shape))
    if nd.kind == "affine":
        return sp.csr_matrix(nd.weight.T)
    if nd.kind == "scale":
        return sp.diags(np.broadcast_to(nd.weight.reshape(-1), (n_in,)).astype(np.float64), format="csr")
    if nd.kind in ("sumpool2d", "avgpool2d"):
        c, h, w = nd.in_shape
        _, oh, ow = nd.out_shape
        kh, kw = nd.kernel
        value = 1.0 if nd.kind == "sumpool2d" else 1.0 / (kh * kw)  # torch's count_include_pad=True
        rows, cols = [], []
        for oy in range(oh):
            for ox in range(ow):
                for ky in range(kh):
                    for kx in range(kw):
                        y = oy * nd.stride[0] - nd.padding[0] + ky
                        x = ox * nd.stride[1] - nd.padding[1] + kx
                        if 0 <= y < h and 0 <= x < w:
                            rows.append(y * w + x)
                            cols.append(oy * ow + ox)
        rows, cols = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
        r = (np.arange(c)[:, None] * h * w + rows[None]).reshape(-1)
        q = (np.arange(c)[:, None] * oh * ow + cols[None]).reshape(-1)
        return sp.csr_matrix((np.full(r.size, value), (r, q)), shape=(n_in, n_out))
    raise NIRError(f"runtime: node '{nd.name}' ({nd.kind}) has no sparse form")
