"""The accuracy-energy frontier: a family of SNN variants and the same-size ANN, trained and measured alike.

Each variant trains with the ``Trainer`` (same data, split, seed, epochs and learning rate), then its test
accuracy is measured on the test split and its synaptic operations and energy per inference with
``spikeflow.metrics.energy`` (45 nm with memory accesses, and chip profiles) on the first test samples.
The ANN's energy is that of a dense accelerator (every MAC, the energy model's default); the same ANN on
hardware that skips zero activations is recorded next to it. An SNN's early-exit point (answer once the
top class probability of the decoded readout reaches a confidence; cost counted up to that step) is a
point too. ``pareto`` marks the points no other point beats
on both accuracy and energy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from spikeflow.errors import ConfigError

EVENT_DATA = ("nmnist5k", "spoken-digits")


@dataclass
class Variant:
    """One model of the family. ``neuron='relu'`` is the ANN (it sees the event frames summed)."""
    name: str
    neuron: str = "lif"
    T: int = 6
    arch: str = "conv"
    channels: list = field(default_factory=lambda: [8, 16])
    hidden: Optional[list] = None
    spike_reg: float = 0.0
    target_rate: Optional[list] = None
    prune: float = 0.0
    binary_input: bool = False  # event counts per bin clipped to 1 (at most one input spike per pixel and bin)
    learn_threshold: bool = False
    qat_bits: int = 0
    tau_mem: Optional[float] = None
    pool_first: bool = False  # conv stages pool the currents before the neurons (a quarter of the neurons)
    distill: float = 0.0  # weight of knowledge distillation from the family's trained ANN (0: off)
    init_from_ann: bool = False  # start from the trained ANN's weights (conv, linear, BatchNorm)

    @property
    def spiking(self) -> bool:
        return self.neuron != "relu"


def default_family(data: str, T: int | None = None) -> list[Variant]:
    """The variants ``spikeflow frontier`` trains for ``data`` (``T``: the SNNs' time steps; default the data's)."""
    if data == "spoken-digits":
        t = T or 50
        base = dict(arch="recurrent", hidden=[128], channels=[], tau_mem=0.02)
        return [Variant("ANN", neuron="relu", T=t, **base),
                Variant(f"SNN T{t}", T=t, **base),
                Variant(f"SNN T{t} reg", T=t, spike_reg=1.0, **base),
                Variant(f"SNN T{max(1, t // 2)} reg", T=max(1, t // 2), spike_reg=1.0, **base),
                Variant(f"SNN T{t} reg prune 0.5", T=t, spike_reg=1.0, prune=0.5, **base)]
    t = T or 6
    low = max(1, min(t, 2))
    return [Variant("ANN", neuron="relu", T=t),
            Variant(f"SNN T{t}", T=t),
            Variant(f"SNN T{low} bin", T=low, binary_input=True),
            Variant(f"SNN T{low} bin reg", T=low, binary_input=True, spike_reg=2.0),
            Variant(f"SNN T{low} bin reg prune 0.5", T=low, binary_input=True, spike_reg=2.0, prune=0.5),
            Variant(f"SNN T{low} bin reg 8", T=low, binary_input=True, spike_reg=8.0)]


def measure_point(model, x: torch.Tensor, *, spiking: bool, steps: int | None = None, chips=(),
                  decision=None) -> dict:
    """Synaptic operations and energy per inference of ``model`` on the batch ``x``
    (``decision``: per-sample early-exit steps, counted up to them)."""
    from spikeflow.metrics import energy as em

    model.eval()
    counts = em.measure(model, x, kind="snn" if spiking else "ann", steps=steps if spiking else None)
    if decision is not None:
        counts = counts.until(decision)
    rep = em.energy(counts, "45nm")
    per = counts.per_inference()
    out = {"energy_j": float(rep.total_j), "synops": float(rep.synops), "acs": float(rep.acs),
           "macs": float(rep.macs), "breakdown_j": {k: float(v) for k, v in rep.breakdown_j.items()},
           "neuron_updates": per["neuron_updates"], "mean_steps": per["steps"]}
    if spiking:
        out["spike_rate"] = counts.spike_rate()
        for chip in chips:
            out[f"energy_{chip}_j"] = float(em.energy(counts, chip).total_j)
    else:  # the same ANN on hardware that skips zero activations: MACs of non-zero inputs only
        sparse = em.energy(counts, "45nm", skip_zeros=True)
        out["energy_skip_zeros_j"] = float(sparse.total_j)
        out["macs_nonzero"] = float(sparse.macs)
    return out


def _load(data: str, split: str, T: int, limit: int | None, binary: bool):
    from spikeflow.data.modelinput import spread
    from spikeflow.train.datasets import load_tensors

    kw = {"T": T} if data in EVENT_DATA else {}
    x, y = load_tensors(data, split, **kw)
    if limit is not None and limit < len(y):
        keep = torch.from_numpy(spread(len(y), limit))
        x, y = x[keep], y[keep]
    if binary:
        x = (x > 0).to(x.dtype)
    return x, y


def early_exit(model, x: torch.Tensor, y: torch.Tensor, *, loss: str, confidence: float) -> dict:
    """Accuracy and per-sample decision steps when each sample answers at the first step whose decoded
    scores' top softmax probability reaches ``confidence`` (else at the last step), as the Stream's early exit."""
    from spikeflow.metrics.energy import decision_steps
    from spikeflow.train.losses import logits

    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 256]) for i in range(0, len(y), 256)], dim=1)  # [T, N, C]
    decoder = {"ce_max": "max", "ce_mean": "mean", "ce_last": "last", "ce_count": "count"}[loss]
    steps = decision_steps(out, confidence, decoder)
    pred = torch.stack([logits(out[:t, i:i + 1], loss)[0] for i, t in enumerate(steps.tolist())]).argmax(-1)
    return {"accuracy": float((pred == y).float().mean()), "steps": steps}


def teacher_logits(teacher, data: str, limit: int | None, seed: int, labels: torch.Tensor) -> torch.Tensor:
    """The trained ANN ``teacher = (model, variant)``'s logits on its own view of the training split (event
    counts summed over the window), in the order of the split whose labels are ``labels``."""
    from spikeflow.train.datasets import holdout

    model, tv = teacher
    x, y = _load(data, "train", tv.T, limit, tv.binary_input)
    (xs, ys), _ = holdout(x, y, 0.1, seed=seed)
    if not torch.equal(ys, labels):
        raise ConfigError("frontier: the teacher's training split differs from the student's")
    model.eval()
    with torch.no_grad():
        return torch.cat([model(xs[i:i + 512]) for i in range(0, len(ys), 512)])


def init_from(model, ann) -> int:
    """Copy the weights (and BatchNorm statistics) of ``ann``'s Conv2d, Linear and BatchNorm layers into
    ``model``'s, in order; they must match one to one in kind and shape. Returns the layers copied."""
    from torch import nn

    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
    src = [m for m in ann.modules() if isinstance(m, kinds)]
    dst = [m for m in model.modules() if isinstance(m, kinds)]
    shapes = [[(type(m).__name__, tuple(m.weight.shape)) for m in ms] for ms in (src, dst)]
    if shapes[0] != shapes[1]:
        raise ConfigError(f"frontier: the ANN's layers {shapes[0]} do not match the SNN's {shapes[1]}; "
                          "initialising from the ANN needs the same connection layers")
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.load_state_dict(a.state_dict())
    return len(dst)


