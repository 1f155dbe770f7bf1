"""``spikeflow sim``: large spiking-network simulations (``spikeflow.sim``).

``spikeflow sim cuba --neurons 4000`` runs the CUBA benchmark for 1 s of biological time
and prints the build time, loop time, firing statistics and peak memory;
``--nproc N`` splits it over N local processes (``torchrun ... -m spikeflow sim cuba``
does the same across machines).
"""

from __future__ import annotations

import os
import resource
import time

from spikeflow.commands._common import (
    add_json,
    add_progress,
    add_threads,
    emit_json,
    nonneg_int,
    output_file,
    positive_float,
    positive_int,
)


def register(sub) -> None:
    p = sub.add_parser("sim", help="simulate large spiking networks (CUBA benchmark)")
    ssub = p.add_subparsers(dest="sim_command", metavar="NETWORK", required=True)
    c = ssub.add_parser("cuba", help="Vogels & Abbott CUBA network (Brette et al. 2007, Benchmark 2)")
    c.add_argument("--neurons", type=positive_int, default=4000, help="number of neurons (fan-out 80 above 4,000)")
    c.add_argument("--seed", type=nonneg_int, default=1, help="seed of the network and its initial state")
    c.add_argument("--duration", type=positive_float, default=1.0, help="biological time in seconds")
    c.add_argument("--dt", type=positive_float, default=1e-4, help="length of one time step in seconds")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="state precision")
    add_threads(c)
    c.add_argument("--nproc", type=positive_int, default=1, help="local processes (torch.distributed, gloo)")
    c.add_argument("--no-record", action="store_true", help="do not record spikes (no rate/CV)")
    c.add_argument("--out", default=None, type=output_file, help="write spikes (indices, times) to this .npz")
    add_json(c)
    add_progress(c)
    c.set_defaults(func=run_cuba)


def _child_argv(args):
    """The same ``sim cuba`` command for each spawned process (without ``--nproc``)."""
    argv = ["sim", "cuba", "--neurons", str(args.neurons), "--seed", str(args.seed), "--duration",
            repr(args.duration), "--dt", repr(args.dt), "--dtype", args.dtype]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    for flag in ("no_record", "no_progress"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    if args.json:
        argv += ["--json", args.json]
    if args.out:
        argv += ["--out", args.out]
    return argv


def run_cuba(args) -> int:
    import numpy as np

    from spikeflow.atomic import atomic_output
    from spikeflow.sim import cuba, distributed
    from spikeflow.sim.stats import cv_isi, mean_rate

    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return distributed.spawn(_child_argv(args), args.nproc, args.threads)
    rank, world = distributed.init_from_env()
    t0 = time.perf_counter()
    net, mons = cuba.build(args.neurons, args.seed, dt=args.dt, dtype=args.dtype, threads=args.threads,
                           record=not args.no_record)
    net.build(rank, world)
    net.run(args.duration, progress=not args.no_progress)
    total = time.perf_counter() - t0
    result = {"neurons": args.neurons, "processes": world, "synapses_rank0": net.n_synapses_local,
              "build_s": round(net.timings["build"], 3), "compile_s": round(net.timings["compile"], 3),
              "loop_s": round(net.timings["run"], 3),
              "total_s": round(total, 3),
              "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if mons is not None:
        idx, t = cuba.spikes(net, mons)
        result.update(spikes=int(idx.size), rate_hz=round(mean_rate(idx, args.neurons, args.duration), 4),
                      cv_isi=round(cv_isi(idx, t), 4))
        if args.out and rank == 0:
            with atomic_output(args.out, "wb") as fh:
                np.savez(fh, indices=idx.astype(np.int32), times=t)
    if rank == 0:
        emit_json(args.json, result)
        if args.json != "-":
            for k, v in result.items():
                print(f"{k:14s} {v}")
    distributed.shutdown()
    return 0
