"""One rank of a data-parallel training step, run in a subprocess by ``test_ddp.py``.

usage: python ddp_job.py OUT_DIR  (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment)

Builds the shared test model (``ddp_model``), joins the process group through the Trainer's own
helpers, takes the Trainer's first step on this rank's share of the first batch and saves the
(DDP-averaged) gradient and the parameters after the step to ``OUT_DIR/rank<R>.pt``.
"""

import os
import sys

import torch

from spikeflow.train import distributed as dist_utils
from spikeflow.train.trainer import Trainer, _mix

sys.path.insert(0, os.path.dirname(__file__))
from ddp_model import CONFIG, dyadic_model, first_batch_data  # noqa: E402


def main():
    out = sys.argv[1]
    rank, world = dist_utils.init_from_env()
    torch.set_num_threads(1)
    model = dyadic_model()
    trainer = Trainer(model, first_batch_data(), None, CONFIG)
    assert (trainer.rank, trainer.world) == (rank, world)
    idx = trainer._batch_indices(0, 0)
    torch.manual_seed(_mix(CONFIG.seed, 0, rank, 1))  # as Trainer.fit does before each step
    trainer.train_step(trainer.x[idx], trainer.y[idx])
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    torch.save({"grads": grads, "params": params, "indices": idx}, os.path.join(out, f"rank{rank}.pt"))
    trainer.close()
    dist_utils.shutdown()


if __name__ == "__main__":
    main()
