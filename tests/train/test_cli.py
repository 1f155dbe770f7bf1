"""CLI: train -> eval -> convert on digits; bad input gives one line and exit code 2."""

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
    assert 0.1 < result["test"]["accuracy"] <= 1.0
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["accuracy"] == pytest.approx(result["test"]["accuracy"])
    assert ev["samples"] == result["test"]["samples"] and ev["macs"] > 0


def test_convert_command(tmp_path, capsys):
    out = tmp_path / "conv"
    assert main(["convert", "--data", "digits", "--model", "mlp", "--hidden", "64", "--epochs", "3", "--lr", "0.01", "--T", "32",
                 "--out", str(out), "--no-progress", "--calibration", "200"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["snn"][0]["T"] == 32 and res["ann_accuracy"] > 0.8
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0  # the converted model rebuilds from its file
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(res["snn"][0]["accuracy"])


@pytest.mark.parametrize("argv, words", [
    (["train", "--data", "no-such-set", "--out", "{tmp}/x"], "no-such-set"),
    (["eval", "{tmp}/missing"], "does not exist"),
    (["train", "--data", "digits", "--out", "{tmp}/x", "--val-frac", "2"], "--val-frac"),
    (["export", "{tmp}", "--nir", "{tmp}/m.nir"], ""),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    line = _err_line(capsys)
    assert line.startswith("spikeflow: error:") and words in line


def test_corrupted_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "latest.json").write_text('{"file": "ckpt-00000001.pt", "sha256": "00", "step": 1}')
    (tmp_path / "ckpt-00000001.pt").write_bytes(b"garbage")
    assert main(["eval", str(tmp_path), "--data", "digits"]) == 2
    assert "corrupt" in _err_line(capsys)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "digits", "--out", "x", "--epochs", "-3"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err
