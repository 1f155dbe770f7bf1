"""``spikeflow eval``: accuracy, spike rates and synaptic operations of a trained run."""

from __future__ import annotations

import math

from spikeflow.commands._common import (
    add_batch_size,
    add_json,
    add_limit,
    add_threads,
    dataset,
    emit_json,
    limited,
    load_run,
    positive_float,
    positive_int,
    run_dir,
)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run directory on a dataset split")
    p.add_argument("run", type=run_dir, help="run directory written by 'spikeflow train' or 'spikeflow convert'")
    p.add_argument("--data", default=None, type=dataset,
                   help="dataset name or path (default: the one it was trained on)")
    p.add_argument("--split", default="test", choices=["train", "test", "all"],
                   help="part of the data to evaluate ('all': a whole event file or folder)")
    p.add_argument("--T", type=positive_int, default=None,
                   help="number of time steps (default: the model's, as it was trained)")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="event files: length of one time step (bin width) in seconds (default: the run's)")
    add_batch_size(p, 256)
    add_limit(p)
    add_threads(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from spikeflow.data.datasets.byo import is_path
    from spikeflow.errors import ConfigError
    from spikeflow.train.datasets import data_options, describe, load_split
    from spikeflow.train.metrics import synaptic_operations
    from spikeflow.train.trainer import evaluate

    model, meta = load_run(args.run)
    data = args.data or meta.get("data")
    if not data:
        raise ConfigError(f"run {args.run} does not record its dataset; pass --data")
    sequence = model.spec.get("encoding") in ("sequence", "sum")
    if args.T and not sequence:
        model.time_steps = args.T
    if is_path(data):
        opts = _file_options(args, meta, data, model)
        x, y, info = load_split(data, args.split, **opts)
        if args.json != "-":
            print(describe(data, info, "--T" if args.T else "--dt" if args.dt else "the run"))
    else:
        x, y = load_split(data, args.split, **data_options(data, args.T or model.spec.get("T"), args.dt))[:2]
    keep = torch.from_numpy(limited(len(y), args.limit))
    x, y = x[keep], y[keep]
    loss = "ce" if not model.spiking else ("ce_mean" if model.spec.get("converted") else
                                           meta.get("config", {}).get("loss", "ce_max"))
    n_in = model.spec.get("in_features")
    if sequence and n_in and x.ndim >= 3 and math.prod(x.shape[2:]) != int(n_in):
        raise ConfigError(f"--data {data}: samples have {math.prod(x.shape[2:])} inputs per time step "
                          f"({list(x.shape[2:])}) but the model takes {n_in}")
    if int(y.max()) >= int(meta.get("classes") or y.max() + 1):
        raise ConfigError(f"--data {data}: labels go up to {int(y.max())} but the model has {meta['classes']} classes")
    result = evaluate(model, x, y, loss=loss, spikes=model.spiking, batch_size=args.batch_size)
    ops = synaptic_operations(model, x[:64], spiking=model.spiking)
    result.update(macs=ops.macs, acs=ops.acs, energy_pj_estimate=ops.energy_pj())
    emit_json(args.json, result)
    if args.json != "-":
        print(f"{data} {args.split}: accuracy {100 * result['accuracy']:.2f} % ({result['samples']} samples)")
        for name, rate in result.get("spike_rates", {}).items():
            print(f"  spike rate {name}: {rate:.4f} per neuron per step")
        print(f"  synaptic ops per sample: {ops.macs:.3g} MAC + {ops.acs:.3g} AC; "
              f"energy estimate {ops.energy_pj() / 1e3:.3g} nJ (45 nm figures, Horowitz 2014)")
    return 0


def _file_options(args, meta: dict, data: str, model) -> dict:
    """Event files: the binning, window, geometry and split the run recorded, with --T/--dt overrides."""
    from pathlib import Path

    from spikeflow.data.datasets.byo import sensor_for_input
    from spikeflow.train.datasets import data_options

    recorded = dict(meta.get("data_options") or {})
    same = meta.get("data") and Path(str(meta["data"])).resolve() == Path(data).resolve()
    keep = ("T", "dt", "duration_us", "sensor_size")  # the model's time base and geometry hold for any file
    opts = recorded if same else {k: v for k, v in recorded.items() if k in keep}
    if args.T or args.dt:
        opts = {k: v for k, v in opts.items() if k not in ("T", "dt")}
        opts.update(data_options(data, args.T, args.dt))
    elif not opts:
        opts = data_options(data, model.spec.get("T"))
    if "sensor_size" not in opts and model.spec.get("arch") == "conv":
        opts["sensor_size"] = list(sensor_for_input(model.spec["in_shape"]))
    return opts
