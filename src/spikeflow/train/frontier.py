"""The accuracy-energy frontier: a family of SNN variants and the same-size ANN, trained and measured alike.

Each variant trains with the ``Trainer`` (same data, split, seed, epochs and learning rate), then its test
accuracy, synaptic operations and energy per inference are measured on the test split. Energy comes from
``spikeflow.metrics.energy`` (45 nm with memory accesses, and chip profiles) where it exists, else from the
operation counts alone (45 nm float: MAC 4.6 pJ, AC 0.9 pJ; Horowitz, ISSCC 2014), and the result says which.
An SNN's early-exit point (answer once the top class probability of the decoded readout reaches a
confidence; cost counted up to that step) is a point too. ``pareto`` marks the points no other point beats
on both accuracy and energy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from spikeflow.errors import ConfigError
from spikeflow.train.metrics import ENERGY_AC_PJ, ENERGY_MAC_PJ, record_spikes, spike_rates, synaptic_operations

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


def _energy_model():
    try:
        from spikeflow.metrics import energy as energy_model
    except ImportError:  # the memory-access model is not part of this build
        return None
    return energy_model


def measure_point(model, x: torch.Tensor, *, spiking: bool, steps: int | None = None, chips=()) -> dict:
    """Synaptic operations and energy per inference of ``model`` on the batch ``x``."""
    model.eval()
    with torch.no_grad(), record_spikes(model) as rec:
        ops = synaptic_operations(model, x, spiking=spiking)
    out = {"synops": ops.acs + ops.macs, "acs": ops.acs, "macs": ops.macs,
           "energy_ops_j": ops.energy_pj() * 1e-12}
    if spiking:
        out["spike_rates"] = spike_rates(rec)
    em = _energy_model()
    if em is not None:
        kind = "snn" if spiking else "ann"
        counts = em.measure(model, x, kind=kind, steps=steps)
        rep = em.energy(counts, tech="45nm")
        out["energy_j"] = float(rep.total_j)
        out["energy_basis"] = "45nm-memory"
        for chip in chips:
            if spiking:
                out[f"energy_{chip}_j"] = float(em.energy(counts, tech=chip).total_j)
    else:
        out["energy_j"] = out["energy_ops_j"]
        out["energy_basis"] = "45nm-ops"
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
    """Accuracy and mean decision step when each sample answers at the first step whose decoded scores'
    top softmax probability reaches ``confidence`` (else at the last step)."""
    from spikeflow.train.losses import logits

    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 256]) for i in range(0, len(y), 256)], dim=1)  # [T, N, C]
    T, n = out.shape[0], out.shape[1]
    decided = torch.full((n,), T, dtype=torch.long)
    pred = torch.zeros(n, dtype=torch.long)
    for t in range(T, 0, -1):  # last step first, so the earliest confident step wins
        scores = logits(out[:t], loss)
        prob = scores.softmax(-1)
        sure = prob.max(-1).values >= confidence
        if t == T:
            pred = scores.argmax(-1)
        pred = torch.where(sure, scores.argmax(-1), pred)
        decided = torch.where(sure, torch.full_like(decided, t), decided)
    return {"accuracy": float((pred == y).float().mean()), "steps": decided}


def train_variant(v: Variant, data: str, *, epochs: int, limit: int | None, seed: int, lr: float,
                  batch_size: int, progress: bool, chips=(), confidence: float | None = None,
                  cost_samples: int = 128, log: Callable[[str], None] = print) -> list[dict]:
    """Train ``v``, measure it; returns its point (and its early-exit point when ``confidence`` is given)."""
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
    if v.hidden:
        kw["hidden"] = v.hidden if v.arch != "recurrent" else v.hidden[0]
    model = zoo.for_data(v.arch, x.shape[1:], classes, **kw)
    loss = "ce" if not v.spiking else ("ce_mean" if v.arch == "recurrent" else "ce_max")
    train, val = holdout(x, y, 0.1, seed=seed)
    cfg = TrainConfig(epochs=epochs, batch_size=min(batch_size, len(train[1])), lr=lr, loss=loss, seed=seed,
                      progress=progress, spike_reg=v.spike_reg if v.spiking else 0.0,
                      target_rate=v.target_rate if v.spiking else None, prune=v.prune, qat_bits=v.qat_bits,
                      synops_samples=0)
    Trainer(model, train, val, cfg).fit()
    test = evaluate(model, xt, yt, loss=loss, seed=seed)
    sample = xt[:cost_samples]
    point = {"name": v.name, "kind": "snn" if v.spiking else "ann", "variant": asdict(v),
             "accuracy": test["accuracy"], "test_samples": test["samples"],
             **measure_point(model, sample, spiking=v.spiking, steps=v.T, chips=chips)}
    points = [point]
    if confidence is not None and v.spiking:
        ex = early_exit(model, xt, yt, loss=loss, confidence=confidence)
        steps = ex["steps"][:cost_samples]
        share = {t: float((steps == t).float().mean()) for t in sorted(set(steps.tolist()))}
        cost: dict = {}
        for t, w in share.items():
            m = measure_point(model, sample[:, :t], spiking=True, steps=t, chips=chips)
            for k, val in m.items():
                if isinstance(val, float):
                    cost[k] = cost.get(k, 0.0) + w * val
        points.append({"name": f"{v.name} early exit {confidence:g}", "kind": "snn-early-exit",
                       "variant": asdict(v), "confidence": confidence, "accuracy": ex["accuracy"],
                       "mean_steps": float(ex["steps"].float().mean()), "test_samples": len(yt),
                       "energy_basis": point["energy_basis"], **cost})
    for p in points:
        p["seconds"] = round(time.time() - t0, 1)
        log(f"frontier: {p['name']}: accuracy {100 * p['accuracy']:.2f} %, synops {p['synops']:.3g}, "
            f"energy {p['energy_j']:.3g} J ({p['energy_basis']})")
    return points


def pareto(points: list[dict], key: str = "energy_j") -> list[bool]:
    """For each point: True when no other point has both higher-or-equal accuracy and lower-or-equal ``key``
    with one of them strictly better."""
    flags = []
    for p in points:
        dominated = any(q is not p and q["accuracy"] >= p["accuracy"] and q[key] <= p[key]
                        and (q["accuracy"] > p["accuracy"] or q[key] < p[key]) for q in points)
        flags.append(not dominated)
    return flags


def compare(points: list[dict], *, acc_gap: float = 0.01, energy_ratio: float = 0.2, synops_ratio: float = 0.5) -> dict:
    """Each SNN point against the ANN: accuracy gap (points), energy and synop ratios, and whether it meets
    the targets (within ``acc_gap`` of the ANN at <= ``energy_ratio`` x its energy and <= ``synops_ratio``
    x its synaptic operations). ``best`` is the lowest-energy point meeting them, else the closest miss."""
    anns = [p for p in points if p["kind"] == "ann"]
    if not anns:
        raise ConfigError("frontier: the family has no ANN (neuron 'relu') to compare with")
    ann = anns[0]
    rows = []
    for p in points:
        if p["kind"] == "ann":
            continue
        r = {"name": p["name"], "accuracy_gap_points": 100 * (ann["accuracy"] - p["accuracy"]),
             "energy_ratio": p["energy_j"] / ann["energy_j"], "synops_ratio": p["synops"] / ann["synops"]}
        r["meets"] = (r["accuracy_gap_points"] <= 100 * acc_gap and r["energy_ratio"] <= energy_ratio
                      and r["synops_ratio"] <= synops_ratio)
        rows.append(r)
    meeting = [r for r in rows if r["meets"]]
    best = min(meeting, key=lambda r: r["energy_ratio"]) if meeting else (
        min(rows, key=lambda r: max(r["accuracy_gap_points"] / (100 * acc_gap), r["energy_ratio"] / energy_ratio,
                                    r["synops_ratio"] / synops_ratio)) if rows else None)
    return {"ann": ann["name"], "targets": {"accuracy_gap_points": 100 * acc_gap, "energy_ratio": energy_ratio,
                                            "synops_ratio": synops_ratio},
            "rows": rows, "met": bool(meeting), "best": best}


ENERGY_NOTE = (f"45 nm operation energies: float MAC {ENERGY_MAC_PJ} pJ, accumulate {ENERGY_AC_PJ} pJ "
               "(Horowitz, ISSCC 2014)")
