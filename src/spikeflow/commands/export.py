"""``spikeflow export``: write a trained run as a NIR graph."""

from __future__ import annotations

from pathlib import Path

from spikeflow.commands._common import load_run, output_file, run_dir


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to NIR (HDF5)")
    p.add_argument("run", type=run_dir, help="run directory written by 'spikeflow train'")
    p.add_argument("--nir", required=True, type=output_file, help="output .nir file")
    p.set_defaults(func=run)


def run(args) -> int:
    from spikeflow.errors import ConfigError

    try:
        from spikeflow import ir
    except ImportError:
        raise ConfigError("export needs the spikeflow.ir package (NIR export), which is not installed here") from None
    model, meta = load_run(args.run)
    if not model.spiking:
        raise ConfigError(f"run {args.run} holds an ANN (neuron 'relu'); NIR export takes spiking models")
    from spikeflow.commands._timebase import run_timebase
    from spikeflow.ir.export import retimed
    from spikeflow.train.convert import fold_for_export

    tb = run_timebase(model, meta, args.run)
    spec = model.spec
    model.eval()
    net = fold_for_export(model.net)
    if spec.get("arch") in ("mlp", "recurrent") and len(tb.input_shape) > 1:
        from torch import nn

        import spikeflow.nn as snn

        net = snn.Sequential(nn.Flatten(), *net)  # NIR input keeps the sensor geometry
    # a step is one input bin of tb.dt seconds: NIR gets the true dt, the dynamics per step stay
    net = retimed(net, tb.dt)
    graph = ir.to_nir(net, input_shape=list(tb.input_shape))
    graph.metadata.update(tb.to_nir_metadata())
    ir.write(graph, Path(args.nir))
    print(f"wrote {args.nir} ({tb.describe()})")
    return 0
