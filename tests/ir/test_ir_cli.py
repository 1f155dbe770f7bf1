"""`spikeflow nir info|run` on files written by spikeflow."""

import warnings

import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow import ir
from spikeflow.cli import main


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    net = snn.Sequential(torch.nn.Linear(6, 5), snn.LIF(5, tau_mem=10e-3, v_threshold=0.3, dt=1e-3),
                         torch.nn.Linear(5, 3),
                         snn.LIF(3, tau_mem=10e-3, v_threshold=0.2, dt=1e-3))
    with torch.no_grad():
        net[0].layer.weight.abs_()
        net[2].layer.weight.abs_()
    path = tmp_path / "m.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir.write(net, path)
    return net, path


def test_info_lists_nodes_counts_and_dt(model, capsys):
    _, path = model
    assert main(["nir", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dt         0.001 s" in out
    assert "neurons    8" in out  # 5 + 3 LIF neurons
    assert "synapses   45 (45 weights)" in out  # 6*5 + 5*3
    assert "LIF" in out and "Affine" in out and "(6) -> (5)" in out
    assert "tau=0.01 x5" in out


def test_run_dense_spikes_prints_counts_and_prediction(model, tmp_path, capsys):
    net, path = model
    rng = np.random.default_rng(1)
    spikes = (rng.random((30, 2, 6)) < 0.5).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=spikes)
    assert main(["nir", "run", str(path), "--input", str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    counts = net(torch.from_numpy(spikes)).sum(0)
    assert counts.sum() > 0
    for b in range(2):
        expected = " ".join(f"{v:g}" for v in counts[b].tolist())
        assert f"sample {b}: prediction {int(counts[b].argmax())}  [{expected}]" in out


def test_run_events_are_binned_by_dt(model, tmp_path, capsys):
    from spikeflow.commands.nir import load_input

    _, path = model
    ev = np.zeros(4, dtype=[("x", "<i2"), ("t", "<i8")])
    ev["x"] = [0, 0, 5, 1]
    ev["t"] = [0, 400, 1500, 2999]  # microseconds: steps 0, 0, 1, 2 at dt = 1 ms
    np.savez(tmp_path / "ev.npz", events=ev)
    frames = load_input(str(tmp_path / "ev.npz"), None, (6,), 1e-3).numpy()
    expected = np.zeros((3, 1, 6), np.float32)
    expected[0, 0, 0], expected[1, 0, 5], expected[2, 0, 1] = 2, 1, 1
    np.testing.assert_array_equal(frames, expected)
    assert main(["nir", "run", str(path), "--input", str(tmp_path / "ev.npz")]) == 0
    assert "input      (3, 1, 6) (T, B, ...), dt 0.001 s, 3 non-zero entries" in capsys.readouterr().out


def test_bad_input_is_one_line_error(model, tmp_path, capsys):
    _, path = model
    np.savez(tmp_path / "bad.npz", spikes=np.zeros((5, 7), np.float32))
    assert main(["nir", "run", str(path), "--input", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeflow: error:") and "does not fit" in err and err.count("\n") == 1
    (tmp_path / "junk.nir").write_text("not hdf5")
    assert main(["nir", "info", str(tmp_path / "junk.nir")]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
