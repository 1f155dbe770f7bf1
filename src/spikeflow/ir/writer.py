"""Atomic writing of NIR files (temp file in the same folder, then ``os.replace``)."""

from __future__ import annotations

import os
import tempfile

import nir

from spikeflow.errors import NIRError


def write(module_or_graph, path, *, compression="gzip", **to_nir_kw) -> nir.NIRGraph:
    """Write a spikeflow module (exported with ``to_nir(**to_nir_kw)``) or a NIR graph to ``path``.

    Returns the graph written. Graphs with 0-d parameters (Norse's) cannot be gzip-compressed
    by h5py; they are written uncompressed.
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
    fd, tmp = tempfile.mkstemp(prefix=".nir-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        try:
            nir.write(tmp, graph, compression=compression)
        except (TypeError, ValueError):  # "Scalar datasets don't support chunk/filter options"
            nir.write(tmp, graph, compression=None)
        os.replace(tmp, path)
    except Exception as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, NIRError):
            raise
        raise NIRError(f"write: cannot write NIR file {path}: {err}") from err
    return graph
