"""``spikeflow demo``: the main job. SNN vs same-shape ANN on event data, with an HTML report.

Each stage keeps its result in ``runs/demo`` (trainings checkpoint every epoch and every
50 steps), so an interrupted demo picks up where it stopped when run again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from spikeflow.commands._common import add_limit, add_progress, add_threads, dataset, output_dir, positive_int

DEMO_DATA = "nmnist5k"


def register(sub) -> None:
    p = sub.add_parser("demo", help="train an SNN and the same-shape ANN on nmnist5k; write runs/demo/report.html")
    p.add_argument("--out", default="runs/demo", type=output_dir, help="output folder")
    p.add_argument("--epochs", type=positive_int, default=5, help="training epochs of each model")
    p.add_argument("--T", type=positive_int, default=6, help="number of time steps (event frames) per sample")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--data", default=DEMO_DATA, type=dataset, help="dataset name or data files")
    add_limit(p, "training samples")
    add_threads(p)
    add_progress(p)
    p.set_defaults(func=run)


def _load(name: str, T: int):
    """Event frames ``[N, T, 2, 34, 34]`` for event datasets (nmnist5k), images otherwise."""
    from spikeflow.train.datasets import load_tensors

    kw = {"T": T} if name in ("nmnist5k", "spoken-digits") else {}
    return name, load_tensors(name, "train", **kw), load_tensors(name, "test", **kw)


# The sparse SNN of the demo's frontier: 3 time bins with at most one input spike per pixel and bin, spike
# regularisation and half the weights pruned (as in benchmarks/results/frontier-nmnist5k-pool-after.json).
SPARSE = {"T": 3, "spike_reg": 2.0, "prune": 0.5}


def _train(model, data, out: Path, epochs: int, loss: str, progress: bool, resume: bool, **extra):
    from spikeflow.train.datasets import holdout
    from spikeflow.train.trainer import TrainConfig, Trainer

    train, val = holdout(*data, 0.1, seed=0)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, loss=loss, seed=0, checkpoint_every=50,
                      progress=progress, **extra)
    Trainer(model, train, val, cfg, out_dir=out, extra_meta={"data": "demo"}).fit(resume=resume)
    return model


def _partial_accuracy(snn, ann, x, y, fractions, sequence: bool):
    """Test accuracy when only the first part of each input stream has been seen.

    Returns ``(snn, ann, ann_raw)``. Event data: the ANN (trained on frames summed over the whole
    window) sees the events so far summed and rescaled by ``T / t`` to the full window's statistics
    (``ann``), and, for reference, the plain partial sum (``ann_raw``). Static images: the ANN has no
    partial answer (``None``); it needs the whole input.
    """
    import torch

    from spikeflow.train.losses import logits

    snn_acc, ann_acc, ann_raw = [], [], []
    with torch.no_grad():
        snn.eval()
        ann.eval()
        out = torch.cat([snn(x[i:i + 256]) for i in range(0, len(y), 256)], dim=1)  # [T, N, C]
        T = out.shape[0]

        def ann_accuracy(xa):
            pred = torch.cat([ann(xa[i:i + 256]) for i in range(0, len(y), 256)]).argmax(-1)
            return float((pred == y).float().mean())

        for f in fractions:
            t = max(1, round(f * T))
            snn_acc.append(float((logits(out[:t], "ce_max").argmax(-1) == y).float().mean()))
            if sequence:
                ann_acc.append(ann_accuracy(x[:, :t] * (T / t)))
                ann_raw.append(ann_accuracy(x[:, :t]))
            else:
                ann_acc.append(ann_accuracy(x) if t == T else None)
                ann_raw.append(ann_acc[-1])
    return snn_acc, ann_acc, ann_raw


def _frontier(args, name, keep, classes, snn, ann, snn_eval, ann_eval, xt, yt, out: Path, progress: bool):
    """Train the sparse SNN; price it, the SNN, the ANN and the SNNs' early exits; draw the Pareto plot.
    Returns ``(points, comparison, flags)``."""
    import torch

    from spikeflow import viz
    from spikeflow.commands.frontier import target_region
    from spikeflow.train import zoo
    from spikeflow.train.frontier import compare, early_exit, measure_point, pareto
    from spikeflow.train.trainer import evaluate, seed_all

    T = SPARSE["T"]
    sequence = xt.dim() == 5
    if sequence:  # event data: re-binned into T bins, at most one spike per pixel and bin
        _, (x2, y2), (xt2, yt2) = _load(args.data, T)
        x2, xt2 = (x2[keep] > 0).float(), (xt2 > 0).float()
        y2 = y2[keep]
    else:
        (x2, y2), (xt2, yt2) = _load(args.data, T)[1:]
        x2, y2 = x2[keep], y2[keep]
    seed_all(0)
    sparse = zoo.for_data("conv", x2.shape[1:], classes, neuron="lif", channels=[8, 16],
                          **({} if sequence else {"T": T}))
    print(f"demo: training the sparse SNN (T {T}, spike regularisation {SPARSE['spike_reg']:g}, "
          f"{SPARSE['prune']:.0%} of the weights pruned)")
    _train(sparse, (x2, y2), out / "snn_sparse", args.epochs, "ce_max", progress, resume=True,
           spike_reg=SPARSE["spike_reg"], prune=SPARSE["prune"])
    sparse_acc = evaluate(sparse, xt2, yt2, loss="ce_max")["accuracy"]
    points = [{"name": "ANN", "kind": "ann", "accuracy": ann_eval["accuracy"],
               **measure_point(ann, xt[:64], spiking=False)}]
    for label, model, xs, ys, acc, steps in ((f"SNN T{args.T}", snn, xt, yt, snn_eval["accuracy"], args.T),
                                              (f"SNN T{T} sparse", sparse, xt2, yt2, sparse_acc, T)):
        points.append({"name": label, "kind": "snn", "accuracy": acc,
                       **measure_point(model, xs[:64], spiking=True, steps=steps)})
        ex = early_exit(model, xs, ys, loss="ce_max", confidence=0.9)
        points.append({"name": f"{label} early exit 0.9", "kind": "snn-early-exit", "accuracy": ex["accuracy"],
                       **measure_point(model, xs[:64], spiking=True, steps=steps, decision=ex["steps"][:64])})
    flags = pareto(points)
    for p, f in zip(points, flags):
        p["pareto"] = f
    cmp = compare(points)
    viz.pareto_plot(points, out / "frontier.png", title=f"{name}: accuracy vs energy per inference", frontier=flags,
                    target=target_region(points, cmp))
    torch.manual_seed(0)
    return points, cmp, flags


def run(args) -> int:
    import shutil

    import torch

    from spikeflow import viz
    from spikeflow.atomic import atomic_write_text
    from spikeflow.commands.frontier import sections as frontier_sections
    from spikeflow.metrics.energy import energy, measure
    from spikeflow.train import zoo
    from spikeflow.train.metrics import record_spikes
    from spikeflow.train.trainer import evaluate, seed_all

    t0 = time.time()
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    from spikeflow.data.modelinput import spread

    torch.manual_seed(0)
    name, (x, y), (xt, yt) = _load(args.data, args.T)
    keep = torch.from_numpy(spread(len(y), args.limit))  # spread evenly: the splits are sorted by label
    x, y = x[keep], y[keep]
    sequence = x.dim() == 5
    classes = int(max(y.max(), yt.max())) + 1
    print(f"demo: {name}, {len(y)} training and {len(yt)} test samples of shape {tuple(x.shape[1:])}")
    kw = dict(channels=[8, 16], T=args.T)
    seed_all(0)
    snn = zoo.for_data("conv", x.shape[1:], classes, neuron="lif", **kw)
    seed_all(1)
    ann = zoo.for_data("conv", x.shape[1:], classes, neuron="relu", channels=[8, 16])
    progress = not args.no_progress
    print("demo: training the SNN (LIF conv net, LI readout, max-membrane loss)")
    _train(snn, (x, y), out / "snn", args.epochs, "ce_max", progress, resume=True)
    print("demo: training the ANN of the same shape (ReLU)")
    _train(ann, (x, y), out / "ann", args.epochs, "ce", progress, resume=True)

    snn_eval = evaluate(snn, xt, yt, loss="ce_max", spikes=True)
    ann_eval = evaluate(ann, xt, yt, loss="ce")
    sample = xt[:64]
    snn_ops = energy(measure(snn, sample, kind="snn"), "45nm")  # 45 nm, memory traffic counted
    ann_ops = energy(measure(ann, sample, kind="ann"), "45nm")
    fractions = [i / 8 for i in range(1, 9)]
    snn_curve, ann_curve, ann_raw = _partial_accuracy(snn, ann, xt, yt, fractions, sequence)
    nan = float("nan")
    curves = {"SNN": snn_curve, "ANN": [nan if a is None else a for a in ann_curve]}
    if sequence:
        curves["ANN, partial sum not rescaled"] = ann_raw
    viz.accuracy_curve(fractions, curves, out / "accuracy_vs_stream.png",
                       xlabel="fraction of the input stream seen (%)", title="early answers")
    viz.bar_chart({"SNN": snn_eval["accuracy"] * 100, "ANN": ann_eval["accuracy"] * 100}, out / "accuracy.png",
                  ylabel="test accuracy (%)", title=f"{name}: test accuracy")
    viz.bar_chart({"SNN (AC)": snn_ops.acs, "SNN (MAC)": snn_ops.macs, "ANN (MAC)": ann_ops.macs},
                  out / "synops.png", ylabel="operations per inference", title="synaptic operations", log=True)
    e_snn, e_ann = snn_ops.total_j * 1e9, ann_ops.total_j * 1e9
    viz.bar_chart({"SNN": e_snn, "ANN": e_ann}, out / "energy.png", ylabel="nJ per inference (estimate)",
                  title="energy estimate, 45 nm with memory access (Horowitz 2014)")
    with torch.no_grad(), record_spikes(snn) as rec:
        snn.eval()
        snn(xt[:1])
    first_layer = next(iter(rec))
    spikes = rec[first_layer][0][:, 0].reshape(rec[first_layer][0].shape[0], -1)
    active = spikes.sum(0).argsort(descending=True)[:150]
    viz.raster(spikes[:, active.sort().values], out / "raster.png", dt=float(snn.spec["dt"]),
               title=f"spikes of layer {first_layer} (150 most active neurons), one test sample")
    frame = xt[0].sum(0) if sequence else xt[0]
    viz.event_frame(frame, out / "input.png", title=f"input, label {int(yt[0])}")

    points, cmp, flags = _frontier(args, name, keep, classes, snn, ann, snn_eval, ann_eval, xt, yt, out, progress)
    rates = snn_eval["spike_rates"]
    summary = {
        "data": name, "snn_accuracy": snn_eval["accuracy"], "ann_accuracy": ann_eval["accuracy"],
        "snn_spike_rates": rates, "activation_sparsity": snn_eval["activation_sparsity"],
        "snn_ops": {"macs": snn_ops.macs, "acs": snn_ops.acs}, "ann_ops": {"macs": ann_ops.macs},
        "energy_nj_estimate": {"snn": e_snn, "ann": e_ann},
        "energy": {"snn": snn_ops.as_dict(), "ann": ann_ops.as_dict()},
        "accuracy_vs_fraction": {"fraction": fractions, "snn": snn_curve, "ann": ann_curve,
                                 **({"ann_not_rescaled": ann_raw} if sequence else {})},
        "frontier": {"points": points, "comparison": cmp},
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    note = "" if sequence else " Static images are fed to the SNN as constant input currents."
    sections = [
        {"heading": "Test accuracy", "text": f"Dataset {name}.{note}", "images": ["accuracy.png"],
         "table": [["model", "test accuracy (%)"], ["SNN (LIF)", f"{100 * snn_eval['accuracy']:.2f}"],
                   ["ANN (ReLU, same shape)", f"{100 * ann_eval['accuracy']:.2f}"]]},
        {"heading": "Early answers", "images": ["accuracy_vs_stream.png"],
         "text": "Accuracy when only the first part of each input stream has been seen. " + (
             "The ANN was trained on each recording's events summed over the whole window; given the first "
             "part of the stream it sees the events so far summed and rescaled to the whole window "
             "(multiplied by window / time seen), the input statistics it was trained on. The last column "
             "shows the plain partial sum, for reference." if sequence else
             "A static image has no partial stream for the ANN: it answers only once it has the whole input "
             "(no partial answer, shown as '-'); the SNN answers after every step of its input current."),
         "table": [["stream seen (%)", "SNN (%)", "ANN (%)"] + (["ANN, not rescaled (%)"] if sequence else [])] + [
             [f"{100 * f:.0f}", f"{100 * s:.1f}", "-" if a is None else f"{100 * a:.1f}"]
             + ([f"{100 * r:.1f}"] if sequence else [])
             for f, s, a, r in zip(fractions, snn_curve, ann_curve, ann_raw)]},
        {"heading": "Synaptic operations and spike rates", "images": ["synops.png"],
         "table": [["", "MAC / inference", "AC / inference"], ["SNN", f"{snn_ops.macs:.3g}", f"{snn_ops.acs:.3g}"],
                   ["ANN", f"{ann_ops.macs:.3g}", "0"]] + [[f"spike rate {k}", f"{v:.4f}", "per neuron per step"]
                                                            for k, v in rates.items()]},
        {"heading": "Energy per inference (estimate)", "images": ["energy.png"],
         "text": f"45 nm float32 figures (Horowitz, ISSCC 2014) with memory access: synaptic operations, neuron "
                 f"updates, weight fetches, membrane state reads and writes and activations, each memory priced "
                 f"by its size (docs/energy.md). The ANN computes every MAC. SNN {e_snn:.3g} nJ, ANN {e_ann:.3g} nJ.",
         "table": [["", "compute (nJ)", "state (nJ)", "weights (nJ)", "activations (nJ)"]] + [
             [k] + [f"{r.breakdown_j[c] * 1e9:.3g}" for c in ("compute", "state", "weights", "activations")]
             for k, r in (("SNN", snn_ops), ("ANN", ann_ops))]},
        *frontier_sections(name, points, cmp, flags, images=("frontier.png",)),
        {"heading": "Raster and input", "images": ["raster.png", "input.png"]},
    ]
    viz.html_report(out / "report.html", "spikeflow demo: SNN vs ANN", sections)
    print(f"SNN test accuracy {100 * snn_eval['accuracy']:.2f} %, ANN {100 * ann_eval['accuracy']:.2f} %")
    print(f"synaptic ops per inference: SNN {snn_ops.acs:.3g} AC + {snn_ops.macs:.3g} MAC, ANN {ann_ops.macs:.3g} MAC")
    print(f"energy estimate (45 nm, memory access counted): SNN {e_snn:.3g} nJ, ANN {e_ann:.3g} nJ per inference")
    best = cmp["best"]
    if best is not None:
        print(f"frontier: {best['name']}: {best['accuracy_gap_points']:.2f} points below the ANN at "
              f"{best['energy_ratio']:.3f}x its energy and {best['synops_ratio']:.3f}x its synaptic operations")
    print(f"report: {out / 'report.html'} ({summary['seconds']} s)")
    return 0
