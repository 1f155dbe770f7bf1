"""Trainer: determinism, kill -9 and resume, early stopping, best-model keeping, logs."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikeflow.errors import CheckpointError, ConfigError
from spikeflow.train import TrainConfig, Trainer, checkpoint, seed_all, zoo
from spikeflow.train.datasets import holdout, load_tensors

HERE = Path(__file__).parent
SRC = str(HERE.parents[1] / "src")


def _digits():
    x, y = load_tensors("digits", "train")
    return holdout(x, y, 0.1, seed=0)


def _job(out, *extra):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(HERE / "digits_job.py"), str(out), *extra], env=env,
                          capture_output=True, text=True, timeout=300)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_kill9_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    ref = _job(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    killed = _job(tmp_path / "run", "--kill-at", "30")  # epoch 1 has 40 steps; checkpoints at 7, 14, 21, 28
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "final.json").exists()
    pointer = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert pointer["step"] == 28 and pointer["epoch"] == 0 and pointer["step_in_epoch"] == 28
    resumed = _job(tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr

    rows, ref_rows = _rows(tmp_path / "run" / "steps.csv"), _rows(tmp_path / "ref" / "steps.csv")
    assert [int(r["global_step"]) for r in rows] == list(range(1, len(ref_rows) + 1))  # no gap, no repeat
    assert rows == ref_rows  # same losses, accuracies and learning rates at every step
    last = [_rows(tmp_path / d / "epochs.csv")[-1] for d in ("run", "ref")]
    assert last[0]["val_acc"] == last[1]["val_acc"] and last[0]["train_loss"] == last[1]["train_loss"]
    assert json.loads((tmp_path / "run" / "final.json").read_text()) == json.loads(
        (tmp_path / "ref" / "final.json").read_text())
    a, _ = checkpoint.read_checkpoint(tmp_path / "run")
    b, _ = checkpoint.read_checkpoint(tmp_path / "ref")
    for k in b["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def _fit(seed, out=None, epochs=1, **cfg):
    train, val = _digits()
    seed_all(seed)
    model = zoo.mlp(64, 10, [32], T=4, encoding="rate")
    config = TrainConfig(epochs=epochs, batch_size=64, lr=5e-3, seed=seed, progress=False, **cfg)
    summary = Trainer(model, train, val, config, out_dir=out).fit()
    return model, summary


def test_same_seed_identical_weights_other_seed_differs():
    torch.set_num_threads(1)
    a, _ = _fit(7)
    b, _ = _fit(7)
    c, _ = _fit(8)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))


def test_best_model_logs_and_early_stopping(tmp_path):
    # patience=1: training stops at the first epoch without a validation gain; the best epoch is kept
    model, summary = _fit(0, out=tmp_path, epochs=6, patience=1, schedule="constant", restore_best=True)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == summary["epochs"] == len(_rows(tmp_path / "epochs.csv"))
    vals = [h["val_acc"] for h in history]
    best_epoch = max(i for i in range(len(vals)) if vals[i] == max(vals)) + 1  # ties: the later epoch
    assert summary["best_epoch"] == best_epoch
    assert summary["best_val"] == pytest.approx(max(h["val_acc"] for h in history))
    first_stall = next((i + 1 for i in range(1, len(vals)) if vals[i] < max(vals[:i])), None)
    assert summary["stopped_early"] == (first_stall is not None)
    assert summary["epochs"] == (first_stall or 6)
    best, meta = checkpoint.read_model_file(tmp_path / "best.pt")
    assert meta["epoch"] == best_epoch
    for k, v in best.items():
        assert torch.equal(v, model.state_dict()[k])  # the trainer handed back the best weights
    steps = _rows(tmp_path / "steps.csv")
    assert [int(r["global_step"]) for r in steps] == list(range(1, summary["global_step"] + 1))


def test_refuses_to_overwrite_a_run_and_reports_corrupt_checkpoint(tmp_path):
    _fit(0, out=tmp_path)
    with pytest.raises(ConfigError, match="resume"):
        _fit(0, out=tmp_path)
    pointer = json.loads((tmp_path / "latest.json").read_text())
    path = tmp_path / pointer["file"]
    path.write_bytes(path.read_bytes()[:100])
    train, val = _digits()
    trainer = Trainer(zoo.mlp(64, 10, [32], T=4), train, val, TrainConfig(epochs=2, progress=False), out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="corrupt"):
        trainer.fit(resume=True)


def test_bad_config_is_named():
    with pytest.raises(ConfigError, match="'lr'"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="'schedule'"):
        TrainConfig(schedule="linear")


def test_history_carries_synops_and_energy_per_epoch(tmp_path):
    from spikeflow.metrics.energy import energy, measure

    model, summary = _fit(0, out=tmp_path, epochs=2, energy_samples=8, restore_best=False)
    history = json.loads((tmp_path / "history.json").read_text())
    _, val = _digits()
    report = energy(measure(model, val[0][:8]), "45nm")  # the final weights: the last epoch's row
    assert history[-1]["synops"] == pytest.approx(report.synops) and report.synops > 0
    assert history[-1]["energy_j"] == pytest.approx(report.total_j)
    assert all(h["energy_j"] > 0 for h in history)
    assert float(_rows(tmp_path / "epochs.csv")[-1]["energy_j"]) == pytest.approx(report.total_j)
    # measuring leaves training untouched; 0 turns it off
    other, summary_off = _fit(0, epochs=2, energy_samples=0, restore_best=False)
    assert "energy_j" not in summary_off["history"][-1]
    for (k, va), vb in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(va, vb), k


def test_distillation_mixes_the_teacher_into_the_loss():
    # a linear 'ANN' on fixed data: the first step's loss is (1 - a) * CE + a * KD of the initial logits
    from spikeflow.train.losses import distillation_loss

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g), torch.arange(8) % 3
    teacher = torch.randn(8, 3, generator=g)
    for a in (1.0, 0.25):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        with torch.no_grad():
            out = model(x)
        want = (1 - a) * torch.nn.functional.cross_entropy(out, y) + a * distillation_loss(out, teacher, 3.0)
        cfg = TrainConfig(epochs=1, batch_size=8, loss="ce", progress=False, energy_samples=0, distill=a,
                          distill_temp=3.0)
        tr = Trainer(model, (x, y), None, cfg, teacher_logits=teacher)
        loss, _ = tr.train_step(x, y, teacher)
        assert loss == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ConfigError, match="teacher_logits"):
        Trainer(torch.nn.Linear(4, 3), (x, y), None, TrainConfig(batch_size=8, distill=0.5))
    with pytest.raises(ConfigError, match="teacher_logits must be"):
        Trainer(torch.nn.Linear(4, 3), (x, y), None, TrainConfig(batch_size=8, distill=0.5),
                teacher_logits=teacher[:5])
    with pytest.raises(ConfigError, match="distill"):
        TrainConfig(distill=1.5)


class _TimeMajor(torch.nn.Module):
    """``net`` on batch-major ``[B, T, in]`` samples, as the Trainer indexes its data."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1))


