"""``spikeflow convert``: train (or load) a ReLU ANN, convert it to an IF SNN, report accuracy against T."""

from __future__ import annotations

import json
from pathlib import Path

from spikeflow.commands._common import (
    add_batch_size,
    add_progress,
    add_threads,
    dataset,
    int_list,
    load_run,
    nonneg_int,
    output_dir,
    percentile,
    positive_float,
    positive_int,
    run_dir,
)


def register(sub) -> None:
    p = sub.add_parser("convert", help="ANN->SNN conversion with threshold balancing; accuracy against T")
    p.add_argument("--data", required=True, type=dataset, help="dataset name or file path")
    p.add_argument("--out", required=True, type=output_dir, help="output run directory (the ANN trains in OUT/ann)")
    p.add_argument("--ann", default=None, type=run_dir, help="an existing ANN run directory (skips training)")
    p.add_argument("--model", default="conv", choices=["mlp", "conv"], help="architecture of the ANN")
    p.add_argument("--hidden", type=int_list, default=None, help="hidden sizes, e.g. 256 or 256,128")
    p.add_argument("--channels", type=int_list, default=None, help="conv channels, e.g. 16,32")
    p.add_argument("--epochs", type=positive_int, default=10, help="ANN training epochs")
    add_batch_size(p)
    p.add_argument("--lr", type=positive_float, default=2e-3, help="ANN learning rate (Adam)")
    p.add_argument("--augment", default="none", choices=["none", "shift"], help="shift: images by up to 2 pixels")
    p.add_argument("--T-values", type=int_list, default=[8, 16, 32, 64],
                   help="numbers of time steps to evaluate the SNN at, e.g. 16,32,64")
    p.add_argument("--percentile", type=percentile, default=99.9,
                   help="activation percentile that sets each layer's threshold")
    p.add_argument("--calibration", type=positive_int, default=1000, help="training samples for balancing")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of every random choice")
    p.add_argument("--resume", action="store_true", help="continue the ANN's training from its last checkpoint")
    add_threads(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from spikeflow.errors import ConfigError
    from spikeflow.train import zoo
    from spikeflow.train.checkpoint import atomic_write_text, write_model
    from spikeflow.train.convert import convert
    from spikeflow.train.datasets import holdout, load_tensors
    from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all

    _check_static(args.data)
    x, y = load_tensors(args.data, "train")
    xt, yt = load_tensors(args.data, "test")
    if args.ann:
        ann, _ = load_run(args.ann)
        if ann.spiking:
            raise ConfigError(f"--ann {args.ann} holds a spiking model; conversion needs a ReLU ANN run")
    else:
        kw = {"neuron": "relu", "channels": args.channels} if args.model == "conv" else {"neuron": "relu"}
        if args.hidden:
            kw["hidden"] = args.hidden[0] if args.model == "conv" else args.hidden
        seed_all(args.seed)
        ann = zoo.for_data(args.model, x.shape[1:], int(y.max()) + 1, **kw)
        train, val = holdout(x, y, 0.1, seed=args.seed)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss="ce", seed=args.seed,
                          augment=args.augment, progress=not args.no_progress)
        Trainer(ann, train, val, cfg, out_dir=Path(args.out) / "ann", extra_meta={"data": str(args.data)}).fit(
            resume=args.resume)
    ann_acc = evaluate(ann, xt, yt, loss="ce")["accuracy"]
    g = torch.Generator().manual_seed(args.seed)
    calib = x[torch.randperm(len(y), generator=g)[: args.calibration]]
    print(f"ANN test accuracy {100 * ann_acc:.2f} %")
    rows = []
    snn = None
    for T in args.T_values:
        snn = convert(ann, calib, T=T, percentile=args.percentile)
        acc = evaluate(snn, xt, yt, loss="ce_mean")["accuracy"]
        rows.append({"T": T, "accuracy": acc, "gap_points": 100 * (ann_acc - acc)})
        print(f"SNN T={T:4d}: {100 * acc:.2f} %  (ANN - SNN = {100 * (ann_acc - acc):+.2f} points)")
    out = Path(args.out)
    from spikeflow.train.datasets import timebase_for

    timebase = timebase_for(snn, args.data, x.shape[1:], int(y.max()) + 1, "ce_mean").to_dict()
    write_model(out / "best.pt", snn, {"spec": snn.spec, "data": str(args.data), "timebase": timebase})
    atomic_write_text(out / "result.json", json.dumps({"data": str(args.data), "timebase": timebase,
                                                        "ann_accuracy": ann_acc,
                                                        "percentile": args.percentile, "snn": rows}, indent=1))
    return 0


def _check_static(data) -> None:
    """Conversion maps a ReLU ANN on static inputs to an IF SNN driven by those inputs at every step;
    event data (files, event datasets) has no such ANN here: train the SNN directly."""
    from spikeflow.data import DATASETS
    from spikeflow.data.datasets.byo import is_path
    from spikeflow.errors import ConfigError

    kind = "event files" if is_path(data) else DATASETS.get(str(data), {}).get("kind")
    if kind in ("event files", "events"):
        what = "event files" if kind == "event files" else f"{kind} data"
        raise ConfigError(f"convert --data {data}: {what}; ANN->SNN conversion takes static images (digits, "
                          f"mnist5k). Train a spiking model on it directly: spikeflow train --data {data}")
