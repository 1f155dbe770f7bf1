"""``spikeflow frontier``: accuracy against energy per inference for SNN variants and the same-size ANN."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from spikeflow import provenance
from spikeflow.commands._common import (
    add_json,
    add_limit,
    add_progress,
    add_threads,
    confidence,
    dataset,
    int_list,
    nonneg_float_list,
    nonneg_int,
    output_dir,
    positive_float,
    positive_int,
    probability,
)
from spikeflow.commands.train import CHIP_CHOICES


def register(sub) -> None:
    p = sub.add_parser("frontier", help="train SNN variants and the same-size ANN; plot accuracy against energy "
                                        "per inference (Pareto front) into an HTML report and frontier.json")
    p.add_argument("--data", required=True, type=dataset, help="dataset: nmnist5k or spoken-digits")
    p.add_argument("--out", required=True, type=output_dir, help="folder for report.html, frontier.png, frontier.json")
    p.add_argument("--epochs", type=positive_int, default=5, help="training epochs of every SNN (and of the ANNs "
                                                                  "unless --ann-epochs)")
    p.add_argument("--ann-epochs", type=positive_int, default=None,
                   help="training epochs of the ANNs (default: --epochs). With --init-from-ann and more ANN epochs "
                        "than --epochs, the SNNs start from the ANN's weights after (ann-epochs - epochs) epochs, so "
                        "they train as many epochs in total as the ANN")
    p.add_argument("--T-values", type=int_list, default=None,
                   help="time steps of the SNN variants, e.g. 3,2 (default: spoken-digits 50, others 3,2)")
    p.add_argument("--spike-reg-values", type=nonneg_float_list, default=None,
                   help="spike-regularisation weights tried at each T, e.g. 0,2,8 (default: 2)")
    p.add_argument("--prune", type=probability, default=0.5,
                   help="fraction of zero weights of the pruned variants (the strongest regularisation at each T, "
                        "pruned); 0: no pruned variant")
    p.add_argument("--channels", type=int_list, default=None,
                   help="conv channels of every model (nmnist5k; default 8,16, the demo's)")
    p.add_argument("--hidden", type=positive_int, default=None, help="recurrent width (spoken-digits; default 128)")
    p.add_argument("--learn-threshold", action="store_true", help="the SNNs learn per-neuron firing thresholds")
    p.add_argument("--pool-first", action="store_true",
                   help="conv SNNs average-pool each stage's conv output before its neurons: a quarter of the "
                        "neurons to update and hold state for. The same-size ANN is then trained in both layouts "
                        "(pool first, pool after its ReLUs; the same weights) and the SNNs are judged against both")
    p.add_argument("--distill", type=probability, default=0.0,
                   help="the SNNs learn from the trained ANN too (with two ANNs, the one more accurate on the "
                        "validation split): loss = (1 - W) x cross-entropy + W x knowledge distillation from its "
                        "logits (temperature 2); 0: off")
    p.add_argument("--init-from-ann", action="store_true",
                   help="the SNNs start from the trained ANN's weights (the --distill teacher; conv models; then "
                        "trained as usual)")
    p.add_argument("--no-binary-input", action="store_true",
                   help="feed event counts per bin instead of at most one spike per pixel and bin (event data)")
    p.add_argument("--confidence", type=confidence, default=0.9,
                   help="early-exit threshold on the top class probability (the early-exit points)")
    p.add_argument("--chip", action="append", default=None, choices=CHIP_CHOICES,
                   help="also give the SNNs' energy on this chip profile (repeatable; needs the energy model)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="learning rate of every model")
    p.add_argument("--batch-size", type=positive_int, default=64, help="samples per batch")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of every random choice")
    add_limit(p, "samples of each split")
    add_json(p, "the frontier")
    add_threads(p)
    add_progress(p)
    p.set_defaults(func=run, _parser=p)


def family(args) -> list:
    """The variants the arguments describe: the ANN (with ``--pool-first`` two: pooling after the ReLUs and
    pooling first); at each T an SNN for each spike-regularisation weight
    and the most regularised one pruned."""
    from spikeflow.train.frontier import EVENT_DATA, Variant

    spoken = args.data == "spoken-digits"
    Ts = args.T_values or ([50] if spoken else [3, 2])
    regs = args.spike_reg_values if args.spike_reg_values is not None else [2.0]
    if spoken and args.pool_first:
        from spikeflow.errors import ConfigError

        raise ConfigError("--pool-first applies to the conv models of image and event data, not spoken-digits")
    if spoken:
        base = dict(arch="recurrent", hidden=[args.hidden or 128], channels=[], tau_mem=0.02)
        binary = False
    else:
        base = dict(arch="conv", channels=list(args.channels or [8, 16]), pool_first=bool(args.pool_first))
        binary = args.data in EVENT_DATA and not args.no_binary_input
    tag = " bin" if binary else ""
    if args.learn_threshold:
        base["learn_threshold"] = True
        tag += " lt"
    ann_base = {k: v for k, v in base.items() if k != "learn_threshold"}
    if args.pool_first:  # the ANN in both layouts: the stronger one is the reference
        anns = [Variant("ANN pool-after", neuron="relu", T=max(Ts), **{**ann_base, "pool_first": False}),
                Variant("ANN pool-first", neuron="relu", T=max(Ts), **ann_base)]
    else:
        anns = [Variant("ANN", neuron="relu", T=max(Ts), **ann_base)]
    if args.init_from_ann:
        if spoken:
            from spikeflow.errors import ConfigError

            raise ConfigError("--init-from-ann applies to the conv models; the recurrent SNN's layers differ "
                              "from its ANN's")
        base["init_from_ann"] = True
        tag += " init"
    if args.distill:
        base["distill"] = float(args.distill)
        tag += f" kd {args.distill:g}"
    out = list(anns)
    for t in sorted(set(Ts), reverse=True):
        for r in regs:
            out.append(Variant(f"SNN T{t}{tag}" + (f" reg {r:g}" if r else ""), T=t, spike_reg=r,
                               binary_input=binary, **base))
        if args.prune > 0:
            r = max(regs)
            out.append(Variant(f"SNN T{t}{tag}" + (f" reg {r:g}" if r else "") + f" prune {args.prune:g}", T=t,
                               spike_reg=r, prune=args.prune, binary_input=binary, **base))
    return out


def _fmt_j(v: float) -> str:
    return f"{v * 1e9:.3g}"


def target_region(points: list, cmp: dict) -> tuple:
    """``(min accuracy, max energy)`` a point must reach: the ANN's accuracy less the allowed gap, and the
    allowed share of its energy (with several ANNs, the strictest of each)."""
    anns = [p for p in points if p["kind"] == "ann"]
    t = cmp["targets"]
    return (max(a["accuracy"] for a in anns) - t["accuracy_gap_points"] / 100,
            t["energy_ratio"] * min(a["energy_j"] for a in anns))


def write_report(out: Path, data: str, points: list, cmp: dict, flags: list, title: str) -> Path:
    """frontier.png and report.html in ``out`` (the table, the plot, the comparison with the ANN)."""
    from spikeflow import viz

    viz.pareto_plot(points, out / "frontier.png", title=f"{data}: accuracy vs energy per inference", frontier=flags,
                    target=target_region(points, cmp))
    viz.pareto_plot(points, out / "frontier_synops.png", key="synops", xlabel="synaptic operations per inference",
                    title=f"{data}: accuracy vs synaptic operations", frontier=None)
    return viz.html_report(out / "report.html", title, sections(data, points, cmp, flags))


def sections(data: str, points: list, cmp: dict, flags: list, images=("frontier.png", "frontier_synops.png")) -> list:
    """The report sections of a frontier (also used by the demo's report)."""
    chips = sorted({k[len("energy_"):-2] for p in points for k in p if k.startswith("energy_") and k.endswith("_j")
                    and k not in ("energy_j", "energy_skip_zeros_j")})
    head = ["model", "test accuracy (%)", "energy (nJ)", "synops", "ACs", "MACs"] + [f"{c} (nJ)" for c in chips] + [
        "on the Pareto front"]
    rows = [head]
    for p, f in zip(points, flags):
        rows.append([p["name"], f"{100 * p['accuracy']:.2f}", _fmt_j(p["energy_j"]), f"{p['synops']:.3g}",
                     f"{p['acs']:.3g}", f"{p['macs']:.3g}"] + [
            _fmt_j(p[f"energy_{c}_j"]) if f"energy_{c}_j" in p else "-" for c in chips] + ["yes" if f else ""])
    t = cmp["targets"]
    crow = [["SNN", "accuracy below the ANN (points)", "energy / ANN", "energy / zero-skipping ANN",
             "synops / ANN (non-zero-input MACs)", "synops / ANN (dense MACs)", "meets the targets"]] + [
        [r["name"], f"{r['accuracy_gap_points']:.2f}", f"{r['energy_ratio']:.3f}",
         f"{r['energy_ratio_vs_zero_skipping_ann']:.3f}", f"{r['synops_ratio']:.3f}",
         f"{r['synops_ratio_vs_dense_ann']:.3f}", "yes" if r["meets"] else "no"] for r in cmp["rows"]]
    anns = [p for p in points if p["kind"] == "ann"]
    several = len(anns) > 1
    if several:
        crow[0][1:6] = [f"{c} (worst over the ANNs)" for c in crow[0][1:6]]
    best = cmp["best"]
    verdict = (f"Targets: within {t['accuracy_gap_points']:g} point of the ANN's test accuracy at "
               f"<= {t['energy_ratio']:g}x its energy and <= {t['synops_ratio']:g}x its synaptic operations"
               + (f", against each of the {len(anns)} ANNs ({', '.join(a['name'] for a in anns)}); each figure "
                  "below is the worst of them. " if several else ". "))
    if best is not None:
        verdict += (("Met by " if cmp["met"] else "Not met; closest: ") + f"{best['name']} "
                    f"({best['accuracy_gap_points']:.2f} points below, energy {best['energy_ratio']:.3f}x, "
                    f"synops {best['synops_ratio']:.3f}x).")
    energy_text = ("Energy per inference on a 45 nm processor with its memory accesses (spikeflow.metrics.energy, "
                   "Horowitz, ISSCC 2014): " + "; ".join(
                       f"{a['name']} on a dense accelerator that computes every MAC "
                       f"{_fmt_j(a['energy_j'])} nJ, on hardware that skips zero activations "
                       f"{_fmt_j(a.get('energy_skip_zeros_j', a['energy_j']))} nJ for its "
                       f"{a.get('macs_nonzero', a['macs']):.3g} MACs on non-zero inputs" for a in anns) + ".")
    trained = [p for p in points if p.get("total_epochs") and p["kind"] != "snn-early-exit"]
    epochs_text = (" Epochs in total (an SNN started from an ANN counts the ANN's epochs before it): " + ", ".join(
        f"{p['name']} {p['total_epochs']}" + (f" ({p['epochs']} its own)" if p["epochs"] != p["total_epochs"] else "")
        for p in trained) + "." if trained else "")
    out = [
        {"heading": f"Accuracy-energy frontier ({data})", "images": list(images),
         "text": energy_text + " Each SNN variant and the ANN of the same layer sizes train with the same data, "
                 "split, seed and learning rate." + epochs_text + " 'bin': at most one input spike per pixel and "
                 "time bin. "
                 "'early exit': the SNN answers at the first step where its top class probability reaches the "
                 "confidence; its cost is the mean cost of the steps it ran. Synaptic operations count one "
                 "accumulate per spike and nonzero fan-out weight, one multiply-accumulate per nonzero analog "
                 "input and nonzero weight (NeuroBench).",
         "table": rows},
        {"heading": "SNNs against the ANN", "text": verdict + " The shaded region of the plot is the target.",
         "table": crow},
    ]
    if several:
        rows2 = [["SNN", "ANN", "accuracy below it (points)", "energy / it", "synops / it", "meets the targets"]]
        for r in cmp["rows"]:
            for name, e in r["against"].items():
                rows2.append([r["name"], name, f"{e['accuracy_gap_points']:.2f}", f"{e['energy_ratio']:.3f}",
                              f"{e['synops_ratio']:.3f}", "yes" if e["meets"] else "no"])
        out.append({"heading": "SNNs against each ANN", "text": "The same figures against each ANN layout.",
                    "table": rows2})
    return out


def _command(args) -> str:
    """The command line that gives these arguments (the options that differ from their defaults)."""
    words = ["spikeflow", "frontier"]
    for a in args._parser._actions:
        if not a.option_strings or a.dest == "help":
            continue
        value = getattr(args, a.dest)
        if value is None or value is False or (value == a.default and a.dest not in ("data", "out")):
            continue
        if value is True:
            words.append(a.option_strings[0])
        elif isinstance(value, list) and a.dest == "chip":
            for v in value:
                words += [a.option_strings[0], v]
        elif isinstance(value, list):
            words += [a.option_strings[0], ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
        else:
            words += [a.option_strings[0], str(value)]
    return " ".join(shlex.quote(w) for w in words)


def pick_teacher(anns: list, variants: list, points: list) -> tuple:
    """``((model, variant), init_source)`` of the ANN the SNNs learn from: the one with the highest validation
    accuracy (the first on a tie; the test split chooses nothing), and the model to start from (its weights part
    way through when a snapshot was kept, else the trained ANN)."""
    import copy

    acc = [next(p.get("val_accuracy") or 0.0 for p in points if p["name"] == v.name) for v in variants]
    i = acc.index(max(acc))
    model, snapshot = anns[i]["model"], anns[i]["snapshot"]
    source = model
    if snapshot is not None:
        source = copy.deepcopy(model)
        source.load_state_dict(snapshot)
    return (model, variants[i]), source


def run(args) -> int:
    import torch

    from spikeflow.atomic import atomic_write_text
    from spikeflow.commands._common import emit_json
    from spikeflow.data.datasets import DATASETS
    from spikeflow.errors import ConfigError
    from spikeflow.train.frontier import compare, pareto, train_variant

    if args.data not in DATASETS:
        raise ConfigError(f"--data {args.data}: frontier takes a built-in dataset ({', '.join(DATASETS)})")
    t0 = time.time()
    commit = provenance.commit()  # the code that runs, before anything can change the checkout
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    variants = family(args)
    ann_epochs = args.ann_epochs or args.epochs
    # with more ANN than SNN epochs, an SNN started from the ANN starts from its weights after this many epochs
    init_epochs = ann_epochs - args.epochs if args.init_from_ann and ann_epochs > args.epochs else ann_epochs
    points, anns, ann_variants = [], [], []
    teacher = init_source = None
    for v in variants:
        if v.spiking and teacher is None and anns:
            teacher, init_source = pick_teacher(anns, ann_variants, points)
            print(f"frontier: the SNNs learn from {teacher[1].name}")
        print(f"frontier: training {v.name}")
        if not v.spiking:
            ann_variants.append(v)
        points += train_variant(v, args.data, epochs=ann_epochs if not v.spiking else args.epochs, limit=args.limit,
                                seed=args.seed, lr=args.lr, batch_size=args.batch_size, progress=not args.no_progress,
                                chips=args.chip or (), confidence=args.confidence if v.spiking else None,
                                teacher=teacher if (v.distill or v.init_from_ann) else None,
                                keep=anns if not v.spiking else None, init_source=init_source,
                                init_epochs=init_epochs, snapshot_epoch=init_epochs if not v.spiking else 0)
    flags = pareto(points)
    for p, f in zip(points, flags):
        p["pareto"] = f
    cmp = compare(points)
    result = {"data": args.data, "command": _command(args),
              "commit": commit, "machine": provenance.machine(), "epochs": args.epochs, "ann_epochs": ann_epochs,
              "teacher": teacher[1].name if teacher is not None else None, "limit": args.limit,
              "seed": args.seed, "points": points, "comparison": cmp, "seconds": round(time.time() - t0, 1)}
    atomic_write_text(out / "frontier.json", json.dumps(result, indent=1))
    write_report(out, args.data, points, cmp, flags, f"spikeflow frontier: {args.data}")
    emit_json(args.json, result)
    best = cmp["best"]
    if best is not None:
        print(("frontier: targets met by " if cmp["met"] else "frontier: targets missed; closest ") +
              f"{best['name']}: {best['accuracy_gap_points']:.2f} points below the ANN"
              + ("s' best" if len(anns) > 1 else "") + ", energy "
              f"{best['energy_ratio']:.3f}x, synops {best['synops_ratio']:.3f}x")
    print(f"frontier: {out / 'report.html'} and {out / 'frontier.json'} ({result['seconds']} s)")
    return 0
