"""The model and data of the data-parallel tests, shared by ``test_ddp.py`` and ``ddp_job.py``.

Every weight and bias is rounded to a multiple of 2**-6 and the digits pixels are multiples of
1/16, so each product and each sum of the first layers' matrix products is exact in float32: a
sample's membrane potentials, and so its spikes, are the same bits whatever the batch it is
computed in and whatever order the sums run in. Only the backward pass (surrogate gradients,
no threshold) rounds differently, which is what makes gradient comparisons deterministic.
"""

import torch

from spikeflow.train import TrainConfig, seed_all, zoo
from spikeflow.train.datasets import load_tensors

CONFIG = TrainConfig(epochs=1, batch_size=64, lr=0.005, seed=0, progress=False)


def dyadic_model() -> torch.nn.Module:
    seed_all(0)
    model = zoo.mlp(64, 10, [32], T=4, encoding="direct")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(p * 64) / 64)
    return model


def first_batch_data():
    """The first 128 training digits (the Trainer draws its first batch of 64 from them)."""
    x, y = load_tensors("digits", "train")
    x, y = x[:128].reshape(128, -1), y[:128]
    assert torch.equal(x * 16, torch.round(x * 16)), "digits pixels are no longer multiples of 1/16"
    return x, y
