"""Whether ``SpikeLinear`` should keep its weight input-major: what it would save against what torch's
fused Adam then loses, at W1's shapes.

    python benchmarks/weight_layout.py [--repeats 300] [--json benchmarks/results/weight-layout.json]

The fused kernels read the hidden layer's 256 x 700 weight input-major, so each training step makes
a transposed copy of it (``linear_lif.transpose_into``) and sums the threads' gradient parts back
into torch's ``[out, in]`` layout (``linear_lif.sum_transposed``). A weight stored input-major (the
same ``[256, 700]`` Parameter, ``weight.t()`` contiguous) would need neither: the kernels would read
it in place and the two parts would be added as they lie. This times, on 2 threads, both transposing
calls, the plain sum of the two parts that would replace them, and ``torch.optim.Adam(fused=True)``'s
step over W1's four parameters with the weight in each layout (W1's optimiser in
``benchmarks/peers.py``). Medians of ``--repeats`` calls; the two Adam layouts alternate, call by call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

from bench_proc import median_ms  # noqa: E402
from spikeflow.atomic import atomic_write_text  # noqa: E402
from spikeflow.kernels import linear_lif  # noqa: E402
from spikeflow.provenance import commit, machine  # noqa: E402


def adam_steps(weights: dict, repeats: int) -> dict:
    """Median ms of a fused Adam step over W1's parameters, for each weight in ``weights``, the
    layouts alternating call by call (the same gradients each step)."""
    g = torch.Generator().manual_seed(1)
    rest = [torch.randn(256, generator=g), torch.randn(20, 256, generator=g), torch.randn(20, generator=g)]
    opts = {}
    for name, w in weights.items():
        params = [torch.nn.Parameter(w.clone(memory_format=torch.preserve_format))] + \
                 [torch.nn.Parameter(t.clone()) for t in rest]
        for p in params:  # each gradient in its parameter's layout, as autograd leaves it
            p.grad = torch.empty_like(p).copy_(torch.randn(p.shape, generator=g))
        opts[name] = torch.optim.Adam(params, lr=1e-3, fused=True)
    times = {name: [] for name in weights}
    for i in range(repeats + 10):
        for name, opt in opts.items():
            t0 = time.perf_counter()
            opt.step()
            if i >= 10:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(256, 700, generator=g)  # [out, in], as nn.Linear keeps it
    wt = torch.empty(700, 256)
    parts = torch.randn(2, 700, 256, generator=g)  # two threads' gradient parts, input-major
    g_w, summed = torch.empty(256, 700), torch.empty(700, 256)
    ms = {
        "transposed copy of the weight (transpose_into)":
            median_ms(lambda: linear_lif.transpose_into(w.numpy(), wt.numpy()), args.repeats, warmup=3),
        "two gradient parts summed into [out, in] (sum_transposed)":
            median_ms(lambda: linear_lif.sum_transposed(parts.numpy(), g_w.numpy()), args.repeats, warmup=3),
        "two gradient parts summed as they lie (torch.add)":
            median_ms(lambda: torch.add(parts[0], parts[1], out=summed), args.repeats, warmup=3),
    }
    adam = adam_steps({"weight [out, in] contiguous": w, "weight stored input-major": w.t().contiguous().t()},
                      args.repeats)
    ms.update({f"fused Adam step, {name}": t for name, t in adam.items()})
    for name, t in ms.items():
        print(f"{t * 1e3:8.1f} us  {name}")
    saved = ms[next(iter(ms))] + ms["two gradient parts summed into [out, in] (sum_transposed)"] \
        - ms["two gradient parts summed as they lie (torch.add)"]
    lost = adam["weight stored input-major"] - adam["weight [out, in] contiguous"]
    print(f"input-major storage would save {saved * 1e3:.1f} us per step and cost {lost * 1e3:.1f} us in Adam")
    if args.json:
        out = {"command": "python benchmarks/weight_layout.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "commit": commit(), "machine": machine(), "threads": 2, "repeats": args.repeats,
               "median_ms": ms, "saved_ms": saved, "adam_extra_ms": lost}
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
