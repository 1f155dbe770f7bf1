"""Accuracy targets of docs/training.md, each as the ``spikeflow`` commands that reproduce it, with its bar.

usage: python benchmarks/accuracy.py [TARGET ...] [--runs DIR] [--results DIR] [--threads N]
TARGETs: digits, fsdd, spoken, mnist5k, convert, nmnist5k (default: all of them); stdp (a measurement without a bar,
only when named). digits, fsdd and spoken run seeds 0 and 1, and each seed must meet the bar.

Each target writes RESULTS/accuracy-<target>.json (default benchmarks/results): the commands, the commit, the machine,
the date, the figures, the bar and whether the figures meet it. The exit code is 1 when a target misses its bar or a
command fails, so ``make accuracy`` fails below a bar. A run directory (under --runs, default runs/accuracy) made at
the same commit is resumed when interrupted (rerun the same line); one made at another commit is started afresh.
Run with PYTHONPATH=src from the repository root (or with spikeflow installed).
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import time
from pathlib import Path

from spikeflow.provenance import commit, machine

ROOT = Path(__file__).resolve().parent.parent
# one recipe for the mnist5k SNN and its same-shape ANN (the 0.5-point comparison)
MNIST_RECIPE = ["--epochs", "20", "--lr", "0.003", "--augment", "shift"]
DEFAULT_ORDER = ("digits", "fsdd", "spoken", "mnist5k", "convert", "nmnist5k")  # cheapest first


def _mnist_ann(r: str) -> list[str]:
    return ["train", "--data", "mnist5k", "--model", "conv", "--channels", "16,32", "--hidden", "128",
            "--neuron", "relu", *MNIST_RECIPE, "--out", f"{r}/mnist5k-ann"]


def _nmnist(r: str, epochs: int) -> list[str]:
    return ["train", "--data", "nmnist5k", "--model", "conv", "--channels", "16,32", "--hidden", "128",
            "--T", "6", "--epochs", str(epochs), "--lr", "0.003", "--augment", "shift", "--out", f"{r}/nmnist5k-snn"]


def _at_least(bar: float):
    """Check: the test accuracy of every seed's run (roles ``snn``, ``snn-seed1``, ...) is at least ``bar``."""
    def check(acc: dict, _runs: dict) -> tuple[dict, bool]:
        by_seed = {("seed " + role.split("seed")[1] if "seed" in role else "seed 0"): a
                   for role, a in acc.items() if role == "snn" or role.startswith("snn-seed")}
        # accuracies are float32 means: 351/360 reads 0.97499999..., so allow float32 rounding (far below 1/n)
        ok = bool(by_seed) and all(a is not None and a >= bar - 1e-6 for a in by_seed.values())
        return {"test_accuracy": by_seed}, ok
    return check


def _seeds(cmd: list[str], seeds=(1,)) -> dict:
    """The run of ``cmd`` with other seeds, each in its own directory (cheap targets run seeds 0 and 1)."""
    out = cmd.index("--out") + 1
    return {f"snn-seed{s}": [*cmd[:out], f"{cmd[out]}-seed{s}", *cmd[out + 1:], "--seed", str(s)] for s in seeds}


def _snn_near_ann(acc: dict, _runs: dict) -> tuple[dict, bool]:
    snn, ann = acc.get("snn"), acc.get("ann")
    gap = None if snn is None or ann is None else round(100 * (ann - snn), 2)
    return {"snn_test_accuracy": snn, "ann_test_accuracy": ann, "ann_minus_snn_points": gap}, \
        gap is not None and gap <= 0.5


def _converted_near_ann(acc: dict, runs: dict) -> tuple[dict, bool]:
    rows = runs.get("convert", {}).get("snn") or []
    ann = runs.get("convert", {}).get("ann_accuracy")
    gaps = [round(100 * (ann - r["accuracy"]), 2) for r in rows if r["T"] <= 64] if ann is not None else []
    best = min(gaps) if gaps else None
    return {"ann_test_accuracy": ann, "snn_by_T": {str(r["T"]): r["accuracy"] for r in rows},
            "best_ann_minus_snn_points_T_le_64": best}, best is not None and best <= 1.0


