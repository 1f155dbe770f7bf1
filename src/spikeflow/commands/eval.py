"""``spikeflow eval``: accuracy, spike rates and synaptic operations of a trained run."""

from __future__ import annotations

from spikeflow.commands._common import (
    add_batch_size,
    add_json,
    add_limit,
    add_threads,
    dataset,
    emit_json,
    limited,
    load_run,
    positive_int,
    run_dir,
)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run directory on a dataset split")
    p.add_argument("run", type=run_dir, help="run directory written by 'spikeflow train' or 'spikeflow convert'")
    p.add_argument("--data", default=None, type=dataset,
                   help="dataset name or path (default: the one it was trained on)")
    p.add_argument("--split", default="test", choices=["train", "test"], help="part of the data to evaluate")
    p.add_argument("--T", type=positive_int, default=None,
                   help="number of time steps (default: the model's, as it was trained)")
    add_batch_size(p, 256)
    add_limit(p)
    add_threads(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from spikeflow.errors import ConfigError
    from spikeflow.train.datasets import data_options, load_tensors
    from spikeflow.train.metrics import synaptic_operations
    from spikeflow.train.trainer import evaluate

    model, meta = load_run(args.run)
    data = args.data or meta.get("data")
    if not data:
        raise ConfigError(f"run {args.run} does not record its dataset; pass --data")
    sequence = model.spec.get("encoding") in ("sequence", "sum")
    if args.T and not sequence:
        model.time_steps = args.T
    x, y = load_tensors(data, args.split, **data_options(data, args.T or model.spec.get("T")))
    keep = torch.from_numpy(limited(len(y), args.limit))
    x, y = x[keep], y[keep]
    loss = "ce" if not model.spiking else ("ce_mean" if model.spec.get("converted") else
                                           meta.get("config", {}).get("loss", "ce_max"))
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
