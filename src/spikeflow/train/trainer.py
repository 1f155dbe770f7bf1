"""``Trainer``: the training loop, validation, LR schedule, early stopping, logs and resume.

Determinism and resume: the batch order of epoch ``e`` is a permutation drawn from
``seed`` and ``e``; before step ``k`` torch's global RNG is seeded from ``(seed, k, rank)``
(dropout, rate coding); the LR is a pure function of the global step. So a checkpoint
needs only the model, the optimizer and a few counters, and a resumed run replays exactly
what the killed one would have done. The per-step log ``steps.csv`` is cut back to the
checkpoint's step on resume, so it has neither gaps nor duplicates.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from spikeflow.atomic import append_line
from spikeflow.errors import CheckpointError, ConfigError, SpikeflowError
from spikeflow.train import checkpoint as ckpt
from spikeflow.train import distributed as dist_utils
from spikeflow.train.augment import augment as augment_sequences
from spikeflow.train.losses import (
    LOSSES,
    classification_loss,
    distillation_loss,
    logits,
    rate_regularizer,
    spike_regularizer,
)
from spikeflow.train.metrics import accuracy, activation_sparsity, record_spikes, spike_rates
from spikeflow.train.sparsity import Pruner, layer_targets, prune_schedule, quantize_in_place, quantized_weights

SCHEDULES = ("cosine", "constant", "step")
AUGMENTS = ("none", "shift", "time", "time_freq")  # shift: images; time, time_freq: sequences
STEP_FIELDS = ["global_step", "epoch", "step", "loss", "acc", "lr"]
EPOCH_FIELDS = ["epoch", "global_step", "train_loss", "train_acc", "val_loss", "val_acc", "synops", "energy_j", "lr",
                "seconds"]


@dataclass
class TrainConfig:
    """Training settings: epochs, batch size, AdamW learning rate and weight decay, schedule, loss,
    seed, checkpoint interval (steps), early-stopping patience (epochs), rate regularisation,
    augmentation, gradient clipping, and the training for fewer operations (``spikeflow.train.sparsity``):
    ``spike_reg`` weighs the spike regulariser (L1 on spikes, or the squared deviation of each spiking
    layer's mean rate from ``target_rate``: one value for all layers or one per layer), ``prune`` is the
    fraction of zero weights per connection layer, ``qat_bits`` the chip's weight bits for quantisation-aware
    training (0: off). ``distill`` in [0, 1] mixes knowledge distillation from a teacher's logits (given to the
    ``Trainer`` as ``teacher_logits``) into the loss: ``(1 - distill) * loss + distill * KD`` at temperature
    ``distill_temp`` (``spikeflow.train.losses.distillation_loss``). Out-of-range values raise ``ConfigError``
    naming the field.
    ``energy_samples``: the first that many validation samples are measured after every epoch for
    synaptic operations and energy per inference (``spikeflow.metrics.energy``, 45 nm); 0 = off.
    """
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    loss: str = "ce_max"
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0 = only at the end of each epoch
    patience: int = 0  # epochs without validation gain before stopping; 0 = never stop early
    restore_best: bool = True
    rate_reg: float = 0.0
    rate_target: float = 0.1
    augment: str = "none"
    grad_clip: float = 0.0
    eval_batch_size: int = 256
    progress: bool = True
    spike_reg: float = 0.0
    target_rate: Optional[list] = None
    prune: float = 0.0
    qat_bits: int = 0
    energy_samples: int = 16
    distill: float = 0.0
    distill_temp: float = 2.0

    def __post_init__(self):
        checks = {
            "epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0, "checkpoint_every": self.checkpoint_every >= 0,
            "patience": self.patience >= 0, "eval_batch_size": self.eval_batch_size >= 1,
            "rate_reg": self.rate_reg >= 0, "grad_clip": self.grad_clip >= 0, "warmup_steps": self.warmup_steps >= 0,
            "spike_reg": self.spike_reg >= 0, "prune": 0 <= self.prune < 1,
            "qat_bits": self.qat_bits == 0 or self.qat_bits >= 2,
            "target_rate": self.target_rate is None or (len(self.target_rate) > 0 and all(
                0 <= float(t) <= 1 for t in self.target_rate)),
            "energy_samples": self.energy_samples >= 0,
            "distill": 0 <= self.distill <= 1, "distill_temp": self.distill_temp > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"training config: '{name}' is out of range (got {getattr(self, name)!r})")
        for name, valid in (("schedule", SCHEDULES), ("loss", LOSSES), ("augment", AUGMENTS)):
            if getattr(self, name) not in valid:
                raise ConfigError(f"training config: '{name}' must be one of {valid}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix-like), stable across runs and machines."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def seed_all(seed: int) -> None:
    """Seed torch's global RNG; call it before building a model so its initial weights repeat."""
    torch.manual_seed(_mix(seed, 0x5EED))


