"""``spikeflow hw``: chip profiles, compiling a NIR model for a chip, integer runs with energy and latency."""

from __future__ import annotations

from spikeflow.commands._common import (
    add_batch_size,
    add_json,
    add_limit,
    add_progress,
    add_split,
    add_threads,
    dataset,
    emit_json,
    input_file,
    output_file,
    positive_float,
    positive_int,
    word,
)

CLOCKS = ("realtime", "afap")  # spikeflow.hardware.cost.CLOCKS, spelled out to keep the CLI's start-up light


def register(sub) -> None:
    p = sub.add_parser("hw", help="neuromorphic hardware: chip profiles, compile a NIR model, integer run + energy")
    hw = p.add_subparsers(dest="hw_command", metavar="HW_COMMAND", required=True)

    c = hw.add_parser("chips", help="table of the chip profiles")
    c.add_argument("--sources", action="store_true",
                   help="also print the source (paper, table) or estimate behind every cost figure")
    c.set_defaults(func=run_chips)

    def model_args(q):
        q.add_argument("model", type=input_file, help="NIR file (.nir / .h5)")
        q.add_argument("--chip", default="loihi", type=word, help="chip profile (`spikeflow hw chips` lists them)")
        q.add_argument("--dt", type=positive_float, default=None,
                       help="length of one time step in seconds (default: the model's recorded time base)")
        q.add_argument("--reset", choices=("subtract", "to_reset", "none"), default=None,
                       help="override every neuron's reset (default: the file's metadata, else NIR's reset to v_reset)")
        add_json(q, "the report")

    k = hw.add_parser("compile", help="quantise and map a NIR model to a chip: cores, fan-in, headroom, violations")
    model_args(k)
    k.add_argument("--T", type=positive_int, default=None,
                   help="time steps per recorded window (sets dt = window / T; default: the model's)")
    k.set_defaults(func=run_compile)

    r = hw.add_parser("run", help="float vs integer accuracy, energy and latency per inference on a dataset")
    model_args(r)
    r.add_argument("--data", default=None, type=dataset,
                   help="dataset name or path (default: the one the model was trained on); cut to the model's "
                        "time base, static images encoded as it was trained")
    add_split(r, test_frac=True)
    r.add_argument("--T", type=positive_int, default=None,
                   help="number of time steps per sample (default: the model's)")
    r.add_argument("--clock", choices=CLOCKS, default="realtime",
                   help="how long the chip is powered per inference, over which static power is charged: realtime "
                        "(each step lasts dt) or afap (as fast as possible: each step lasts its modelled latency); "
                        "default realtime")
    add_limit(r)
    add_batch_size(r, 50)
    r.add_argument("--plot", default=None, type=output_file, help="write a PNG bar chart of energy per inference here")
    add_threads(r)
    add_progress(r)
    r.set_defaults(func=run_run)


def run_chips(args) -> int:
    from spikeflow.hardware import PROFILES

    head = f"{'chip':11s} {'title':22s} {'cores':>5s} {'n/core':>7s} {'axons':>6s} {'w bits':>6s} {'state':>5s} " \
           f"{'decay':14s} {'synop pJ':>8s} {'update pJ':>9s} {'hop pJ':>6s} {'static W':>8s}"
    print(head)
    for p in PROFILES.values():
        print(f"{p.name:11s} {p.title:22s} {p.cores:5d} {p.neurons_per_core:7d} {str(p.axons_per_core or '-'):>6s} "
              f"{p.weight_bits:6d} {p.state_bits:5d} {p.decay:14s} {p.e_synop * 1e12:8.1f} "
              f"{p.e_update_active * 1e12:9.1f} {p.e_hop * 1e12:6.1f} {p.static_power:8.4f}")
    if args.sources:
        from spikeflow.hardware.profiles import COST_FIELDS

        for p in PROFILES.values():
            print(f"\n{p.title}" + (f" ({p.notes})" if p.notes else ""))
            cite = p.citations()
            for f in COST_FIELDS:
                print(f"  {f:17s} {getattr(p, f):10.4g}  {cite.get(f, 'estimate: no source recorded')}")
    return 0


