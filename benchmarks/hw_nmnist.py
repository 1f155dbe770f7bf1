"""Integer (chip) vs float accuracy, energy and latency of a small nmnist5k SNN on every chip profile.

One command (from the repository root):
    PYTHONPATH=src python benchmarks/hw_nmnist.py [--epochs 3] [--out runs/hw]

Trains (seeded) Flatten -> Linear(2312, H) -> LIF -> Linear(H, 10) -> LI on nmnist5k
(T = 30 bins of 10 ms), exports it to NIR, then compiles it for every chip profile and
reports float vs integer test accuracy, spike agreement, energy and latency per inference,
and the same network as an ANN on CPU / GPU / 45 nm (Loihi, computed as Lava's models, refuses the model's
subtract reset and the binned event counts: it is reported as not fitting); then sweeps Loihi 2's weight bits
(8, 6, 4, 3, 2) to show where quantisation collapses accuracy. Writes ``results.json``, the NIR
file and one energy chart per chip under ``--out``. Resumes from a saved model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import spikeflow.nn as snn
from spikeflow.atomic import atomic_write_text
from spikeflow.data import load_dataset
from spikeflow.errors import HardwareLimitError
from spikeflow.hardware import PROFILES, QuantizationWarning, compile_network
from spikeflow.hardware.evaluate import energy_chart, evaluate
from spikeflow.ir import from_nir, read_graph, write
from spikeflow.metrics import connection_sparsity, footprint, workload_metrics

T, DT, TAU = 30, 10e-3, 50e-3


def to_arrays(ds, limit=None):
    n = len(ds) if limit is None else min(limit, len(ds))
    xs, ys = zip(*(ds[i] for i in tqdm(range(n), desc="load", leave=False)))
    return torch.as_tensor(np.stack([np.asarray(x) for x in xs], axis=1)), torch.as_tensor(np.array(ys))


def model(hidden):
    return snn.Sequential(nn.Flatten(), nn.Linear(2 * 34 * 34, hidden), snn.LIF(hidden, tau_mem=TAU, dt=DT),
                          nn.Linear(hidden, 10), snn.LI(10, tau_mem=TAU, dt=DT))


def train(net, x, y, epochs, seed, batch=64):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for ep in range(epochs):
        perm = torch.randperm(x.shape[1], generator=g)
        tot = 0.0
        for i in tqdm(range(0, len(perm), batch), desc=f"epoch {ep + 1}/{epochs}", leave=False):
            idx = perm[i:i + batch]
            out = net(x[:, idx])
            loss = nn.functional.cross_entropy(out.sum(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
        print(f"epoch {ep + 1}: loss {tot / x.shape[1]:.4f}", file=sys.stderr)


def batches(x, y, size=100):
    for i in range(0, x.shape[1], size):
        yield x[:, i:i + size].numpy(), y[i:i + size].numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--out", default="runs/hw")
    ap.add_argument("--bits", type=int, nargs="*", default=[8, 6, 4, 3, 2], help="Loihi weight-bit sweep")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    nir_path = os.path.join(args.out, f"nmnist5k_h{args.hidden}_s{args.seed}.nir")
    x_te, y_te = to_arrays(load_dataset("nmnist5k", "test", T=T), args.limit_test)
    if not os.path.exists(nir_path):
        x_tr, y_tr = to_arrays(load_dataset("nmnist5k", "train", T=T))
        net = model(args.hidden)
        t0 = time.time()
        train(net, x_tr, y_tr, args.epochs, args.seed)
        print(f"trained in {time.time() - t0:.0f} s", file=sys.stderr)
        write(net, nir_path, input_shape=(2, 34, 34))
    graph = read_graph(nir_path)
    results = {"model": nir_path, "T": T, "dt": DT, "test_samples": int(x_te.shape[1]), "chips": {}}
    # NeuroBench-definition metrics of the float model (the NIR file run as a torch module).
    module = from_nir(graph)
    results["neurobench_metrics"] = {
        "footprint_bytes": footprint(module), "connection_sparsity": connection_sparsity(module),
        **workload_metrics(module, [x_te[:, i:i + 100].float() for i in range(0, x_te.shape[1], 100)])}
    print("neurobench metrics (float model):", json.dumps(results["neurobench_metrics"]))
    calib = x_te[:, :50].numpy()
    for name, prof in PROFILES.items():
        t0 = time.time()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", QuantizationWarning)
                # Lossy layers are compiled and reported (precision below) rather than refused.
                compiled = compile_network(graph, prof, calibration=calib, allow_lossy=True)
        except HardwareLimitError as err:
            results["chips"][name] = {"fits": False, "error": str(err)}
            print(f"{name:11s} does not fit: {err}")
            continue
        ev = evaluate(compiled, batches(x_te, y_te), clock="afap")  # as its committed results were made
        c = ev.cost
        results["chips"][name] = {
            "fits": True, "cores_used": compiled.cores_used, "float_accuracy": ev.float_accuracy,
            "int_accuracy": ev.int_accuracy, "prediction_agreement": ev.prediction_agreement,
            "spike_agreement": ev.spike_agreement, "energy_j": c.energy_j, "dynamic_j": c.dynamic_j,
            "static_j": c.static_j, "latency_s": c.latency_s, "counts": {k: float(v) for k, v in c.counts.items()},
            "ann_energy_j": ev.dense_j, "ann_macs": ev.dense_macs,
            "dense_snn_energy_j": ev.dense_snn_j, "dense_snn_macs": ev.dense_snn_macs,
            "warnings": [str(w.message) for w in caught], "seconds": time.time() - t0,
            "precision": [p.to_dict() for p in compiled.precision],
        }
        energy_chart(ev, prof.title, os.path.join(args.out, f"energy_{name}.png"))
        print(f"{name:11s} cores {compiled.cores_used:4d}  float {ev.float_accuracy:.2%}  int {ev.int_accuracy:.2%}  "
              f"spike agreement {ev.spike_agreement:.4%}  energy {c.energy_j:.3e} J  "
              f"latency {c.latency_s * 1e6:.1f} us  "
              f"(ANN cpu {ev.dense_j['cpu']:.2e} J, 45nm-int8 {ev.dense_j['45nm-int8']:.2e} J; "
              f"dense SNN 45nm-int8 {ev.dense_snn_j['45nm-int8']:.2e} J)")
    # Quantisation sweep on Loihi 2 (the generic integer model): where does 8-bit accuracy start to collapse?
    results["loihi_weight_bits"] = {}
    for bits in args.bits:
        prof = dataclasses.replace(PROFILES["loihi2"], name=f"loihi2-w{bits}", weight_bits=bits)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", QuantizationWarning)
            compiled = compile_network(graph, prof, calibration=calib, allow_lossy=True)  # the sweep measures loss
        ev = evaluate(compiled, batches(x_te, y_te), progress=False, clock="afap")
        results["loihi_weight_bits"][bits] = {
            "float_accuracy": ev.float_accuracy, "int_accuracy": ev.int_accuracy,
            "spike_agreement": ev.spike_agreement, "energy_j": ev.cost.energy_j,
            "warnings": [str(w.message) for w in caught], "precision": [p.to_dict() for p in compiled.precision]}
        print(f"loihi2 {bits}-bit weights: float {ev.float_accuracy:.2%}  int {ev.int_accuracy:.2%}  "
              f"spike agreement {ev.spike_agreement:.4%}  warnings {len(caught)}")
    atomic_write_text(os.path.join(args.out, "results.json"), json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
