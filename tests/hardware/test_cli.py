"""`spikeflow hw chips|compile|run` end to end on small files."""

import json

import nir
import numpy as np
import pytest

from spikeflow.cli import main
from spikeflow.hardware import PROFILES
from tests.hardware.hw_nets import chain, li, lif, poisson


@pytest.fixture
def model_file(tmp_path):
    rng = np.random.default_rng(0)
    graph = chain(16, nir.Affine(rng.normal(0, 1.5, (12, 16)), np.zeros(12)), lif(12),
                  nir.Linear(rng.normal(0, 1.5, (3, 12))), li(3))
    graph.metadata = {"dt": 1e-3}
    path = tmp_path / "m.nir"
    nir.write(str(path), graph)
    return path


def test_chips_table_lists_every_profile(capsys):
    assert main(["hw", "chips"]) == 0
    out = capsys.readouterr().out
    for name, prof in PROFILES.items():
        assert name in out and prof.title in out


def test_compile_reports_cores_and_headroom(model_file, capsys):
    assert main(["hw", "compile", str(model_file), "--chip", "loihi", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["cores_used"] == 2 and [L["neurons"] for L in rep["layers"]] == [12, 3]
    assert rep["layers"][0]["fan_in_max"] == 16 and rep["layers"][0]["neuron_headroom"] == pytest.approx(1 - 12 / 1024)


def test_compile_violation_is_one_line_and_exit_2(model_file, capsys):
    assert main(["hw", "compile", str(model_file), "--chip", "speck"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Speck" in err and "neuron_model" in err


def test_run_reports_accuracy_energy_and_writes_chart(model_file, tmp_path, monkeypatch, capsys):
    x = poisson(1, 20, 12, 16, p=0.3)
    labels = np.arange(12) % 3
    data = [(x[:, i], int(labels[i])) for i in range(12)]
    import spikeflow.data

    monkeypatch.setattr(spikeflow.data, "load_dataset", lambda name, split, **kw: data)
    png = tmp_path / "e.png"
    assert main(["hw", "run", str(model_file), "--chip", "loihi", "--data", str(tmp_path), "--batch-size", "5",
                 "--plot", str(png), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["samples"] == 12 and 0 <= rep["int_accuracy"] <= 1
    assert rep["energy_j"] > 0 and rep["counts"]["synops"] > 0
    assert set(rep["ann_energy_j"]) == {"cpu", "gpu", "45nm-fp32", "45nm-int8"}
    # the ANN reference: every synapse once; the dense SNN: every synapse every step (20 steps)
    assert rep["ann_macs"] == 16 * 12 + 12 * 3 and rep["dense_snn_macs"] == (16 * 12 + 12 * 3) * 20
    assert rep["ann_energy_j"]["cpu"] == pytest.approx(rep["ann_macs"] * 8.6e-9)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the default clock is real time: 20 steps of the model's dt = 1 ms powered, static power charged over them
    loihi = PROFILES["loihi"]
    assert rep["clock"] == "realtime" and rep["powered_s"] == pytest.approx(20e-3)
    assert rep["static_j"] == pytest.approx(loihi.static_power * 20e-3)
    assert main(["hw", "run", str(model_file), "--chip", "loihi", "--data", str(tmp_path), "--clock", "afap",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "clock         afap" in out and "inferences/s" in out


def test_chips_sources_prints_a_citation_per_figure(capsys):
    assert main(["hw", "chips", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "Table 2: synaptic spike op (min) 23.6 pJ" in out and out.count("\n  e_synop ") == len(PROFILES)


def test_conv_model_runs_on_speck_with_kernel_macs(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(2)
    nodes = [nir.Input(np.array([2, 6, 6])),
             nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.3, 0.3, (3, 2, 3, 3)), stride=1, padding=1,
                        dilation=1, groups=1, bias=np.zeros(3)),
             nir.IF(r=np.full((3, 6, 6), 1e3), v_threshold=np.ones((3, 6, 6))),
             nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             nir.Conv2d(input_shape=(3, 3), weight=rng.normal(0.1, 0.3, (2, 3, 3, 3)), stride=1, padding=0,
                        dilation=1, groups=1, bias=np.zeros(2)),
             nir.IF(r=np.full((2, 1, 1), 1e3), v_threshold=np.ones((2, 1, 1)))]
    graph = nir.NIRGraph.from_list(*nodes, nir.Output(np.array([2, 1, 1])), type_check=False)
    graph.metadata = {"dt": 1e-3}
    path = tmp_path / "c.nir"
    nir.write(str(path), graph)
    x = poisson(3, 10, 6, 72, p=0.3).reshape(10, 6, 2, 6, 6)
    import spikeflow.data

    monkeypatch.setattr(spikeflow.data, "load_dataset", lambda name, split, **kw: [(x[:, i], i % 2) for i in range(6)])
    assert main(["hw", "run", str(path), "--chip", "speck", "--data", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["samples"] == 6 and rep["counts"]["synops"] > 0
    # conv 108 outputs x 2 x 3 x 3 + pooling 27 outputs x 4 + conv 2 outputs x 3 x 3 x 3 (not 108 x 72 + 2 x 108)
    assert rep["ann_macs"] == 108 * 18 + 27 * 4 + 2 * 27