def _compile(args, calibration=None):
    from spikeflow.commands._timebase import apply_overrides, nir_timebase
    from spikeflow.hardware import compile_network
    from spikeflow.ir import read_graph

    graph = read_graph(args.model)
    tb = nir_timebase(graph, args.model, required=False)
    dt = args.dt
    if tb is not None:
        tb, _ = apply_overrides(tb, args.dt, getattr(args, "T", None))
        dt = tb.dt
    return compile_network(graph, args.chip, dt=dt, reset=args.reset, calibration=calibration)


def compile_report(compiled) -> dict:
    from spikeflow.hardware.quantize import effective_alpha

    p = compiled.profile
    layers = []
    for layer, lm, fl in zip(compiled.layers, compiled.mapping.layers, compiled.float_net.layers):
        layers.append({
            "layer": layer.name, "synapse": fl.synapse, "kind": layer.kind, "neurons": layer.n_out,
            "fan_in_max": int(layer.syn.fan_in().max()), "cores": len(lm.cores),
            "neurons_per_core_max": int(lm.neurons_per_core.max()),
            "neuron_headroom": 1 - float(lm.neurons_per_core.max()) / p.neurons_per_core,
            "axons_per_core_max": int(lm.axons_per_core.max()),
            "axon_headroom": (1 - float(lm.axons_per_core.max()) / p.axons_per_core) if p.axons_per_core else None,
            "synapses_per_core_max": int(lm.synapses_per_core.max()),
            "weight_scale": layer.scale * (1 << layer.weight_shift),
            "threshold_int": int(layer.threshold.max()) if layer.spiking else None,
            "decay": layer.decay, "alpha_chip": float(effective_alpha(layer).mean()),
            "zero_weights": (layer.n_out * layer.n_in - layer.syn.nnz()) / (layer.n_out * layer.n_in),
        })
    return {"chip": p.name, "title": p.title, "cores_used": compiled.cores_used, "cores": p.cores,
            "weight_bits": p.weight_bits, "state_bits": p.state_bits, "layers": layers, "violations": []}


def run_compile(args) -> int:
    compiled = _compile(args)
    rep = compile_report(compiled)
    rep["dt"] = compiled.float_net.dt
    emit_json(args.json, rep)
    if args.json == "-":
        return 0
    print(f"{rep['title']}: {rep['cores_used']} of {rep['cores']} cores, {rep['weight_bits']}-bit weights, "
          f"{rep['state_bits']}-bit state; no limit violated")
    print(f"{'layer':12s} {'kind':4s} {'neurons':>7s} {'fan-in':>6s} {'cores':>5s} {'n/core':>7s} {'headroom':>8s} "
          f"{'axons/core':>10s} {'headroom':>8s} {'syn/core':>8s} {'threshold':>9s} {'decay':14s} {'alpha':>7s}")
    for L in rep["layers"]:
        ah = "-" if L["axon_headroom"] is None else f"{L['axon_headroom']:.0%}"
        print(f"{L['layer']:12s} {L['kind']:4s} {L['neurons']:7d} {L['fan_in_max']:6d} {L['cores']:5d} "
              f"{L['neurons_per_core_max']:7d} {L['neuron_headroom']:8.0%} {L['axons_per_core_max']:10d} {ah:>8s} "
              f"{L['synapses_per_core_max']:8d} {str(L['threshold_int'] or '-'):>9s} {L['decay']:14s} "
              f"{L['alpha_chip']:7.4f}")
    return 0


def _dataset_batches(ds, keep, batch):
    import numpy as np

    for start in range(0, len(keep), batch):
        items = [ds[int(i)] for i in keep[start:start + batch]]
        x = np.stack([np.asarray(it[0], dtype=np.float64) for it in items], axis=1)  # [T, B, ...]
        y = np.array([int(it[1]) for it in items])
        yield x, y


def _batches(x, y, batch):
    for start in range(0, len(y), batch):
        yield x[:, start:start + batch], y[start:start + batch]


