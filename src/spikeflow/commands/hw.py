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
        q.add_argument("--chip", default="loihi2", type=word,
                       help="chip profile (`spikeflow hw chips` lists them; default loihi2, which takes any reset and "
                            "spike counts; loihi computes exactly as Lava's Loihi models: binary input, reset to 0)")
        q.add_argument("--dt", type=positive_float, default=None,
                       help="length of one time step in seconds (default: the model's recorded time base)")
        q.add_argument("--reset", choices=("subtract", "to_reset", "none"), default=None,
                       help="override every neuron's reset (default: the file's metadata, else NIR's reset to v_reset)")
        q.add_argument("--chips", type=positive_int, default=1,
                       help="spread the network over up to N chips of the chip's board (Loihi: Nahuku, 32 chips; "
                            "Loihi 2: Kapoho Point, 8), filled chip by chip; default 1")
        q.add_argument("--allow-lossy", action="store_true",
                       help="compile even when quantisation zeroes or clips more than 5%% of a layer's synapses or "
                            "its weight error exceeds 10%% RMS (the loss is still reported)")
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
    from spikeflow.hardware import BOARDS, PROFILES

    head = f"{'chip':11s} {'title':22s} {'cores':>5s} {'n/core':>7s} {'axons':>6s} {'w bits':>6s} {'state':>5s} " \
           f"{'decay':14s} {'synop pJ':>8s} {'update pJ':>9s} {'hop pJ':>6s} {'static W':>8s} {'recurrent':9s} board"
    print(head)
    for p in PROFILES.values():
        b = BOARDS.get(p.name)
        print(f"{p.name:11s} {p.title:22s} {p.cores:5d} {p.neurons_per_core:7d} {str(p.axons_per_core or '-'):>6s} "
              f"{p.weight_bits:6d} {p.state_bits:5d} {p.decay:14s} {p.e_synop * 1e12:8.1f} "
              f"{p.e_update_active * 1e12:9.1f} {p.e_hop * 1e12:6.1f} {p.static_power:8.4f} {p.recurrent:9s} "
              + (f"{b.name} ({b.chips} chips, --chips)" if b else "-"))
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
    return compile_network(graph, args.chip, dt=dt, reset=args.reset, calibration=calibration, chips=args.chips,
                           allow_lossy=args.allow_lossy)


def compile_report(compiled) -> dict:
    from spikeflow.hardware.board import board_report
    from spikeflow.hardware.quantize import effective_alpha
    from spikeflow.hardware.recurrent import wide_syn

    p = compiled.profile
    layers = []
    for layer, lm, fl, prec in zip(compiled.layers, compiled.mapping.layers, compiled.float_net.layers,
                                   compiled.precision):
        layers.append({
            "layer": layer.name, "synapse": fl.synapse, "recurrent": fl.rec_synapse or None, "kind": layer.kind,
            "neurons": layer.n_out, "fan_in_max": int(wide_syn(layer).fan_in().max()), "cores": len(lm.cores),
            "neurons_per_core_max": int(lm.neurons_per_core.max()),
            "neuron_headroom": 1 - float(lm.neurons_per_core.max()) / p.neurons_per_core,
            "axons_per_core_max": int(lm.axons_per_core.max()),
            "axon_headroom": (1 - float(lm.axons_per_core.max()) / p.axons_per_core) if p.axons_per_core else None,
            "synapses_per_core_max": int(lm.synapses_per_core.max()),
            "weight_scale": layer.scale * (1 << layer.weight_shift),
            "threshold_int": int(layer.threshold.max()) if layer.spiking else None,
            "decay": layer.decay, "alpha_chip": float(effective_alpha(layer).mean()),
            "zero_weights": (layer.n_out * layer.n_in - layer.syn.nnz()) / (layer.n_out * layer.n_in),
            "precision": prec.to_dict(),
        })
        if layer.loihi is not None:  # Lava's Dense + LIF parameters of the layer
            lp = layer.loihi
            layers[-1]["loihi"] = {"weight_exp": lp.weight_exp, "sign_mode": lp.sign_mode, "du": lp.du, "dv": lp.dv,
                                   "vth": lp.vth, "bias_exp_max": int(lp.bias_exp.max(initial=0))}
    from spikeflow.hardware.precision import MAX_CLIPPED, MAX_WEIGHT_ERROR, MAX_ZEROED

    return {"chip": p.name, "title": p.title, "cores_used": compiled.cores_used, "cores": p.cores,
            "weight_bits": p.weight_bits, "state_bits": p.state_bits, "latency": compiled.latency,
            "latency_steps": compiled.latency_steps, "layers": layers, "violations": [],
            "chips_used": compiled.chips_used, "board": board_report(compiled),
            "lossy_layers": [pr.layer for pr in compiled.precision if pr.lossy],
            "precision_limits": {"zeroed_frac": MAX_ZEROED, "clipped_frac": MAX_CLIPPED,
                                 "weight_error": MAX_WEIGHT_ERROR}}


