"""``spikeflow train``: train a zoo model on a dataset, with checkpoints, resume and DDP."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from spikeflow.commands._common import (
    add_batch_size,
    add_progress,
    add_threads,
    dataset,
    int_list,
    nonneg_float,
    nonneg_int,
    open_fraction,
    output_dir,
    positive_float,
    positive_int,
    probability,
    rate_list,
)

# spikeflow.hardware.profiles.PROFILES, spelled here so that the parser builds without importing the
# hardware package (a test checks that the two agree)
CHIP_CHOICES = ("loihi", "loihi2", "speck", "spinnaker2", "truenorth", "xylo")

# spikeflow.train.losses.LOSSES, spelled here so that building the parser does not import torch (a test
# checks that the two agree)
LOSS_CHOICES = ("ce_max", "ce_mean", "ce_last", "ce_count", "mse_count", "first_spike", "ce")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a spiking (or ANN) model from the zoo on a dataset")
    p.add_argument("--data", required=True, type=dataset,
                   help="dataset name (digits, mnist5k, nmnist5k, fsdd, spoken-digits) or data file/folder")
    p.add_argument("--model", default="mlp", choices=["mlp", "conv", "recurrent"], help="architecture from the zoo")
    p.add_argument("--neuron", default="lif", choices=["lif", "alif", "cuba", "if", "relu"],
                   help="neuron type ('relu' trains the same-shape ANN)")
    p.add_argument("--out", required=True, type=output_dir, help="run directory (checkpoints, logs, best model)")
    p.add_argument("--epochs", type=positive_int, default=10, help="passes over the training split")
    add_batch_size(p)
    p.add_argument("--lr", type=positive_float, default=2e-3, help="learning rate (Adam)")
    p.add_argument("--weight-decay", type=nonneg_float, default=0.0, help="L2 weight decay")
    p.add_argument("--schedule", default="cosine", choices=["cosine", "constant", "step"],
                   help="learning-rate schedule")
    p.add_argument("--loss", default=None, choices=LOSS_CHOICES,
                   help="loss (default: ce for an ANN, ce_max with an LI readout, ce_count with spikes)")
    p.add_argument("--T", type=positive_int, default=None,
                   help="number of time steps: steps of a static input's code; time bins of event data "
                        "(nmnist5k: 6, as the demo); MFCC frames kept for fsdd")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="event files: length of one time step (bin width) in seconds, instead of --T "
                        "(default: the recording window in 16 steps)")
    p.add_argument("--test-data", type=dataset, default=None,
                   help="event files: the test file/folder when --data is the training file/folder")
    p.add_argument("--test-frac", type=open_fraction, default=None,
                   help="event files: hold out this fraction of a single file/folder as the test split "
                        "(stratified, fixed seed; recorded in the run so eval uses the same split). A single "
                        "file without --test-data or --test-frac is an error: nothing is split silently")
    p.add_argument("--encoding", default=None, choices=["direct", "rate"], help="coding of static inputs")
    p.add_argument("--readout", default="li", choices=["li", "spike"], help="output layer")
    p.add_argument("--hidden", type=int_list, default=None, help="hidden sizes, e.g. 256 or 256,128")
    p.add_argument("--channels", type=int_list, default=None, help="conv channels, e.g. 16,32")
    p.add_argument("--tau-mem", type=positive_float, default=None, help="membrane time constant (s)")
    p.add_argument("--dropout", type=probability, default=0.0, help="dropout probability")
    p.add_argument("--learn-tau", action="store_true", help="learn per-neuron time constants")
    p.add_argument("--input-norm", action="store_true",
                   help="sequence data: standardise each input feature with training-split statistics")
    p.add_argument("--deltas", type=int, default=0, choices=[0, 1], help="sequence data: append causal deltas")
    p.add_argument("--log-input", action="store_true", help="sequence data: log1p-compress inputs (spike counts)")
    p.add_argument("--grad-clip", type=nonneg_float, default=0.0, help="clip the gradient norm (0: off)")
    p.add_argument("--augment", default="none", choices=["none", "shift", "time", "time_freq"],
                   help="shift: images by up to 2 pixels; time: sequences stretched and shifted in time; "
                        "time_freq: also shifted by up to 4 frequency channels")
    p.add_argument("--spike-reg", type=nonneg_float, default=0.0,
                   help="weight of the spike regularisation in the loss: L1 on spikes (mean rate of each spiking "
                        "layer), or with --target-rate the squared deviation of each layer's mean rate from its "
                        "target (0: off)")
    p.add_argument("--target-rate", type=rate_list, default=None,
                   help="target firing rate (spikes per neuron per step) of the spiking layers: one value for all "
                        "or one per layer, e.g. 0.05 or 0.1,0.02 (needs --spike-reg)")
    p.add_argument("--learn-threshold", action="store_true", help="learn per-neuron firing thresholds")
    p.add_argument("--pool-first", action="store_true",
                   help="conv: average-pool each stage's conv output before its neurons (a quarter of the neurons)")
    p.add_argument("--prune", type=probability, default=0.0,
                   help="fraction of zero weights in every Linear/Conv layer: magnitude pruning ramped up over the "
                        "first half of the epochs, then fine-tuning with the masks fixed (0: off)")
    p.add_argument("--qat", default=None, choices=CHIP_CHOICES,
                   help="quantisation-aware training for this chip: weights fake-quantised per layer to the chip's "
                        "weight bits (straight-through gradient); the saved weights lie on that grid")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of every random choice")
    p.add_argument("--val-frac", type=open_fraction, default=0.1,
                   help="part of the training split held out for validation")
    p.add_argument("--patience", type=nonneg_int, default=0,
                   help="stop after this many epochs without validation gain (0: never)")
    p.add_argument("--checkpoint-every", type=nonneg_int, default=0, help="also checkpoint every N steps (0: off)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=positive_int, default=1, help="data-parallel processes (torchrun, gloo on CPU)")
    add_threads(p)
    add_progress(p)
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
          "tau_mem": args.tau_mem, "dropout": args.dropout or None, "learn_tau": args.learn_tau or None,
          "learn_threshold": args.learn_threshold or None}
    if args.model == "recurrent":
        kw.update(input_norm=args.input_norm or None, deltas=args.deltas or None, log_input=args.log_input or None)
    elif args.input_norm or args.deltas or args.log_input:
        from spikeflow.errors import ConfigError

        raise ConfigError("--input-norm, --deltas and --log-input apply to --model recurrent (sequence data)")
    if args.model == "conv":
        kw["channels"] = args.channels
        kw["pool_first"] = args.pool_first or None
        kw["hidden"] = args.hidden[0] if args.hidden else None
    else:
        if args.pool_first:
            from spikeflow.errors import ConfigError

            raise ConfigError("--pool-first applies to --model conv")
        kw["hidden"] = args.hidden
    return kw


def run(args) -> int:
    from spikeflow.data.datasets.byo import is_path
    from spikeflow.errors import ConfigError
    from spikeflow.train import distributed, zoo
    from spikeflow.train.datasets import data_options, describe, holdout, load_split, load_tensors, timebase_for
    from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all

    if args.target_rate is not None and not args.spike_reg:
        raise ConfigError("--target-rate needs --spike-reg W > 0 (the weight of the rate term in the loss)")
    if args.neuron == "relu" and (args.spike_reg or args.learn_threshold):
        raise ConfigError("--spike-reg, --target-rate and --learn-threshold need a spiking --neuron, not relu")
    qat_bits = 0
    if args.qat:
        from spikeflow.hardware.profiles import get_profile

        qat_bits = get_profile(args.qat).weight_bits
    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return distributed.launch(args.nproc, _argv_without_nproc(args),
                                  env={"OMP_NUM_THREADS": "1"})
    rank, world = distributed.init_from_env()
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
                         progress=not args.no_progress, spike_reg=args.spike_reg, target_rate=args.target_rate,
                         prune=args.prune, qat_bits=qat_bits)
    timebase = timebase_for(model, data, x.shape[1:], classes, loss, window_us=info.get("duration_us"))
    trainer = Trainer(model, train, val, config, out_dir=args.out,
                      extra_meta={"data": data, "classes": classes, "data_options": opts,
                                  "timebase": timebase.to_dict(), **({"data_info": info} if info else {})})
    summary = trainer.fit(resume=args.resume)
    if rank == 0:
        xt, yt = load_tensors(args.data, "test", **opts)
        test = evaluate(model, xt, yt, loss=loss, seed=args.seed, spikes=model.spiking)
        result = {"data": data, "model": model.spec, "config": asdict(config),
                  "timebase": timebase.to_dict(), "test": test, "best_val": summary["best_val"],
                  "best_epoch": summary["best_epoch"],
                  "epochs_run": summary["epochs"], "stopped_early": summary["stopped_early"], "world": world}
        from spikeflow.train.checkpoint import atomic_write_text

        atomic_write_text(Path(args.out) / "result.json", json.dumps(result, indent=1))
        print(f"test accuracy {100 * test['accuracy']:.2f} % on {test['samples']} samples "
              f"(best validation {100 * summary['best_val']:.2f} % at epoch {summary['best_epoch']}); "
              f"run in {args.out}")
    trainer.close()
    distributed.shutdown()
    return 0
