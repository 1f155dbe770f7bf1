"""``spikeflow eval-time model.nir --data nmnist5k``: accuracy against time observed, time to decision."""

from __future__ import annotations

from spikeflow.commands._common import (
    add_json,
    add_limit,
    add_progress,
    add_split,
    add_stream_options,
    add_threads,
    dataset,
    emit_json,
    input_file,
    output_file,
)


def register(sub) -> None:
    p = sub.add_parser("eval-time", help="accuracy vs. time observed and time-to-decision of a NIR model on a dataset")
    p.add_argument("model", type=input_file, help="NIR model file")
    p.add_argument("--data", default=None, type=dataset,
                   help="dataset name or path (default: the one the model was trained on); static images are "
                        "streamed as the spikes of the model's rate encoding")
    add_split(p, test_frac=True)
    add_stream_options(p)
    add_limit(p, "recordings")
    p.add_argument("--plot", default="eval_time.png", type=output_file, help="where to save the plot (PNG)")
    add_json(p, "the figures")
    add_threads(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from spikeflow.commands._timebase import apply_overrides, nir_timebase
    from spikeflow.data.datasets.byo import file_options
    from spikeflow.data.modelinput import model_recordings
    from spikeflow.errors import ConfigError
    from spikeflow.ir import read_graph
    from spikeflow.runtime.anytime import evaluate_over_time
    from spikeflow.runtime.stream import Stream

    graph = read_graph(args.model)
    tb = nir_timebase(graph, args.model, required=False)
    if tb is not None:
        tb, overridden = apply_overrides(tb, args.dt, args.T)
        args.data = args.data or tb.data
        if not args.data:
            raise ConfigError(f"eval-time: {args.model} does not record its dataset; pass --data")
        recs, labels, duration = model_recordings(args.data, args.split, tb, limit=args.limit, overridden=overridden,
                                                  load=file_options(args.data, test_frac=args.test_frac))
        decoder = tb.decoder if args.decoder == "auto" else args.decoder
        dt = tb.dt
    else:  # a NIR file from elsewhere: the events as recorded, steps of the file's dt (or --dt)
        from spikeflow.data.datasets import load_dataset

        if not args.data:
            raise ConfigError(f"eval-time: {args.model} records no time base (nor its dataset); pass --data")
        if args.T is not None:
            raise ConfigError(f"eval-time: {args.model} records no time base, so --T cannot set the step; use --dt")
        split = load_dataset(args.data, args.split, **file_options(args.data, test_frac=args.test_frac))
        if not hasattr(split, "events"):
            raise ConfigError(f"eval-time: dataset '{args.data}' is not an event dataset")
        from spikeflow.data.modelinput import spread

        keep = spread(len(split), args.limit)
        labels = split.labels[keep]
        duration = int(getattr(split, "duration_us", 0)) or int(max(split.events(i).t[-1] for i in keep) + 1)
        recs = ((split.events(int(i)), int(y)) for i, y in zip(keep, labels))
        decoder, dt = args.decoder, args.dt
    n = len(labels)
    stream = Stream(graph, engine=args.engine, decoder=decoder, confidence=args.confidence, dt=dt)
    bar = tqdm(total=n, desc="eval-time", unit="rec", disable=args.no_progress)
    rep = evaluate_over_time(stream, recs, duration,
                             chunk_us=min(args.chunk_us, duration), checkpoints=(0.1, 0.25, 0.5, 0.75, 1.0),
                             progress=lambda k: bar.update(1))
    bar.close()
    say = print if args.json != "-" else (lambda *a, **k: None)  # JSON on stdout stands alone
    say(f"{args.data}/{args.split}: {rep.n} recordings, window {duration / 1e3:.0f} ms, engine {args.engine}")
    for f, a in zip(rep.fractions, rep.accuracy):
        say(f"  accuracy after {f * 100:5.1f} % of the stream ({f * duration / 1e3:6.1f} ms): {a * 100:6.2f} %")
    say(f"  early exit at confidence {rep.threshold}: accuracy {rep.early_accuracy * 100:.2f} %, "
          f"decided {rep.decided * 100:.1f} %, mean fraction of stream needed {rep.mean_fraction:.3f}")
    q = np.quantile(rep.decision_fraction, [0.1, 0.5, 0.9])
    say(f"  time to decision (fraction of the window): p10 {q[0]:.3f}, median {q[1]:.3f}, p90 {q[2]:.3f}")
    d = rep.as_dict()
    d.update(data=str(args.data), split=args.split, accuracy_full=rep.accuracy_at(1.0),
             decoder=stream.decoder if isinstance(stream.decoder, str) else "custom",
             window_us=int(duration), timebase=None if tb is None else tb.to_dict())
    say(f"  throughput {d['events_per_second']:.3g} events/s; latency per pushed chunk mean "
          f"{d['mean_latency_per_push_ms']:.3f} ms, p50 {d['p50_latency_per_push_ms']:.3f} ms, p99 "
          f"{d['p99_latency_per_push_ms']:.3f} ms; per event {d['mean_latency_per_event_us']:.2f} µs")
    _plot(rep, duration, args.plot, f"{args.data} {args.split} ({args.engine})")
    say(f"plot: {args.plot}")
    emit_json(args.json, d)
    return 0


def _plot(rep, duration_us, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spikeflow.atomic import atomic_output

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(rep.fractions * duration_us / 1e3, rep.accuracy * 100, "o-")
    a.axhline(rep.early_accuracy * 100, ls="--", c="gray", label=f"early exit @ {rep.threshold}")
    a.set_xlabel("time observed (ms)")
    a.set_ylabel("accuracy (%)")
    a.set_title(title)
    a.legend()
    b.hist(rep.decision_fraction * duration_us / 1e3, bins=20)
    b.set_xlabel("time to decision (ms)")
    b.set_ylabel("recordings")
    b.set_title(f"mean fraction needed {rep.mean_fraction:.2f}")
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
