"""A small, deterministic digits training job run in a subprocess by the tests.

usage: python digits_job.py OUT_DIR [--kill-at STEP]
With --kill-at the process SIGKILLs itself in the middle of training step STEP (after the
forward pass), like ``kill -9`` from outside. It always resumes when OUT_DIR has a checkpoint.
"""

import json
import os
import signal
import sys

import torch

from spikeflow.train import TrainConfig, Trainer, evaluate, seed_all, zoo
from spikeflow.train.datasets import holdout, load_tensors


def main():
    out = sys.argv[1]
    kill_at = int(sys.argv[sys.argv.index("--kill-at") + 1]) if "--kill-at" in sys.argv else None
    torch.set_num_threads(1)
    x, y = load_tensors("digits", "train")
    train, val = holdout(x, y, 0.1, seed=0)
    seed_all(3)
    model = zoo.mlp(64, 10, [32], T=4, encoding="rate", dropout=0.1)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=5e-3, seed=3, checkpoint_every=7, progress=False)
    trainer = Trainer(model, train, val, cfg, out_dir=out)
    if kill_at is not None:
        calls = {"n": 0}

        def hook(mod, inp, out):
            calls["n"] += 1
            if calls["n"] == kill_at and mod.training:
                os.kill(os.getpid(), signal.SIGKILL)

        model.register_forward_hook(hook)
    trainer.fit(resume=True)
    xt, yt = load_tensors("digits", "test")
    result = evaluate(model, xt, yt, loss=cfg.loss)
    with open(os.path.join(out, "final.json"), "w") as f:
        json.dump({"test_accuracy": result["accuracy"], "test_loss": result["loss"]}, f)


if __name__ == "__main__":
    main()
