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
    open_fraction,
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
                   help="numbers of time steps to evaluate the SNN at, e.g. 16,32,64 (event data: the window cut "
                        "into that many steps; the last one is the saved model's)")
    p.add_argument("--test-data", type=dataset, default=None,
                   help="event files: the test part, when --data holds only the training part")
    p.add_argument("--test-frac", type=open_fraction, default=None,
                   help="event files: hold out this fraction of --data as the test part")
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

    from spikeflow.data.datasets.byo import is_path
    from spikeflow.errors import ConfigError
    from spikeflow.train import zoo
    from spikeflow.train.checkpoint import atomic_write_text, write_model
    from spikeflow.train.convert import convert
    from spikeflow.train.datasets import data_kind, data_options, describe, holdout, load_split, timebase_for
    from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all

    kind, _ = data_kind(args.data)
    if kind == "sequence":
        raise ConfigError(f"convert --data {args.data}: frame sequences (MFCCs); conversion takes images or event "
                          f"data. Train a spiking model on it directly: spikeflow train --data {args.data}")
    events = kind == "events"  # the ANN sees each sample's frames summed; the SNN gets them step by step
    data = str(Path(args.data).resolve()) if is_path(args.data) else args.data
    geometry = {}

    def load(split, T=None):
        opts = data_options(args.data, T if events else None, test_path=args.test_data, test_frac=args.test_frac)
        return load_split(args.data, split, **opts, **geometry)

    x, y, info = load("train", args.T_values[0])
    if info:  # event files: every part and every T bins over the same sensor and window
        geometry = {"sensor_size": info["sensor_size"], "duration_us": info["duration_us"]}
        print(describe(args.data, info, "--T-values"))
    xt, yt, _ = load("test", args.T_values[0])
    classes = max(int(y.max()) + 1, int(info.get("classes", 0)))
    if args.ann:
        ann, _ = load_run(args.ann)
        if ann.spiking:
            raise ConfigError(f"--ann {args.ann} holds a spiking model; conversion needs a ReLU ANN run")
    else:
        kw = {"neuron": "relu", "channels": args.channels} if args.model == "conv" else {"neuron": "relu"}
        if args.hidden:
            kw["hidden"] = args.hidden[0] if args.model == "conv" else args.hidden
        seed_all(args.seed)
        ann = zoo.for_data(args.model, x.shape[1:], classes, **kw)
        train, val = holdout(x, y, 0.1, seed=args.seed)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss="ce", seed=args.seed,
                          augment=args.augment, progress=not args.no_progress)
        Trainer(ann, train, val, cfg, out_dir=Path(args.out) / "ann", extra_meta={"data": data}).fit(
            resume=args.resume)
    ann_acc = evaluate(ann, xt, yt, loss="ce")["accuracy"]
    g = torch.Generator().manual_seed(args.seed)
    calib = x[torch.randperm(len(y), generator=g)[: args.calibration]]
    print(f"ANN test accuracy {100 * ann_acc:.2f} %")
    rows = []
    snn = None
    for T in args.T_values:
        if events:  # the same recordings cut into T steps
            xt, yt, _ = load("test", T)
        snn = convert(ann, calib, T=T, percentile=args.percentile)
        acc = evaluate(snn, xt, yt, loss="ce_mean")["accuracy"]
        rows.append({"T": T, "accuracy": acc, "gap_points": 100 * (ann_acc - acc)})
        print(f"SNN T={T:4d}: {100 * acc:.2f} %  (ANN - SNN = {100 * (ann_acc - acc):+.2f} points)")
    out = Path(args.out)
    timebase = timebase_for(snn, data, xt.shape[1:], classes, "ce_mean",
                            window_us=info.get("duration_us")).to_dict()
    meta = {"spec": snn.spec, "data": data, "timebase": timebase}
    if info:
        meta["data_options"] = {**data_options(args.data, args.T_values[-1], test_path=args.test_data,
                                               test_frac=args.test_frac), **geometry}
    write_model(out / "best.pt", snn, meta)
    atomic_write_text(out / "result.json", json.dumps({"data": data, "timebase": timebase, "ann_accuracy": ann_acc,
                                                        "percentile": args.percentile, "snn": rows}, indent=1))
    return 0