def targets(runs: Path) -> dict:
    r = str(runs)
    # T 32: with T 16 the rate code's noise left seed 0 at 97.2 % (seed 1: 97.8 %)
    digits = ["train", "--data", "digits", "--model", "mlp", "--hidden", "512", "--encoding", "rate", "--T", "32",
              "--epochs", "25", "--lr", "0.003", "--batch-size", "32", "--dropout", "0.2", "--out", f"{r}/digits-mlp"]
    # standardised MFCCs; the same without --input-norm: 83.7 % (seed 0)
    fsdd = ["train", "--data", "fsdd", "--model", "recurrent", "--hidden", "128", "--loss", "ce_mean",
            "--tau-mem", "0.02", "--T", "32", "--input-norm", "--epochs", "12", "--lr", "0.003",
            "--out", f"{r}/fsdd-rsnn"]
    # raw cochlea counts (20 ms bins) as input currents
    spoken = ["train", "--data", "spoken-digits", "--T", "50", "--model", "recurrent", "--hidden", "128",
              "--loss", "ce_mean", "--tau-mem", "0.02", "--epochs", "20", "--lr", "0.003", "--out", f"{r}/spoken-rsnn"]
    return {
        "digits": {"goal": "rate-coded MLP >= 97.5 %", "bar": "test_accuracy >= 0.975",
                   "check": _at_least(0.975), "commands": {
            "snn": digits, **_seeds(digits)}},
        # misses its bar: the SNN at T 4 reached 97.3 % against the ANN's 98.4 % (1.1 points); T 8 did not close the gap
        # (97.0 %, 1.4 points)
        "mnist5k": {"goal": "conv SNN within 0.5 points of the same-size ANN", "bar": "ann_minus_snn_points <= 0.5",
                    "check": _snn_near_ann, "commands": {
            "snn": ["train", "--data", "mnist5k", "--model", "conv", "--channels", "16,32", "--hidden", "128",
                    "--T", "4", *MNIST_RECIPE, "--out", f"{r}/mnist5k-snn"],
            "ann": _mnist_ann(r)}},
        # the ANN of the mnist5k target (trained here if that target has not run) converted to IF neurons
        "convert": {"goal": "ANN->SNN on mnist5k within 1 point of the ANN at T <= 64",
                    "bar": "best_ann_minus_snn_points_T_le_64 <= 1.0", "check": _converted_near_ann, "commands": {
            "ann": _mnist_ann(r),
            "convert": ["convert", "--data", "mnist5k", "--ann", f"{r}/mnist5k-ann", "--T-values", "8,16,32,64",
                        "--out", f"{r}/mnist5k-convert"]}},
        # 10 cosine epochs, then the same run extended to 14 (--resume with more epochs: a warm restart of the
        # cosine schedule at lr ~6e-4 decaying to 0); the second command's result is the target's figure
        "nmnist5k": {"goal": ">= 97 %", "bar": "test_accuracy >= 0.97", "check": _at_least(0.97), "commands": {
            "snn-10": _nmnist(r, 10), "snn": _nmnist(r, 14)}},
        "fsdd": {"goal": "random split >= 95 %", "bar": "test_accuracy >= 0.95", "check": _at_least(0.95),
                 "commands": {"snn": fsdd, **_seeds(fsdd)}},
        "spoken": {"goal": "unseen speakers >= 90 %", "bar": "test_accuracy >= 0.90", "check": _at_least(0.90),
                   "commands": {"snn": spoken, **_seeds(spoken)}},
    }


def stdp(runs: Path) -> dict:
    """Diehl & Cook style STDP on digits (100 neurons) and mnist5k (400 neurons); library call."""
    from spikeflow.train.datasets import load_tensors
    from spikeflow.train.stdp import STDPConfig, STDPNetwork

    out = {}
    for data, neurons, epochs in (("digits", 100, 1), ("mnist5k", 400, 1)):
        x, y = load_tensors(data, "train")
        xt, yt = load_tensors(data, "test")
        t0 = time.time()
        net = STDPNetwork(x[0].numel(), STDPConfig(neurons=neurons, epochs=epochs, seed=0)).fit(x, y)
        acc = float((net.predict(xt) == yt).float().mean())
        out[data] = {"neurons": neurons, "epochs": epochs, "test_accuracy": acc, "seconds": round(time.time() - t0, 1)}
        print(f"[stdp/{data}] test accuracy {100 * acc:.2f} %", flush=True)
    return out


