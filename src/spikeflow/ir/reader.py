"""Safe reading of NIR files (HDF5).

The file is inspected with h5py before any array is read: every object must be a plain
group or dataset (no soft/external links, external or virtual storage), every dataset a
number or string array, and the declared sizes must fit a byte budget (a 10 GB declared
array is refused without reading it). Node types, required fields and their ranks are
checked, and every edge must join existing nodes. Only then are the (bounded) arrays
read and turned into ``nir`` nodes, and the shapes are checked along the edges
(``spikeflow.ir.shapes``). Nothing in the file is executed or unpickled. Every
problem raises ``NIRError`` naming the file and the node.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict

import h5py
import nir
import numpy as np

from spikeflow.errors import NIRError
from spikeflow.ir import shapes

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of declared array data per file
MAX_OBJECTS = 200_000
MAX_DEPTH = 32

# Node type -> (required fields, optional fields). Field kinds are checked in _check_field.
NODE_FIELDS: Dict[str, tuple] = {
    "Input": (("shape",), ()),
    "Output": (("shape",), ()),
    "Affine": (("weight", "bias"), ()),
    "Linear": (("weight",), ()),
    "Scale": (("scale",), ()),
    "Conv1d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "Conv2d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "SumPool2d": (("kernel_size", "stride", "padding"), ()),
    "AvgPool2d": (("kernel_size", "stride", "padding"), ()),
    "Delay": (("delay",), ()),
    "Flatten": (("start_dim", "end_dim"), ("input_type",)),
    "Threshold": (("threshold",), ()),
    "I": (("r",), ()),
    "IF": (("r", "v_threshold"), ("v_reset",)),
    "LI": (("tau", "r", "v_leak"), ()),
    "LIF": (("tau", "r", "v_leak", "v_threshold"), ("v_reset",)),
    "CubaLI": (("tau_syn", "tau_mem", "r", "v_leak"), ("w_in",)),
    "CubaLIF": (("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"), ("v_reset", "w_in")),
    "NIRGraph": (("nodes", "edges"), ()),
}
# Fields that hold small integer settings (shapes, strides, dims) rather than float parameters.
INT_FIELDS = {"shape", "stride", "dilation", "groups", "kernel_size", "start_dim", "end_dim",
              "input_shape", "input_type"}
WEIGHT_RANK = {"Affine": 2, "Linear": 2, "Conv1d": 3, "Conv2d": 4}
IGNORED = {"type", "metadata", "input_type", "output_type"}


class _Budget:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used = 0
        self.objects = 0


def _fail(path, where: str, msg: str) -> NIRError:
    return NIRError(f"NIR file {path}: {_where(where) if where.startswith('/') else where}: {msg}")


def _where(name: str) -> str:
    """``/node/nodes/rec/nodes/lif/tau`` -> ``node 'rec.lif' field 'tau' (/node/nodes/rec/nodes/lif/tau)``."""
    parts = name.strip("/").split("/")
    nodes = [parts[i + 1] for i in range(len(parts) - 1) if parts[i] == "nodes"]
    if not nodes:
        return name
    last = len(parts) - 1 - parts[::-1].index("nodes")
    field = "/".join(parts[last + 2:])
    return f"node '{'.'.join(nodes)}'" + (f" field '{field}'" if field else "") + f" ({name})"


def _is_string(ds: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind == "S"


def _inspect(group: h5py.Group, path, where: str, budget: _Budget, depth: int) -> None:
    """Check every object under ``group`` without reading array data."""
    if depth > MAX_DEPTH:
        raise _fail(path, where, f"nesting deeper than {MAX_DEPTH} levels")
    for key in group.keys():
        budget.objects += 1
        if budget.objects > MAX_OBJECTS:
            raise _fail(path, where, f"more than {MAX_OBJECTS} objects in the file")
        name = f"{where}/{key}"
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise _fail(path, name, f"is a {type(link).__name__}; only plain groups and datasets are allowed")
        obj = group.get(key)
        if isinstance(obj, h5py.Group):
            _inspect(obj, path, name, budget, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            _inspect_dataset(obj, path, name, budget)
        else:
            raise _fail(path, name, f"unsupported HDF5 object {type(obj).__name__}")


def _inspect_dataset(ds: h5py.Dataset, path, name: str, budget: _Budget) -> None:
    if ds.external:
        raise _fail(path, name, "dataset stored in external files; refused")
    if ds.is_virtual:
        raise _fail(path, name, "virtual dataset; refused")
    if ds.shape is None:
        raise _fail(path, name, "empty (null-space) dataset")
    if _is_string(ds):
        if ds.size > 1_000_000:
            raise _fail(path, name, f"string dataset with {ds.size} entries; at most 1000000 allowed")
        nbytes = ds.size * 256
    elif ds.dtype.kind in "fiub":
        nbytes = ds.size * ds.dtype.itemsize
    else:
        raise _fail(path, name, f"dtype {ds.dtype} is not a number or string array")
    budget.used += nbytes
    if budget.used > budget.max_bytes:
        raise _fail(
            path, name,
            f"declared array of shape {ds.shape} and dtype {ds.dtype} ({nbytes / 1e9:.3g} GB) exceeds the "
            f"read limit of {budget.max_bytes / 1e9:.3g} GB (raise max_bytes if the file is trusted)",
        )


def _read_str(ds, path, name: str) -> str:
    if not isinstance(ds, h5py.Dataset) or not _is_string(ds) or ds.shape != ():
        raise _fail(path, name, "must be a scalar string dataset")
    v = ds[()]
    return v.decode("utf8", "replace") if isinstance(v, bytes) else str(v)


def _check_structure(group: h5py.Group, path, where: str) -> None:
    """Node types, required fields, field kinds and edges of one graph group (recursively)."""
    nodes = group.get("nodes")
    if not isinstance(nodes, h5py.Group):
        raise _fail(path, where, "missing the 'nodes' group")
    edges = group.get("edges")
    if not isinstance(edges, h5py.Dataset):
        raise _fail(path, where, "missing the 'edges' dataset")
    for key in nodes.keys():
        node = nodes[key]
        name = f"node '{_join(where, key)}'"
        if not isinstance(node, h5py.Group):
            raise _fail(path, name, "must be a group with a 'type' field")
        if "type" not in node:
            raise _fail(path, name, "has no 'type' field")
        kind = _read_str(node["type"], path, name + " field 'type'")
        if kind not in NODE_FIELDS:
            raise _fail(path, name, f"unknown node type {kind!r}; valid types: {sorted(NODE_FIELDS)}")
        required, optional = NODE_FIELDS[kind]
        for field in required:
            if field not in node:
                raise _fail(path, f"{name} ({kind})", f"missing required field '{field}'")
        if kind == "NIRGraph":
            _check_structure(node, path, _join(where, key))
            continue
        for field in node.keys():
            if field in IGNORED or field not in required + optional:
                continue
            _check_field(node[field], kind, field, path, f"{name} ({kind})")
    names = set(nodes.keys())
    _check_edges(edges, names, path, where)


def _check_field(ds, kind: str, field: str, path, name: str) -> None:
    if not isinstance(ds, h5py.Dataset):
        raise _fail(path, name, f"field '{field}' must be a dataset")
    if field == "padding" and _is_string(ds):
        return
    if _is_string(ds) or ds.dtype.kind not in "fiub":
        raise _fail(path, name, f"field '{field}' must be numeric, got dtype {ds.dtype}")
    if field in INT_FIELDS and ds.dtype.kind == "f":
        raise _fail(path, name, f"field '{field}' must be integer, got dtype {ds.dtype}")
    if field in INT_FIELDS and len(ds.shape) > 1:
        raise _fail(path, name, f"field '{field}' must be a scalar or a 1-D array, got shape {ds.shape}")
    if field == "weight" and len(ds.shape) != WEIGHT_RANK[kind]:
        raise _fail(path, name, f"field 'weight' must have {WEIGHT_RANK[kind]} dimensions, got shape {ds.shape}")


def _check_edges(edges: h5py.Dataset, names: set, path, where: str) -> None:
    if edges.size == 0:
        return
    if not _is_string(edges) or len(edges.shape) != 2 or edges.shape[1] != 2:
        raise _fail(path, f"{where} 'edges'", f"must be an (E, 2) array of node names, got {edges.shape} {edges.dtype}")
    for src, dst in edges[()]:
        src, dst = _to_str(src), _to_str(dst)
        for end, role in ((src, "source"), (dst, "target")):
            if end not in names:
                raise _fail(
                    path, f"edge ({src!r} -> {dst!r}) in {where}",
                    f"{role} node {end!r} does not exist; nodes: {sorted(names)}",
                )


def _to_str(v) -> str:
    return v.decode("utf8", "replace") if isinstance(v, bytes) else str(v)


def _join(where: str, key: str) -> str:
    return key if where == "graph" else f"{where}.{key}"


def _load(group: h5py.Group) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _load(item)
        else:
            v = item[()]
            if isinstance(v, bytes):
                v = v.decode("utf8", "replace")
            out[key] = v
    return out


def _build(data: Dict[str, Any], path, where: str) -> nir.NIRGraph:
    """nir nodes from the loaded (validated) dictionary; errors name the node."""
    nodes = {}
    for key, nd in data["nodes"].items():
        name = _join(where, key)
        nd = dict(nd)
        kind = nd["type"]
        if kind == "NIRGraph":
            nodes[key] = _build(nd, path, name)
            continue
        nd.pop("output_type", None)
        if kind not in ("Flatten",):
            nd.pop("input_type", None)
        if kind in ("Conv1d", "Conv2d"):
            nd.setdefault("input_shape", None)
        if "metadata" in nd and not isinstance(nd["metadata"], dict):
            nd.pop("metadata")
        try:
            nodes[key] = nir.dict2NIRNode(nd)
        except NIRError:
            raise
        except Exception as err:  # nir asserts parameter shapes; name the node
            raise _fail(path, f"node '{name}' ({kind})", f"invalid parameters: {err}") from None
    edges = [(_to_str(a), _to_str(b)) for a, b in np.asarray(data["edges"]).reshape(-1, 2)]
    metadata = data.get("metadata", {})
    metadata = metadata if isinstance(metadata, dict) else {}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def read_graph(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> nir.NIRGraph:
    """Read and validate a NIR file; raises ``NIRError`` naming the node on any problem.

    Shapes are checked along every edge with spikeflow's own rules (which accept the
    known quirks of foreign files, with a warning). The returned graph is also
    type-checked by ``nir`` when possible; graphs that fail ``nir``'s stricter check
    (e.g. Norse's batch dimension in Input types) are returned unchecked with a warning.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise NIRError(f"NIR file {path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise NIRError(f"NIR file {path}: not a readable HDF5 file ({err})") from None
    with f:
        root = f.get("node", getlink=True)
        if not isinstance(root, h5py.HardLink) or not isinstance(f.get("node"), h5py.Group):
            raise NIRError(f"NIR file {path}: missing the top-level 'node' group (is this a NIR file?)")
        budget = _Budget(max_bytes)
        _inspect(f, path, "", budget, 0)
        root = f["node"]
        if "type" in root and _read_str(root["type"], path, "top-level 'type'") != "NIRGraph":
            raise NIRError(f"NIR file {path}: the top-level node must be a NIRGraph")
        _check_structure(root, path, "graph")
        data = _load(root)
    graph = _build(data, path, "graph")
    source = f"NIR file {path}"
    shapes.strip_batch_axis(graph, source)
    shapes.infer(graph, source=source)
    return _type_checked(graph, path)


def _type_checked(graph: nir.NIRGraph, path) -> nir.NIRGraph:
    import copy

    trial = copy.deepcopy(graph)
    try:
        trial.infer_types()
        trial.check_types()
    except Exception as err:
        warnings.warn(
            f"NIR file {path}: nir's type check fails ({err}); the graph is used unchecked by nir "
            "(as nir.read(..., type_check=False)); spikeflow's own shape check passed",
            stacklevel=3,
        )
        return graph
    return graph
