"""``spikeflow nir info|run``: inspect a NIR file; run it on spikes or events from an ``.npz`` file."""

from __future__ import annotations

import os

import numpy as np

from spikeflow.commands._common import (
    add_json,
    add_limit,
    add_split,
    dataset,
    input_file,
    positive_float,
    positive_int,
    word,
)
from spikeflow.errors import ConfigError, InputError, NIRError


def register(sub) -> None:
    p = sub.add_parser("nir", help="inspect or run NIR model files")
    nsub = p.add_subparsers(dest="nir_command", metavar="ACTION", required=True)
    info = nsub.add_parser("info", help="nodes, shapes, parameters, neuron and synapse counts, dt")
    info.add_argument("model", type=input_file, help="NIR file (.nir, HDF5)")
    run = nsub.add_parser("run", help="run a NIR model on input spikes/events; prints output spikes and prediction")
    run.add_argument("model", type=input_file, help="NIR file (.nir, HDF5)")
    run.add_argument("--input", default=None, type=input_file,
                     help=".npz with a dense array [T, *input] or [T, B, *input] (key 'spikes' or the only array), "
                          "or event fields t (microseconds), x[, y, p]")
    run.add_argument("--key", type=word, help="array to use from the .npz")
    run.add_argument("--data", default=None, type=dataset,
                     help="instead of --input: a dataset name or path, cut to the file's recorded time base "
                          "(as eval, stream and hw run see it); reports accuracy")
    add_split(run)
    add_limit(run)
    run.add_argument("--T", type=positive_int, default=None,
                     help="with --data: number of time steps (default: the file's time base)")
    add_json(run, "with --data: the figures")
    run.add_argument("--dt", type=positive_float,
                     help="length of one time step in seconds (default: the file's, else 1 ms with a warning)")
    run.add_argument("--convention", default="auto", choices=("auto", "spikeflow", "snntorch", "norse"),
                     help="whose discretisation the file follows (auto: its metadata, else a guess that warns)")
    run.add_argument("--discretization", choices=("exact", "euler"),
                     help="integration of the neuron ODEs (default: the convention's)")
    p.set_defaults(func=_dispatch, nir_parser=p)
    for q in (info, run):
        q.add_argument("--max-bytes", type=positive_int, default=None,
                       help="largest array data to read (default 1 GiB)")


def _read(args):
    from spikeflow.ir import read_graph
    from spikeflow.ir.reader import DEFAULT_MAX_BYTES

    return read_graph(args.model, max_bytes=args.max_bytes or DEFAULT_MAX_BYTES)


def _fmt(shape) -> str:
    return "?" if shape is None else "(" + ", ".join(str(s) for s in shape) + ")"


def _params(node) -> str:
    parts = []
    for field, value in vars(node).items():
        if field in ("input_type", "output_type", "metadata") or not isinstance(value, (np.ndarray, np.generic)):
            continue
        value = np.asarray(value)
        if value.dtype.kind not in "fiu" or value.size == 0:
            continue
        if value.size == 1:
            parts.append(f"{field}={value.reshape(-1)[0]:.4g}")
        elif np.all(value == value.reshape(-1)[0]):
            parts.append(f"{field}={value.reshape(-1)[0]:.4g} x{value.size}")
        else:
            parts.append(f"{field}=[{value.min():.3g}..{value.max():.3g}] x{value.size}")
    return ", ".join(parts)


NEURON_TYPES = ("LIF", "IF", "LI", "CubaLIF", "CubaLI", "I")


def summary(graph) -> dict:
    """Nodes with shapes and parameter summaries, neuron and synapse counts (used by ``nir info``)."""
    from spikeflow.ir import shapes as rules
    from spikeflow.ir.conventions import declared
    from spikeflow.ir.importer import graph_dt, guess_convention
    from spikeflow.ir.topology import components, flatten

    flat = flatten(graph)
    out_shapes = rules.infer(flat)
    rows, neurons, synapses, weights = [], 0, 0, 0
    comps = components(flat)
    cyclic = sum(1 for c in comps if c.cyclic)
    for name in [n for c in comps for n in c.nodes]:  # execution order
        node = flat.nodes[name]
        kind = type(node).__name__
        srcs = flat.sources(name)
        in_shape = out_shapes.get(srcs[0]) if srcs else out_shapes.get(name)
        out_shape = out_shapes.get(name)
        if kind in NEURON_TYPES and out_shape is not None:
            neurons += int(np.prod(out_shape))
        if kind in ("Affine", "Linear", "Conv1d", "Conv2d"):
            w = np.asarray(node.weight)
            weights += w.size
            if kind in ("Affine", "Linear"):
                synapses += w.size
            elif out_shape is not None:
                synapses += int(np.prod(out_shape)) * int(np.prod(w.shape[1:]))  # each output sees C_in/g * kernel
        rows.append((name, kind, _fmt(in_shape), _fmt(out_shape), _params(node)))
    return {"rows": rows, "neurons": neurons, "synapses": synapses, "weights": weights, "edges": len(flat.edges),
            "cycles": cyclic, "dt": graph_dt(graph), "declared": declared(graph),
            "convention": declared(graph) or guess_convention(graph),
            "inputs": {n: out_shapes.get(n) for n in flat.inputs},
            "outputs": {n: out_shapes.get(n) for n in flat.outputs}}


