"""`spikeflow hw chips|compile|run` end to end on small files."""

import json

import nir
import numpy as np
import pytest

from spikeflow.cli import main
from spikeflow.hardware import PROFILES, compile_network
from tests.hardware.hw_nets import chain, if_, li, lif, poisson, recurrent_chain


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
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "nahuku (32 chips" in rows["loihi"] and rows["xylo"].split()[-2:] == ["hidden", "-"]


def test_compile_reports_cores_and_headroom(model_file, capsys):
    assert main(["hw", "compile", str(model_file), "--chip", "loihi", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["cores_used"] == 2 and [L["neurons"] for L in rep["layers"]] == [12, 3]
    assert rep["layers"][0]["fan_in_max"] == 16 and rep["layers"][0]["neuron_headroom"] == pytest.approx(1 - 12 / 1024)
    # Loihi: each layer's Dense delivers one step later (2 layers: 2 steps); Lava's parameters per layer
    assert rep["latency"] == "per-layer" and rep["latency_steps"] == 2
    assert rep["layers"][0]["loihi"]["du"] == 4095 and rep["layers"][1]["loihi"]["vth"] == 2 ** 17 - 1


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
    assert rep["samples"] == 12 and 0 <= rep["int_accuracy"] <= 1 and rep["latency_steps"] == 2
    assert rep["energy_j"] > 0 and rep["counts"]["synops"] > 0
    assert set(rep["ann_energy_j"]) == {"cpu", "gpu", "45nm-fp32", "45nm-int8"}
    # the ANN reference: every synapse once; the dense SNN: every synapse every step (20 steps)
    assert rep["ann_macs"] == 16 * 12 + 12 * 3 and rep["dense_snn_macs"] == (16 * 12 + 12 * 3) * 20
    assert rep["ann_energy_j"]["cpu"] == pytest.approx(rep["ann_macs"] * 8.6e-9)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the default clock is real time: 20 steps of the model's dt = 1 ms powered, plus Loihi's 2 steps until its
    # last layer has answered (one per layer), static power charged over them
    loihi = PROFILES["loihi"]
    assert rep["clock"] == "realtime" and rep["powered_s"] == pytest.approx(22e-3)
    assert rep["static_j"] == pytest.approx(loihi.static_power * 22e-3)
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


def _write(graph, path):
    graph.metadata = {"dt": 1e-3}
    nir.write(str(path), graph)
    return str(path)


def test_compile_reports_a_recurrent_layer_on_loihi_and_xylo(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = _write(recurrent_chain(rng.normal(0, 1, (20, 8)), rng.normal(0, 0.3, (20, 20)), lif(20, r=10.0),
                                  (rng.normal(0, 1, (4, 20)), li(4))), tmp_path / "r.nir")
    for chip in ("loihi", "xylo"):
        assert main(["hw", "compile", path, "--chip", chip, "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        first = rep["layers"][0]
        assert first["recurrent"] == "loop" and first["fan_in_max"] == 8 + 20
        assert first["synapses_per_core_max"] == first["precision"]["synapses"] - first["precision"]["zeroed"]
    assert main(["hw", "compile", path, "--chip", "truenorth"]) == 2
    assert "layer 'rec' exceeds limit 'recurrent'" in capsys.readouterr().err


def test_lossy_compile_fails_unless_allowed_and_reports_the_loss(tmp_path, capsys):
    rng = np.random.default_rng(0)
    graph = chain(8, nir.Linear(rng.normal(0, 1, (16, 8))), if_(16), nir.Linear(rng.normal(0, 1, (4, 16))), if_(4))
    path = _write(graph, tmp_path / "t.nir")
    assert main(["hw", "compile", path, "--chip", "truenorth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lose too much of layer 'if'" in err and "--allow-lossy" in err
    assert main(["hw", "compile", path, "--chip", "truenorth", "--allow-lossy", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    lib = compile_network(graph, "truenorth", allow_lossy=True).precision
    assert rep["lossy_layers"] == ["if", "if_1"]
    assert [L["precision"]["zeroed"] for L in rep["layers"]] == [p.zeroed for p in lib]
    assert rep["layers"][0]["precision"]["zeroed"] > 0.05 * rep["layers"][0]["precision"]["synapses"]
    assert main(["hw", "compile", path, "--chip", "truenorth", "--allow-lossy"]) == 0
    out = capsys.readouterr().out
    assert "zeroed" in out and "lossy (allowed by --allow-lossy): if, if_1" in out


def test_multichip_compile_and_run_report_chips_and_interchip_traffic(tmp_path, monkeypatch, capsys):
    import spikeflow.data
    from spikeflow.hardware import profiles
    from tests.hardware.test_board import TINY, _net

    monkeypatch.setitem(profiles.PROFILES, "loihi2", TINY)  # 2 cores of 4 neurons per chip
    path = _write(_net(), tmp_path / "b.nir")
    assert main(["hw", "compile", path, "--chip", "loihi2", "--reset", "to_reset", "--chips", "4"]) == 0
    out = capsys.readouterr().out
    assert "5 cores on 3 chips" in out and "cores per chip [2, 2, 1]" in out
    x = poisson(3, 10, 6, 4, p=0.3)
    monkeypatch.setattr(spikeflow.data, "load_dataset", lambda name, split, **kw: [(x[:, i], 0) for i in range(6)])
    assert main(["hw", "run", path, "--chip", "loihi2", "--reset", "to_reset", "--chips", "4", "--data",
                 str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    b = rep["board"]
    assert rep["chips_used"] == 3 and b["cores_per_chip"] == [2, 2, 1]
    # A copies the input (2 spikes per input spike); each A spike is 3 packets to B's cores on chips 1, 1, 2.
    assert b["interchip_messages"] == pytest.approx(3 * 2 * x.sum() / 6)
    assert b["interchip_messages_per_step"] == pytest.approx(3 * 2 * x.sum() / 6 / 10)
    assert b["interchip_energy_j"] == pytest.approx(4 * 2 * x.sum() / 6 * b["e_interchip_j"])
    assert rep["breakdown_j"]["interchip"] == pytest.approx(b["interchip_energy_j"])
    assert main(["hw", "run", path, "--chip", "loihi2", "--reset", "to_reset", "--chips", "4", "--data",
                 str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{3 * 2 * x.sum() / 6:.1f} inter-chip messages" in out
    assert "Intel Kapoho Point (8 Loihi 2) board: 3 of 4" in out
    assert main(["hw", "run", path, "--chip", "loihi2", "--chips", "1", "--data", str(tmp_path)]) == 2
    assert "--chips N, up to 8" in capsys.readouterr().err
