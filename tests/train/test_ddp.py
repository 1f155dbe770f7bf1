"""Two-process data-parallel training (gloo on CPU) against one process.

Training through a spike threshold is chaotic: two runs that differ only in float summation order
drift apart, so final accuracies are not compared. The tests compare what data parallelism
promises exactly: the gradient both ranks apply is the mean of their half-batch gradients, which
equals the whole batch's gradient up to float rounding (``ddp_model`` makes the forward pass exact,
so no spike can flip), and the parameters after a step follow from that gradient.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from spikeflow.sim.distributed import free_port
from spikeflow.train import TrainConfig, Trainer, checkpoint, seed_all, zoo
from spikeflow.train.datasets import holdout, load_tensors
from spikeflow.train.losses import classification_loss
from spikeflow.train.trainer import _mix

from .ddp_model import CONFIG, dyadic_model, first_batch_data

HERE = Path(__file__).parent
SRC = str(HERE.parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
GRAD_RTOL = 1e-4  # of a tensor's largest entry; float32 rounding of these sums measured at <= 6e-7 of it
ADAM_EPS = 1e-8  # torch.optim.AdamW's default, which the Trainer uses


def _spawn_ranks(out: Path, world: int = 2):
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, str(HERE / "ddp_job.py"), str(out)],
                              env={**ENV, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


def test_averaged_gradient_of_two_ranks_equals_whole_batch_gradient(tmp_path):
    ranks = _spawn_ranks(tmp_path)
    model = dyadic_model()
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    trainer = Trainer(model, first_batch_data(), None, CONFIG)
    idx = trainer._batch_indices(0, 0)
    # The ranks split the same global batch between them, without overlap.
    assert torch.equal(ranks[0]["indices"], idx[0::2]) and torch.equal(ranks[1]["indices"], idx[1::2])
    torch.manual_seed(_mix(CONFIG.seed, 0, 0, 1))
    trainer.train_step(trainer.x[idx], trainer.y[idx])
    for k, p in model.named_parameters():
        g = p.grad
        assert torch.equal(ranks[0]["grads"][k], ranks[1]["grads"][k]), k  # both ranks apply the same gradient
        assert g.abs().max() > 0, k
        tol = GRAD_RTOL * float(g.abs().max())
        assert (ranks[0]["grads"][k] - g).abs().max() <= tol, k
        # AdamW's first step moves a weight by lr * g / (|g| + eps) (bias corrections cancel), so a
        # gradient known within tol fixes the new weight within lr * tol * eps / (|g| - tol + eps)**2
        # (capped at the 2 * lr between opposite signs), plus float rounding of the weight.
        slack = (g.abs() - tol).clamp(min=0) + ADAM_EPS
        bound = CONFIG.lr * torch.clamp(tol * ADAM_EPS / slack ** 2, max=2.0)
        bound = bound + 4 * torch.finfo(torch.float32).eps * (before[k].abs() + CONFIG.lr)
        diff = (ranks[0]["params"][k] - p.detach()).abs()
        assert (diff <= bound).all(), (k, float((diff - bound).max()))
        moved = (p.detach() - before[k]).abs()
        assert moved.max() > 0.9 * CONFIG.lr, k  # the step really moved the weights


def _cli_train(out, nproc, batch_size):
    cmd = [sys.executable, "-m", "spikeflow", "train", "--data", "digits", "--model", "mlp", "--hidden", "32",
           "--T", "4", "--encoding", "direct", "--epochs", "1", "--batch-size", str(batch_size), "--lr", "0.005",
           "--out", str(out), "--no-progress", "--threads", "1", "--nproc", str(nproc)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((Path(out) / "result.json").read_text())


def test_cli_two_processes_take_the_mean_of_their_half_batch_gradients(tmp_path):
    """``spikeflow train --nproc 2`` against the same three steps replayed in this process.

    The replay runs each rank's half batch with the same shapes and thread count, averages the
    two gradients and takes the AdamW step: it does the same float operations as the two
    processes, so the parameters agree to rounding (no chaotic drift can start)."""
    x, y = load_tensors("digits", "train")
    train, _ = holdout(x, y, 0.1, seed=0)
    batch = (len(train[1]) // 3) // 2 * 2  # three steps in the one epoch, halves of equal size
    result = _cli_train(tmp_path / "two", 2, batch)
    assert result["world"] == 2
    state, _ = checkpoint.read_checkpoint(tmp_path / "two")

    seed_all(0)  # the CLI's initial weights for --seed 0
    model = zoo.for_data("mlp", (1, 8, 8), 10, hidden=[32], T=4, encoding="direct")
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, train, None, TrainConfig(epochs=1, batch_size=batch, lr=0.005, seed=0, progress=False))
    assert trainer.steps_per_epoch == 3
    params = dict(model.named_parameters())
    for step in range(3):
        grads = {}
        for rank in (0, 1):
            trainer.rank, trainer.world = rank, 2
            idx = trainer._batch_indices(0, step)
            torch.manual_seed(_mix(0, step, rank, 1))
            model.zero_grad(set_to_none=True)
            classification_loss(model(train[0][idx]), train[1][idx], "ce_max").backward()
            for k, p in params.items():
                grads[k] = grads.get(k, 0) + p.grad / 2
        for k, p in params.items():
            p.grad = grads[k]
        for group in trainer.optimizer.param_groups:
            group["lr"] = trainer.lr_at(step)
        trainer.optimizer.step()
    for k, p in params.items():
        assert not torch.equal(state["model"][k], init[k]), k  # the run trained
        tol = 1e-6 * float(p.detach().abs().max())
        assert (state["model"][k] - p.detach()).abs().max() <= tol, (k, float((state["model"][k] - p).abs().max()))