@pytest.mark.parametrize("rate_reg", [0.0, 0.5])
def test_train_step_runs_the_fused_pair_unless_a_regulariser_records_spikes(monkeypatch, rate_reg):
    """Without a regulariser the step records no spikes, so a user's fused LinearLIF pair trains
    through its kernel; a rate regulariser needs the hidden spikes, so the layers run one by one
    (their recording hooks must see them) and the loss holds the regulariser of those rates."""
    import spikeflow.nn as snn
    from spikeflow.kernels import pair_training
    from spikeflow.train.losses import classification_loss, rate_regularizer
    from spikeflow.train.metrics import record_spikes

    torch.manual_seed(0)
    model = _TimeMajor(snn.Sequential(snn.LinearLIF(40, 48), snn.LinearLIF(48, 5)))
    with torch.no_grad():
        for m in model.net:
            m.linear.weight.abs_().mul_(16.0)  # hidden and output spikes both
    g = torch.Generator().manual_seed(1)
    x, y = (torch.rand(16, 12, 40, generator=g) < 0.1).float(), torch.arange(16) % 5
    with torch.no_grad(), record_spikes(model) as rec:
        out = model(x)
    rates = [torch.cat(v, 1).mean(dim=(0, 1)) for v in rec.values() if v]
    want = classification_loss(out, y, "ce_count") + (rate_regularizer(rates, 0.1, rate_reg) if rate_reg else 0)
    assert len(rates) == 2 and all(0 < float(r.mean()) < 1 for r in rates)
    calls = []
    real = pair_training.linear_lif_pair
    monkeypatch.setattr(pair_training, "linear_lif_pair",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = TrainConfig(epochs=1, batch_size=16, loss="ce_count", progress=False, energy_samples=0, rate_reg=rate_reg)
    loss, _ = Trainer(model, (x, y), None, cfg).train_step(x, y)
    assert len(calls) == (0 if rate_reg else 1)
    assert loss == pytest.approx(float(want), rel=1e-6)
