"""Audio accuracy with the recurrent SNN recipe (slow: trains for about a minute on one core)."""

import json

import pytest
import torch

from spikeflow.cli import main


@pytest.mark.slow
def test_fsdd_recurrent_snn_with_standardised_mfccs(tmp_path):
    """A short version of benchmarks/accuracy.py's fsdd recipe (12 epochs there, 98.5 %)."""
    torch.set_num_threads(1)
    out = tmp_path / "fsdd"
    assert main(["train", "--data", "fsdd", "--model", "recurrent", "--hidden", "128", "--loss", "ce_mean",
                 "--tau-mem", "0.02", "--T", "32", "--input-norm", "--epochs", "4", "--lr", "0.003",
                 "--out", str(out), "--no-progress"]) == 0
    acc = json.loads((out / "result.json").read_text())["test"]["accuracy"]
    print(f"fsdd recurrent SNN, 4 epochs: test accuracy {acc:.4f}")
    # Training through a spike threshold is chaotic: another CPU (float summation order) moves the
    # result as another seed does. Seeds 0, 1, 2 give 95.8 %, 94.5 %, 95.2 %; the bar sits three
    # such spreads below the lowest, well above what a broken recipe reaches (83.7 % without
    # --input-norm at 12 epochs, docs/training.md).
    assert acc >= 0.90