def train_variant(v: Variant, data: str, *, epochs: int, limit: int | None, seed: int, lr: float,
                  batch_size: int, progress: bool, chips=(), confidence: float | None = None,
                  cost_samples: int = 128, log: Callable[[str], None] = print, teacher=None,
                  distill_temp: float = 2.0, keep: Optional[list] = None, init_source=None, init_epochs: int = 0,
                  snapshot_epoch: int = 0) -> list[dict]:
    """Train ``v``, measure it; returns its point (and its early-exit point when ``confidence`` is given).

    ``teacher``: ``(model, variant)`` of the trained ANN, for ``v.distill > 0``, and the model ``v.init_from_ann``
    starts from unless ``init_source`` (a model with the same connection layers, trained ``init_epochs``
    epochs) is given. ``keep``: a list the trained model is appended to, as ``{"model", "snapshot"}``, the
    snapshot being a copy of its weights after ``snapshot_epoch`` epochs (0: none)."""
    from spikeflow.train import zoo
    from spikeflow.train.datasets import holdout
    from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all

    t0 = time.time()
    x, y = _load(data, "train", v.T, limit, v.binary_input)
    xt, yt = _load(data, "test", v.T, limit, v.binary_input)
    classes = int(max(y.max(), yt.max())) + 1
    seed_all(seed)
    kw = dict(neuron=v.neuron, tau_mem=v.tau_mem, learn_threshold=v.learn_threshold or None)
    if x.dim() - 1 not in (2, 4):  # static images: the SNN sees each as a constant input for T steps
        kw["T"] = v.T
    if v.arch == "conv":
        kw["channels"] = v.channels
        if v.pool_first:
            kw["pool_first"] = True
    if v.hidden:
        kw["hidden"] = v.hidden if v.arch != "recurrent" else v.hidden[0]
    model = zoo.for_data(v.arch, x.shape[1:], classes, **kw)
    loss = "ce" if not v.spiking else ("ce_mean" if v.arch == "recurrent" else "ce_max")
    train, val = holdout(x, y, 0.1, seed=seed)
    cfg = TrainConfig(epochs=epochs, batch_size=min(batch_size, len(train[1])), lr=lr, loss=loss, seed=seed,
                      progress=progress, spike_reg=v.spike_reg if v.spiking else 0.0,
                      target_rate=v.target_rate if v.spiking else None, prune=v.prune, qat_bits=v.qat_bits,
                      energy_samples=0, distill=v.distill if v.spiking else 0.0, distill_temp=distill_temp)
    soft = None
    if (cfg.distill > 0 or v.init_from_ann) and teacher is None:
        raise ConfigError(f"frontier: variant {v.name} learns from the ANN, but no trained ANN was given")
    if cfg.distill > 0:
        soft = teacher_logits(teacher, data, limit, seed, train[1])
    if v.init_from_ann:
        init_from(model, init_source if init_source is not None else teacher[0])
    else:
        init_epochs = 0
    snapshot, fit_kw = {}, {}
    if 0 < snapshot_epoch < epochs:
        def on_epoch(done: int):
            if done == snapshot_epoch:
                snapshot.update({k: t.detach().clone() for k, t in model.state_dict().items()})
        fit_kw["on_epoch"] = on_epoch
    fit = Trainer(model, train, val, cfg, teacher_logits=soft, **fit_kw).fit()
    if keep is not None:
        keep.append({"model": model, "snapshot": snapshot or None})
    test = evaluate(model, xt, yt, loss=loss, seed=seed)
    sample = xt[:cost_samples]
    val_acc = fit["history"][-1].get("val_acc") if fit.get("history") else None
    point = {"name": v.name, "kind": "snn" if v.spiking else "ann", "variant": asdict(v),
             "accuracy": test["accuracy"], "test_samples": test["samples"], "val_accuracy": val_acc,
             "epochs": epochs, "total_epochs": epochs + init_epochs,
             **measure_point(model, sample, spiking=v.spiking, steps=v.T, chips=chips)}
    points = [point]
    if confidence is not None and v.spiking:
        ex = early_exit(model, xt, yt, loss=loss, confidence=confidence)
        points.append({"name": f"{v.name} early exit {confidence:g}", "kind": "snn-early-exit",
                       "variant": asdict(v), "confidence": confidence, "accuracy": ex["accuracy"],
                       "test_samples": len(yt), "epochs": epochs, "total_epochs": epochs + init_epochs,
                       **measure_point(model, sample, spiking=True, steps=v.T, chips=chips,
                                                                decision=ex["steps"][:len(sample)])})
    for p in points:
        p["seconds"] = round(time.time() - t0, 1)
        log(f"frontier: {p['name']}: accuracy {100 * p['accuracy']:.2f} %, synops {p['synops']:.3g}, "
            f"energy {p['energy_j']:.3g} J (45 nm with memory)")
    return points


