"""Multi-process runs with ``torch.distributed`` (gloo, CPU).

Each process (rank) owns a contiguous slice of the global neuron index and the synapses
onto it; :meth:`Network.run` exchanges the spikes of every ``min_delay`` interval with
``all_gather``. Start the processes with ``torchrun`` (any number of machines) or with
:func:`spawn` (one machine); both set the standard ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/
``MASTER_PORT`` variables that :func:`init_from_env` reads.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from spikeflow.errors import ConfigError


def init_from_env(backend: str = "gloo"):
    """Join the process group described by the environment; returns ``(rank, world_size)``."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise ConfigError(f"distributed run: environment variable {var} is not set (WORLD_SIZE={world}); "
                                  f"start with torchrun or spikeflow sim ... --nproc N")
        dist.init_process_group(backend, init_method="env://")
    return dist.get_rank(), dist.get_world_size()


def shutdown():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv, nproc: int, threads_per_rank: int | None = None) -> int:
    """Run ``python -m spikeflow *argv`` in ``nproc`` local processes forming one group.

    Returns the first non-zero exit code (0 when all succeed)."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    port = free_port()
    procs = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        if threads_per_rank:
            env["NUMBA_NUM_THREADS"] = str(threads_per_rank)
        procs.append(subprocess.Popen([sys.executable, "-m", "spikeflow", *argv], env=env))
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c != 0), 0)
