"""Malformed and hostile NIR files raise NIRError naming the node; nothing is read blindly."""

import os
import warnings

import h5py
import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow import ir
from spikeflow.errors import NIRError, SpikeflowError


@pytest.fixture
def good(tmp_path):
    torch.manual_seed(0)
    net = snn.Sequential(torch.nn.Linear(5, 7), snn.LIF(7, reset="to_reset", dt=1e-3), torch.nn.Linear(7, 2))
    path = tmp_path / "good.nir"
    ir.write(net, path)
    ir.read_graph(path)  # the unmodified file is fine
    return path


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f["node"])
    return path


def _raises(path, *fragments):
    with pytest.raises(NIRError) as info:
        ir.read_graph(path)
    for frag in fragments:
        assert frag in str(info.value), str(info.value)
    # from_nir reads the same way
    with pytest.raises(NIRError):
        ir.from_nir(path)
    return str(info.value)


def _set_edges(nodes_group, edges):
    del nodes_group["edges"]
    nodes_group.create_dataset("edges", data=np.array(edges, dtype=object), dtype=h5py.string_dtype())


def test_missing_node(good):
    _edit(good, lambda g: g["nodes"].__delitem__("1"))
    _raises(good, "'1' does not exist")


def test_edge_to_nowhere(good):
    _edit(good, lambda g: _set_edges(g, [["input", "0"], ["0", "ghost"], ["0", "1"], ["1", "2"], ["2", "output"]]))
    _raises(good, "ghost", "does not exist")


def test_shape_mismatch_names_the_node(good):
    def shrink(g):
        lif = g["nodes"]["1"]
        for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            del lif[field]
            lif.create_dataset(field, data=np.ones(6, np.float32))
    _edit(good, shrink)
    _raises(good, "node '1' (LIF)", "(6,)", "(7,)")


def test_weight_shape_mismatch(good):
    def bad(g):
        del g["nodes"]["2"]["weight"]
        g["nodes"]["2"].create_dataset("weight", data=np.ones((2, 9), np.float32))
    _edit(good, bad)
    _raises(good, "node '2' (Affine)", "(9,)")


@pytest.mark.parametrize("data", [np.array([b"abc"] * 35).reshape(7, 5), np.ones((7, 5), np.complex64)],
                         ids=["strings", "complex"])
def test_wrong_dtype(good, data):
    def bad(g):
        del g["nodes"]["0"]["weight"]
        g["nodes"]["0"].create_dataset("weight", data=data)
    _edit(good, bad)
    _raises(good, "0")


def test_ten_gigabyte_declared_array_is_refused_without_reading(good):
    def huge(g):
        del g["nodes"]["0"]["weight"]
        g["nodes"]["0"].create_dataset("weight", shape=(50_000, 50_000), dtype="f4", chunks=(1000, 1000))
    _edit(good, huge)
    assert os.path.getsize(good) < 1_000_000  # declared, never written
    msg = _raises(good, "nodes/0/weight", "10 GB")
    assert "max_bytes" in msg


def test_external_link_is_refused(good, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("w", data=np.ones((7, 5), np.float32))
    def link(g):
        del g["nodes"]["0"]["weight"]
        g["nodes"]["0"]["weight"] = h5py.ExternalLink(str(other), "/w")
    _edit(good, link)
    _raises(good, "nodes/0/weight", "ExternalLink")


def test_external_storage_is_refused(good, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones(35, np.float32).tobytes())
    def ext(g):
        del g["nodes"]["0"]["weight"]
        g["nodes"]["0"].create_dataset("weight", shape=(7, 5), dtype="f4", external=[(str(raw), 0, 140)])
    _edit(good, ext)
    _raises(good, "nodes/0/weight", "external")


def test_unknown_node_type(good):
    def bad(g):
        del g["nodes"]["1"]["type"]
        g["nodes"]["1"].create_dataset("type", data="PythonCallable", dtype=h5py.string_dtype())
    _edit(good, bad)
    _raises(good, "node '1'", "PythonCallable")


def test_missing_required_field(good):
    _edit(good, lambda g: g["nodes"]["1"].__delitem__("tau"))
    _raises(good, "node '1' (LIF)", "'tau'")


def test_weight_of_wrong_rank(good):
    def bad(g):
        del g["nodes"]["0"]["weight"]
        g["nodes"]["0"].create_dataset("weight", data=np.ones((7, 5, 1), np.float32))
    _edit(good, bad)
    _raises(good, "node '0' (Affine)", "2 dimensions")


def test_not_hdf5_and_missing_file(tmp_path):
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle payload is just bytes here
    with pytest.raises(NIRError, match="not a readable HDF5 file"):
        ir.read_graph(junk)
    with pytest.raises(NIRError, match="no such file"):
        ir.read_graph(tmp_path / "absent.nir")


def test_unsupported_node_is_named_on_import(tmp_path):
    import nir

    g = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((3, 2), np.float32), bias=np.zeros(3, np.float32)),
                               nir.I(r=np.ones(3, np.float32)))
    g.metadata = {"dt": 1e-3}
    path = tmp_path / "i.nir"
    ir.write(g, path)
    with pytest.raises(NIRError, match="node 'i' has type I"):
        ir.from_nir(path)


def test_errors_are_spikeflow_errors(good):
    _edit(good, lambda g: g["nodes"]["1"].__delitem__("tau"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SpikeflowError):
            ir.read_graph(good)
