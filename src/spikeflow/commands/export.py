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
    spec = model.spec
    shape = spec["in_shape"] if spec.get("arch") == "conv" else [spec["in_features"]]
    from spikeflow.train.convert import fold_for_export

    model.eval()
    ir.write(fold_for_export(model.net), Path(args.nir), dt=float(spec.get("dt", 1e-3)),
             input_shape=[int(s) for s in shape])
    print(f"wrote {args.nir}")
    return 0
