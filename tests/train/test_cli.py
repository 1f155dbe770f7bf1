"""CLI: train -> eval -> convert on digits; a corrupted run is a one-line error (more bad input: test_bad_input)."""

import json

import pytest
import torch

from spikeflow.cli import main


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    torch.set_num_threads(1)
    assert main(["train", "--data", "digits", "--model", "conv", "--channels", "4,8", "--T", "2", "--epochs", "1",
                 "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    # One epoch of this tiny conv net (T=2) stays near chance (0.100-0.103 for seeds 0-3), so its
    # accuracy is no evidence of learning and is not compared with a bar; what is checked is that
    # the run is complete and that eval and export reproduce it.
    assert result["epochs_run"] == 1 and 0.0 <= result["test"]["accuracy"] <= 1.0
    assert result["test"]["samples"] > 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["accuracy"] == pytest.approx(result["test"]["accuracy"])
    assert ev["samples"] == result["test"]["samples"] and ev["macs"] > 0

    # export: the NIR graph (BatchNorm folded into the convolutions) runs to the same readout
    from spikeflow import ir
    from spikeflow.commands._common import load_run

    with pytest.warns(UserWarning):  # reset by subtraction is stored as NIR metadata
        assert main(["export", str(out), "--nir", str(tmp_path / "m.nir")]) == 0
    model, _ = load_run(out)
    model.eval()
    x = model.encode(torch.rand(3, 1, 8, 8))
    with torch.no_grad():
        mine = model.net(x)
        theirs = ir.from_nir(ir.read_graph(tmp_path / "m.nir"))(x)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    assert torch.allclose(mine, theirs, atol=1e-5)


def test_convert_command(tmp_path, capsys):
    out = tmp_path / "conv"
    assert main(["convert", "--data", "digits", "--model", "mlp", "--hidden", "64", "--epochs", "3", "--lr", "0.01",
                 "--T-values", "32",
                 "--out", str(out), "--no-progress", "--calibration", "200"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["snn"][0]["T"] == 32 and res["ann_accuracy"] > 0.8
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0  # the converted model rebuilds from its file
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(res["snn"][0]["accuracy"])


def test_corrupted_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "latest.json").write_text('{"file": "ckpt-00000001.pt", "sha256": "00", "step": 1}')
    (tmp_path / "ckpt-00000001.pt").write_bytes(b"garbage")
    assert main(["eval", str(tmp_path), "--data", "digits"]) == 2
    assert "corrupt" in _err_line(capsys)


def test_demo_on_its_default_dataset_learns_writes_report_and_resumes(tmp_path, capsys):
    """The demo as a user runs it (nmnist5k, its default dataset), shortened to 2 epochs (about 1.5 minutes on 2 cores).

    Bar: 60 % on the 1000 test samples, 6x chance. The 2-epoch SNN reached 88.1 % (ANN 90.1 %) with the demo's seeds
    and 91.4 / 90.0 / 91.7 % with seeds 1-3 (model init, data order, validation split), so the bar leaves a margin of
    over 25 points."""
    argv = ["demo", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["data"] == "nmnist5k"
    assert summary["snn_accuracy"] >= 0.60 and summary["ann_accuracy"] >= 0.60
    for png in ("accuracy.png", "accuracy_vs_stream.png", "synops.png", "energy.png", "raster.png", "input.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in (tmp_path / "report.html").read_text()
    # the ANN computes every MAC: 3x3 convs with padding 1 reach 3 * 34 - 2 = 100 (34 px) and 3 * 17 - 2 = 49
    # (17 px) input positions per axis; 2 -> 8 channels, 8 -> 16, then 16 x 8 x 8 -> 10
    assert summary["ann_ops"]["macs"] == 2 * 8 * 100 ** 2 + 8 * 16 * 49 ** 2 + 16 * 8 * 8 * 10
    # energy: 45 nm with memory access; more than the MACs' arithmetic alone (4.6 pJ each)
    ann = summary["energy"]["ann"]
    assert summary["energy_nj_estimate"]["ann"] == pytest.approx(ann["energy_j"] * 1e9)
    assert ann["energy_j"] == pytest.approx(sum(ann["breakdown_j"].values()))
    assert ann["energy_j"] > 4.6e-12 * ann["macs"] and summary["energy"]["snn"]["acs"] > 0
    # the frontier: the ANN, the SNN, the sparse SNN (T 3, half its weights zero) and the SNNs' early exits
    fr = summary["frontier"]
    assert [p["name"] for p in fr["points"]] == ["ANN", "SNN T6", "SNN T6 early exit 0.9", "SNN T3 sparse",
                                                 "SNN T3 sparse early exit 0.9"]
    assert fr["points"][0]["energy_j"] == pytest.approx(ann["energy_j"])
    assert "frontier.png" in (tmp_path / "report.html").read_text() and any(p["pareto"] for p in fr["points"])
    from spikeflow.commands._common import load_run
    from spikeflow.train.sparsity import connection_layers

    sparse, _ = load_run(str(tmp_path / "snn_sparse"))
    for layer in connection_layers(sparse).values():
        assert int((layer.weight == 0).sum()) == round(0.5 * layer.weight.numel())
    # a second run finds all trainings finished and only rebuilds the report: same figures
    assert main(argv) == 0
    again = json.loads((tmp_path / "summary.json").read_text())
    assert again["snn_accuracy"] == summary["snn_accuracy"] and again["ann_accuracy"] == summary["ann_accuracy"]
    assert again["frontier"]["points"][3]["accuracy"] == fr["points"][3]["accuracy"]


def test_train_pool_first_reaches_the_model(tmp_path, capsys):
    from spikeflow.cli import build_parser
    from spikeflow.commands.train import model_kwargs
    from spikeflow.train import zoo

    args = build_parser().parse_args(["train", "--data", "digits", "--model", "conv", "--channels", "4", "--T", "1",
                                      "--pool-first", "--out", str(tmp_path / "run")])
    model = zoo.for_data("conv", (1, 8, 8), 10, **model_kwargs(args))
    assert model.spec["pool_first"] is True
    neurons = [m for m in model.net.modules() if len(getattr(m, "shape", ())) == 3]
    assert [tuple(m.shape) for m in neurons] == [(4, 4, 4)]  # 8 x 8 digits pooled before the neurons
    assert main(["train", "--data", "digits", "--model", "mlp", "--pool-first", "--out", str(tmp_path / "m"),
                 "--no-progress"]) == 2
    assert "--pool-first" in _err_line(capsys)