def run_compile(args) -> int:
    compiled = _compile(args)
    rep = compile_report(compiled)
    rep["dt"] = compiled.float_net.dt
    emit_json(args.json, rep)
    if args.json == "-":
        return 0
    chips = rep["chips_used"]
    print(f"{rep['title']}: {rep['cores_used']} cores" + (f" on {chips} chips" if chips > 1 else f" of {rep['cores']}")
          + f", {rep['weight_bits']}-bit weights, {rep['state_bits']}-bit state, latency {rep['latency_steps']} steps "
          f"({rep['latency']}); no limit violated")
    if rep["board"]["board"] is not None:
        from spikeflow.hardware.board import board_line

        print(board_line(rep["board"]))
    print(f"{'layer':12s} {'kind':4s} {'neurons':>7s} {'fan-in':>6s} {'cores':>5s} {'n/core':>7s} {'headroom':>8s} "
          f"{'axons/core':>10s} {'headroom':>8s} {'syn/core':>8s} {'threshold':>9s} {'decay':14s} {'alpha':>7s} "
          f"{'zeroed':>7s} {'clipped':>7s} {'w err':>6s}")
    for L in rep["layers"]:
        ah = "-" if L["axon_headroom"] is None else f"{L['axon_headroom']:.0%}"
        pr = L["precision"]
        name = L["layer"] + (" (rec)" if L["recurrent"] else "")
        print(f"{name:12s} {L['kind']:4s} {L['neurons']:7d} {L['fan_in_max']:6d} {L['cores']:5d} "
              f"{L['neurons_per_core_max']:7d} {L['neuron_headroom']:8.0%} {L['axons_per_core_max']:10d} {ah:>8s} "
              f"{L['synapses_per_core_max']:8d} {str(L['threshold_int'] or '-'):>9s} {L['decay']:14s} "
              f"{L['alpha_chip']:7.4f} {pr['zeroed_frac']:7.1%} {pr['clipped_frac']:7.1%} {pr['weight_error']:6.1%}")
    lim = rep["precision_limits"]
    if rep["lossy_layers"]:
        print(f"lossy (allowed by --allow-lossy): {', '.join(rep['lossy_layers'])} "
              f"(limits {lim['zeroed_frac']:.0%} zeroed, {lim['clipped_frac']:.0%} clipped, "
              f"{lim['weight_error']:.0%} weight error)")
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
    from spikeflow.hardware.board import board_line, board_report
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
        compiled = compile_network(graph, args.chip, dt=args.dt, reset=args.reset, chips=args.chips,
                                   allow_lossy=args.allow_lossy)
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
        compiled = compile_network(graph, args.chip, dt=tb.dt, reset=args.reset, chips=args.chips,
                                   allow_lossy=args.allow_lossy)
        x, y = model_steps(data, args.split, tb, limit=args.limit, overridden=overridden,
                           load=file_options(data, test_frac=args.test_frac))
        x = x.reshape(x.shape[:2] + tuple(int(s) for s in compiled.float_net.input_shape))
        ev = evaluate(compiled, _batches(x, y, batch), progress=not args.no_progress,
                      n_batches=-(-len(y) // batch), decoder=tb.decoder, clock=args.clock)
        decoder, what = tb.decoder, f"{data}/{args.split} ({tb.describe()})"
    c = ev.cost
    pipeline = f", {compiled.latency_steps} extra steps until the last layer answers" if compiled.latency_steps else ""
    rep = {
        "chip": compiled.profile.name, "data": str(data), "split": args.split, "decoder": decoder,
        "timebase": None if tb is None else tb.to_dict(), "samples": ev.samples, "float_accuracy": ev.float_accuracy,
        "int_accuracy": ev.int_accuracy, "prediction_agreement": ev.prediction_agreement,
        "spike_agreement": ev.spike_agreement, **c.to_dict(), "clock_meaning": c.describe_clock(),
        "ann_macs": ev.dense_macs, "ann_energy_j": ev.dense_j,
        "dense_snn_macs": ev.dense_snn_macs, "dense_snn_energy_j": ev.dense_snn_j,
        "chips_used": compiled.chips_used, "board": board_report(compiled, c, ev.steps),
        "precision": [p.to_dict() for p in compiled.precision],
        "lossy_layers": [p.layer for p in compiled.precision if p.lossy],
        "latency": compiled.latency, "latency_steps": compiled.latency_steps,
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
          f"({c.step_latency_s * 1e9:.1f} ns per step" + pipeline + ")")
    print(f"power         {c.power_w * 1e3:.4g} mW mean ({c.dynamic_power_w * 1e3:.4g} mW dynamic), "
          f"{c.throughput_hz:.4g} inferences/s"
          + (f"; {c.overrun_steps:.1f} steps per inference took longer than dt" if c.overrun_steps else ""))
    print("counts        " + ", ".join(f"{k} {v:.1f}" for k, v in c.counts.items()))
    print(f"as an ANN     {ev.dense_macs} MACs, arithmetic only (with memory: spikeflow.metrics.energy): "
          + ", ".join(f"{k} {v:.3e} J" for k, v in ev.dense_j.items()))
    print(f"dense SNN     {ev.dense_snn_macs} MACs (every synapse every step): "
          + ", ".join(f"{k} {v:.3e} J" for k, v in ev.dense_snn_j.items()))
    if compiled.board is not None:
        print(f"board         {board_line(rep['board'])}")
    if rep["lossy_layers"]:
        print("lossy         " + "; ".join(
            f"{p['layer']}: {p['zeroed_frac']:.1%} zeroed, {p['clipped_frac']:.1%} clipped, "
            f"{p['weight_error']:.1%} weight error" for p in rep["precision"] if p["lossy"]))
    if args.plot:
        print(f"chart         {args.plot}")
    return 0