def pareto(points: list[dict], key: str = "energy_j") -> list[bool]:
    """For each point: True when no other point has both higher-or-equal accuracy and lower-or-equal ``key``
    with one of them strictly better."""
    def acc(p):  # accuracies are shares of one test set: equal counts are equal, whatever the float rounding
        return round(p["accuracy"], 6)

    flags = []
    for p in points:
        dominated = any(q is not p and acc(q) >= acc(p) and q[key] <= p[key]
                        and (acc(q) > acc(p) or q[key] < p[key]) for q in points)
        flags.append(not dominated)
    return flags


def _against(p: dict, ann: dict) -> dict:
    """``p``'s accuracy gap (points), energy and synop ratios to ``ann``. Accuracies are shares of one test
    set, float32 means: rounded to 6 digits, as ``pareto`` does, so a gap of 10 in 1000 is 1 point, not 1.0000001."""
    return {"accuracy_gap_points": round(100 * (round(ann["accuracy"], 6) - round(p["accuracy"], 6)), 6),
            "energy_ratio": p["energy_j"] / ann["energy_j"],
            "energy_ratio_vs_zero_skipping_ann": p["energy_j"] / ann.get("energy_skip_zeros_j", ann["energy_j"]),
            "synops_ratio": p["synops"] / ann.get("macs_nonzero", ann["synops"]),
            "synops_ratio_vs_dense_ann": p["synops"] / ann["synops"]}


