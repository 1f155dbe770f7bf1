"""``spikeflow eval``: accuracy, spike rates and synaptic operations of a trained run."""

from __future__ import annotations

from spikeflow.commands._common import (
    add_batch_size,
    add_json,
    add_limit,
    add_split,
    add_threads,
    add_time,
    dataset,
    emit_json,
    load_run,
    run_dir,
)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run directory on a dataset split")
    p.add_argument("run", type=run_dir, help="run directory written by 'spikeflow train' or 'spikeflow convert'")
    p.add_argument("--data", default=None, type=dataset,
                   help="dataset name or path (default: the one it was trained on)")
    add_split(p)
    add_time(p, "number of time steps (event data: bins over the recorded window; default: the run's time base)",
             "length of one time step in seconds (event data: the bin width; default: the run's time base)")
    add_batch_size(p, 256)
    add_limit(p)
    add_threads(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from spikeflow.commands._timebase import apply_overrides, run_timebase
    from spikeflow.data.modelinput import model_steps
    from spikeflow.errors import ConfigError, SpikeflowError
    from spikeflow.metrics.energy import energy, measure
    from spikeflow.train.trainer import evaluate

    model, meta = load_run(args.run)
    trained = run_timebase(model, meta, args.run)
    tb, overridden = apply_overrides(trained, args.dt, args.T)
    if model.spiking and tb.dt != trained.dt:
        # steps of another width: the neurons keep their time constants in seconds, as a NIR
        # reader running the exported file at that dt would (export scales tau by bin / neuron dt)
        from spikeflow.ir.export import retimed

        model.net = retimed(model.net, float(model.spec.get("dt", 1e-3)) * tb.dt / trained.dt, same_steps=False)
    data = args.data or tb.data or meta.get("data")
    if not data:
        raise ConfigError(f"run {args.run} does not record its dataset; pass --data")
    loss = "ce" if not model.spiking else ("ce_mean" if model.spec.get("converted") else
                                           meta.get("config", {}).get("loss", "ce_max"))
    if model.spiking:
        # the inputs every later command sees: binned/encoded with the run's time base
        steps, y = model_steps(data, args.split, tb, limit=args.limit, overridden=overridden,
                               load=_recorded_split(meta, data))
        x = torch.from_numpy(steps).transpose(0, 1)  # [N, T, ...]
        model.encoding = "sequence"
        model.time_steps = tb.T
    else:
        from spikeflow.data.modelinput import spread
        from spikeflow.train.datasets import data_options, load_tensors

        x, y = load_tensors(data, args.split, **data_options(data, tb.T if not tb.static else None))
        keep = torch.from_numpy(spread(len(y), args.limit))
        x, y = x[keep], y[keep]
        tb.check_fits(x.shape[2:] if tb.encoding in ("events", "sequence") else x.shape[1:],
                      int(y.max()) + 1, f"--data {data}")
    y = torch.as_tensor(y)
    result = evaluate(model, x, y, loss=loss, spikes=model.spiking, batch_size=args.batch_size)
    result["timebase"] = tb.to_dict()
    try:  # 45 nm with memory traffic (docs/energy.md), on the first 64 samples
        ops = energy(measure(model, x[:64]), "45nm")
        result.update(macs=ops.macs, acs=ops.acs, synops=ops.synops, energy_j=ops.total_j, energy=ops.as_dict())
    except SpikeflowError as e:
        ops, note = None, f"  no energy estimate: {e}"
    emit_json(args.json, result)
    if args.json != "-":
        print(f"{data} {args.split}: accuracy {100 * result['accuracy']:.2f} % ({result['samples']} samples)")
        for name, rate in result.get("spike_rates", {}).items():
            print(f"  spike rate {name}: {rate:.4f} per neuron per step")
        if ops is None:
            print(note)
        else:
            print(f"  synaptic ops per sample: {ops.macs:.3g} MAC + {ops.acs:.3g} AC; energy estimate "
                  f"{ops.total_j * 1e9:.3g} nJ (45 nm figures of Horowitz 2014, memory access counted)")
    return 0


def _recorded_split(meta: dict, data) -> dict:
    """The test part a run recorded for its own event files (``--test-data``, ``--test-frac``)."""
    from pathlib import Path

    from spikeflow.data.datasets.byo import is_path

    recorded = meta.get("data_options") or {}
    same = is_path(data) and meta.get("data") and Path(str(meta["data"])).resolve() == Path(data).resolve()
    return {k: recorded[k] for k in ("test_path", "test_frac") if same and k in recorded}
