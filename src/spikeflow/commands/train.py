"""``spikeflow train``: train a zoo model on a dataset, with checkpoints, resume and DDP."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from spikeflow.commands._common import int_list, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("train", help="train a spiking (or ANN) model from the zoo on a dataset")
    p.add_argument("--data", required=True, help="dataset name (digits, mnist5k, nmnist5k, fsdd, ...) or file path")
    p.add_argument("--model", default="mlp", choices=["mlp", "conv", "recurrent"])
    p.add_argument("--neuron", default="lif", choices=["lif", "alif", "cuba", "if", "relu"],
                   help="neuron type ('relu' trains the same-shape ANN)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, best model)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "constant", "step"])
    p.add_argument("--loss", default=None, help="ce_max, ce_mean, ce_last, ce_count, mse_count, first_spike, ce")
    p.add_argument("--T", type=positive_int, default=None,
                   help="time steps for static inputs; time bins for event data (nmnist5k: 6, as the demo); "
                        "MFCC frames kept for fsdd")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="event files: bin width in seconds (instead of --T; default: the window in 16 bins)")
    p.add_argument("--test-data", default=None,
                   help="event files: the test file/folder when --data is the training file/folder")
    p.add_argument("--test-frac", type=float, default=None,
                   help="event files: hold out this fraction of a single file/folder as the test split "
                        "(stratified, fixed seed; recorded in the run so eval uses the same split). A single "
                        "file without --test-data or --test-frac is an error: nothing is split silently")
    p.add_argument("--encoding", default=None, choices=["direct", "rate"], help="coding of static inputs")
    p.add_argument("--readout", default="li", choices=["li", "spike"])
    p.add_argument("--hidden", type=int_list, default=None, help="hidden sizes, e.g. 256 or 256,128")
    p.add_argument("--channels", type=int_list, default=None, help="conv channels, e.g. 16,32")
    p.add_argument("--tau-mem", type=positive_float, default=None, help="membrane time constant (s)")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--learn-tau", action="store_true", help="learn per-neuron time constants")
    p.add_argument("--input-norm", action="store_true",
                   help="sequence data: standardise each input feature with training-split statistics")
    p.add_argument("--deltas", type=int, default=0, choices=[0, 1], help="sequence data: append causal deltas")
    p.add_argument("--log-input", action="store_true", help="sequence data: log1p-compress inputs (spike counts)")
    p.add_argument("--grad-clip", type=float, default=0.0, help="clip the gradient norm (0: off)")
    p.add_argument("--augment", default="none", choices=["none", "shift", "time", "time_freq"],
                   help="shift: images by up to 2 pixels; time: sequences stretched and shifted in time; "
                        "time_freq: also shifted by up to 4 frequency channels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-frac", type=float, default=0.1, help="part of the training split held out for validation")
    p.add_argument("--patience", type=int, default=0, help="stop after this many epochs without validation gain")
    p.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=positive_int, default=1, help="data-parallel processes (torchrun, gloo on CPU)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads per process")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run, _parser=p)


def _argv_without_nproc(args) -> list[str]:
    out = ["spikeflow", "train"]
    for action in args._parser._actions:
        if not action.option_strings or action.dest in ("help", "nproc"):
            continue
        value = getattr(args, action.dest)
        if value is None or value is False or value == action.default and action.dest not in ("data", "out"):
            continue
        flag = action.option_strings[0]
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def model_kwargs(args) -> dict:
    kw = {"neuron": args.neuron, "T": args.T, "encoding": args.encoding, "readout": args.readout,
          "tau_mem": args.tau_mem, "dropout": args.dropout or None, "learn_tau": args.learn_tau or None}
    if args.model == "recurrent":
        kw.update(input_norm=args.input_norm or None, deltas=args.deltas or None, log_input=args.log_input or None)
    elif args.input_norm or args.deltas or args.log_input:
        from spikeflow.errors import ConfigError

        raise ConfigError("--input-norm, --deltas and --log-input apply to --model recurrent (sequence data)")
    if args.model == "conv":
        kw["channels"] = args.channels
        kw["hidden"] = args.hidden[0] if args.hidden else None
    else:
        kw["hidden"] = args.hidden
    return kw


def run(args) -> int:
    import torch

    from spikeflow.data.datasets.byo import is_path
    from spikeflow.errors import ConfigError
    from spikeflow.train import distributed, zoo
    from spikeflow.train.datasets import data_options, describe, holdout, load_split, load_tensors
    from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all

    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return distributed.launch(args.nproc, _argv_without_nproc(args),
                                  env={"OMP_NUM_THREADS": "1"})
    if not 0 < args.val_frac < 1:
        raise ConfigError(f"--val-frac must be in (0, 1), got {args.val_frac}")
    rank, world = distributed.init_from_env()
    if args.threads:
        torch.set_num_threads(args.threads)
    opts = data_options(args.data, args.T, args.dt, test_path=args.test_data, test_frac=args.test_frac)
    data = str(Path(args.data).resolve()) if is_path(args.data) else args.data
    x, y, info = load_split(args.data, "train", **opts)
    if info:  # event files: the test split and every later command bin to this geometry and window
        opts.update(sensor_size=info["sensor_size"], duration_us=info["duration_us"])
        if rank == 0:
            print(describe(args.data, info, "--T" if args.T else "--dt" if args.dt else None))
    classes = max(int(y.max()) + 1, int(info.get("classes", 0)))
    train, val = holdout(x, y, args.val_frac, seed=args.seed)
    seed_all(args.seed)
    model = zoo.for_data(args.model, x.shape[1:], classes, **model_kwargs(args))
    if hasattr(model, "fit_features"):
        model.fit_features(train[0])  # input statistics from the training part only
    loss = args.loss or ("ce" if args.neuron == "relu" else "ce_max" if args.readout == "li" else "ce_count")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         schedule=args.schedule, loss=loss, seed=args.seed, checkpoint_every=args.checkpoint_every,
                         patience=args.patience, augment=args.augment, grad_clip=args.grad_clip,
                         progress=not args.no_progress)
    trainer = Trainer(model, train, val, config, out_dir=args.out,
                      extra_meta={"data": data, "classes": classes, "data_options": opts,
                                  **({"data_info": info} if info else {})})
    summary = trainer.fit(resume=args.resume)
    if rank == 0:
        xt, yt = load_tensors(args.data, "test", **opts)
        test = evaluate(model, xt, yt, loss=loss, seed=args.seed, spikes=model.spiking)
        result = {"data": data, "model": model.spec, "config": asdict(config),
                  "test": test, "best_val": summary["best_val"], "best_epoch": summary["best_epoch"],
                  "epochs_run": summary["epochs"], "stopped_early": summary["stopped_early"], "world": world}
        from spikeflow.train.checkpoint import atomic_write_text

        atomic_write_text(Path(args.out) / "result.json", json.dumps(result, indent=1))
        print(f"test accuracy {100 * test['accuracy']:.2f} % on {test['samples']} samples "
              f"(best validation {100 * summary['best_val']:.2f} % at epoch {summary['best_epoch']}); "
              f"run in {args.out}")
    distributed.shutdown()
    return 0