def run_info(args) -> int:
    graph = _read(args)
    s = summary(graph)
    print(f"file       {args.model}")
    dt = f"{s['dt']} s" if s["dt"] is not None else "not set"
    if s["declared"]:
        dt += f" (declares convention {s['declared']})"
    elif s["dt"] is None and s["convention"]:
        dt += f" (looks like a {s['convention']} file; --convention spikeflow reads it as written)"
    print(f"dt         {dt}")
    print("inputs     " + ", ".join(f"{k} {_fmt(v)}" for k, v in s["inputs"].items()))
    print("outputs    " + ", ".join(f"{k} {_fmt(v)}" for k, v in s["outputs"].items()))
    print(f"neurons    {s['neurons']}")
    print(f"synapses   {s['synapses']} ({s['weights']} weights)")
    print(f"nodes      {len(s['rows'])}, edges {s['edges']}, recurrent cycles {s['cycles']}")
    w = max(len(r[0]) for r in s["rows"])
    for name, kind, i, o, params in s["rows"]:
        print(f"  {name:<{w}}  {kind:<9} {i:>14} -> {o:<14} {params}")
    return 0


def load_input(path: str, key, input_shape, dt: float):
    """A float tensor [T, B, *input_shape] from an .npz (dense spikes or events)."""
    import torch

    if not os.path.isfile(path):
        raise InputError(f"--input {path}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise InputError(f"--input {path}: not a NumPy .npz (or .npy) file of arrays")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise InputError(f"--input {path}: not a readable .npz file ({err})") from None
    if key is not None:
        if key not in arrays:
            raise InputError(f"--input {path}: no array {key!r}; arrays: {sorted(arrays)}")
        arr = arrays[key]
    elif "spikes" in arrays:
        arr = arrays["spikes"]
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    elif "t" in arrays and "x" in arrays:
        arr = None
    else:
        raise InputError(f"--input {path}: several arrays {sorted(arrays)}; choose one with --key")
    if arr is not None and arr.dtype.names:  # a structured events array (tonic's x, y, t, p)
        arrays, arr = {n: arr[n] for n in arr.dtype.names}, None
    if arr is None:
        return torch.from_numpy(_bin_events(arrays, input_shape, dt, path))
    if arr.dtype.kind not in "fiub":
        raise InputError(f"--input {path}: array has dtype {arr.dtype}; numbers expected")
    arr = arr.astype(np.float32)
    n = len(input_shape) if input_shape is not None else arr.ndim - 2
    if arr.ndim == n + 1:
        arr = arr[:, None]
    if arr.ndim != n + 2 or (input_shape is not None and tuple(arr.shape[2:]) != tuple(input_shape)):
        raise InputError(f"--input {path}: array of shape {arr.shape} does not fit [T, B, {_fmt(input_shape)[1:-1]}] "
                         f"or [T, {_fmt(input_shape)[1:-1]}]")
    if not np.isfinite(arr).all():
        raise InputError(f"--input {path}: array contains NaN or inf")
    return torch.from_numpy(arr)


def _bin_events(ev: dict, input_shape, dt: float, path: str) -> np.ndarray:
    if input_shape is None:
        raise InputError(f"--input {path}: events need a graph with a known input shape")
    t = np.asarray(ev["t"], dtype=np.int64)
    if t.size == 0:
        raise InputError(f"--input {path}: no events")
    if (np.diff(t) < 0).any():
        raise InputError(f"--input {path}: field 't' must be sorted (microseconds)")
    steps = ((t - t[0]) // max(1, int(round(dt * 1e6)))).astype(np.int64)
    frames = np.zeros((int(steps[-1]) + 1, 1) + tuple(input_shape), np.float32)
    fields = {1: ("x",), 2: ("y", "x"), 3: ("p", "y", "x")}.get(len(input_shape))
    if fields is None:
        raise InputError(f"--input {path}: events can feed inputs of rank 1-3, the graph wants {_fmt(input_shape)}")
    idx = []
    for axis, name in enumerate(fields):
        if name == "p" and "p" not in ev:
            v = np.zeros_like(steps)
        elif name not in ev:
            raise InputError(f"--input {path}: events need field {name!r} for input shape {_fmt(input_shape)}")
        else:
            v = np.asarray(ev[name]).astype(np.int64)
        if name == "p" and input_shape[0] == 1:
            v = np.zeros_like(v)
        if (v < 0).any() or (v >= input_shape[axis]).any():
            raise InputError(f"--input {path}: field {name!r} has values in [{v.min()}, {v.max()}], outside "
                             f"[0, {input_shape[axis] - 1}] of the input shape {_fmt(input_shape)}")
        idx.append(v)
    np.add.at(frames, (steps, np.zeros_like(steps), *idx), 1.0)
    return frames


def run_run(args) -> int:
    import torch

    from spikeflow.ir import from_nir
    from spikeflow.ir.importer import GraphModule

    if (args.input is None) == (args.data is None):
        raise ConfigError("nir run: give exactly one of --input FILE.npz or --data NAME|PATH")
    graph = _read(args)
    dt = args.dt
    if args.data is not None:
        from spikeflow.commands._timebase import apply_overrides, nir_timebase

        tb, overridden = apply_overrides(nir_timebase(graph, args.model), args.dt, args.T)
        dt = tb.dt
    elif args.T is not None:
        raise ConfigError("nir run: --T applies with --data (an --input file sets its own steps)")
    module: GraphModule = from_nir(graph, dt=dt, convention=args.convention,
                                   discretization=args.discretization)
    if len(module.input_shapes) != 1:
        raise NIRError(f"{args.model}: `nir run` feeds graphs with one input; this one has {list(module.input_shapes)}")
    in_shape = next(iter(module.input_shapes.values()))
    if args.data is not None:
        return _run_data(args, module, in_shape, tb, overridden)
    x = load_input(args.input, args.key, in_shape, module.dt)
    with torch.no_grad():
        out = module(x)
    outs = out if isinstance(out, dict) else {module.flat.outputs[0]: out}
    print(f"input      {tuple(x.shape)} (T, B, ...), dt {module.dt} s, {int((x != 0).sum())} non-zero entries")
    for name, y in outs.items():
        y = y.reshape(y.shape[0], y.shape[1], -1)
        spiking = bool(((y == 0) | (y == 1)).all())
        score = y.sum(0) if spiking else y.max(0).values
        what = "spike counts" if spiking else "max membrane"
        print(f"output {name}: {tuple(out.shape if not isinstance(out, dict) else out[name].shape)}, {what}")
        for b in range(score.shape[0]):
            values = " ".join(f"{v:g}" for v in score[b].tolist())
            print(f"  sample {b}: prediction {int(score[b].argmax())}  [{values}]")
    return 0


def _run_data(args, module, in_shape, tb, overridden) -> int:
    """Accuracy of the graph on a dataset cut to its recorded time base (as eval, stream and hw run see it)."""
    import time

    import torch

    from spikeflow.commands._timebase import decode
    from spikeflow.data.modelinput import model_steps

    start = time.perf_counter()
    x, y = model_steps(args.data, args.split, tb, limit=args.limit, overridden=overridden)
    x = x.reshape(x.shape[:2] + tuple(int(s) for s in in_shape))
    preds = []
    with torch.no_grad():
        for i in range(0, x.shape[1], 256):
            out = module(torch.from_numpy(x[:, i:i + 256]))
            out = out if not isinstance(out, dict) else out[module.flat.outputs[0]]
            preds.append(decode(out.numpy(), tb.decoder))
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    acc = float((pred == y).mean()) if len(y) else float("nan")
    rep = {"model": str(args.model), "data": str(args.data), "split": args.split, "samples": int(len(y)),
           "accuracy": acc, "decoder": tb.decoder, "dt": module.dt, "T": tb.T, "timebase": tb.to_dict(),
           "seconds": time.perf_counter() - start, "predictions": [int(v) for v in pred]}
    from spikeflow.commands._common import emit_json

    emit_json(args.json, rep)
    if args.json != "-":
        print(f"{args.data}/{args.split}: accuracy {100 * acc:.2f} % ({len(y)} samples; {tb.describe()})")
    return 0


def _dispatch(args) -> int:
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return run_info(args) if args.nir_command == "info" else run_run(args)
        finally:
            for w in caught:  # what was assumed about the file, one line each
                print(f"spikeflow: warning: {w.message}", file=sys.stderr)
