"""``spikeflow stream model.nir --input events``: answers while the events arrive."""

from __future__ import annotations

from spikeflow.commands._common import add_threads, confidence, input_file, nonneg_int, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("stream", help="run a NIR model on an event file as a live stream, one line per update")
    p.add_argument("model", type=input_file, help="NIR model file")
    p.add_argument("--input", required=True, type=input_file,
                   help="event file (N-MNIST .bin, EVT 2.0 .raw, AEDAT 2.0, .npz, HDF5)")
    p.add_argument("--engine", default="event", choices=["event", "clockfree", "dense"], help="runtime engine")
    p.add_argument("--confidence", type=confidence, default=0.9, help="early-exit threshold on the top probability")
    p.add_argument("--decoder", default="auto", choices=["auto", "count", "max", "mean", "last"],
                   help="how output activity becomes class scores (auto: the model's own)")
    p.add_argument("--chunk-us", type=positive_int, default=10_000, help="events per update, as a time window in µs")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="length of one time step in seconds (default: the model's)")
    p.add_argument("--realtime", action="store_true", help="pace the input by its timestamps (a live sensor)")
    p.add_argument("--index", type=nonneg_int, default=0, help="which recording of a multi-recording file")
    p.add_argument("--stop", action="store_true", help="stop at the first confident answer")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from spikeflow.data.formats import read_recordings
    from spikeflow.errors import InputError
    from spikeflow.runtime.stream import Stream

    stream = Stream(args.model, engine=args.engine, decoder=args.decoder, confidence=args.confidence, dt=args.dt)
    recs = read_recordings(args.input)
    if not 0 <= args.index < len(recs):
        raise InputError(f"{args.input}: --index {args.index} is outside 0..{len(recs) - 1}")
    rec = recs[args.index]
    size = tuple(rec.sensor_size)
    if size[1:] == (1, 1) == (stream.height, stream.n_pol) and size[0] < stream.width:
        # channel data (SHD): a file whose top channels never fire reads as fewer channels
        from spikeflow.data.events import Events

        rec = Events(rec.array, (stream.width, 1, 1), rec.label, validate=False)
    print(f"model {args.model}: engine {args.engine}, dt {stream.dt * 1e3:g} ms; input {args.input}: "
          f"{len(rec)} events over {rec.duration_us / 1e3:.1f} ms" + (f", label {rec.label}" if rec.label is not None
                                                                     else ""))
    start = time.perf_counter()
    for pred in stream.run(rec, chunk_us=args.chunk_us, realtime=args.realtime, stop_on_decision=args.stop):
        mark = "  <- decided" if stream.decision is pred else ""
        print(f"t={pred.t_us / 1e3:8.1f} ms  events={pred.events_seen:7d}  label={pred.label}  "
              f"confidence={pred.confidence:.3f}{mark}")
    wall = time.perf_counter() - start
    final = stream.prediction
    if stream.decision is not None:
        d = stream.decision
        print(f"decision: label {d.label} at t={d.t_us / 1e3:.1f} ms after {d.events_seen} events "
              f"(confidence {d.confidence:.3f} >= {args.confidence})")
    else:
        print(f"no decision above {args.confidence}; final answer label {final.label} "
              f"(confidence {final.confidence:.3f})")
    print(f"processed {stream.events_seen} events in {wall:.3f} s wall")
    return 0