def compare(points: list[dict], *, acc_gap: float = 0.01, energy_ratio: float = 0.2, synops_ratio: float = 0.5) -> dict:
    """Each SNN point against the ANNs: accuracy gap (points), energy ratio (to the dense ANN, the energy
    model's default, and to the zero-skipping ANN), synop ratio (to the ANN's MACs on non-zero inputs, the
    stricter count, and to its dense MACs), and whether it meets the targets (within ``acc_gap`` of the ANN
    at <= ``energy_ratio`` x its energy and <= ``synops_ratio`` x its synaptic operations).
    With several ANNs (e.g. both pooling layouts) a row holds each figure against the ANN where it is worst
    (the largest gap and ratios) and ``against`` the figures for each ANN; a point meets the targets only
    against every ANN. ``best`` is the lowest-energy point meeting them, else the closest miss (the smallest
    worst excess over a target; on a tie the cheaper)."""
    anns = [p for p in points if p["kind"] == "ann"]
    if not anns:
        raise ConfigError("frontier: the family has no ANN (neuron 'relu') to compare with")
    rows = []
    for p in points:
        if p["kind"] == "ann":
            continue
        each = {a["name"]: _against(p, a) for a in anns}
        r = {"name": p["name"], **{k: max(e[k] for e in each.values()) for k in next(iter(each.values()))}}
        for e in each.values():
            e["meets"] = (e["accuracy_gap_points"] <= 100 * acc_gap and e["energy_ratio"] <= energy_ratio
                          and e["synops_ratio"] <= synops_ratio)
        r["meets"] = all(e["meets"] for e in each.values())
        if len(anns) > 1:
            r["against"] = each
        rows.append(r)
    meeting = [r for r in rows if r["meets"]]
    best = min(meeting, key=lambda r: r["energy_ratio"]) if meeting else (
        min(rows, key=lambda r: (max(r["accuracy_gap_points"] / (100 * acc_gap), r["energy_ratio"] / energy_ratio,
                                     r["synops_ratio"] / synops_ratio), r["energy_ratio"])) if rows else None)
    return {"ann": anns[0]["name"] if len(anns) == 1 else [a["name"] for a in anns],
            "targets": {"accuracy_gap_points": 100 * acc_gap, "energy_ratio": energy_ratio,
                        "synops_ratio": synops_ratio},
            "rows": rows, "met": bool(meeting), "best": best}