def run_run(args) -> int:
    from spikeflow.commands._timebase import apply_overrides, nir_timebase
    from spikeflow.data.datasets.byo import file_options
    from spikeflow.data.modelinput import model_steps
    from spikeflow.errors import ConfigError
    from spikeflow.hardware import compile_network
    from spikeflow.hardware.evaluate import energy_chart, evaluate
    from spikeflow.ir import read_graph

    graph = read_graph(args.model)
    tb = nir_timebase(graph, args.model, required=False)
    batch = args.batch_size
    if tb is None:  # a NIR file from elsewhere: the dataset binned by the file's dt (or --T bins)
        from spikeflow.data import load_dataset

        if not args.data:
            raise ConfigError(f"hw run: {args.model} records no time base (nor its dataset); pass --data")
        data = args.data
        compiled = compile_network(graph, args.chip, dt=args.dt, reset=args.reset)
        ds = load_dataset(data, args.split, **({"T": args.T} if args.T else {"dt": compiled.float_net.dt}),
                          **file_options(data, compiled.float_net.input_shape, args.test_frac))
        from spikeflow.data.modelinput import spread

        keep = spread(len(ds), args.limit)
        ev = evaluate(compiled, _dataset_batches(ds, keep, batch), progress=not args.no_progress,
                      n_batches=-(-len(keep) // batch), clock=args.clock)
        decoder, what = "mean", f"{data}/{args.split}"
    else:
        tb, overridden = apply_overrides(tb, args.dt, args.T)
        data = args.data or tb.data
        if not data:
            raise ConfigError(f"hw run: {args.model} does not record its dataset; pass --data")
        compiled = compile_network(graph, args.chip, dt=tb.dt, reset=args.reset)
        x, y = model_steps(data, args.split, tb, limit=args.limit, overridden=overridden,
                           load=file_options(data, test_frac=args.test_frac))
        x = x.reshape(x.shape[:2] + tuple(int(s) for s in compiled.float_net.input_shape))
        ev = evaluate(compiled, _batches(x, y, batch), progress=not args.no_progress,
                      n_batches=-(-len(y) // batch), decoder=tb.decoder, clock=args.clock)
        decoder, what = tb.decoder, f"{data}/{args.split} ({tb.describe()})"
    c = ev.cost
    rep = {
        "chip": compiled.profile.name, "data": str(data), "split": args.split, "decoder": decoder,
        "timebase": None if tb is None else tb.to_dict(), "samples": ev.samples, "float_accuracy": ev.float_accuracy,
        "int_accuracy": ev.int_accuracy, "prediction_agreement": ev.prediction_agreement,
        "spike_agreement": ev.spike_agreement, **c.to_dict(), "clock_meaning": c.describe_clock(),
        "ann_macs": ev.dense_macs, "ann_energy_j": ev.dense_j,
        "dense_snn_macs": ev.dense_snn_macs, "dense_snn_energy_j": ev.dense_snn_j,
    }
    if args.plot:
        energy_chart(ev, compiled.profile.title, args.plot)
        rep["plot"] = args.plot
    emit_json(args.json, rep)
    if args.json == "-":
        return 0
    print(f"{compiled.profile.title}, {ev.samples} samples of {what}")
    print(f"accuracy      float {ev.float_accuracy:.2%}   integer {ev.int_accuracy:.2%}   "
          f"(same prediction {ev.prediction_agreement:.2%}, spike agreement {ev.spike_agreement:.4%})")
    print(f"clock         {c.describe_clock()}")
    print(f"per inference energy {c.energy_j:.3e} J (dynamic {c.dynamic_j:.3e}, static {c.static_j:.3e} over "
          f"{c.powered_s * 1e3:.3f} ms powered); compute latency {c.latency_s * 1e6:.2f} us "
          f"({c.step_latency_s * 1e9:.1f} ns per step)")
    print(f"power         {c.power_w * 1e3:.4g} mW mean ({c.dynamic_power_w * 1e3:.4g} mW dynamic), "
          f"{c.throughput_hz:.4g} inferences/s"
          + (f"; {c.overrun_steps:.1f} steps per inference took longer than dt" if c.overrun_steps else ""))
    print("counts        " + ", ".join(f"{k} {v:.1f}" for k, v in c.counts.items()))
    print(f"as an ANN     {ev.dense_macs} MACs: " + ", ".join(f"{k} {v:.3e} J" for k, v in ev.dense_j.items()))
    print(f"dense SNN     {ev.dense_snn_macs} MACs (every synapse every step): "
          + ", ".join(f"{k} {v:.3e} J" for k, v in ev.dense_snn_j.items()))
    if args.plot:
        print(f"chart         {args.plot}")
    return 0