def _shift(x: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Random integer translation of image batches ``[B, C, H, W]`` (zero fill)."""
    if x.dim() < 4:
        return x
    b = x.shape[0]
    pad = torch.nn.functional.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (b,))
    dy = torch.randint(0, 2 * max_shift + 1, (b,))
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i in range(b):
        out[i] = pad[i, ..., dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


class Trainer:
    """Trains ``model`` (a zoo ``Classifier`` or any module with the same output convention).

    Args:
        model: returns ``[T, B, C]`` readout or ``[B, C]`` logits.
        train: ``(x, y)`` tensors; val: ``(x, y)`` or ``None``.
        out_dir: run directory (checkpoints, logs, best model); ``None`` keeps nothing on disk.
        spec: JSON-able description stored with checkpoints (``zoo.build(spec)`` rebuilds the model).
        teacher_logits: ``[N, C]`` a teacher's logits for each training sample (``config.distill > 0``).
        on_epoch: called with the number of epochs done after each epoch's validation (e.g. to keep a
            snapshot of the weights part way through).
    """

    def __init__(self, model: nn.Module, train, val=None, config: Optional[TrainConfig] = None,
                 out_dir: Optional[str | Path] = None, spec: Optional[dict] = None, extra_meta: Optional[dict] = None,
                 teacher_logits: Optional[torch.Tensor] = None, on_epoch: Optional[Callable[[int], None]] = None):
        self.config = config or TrainConfig()
        self.on_epoch = on_epoch
        self.model = model
        self.x, self.y = train
        if len(self.y) != len(self.x):
            raise ConfigError(f"training data: {len(self.x)} inputs but {len(self.y)} labels")
        if (self.config.distill > 0) != (teacher_logits is not None):
            raise ConfigError("training config: 'distill' > 0 needs teacher_logits, and teacher_logits need "
                              f"'distill' > 0 (got distill={self.config.distill!r})")
        if teacher_logits is not None and (teacher_logits.dim() != 2 or len(teacher_logits) != len(self.y)):
            raise ConfigError(f"training data: teacher_logits must be [{len(self.y)}, classes], "
                              f"got shape {tuple(teacher_logits.shape)}")
        self.teacher_logits = teacher_logits.detach().float() if teacher_logits is not None else None
        self.val = val
        self.out = Path(out_dir) if out_dir is not None else None
        self.spec = spec if spec is not None else getattr(model, "spec", None)
        self.extra_meta = extra_meta or {}
        self.rank, self.world = dist_utils.rank_world()
        if self.config.batch_size % self.world:
            raise ConfigError(
                f"training config: batch_size {self.config.batch_size} must be divisible by the {self.world} processes"
            )
        if len(self.y) < self.config.batch_size:
            raise ConfigError(f"training data: {len(self.y)} samples, fewer than one batch ({self.config.batch_size})")
        torch.manual_seed(self.config.seed)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)
        self.ddp_model = dist_utils.wrap(model) if self.world > 1 else model
        self.steps_per_epoch = len(self.y) // self.config.batch_size
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.pruner = Pruner(model) if self.config.prune > 0 else None
        self._reset_counters()

    def close(self) -> None:
        """Drops the data-parallel wrapper before the process leaves its group (the model stays usable).

        A wrapper still alive at interpreter exit holds gloo's process group and the tensors of its last
        work; released during the interpreter's finalization they can abort the process (SIGABRT)."""
        self.ddp_model = self.model

    # -- state -----------------------------------------------------------------------------
    def _reset_counters(self):
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_val, self.best_epoch, self.bad_epochs = -1.0, -1, 0
        self.history: list[dict] = []
        self.running = {"loss": 0.0, "correct": 0.0, "count": 0}
        self.stopped_early = False

    def _meta(self) -> dict:
        return {
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "best_val": self.best_val, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "history": self.history, "running": self.running, "stopped_early": self.stopped_early,
            "config": asdict(self.config), "spec": self.spec, "world": self.world, **self.extra_meta,
        }

    def save_checkpoint(self) -> None:
        if self.out is None or self.rank != 0:
            return
        state = {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                 "optimizer": self.optimizer.state_dict()}
        ckpt.write_checkpoint(self.out, self.global_step, state, self._meta())

    def load_checkpoint(self) -> bool:
        """Restore the latest checkpoint of ``out_dir``; ``False`` when there is none."""
        if self.out is None or not ckpt.has_checkpoint(self.out):
            return False
        state, meta = ckpt.read_checkpoint(self.out)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint {self.out / meta['file']} does not fit this model/optimizer: {str(err).splitlines()[0]}"
            ) from None
        for key in ("epoch", "step_in_epoch", "global_step", "best_val", "best_epoch", "bad_epochs",
                    "history", "running", "stopped_early"):
            setattr(self, key, meta[key])
        self._truncate_step_log()
        if self.pruner is not None:  # the masks are the zero weights of the checkpoint
            self.pruner.fraction = prune_schedule(self.config.prune, self.epoch - 1, self.config.epochs) \
                if self.epoch else 0.0
            self.pruner.masks = {k: (m.weight != 0).to(m.weight.dtype) for k, m in self.pruner.layers.items()}
        return True

    # -- logs ------------------------------------------------------------------------------
    def _truncate_step_log(self):
        path = self.out / "steps.csv"
        if self.rank != 0 or not path.is_file():
            return
        rows = []
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["global_step"]) <= self.global_step and row.get("lr"):
                        rows.append(row)
                except (TypeError, ValueError):
                    continue  # a line cut by the kill
        text = ",".join(STEP_FIELDS) + "\n" + "".join(",".join(r[k] for k in STEP_FIELDS) + "\n" for r in rows)
        ckpt.atomic_write_text(path, text)

    def _log_step(self, loss: float, acc: float, lr: float):
        if self.out is None or self.rank != 0:
            return
        append_line(self.out / "steps.csv", f"{self.global_step},{self.epoch},{self.step_in_epoch},{loss:.6g},"
                    f"{acc:.6g},{lr:.6g}", header=",".join(STEP_FIELDS))

    def _write_epoch_logs(self):
        if self.out is None or self.rank != 0:
            return
        text = ",".join(EPOCH_FIELDS) + "\n" + "".join(
            ",".join(str(h.get(k, "")) for k in EPOCH_FIELDS) + "\n" for h in self.history)
        ckpt.atomic_write_text(self.out / "epochs.csv", text)
        ckpt.atomic_write_text(self.out / "history.json", json.dumps(self.history, indent=1))

    # -- schedule --------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        c = self.config
        if c.warmup_steps and step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        if c.schedule == "constant":
            return c.lr
        frac = step / max(1, self.total_steps)
        if c.schedule == "step":
            return c.lr * (0.1 ** int(frac * 3))
        return 0.5 * c.lr * (1 + math.cos(math.pi * frac))

    def _batch_indices(self, epoch: int, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_mix(self.config.seed, epoch))
        perm = torch.randperm(len(self.y), generator=g)
        b = self.config.batch_size
        return perm[k * b:(k + 1) * b][self.rank::self.world]

    # -- loop ------------------------------------------------------------------------------
    def train_step(self, xb: torch.Tensor, yb: torch.Tensor, teacher: Optional[torch.Tensor] = None
                   ) -> tuple[float, float]:
        c = self.config
        self.model.train()
        if c.augment == "shift":
            xb = _shift(xb)
        elif c.augment in ("time", "time_freq"):
            xb = augment_sequences(xb, c.augment)
        lr = self.lr_at(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        regularise = c.rate_reg > 0 or c.spike_reg > 0
        with quantized_weights(self.model, c.qat_bits):  # QAT: forward and backward on the chip's grid
            # spikes are recorded only for a regulariser: the recording hooks make fused layers run
            # unfused (spikeflow.nn.Sequential runs a layer as its hooks must see it)
            with record_spikes(self.model, keep_graph=True) if regularise else contextlib.nullcontext() as rec:
                out = self.ddp_model(xb)
            loss = classification_loss(out, yb, c.loss)
            if teacher is not None and c.distill > 0:
                kd = distillation_loss(logits(out, c.loss), teacher, c.distill_temp)
                loss = (1 - c.distill) * loss + c.distill * kd
            if regularise:
                rates = [torch.cat(v, 1).mean(dim=(0, 1)) for v in rec.values() if v]  # per neuron
                if c.rate_reg > 0:
                    loss = loss + rate_regularizer(rates, c.rate_target, c.rate_reg)
                if c.spike_reg > 0:
                    targets = layer_targets(c.target_rate, [k for k, v in rec.items() if v])
                    loss = loss + spike_regularizer(rates, c.spike_reg, targets)
            loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        if self.pruner is not None:
            self.pruner.apply()  # pruned weights stay zero
        return float(loss.detach()), accuracy(logits(out.detach(), c.loss), yb)

    def fit(self, resume: bool = False) -> dict:
        """Train for ``config.epochs`` (continuing from the last checkpoint when ``resume``)."""
        c = self.config
        resumed = self.load_checkpoint() if resume else False
        if not resumed and self.out is not None and self.rank == 0:
            if ckpt.has_checkpoint(self.out):
                raise ConfigError(f"run directory {self.out} already holds a run; pass resume=True (--resume) "
                                  f"to continue it, or choose another directory")
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "steps.csv").unlink(missing_ok=True)
        dist_utils.barrier()
        while self.epoch < c.epochs and not self.stopped_early:
            t0 = time.time()
            bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch,
                       desc=f"epoch {self.epoch + 1}/{c.epochs}",
                       disable=not c.progress or self.rank != 0, leave=False, dynamic_ncols=True)
            while self.step_in_epoch < self.steps_per_epoch:
                idx = self._batch_indices(self.epoch, self.step_in_epoch)
                torch.manual_seed(_mix(c.seed, self.global_step, self.rank, 1))
                teacher = self.teacher_logits[idx] if self.teacher_logits is not None else None
                loss, acc = self.train_step(self.x[idx], self.y[idx], teacher)
                self.running["loss"] += loss
                self.running["correct"] += acc * len(idx)
                self.running["count"] += len(idx)
                self.step_in_epoch += 1
                self.global_step += 1
                self._log_step(loss, acc, self.lr_at(self.global_step - 1))
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
                if c.checkpoint_every and self.global_step % c.checkpoint_every == 0 \
                        and self.step_in_epoch < self.steps_per_epoch:
                    self.save_checkpoint()
            bar.close()
            self._end_epoch(time.time() - t0)
            self.save_checkpoint()
            dist_utils.barrier()
        if c.restore_best and self.out is not None and (self.out / ckpt.BEST).is_file():
            state, _ = ckpt.read_model_file(self.out / ckpt.BEST)
            self.model.load_state_dict(state)
        quantize_in_place(self.model, c.qat_bits)  # the trained weights on the chip's grid
        return {"epochs": self.epoch, "global_step": self.global_step, "best_val": self.best_val,
                "best_epoch": self.best_epoch, "history": self.history, "stopped_early": self.stopped_early}

    def _end_epoch(self, seconds: float):
        c = self.config
        if self.pruner is not None:
            self.pruner.update(prune_schedule(c.prune, self.epoch, c.epochs))
        with quantized_weights(self.model, c.qat_bits):  # validate and keep the model as the chip would hold it
            self._finish_epoch(seconds)

    def _finish_epoch(self, seconds: float):
        c = self.config
        n = max(1, self.running["count"])
        row = {"epoch": self.epoch + 1, "global_step": self.global_step,
               "train_loss": self.running["loss"] / max(1, self.step_in_epoch),
               "train_acc": self.running["correct"] / n, "lr": self.lr_at(max(0, self.global_step - 1)),
               "seconds": round(seconds, 3)}
        metric = row["train_acc"]
        if self.val is not None:
            if self.rank == 0:
                ev = self.evaluate(*self.val)
                vals = torch.tensor([ev["loss"], ev["accuracy"]], dtype=torch.float64)
            else:
                vals = torch.zeros(2, dtype=torch.float64)
            vals = dist_utils.broadcast(vals)
            row["val_loss"], row["val_acc"] = float(vals[0]), float(vals[1])
            metric = row["val_acc"]
            if self.rank == 0 and c.energy_samples:
                row.update(self._energy(self.val[0][:c.energy_samples]))
        if self.rank == 0 and c.progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        self.history.append(row)
        self.epoch += 1
        self.step_in_epoch = 0
        self.running = {"loss": 0.0, "correct": 0.0, "count": 0}
        if self.pruner is not None and self.pruner.fraction < c.prune:
            pass  # while pruning ramps up, no epoch is the best: the kept model has all its zeros
        elif metric >= self.best_val:  # ties go to the later (longer-trained) epoch
            self.best_val, self.best_epoch, self.bad_epochs = metric, self.epoch, 0
            if self.out is not None and self.rank == 0:
                ckpt.write_model(self.out / ckpt.BEST, self.model, {"spec": self.spec, "epoch": self.epoch,
                                                                      "val_acc": metric, **self.extra_meta})
        else:
            self.bad_epochs += 1
            if c.patience and self.bad_epochs >= c.patience:
                self.stopped_early = True
        self._write_epoch_logs()
        if self.on_epoch is not None:
            self.on_epoch(self.epoch)

    def _energy(self, x: torch.Tensor) -> dict:
        """Synaptic operations and energy (J, 45 nm with memory traffic) per inference on ``x``; none
        for a model the energy model cannot count (said once)."""
        from spikeflow.metrics.energy import energy, measure

        try:
            report = energy(measure(self.model, x), "45nm")
        except SpikeflowError as e:
            if self.config.progress and not getattr(self, "_energy_note", False):
                tqdm.write(f"note: no energy per epoch: {e}")
            self._energy_note = True
            return {}
        return {"synops": report.synops, "energy_j": report.total_j}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, spikes: bool = False) -> dict:
        return evaluate(self.model, x, y, loss=self.config.loss, batch_size=self.config.eval_batch_size,
                        seed=self.config.seed, spikes=spikes)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str = "ce_max", batch_size: int = 256,
             seed: int = 0, spikes: bool = False) -> dict:
    """Accuracy and loss on ``(x, y)``; with ``spikes`` also per-layer spike rates and sparsity."""
    was_training = model.training
    model.eval()
    torch.manual_seed(_mix(seed, 0xE7A1))
    total_loss, correct = 0.0, 0.0
    rates: dict[str, float] = {}
    sparsity = []
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        with record_spikes(model) as rec:
            out = model(xb)
        total_loss += float(classification_loss(out, yb, loss)) * len(yb)
        correct += accuracy(logits(out, loss), yb) * len(yb)
        if spikes:
            for k, v in spike_rates(rec).items():
                rates[k] = rates.get(k, 0.0) + v * len(yb)
            sparsity.append(activation_sparsity(rec) * len(yb))
    model.train(was_training)
    n = max(1, len(y))
    result = {"accuracy": correct / n, "loss": total_loss / n, "samples": len(y)}
    if spikes:
        result["spike_rates"] = {k: v / n for k, v in rates.items()}
        result["activation_sparsity"] = sum(sparsity) / n
    return result
