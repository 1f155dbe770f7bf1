"""Atomic writing of NIR files (through ``spikeflow.atomic``).

The layout is ``nir.write``'s (``version``, ``node/type``, ``node/nodes/<name>/<field>``,
``node/edges``) with two fixes: fields that are ``None`` (e.g. a grouped convolution's
input shape, left to type inference) are omitted instead of failing, and 0-d arrays are
written uncompressed (h5py cannot compress scalars; Norse's graphs have them).
"""

from __future__ import annotations

import os

import h5py
import nir
import numpy as np

from spikeflow.atomic import atomic_output
from spikeflow.errors import NIRError


def _write_group(group: h5py.Group, node: dict, compression) -> None:
    for key, value in node.items():
        key = str(key)
        if value is None:
            continue
        if key == "metadata":
            if value:
                _write_group(group.create_group(key), value, compression)
        elif isinstance(value, dict):
            _write_group(group.create_group(key), value, compression)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=h5py.string_dtype())
        elif isinstance(value, np.ndarray) and value.ndim > 0 and value.dtype.kind in "fiub":
            group.create_dataset(key, data=value, dtype=value.dtype, compression=compression)
        else:
            group.create_dataset(key, data=value)


def write(module_or_graph, path, *, compression="gzip", **to_nir_kw) -> nir.NIRGraph:
    """Write a spikeflow module (exported with ``to_nir(**to_nir_kw)``) or a NIR graph to ``path``.

    Returns the graph written.
    """
    if isinstance(module_or_graph, nir.NIRGraph):
        if to_nir_kw:
            raise NIRError(f"write: options {sorted(to_nir_kw)} apply to modules, not to a NIR graph")
        graph = module_or_graph
    else:
        from spikeflow.ir.export import to_nir

        graph = to_nir(module_or_graph, **to_nir_kw)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise NIRError(f"write: folder {folder} does not exist")
    try:
        with atomic_output(path, parents=False) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
            _write_group(f.create_group("node"), graph.to_dict(), compression)
    except Exception as err:
        raise NIRError(f"write: cannot write NIR file {path}: {err}") from err
    return graph
