"""Float vs integer accuracy, energy and latency of a compiled network on a labelled dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Tuple

import numpy as np
from tqdm import tqdm

from spikeflow.atomic import atomic_output
from spikeflow.hardware.compiler import CompiledNetwork
from spikeflow.hardware.cost import CostReport, check_clock, chip_cost, dense_costs, dense_macs
from spikeflow.hardware.engine import RunResult, float_run, run_aligned


def predict(output: np.ndarray, decoder: str = "mean") -> np.ndarray:
    """Class per sample from ``[T, B, classes]`` with the model's decoder: ``max`` over time (an LI
    readout trained with a max loss), ``last`` step, else the time-summed output (``count``, ``mean``)."""
    out = np.asarray(output, dtype=np.float64)
    if decoder == "max":
        return out.max(axis=0).argmax(axis=-1)
    if decoder == "last":
        return out[-1].argmax(axis=-1)
    return out.sum(axis=0).argmax(axis=-1)


def _concat(results):
    keys = ("synops", "updates_active", "updates_inactive", "spikes", "packets_local", "hops")
    merged = {k: np.concatenate([getattr(r, k) for r in results], axis=1) for k in keys}
    for k in ("interchip", "chip_hops", "max_chip_route"):
        if all(getattr(r, k) is not None for r in results):
            merged[k] = np.concatenate([getattr(r, k) for r in results], axis=1)
    return RunResult(output=np.concatenate([r.output for r in results], axis=1), layer_spikes=[],
                     max_route=np.concatenate([r.max_route for r in results], axis=1), **merged)


@dataclass
class Evaluation:
    samples: int
    float_accuracy: float
    int_accuracy: float
    prediction_agreement: float
    spike_agreement: float  # fraction of (step, sample, neuron) with equal spikes, over spiking layers
    cost: CostReport
    dense_j: Dict[str, float] = field(default_factory=dict)  # the network as an ANN (one pass), per inference
    dense_macs: int = 0
    dense_snn_j: Dict[str, float] = field(default_factory=dict)  # the SNN clock-driven on dense hardware (T passes)
    dense_snn_macs: int = 0
    steps: int = 0  # time steps per sample


def evaluate(compiled: CompiledNetwork, batches: Iterable[Tuple[np.ndarray, np.ndarray]], progress: bool = True,
             n_batches: int | None = None, decoder: str = "mean", clock: str = "realtime") -> Evaluation:
    """Run float and integer models on ``(x [T, B, ...], y [B])`` batches (``n_batches``: their number,
    for the progress bar); ``decoder`` turns outputs over time into classes (see ``predict``); ``clock``
    (``realtime``: each step lasts the network's dt; ``afap``: its modelled latency) sets the powered time."""
    check_clock(clock, compiled.float_net.dt)
    results, f_pred, i_pred, labels = [], [], [], []
    same = total = 0
    steps = 0
    bar = tqdm(batches, desc=f"hw run ({compiled.profile.name})", disable=not progress, unit="batch", total=n_batches)
    for x, y in bar:
        x = np.asarray(x, dtype=np.float64)
        steps = x.shape[0]
        f_out, f_rec = float_run(compiled.float_net, x)
        res = run_aligned(compiled, x)  # the chip's pipeline latency: T + latency_steps steps
        for fr, ir, layer in zip(f_rec, res.layer_spikes, compiled.layers):
            if layer.spiking:
                same += int((fr == ir).sum())
                total += fr.size
        res.layer_spikes = []
        results.append(res)
        f_pred.append(predict(f_out, decoder))
        i_pred.append(predict(res.output, decoder))
        labels.append(np.asarray(y).reshape(-1))
    f_pred, i_pred, labels = map(np.concatenate, (f_pred, i_pred, labels))
    merged = _concat(results)
    return Evaluation(samples=len(labels), float_accuracy=float((f_pred == labels).mean()),
                      int_accuracy=float((i_pred == labels).mean()),
                      prediction_agreement=float((f_pred == i_pred).mean()),
                      spike_agreement=same / total if total else 1.0,
                      cost=chip_cost(merged, compiled.profile, clock, compiled.float_net.dt, compiled.board),
                      dense_j=dense_costs(compiled, 1), dense_macs=dense_macs(compiled, 1),
                      dense_snn_j=dense_costs(compiled, steps), dense_snn_macs=dense_macs(compiled, steps),
                      steps=steps)


def energy_chart(ev: Evaluation, chip_title: str, path) -> None:
    """Bar chart (log scale) of energy per inference: the chip vs the network as an ANN on dense hardware."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [chip_title] + [f"ANN (1 pass): {k}" for k in ev.dense_j]
    values = [ev.cost.energy_j] + list(ev.dense_j.values())
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(names, values, color=["tab:green"] + ["tab:gray"] * len(ev.dense_j))
    ax.set_yscale("log")
    ax.set_ylabel("energy per inference (J)")
    ax.set_title(f"{chip_title}: int acc {ev.int_accuracy:.1%} (float {ev.float_accuracy:.1%}), n={ev.samples}\n"
                 f"clock {ev.cost.describe_clock()}", fontsize=9)
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2e}", ha="center", va="bottom", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right")
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