def _test_accuracy(cmd: list[str]) -> float | None:
    path = _out(cmd) / "result.json"
    if not path.is_file():
        return None
    res = json.loads(path.read_text())
    if "test" in res:
        return res["test"]["accuracy"]
    return res.get("ann_accuracy")


def _out(cmd: list[str]) -> Path:
    return Path(cmd[cmd.index("--out") + 1])


def _prepare(run_dir: Path, stamp: str) -> list[str]:
    """``--resume`` when the run directory was made at this commit; otherwise start it afresh."""
    marker = run_dir / "accuracy-commit.txt"
    if run_dir.exists() and not (marker.is_file() and marker.read_text().strip() == stamp):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(stamp + "\n")
    return ["--resume"] if (run_dir / "latest.json").is_file() else []


def run_target(name: str, target: dict, stamp: str, driver: str) -> dict:
    from spikeflow.cli import main as spikeflow

    entry = {"target": name, "goal": target["goal"], "bar": target["bar"], "commit": stamp,
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "machine": machine(), "driver": driver, "runs": {}}
    t_all = time.time()
    prepared: set[Path] = set()
    for role, cmd in target["commands"].items():
        out = _out(cmd)
        resume = _prepare(out, stamp) if out not in prepared else []
        prepared.add(out)
        run_dir = out / ("ann" if role == "convert" else "")
        if not resume and (run_dir / "latest.json").is_file():
            resume = ["--resume"]  # a second command on the same directory continues the first (nmnist5k)
        line = "spikeflow " + " ".join(cmd + resume)
        print(f"[{name}/{role}] {line}", flush=True)
        t0 = time.time()
        code = spikeflow(cmd + resume)
        entry["runs"][role] = {"command": line, "exit_code": code, "seconds": round(time.time() - t0, 1),
                               "test_accuracy": _test_accuracy(cmd) if code == 0 else None}
        if role == "convert" and code == 0:
            res = json.loads((out / "result.json").read_text())
            entry["runs"][role].update(snn=res["snn"], ann_accuracy=res["ann_accuracy"])
    acc = {role: run["test_accuracy"] for role, run in entry["runs"].items()}
    figures, passed = target["check"](acc, entry["runs"])
    failed = [role for role, run in entry["runs"].items() if run["exit_code"] != 0]
    entry.update(figures=figures, passed=passed and not failed, failed_commands=failed,
                 seconds=round(time.time() - t_all, 1))
    return entry


def main(argv: list[str]) -> int:
    from spikeflow.atomic import atomic_write_text

    def option(flag, default):
        return argv[argv.index(flag) + 1] if flag in argv else default

    runs = Path(option("--runs", "runs/accuracy"))
    results = Path(option("--results", str(ROOT / "benchmarks" / "results")))
    threads = option("--threads", None)
    values = {option(f, None) for f in ("--runs", "--results", "--threads")}
    names = [a for a in argv if not a.startswith("--") and a not in values]
    table = targets(runs)
    unknown = [n for n in names if n not in table and n != "stdp"]
    if unknown:
        print(f"accuracy.py: unknown target(s) {', '.join(unknown)}: use {', '.join(DEFAULT_ORDER)} or stdp",
              file=sys.stderr)
        return 2
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    stamp = commit()
    driver = "PYTHONPATH=src python benchmarks/accuracy.py " + " ".join(argv)
    results.mkdir(parents=True, exist_ok=True)
    missed = []
    for name in names or DEFAULT_ORDER:
        if name == "stdp":
            entry = {"target": "stdp", "goal": "Diehl & Cook 2015 style STDP accuracy (a measurement, no bar)",
                     "commit": stamp, "machine": machine(), "driver": driver,
                     "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "figures": stdp(runs)}
        else:
            entry = run_target(name, table[name], stamp, driver)
            if not entry["passed"]:
                missed.append(name)
        atomic_write_text(results / f"accuracy-{name}.json", json.dumps(entry, indent=1) + "\n")
        print(json.dumps({k: entry.get(k) for k in ("target", "figures", "bar", "passed")}, indent=1), flush=True)
    if missed:
        print(f"accuracy.py: below the bar: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
