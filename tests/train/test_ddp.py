"""Two-process data-parallel training (gloo on CPU) against one process, through the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from spikeflow.train import checkpoint, seed_all, zoo

SRC = str(Path(__file__).parents[2] / "src")


def _train(out, nproc):
    cmd = [sys.executable, "-m", "spikeflow", "train", "--data", "digits", "--model", "mlp", "--hidden", "32",
           "--T", "4", "--encoding", "direct", "--epochs", "2", "--batch-size", "64", "--lr", "0.005",
           "--out", str(out), "--no-progress", "--threads", "1", "--nproc", str(nproc)]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((Path(out) / "result.json").read_text())


def test_two_process_ddp_matches_one_process(tmp_path):
    one = _train(tmp_path / "one", 1)
    two = _train(tmp_path / "two", 2)
    assert two["world"] == 2 and one["world"] == 1
    # Each global batch is split across the ranks and DDP averages the gradients, so the two runs
    # take the same optimisation path up to float summation order (which a spike threshold can
    # amplify a little): the two runs move every weight tensor from the same initial values along
    # nearly the same path; the gap between them is a small fraction of the distance travelled.
    assert abs(two["test"]["accuracy"] - one["test"]["accuracy"]) <= 0.01
    assert one["test"]["accuracy"] > 0.4  # it learned (chance is 0.1) in these 40 steps
    a, _ = checkpoint.read_checkpoint(tmp_path / "one")
    b, _ = checkpoint.read_checkpoint(tmp_path / "two")
    seed_all(0)  # the CLI's initial weights for --seed 0
    init = zoo.for_data("mlp", (1, 8, 8), 10, hidden=[32], T=4, encoding="direct").state_dict()
    for k, v in a["model"].items():
        if v.dtype.is_floating_point and k in init and not torch.equal(v, init[k]):
            travelled = (v - init[k]).norm()
            assert travelled < v.norm(), k  # init really is where both runs started
            assert (v - b["model"][k]).norm() < 0.1 * travelled, k
