"""Data-parallel helpers: torch.distributed with gloo on CPU (nccl on GPU), started by torchrun.

Each process reads ``RANK``/``WORLD_SIZE`` from the environment torchrun sets; a single
process needs nothing. ``launch`` re-runs a command under ``torch.distributed.run``.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import torch
import torch.distributed as dist


def init_from_env() -> tuple[int, int]:
    """Join the process group when started by torchrun; returns ``(rank, world_size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return rank_world()


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()


def broadcast(t: torch.Tensor) -> torch.Tensor:
    if rank_world()[1] > 1:
        dist.broadcast(t, 0)
    return t


def shutdown() -> None:
    """Leaves the process group once every rank is here (after ``Trainer.close``): the objects that
    still hold the group are collected first, and no rank tears the group down while another uses it."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def launch(nproc: int, module_args: list[str], env: dict | None = None) -> int:
    """Run ``python -m <module_args>`` in ``nproc`` processes under torchrun; returns its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", *module_args]
    return subprocess.call(cmd, env={**os.environ, **(env or {})})
