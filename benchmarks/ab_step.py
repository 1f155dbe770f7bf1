"""W1's training step by ``spikeflow.train.TrainStep`` as this tree has it against another git
revision's, in one process.

    python benchmarks/ab_step.py REV [--modules kernels/adam.py ...] [--rounds 16] [--steps 25]

``--modules`` (paths under ``src/spikeflow``, in import order: a module after those it imports;
default: every module a step runs through, ``MODULES``) are loaded as ``REV`` has them (``git
show``), each a module of its own that imports ``REV``'s versions of those before it and this
tree's of the rest (``--modules kernels/simd.py kernels/linear_lif.py ...``: the kernels compiled
with ``REV``'s vectors); their numba kernels compile afresh (a minute or two). Two ``TrainStep``
on the same W1 network and Adam (``bench_worker.build_spikeflow``, uint8 input as ``peers.py``'s
TrainStep row, 2 threads), one from each tree, take turns, ``--steps`` steps each, for
``--rounds`` rounds; the medians of all their steps are printed. A change of a few
percent in a step of milliseconds is below the drift between processes on a shared machine
(``ab_w1w3.py`` runs one process per tree); blocks that alternate within one process see the same
machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "src")]
# in import order: each one's imports among them come before it
MODULES = ("kernels/linear_lif.py", "kernels/adam.py", "kernels/count_loss.py", "kernels/linear_lif_pair.py",
           "train/fused_adam.py", "train/step.py")


def _modules_at(rev: str, paths, folder: str) -> dict:
    """``{path: module}`` of ``paths`` as they are at ``rev``, written into ``folder`` and loaded in
    order, each while ``sys.modules`` and the packages' attributes (``from spikeflow.kernels import
    adam`` reads the package's) give ``REV``'s modules for the names of those before it."""
    loaded, saved = {}, {}
    try:
        for k, path in enumerate(paths):
            source = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:src/spikeflow/{path}"], check=True,
                                    capture_output=True, text=True).stdout
            file = os.path.join(folder, f"at_rev_{k}.py")
            with open(file, "w") as f:
                f.write(source)
            spec = importlib.util.spec_from_file_location(f"at_rev_{k}", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            name = "spikeflow." + path[:-3].replace("/", ".")
            saved[name] = importlib.import_module(name)  # this tree's, put back below
            _install(name, module)
            loaded[path] = module
    finally:
        for name, module in saved.items():
            _install(name, module)
    return loaded


def _install(name: str, module) -> None:
    package, _, attr = name.rpartition(".")
    sys.modules[name] = module
    setattr(sys.modules[package], attr, module)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the git revision to compare with")
    ap.add_argument("--modules", nargs="+", default=list(MODULES),
                    help="the modules taken from REV, paths under src/spikeflow in import order "
                         "(default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    import bench_worker as bw
    from spikeflow.train import step as this_step

    paths = args.modules
    torch.set_num_threads(2)
    data = [(x.to(bw.SPIKE_BYTES["spikeflow"]), y) for x, y in bw.make_data("mlp", 100, 32)]
    with tempfile.TemporaryDirectory() as folder:
        at_rev = _modules_at(args.rev, paths, folder)
        rev_step = at_rev["train/step.py"].TrainStep if "train/step.py" in at_rev else _patched_step(this_step, at_rev)
        steps = {}
        for name, cls in ((args.rev, rev_step), ("this tree", this_step.TrainStep)):
            net, _, params, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
            step = cls(net.net, torch.optim.Adam(list(params), lr=1e-3, fused=True))
            for i in range(5):  # the first step makes Adam's state (torch's step), the next ones compile
                step(*data[i % len(data)])
            assert step.fused_update, f"{name}: Adam's update did not fuse"
            print(f"{name:12s} runs {type(step._plan[1]).__module__}.PairStep", flush=True)
            steps[name] = step
        times = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                for i in range(args.steps):
                    t0 = time.perf_counter()
                    step(*data[i % len(data)])
                    times[name].append(time.perf_counter() - t0)
    ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    for name, m in ms.items():
        print(f"{name:12s} TrainStep median {m:.3f} ms")
    print(f"this tree over {args.rev}: {ms['this tree'] / ms[args.rev]:.3f}")
    return 0


def _patched_step(this_step, at_rev):
    """This tree's ``TrainStep`` with ``REV``'s fused Adam kernels (``--modules`` without
    ``train/step.py``: only ``kernels/adam.py`` can be swapped in under this tree's step)."""
    kernels = at_rev.get("kernels/adam.py")
    if kernels is None or set(at_rev) != {"kernels/adam.py"}:
        raise SystemExit("ab_step: without train/step.py only kernels/adam.py can be taken from REV")

    class TrainStep(this_step.TrainStep):
        def _fused(self, step, *rest):
            step._adam_kernels = (kernels.adam_from_parts, kernels.adam_bias_from_parts) * 2
            return super()._fused(step, *rest)
    return TrainStep


if __name__ == "__main__":
    sys.exit(main())
