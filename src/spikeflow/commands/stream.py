"""``spikeflow stream model.nir --input events``: answers while the events arrive."""

from __future__ import annotations

from spikeflow.commands._common import (
    add_json,
    add_split,
    add_stream_options,
    add_threads,
    dataset,
    input_file,
    nonneg_int,
)


def register(sub) -> None:
    p = sub.add_parser("stream", help="run a NIR model on an event file as a live stream, one line per update")
    p.add_argument("model", type=input_file, help="NIR model file")
    p.add_argument("--input", default=None, type=input_file,
                   help="event file (N-MNIST .bin, EVT 2.0 .raw, AEDAT 2.0, .npz, HDF5)")
    p.add_argument("--data", default=None, type=dataset,
                   help="instead of --input: a dataset name or path; streams its recording --index (static images "
                        "as the spikes of the model's encoding)")
    add_split(p)
    add_stream_options(p)
    add_json(p, "the updates and the answer")
    p.add_argument("--realtime", action="store_true", help="pace the input by its timestamps (a live sensor)")
    p.add_argument("--index", type=nonneg_int, default=0, help="which recording of a multi-recording file")
    p.add_argument("--stop", action="store_true", help="stop at the first confident answer")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from spikeflow.commands._timebase import apply_overrides, nir_timebase
    from spikeflow.errors import ConfigError, InputError
    from spikeflow.ir import read_graph
    from spikeflow.runtime.stream import Stream

    if (args.input is None) == (args.data is None):
        raise ConfigError("stream: give exactly one of --input FILE or --data NAME|PATH")
    graph = read_graph(args.model)
    tb = nir_timebase(graph, args.model, required=args.data is not None)
    dt = args.dt
    if tb is not None:
        tb, _ = apply_overrides(tb, args.dt, args.T)
        dt = tb.dt
    elif args.T is not None:
        raise ConfigError(f"stream: {args.model} records no time base (window), so --T cannot set the step; use --dt")
    label = None
    if args.data is not None:
        from spikeflow.data.modelinput import model_recordings

        recs, labels, _ = model_recordings(args.data, args.split, tb, index=args.index,
                                           overridden=args.dt is not None or args.T is not None)
        rec, label = next(recs)
        source = f"{args.data}/{args.split}[{args.index}]"
    else:
        from spikeflow.data.formats import read_recordings

        recs = read_recordings(args.input)
        if not 0 <= args.index < len(recs):
            raise InputError(f"{args.input}: --index {args.index} is outside 0..{len(recs) - 1}")
        rec = recs[args.index]
        label = rec.label
        source = args.input
    decoder = tb.decoder if args.decoder == "auto" and tb is not None else args.decoder
    stream = Stream(graph, engine=args.engine, decoder=decoder, confidence=args.confidence, dt=dt)
    size = tuple(getattr(rec, "sensor_size", ()))
    if len(size) == 3 and size[1:] == (1, 1) == (stream.height, stream.n_pol) and size[0] < stream.width:
        # channel data (SHD) whose top channels never fire in this file: the model's channel count
        from spikeflow.data.events import Events

        rec = Events(rec.array, (stream.width, 1, 1), rec.label, validate=False)
    arr = getattr(rec, "array", rec)
    n_events = len(arr)
    span = (int(arr["t"][-1]) + 1) if n_events else 0
    quiet = args.json == "-"
    if not quiet:
        print(f"model {args.model}: engine {args.engine}, dt {stream.dt * 1e3:g} ms, decoder {stream.decoder}; "
              f"input {source}: {n_events} events over {span / 1e3:.1f} ms"
              + (f", label {label}" if label is not None else ""))
    start = time.perf_counter()
    updates, push_s = [], []
    window = tb.window_us if tb is not None else None
    for pred in stream.run(rec, chunk_us=args.chunk_us, realtime=args.realtime, stop_on_decision=args.stop,
                           latencies=push_s):
        mark = "  <- decided" if stream.decision is pred else ""
        updates.append({"t_us": int(pred.t_us), "events": int(pred.events_seen), "label": int(pred.label),
                        "confidence": float(pred.confidence)})
        if not quiet:
            print(f"t={pred.t_us / 1e3:8.1f} ms  events={pred.events_seen:7d}  label={pred.label}  "
                  f"confidence={pred.confidence:.3f}{mark}")
    if window is not None and not (args.stop and stream.decision is not None):
        final = stream.advance_to(stream.t0_us + window)  # the whole window has passed, as in training
    else:
        final = stream.prediction
    wall = time.perf_counter() - start
    d = stream.decision
    from spikeflow.runtime.anytime import latency_percentiles

    lat = latency_percentiles(push_s)
    speed = {"events_per_second": stream.events_seen / sum(push_s) if sum(push_s) > 0 else None, **lat}
    if not quiet:
        if d is not None:
            print(f"decision: label {d.label} at t={d.t_us / 1e3:.1f} ms after {d.events_seen} events "
                  f"(confidence {d.confidence:.3f} >= {args.confidence})")
        else:
            print(f"no decision above {args.confidence}; final answer label {final.label} "
                  f"(confidence {final.confidence:.3f})")
        print(f"final answer after {final.t_us / 1e3:.1f} ms: label {final.label}; "
              f"processed {stream.events_seen} events in {wall:.3f} s wall")
        if push_s:
            rate = speed["events_per_second"]
            print(f"pushes: {len(push_s)} chunks of {args.chunk_us} µs, "
                  + (f"{rate:.3g} events/s; " if rate else "")
                  + f"latency per chunk p50 {lat['p50_latency_per_chunk_ms']:.3f} ms, "
                  f"p99 {lat['p99_latency_per_chunk_ms']:.3f} ms, max {lat['max_latency_per_chunk_ms']:.3f} ms")
    if args.json is not None:
        from spikeflow.commands._common import emit_json

        emit_json(args.json, {
            "model": str(args.model), "input": source, "label": label, "final": int(final.label),
            "final_confidence": float(final.confidence), "final_t_us": int(final.t_us),
            "decision": None if d is None else {"label": int(d.label), "t_us": int(d.t_us),
                                                "confidence": float(d.confidence)},
            "decoder": stream.decoder if isinstance(stream.decoder, str) else "custom", "dt": stream.dt,
            "events": int(stream.events_seen), "seconds": wall, "chunks": len(push_s), "chunk_us": args.chunk_us,
            **speed, "updates": updates})
    return 0
