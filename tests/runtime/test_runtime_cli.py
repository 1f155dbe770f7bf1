"""`spikeflow stream` and `spikeflow eval-time` end to end on small files."""

import json

import nir
import numpy as np

from spikeflow.cli import main
from spikeflow.data.events import Events
from spikeflow.data.formats import write_events
from spikeflow.ir import write


def _model(path):
    # input pixel (x, 0, p=0) of a 4x1x2 sensor drives output x: the answer is the busiest column
    w = np.zeros((4, 8))
    w[np.arange(4), np.arange(4)] = 40.0
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, 1, 4])),
               "flat": nir.Flatten(input_type={"input": np.array([2, 1, 4])}, start_dim=0, end_dim=-1),
               "fc": nir.Affine(w, np.zeros(4)),
               "lif": nir.LIF(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)),
               "output": nir.Output(np.array([4]))},
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1e-3})
    write(g, path)


def _recording(col, n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(n) < 0.8, col, rng.integers(0, 4, n))
    return Events.from_arrays(x, np.zeros(n), np.sort(rng.integers(0, 50_000, n)), np.zeros(n), (4, 1, 2),
                              label=col)


def test_stream_command(tmp_path, capsys):
    _model(tmp_path / "m.nir")
    write_events(tmp_path / "rec.npz", _recording(2))
    code = main(["stream", str(tmp_path / "m.nir"), "--input", str(tmp_path / "rec.npz"), "--chunk-us", "5000"])
    out = capsys.readouterr().out
    assert code == 0
    assert "decision: label 2" in out and "<- decided" in out
    assert len([ln for ln in out.splitlines() if ln.startswith("t=")]) >= 5
    n_updates = len([ln for ln in out.splitlines() if ln.startswith("t=")])
    assert f"pushes: {n_updates} chunks of 5000 µs" in out and "latency per chunk p50" in out
    assert main(["stream", str(tmp_path / "m.nir"), "--input", str(tmp_path / "rec.npz"), "--chunk-us", "5000",
                 "--json", str(tmp_path / "s.json")]) == 0
    rep = json.loads((tmp_path / "s.json").read_text())
    assert rep["chunks"] == len(rep["updates"]) == n_updates and rep["events"] == 30  # one push per update
    assert 0 < rep["p50_latency_per_chunk_ms"] <= rep["p99_latency_per_chunk_ms"] <= rep["max_latency_per_chunk_ms"]
    assert rep["events_per_second"] > 0


def test_stream_command_bad_input_is_one_line_error(tmp_path, capsys):
    _model(tmp_path / "m.nir")
    bad = _recording(1)
    bad = Events.from_arrays(bad.x, bad.y, bad.t, bad.p, (5, 1, 2))  # a wider sensor than the model's
    write_events(tmp_path / "rec.npz", bad)
    code = main(["stream", str(tmp_path / "m.nir"), "--input", str(tmp_path / "rec.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sensor of size (5, 1, 2)" in err
    assert main(["stream", str(tmp_path / "missing.nir"), "--input", str(tmp_path / "rec.npz")]) == 2


def test_eval_time_command(tmp_path, capsys):
    _model(tmp_path / "m.nir")
    (tmp_path / "data").mkdir()
    recs = [_recording(i % 4, seed=i) for i in range(12)]
    write_events(tmp_path / "data" / "test.h5", recs)
    code = main(["eval-time", str(tmp_path / "m.nir"), "--data", str(tmp_path / "data"), "--chunk-us", "5000",
                 "--plot", str(tmp_path / "p.png"), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["n"] == 12
    assert 0 < rep["p50_latency_per_push_ms"] <= rep["p99_latency_per_push_ms"] <= rep["max_latency_per_push_ms"]
    assert rep["accuracy_vs_fraction"]["1.000"] == 1.0  # 80 % of each recording's events are on its column
    assert rep["early_exit_accuracy"] == 1.0 and 0 < rep["mean_fraction_needed"] < 0.5
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert "accuracy after" in out
